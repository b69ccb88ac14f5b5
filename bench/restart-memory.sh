#!/usr/bin/env bash
# Memory of a server holding COUNT bindings registered live, and of the same server
# restarted on the same database (the location table loaded at start): PSS in kB, from
# /proc/PID/smaps_rollup.
#   bench/restart-memory.sh BIN [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1 count=${2:-20000}
work=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
sed "s/\[q\]/1.0/; s/\[expires\]/3600/; s/\[status\]/200/; s/\[domain\]/127.0.0.1/g; s/\[service\]@/[service][call_number]@/g" \
  tests/sipp/register.xml > "$work/register.xml"
# One sipp is one source: the per-source limit of bindings (which older builds do not
# know) is lifted where the binary knows it.
printf '[registrar]\nmax_bindings_per_source = 0\n' > "$work/ferrosip.toml"
config=()
"$bin" check --config "$work/ferrosip.toml" >/dev/null 2>&1 && config=(--config "$work/ferrosip.toml")
port=$((30000 + RANDOM % 20000))
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
start() {
  "$bin" serve "${config[@]}" --listen "udp:127.0.0.1:$port" --db "$work/f.db" \
    --api off 2>>"$work/log" &
  pid=$!
  sleep 1
}
start
sipp "127.0.0.1:$port" -sf "$work/register.xml" -s u -p $((port + 1)) -r 2000 -m "$count" \
  -i 127.0.0.1 -nostdin -timeout 120 -recv_timeout 10000 >/dev/null 2>&1
sleep 1
live=$(pss "$pid")
kill -TERM "$pid"; wait "$pid" || true
start
sleep 2
restarted=$(pss "$pid")
echo "bindings=$count live_pss_kb=$live restarted_pss_kb=$restarted ratio=$(awk "BEGIN {printf \"%.2f\", $restarted / $live}")"
