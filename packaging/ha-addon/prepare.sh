#!/usr/bin/env bash
# Makes a local Home Assistant add-on folder: copies this folder to DEST (e.g. the HA
# machine's /addons/oceanbridge, reached through the Samba or SSH add-on) with the
# source of the current commit as src.tar.gz for the Dockerfile's build stage.
#   packaging/ha-addon/prepare.sh /path/to/addons/oceanbridge
set -euo pipefail
dest=${1:?usage: prepare.sh DEST (e.g. /addons/oceanbridge)}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dest"
cp -r "$here/config.yaml" "$here/build.yaml" "$here/Dockerfile" "$here/run.sh" \
  "$here/DOCS.md" "$here/translations" "$dest/"
# The whole repository at HEAD (run from this subfolder, git archive would take only it).
repo=$(git -C "$here" rev-parse --show-toplevel)
git -C "$repo" archive --format=tar.gz -o "$dest/src.tar.gz" HEAD
# The archive has no .git: the commit for `oceanbridge --version` travels beside it.
git -C "$repo" rev-parse --short=12 HEAD >"$dest/COMMIT"
echo "add-on folder ready in $dest: Settings → Add-ons → Add-on store → ⋮ → Check for updates, then install \"oceanbridge\" (local add-ons)"
