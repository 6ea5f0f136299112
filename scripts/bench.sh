#!/usr/bin/env bash
# scripts/bench.sh — the performance figures of docs/performance.md in one table.
#
# (a) decode per message kind vs bare prost (criterion bench's summary, no full criterion run)
# (b) end-to-end latency broker → bridge → store → SSE at BENCH_RATE msg/s
# (c) BENCH_DEVICES devices at 1 msg/s each for BENCH_ROUNDS s through mosquitto: loss, RSS, CPU —
#     on the system mosquitto and on a private one tuned like a fleet broker (needs the binary)
# (d) idle RSS and start-up time of `oceanbridge run`
# (e) history ingest into PostgreSQL (only when 127.0.0.1:5432 answers or BENCH_POSTGRES_URL is set)
#
# Loopback only; needs mosquitto listening on 127.0.0.1:1883 (apt install mosquitto).
# Bounded: after the (release) build, about 1–2 minutes with the defaults.
# Knobs: BENCH_RATE=1000 BENCH_SECS=10 BENCH_DEVICES=10000 BENCH_ROUNDS=20 BENCH_ONLY=decode|latency|fleet|fleet-tuned|idle|postgres
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

echo "bench.sh: building (release) …" >&2
cargo build --quiet --release -p oceanbridge --bin oceanbridge --example fleet_bench >&2

decode_rows() {
    echo "bench.sh: (a) decode summary …" >&2
    # A filter that matches no criterion case: only the bench's own summary table runs.
    cargo bench --quiet -p protocol --bench decode -- __summary_only__ 2>/dev/null |
        awk '/^message kind/ { on = 1; next }
             on && NF >= 5 && $NF ~ /x$/ {
                 ratio = substr($NF, 1, length($NF) - 1); mps = $(NF-1); prost = $(NF-2); full = $(NF-3)
                 label = $1; for (i = 2; i <= NF - 4; i++) label = label " " $i
                 printf "| (a) decode vs bare prost | %s | %s ns vs %s ns (%s msg/s), %.2f× | ≤ 2× | %s |\n",
                        label, full, prost, mps, ratio, (ratio <= 2.0 ? "pass" : "FAIL")
             }'
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
