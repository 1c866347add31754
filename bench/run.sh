#!/bin/bash
# bench/run.sh — side-by-side container start-up benchmark: zrun vs runc vs crun.
#
# Usage: bench/run.sh [-n RUNS] [-z ZRUN] [-r "zrun runc crun"] [-k]
#   -n RUNS   measured runs per benchmark (default 100; warm-up runs: RUNS/10)
#   -z ZRUN   path of the zrun binary (default ./build/zrun, then `zrun` in PATH)
#   -r LIST   runtimes to compare (default "zrun runc crun"; missing ones are skipped)
#   -k        keep the work directory (bundle, hyperfine JSON/CSV exports)
#
# Per runtime (each with its own --root in a temp dir, all on one busybox bundle):
#   run     100 sequential `run` of /bin/true (hyperfine -N: no shell in the measurement)
#   cycle   `create` + `start` + `delete --force` (the container's /bin/true has usually
#           exited by the time delete runs; --force only matters if it has not); measured
#           through `sh -c`, whose start-up hyperfine calibrates and subtracts
#   rss     peak RSS (KiB) of one `run`, from /usr/bin/time -f %M (the runtime process and
#           every descendant it reaped, i.e. runtime helpers but not the container payload
#           once it is reparented)
# plus the bare kernel cost: `unshare -pmnuif --fork chroot ROOTFS /bin/true`.
#
# crun 1.8 refuses hybrid cgroups (KERNEL-NOTES.md); its benchmarks run with hyperfine
# itself inside ONE private mount namespace where /sys/fs/cgroup/unified is covered by a
# tmpfs, so no per-iteration unshare cost is charged to crun.
#
# Output: a plain table and the same as markdown (paste into docs/benchmarks.md).
set -euo pipefail

RUNS=100
ZRUN=""
RUNTIMES="zrun runc crun"
KEEP=0
while getopts "n:z:r:kh" opt; do
  case $opt in
    n) RUNS=$OPTARG ;;
    z) ZRUN=$OPTARG ;;
    r) RUNTIMES=$OPTARG ;;
    k) KEEP=1 ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
  esac
done
WARMUP=$(( RUNS / 10 > 0 ? RUNS / 10 : 1 ))

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: must run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench/run.sh: hyperfine not found" >&2; exit 1; }

if [ -z "$ZRUN" ]; then
  if [ -x "$src/build/zrun" ]; then ZRUN="$src/build/zrun"; else ZRUN=$(command -v zrun || true); fi
fi

