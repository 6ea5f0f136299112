#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time with a seed corpus from the test
# vectors, and prints executions and findings per target. Not part of the test run.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
export RUSTC_BOOTSTRAP=1 # cargo-fuzz passes nightly-only sanitizer flags
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/fuzz}

seed() { # seed <target> : payload corpora from tests/vectors (+ ../shared/vectors)
  local dir=fuzz/corpus/$1; mkdir -p "$dir"
  python3 - "$1" "$dir" <<'PY'
import glob, json, os, sys
target, out = sys.argv[1], sys.argv[2]
files = glob.glob("tests/vectors/*.json") + glob.glob("../shared/vectors/*.json")
for f in files:
    v = json.load(open(f))
    name = os.path.join(out, v["name"])
    if target == "decode_payload":
        open(name, "wb").write(bytes.fromhex(v["payload_hex"]))
    elif target == "replay_reader":
        line = json.dumps({"topic": v["topic"], "time": 1732464000.5, "hex": v["payload_hex"]})
        open(name, "w").write(line + "\n" + line[: len(line) // 2] + "\n")
    elif target == "config_parser":
        for ex in glob.glob("*.example.toml"):
            open(os.path.join(out, os.path.basename(ex)), "wb").write(open(ex, "rb").read())
        open(os.path.join(out, "simulator.toml"), "w").write(
            '[simulator]\nspeed = 60.0\npacks = 3\ndevices = ["HC31ZDH5ZF220123"]\n'
            '[simulator.cadence]\nenergy_stream = "4s"\nmin_interval = "250ms"\n')
PY
}

printf '%-16s %10s %8s %s\n' target executions seconds findings
for target in $(cd fuzz && cargo fuzz list); do
  seed "$target"
  log=$(mktemp)
  status=ok
  (cd fuzz && cargo fuzz run "$target" --target-dir "$CARGO_TARGET_DIR" -- \
      -max_total_time="$seconds" -print_final_stats=1) >"$log" 2>&1 || status=CRASH
  runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo "?")
  [ "$status" = ok ] || runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  findings=$([ "$status" = ok ] && echo none || ls fuzz/artifacts/"$target" 2>/dev/null | tr '\n' ' ')
  printf '%-16s %10s %8s %s\n' "$target" "$runs" "$seconds" "$findings"
  [ "$status" = ok ] || tail -30 "$log"
  rm -f "$log"
done
