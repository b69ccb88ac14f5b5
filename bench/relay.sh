#!/usr/bin/env bash
# The media relay beside rtpengine (userspace forwarding), both driven over ng by the same
# load tool (crates/relay-net/examples/relay_load.rs) in one run: for each stream count,
# packets sent and lost, the latency the relay adds (p50/p99, from the send to the kernel's
# arrival stamp at the receiver) and its CPU time per relayed packet; first the same
# streams phone to phone with no relay ("direct": the kernel's own path). With two cores or
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
load=("${load_cpu[@]}" "$target/release/examples/relay_load")
# One measurement on a relay started for it (a relay that served a run before can behave
# differently: rtpengine loses most packets of a second run).
measure() {
  local relay=$1 n=$2 pid port
  port=$([ "$relay" = ferrosip ] && echo 22301 || echo 22302)
  start_relay "$relay" "$port"
  pid=$relay_pid
  printf '%-9s ' "$relay"
  "${load[@]}" --ng "127.0.0.1:$port" --streams "$n" --seconds "$seconds" --pid "$pid" |
    sed "s/^/$relay /" | tee -a "$dir/results" | cut -d' ' -f2-
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}
for n in "${streams[@]}"; do
  # Without a relay: the latency of the kernel's path by itself.
  printf '%-9s ' direct
  "${load[@]}" --direct --streams "$n" --seconds "$seconds"
  for round in $(seq "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then
      measure ferrosip "$n"
      measure rtpengine "$n"
    else
      measure rtpengine "$n"
      measure ferrosip "$n"
    fi
  done
done
echo "medians of $rounds rounds (CPU per packet in µs, latency in µs, loss in %):"
for n in "${streams[@]}"; do
  for relay in ferrosip rtpengine; do
    grep "^$relay streams=$n " "$dir/results" | sed 's/[a-z_0-9]*=//g; s/[()%]//g' |
      awk -v r="$relay" -v n="$n" '{cpu[NR]=$NF; p50[NR]=$8; p99[NR]=$9; loss[NR]=$6}
        function med(a,  k,i,j,t) { k=NR; for(i=1;i<=k;i++) for(j=i+1;j<=k;j++) if(a[j]<a[i]){t=a[i];a[i]=a[j];a[j]=t}; return a[int((k+1)/2)] }
        END { printf "%-9s streams=%-5s cpu_us_per_packet=%s p50=%s p99=%s lost=%s\n", r, n, med(cpu), med(p50), med(p99), med(loss) }'
  done
done
