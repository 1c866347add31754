#!/bin/bash
# bench/checkpoint.sh — checkpoint/restore time of a container with N MiB of touched
# anonymous memory (the static probe's `pattern N`), to tmpfs and to disk.
#
# Usage: bench/checkpoint.sh [-z ZRUN] [-p PROBE] [-s "64 256 1024"] [-d "/dev/shm /var/tmp"]
# Prints one line per size and target: checkpoint seconds, GB/s of memory dumped (the
# container is stopped for the whole dump, so this is also the freeze time), restore
# seconds and GB/s. Root required. Every container gets a private --root; all is removed.
set -euo pipefail
zrun=./build/zrun probe=./build/tests/zrun-probe sizes="64 256 1024" targets="/dev/shm /var/tmp"
while getopts "z:p:s:d:" o; do
  case $o in
    z) zrun=$OPTARG ;; p) probe=$OPTARG ;; s) sizes=$OPTARG ;; d) targets=$OPTARG ;;
    *) exit 2 ;;
  esac
done
zrun=$(realpath "$zrun") probe=$(realpath "$probe")
work=$(mktemp -d /tmp/zrun-bench-ckpt.XXXXXX)
root=$work/root
cleanup() {
  for id in $("$zrun" --root "$root" list -q 2>/dev/null); do
    "$zrun" --root "$root" delete -f "$id" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
  for t in $targets; do rm -rf "$t/zrun-bench-img.$$"; done
}
trap cleanup EXIT
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work/b"
sh "$src/tests/fixtures/make_rootfs.sh" "$work/b/rootfs" "$probe" >/dev/null
(cd "$work/b" && "$zrun" spec)
now() { date +%s.%N; }
printf "%-6s %-10s %10s %8s %10s %8s\n" MiB target ckpt_s GB/s restore_s GB/s
for mib in $sizes; do
  python3 - "$work/b/config.json" "$mib" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["/bin/zrun-probe", "pattern", sys.argv[2]]
c["process"]["terminal"] = False
c["root"]["readonly"] = False
json.dump(c, open(sys.argv[1], "w"))
PY
  for t in $targets; do
    img=$t/zrun-bench-img.$$
    rm -rf "$img" "$work/b/rootfs/tmp/pattern"
    "$zrun" --root "$root" run -d -b "$work/b" bench </dev/null >/dev/null 2>&1
    for _ in $(seq 600); do [ -s "$work/b/rootfs/tmp/pattern" ] && break; sleep 0.05; done
    t0=$(now)
    "$zrun" --root "$root" checkpoint --image-path "$img" bench
    t1=$(now)
    "$zrun" --root "$root" restore -d -b "$work/b" --image-path "$img" bench </dev/null \
      >/dev/null 2>&1
    t2=$(now)
    "$zrun" --root "$root" delete -f bench
    rm -rf "$img"
    awk -v m="$mib" -v t="$t" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
      g = m / 1024 * 1.073741824;
      printf "%-6d %-10s %10.3f %8.2f %10.3f %8.2f\n", m, t, b - a, g / (b - a), c - b, g / (c - b) }'
  done
done
