#!/usr/bin/env bash
# REGISTER over UDP, TLS and WSS, connections kept open, against one ferrosip: the server's
# CPU per 1000 REGISTERs on each, then its memory per idle TLS connection with IDLE of them
# open (each registered once). The load tool is crates/transport/examples/register_load.rs
# (sipp as Debian builds it has no TLS, and no WebSocket).
#   bench/transports.sh [RATE] [COUNT] [CONNS] [IDLE]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-2000} count=${2:-20000} conns=${3:-50} idle=${4:-10000}
cargo build -q --release -p ferrosip -p transport --examples
tool=target/release/examples/register_load
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

"$tool" certs "$work"
base=$((20000 + RANDOM % 20000))
udp=$base tls=$((base + 1)) wss=$((base + 2))
cat > "$work/ferrosip.toml" <<EOF
[server]
tcp_max_connections = $((idle + 1000))
tcp_max_connections_per_ip = 0
[registrar]
max_bindings_per_source = 0
[relay]
enabled = false
[tls]
certificate = "server.pem"
private_key = "server.key"
EOF
target/release/ferrosip serve --config "$work/ferrosip.toml" --db "$work/ferrosip.db" \
  --api off --listen "udp:127.0.0.1:$udp" --listen "tls:127.0.0.1:$tls" \
  --listen "wss:127.0.0.1:$wss" 2> "$work/server.log" &
server=$!
pids+=("$server")
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$tls") 2>/dev/null && break
  sleep 0.2
done

cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }
pss() { awk '/^Pss:/ {print $2}' "/proc/$server/smaps_rollup"; }
hz=$(getconf CLK_TCK)
echo "REGISTER, $count at $rate/s over $conns connections (sockets for UDP):"
for proto in udp tls wss; do
  case $proto in udp) port=$udp ;; tls) port=$tls ;; wss) port=$wss ;; esac
  before=$(cpu)
  result=$("$tool" load "$proto" "127.0.0.1:$port" "$work/ca.pem" "$conns" "$rate" "$count")
  after=$(cpu)
  awk -v p="$proto" -v r="$result" -v t=$((after - before)) -v n="$count" -v hz="$hz" \
    'BEGIN { printf "  %-4s %s; server CPU %.1f ms per 1000\n", p, r, t * 1000 / hz * 1000 / n }'
done

echo "memory with $idle idle TLS connections:"
before=$(pss)
"$tool" idle tls "127.0.0.1:$tls" "$work/ca.pem" "$idle" 600 > "$work/idle.out" &
pids+=("$!")
for _ in $(seq 600); do
  grep -q '^open' "$work/idle.out" 2>/dev/null && break
  sleep 0.5
done
sleep 2
after=$(pss)
awk -v b="$before" -v a="$after" -v n="$idle" -v o="$(cat "$work/idle.out")" \
  'BEGIN { printf "  %s; server PSS %.1f -> %.1f MB: %.1f kB per connection\n", o, b / 1024, a / 1024, (a - b) / n }'
