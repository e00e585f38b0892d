#!/usr/bin/env bash
# Agent footprint: release binary size (Linux and Windows) and idle resident memory of a
# running, enrolled agent on Linux. Prints a Markdown table.
#   scripts/bench-agent-footprint.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p agent-client --bin rdp-doctor-agent
cargo build --release -q -p agent-client --bin rdp-doctor-agent --target x86_64-pc-windows-gnu
cargo build -q -p server --bin rdp-doctor

linux=target/release/rdp-doctor-agent
windows=target/x86_64-pc-windows-gnu/release/rdp-doctor-agent.exe
state=$(mktemp -d /tmp/rdp-doctor-footprint-XXXXXX)
chmod 755 "$state"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT

target/debug/rdp-doctor serve --listen 127.0.0.1:0 --state-dir "$state" --site-root no-site >"$state/server.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 1 300); do grep -q "running at" "$state/server.out" 2>/dev/null && break; sleep 0.2; done
url=$(sed -n 's/^RDP Doctor is running at \(http:[^ ]*\)\/$/\1/p' "$state/server.out")
token=$(target/debug/rdp-doctor token create --state-dir "$state" 2>/dev/null)
"$linux" enroll --server "$url" --token "$token" --config "$state/agent.json" >/dev/null
RDP_DOCTOR_AGENT_LOG=warn "$linux" run --config "$state/agent.json" --listen 127.0.0.1:0 >/dev/null 2>&1 &
agent=$!
pids+=($agent)
sleep 5 # enrolled, listening, a heartbeat or two sent: idle
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent/status")
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$agent/status")

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "| figure | value | target |"
echo "|---|---:|---|"
echo "| idle resident memory, Linux agent (VmRSS after 5 s) | $(mib $((rss_kb * 1024))) | < 15 MB |"
echo "| peak resident memory so far (VmHWM) | $(mib $((hwm_kb * 1024))) | |"
strip -o "$state/agent-linux" "$linux"
x86_64-w64-mingw32-strip -o "$state/agent.exe" "$windows"
echo "| release binary, Linux x86_64 (as built / stripped) | $(mib "$(stat -c %s "$linux")") / $(mib "$(stat -c %s "$state/agent-linux")") | |"
echo "| release binary, Windows x86_64, mingw (as built / stripped) | $(mib "$(stat -c %s "$windows")") / $(mib "$(stat -c %s "$state/agent.exe")") | |"
