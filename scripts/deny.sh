#!/usr/bin/env bash
# scripts/deny.sh — checks the dependency tree with cargo-deny (deny.toml):
#   licenses, bans (no OpenSSL), sources (crates.io only): always;
#   advisories: only against a local copy of the RustSec advisory database
#   (--advisory-db DIR: a git clone, bare or not, of github.com/rustsec/advisory-db), never fetched
#   from GitHub (CI reaches crates.io only).
#
#   scripts/deny.sh                         licenses bans sources
#   scripts/deny.sh --advisory-db DIR       … and advisories against DIR
#
# cargo-deny reads the crate graph of every target platform: the first run downloads
# those crates' manifests from crates.io (cargo's own cache after that).
# Needs cargo-deny: `cargo install cargo-deny --locked`.
set -euo pipefail
cd "$(dirname "$0")/.."

db=""
while [ $# -gt 0 ]; do
  case "$1" in
    --advisory-db) db=${2:?--advisory-db DIR}; shift 2 ;;
    *) echo "scripts/deny.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "scripts/deny.sh: cargo-deny is missing; install it with: cargo install cargo-deny --locked" >&2
  exit 2
fi

cargo deny --locked --all-features check licenses bans sources
if [ -n "$db" ]; then
  git -C "$db" rev-parse --git-dir >/dev/null 2>&1 ||
    { echo "scripts/deny.sh: $db is not a git copy of the RustSec advisory database" >&2; exit 2; }
  # cargo-deny keeps a database in <db-path>/<name>-<hash of its URL>, and with
  # --offline uses it as it is. Ask it where it looks (an empty db-path), put a clone of
  # the local copy there, and check: nothing goes to the network, DIR is not touched.
  # (--offline also for the crate graph: the licenses check above filled cargo's cache.)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  awk -v path="$work/dbs" '
    { print }
    /^\[advisories\]/ { printf "db-path = \"%s\"\n", path }
  ' deny.toml >"$work/deny.toml"
  run() { cargo deny --offline --all-features --config "$work/deny.toml" check advisories; }
  where=$(run 2>&1 | grep -o "$work/dbs/[A-Za-z0-9._-]*" | head -n1 || true)
  [ -n "$where" ] || { echo "scripts/deny.sh: cannot tell where cargo-deny looks for the database" >&2; exit 1; }
  git clone --quiet "$db" "$where"
  run
fi
