#!/usr/bin/env bash
# The media relay beside rtpengine (userspace forwarding), both driven over ng by the same
# load tool (crates/relay-net/examples/relay_load.rs) in one run: for each stream count,
# packets sent and lost, the latency the relay adds (p50/p99, from the send to the kernel's
# arrival stamp at the receiver), the relay process's CPU time per relayed packet, and the
# CPU per packet of the packets' whole path (the load tool, the relay, the kernel's softirq
# threads) beyond the same streams phone to phone with no relay ("direct": the kernel's own
# path), measured first in each round. The last is the one to compare: forwarding in the
# kernel (ferrosip-kernel, `[relay] kernel_forwarding`) runs in the sender's time, which the
# relay process's figure does not see. RELAYS (default
# "ferrosip ferrosip-kernel rtpengine") says which to measure. With two cores or
# more, the relays run on the last core and the load tool on the others, so that the
# latency is the relay's, not the wait for a core the load tool holds. ROUNDS (default 3)
# repeats each measurement, alternating the relays, and the summary gives the medians.
# PRIORITY (default 10; 0: normal scheduling) runs both relays' packet threads under
# SCHED_FIFO at that priority (ferrosip's [relay] realtime_priority, rtpengine's
# --scheduling=fifo --priority): without it, kernel threads (kdamond, rcu) that take the
# relay's core for 1-8 ms put milliseconds into the p99 of either. Needs root for that.
# Needs rtpengine (Debian rtpengine-daemon).
#
#   bench/relay.sh [SECONDS] [STREAMS...]      e.g. ROUNDS=3 bench/relay.sh 10 200 1000
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true
streams=("${@:-200 1000}")
[ $# -eq 0 ] && streams=(200 1000)
rounds=${ROUNDS:-3}
priority=${PRIORITY:-10}
source bench/relays.sh
read -r -a relays <<< "${RELAYS:-ferrosip ferrosip-kernel rtpengine}"
load=("${load_cpu[@]}" "$target/release/examples/relay_load")
# One measurement on a relay started for it (a relay that served a run before can behave
# differently: rtpengine loses most packets of a second run).
measure() {
  local relay=$1 n=$2 pid port=22301
  [ "$relay" = rtpengine ] && port=22302
  start_relay "$relay" "$port"
  pid=$relay_pid
  printf '%-15s ' "$relay"
  "${load[@]}" --ng "127.0.0.1:$port" --streams "$n" --seconds "$seconds" --pid "$pid" |
    sed "s/^/$relay /" | tee -a "$dir/results" | cut -d' ' -f2-
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}
for n in "${streams[@]}"; do
  for round in $(seq "$rounds"); do
    # Without a relay: the latency and CPU of the kernel's path by itself.
    printf '%-15s ' direct
    "${load[@]}" --direct --streams "$n" --seconds "$seconds" | sed 's/^/direct /' |
      tee -a "$dir/results" | cut -d' ' -f2-
    # Each round in another order.
    order=("${relays[@]}")
    for _ in $(seq $(((round - 1) % ${#relays[@]}))); do order=("${order[@]:1}" "${order[0]}"); done
    for relay in "${order[@]}"; do measure "$relay" "$n"; done
  done
done
echo "medians of $rounds rounds (CPU per packet in µs: the relay process's, and the whole path's beyond direct's; latency in µs; loss in %):"
for n in "${streams[@]}"; do
  for relay in "${relays[@]}"; do
    awk -v r="$relay" -v n="$n" '
      function med(a, k,  i,j,t) { for(i=1;i<=k;i++) for(j=i+1;j<=k;j++) if(a[j]<a[i]){t=a[i];a[i]=a[j];a[j]=t}; return a[int((k+1)/2)] }
      { delete f; for (i = 2; i <= NF; i++) if (split($i, kv, "=") == 2) f[kv[1]] = kv[2] }
      $1 == "direct" && f["streams"] == n { d[++nd] = f["path_us_per_packet"] }
      $1 == r && f["streams"] == n {
        k++; cpu[k] = f["cpu_us_per_packet"]; sys[k] = f["path_us_per_packet"]
        p50[k] = f["p50"]; p99[k] = f["p99"]; loss[k] = f["lost"] * 100 / f["sent"]
      }
      END { base = med(d, nd); printf "%-15s streams=%-5s cpu_us_per_packet=%s path_us_per_packet_beyond_direct=%.2f p50=%s p99=%s lost=%.3f\n", r, n, med(cpu, k), med(sys, k) - base, med(p50, k), med(p99, k), med(loss, k) }' "$dir/results"
  done
done
