#!/usr/bin/env bash
# Soak: the real bridge (release build) against the simulator with many devices for a
# bounded time, a fault every minute (broker down 3 s / all connections dropped, in turn),
# RSS sampled from /proc/<pid>/status every 10 s, loss counted in every window between
# faults. Prints the tables and a summary; fails on loss, history drops or growing RSS.
# Not part of the test run.
#
#   scripts/soak.sh [SECONDS] [DEVICES] [SPEED]      (defaults 600 100 5)
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECS=${1:-600} SOAK_DEVICES=${2:-100} SOAK_SPEED=${3:-5}
export SOAK_FAULT_EVERY=${SOAK_FAULT_EVERY:-60}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
echo "soak: ${SOAK_SECS} s, ${SOAK_DEVICES} devices, speed ${SOAK_SPEED}, a fault every ${SOAK_FAULT_EVERY} s"
exec cargo test --release -p oceanbridge --test reliability_soak -- --ignored --nocapture --test-threads=1
