#!/usr/bin/env bash
# Home Assistant add-on entry point: the add-on options (/data/options.json, written by
# the Supervisor) → /data/oceanbridge.toml, secrets → OCEANBRIDGE_* environment (never
# in the file), the Supervisor's MQTT service → [home_assistant]; then runs the bridge
# with its state in /data/state. Plain bash + jq + curl (no bashio) so a test runs it
# outside Home Assistant: every path below can be overridden by the environment.
#
# The dashboard listens on 0.0.0.0:8080 (the LAN, and Prometheus, reach it), so it never
# runs without a token: the `web_token` option, else one made at the first start
# (32 random bytes, hex), kept owner-only in /data/web_token and shown once in the log.
set -euo pipefail

options=${ADDON_OPTIONS:-/data/options.json}
config=${ADDON_CONFIG:-/data/oceanbridge.toml}
state=${ADDON_STATE_DIR:-/data/state}
bin=${OCEANBRIDGE_BIN:-/usr/bin/oceanbridge}
supervisor=${SUPERVISOR_API:-http://supervisor}
token_file=${ADDON_TOKEN_FILE:-$(dirname "$config")/web_token}

die() { echo "oceanbridge add-on: $*" >&2; exit 1; }
[ -r "$options" ] || die "cannot read the options file $options"
jq -e 'type == "object"' "$options" >/dev/null 2>&1 || die "$options is not a JSON object"
opt() { jq -r --arg k "$1" '.[$k] // "" | tostring' "$options"; }

way_in=$(opt way_in)
case "$way_in" in
  app) [ -n "$(opt email)" ] && [ -n "$(opt password)" ] || die "way_in app needs email and password" ;;
  open_api) [ -n "$(opt access_key)" ] && [ -n "$(opt secret_key)" ] || die "way_in open_api needs access_key and secret_key" ;;
  *) die "way_in must be app or open_api, not \"$way_in\"" ;;
esac

# Secrets go to the environment (runtime::config ENV_OVERRIDES), not into the file.
export_if_set() { local v; v=$(opt "$2"); if [ -n "$v" ]; then export "$1=$v"; fi; }
export_if_set OCEANBRIDGE_PASSWORD password
export_if_set OCEANBRIDGE_SECRET_KEY secret_key

umask 077
# The dashboard token: the option, else the one kept from the first start.
web_token=$(opt web_token)
if [ -z "$web_token" ]; then
  if [ ! -s "$token_file" ]; then
    mkdir -p "$(dirname "$token_file")"
    od -An -vtx1 -N32 /dev/urandom | tr -d ' \n' >"$token_file.new"
    mv "$token_file.new" "$token_file"
    echo "oceanbridge add-on: made a dashboard token (kept in $token_file; shown this once, or set the web_token option to choose your own): $(cat "$token_file")" >&2
  fi
  web_token=$(cat "$token_file")
fi
[ -n "$web_token" ] || die "no dashboard token: set the web_token option"
export OCEANBRIDGE_WEB_TOKEN="$web_token"

# The broker of the Supervisor's MQTT service (the Mosquitto add-on), if asked for.
mqtt_json=""
if [ "$(opt home_assistant)" = true ]; then
  if mqtt_json=$(curl -fsS -H "Authorization: Bearer ${SUPERVISOR_TOKEN:-}" "$supervisor/services/mqtt" 2>/dev/null) &&
    jq -e '.data.host' <<<"$mqtt_json" >/dev/null 2>&1; then
    mqtt_password=$(jq -r '.data.password // ""' <<<"$mqtt_json")
    if [ -n "$mqtt_password" ]; then export OCEANBRIDGE_HA_PASSWORD="$mqtt_password"; fi
  else
    echo "oceanbridge add-on: no MQTT service from the Supervisor (install the Mosquitto add-on); MQTT discovery is off" >&2
    mqtt_json=""
  fi
fi

mkdir -p "$(dirname "$config")"
# allowed_hosts: "Open Web UI" opens http://<the name the browser used for Home
# Assistant>:8080, so the Home Assistant OS default names are allowed, plus the
# dashboard_hosts option (your own DNS name, a reverse proxy). Any other name is refused
# (DNS rebinding); IP addresses always work.
# Every string goes through jq's tojson: a JSON string is a valid TOML basic string.
jq -r --argjson mqtt "${mqtt_json:-null}" '
  def q: tostring | tojson;
  "# Written by the add-on from its options at every start; edit the options instead.",
  "[source]",
  "way_in = \(.way_in | q)",
  "api_url = \(.api_url | q)",
  (if .way_in == "app" then "email = \(.email | q)" else "access_key = \(.access_key | q)" end),
  "devices = [\((.devices // []) | map(q) | join(", "))]",
  "",
  "[store]",
  "retention = \(.history_retention | q)",
  "",
  "[web]",
  "bind = \"0.0.0.0:8080\"",
  "allowed_hosts = [\((["homeassistant.local", "homeassistant"] + (.dashboard_hosts // [])) | unique | map(q) | join(", "))]",
  "metrics = \(.metrics | q)",
  "",
  "[home_assistant]",
  (if $mqtt == null then "enabled = false" else
    "enabled = true",
    "broker = \((if ($mqtt.data.ssl // false) then "mqtts" else "mqtt" end) + "://" + $mqtt.data.host + ":" + ($mqtt.data.port | tostring) | q)",
    (if ($mqtt.data.username // "") != "" then "username = \($mqtt.data.username | q)" else empty end)
  end)
' "$options" >"$config.new"
mv "$config.new" "$config"

level=$(opt log_level)
exec "$bin" run --config "$config" --data-dir "$state" --log-level "${level:-info}" "$@"
