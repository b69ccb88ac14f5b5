# What bench/relay.sh and bench/webrtc.sh share, sourced once they have set `priority`: the
# release build, a work folder removed at exit, the cores (with two or more, the relays on
# the last and the load tool on the others), ferrosip's relay configuration, and
# `start_relay NAME PORT`, which starts ferrosip (ferrosip-kernel: with its kernel path) or
# rtpengine with ng on 127.0.0.1:PORT (its pid in `relay_pid`). CARGO_TARGET_DIR is
# followed.
rtpengine_sched=()
[ "$priority" -gt 0 ] && rtpengine_sched=(--scheduling=fifo --priority="$priority")
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p ferrosip -p relay-net --bins --examples
dir=$(mktemp -d)
# On failure, the relays' last words first.
trap 'rc=$?; kill $(jobs -p) 2>/dev/null || true
  [ "$rc" -ne 0 ] && tail -n 20 "$dir"/*.log >&2; rm -rf "$dir"' EXIT
cores=$(nproc)
relay_cpu=() load_cpu=()
if [ "$cores" -ge 2 ]; then
  relay_cpu=(taskset -c $((cores - 1)))
  load_cpu=(taskset -c 0-$((cores - 2)))
fi
cat > "$dir/relay.toml" <<TOML
[relay]
bind = "127.0.0.1"
ports = "30000-39999"
realtime_priority = $priority
TOML
{ cat "$dir/relay.toml"; echo "kernel_forwarding = true"; } > "$dir/relay-kernel.toml"

start_relay() {
  case $1 in
    ferrosip | ferrosip-kernel)
      local toml=$dir/relay.toml
      [ "$1" = ferrosip-kernel ] && toml=$dir/relay-kernel.toml
      "${relay_cpu[@]}" "$target/release/ferrosip" relay --config "$toml" \
        --ng "127.0.0.1:$2" 2>>"$dir/ferrosip.log" &
      ;;
    rtpengine)
      # --table=-1: no kernel forwarding (userspace, as ferrosip; it could not do SRTP
      # anyway). It makes its own DTLS certificate at start.
      "${relay_cpu[@]}" rtpengine --interface=127.0.0.1 --listen-ng="127.0.0.1:$2" \
        --port-min=40000 --port-max=49999 --foreground --log-stderr --log-level=4 --table=-1 \
        --pidfile="$dir/rtpengine.pid" "${rtpengine_sched[@]}" 2>>"$dir/rtpengine.log" &
      ;;
  esac
  relay_pid=$!
  sleep 2
}
