#!/bin/bash
# bench/checkpoint.sh — checkpoint/restore time of a container with N MiB of touched
# anonymous memory (the static probe's `pattern N`), to tmpfs and to disk.
#
# Usage: bench/checkpoint.sh [-z ZRUN] [-p PROBE] [-s "64 256 1024"] [-d "/dev/shm /var/tmp"] [-i]
# Prints one line per size and target: checkpoint seconds (wall time of the command, kill
# of the container included), GB/s of memory dumped, the freeze time the engine reports
# (`--debug`: from the freeze until the image is written), restore seconds and GB/s.
# With -i, also an incremental line per size and target: `--pre-dump`, then (the probe
# only reads its memory meanwhile) the final dump with `--parent-path`: its wall time and
# freeze time, and the restore through the parent.
# Root required. Every container gets a private --root; all is removed.
set -euo pipefail
zrun=./build/zrun probe=./build/tests/zrun-probe sizes="64 256 1024" targets="/dev/shm /var/tmp"
incremental=0
while getopts "z:p:s:d:i" o; do
  case $o in
    z) zrun=$OPTARG ;; p) probe=$OPTARG ;; s) sizes=$OPTARG ;; d) targets=$OPTARG ;;
    i) incremental=1 ;;
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
  for t in $targets; do rm -rf "$t/zrun-bench-img.$$" "$t/zrun-bench-pre.$$"; done
}
trap cleanup EXIT
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work/b"
sh "$src/tests/fixtures/make_rootfs.sh" "$work/b/rootfs" "$probe" >/dev/null
(cd "$work/b" && "$zrun" spec)
now() { date +%s.%N; }
# checkpoint ARGS...: runs it with --debug, prints the engine's frozen milliseconds.
ckpt() {
  "$zrun" --debug --root "$root" checkpoint "$@" 2>"$work/ck.log" || { cat "$work/ck.log"; exit 1; }
  sed -n 's/.*checkpoint timing: frozen \([0-9.]*\) ms.*/\1/p' "$work/ck.log" | tail -1
}
printf "%-6s %-10s %-5s %10s %8s %9s %10s %8s\n" MiB target kind ckpt_s GB/s frozen_ms restore_s GB/s
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
    for kind in full incr; do
      [ $kind = incr ] && [ $incremental = 0 ] && continue
      img=$t/zrun-bench-img.$$ pre=$t/zrun-bench-pre.$$
      rm -rf "$img" "$pre" "$work/b/rootfs/tmp/pattern"
      "$zrun" --root "$root" run -d -b "$work/b" bench </dev/null >/dev/null 2>&1
      for _ in $(seq 600); do [ -s "$work/b/rootfs/tmp/pattern" ] && break; sleep 0.05; done
      if [ $kind = incr ]; then
        ckpt --pre-dump --image-path "$pre" bench >/dev/null
        sleep 0.5
      fi
      t0=$(now)
      if [ $kind = incr ]; then
        frozen=$(ckpt --image-path "$img" --parent-path "$pre" bench)
      else
        frozen=$(ckpt --image-path "$img" bench)
      fi
      t1=$(now)
      "$zrun" --root "$root" restore -d -b "$work/b" --image-path "$img" bench </dev/null \
        >/dev/null 2>&1
      t2=$(now)
      "$zrun" --root "$root" delete -f bench
      rm -rf "$img" "$pre"
      awk -v m="$mib" -v t="$t" -v k="$kind" -v f="$frozen" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
        g = m / 1024 * 1.073741824;
        printf "%-6d %-10s %-5s %10.3f %8.2f %9.1f %10.3f %8.2f\n", m, t, k, b - a, g / (b - a), f, c - b, g / (c - b) }'
    done
  done
done
