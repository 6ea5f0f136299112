#!/usr/bin/env bash
# scripts/bench.sh — the performance figures of docs/performance.md in one table.
#
# (a) decode per message kind vs bare prost (criterion bench's summary, no full criterion run),
#     and payloads/s on the vector mix next to the incumbent's Node + protobufjs stack
#     (scripts/incumbent; when node and npm are installed, protobufjs goes into a temp dir)
# (b) end-to-end latency broker → bridge → store → SSE at BENCH_RATE msg/s
# (c) BENCH_DEVICES devices at 1 msg/s each for BENCH_ROUNDS s through mosquitto: loss, RSS, CPU —
#     on the system mosquitto and on a private one tuned like a fleet broker (needs the binary)
# (d) idle RSS and start-up time of `oceanbridge run`
# (e) history ingest into PostgreSQL (only when 127.0.0.1:5432 answers or BENCH_POSTGRES_URL is set)
# (f) end-to-end throughput per core through mosquitto at rising rates, up to the first loss
#
# Loopback only; needs mosquitto listening on 127.0.0.1:1883 (apt install mosquitto).
# Bounded: after the (release) build, about 1–2 minutes with the defaults.
# Knobs: BENCH_RATE=1000 BENCH_SECS=10 BENCH_DEVICES=10000 BENCH_ROUNDS=20 BENCH_ONLY=decode|latency|fleet|fleet-tuned|idle|postgres|throughput
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
RATE="${BENCH_RATE:-1000}"
SECS="${BENCH_SECS:-10}"
DEVICES="${BENCH_DEVICES:-10000}"
ROUNDS="${BENCH_ROUNDS:-20}"
ONLY="${BENCH_ONLY:-}"

if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
    echo "bench.sh: nothing listens on 127.0.0.1:1883 — start mosquitto first (apt install mosquitto)" >&2
    exit 2
fi

if [ "$ONLY" != decode ]; then
    echo "bench.sh: building (release) …" >&2
    cargo build --quiet --release -p oceanbridge --bin oceanbridge --example fleet_bench >&2
fi

decode_rows() {
    echo "bench.sh: (a) decode summary …" >&2
    # A filter that matches no criterion case: only the bench's own summary tables run.
    local out
    out=$(cargo bench --quiet -p protocol --bench decode -- __summary_only__ 2>/dev/null)
    # Columns: kind…, UpdateBuf ns, StateUpdates ns, prost ns, UpdateBuf msg/s, both ratios.
    awk '/^message kind/ { on = 1; next }
         on && NF >= 7 && $NF ~ /x$/ {
             upd = substr($NF, 1, length($NF) - 1); buf = substr($(NF-1), 1, length($(NF-1)) - 1)
             mps = $(NF-2); prost = $(NF-3); full = $(NF-4); compact = $(NF-5)
             label = $1; for (i = 2; i <= NF - 6; i++) label = label " " $i
             printf "| (a) decode vs bare prost | %s | UpdateBuf %s ns vs prost %s ns (%s msg/s), %.2f×; StateUpdates %s ns, %.2f× | ≤ 2× | %s |\n",
                    label, compact, prost, mps, buf, full, upd, (buf <= 2.0 ? "pass" : "FAIL")
         }
         /^$/ { on = 0 }' <<<"$out"
    mix=$(grep -m1 '^vector mix:' <<<"$out" || true)
    [ -n "$mix" ] || { echo "bench.sh: the decode bench printed no vector-mix line" >&2; return 1; }
    incumbent_rows "$mix"
}

