#!/usr/bin/env bash
# Two builds of ferrosip side by side, under the same sipp load at the same time: for a
# regression check between two trees on a noisy machine, where runs one after the other
# differ by more than the change being measured (both servers see the same noise here).
#   bench/ab.sh OLD NEW [register|call|talk] [RATE] [COUNT] [RUNS]
# (`talk`: calls that last TALK_MS milliseconds, 2000 unless set: with TALK_MS past
# `[calls] save_after`, each call is also written to the database and removed.)
# OLD and NEW are ferrosip binaries. The two swap ports and start order every run, so that
# neither keeps the better slot. Prints each run's server CPU ticks and NEW/OLD, then the
# mean of the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 mode=${3:-register} rate=${4:-2000} count=${5:-30000} runs=${6:-6}
work=$(mktemp -d)
pids=()
# (set -e holds in the trap too: every command in it must succeed, or the rest is skipped.)
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
sub() { sed "s/\[q\]/1.0/; s/\[expires\]/3600/; s/\[status\]/200/; s/\[pause\]/${TALK_MS:-2000}/; s/\[domain\]/127.0.0.1/g" "tests/sipp/$1" > "$work/$1"; }
sub register.xml
sub uac.xml
sub uac_talk.xml
cp "$work/register.xml" "$work/register-one.xml"
sed -i 's/\[service\]@/[service][call_number]@/g' "$work/register.xml"
common=(-i 127.0.0.1 -nostdin -timeout 600 -recv_timeout 30000)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
base=$((20000 + RANDOM % 20000))

# One sipp is one source: the per-source limit of bindings (which older builds do not
# know) is lifted where the binary knows it.
printf '[registrar]\nmax_bindings_per_source = 0\n' > "$work/limits.toml"
# Starts server $1 on port $2.
start() {
  local config=()
  "$1" check --config "$work/limits.toml" >/dev/null 2>&1 && config=(--config "$work/limits.toml")
  "$1" serve "${config[@]}" --listen "udp:127.0.0.1:$2" --db "$work/db.$2" --api off 2>"$work/log.$2" &
}

# The load on port $1, in the background.
load() {
  local scenario=(-sf "$work/register.xml" -s u)
  [ "$mode" = call ] && scenario=(-sf "$work/uac.xml" -s bob)
  [ "$mode" = talk ] && scenario=(-sf "$work/uac_talk.xml" -s bob)
  sipp "127.0.0.1:$1" "${scenario[@]}" -p $(($1 + 2)) -r "$rate" -m "$count" "${common[@]}" >/dev/null 2>&1 &
}

sum=0
for run in $(seq 1 "$runs"); do
  rm -f "$work"/db.*
  p1=$base p2=$((base + 10))
  # Odd runs: OLD on the first port and started first; even runs: NEW.
  if [ $((run % 2)) = 1 ]; then first=$old second=$new; else first=$new second=$old; fi
  start "$first" $p1
  s1=$!
  start "$second" $p2
  s2=$!
  pids=("$s1" "$s2")
  sleep 1
  uas=()
  if [ "$mode" != register ]; then
    for p in $p1 $p2; do
      sipp "127.0.0.1:$p" -sf "$work/register-one.xml" -s bob -p $((p + 1)) -m 1 "${common[@]}" >/dev/null 2>&1
      sipp -sf tests/sipp/uas.xml -s bob -p $((p + 1)) "${common[@]}" >/dev/null 2>&1 &
      uas+=($!)
    done
    pids+=("${uas[@]}")
  fi
  c1=$(cpu "$s1") c2=$(cpu "$s2")
  load $p1
  l1=$!
  load $p2
  l2=$!
  wait $l1 $l2 || echo "run $run: sipp reported failures" >&2
  d1=$(($(cpu "$s1") - c1)) d2=$(($(cpu "$s2") - c2))
  kill "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null || true
  if [ "$first" = "$old" ]; then o=$d1 n=$d2; else o=$d2 n=$d1; fi
  ratio=$(awk -v n="$n" -v o="$o" 'BEGIN { printf "%.3f", n / o }')
  sum=$(awk -v s="$sum" -v r="$ratio" 'BEGIN { print s + r }')
  echo "run $run ($mode): OLD $o ticks, NEW $n ticks, NEW/OLD $ratio"
done
awk -v s="$sum" -v r="$runs" 'BEGIN { printf "mean NEW/OLD over %d runs: %.3f\n", r, s / r }'
