#!/bin/bash
# eBPF accounting overhead (docs/accounting.md, docs/benchmarks.md): the same workloads
# inside a container with accounting off (ZRUN_ACCOUNTING=off: nothing loaded), on (the
# default: sched/oom tracepoints + cgroup_skb), and on + syscall counting (annotation
# org.zrun.accounting.syscalls=true: sys_enter hook). Modes alternate round by round so
# machine noise hits them alike; the medians are compared as ratios to "off".
#
#   sudo bench/accounting.sh [-z ZRUN] [-p PROBE] [-r ROUNDS] [-b ZRUN_B]
# -b: A/B of two builds' programs: ZRUN_B's default accounting is timed as one more mode,
# "on-b", in the same rounds (e.g. a build of the previous commit).
# Workloads (timed inside the container by zrun-probe `bench`):
#   getpid  N getpid syscalls             (the syscall path)
#   pipe    N pipe round trips parent/child (context switches, wakeups)
#   tcp     N bytes over loopback TCP      (cgroup_skb ingress + egress per packet)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
zrun=$here/build/zrun
probe=$here/build/tests/zrun-probe
rounds=7
zrun_b=
while getopts "z:p:r:b:" o; do
  case $o in
    z) zrun=$OPTARG ;;
    p) probe=$OPTARG ;;
    r) rounds=$OPTARG ;;
    b) zrun_b=$OPTARG ;;
    *) sed -n 2,16p "$0"; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "accounting.sh: needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/zrun-bench-acct.XXXXXX)
trap 'rm -rf "$work"' EXIT
sh "$here/tests/fixtures/make_rootfs.sh" "$work/rootfs" "$probe" >/dev/null
(cd "$work" && "$zrun" spec)
root=$work/root

declare -A N=([getpid]=2000000 [pipe]=50000 [tcp]=1000000000)
modes="off on syscalls"
[ -n "$zrun_b" ] && modes="$modes on-b"

# bundle MODE WORKLOAD -> config.json for it
bundle() {
  python3 - "$work/config.json" "$1" "$2" "${N[$2]}" <<'PY'
import json, sys
path, mode, what, n = sys.argv[1:]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/zrun-probe", "bench", what, n]
c["root"]["readonly"] = False
c["annotations"] = {"org.zrun.accounting.syscalls": "true"} if mode == "syscalls" else {}
json.dump(c, open(path + "." + mode + "." + what, "w"))
PY
}

for w in getpid pipe tcp; do for m in $modes; do bundle "$m" "$w"; done; done

run_one() {  # MODE WORKLOAD -> seconds
  local m=$1 w=$2 b=$work/b.$1.$2
  mkdir -p "$b"
  ln -sfn "$work/rootfs" "$b/rootfs"
  cp "$work/config.json.$m.$w" "$b/config.json"
  local env=() z=$zrun
  [ "$m" = off ] && env=(ZRUN_ACCOUNTING=off)
  [ "$m" = on-b ] && z=$zrun_b
  env "${env[@]}" "$z" --root "$root" run -b "$b" "bench-$m-$w" | sed -n 's/^seconds=//p'
}

declare -A results
for r in $(seq "$rounds"); do
  for w in getpid pipe tcp; do
    for m in $modes; do
      s=$(run_one "$m" "$w")
      results[$m.$w]+="$s "
    done
  done
  echo "round $r done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo
echo "| workload | off (s) | on (s) | on / off | on+syscalls (s) | on+syscalls / off |${zrun_b:+ on-b (s) | on-b / off |}"
echo "|---|---|---|---|---|---|${zrun_b:+---|---|}"
for w in getpid pipe tcp; do
  off=$(echo "${results[off.$w]}" | median)
  on=$(echo "${results[on.$w]}" | median)
  sc=$(echo "${results[syscalls.$w]}" | median)
  onb=$(echo "${results[on-b.$w]:-}" | median)
  awk -v w="$w" -v off="$off" -v on="$on" -v sc="$sc" -v n="${N[$w]}" -v b="${onb:-}" 'BEGIN {
    printf "| %s (%s) | %.4f | %.4f | %.3f | %.4f | %.3f |", w, n, off, on, on / off, sc, sc / off
    if (b != "") printf " %.4f | %.3f |", b, b / off
    printf "\n" }'
done
if mount | grep -q "$root"; then echo "accounting.sh: bpffs left mounted under $root" >&2; exit 1; fi
