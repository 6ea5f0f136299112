#!/usr/bin/env bash
# The Debian package end to end, as root on this machine (.ci/run runs it after the
# cargo tests, so the debug binary is already built):
#   1. build the .deb (packaging/deb/build.sh --profile dev) and `dpkg -i` it;
#   2. check the installed layout and `systemd-analyze verify` the unit;
#   3. run the INSTALLED binary the way the unit does — its ExecStart line, the config
#      from a credentials copy (%d, LoadCredential), a throw-away uid like DynamicUser,
#      umask 0077, state in /var/lib/oceanbridge — against `oceanbridge simulate`;
#      wait for /readyz and for history rows in /var/lib/oceanbridge/history.db; SIGTERM;
#   4. `dpkg -r` keeps config and state, `dpkg --purge` leaves nothing behind.
# Ends with "deb: N passed, M failed". No systemd runs here, so the sandboxing options
# themselves (ProtectSystem=..., SystemCallFilter=...) are checked by systemd-analyze
# only, not enforced.
set -euo pipefail
cd "$(dirname "$0")/../.."

DEVICE=HC31ZDH5ZF220123
UNIT=/usr/lib/systemd/system/oceanbridge.service
SERVICE_UID=61234   # in systemd's DynamicUser range 61184..65519
passed=0
tmp=$(mktemp -d /tmp/oceanbridge-deb.XXXXXX)
chmod 755 "$tmp"    # the service uid reads the simulator's CA from here
sim_pid="" bridge_pid=""

cleanup() {
  [ -n "$bridge_pid" ] && kill "$bridge_pid" 2>/dev/null || true
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
  if dpkg-query -W -f='${Status}' oceanbridge 2>/dev/null | grep -q installed; then
    dpkg --purge oceanbridge >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok - $1"; }
fail() {
  echo "FAILED - $1" >&2
  for log in "$tmp"/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }; done
  echo "deb: $passed passed, 1 failed"
  exit 1
}
# wait_for SECONDS DESCRIPTION COMMAND...: polls the command every 0.2 s.
wait_for() {
  local seconds=$1 what=$2; shift 2
  local end=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || fail "$what (waited ${seconds}s)"
    sleep 0.2
  done
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    listening "$p" || { echo "$p"; return; }
  done
  fail "no free port"
}

for tool in dpkg cargo-deb setpriv curl sqlite3; do
  command -v "$tool" >/dev/null || fail "$tool is missing (.ci/run installs it)"
done
if dpkg-query -W -f='${Status}' oceanbridge 2>/dev/null | grep -q installed; then
  fail "an oceanbridge package is already installed here; this test would remove it"
fi

# 1. Build and install.
start=$SECONDS
packaging/deb/build.sh --profile dev --reuse-binary --fast --output "$tmp/" >"$tmp/build.log" 2>&1 || fail "packaging/deb/build.sh"
deb=$(ls "$tmp"/oceanbridge_*.deb)
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) in $((SECONDS - start)) s"
# Everything named after us in the system's directories, to compare after the purge.
ours() { find /etc /usr /var/lib /run -xdev -path "$tmp" -prune -o -name '*oceanbridge*' -print 2>/dev/null | sort; }
ours >"$tmp/before.txt"
dpkg -i "$deb" >"$tmp/dpkg-install.log" 2>&1 || fail "dpkg -i"
ok "dpkg -i $(basename "$deb")"

# 2. The installed layout.
for f in /usr/bin/oceanbridge "$UNIT" /etc/oceanbridge/oceanbridge.toml \
  /usr/share/man/man1/oceanbridge.1.gz /usr/share/man/man1/oceanbridge-run.1.gz \
  /usr/share/bash-completion/completions/oceanbridge /usr/share/zsh/vendor-completions/_oceanbridge \
  /usr/share/fish/vendor_completions.d/oceanbridge.fish /usr/share/doc/oceanbridge/install.md; do
  [ -f "$f" ] || fail "missing $f"
done
[ "$(stat -c %a /etc/oceanbridge/oceanbridge.toml)" = 600 ] || fail "the config is not 0600"
dpkg-query -W -f='${Conffiles}' oceanbridge | grep -q /etc/oceanbridge/oceanbridge.toml ||
  fail "/etc/oceanbridge/oceanbridge.toml is not a conffile"
zcat /usr/share/man/man1/oceanbridge-run.1.gz | grep -q 'data\\-dir' || fail "man page lacks run --data-dir"
grep -q 'check-config' /usr/share/bash-completion/completions/oceanbridge || fail "bash completion lacks check-config"
/usr/bin/oceanbridge --version | grep -q '^oceanbridge ' || fail "--version"
OCEANBRIDGE_PASSWORD=example /usr/bin/oceanbridge check-config --config /etc/oceanbridge/oceanbridge.toml >"$tmp/check-example.log" 2>&1 ||
  fail "the shipped example config does not pass check-config"
ok "layout: binary, unit, conffile 0600, man pages, completions; the example config checks"

