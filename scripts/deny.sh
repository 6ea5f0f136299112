#!/usr/bin/env bash
# scripts/deny.sh — checks the dependency tree with cargo-deny (deny.toml):
#   licenses, bans (no OpenSSL), sources (crates.io only): offline, always;
#   advisories: only with a local copy of the RustSec advisory database
#   (--advisory-db DIR, a checkout of github.com/rustsec/advisory-db), never fetched.
#
#   scripts/deny.sh                         licenses bans sources
#   scripts/deny.sh --advisory-db DIR       … and advisories against DIR
#
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

cargo deny --offline --all-features check licenses bans sources
if [ -n "$db" ]; then
  # cargo-deny reads databases from <db-path>/<name>: give it the checkout under the
  # name it expects, without touching the network.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  ln -s "$(cd "$db" && pwd)" "$work/advisory-db"
  cargo deny --offline --all-features check --config <(sed "s|^\[advisories\]|[advisories]\ndb-path = \"$work\"\ndb-urls = [\"https://github.com/rustsec/advisory-db\"]|" deny.toml) advisories
fi
