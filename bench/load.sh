#!/usr/bin/env bash
# Load test of the project's own: ferrosip (release build) on a loopback port, driven by sipp
# with the scenarios in tests/sipp/. Prints the server's CPU time per operation.
#   bench/load.sh register RATE COUNT      unique AORs, one REGISTER each
#   bench/load.sh call RATE COUNT          INVITE/180/200/ACK/BYE to a registered sipp UAS
# For a side-by-side figure with Kamailio use ../shared/peers/sipbench.py (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-register} rate=${2:-1000} count=${3:-10000}
port=$((20000 + RANDOM % 20000))
work=$(mktemp -d)
trap 'kill $server $uas 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release -q -p ferrosip
# One sipp is one source: the per-source limit of bindings is lifted.
printf '[registrar]\nmax_bindings_per_source = 0\n' > "$work/ferrosip.toml"
target/release/ferrosip serve --config "$work/ferrosip.toml" --listen "udp:127.0.0.1:$port" \
  --db "$work/bench.db" 2>"$work/server.log" &
server=$!
uas=""
sleep 1
cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }
sub() { sed "s/\[q\]/1.0/; s/\[expires\]/3600/; s/\[status\]/200/; s/\[domain\]/127.0.0.1/g" "tests/sipp/$1" > "$work/$1"; }
sub register.xml
sub uac.xml
common=(-i 127.0.0.1 -nostdin -timeout 600 -recv_timeout 10000)
case $mode in
  register)
    sed -i 's/\[service\]@/[service][call_number]@/g' "$work/register.xml"
    before=$(cpu)
    sipp "127.0.0.1:$port" -sf "$work/register.xml" -s u -r "$rate" -m "$count" "${common[@]}" >/dev/null 2>&1 || true
    ;;
  call)
    uas_port=$((port + 1))
    sipp "127.0.0.1:$port" -sf "$work/register.xml" -s bob -p "$uas_port" -m 1 "${common[@]}" >/dev/null
    sipp -sf tests/sipp/uas.xml -s bob -p "$uas_port" "${common[@]}" >/dev/null 2>&1 &
    uas=$!
    before=$(cpu)
    sipp "127.0.0.1:$port" -sf "$work/uac.xml" -s bob -r "$rate" -m "$count" "${common[@]}" >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 register|call RATE COUNT" >&2; exit 2 ;;
esac
after=$(cpu)
ticks=$(getconf CLK_TCK)
awk -v d=$((after - before)) -v t="$ticks" -v n="$count" -v m="$mode" \
  'BEGIN { printf "%s: %d operations, server CPU %.1f us per operation\n", m, n, d / t * 1e6 / n }'
