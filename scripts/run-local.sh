#!/usr/bin/env bash
# `make run`: starts the server (with its private PostgreSQL), enrolls a local agent the
# first time, starts it, and stops both on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

LISTEN=${RDP_DOCTOR_LISTEN:-127.0.0.1:3000}
AGENT_LISTEN=${RDP_DOCTOR_AGENT_LISTEN:-127.0.0.1:7410}
if [ -z "${RDP_DOCTOR_STATE_DIR:-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then RDP_DOCTOR_STATE_DIR=/var/lib/rdp-doctor; else RDP_DOCTOR_STATE_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/rdp-doctor"; fi
fi
export RDP_DOCTOR_STATE_DIR
AGENT_CONFIG="$RDP_DOCTOR_STATE_DIR/local-agent.json"
SERVER_URL="http://$LISTEN"
BIN=target/debug

server_pid=""
agent_pid=""
stop() {
  trap - INT TERM EXIT
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$BIN/rdp-doctor" serve --listen "$LISTEN" --site-root target/site &
server_pid=$!

for _ in $(seq 1 300); do
  if curl -fsS "$SERVER_URL/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then echo "run: the server did not start (see above)" >&2; exit 1; fi
  sleep 0.2
done
curl -fsS "$SERVER_URL/healthz" >/dev/null || { echo "run: the server did not become healthy in 60 s" >&2; exit 1; }

# Enroll the local agent once; its identity lives beside the server's state.
if [ ! -s "$AGENT_CONFIG" ]; then
  token=$("$BIN/rdp-doctor" token create --expires-in 10m --uses 1 2>/dev/null)
  "$BIN/rdp-doctor-agent" enroll --server "$SERVER_URL" --token "$token" --config "$AGENT_CONFIG"
fi
"$BIN/rdp-doctor-agent" run --config "$AGENT_CONFIG" --listen "$AGENT_LISTEN" &
agent_pid=$!

echo
echo "  RDP Doctor is ready: $SERVER_URL/"
echo "  (a local agent is running checks from this machine; press Ctrl-C to stop)"
echo
wait "$server_pid"
