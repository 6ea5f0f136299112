#!/usr/bin/env bash
# Builds the Debian package into target/debian/oceanbridge_<version>-1_<arch>.deb:
# the binary (cargo build), its man pages and shell completions (made by the binary
# itself: `oceanbridge generate-assets`), then cargo-deb packs them with the unit, the
# conffile and the maintainer scripts of this folder ([package.metadata.deb] in
# crates/oceanbridge/Cargo.toml).
#
#   packaging/deb/build.sh                  the `dist` profile (fat LTO, stripped): what you ship
#   packaging/deb/build.sh --profile dev    a debug build (quick to make)
#   packaging/deb/build.sh --profile dev --reuse-binary
#                                           pack the binary `cargo test` already built as
#                                           is (CI: a `cargo build` would rebuild it with
#                                           other dependency features)
#
# Needs cargo-deb: `cargo install cargo-deb --locked`.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=dist
reuse=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:?--profile NAME}; shift 2 ;;
    --reuse-binary) reuse=1; shift ;;
    *) break ;;  # the rest goes to cargo-deb
  esac
done
case "$profile" in dev) dir=debug ;; *) dir=$profile ;; esac
target_dir=${CARGO_TARGET_DIR:-target}

if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "packaging/deb/build.sh: cargo-deb is missing; install it with: cargo install cargo-deb --locked" >&2
  exit 1
fi
if [ -z "$reuse" ] || [ ! -x "$target_dir/$dir/oceanbridge" ]; then
  cargo build --locked -p oceanbridge --profile "$profile"
fi
rm -rf "$target_dir/deb-assets"
"$target_dir/$dir/oceanbridge" generate-assets --out-dir "$target_dir/deb-assets" >/dev/null
# --no-build: cargo-deb packs target/release/oceanbridge ([package.metadata.deb] assets).
# Another profile's binary (`dist`, what ships; `dev` in CI) is staged as the "release"
# one of a scratch target dir, so cargo-deb packs every profile the same way, stripped.
if [ "$profile" = release ]; then
  cargo deb --locked -p oceanbridge --no-build "$@"
else
  stage="$target_dir/deb-stage"
  rm -rf "$stage" && mkdir -p "$stage/release"
  cp "$target_dir/$dir/oceanbridge" "$stage/release/oceanbridge"
  CARGO_TARGET_DIR="$stage" cargo deb --locked -p oceanbridge --no-build --strip "$@"
fi
