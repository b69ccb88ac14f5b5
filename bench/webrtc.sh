#!/usr/bin/env bash
# The media relay beside rtpengine (userspace forwarding) bridging browsers' WebRTC to
# phones' plain RTP, both driven over ng with Kamailio's WebRTC gateway flags by the same
# load tool (crates/relay-net/examples/webrtc_load.rs) in one run: per call a browser (in
# memory, on its own UDP socket) offers, a phone answers RTP/AVP, the browser does ICE and
# DTLS-SRTP with the relay's candidate; then G.711 RTP both ways, SRTP from the browsers and
# plain from the phones, so that each relayed packet is decrypted or encrypted once. For
# each stream count: the handshakes done, packets sent and lost (at a browser only what
# authenticates counts), the latency the relay adds (p50/p99) and its CPU time per relayed
# packet, and the ratio of ferrosip's to rtpengine's (the goal: at most 1, no loss). As in
# bench/relay.sh: with two cores or more the relays run on the last core and the load tool
# on the others; ROUNDS (default 3) repeats each measurement on a relay started for it,
# alternating the relays, and the summary gives the medians; PRIORITY (default 10; 0:
# normal scheduling) runs both relays' packet threads under SCHED_FIFO (needs root).
# rtpengine makes its own DTLS certificate (prime256v1) at start; it and ferrosip both
# negotiate AEAD_AES_256_GCM with the load tool's browsers. Needs rtpengine (Debian
# rtpengine-daemon). CARGO_TARGET_DIR is followed.
#
#   bench/webrtc.sh [SECONDS] [STREAMS...]      e.g. ROUNDS=3 bench/webrtc.sh 10 200
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true
streams=("${@:-200}")
[ $# -eq 0 ] && streams=(200)
rounds=${ROUNDS:-3}
priority=${PRIORITY:-10}
source bench/relays.sh
load=("${load_cpu[@]}" "$target/release/examples/webrtc_load")
# One measurement on a relay started for it (a relay that served a run before can behave
# differently: rtpengine loses most packets of a second run).
measure() {
  local relay=$1 n=$2 pid port
  port=$([ "$relay" = ferrosip ] && echo 22311 || echo 22312)
  start_relay "$relay" "$port"
  pid=$relay_pid
  printf '%-9s ' "$relay"
  # Its notes (handshakes, failures) go to the summary, by relay.
  "${load[@]}" --ng "127.0.0.1:$port" --streams "$n" --seconds "$seconds" --pid "$pid" \
    2> >(sed "s/^/$relay streams=$n: /" >>"$dir/load.log") | sed "s/^/$relay /" |
    sed "s/ path_cpu_ms=.*//" | tee -a "$dir/results" | cut -d' ' -f2- ||
    echo "  (the load tool failed or not all handshakes completed: its notes follow the runs)"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}
for n in "${streams[@]}"; do
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
# What the load tool said about the handshakes; what either relay warned of.
sed 's/^/load tool: /' "$dir/load.log"
for relay in ferrosip rtpengine; do
  log="$dir/$relay.log"
  bad=$(grep -cE 'ERR|CRIT|ALERT|WARN' "$log" || true)
  echo "$relay log: $bad lines of warnings or errors"
  grep -E 'ERR|CRIT|ALERT|WARN' "$log" | sed 's/^\[[0-9.]*\] //; s/^[0-9T:.-]*Z //' |
    sed 's/wload-[0-9]*-[0-9]*/wload-…/g' | sort | uniq -c | sort -rn | head -5 || true
done
echo "medians of $rounds rounds (lost: median, and the worst round; CPU per packet in µs):"
printf '%-9s %7s %10s %10s %7s %10s %10s %9s %9s %8s %13s %6s\n' relay streams handshakes packets \
  lost lost% worst_lost p50_us p99_us cpu_us cpu_range ratio
for n in "${streams[@]}"; do
  ours=$(grep "^ferrosip streams=$n " "$dir/results" | awk '{print $NF}' | sed 's/.*=//' |
    sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  theirs=$(grep "^rtpengine streams=$n " "$dir/results" | awk '{print $NF}' | sed 's/.*=//' |
    sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  for relay in ferrosip rtpengine; do
    grep "^$relay streams=$n " "$dir/results" | sed 's/[a-z_0-9]*=//g; s/[()%]//g' |
      awk -v r="$relay" -v n="$n" -v ours="$ours" -v theirs="$theirs" \
        '{sent[NR]=$3; lost[NR]=$5; pct[NR]=$6; p50[NR]=$8; p99[NR]=$9; cpu[NR]=$NF
          if (NR==1 || $5>worst) worst=$5; if (NR==1 || $12<fewest) fewest=$12
          if (NR==1 || $NF<lo) lo=$NF; if (NR==1 || $NF>hi) hi=$NF}
        function med(a,  k,i,j,t) { k=NR; for(i=1;i<=k;i++) for(j=i+1;j<=k;j++) if(a[j]<a[i]){t=a[i];a[i]=a[j];a[j]=t}; return a[int((k+1)/2)] }
        END {
          ratio = (r == "ferrosip" && theirs > 0) ? sprintf("%.2f", ours / theirs) : "-"
          printf "%-9s %7s %10s %10s %7s %10s %10s %9s %9s %8s %13s %6s\n", r, n, fewest "/" n,
            med(sent), med(lost), med(pct), worst, med(p50), med(p99), med(cpu), lo "-" hi, ratio }'
  done
done