if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$UNIT" >"$tmp/verify.log" 2>&1 || fail "systemd-analyze verify $UNIT"
  if grep -v 'Failed to .*bus\|not booted\|Running in chroot' "$tmp/verify.log" | grep -q .; then
    fail "systemd-analyze verify warns: $(cat "$tmp/verify.log")"
  fi
  exposure=$(systemd-analyze security --offline=yes "$UNIT" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  ok "systemd-analyze verify is clean (exposure ${exposure:-?} per systemd-analyze security --offline)"
else
  fail "systemd-analyze is missing (Debian package systemd)"
fi

# 3. Run it as the unit does, against the simulator.
/usr/bin/oceanbridge simulate --http-port 0 --mqtt-port 0 --devices "$DEVICE" \
  --ca-file "$tmp/ca.pem" >"$tmp/simulate.log" 2>&1 &
sim_pid=$!
wait_for 60 "the simulator prints its HTTP API" grep -q 'HTTP API  *https://' "$tmp/simulate.log"
api=$(sed -n 's/^ *HTTP API  *\(https:[^ ]*\).*/\1/p' "$tmp/simulate.log" | head -n1)
chmod 644 "$tmp/ca.pem"
web=$(free_port)
# The admin's edit of the conffile (purge must remove the edited file too).
cat >/etc/oceanbridge/oceanbridge.toml <<TOML
[source]
way_in = "app"
api_url = "$api"
ca_file = "$tmp/ca.pem"
email = "demo@oceanbridge.local"
password = "demo"
devices = ["$DEVICE"]

[web]
bind = "127.0.0.1:$web"
TOML

# systemd: LoadCredential copies the file, owned by the service user, 0400, into %d;
# StateDirectory makes /var/lib/oceanbridge the user's, 0700.
creds="$tmp/credentials"
mkdir -m 0700 "$creds"
install -m 0400 -o "$SERVICE_UID" -g "$SERVICE_UID" /etc/oceanbridge/oceanbridge.toml "$creds/oceanbridge.toml"
chown "$SERVICE_UID:$SERVICE_UID" "$creds"
install -d -m 0700 -o "$SERVICE_UID" -g "$SERVICE_UID" /var/lib/oceanbridge
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
exec_start=${exec_start//%d/$creds}
[ -n "$exec_start" ] || fail "no ExecStart in $UNIT"
# shellcheck disable=SC2086 # the ExecStart line is split into words as systemd does
(umask 0077 && exec setpriv --reuid="$SERVICE_UID" --regid="$SERVICE_UID" --clear-groups \
  --no-new-privs --inh-caps=-all --bounding-set=-all -- $exec_start) >"$tmp/bridge.log" 2>&1 &
bridge_pid=$!
echo "running as uid $SERVICE_UID: $exec_start"
wait_for 60 "/healthz answers" curl -sf "http://127.0.0.1:$web/healthz"
wait_for 90 "/readyz says ready (connected, data fresh)" curl -sf "http://127.0.0.1:$web/readyz"
ok "/healthz and /readyz answer 200 from the installed binary as the service user"

history_rows() { sqlite3 -readonly /var/lib/oceanbridge/history.db 'SELECT count(*) FROM history' 2>/dev/null; }
has_history() { [ "$(history_rows)" -gt 0 ] 2>/dev/null; }
wait_for 60 "history rows in /var/lib/oceanbridge/history.db" has_history
ok "history in /var/lib/oceanbridge/history.db ($(history_rows) rows so far)"

kill -TERM "$bridge_pid"
status=0
wait "$bridge_pid" || status=$?
bridge_pid=""
[ "$status" = 0 ] || fail "the bridge exited $status on SIGTERM"
owner=$(stat -c %u /var/lib/oceanbridge/history.db)
[ "$owner" = "$SERVICE_UID" ] || fail "history.db owned by uid $owner"
[ -f /var/lib/oceanbridge/client-ids.json ] || fail "no client-ids.json in the state directory"
ok "SIGTERM: exit 0; history.db ($(history_rows) rows) and client-ids.json kept, owned by the service user"
kill "$sim_pid" 2>/dev/null || true
wait "$sim_pid" 2>/dev/null || true
sim_pid=""

# 4. Remove keeps config and state; purge leaves nothing.
dpkg -r oceanbridge >"$tmp/dpkg-remove.log" 2>&1 || fail "dpkg -r"
[ ! -e /usr/bin/oceanbridge ] || fail "dpkg -r left /usr/bin/oceanbridge"
[ -f /etc/oceanbridge/oceanbridge.toml ] && [ -f /var/lib/oceanbridge/history.db ] ||
  fail "dpkg -r must keep the config and the history"
ok "dpkg -r removes the program, keeps the config and the history"
dpkg --purge oceanbridge >"$tmp/dpkg-purge.log" 2>&1 || fail "dpkg --purge"
for p in /usr/bin/oceanbridge /etc/oceanbridge /var/lib/oceanbridge /var/lib/private/oceanbridge \
  "$UNIT" /usr/share/doc/oceanbridge /usr/share/man/man1/oceanbridge.1.gz \
  /usr/share/bash-completion/completions/oceanbridge; do
  [ ! -e "$p" ] || fail "dpkg --purge left $p"
done
dpkg-query -W oceanbridge >/dev/null 2>&1 && fail "dpkg still knows the package after purge"
ours >"$tmp/after.txt"
left=$(comm -13 "$tmp/before.txt" "$tmp/after.txt")
[ -z "$left" ] || fail "dpkg --purge left: $left"
grep -rqs oceanbridge /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked &&
  fail "deb-systemd-helper state left after purge"
ok "dpkg --purge leaves nothing (no path named oceanbridge under /etc /usr /var/lib /run that was not there before)"

echo "deb: $passed passed, 0 failed"
