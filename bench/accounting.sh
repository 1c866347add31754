#!/bin/bash
# eBPF accounting overhead (docs/accounting.md, docs/benchmarks.md): the same workloads
# inside a container with accounting off (ZRUN_ACCOUNTING=off: nothing loaded), on (the
# default: sched/oom tracepoints + cgroup_skb), and on + syscall counting (annotation
# org.zrun.accounting.syscalls=true: sys_enter hook). Modes alternate round by round so
# machine noise hits them alike; the medians are compared as ratios to "off".
#
#   sudo bench/accounting.sh [-z ZRUN] [-p PROBE] [-r ROUNDS]
# Workloads (timed inside the container by zrun-probe `bench`):
#   getpid  N getpid syscalls             (the syscall path)
#   pipe    N pipe round trips parent/child (context switches, wakeups)
#   tcp     N bytes over loopback TCP      (cgroup_skb ingress + egress per packet)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
zrun=$here/build/zrun
probe=$here/build/tests/zrun-probe
rounds=7
while getopts "z:p:r:" o; do
  case $o in
    z) zrun=$OPTARG ;;
    p) probe=$OPTARG ;;
    r) rounds=$OPTARG ;;
    *) sed -n 2,14p "$0"; exit 2 ;;
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
  local env=()
  [ "$m" = off ] && env=(ZRUN_ACCOUNTING=off)
  env "${env[@]}" "$zrun" --root "$root" run -b "$b" "bench-$m-$w" | sed -n 's/^seconds=//p'
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
echo "| workload | off (s) | on (s) | on / off | on+syscalls (s) | on+syscalls / off |"
echo "|---|---|---|---|---|---|"
for w in getpid pipe tcp; do
  off=$(echo "${results[off.$w]}" | median)
  on=$(echo "${results[on.$w]}" | median)
  sc=$(echo "${results[syscalls.$w]}" | median)
  awk -v w="$w" -v off="$off" -v on="$on" -v sc="$sc" -v n="${N[$w]}" 'BEGIN {
    printf "| %s (%s) | %.4f | %.4f | %.3f | %.4f | %.3f |\n", w, n, off, on, on / off, sc, sc / off }'
done
if mount | grep -q "$root"; then echo "accounting.sh: bpffs left mounted under $root" >&2; exit 1; fi