# (a) the incumbent's stack on the same payloads: Node + protobufjs as the ioBroker
# ecoflow-mqtt adapter uses them (scripts/incumbent/decode.js), installed into a temp dir.
incumbent_rows() {
    local mix=$1 ours_buf ours_full payloads
    payloads=$(sed -E 's/^vector mix: ([0-9]+) payloads.*/\1/' <<<"$mix")
    ours_buf=$(sed -E 's/.*UpdateBuf ([0-9]+) payloads\/s.*/\1/' <<<"$mix")
    ours_full=$(sed -E 's/.*decode_payload ([0-9]+) payloads\/s.*/\1/' <<<"$mix")
    echo "| (a) decode, vector mix ($payloads valid vectors) | oceanbridge: UpdateBuf / decode_payload | $ours_buf / $ours_full payloads/s |  |  |"
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "| (a) decode, vector mix | incumbent (Node + protobufjs) | not measured: node/npm not installed |  |  |"
        return 0
    fi
    echo "bench.sh: (a) incumbent: npm install protobufjs into a temp dir …" >&2
    local dir theirs="" written=""
    dir=$(mktemp -d)
    cp scripts/incumbent/package.json "$dir/"
    if (cd "$dir" && npm install --no-audit --no-fund --silent >&2); then
        theirs=$(NODE_PATH="$dir/node_modules" node scripts/incumbent/decode.js "$PWD" --secs 2) || true
        written=$(NODE_PATH="$dir/node_modules" node scripts/incumbent/decode.js "$PWD" --as-written --secs 1) || true
    fi
    rm -rf "$dir"
    if [ -z "$theirs" ]; then
        echo "| (a) decode, vector mix | incumbent (Node + protobufjs) | not measured: npm install or the script failed (see stderr) |  |  |"
        return 0
    fi
    local n versions
    n=$(sed -E 's/.*: ([0-9]+) payloads\/s.*/\1/' <<<"$theirs")
    versions=$(sed -E 's/.*\((.*)\)$/\1/' <<<"$theirs")
    echo "| (a) decode, vector mix | incumbent: $versions, frames → dispatch → toObject → per-state conversion | $n payloads/s |  |  |"
    echo "| (a) decode, vector mix | incumbent as the adapter is written (re-parses the .proto on every decode) | $(sed -E 's/.*: ([0-9]+) payloads\/s.*/\1/' <<<"$written") payloads/s |  |  |"
    # Both sides print the states they produced per pass: equal counts = the same work done.
    local ours_states their_states
    ours_states=$(sed -E 's/.* ([0-9]+) states per pass.*/\1/' <<<"$mix")
    their_states=$(sed -E 's/.* ([0-9]+) states per pass.*/\1/' <<<"$theirs")
    awk -v b="$ours_buf" -v f="$ours_full" -v n="$n" -v os="$ours_states" -v ts="$their_states" 'BEGIN {
        r = b / n
        same = (os == ts) ? sprintf("both %s states per pass", os) : sprintf("states per pass differ: %s vs %s", os, ts)
        printf "| (a) decode, vector mix | oceanbridge / incumbent (%s) | UpdateBuf %.1f×, decode_payload %.1f× | ≥ 10× | %s |\n",
               same, r, f / n, (r >= 10 ? "pass" : "FAIL") }'
}

echo "## oceanbridge performance — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), memory $(free -h | awk '/^Mem:/ {print $2 " total, " $7 " available"}'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| bench | figure | measured | target | result |"
echo "|---|---|---|---|---|"
status=0
if [ -z "$ONLY" ] || [ "$ONLY" = decode ]; then
    decode_rows || status=1
fi
if [ "$ONLY" != decode ]; then
    args=(--rate "$RATE" --secs "$SECS" --devices "$DEVICES" --rounds "$ROUNDS")
    [ -n "$ONLY" ] && args+=(--only "$ONLY")
    # (e) history ingest into PostgreSQL, when one is reachable (trust auth on loopback).
    PG_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
    if [ -n "${BENCH_POSTGRES_URL:-}" ] || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
        args+=(--postgres "$PG_URL")
    fi
    # The example prints its own header; keep only the rows so the output is one table.
    "$CARGO_TARGET_DIR/release/examples/fleet_bench" --bin "$CARGO_TARGET_DIR/release/oceanbridge" "${args[@]}" |
        grep -v -e '^| bench |' -e '^|---' || status=1
fi
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
