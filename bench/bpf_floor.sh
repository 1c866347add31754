#!/bin/bash
# The floor under zrun's accounting overhead (docs/benchmarks.md): what ANY eBPF program on
# the same tracepoints costs on this kernel/VM. The getpid and pipe ping-pong loops of
# bench/accounting.sh (zrun-probe `bench`, run on the host, no container) are timed with
#   none    no program attached by us
#   empty   `r0 = 0; exit` on the tracepoint (raw_tracepoint, the program type zrun uses)
#   cgid    bpf_get_current_cgroup_id() only
#   lookup  bpf_get_current_cgroup_id() + one miss in an empty hash map: zrun's path for
#           a task of an untracked cgroup before the per-CPU caches
#   cache   one array + one per-CPU array lookup (inlined) and a compare: a lookup with no
#           call at all (zrun's sched_switch path; on sys_enter zrun needs the cgroup-id
#           call too, i.e. "cgid" plus inlined lookups: docs/accounting.md)
# getpid runs with the program on sys_enter (zrun's opt-in syscall counting), pipe with
# it on sched_switch (zrun's default accounting); tcp (1 GB over loopback) only with the
# empty program as cgroup_skb ingress + egress of a new cgroup the workload runs in
# (zrun's network counting). Modes alternate round by round; the
# medians are compared as ratios to "none" and as ns per getpid / round trip / packet.
#
#   sudo bench/bpf_floor.sh [-p PROBE] [-r ROUNDS]
# The loader (bench/bpf_floor_loader.c, built here with cc) holds the links as file
# descriptors only: nothing is pinned or mounted, and everything is detached when it exits.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
probe=$here/build/tests/zrun-probe
rounds=9
while getopts "p:r:" o; do
  case $o in
    p) probe=$OPTARG ;;
    r) rounds=$OPTARG ;;
    *) sed -n 2,16p "$0"; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bpf_floor.sh: needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/zrun-bench-floor.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/loader" "$here/bench/bpf_floor_loader.c"

declare -A N=([getpid]=2000000 [pipe]=50000 [tcp]=1000000000)
declare -A TP=([getpid]=sys_enter [pipe]=sched_switch [tcp]=cgroup_skb)
# Per op: per getpid, per round trip, per cgroup_skb run (zrun's own counters saw 46,209
# packets each way for the 1 GB stream: 64 KiB sends over the 64 KiB loopback MTU).
declare -A OPS=([getpid]=2000000 [pipe]=50000 [tcp]=92418)
declare -A MODES=([getpid]="none empty cgid lookup cache" [pipe]="none empty cgid lookup cache"
  [tcp]="none empty")

run_one() {  # MODE WORKLOAD -> seconds
  local m=$1 w=$2 cmd=("$probe" bench "$2" "${N[$2]}")
  if [ "$m" = none ]; then
    "${cmd[@]}"
  else
    "$work/loader" "$m" "${TP[$w]}" -- "${cmd[@]}"
  fi | sed -n 's/^seconds=//p'
}

declare -A results
for r in $(seq "$rounds"); do
  for w in getpid pipe tcp; do
    for m in ${MODES[$w]}; do results[$m.$w]+="$(run_one "$m" "$w") "; done
  done
  echo "round $r done" >&2
done

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo
echo "| workload (program on) | none (s) | empty: s, ratio, +ns/op | cgid: s, ratio, +ns/op | lookup: s, ratio, +ns/op | cache: s, ratio, +ns/op |"
echo "|---|---|---|---|---|---|"
for w in getpid pipe tcp; do
  none=$(echo "${results[none.$w]}" | median)
  row="| $w × ${N[$w]} (${TP[$w]}) | $(printf %.4f "$none") |"
  for m in empty cgid lookup cache; do
    t=$(echo "${results[$m.$w]:-}" | median)
    [ -z "$t" ] && { row+=" — |"; continue; }
    row+=$(awk -v a="$none" -v t="$t" -v n="${OPS[$w]}" \
      'BEGIN { printf " %.4f, %.3f, %+.0f |", t, t / a, (t - a) / n * 1e9 }')
  done
  echo "$row"
done
