#!/usr/bin/env bash
# The media relay beside rtpengine (userspace forwarding), both driven over ng by the same
# load tool (crates/relay-net/examples/relay_load.rs) in one run: for each stream count,
# packets sent and lost, the latency the relay adds (p50/p99) and its CPU time per relayed
# packet; first the same streams phone to phone with no relay ("direct"), whose latency is
# the load tool's own on this machine. Needs rtpengine (Debian rtpengine-daemon).
#
#   bench/relay.sh [SECONDS] [STREAMS...]      e.g. bench/relay.sh 10 200 1000
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true
streams=("${@:-200 1000}")
[ $# -eq 0 ] && streams=(200 1000)
cargo build --release -q -p ferrosip -p relay-net --bins --examples
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/relay.toml" <<TOML
[relay]
bind = "127.0.0.1"
ports = "30000-39999"
TOML
target/release/ferrosip relay --config "$dir/relay.toml" --ng 127.0.0.1:22301 2>"$dir/ferrosip.log" &
ferrosip=$!
rtpengine --interface=127.0.0.1 --listen-ng=127.0.0.1:22302 --port-min=40000 --port-max=49999 \
  --foreground --log-stderr --log-level=4 --table=-1 --pidfile="$dir/rtpengine.pid" 2>"$dir/rtpengine.log" &
rtpengine=$!
sleep 1
for n in "${streams[@]}"; do
  # Without a relay: the latency the load tool adds by itself.
  printf '%-9s ' direct
  target/release/examples/relay_load --direct --streams "$n" --seconds "$seconds"
  for relay in ferrosip rtpengine; do
    case $relay in
      ferrosip) port=22301 pid=$ferrosip ;;
      rtpengine) port=22302 pid=$rtpengine ;;
    esac
    printf '%-9s ' "$relay"
    target/release/examples/relay_load --ng "127.0.0.1:$port" --streams "$n" --seconds "$seconds" --pid "$pid"
  done
done