work=$(mktemp -d /tmp/zrun-bench.XXXXXX)
cleanup() {
  # Containers are deleted by the benchmarks themselves; just in case, force-delete ours.
  for r in "$work"/root-*; do
    [ -d "$r" ] || continue
    name=${r##*/root-}
    bin=$(runtime_bin "$name" 2>/dev/null || true)
    [ -n "$bin" ] && for c in "$r"/*/; do
      [ -d "$c" ] || continue
      if [ "$name" = crun ]; then
        crun_ns "$bin" --root "$r" delete --force "$(basename "$c")" >/dev/null 2>&1 || true
      else
        "$bin" --root "$r" delete --force "$(basename "$c")" >/dev/null 2>&1 || true
      fi
    done
  done
  # A runtime that fails mid-create may leak its (empty) cgroups: rmdir ours, deepest first.
  find /sys/fs/cgroup -maxdepth 4 -type d -name "bench-*-$$*" 2>/dev/null |
    awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2- | xargs -r rmdir 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

runtime_bin() {
  case $1 in
    zrun) [ -n "$ZRUN" ] && [ -x "$ZRUN" ] && echo "$ZRUN" ;;
    *) command -v "$1" ;;
  esac
}

# --- bundle: busybox rootfs + a fixed config.json (runc's default spec, /bin/true) ---
bundle=$work/bundle
"$src/tests/fixtures/make_rootfs.sh" "$bundle/rootfs" >/dev/null
cat >"$bundle/config.json" <<'EOF'
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["/bin/true"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "bench",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                   {"type": "mount"}],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                    "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
EOF

# Wrap a command line so it runs in the crun-compatible private mount namespace.
crun_ns() {
  unshare -m --propagation private sh -c 'mount -t tmpfs none /sys/fs/cgroup/unified && exec "$@"' sh "$@"
}

results=$work/results.tsv   # name<TAB>median_ms<TAB>mean_ms<TAB>stddev_ms
: >"$results"

# measure NAME WRAP HYPERFINE-ARGS... : run hyperfine (in the crun namespace if WRAP=crun),
# record its median/mean/stddev in $results.
measure() {
  local name=$1 wrap=$2; shift 2
  local csv=$work/$name.csv
  local -a cmd=(hyperfine --style basic --runs "$RUNS" --warmup "$WARMUP" --export-csv "$csv"
                --export-json "$work/$name.json" "$@")
  echo "== $name" >&2
  # A failing command aborts hyperfine: report it and go on with the other benchmarks.
  local rc=0
  if [ "$wrap" = crun ]; then crun_ns "${cmd[@]}" >&2 || rc=$?; else "${cmd[@]}" >&2 || rc=$?; fi
  if [ "$rc" != 0 ] || [ ! -s "$csv" ]; then
    echo "bench/run.sh: $name FAILED (hyperfine exit $rc; rerun the command by hand)" >&2
    printf '%s\tFAIL\tFAIL\tFAIL\n' "$name" >>"$results"
    return 0
  fi
  # CSV: command,mean,stddev,median,user,system,min,max (seconds)
  awk -F, -v n="$name" 'NR==2 { printf "%s\t%.2f\t%.2f\t%.2f\n", n, $4*1000, $2*1000, $3*1000 }' \
    "$csv" >>"$results"
}

declare -A rss
for rt in $RUNTIMES; do
  bin=$(runtime_bin "$rt" || true)
  if [ -z "$bin" ]; then echo "skipping $rt: not found" >&2; continue; fi
  root=$work/root-$rt
  mkdir -p "$root"
  wrap=none; [ "$rt" = crun ] && wrap=crun
  id=bench-$rt-$$
  measure "$rt.run" $wrap -N "$bin --root $root run -b $bundle $id"
  measure "$rt.cycle" $wrap \
    "$bin --root $root create -b $bundle $id && $bin --root $root start $id && $bin --root $root delete --force $id"
  if [ "$wrap" = crun ]; then
    rss[$rt]=$(crun_ns /usr/bin/time -f %M "$bin" --root "$root" run -b "$bundle" "$id-rss" 2>&1 >/dev/null | tail -1 || true)
  else
    rss[$rt]=$(/usr/bin/time -f %M "$bin" --root "$root" run -b "$bundle" "$id-rss" 2>&1 >/dev/null | tail -1 || true)
  fi
done
measure "kernel.unshare" none -N "unshare -pmnuif --fork chroot $bundle/rootfs /bin/true"

# --- report ---
median() { awk -F'\t' -v n="$1" '$1==n {print $2}' "$results"; }
ratio() { # ratio A B -> A/B or "-"
  case "$1$2" in *FAIL*) echo "-"; return ;; esac
  if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; else echo "-"; fi
}

kernel=$(median kernel.unshare)
{
  echo "## Container start-up: zrun vs runc vs crun"
  echo
  echo "$(date -u +%Y-%m-%d) on $(uname -r), $(nproc) CPUs; $RUNS runs each (hyperfine, median)."
  echo "Versions: $(for rt in $RUNTIMES; do b=$(runtime_bin "$rt" || true); [ -n "$b" ] && printf '%s ' "$("$b" --version 2>/dev/null | head -1 | tr -s ' ')"; done)"
  echo
  echo "| runtime | run /bin/true (ms) | vs crun | vs runc | create+start+delete (ms) | vs crun | vs runc | peak RSS (KiB) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for rt in $RUNTIMES; do
    r=$(median "$rt.run"); c=$(median "$rt.cycle")
    [ -z "$r" ] && continue
    echo "| $rt | $r | $(ratio "$r" "$(median crun.run)") | $(ratio "$r" "$(median runc.run)") | $c | $(ratio "$c" "$(median crun.cycle)") | $(ratio "$c" "$(median runc.cycle)") | ${rss[$rt]:-?} |"
  done
  echo
  echo "Bare kernel cost (\`unshare -pmnuif --fork chroot rootfs /bin/true\`): $kernel ms."
  echo "crun ran in a private mount namespace with /sys/fs/cgroup/unified hidden (hybrid-cgroup"
  echo "workaround); \`create+start+delete\` is measured via \`sh -c\` with the shell start-up subtracted."
} >"$work/report.md"

echo
printf '%-16s %10s %10s %10s\n' benchmark median_ms mean_ms stddev_ms
awk -F'\t' '{ printf "%-16s %10s %10s %10s\n", $1, $2, $3, $4 }' "$results"
echo
cat "$work/report.md"
