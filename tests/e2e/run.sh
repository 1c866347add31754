#!/usr/bin/env bash
# tests/e2e/run.sh [--runtime PATH] [--keep] [TEST...]
#
# End-to-end suite: drives real podman (+ conmon) with an OCI runtime (default: the
# build's zrun) and asserts the outcome of each scenario. Prints `PASS name`,
# `FAIL name: reason` or `SKIP name: reason` per scenario and, last, exactly one line
# `N passed, M failed`; exits 1 if anything failed, 77 if the prerequisites are missing.
#
# Everything is private to a temp dir: containers.conf (via CONTAINERS_CONF), podman's
# storage (--root/--runroot) and libpod's tmp dir. Nothing global is changed. The runtime
# keeps its state in its default root (/run/<runtime name>): podman's --runtime-flag is
# not passed on to conmon's exit command (`podman container cleanup`), so a private
# runtime root would leave state behind. Needs root, podman, conmon and
# catatonit (apt-get install podman conmon catatonit) and busybox-static.
#
# Run the same suite with `--runtime /usr/bin/runc` to check the suite itself.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
runtime=${ZRUN:-$repo/build/zrun}
keep=0
only=()
while (($#)); do
  case $1 in
    --runtime) runtime=$2; shift 2 ;;
    --runtime=*) runtime=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) only+=("$1"); shift ;;
  esac
done

prereq() { echo "SKIP e2e: $*"; echo "0 passed, 0 failed"; exit 77; }
[[ $(id -u) == 0 ]] || prereq "needs root"
for b in podman conmon; do command -v $b >/dev/null || prereq "$b not installed"; done
[[ -x $runtime ]] || prereq "runtime $runtime not found (build first or pass --runtime)"
runtime=$(readlink -f "$runtime")
rt_name=$(basename "$runtime")

T=$(mktemp -d /tmp/zrun-e2e.XXXXXX)
IMG=localhost/busybox:e2e
RTROOT=/run/$rt_name # the runtime's default --root: state dirs of the containers
mkdir -p "$T/networks" "$T/vol"

init_line=""
for c in /usr/libexec/podman/catatonit /usr/bin/catatonit /usr/bin/tini; do
  [[ -x $c ]] && { init_line="init_path = \"$c\""; break; }
done

# podman passes --log-format=json only to runtimes named in runtime_supports_json.
cat >"$T/containers.conf" <<EOF
[containers]
netns = "none"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[network]
network_config_dir = "$T/networks"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
runtime_supports_json = ["crun", "runc", "kata", "krun", "$rt_name"]
tmp_dir = "$T/libpod"
volume_path = "$T/volumes"
$init_line
[engine.runtimes]
$rt_name = ["$runtime"]
EOF
export CONTAINERS_CONF=$T/containers.conf

GLOBAL=(--root "$T/storage" --runroot "$T/runroot" --storage-driver overlay
  --runtime "$runtime")
pm() { timeout --foreground "${TMO:-60}" podman "${GLOBAL[@]}" "$@"; }

cleanup() {
  ctr_down
  pm rm -a -f -t 0 >/dev/null 2>&1
  pm pod rm -a -f >/dev/null 2>&1
  pm system reset -f >/dev/null 2>&1 # unmounts storage, removes images
  if grep -q " $T" /proc/self/mountinfo; then
    grep " $T" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
  fi
  ((keep)) && { echo "kept $T"; return; }
  rm -rf "$T"
}
trap cleanup EXIT

sh "$repo/tests/fixtures/make_rootfs.sh" "$T/rootfs" >/dev/null
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .
pm import -q "$T/rootfs.tar" "$IMG" >/dev/null || prereq "podman import failed"

# ---- helpers -----------------------------------------------------------------------------
REASON=""
fail() { REASON="$*"; return 1; }
expect_eq() { [[ "$2" == "$3" ]] || fail "$1: got '$2', want '$3'"; }
expect_match() { [[ "$2" =~ $3 ]] || fail "$1: '$2' does not match /$3/"; }
cpid() { pm inspect -f '{{.State.Pid}}' "$1"; }
cstatus() { pm inspect -f '{{.State.Status}}' "$1"; }
cexit() { pm inspect -f '{{.State.ExitCode}}' "$1"; }
# host_cg PID CONTROLLER FILE: read FILE in the v1 cgroup of PID.
host_cg() {
  local p
  p=$(awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' \
    "/proc/$1/cgroup")
  cat "/sys/fs/cgroup/$2$p/$3"
}
# A PID 1 that exits when told to by SIGTERM (PID 1 ignores signals it does not handle).
TERMLOOP='trap "exit 0" TERM; while :; do sleep 0.1; done'

# ---- scenarios ---------------------------------------------------------------------------
t_exit_codes() {
  local rc
  pm run --rm $IMG true; expect_eq "true" $? 0 || return 1
  pm run --rm $IMG sh -c 'exit 42'; expect_eq "exit 42" $? 42 || return 1
  pm run --rm $IMG /etc/passwd 2>/dev/null; expect_eq "non-executable" $? 126 || return 1
  pm run --rm $IMG /no/such/binary 2>"$T/err"; expect_eq "missing binary" $? 127 || return 1
  # The runtime's error reaches the user as text (podman reads the --log JSON's msg).
  expect_match "error text" "$(cat "$T/err")" "/no/such/binary.*(not found|no such file)"
}

t_stdin_pipe() {
  local out
  out=$(echo hello-stdin | pm run --rm -i $IMG cat) || fail "run -i failed" || return 1
  expect_eq "echo" "$out" hello-stdin
}

t_stdin_big() {
  head -c 8M /dev/urandom >"$T/big.in"
  pm run --rm -i $IMG cat <"$T/big.in" >"$T/big.out" || fail "run -i failed rc=$?" || return 1
  cmp -s "$T/big.in" "$T/big.out" ||
    fail "8 MiB round trip differs ($(stat -c %s "$T/big.out") bytes back)"
}

t_tty() {
  local out
  out=$(script -qec "timeout --foreground 60 podman ${GLOBAL[*]} run --rm -t $IMG sh -c 'busybox tty; exit 3'" /dev/null)
  expect_eq "rc" $? 3 || return 1
  expect_match "tty" "$out" '/dev/pts/[0-9]+'
}

t_env_workdir_user() {
  local out
  out=$(pm run --rm -e FOO=bar -w /tmp -u 1:1 $IMG sh -c 'echo $FOO $(pwd) $(id -u):$(id -g)')
  expect_eq "env/workdir/user" "$out" "bar /tmp 1:1"
}

t_detach_logs_wait() {
  local rc logs
  pm run -d --name e2e-d $IMG sh -c 'echo to-out; echo to-err >&2; sleep 1; exit 3' >/dev/null ||
    fail "run -d failed" || return 1
  rc=$(pm wait e2e-d); expect_eq "wait" "$rc" 3 || return 1
  logs=$(pm logs e2e-d 2>&1)
  expect_match "logs" "$logs" "to-out" || return 1
  expect_match "logs" "$logs" "to-err"
}

t_exec() {
  local out
  pm run -d --name e2e-x $IMG sleep 1000 >/dev/null || fail "run -d failed" || return 1
  out=$(pm exec e2e-x echo hi); expect_eq "exec echo" "$out" hi || return 1
  pm exec e2e-x sh -c 'exit 5'; expect_eq "exec rc" $? 5 || return 1
  out=$(echo piped | pm exec -i e2e-x cat); expect_eq "exec -i" "$out" piped || return 1
  out=$(pm exec -u 1:1 e2e-x id -u); expect_eq "exec -u" "$out" 1 || return 1
  out=$(pm exec -e K=V -w /tmp e2e-x sh -c 'echo $K $(pwd)'); expect_eq "exec -e -w" "$out" "V /tmp" || return 1
  pm exec -d e2e-x sh -c 'echo detached >/tmp/d' >/dev/null || fail "exec -d failed" || return 1
  local i; for i in $(seq 50); do pm exec e2e-x test -s /tmp/d && break; sleep 0.1; done
  out=$(pm exec e2e-x cat /tmp/d); expect_eq "exec -d" "$out" detached || return 1
  pm exec e2e-x /no/such 2>/dev/null; expect_eq "exec missing" $? 127 || return 1
  out=$(pm exec e2e-x ps -o pid,comm | awk '$2 == "sleep" {print $1}'); expect_eq "pid of sleep" "$out" 1
}

t_exec_tty() {
  local out
  pm run -d --name e2e-xt $IMG sleep 1000 >/dev/null || fail "run -d failed" || return 1
  out=$(script -qec "timeout --foreground 60 podman ${GLOBAL[*]} exec -t e2e-xt busybox tty" /dev/null)
  expect_match "exec -t" "$out" '/dev/pts/[0-9]+'
}

t_stop_sigterm() {
  local t0=$SECONDS
  pm run -d --name e2e-st $IMG sh -c "$TERMLOOP" >/dev/null || fail "run -d failed" || return 1
  sleep 0.5
  pm stop -t 20 e2e-st >/dev/null || fail "stop failed" || return 1
  expect_eq "exit code" "$(cexit e2e-st)" 0 || return 1
  ((SECONDS - t0 < 15)) || fail "stop took $((SECONDS - t0))s (SIGTERM not delivered?)"
}

t_stop_timeout() {
  pm run -d --name e2e-sk $IMG sleep 1000 >/dev/null || fail "run -d failed" || return 1
  pm stop -t 1 e2e-sk >/dev/null || fail "stop failed" || return 1
  expect_eq "exit code" "$(cexit e2e-sk)" 137
}

t_kill_signal() {
  pm run -d --name e2e-k $IMG sh -c 'trap "echo got-usr1; exit 7" USR1; while :; do sleep 0.1; done' \
    >/dev/null || fail "run -d failed" || return 1
  sleep 0.5
  pm kill -s USR1 e2e-k >/dev/null || fail "kill failed" || return 1
  expect_eq "wait" "$(pm wait e2e-k)" 7 || return 1
  expect_match "logs" "$(pm logs e2e-k)" got-usr1
}

t_pause_unpause() {
  # A counter the container bumps every 50 ms, read from the host through /proc/PID/root
  # (a runtime may freeze with the v1 freezer or with the unified cgroup.freeze).
  pm run -d --name e2e-p $IMG sh -c 'i=0; while :; do i=$((i+1)); echo $i >/tmp/n; sleep 0.05; done' \
    >/dev/null || fail "run -d failed" || return 1
  local f; f=/proc/$(cpid e2e-p)/root/tmp/n
  sleep 0.5
  pm pause e2e-p >/dev/null || fail "pause failed" || return 1
  expect_eq "status" "$(cstatus e2e-p)" paused || return 1
  local a b; a=$(cat $f); sleep 0.5; b=$(cat $f)
  expect_eq "counter while paused" "$b" "$a" || return 1
  pm unpause e2e-p >/dev/null || fail "unpause failed" || return 1
  expect_eq "status" "$(cstatus e2e-p)" running || return 1
  sleep 0.5; b=$(cat $f)
  [[ $b != "$a" ]] || fail "counter did not move after unpause" || return 1
  expect_eq "exec after unpause" "$(pm exec e2e-p echo ok)" ok
}

t_top_ps() {
  pm run -d --name e2e-top $IMG sleep 1000 >/dev/null || fail "run -d failed" || return 1
  expect_match "top" "$(pm top e2e-top)" "sleep 1000" || return 1
  expect_match "ps" "$(pm ps --format '{{.Names}} {{.Status}}')" "e2e-top Up"
}

t_memory_oom() {
  local out rc
  out=$(pm run --rm --memory 32m --memory-swap 32m $IMG sh -c 'x=$(head -c 200m /dev/zero | tr "\0" a); echo survived' 2>&1)
  rc=$?
  expect_eq "rc (output: ${out:0:200})" $rc 137
}

t_pids_limit() {
  pm run -d --name e2e-pids --pids-limit 10 $IMG sleep 1000 >/dev/null || fail "run -d failed" || return 1
  # The shell gives up at the first failed fork; the sleeps it started stay.
  pm exec e2e-pids sh -c 'for i in $(seq 1 20); do sleep 1000 & done' >/dev/null 2>&1
  local p; p=$(cpid e2e-pids)
  expect_eq "pids.max" "$(host_cg $p pids pids.max)" 10 || return 1
  local cur; cur=$(host_cg $p pids pids.current)
  ((cur >= 8 && cur <= 10)) || fail "pids.current=$cur, want 8..10" || return 1
  local ev; ev=$(host_cg $p pids pids.events | awk '{print $2}')
  [[ $ev -gt 0 ]] || fail "pids.events max=$ev, want > 0"
}

t_cpus() {
  pm run -d --name e2e-cpu --cpus 0.5 --cpu-shares 512 $IMG sleep 1000 >/dev/null || fail "run -d failed" || return 1
  local p; p=$(cpid e2e-cpu)
  expect_eq "cfs_quota_us" "$(host_cg $p cpu cpu.cfs_quota_us)" 50000 || return 1
  expect_eq "cfs_period_us" "$(host_cg $p cpu cpu.cfs_period_us)" 100000 || return 1
  expect_eq "shares" "$(host_cg $p cpu cpu.shares)" 512
}

t_memory_limit() {
  pm run -d --name e2e-mem --memory 64m $IMG sleep 1000 >/dev/null || fail "run -d failed" || return 1
  expect_eq "limit_in_bytes" "$(host_cg "$(cpid e2e-mem)" memory memory.limit_in_bytes)" 67108864
}

t_update() {
  pm run -d --name e2e-up --cpus 0.5 --memory 64m $IMG sleep 1000 >/dev/null || fail "run -d failed" || return 1
  pm update --cpus 0.25 --memory 96m e2e-up >/dev/null || fail "update failed" || return 1
  local p; p=$(cpid e2e-up)
  expect_eq "cfs_quota_us" "$(host_cg $p cpu cpu.cfs_quota_us)" 25000 || return 1
  expect_eq "limit_in_bytes" "$(host_cg $p memory memory.limit_in_bytes)" 100663296
}

t_read_only() {
  local out
  out=$(pm run --rm --read-only $IMG sh -c 'touch /x' 2>&1) && fail "write to / succeeded" && return 1
  expect_match "error" "$out" "Read-only" || return 1
  pm run --rm --read-only $IMG sh -c 'touch /tmp/x' || fail "write to /tmp failed on --read-only"
}

t_cap_drop_all() {
  local out
  out=$(pm run --rm --cap-drop ALL $IMG grep CapEff /proc/self/status)
  expect_match "drop ALL" "$out" "CapEff:[[:space:]]+0000000000000000$" || return 1
  out=$(pm run --rm --cap-drop ALL --cap-add NET_ADMIN $IMG grep CapEff /proc/self/status)
  expect_match "add NET_ADMIN" "$out" "CapEff:[[:space:]]+0000000000001000$" || return 1
  out=$(pm run --rm $IMG grep CapEff /proc/self/status)
  expect_match "default" "$out" "CapEff:[[:space:]]+00000000a80425fb$"
}

t_seccomp() {
  local out
  expect_match "default" "$(pm run --rm $IMG grep Seccomp: /proc/self/status)" "Seccomp:[[:space:]]+2" || return 1
  expect_match "unconfined" "$(pm run --rm --security-opt seccomp=unconfined $IMG grep Seccomp: /proc/self/status)" \
    "Seccomp:[[:space:]]+0" || return 1
  cat >"$T/seccomp.json" <<'EOF'
{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
              {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
               "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
EOF
  out=$(pm run --rm --security-opt seccomp="$T/seccomp.json" $IMG sh -c 'mkdir /tmp/d; echo rc=$?' 2>&1)
  expect_match "custom profile" "$out" "Operation not permitted" || return 1
  expect_match "custom profile rc" "$out" "rc=1"
}

t_hostname() {
  expect_eq "hostname" "$(pm run --rm --hostname e2e-host $IMG hostname)" e2e-host
}

t_network_none() {
  local out
  out=$(pm run --rm --network none $IMG sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "')
  expect_eq "interfaces" "$out" lo
}

t_volumes() {
  local out
  echo from-host >"$T/vol/in"
  out=$(pm run --rm -v "$T/vol:/data" $IMG sh -c 'cat /data/in; echo from-ctr >/data/out')
  expect_eq "read" "$out" from-host || return 1
  expect_eq "write" "$(cat "$T/vol/out")" from-ctr || return 1
  pm run --rm -v "$T/vol:/data:ro" $IMG sh -c 'echo x >/data/ro' 2>/dev/null && fail "write to :ro volume succeeded" && return 1
  [[ ! -e $T/vol/ro ]] || fail ":ro volume was written"
}

t_rm_cleanup() {
  local id
  pm run --rm --cidfile "$T/cid" $IMG true || fail "run failed" || return 1
  id=$(cat "$T/cid"); rm -f "$T/cid"
  [[ -n $id ]] || fail "no cid" || return 1
  [[ -z $(pm ps -a -q --filter id="$id") ]] || fail "container still listed" || return 1
  [[ ! -e $RTROOT/$id ]] || fail "state dir $RTROOT/$id left" || return 1
  local left; left=$(find /sys/fs/cgroup -maxdepth 3 -type d -name "*$id*" 2>/dev/null)
  [[ -z $left ]] || fail "cgroups left: $left" || return 1
  ! grep -q "$id" /proc/self/mountinfo || fail "mounts left: $(grep -c "$id" /proc/self/mountinfo)"
}

t_stop_rm_cleanup() {
  local id
  id=$(pm run -d $IMG sleep 1000) || fail "run -d failed" || return 1
  pm stop -t 0 "$id" >/dev/null && pm rm "$id" >/dev/null || fail "stop/rm failed" || return 1
  [[ ! -e $RTROOT/$id ]] || fail "state dir $RTROOT/$id left" || return 1
  local left; left=$(find /sys/fs/cgroup -maxdepth 3 -type d -name "*$id*" 2>/dev/null)
  [[ -z $left ]] || fail "cgroups left: $left" || return 1
  ! grep -q "$id" /proc/self/mountinfo || fail "mounts left"
}

t_pid_host() {
  # Without a PID namespace podman stops with `kill --all`: every process must go.
  pm run -d --name e2e-ph --pid host $IMG sh -c "sleep 1000 & $TERMLOOP" >/dev/null ||
    fail "run -d failed" || return 1
  sleep 0.5
  local p; p=$(cpid e2e-ph)
  local procs; procs=$(host_cg $p pids cgroup.procs | wc -l)
  ((procs >= 2)) || fail "expected >= 2 processes in the cgroup, got $procs" || return 1
  local cgdir; cgdir=/sys/fs/cgroup/pids$(awk -F: '$2 == "pids" {print $3}' /proc/$p/cgroup)
  pm stop -t 5 e2e-ph >/dev/null || fail "stop failed" || return 1
  [[ ! -s $cgdir/cgroup.procs ]] || fail "processes left after stop: $(cat $cgdir/cgroup.procs 2>/dev/null)"
}

t_tmpfs_devices_groups() {
  local out
  out=$(pm run --rm --tmpfs /etc --device /dev/null:/dev/mynull --group-add 5 $IMG \
    sh -c 'grep -c ^tty: /etc/group; grep " /etc " /proc/mounts | cut -d" " -f3; test -c /dev/mynull && echo chr; id -G')
  expect_eq "tmpfs copy-up, device, group-add" "$(echo $out)" "1 tmpfs chr 0 5"
}

t_masked_paths() {
  local out
  out=$(pm run --rm $IMG sh -c 'head -c 16 /proc/kcore | wc -c; echo 1 >/proc/sys/kernel/domainname 2>/dev/null && echo rw || echo ro')
  expect_eq "masked /proc/kcore, ro /proc/sys" "$(echo $out)" "0 ro"
}

t_parallel() {
  local i pids=() bad=0
  for i in $(seq 1 16); do
    (out=$(pm run --rm $IMG sh -c "echo c$i") && [[ $out == c$i ]]) &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || bad=$((bad + 1)); done
  expect_eq "failed containers of 16" $bad 0 || return 1
  expect_eq "leftover containers" "$(pm ps -a -q | wc -l)" 0
}

t_restart() {
  pm run -d --name e2e-r $IMG sh -c "$TERMLOOP" >/dev/null || fail "run -d failed" || return 1
  local p1 p2; p1=$(cpid e2e-r)
  pm restart -t 10 e2e-r >/dev/null || fail "restart failed" || return 1
  p2=$(cpid e2e-r)
  expect_eq "status" "$(cstatus e2e-r)" running || return 1
  [[ $p1 != "$p2" && $p2 != 0 ]] || fail "pid did not change ($p1 -> $p2)" || return 1
  # A restart policy brings a failed container back.
  pm run -d --name e2e-r2 --restart on-failure:2 $IMG sh -c 'exit 1' >/dev/null || fail "run -d failed" || return 1
  local i; for i in $(seq 50); do [[ $(pm inspect -f '{{.RestartCount}}' e2e-r2) == 2 ]] && break; sleep 0.2; done
  expect_eq "restart count" "$(pm inspect -f '{{.RestartCount}}' e2e-r2)" 2
}

t_init() {
  [[ -n $init_line ]] || { REASON="no catatonit/tini installed"; return 2; }
  local out
  out=$(pm run --rm --init $IMG sh -c 'cat /proc/1/comm; echo $$')
  expect_match "pid 1" "$out" "^(catatonit|tini|podman-init)" || return 1
  pm run --rm --init $IMG sh -c 'exit 9'; expect_eq "rc through init" $? 9
}

t_sysctl() {
  local out
  out=$(pm run --rm --sysctl kernel.msgmax=12345 --sysctl net.ipv4.ip_forward=1 $IMG \
    sh -c 'cat /proc/sys/kernel/msgmax /proc/sys/net/ipv4/ip_forward' | tr '\n' ' ')
  expect_eq "sysctls" "$out" "12345 1 "
}

t_ulimit() {
  local out
  out=$(pm run --rm --ulimit nofile=1024:2048 --ulimit nproc=32768:32768 $IMG sh -c 'ulimit -n; ulimit -Hn' | tr '\n' ' ')
  expect_eq "nofile" "$out" "1024 2048 " || return 1
  out=$(pm run --rm $IMG sh -c 'ulimit -n')
  expect_eq "default nofile" "$out" 20000
}

t_privileged() {
  local out
  out=$(pm run --rm --privileged $IMG sh -c 'mount -t tmpfs none /tmp && echo mounted; test -e /dev/kmsg && echo devs')
  expect_eq "privileged" "$(echo $out)" "mounted devs" || return 1
  pm run --rm $IMG sh -c 'mount -t tmpfs none /tmp' 2>/dev/null && fail "mount worked unprivileged"
  return 0
}

t_pod() {
  # podman builds its pause image locally from catatonit: no registry needed.
  pm pod create --name e2e-pod --share ipc,uts,net,pid --hostname pod-host >/dev/null 2>"$T/pod.err" ||
    fail "pod create: $(tail -1 "$T/pod.err")" || return 1
  POD_IDS+=("$(pm pod inspect -f '{{.ID}}' e2e-pod)")
  pm run -d --name e2e-pa --pod e2e-pod $IMG sh -c 'echo ipc-msg >/dev/shm/x; exec sleep 1000' >/dev/null ||
    fail "run in pod failed" || return 1
  local out
  out=$(pm run --rm --pod e2e-pod $IMG sh -c 'hostname; cat /dev/shm/x; ps -o comm | grep -c -e "^sleep$" -e "^catatonit$"' | tr '\n' ' ')
  expect_eq "shared uts/ipc/pid" "$out" "pod-host ipc-msg 2 " || return 1
  # Joining a single container's namespaces (container:NAME) is the same mechanism.
  pm run -d --name e2e-pb --hostname b-host $IMG sleep 1000 >/dev/null || fail "run -d failed" || return 1
  out=$(pm run --rm --pid container:e2e-pb --uts container:e2e-pb $IMG sh -c 'ps -o comm | grep -c "^sleep$"; hostname')
  expect_eq "--pid/--uts container:" "$(echo $out)" "1 b-host"
}

t_userns() {
  local out
  out=$(pm run --rm --uidmap 0:100000:65536 --gidmap 0:100000:65536 $IMG sh -c 'cat /proc/self/uid_map; id -u; touch /tmp/f; stat -c %u /tmp/f' | tr -s ' \n' ' ')
  expect_eq "uid_map" "$out" " 0 100000 65536 0 0 " || return 1
}

# The counter the shell loop writes to /n (`echo $i > /n` truncates first: read again
# when caught empty in between).
counter() {
  local v i
  for i in 1 2 3 4 5; do
    v=$(pm exec "$1" cat /n) && [[ -n $v ]] && break
    sleep 0.05
  done
  echo "$v"
}
t_checkpoint() {
  command -v criu >/dev/null || { REASON="podman checkpoint needs criu (apt-get install criu: podman checks its version)"; return 2; }
  local out n1 n2
  pm run -d --name e2e-ck $IMG sh -c 'i=0; while :; do i=$((i+1)); echo $i > /n; sleep 0.1; done' >/dev/null ||
    fail "run" || return 1
  sleep 1
  out=$(pm container checkpoint e2e-ck 2>&1) || fail "checkpoint: $out" || return 1
  expect_eq "status after checkpoint" "$(cstatus e2e-ck)" exited || return 1
  out=$(pm container restore e2e-ck 2>&1) || fail "restore: $out" || return 1
  expect_eq "status after restore" "$(cstatus e2e-ck)" running || return 1
  n1=$(counter e2e-ck)
  sleep 0.5
  n2=$(counter e2e-ck)
  ((n1 > 5 && n2 > n1)) || fail "counter after restore: $n1 then $n2 (a fresh start restarts at 1)" || return 1
  pm rm -f -t 0 e2e-ck >/dev/null
  # -t: conmon holds the console master; the restore gets a new pty over its console
  # socket and the same shell keeps printing into the container's log through it.
  pm run -dt --name e2e-ckt $IMG sh -c 'i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.1; done' \
    >/dev/null || fail "run -t" || return 1
  sleep 1
  out=$(pm container checkpoint e2e-ckt 2>&1) || fail "checkpoint -t: $out" || return 1
  n1=$(pm logs e2e-ckt | tr -d '\r' | sed -n 's/^tick-//p' | tail -1)
  out=$(pm container restore e2e-ckt 2>&1) || fail "restore -t: $out" || return 1
  expect_eq "status after restore -t" "$(cstatus e2e-ckt)" running || return 1
  expect_match "console of pid 1" "$(pm exec e2e-ckt readlink /proc/1/fd/1)" '^/dev/pts/' || return 1
  sleep 1
  n2=$(pm logs e2e-ckt | tr -d '\r' | sed -n 's/^tick-//p' | tail -1)
  ((n1 > 3 && n2 > n1 + 3)) || fail "ticks on the console: $n1 before, $n2 after restore" || return 1
  pm rm -f -t 0 e2e-ckt >/dev/null
}

# checkpoint --export / restore --import (migration through a tar file), --print-stats.
t_checkpoint_export() {
  command -v criu >/dev/null || { REASON="podman checkpoint needs criu (apt-get install criu: podman checks its version)"; return 2; }
  local out n2
  pm run -d --name e2e-cke $IMG sh -c 'i=0; while :; do i=$((i+1)); echo $i > /n; sleep 0.1; done' >/dev/null ||
    fail "run" || return 1
  sleep 1
  out=$(pm container checkpoint --export "$T/ck.tar.gz" e2e-cke 2>&1) || fail "checkpoint --export: $out" || return 1
  pm rm -f -t 0 e2e-cke >/dev/null
  out=$(pm container restore --import "$T/ck.tar.gz" 2>&1) || fail "restore --import: $out" || return 1
  sleep 0.5
  n2=$(counter e2e-cke)
  ((n2 > 5)) || fail "counter after import: $n2" || return 1
  # --print-stats: podman decodes the CRIU statistics files zrun writes into --work-path.
  out=$(pm container checkpoint --print-stats e2e-cke 2>&1) || fail "checkpoint --print-stats: $out" || return 1
  expect_match "dump stats" "$out" '"frozen_time": [1-9]' || return 1
  expect_match "dump stats" "$out" '"pages_written": [1-9]' || return 1
  out=$(pm container restore --print-stats e2e-cke 2>&1) || fail "restore --print-stats: $out" || return 1
  expect_match "restore stats" "$out" '"restore_time": [1-9]' || return 1
  pm rm -f -t 0 e2e-cke >/dev/null
}

# ---- containerd (ctr run --runc-binary): a private daemon, rootfs dirs, no images ---------
CTRD_PID=""
ctr_up() {
  [[ -n $CTRD_PID ]] && return 0
  command -v containerd >/dev/null && command -v ctr >/dev/null ||
    { REASON="containerd not installed (apt-get install containerd)"; return 2; }
  mkdir -p "$T/ctrd"
  # containerd 1.6 puts shim sockets in /run/containerd/s whatever its config says.
  [[ -e /run/containerd ]] || CTRD_MADE_RUN=1
  cat >"$T/ctrd/config.toml" <<EOF
version = 2
root = "$T/ctrd/root"
state = "$T/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/ctrd/sock"
EOF
  containerd --config "$T/ctrd/config.toml" --log-level warn >"$T/ctrd/log" 2>&1 &
  CTRD_PID=$!
  local i; for i in $(seq 50); do [[ -S $T/ctrd/sock ]] && return 0; sleep 0.1; done
  fail "containerd did not start: $(tail -2 "$T/ctrd/log")"
}
# Kill and remove every task and container of our namespace (also after a failed test).
ctr_reset() {
  [[ -n $CTRD_PID ]] || return 0
  local c
  for c in $(ctr container ls -q 2>/dev/null); do
    ctr task kill -s SIGKILL "$c" >/dev/null 2>&1
    ctr task rm -f "$c" >/dev/null 2>&1
    ctr container rm "$c" >/dev/null 2>&1
  done
}
ctr_down() {
  [[ -n $CTRD_PID ]] || return 0
  ctr_reset
  kill "$CTRD_PID" && wait "$CTRD_PID" 2>/dev/null
  CTRD_PID=""
  # The runtimes leave the (empty) namespace parent cgroup, like runc does.
  rmdir /sys/fs/cgroup/*/"$CTR_NS" /sys/fs/cgroup/unified/"$CTR_NS" 2>/dev/null
  [[ -n ${CTRD_MADE_RUN:-} ]] && rmdir /run/containerd/s /run/containerd 2>/dev/null
  true
}
CTR_RUNC_ROOT=$T/ctrd/runc-root
# ctr forwards SIGTERM to the task, hence SIGKILL on timeout.
# A namespace of our own: containerd makes it the cgroup parent (/NS/ID).
CTR_NS=zrun-e2e-$$
ctr() { timeout -s KILL "${TMO:-60}" ctr --address "$T/ctrd/sock" -n "$CTR_NS" "$@"; }
ctr_run() {
  ctr run --runc-binary "$runtime" --runc-root "$CTR_RUNC_ROOT" --fifo-dir "$T/ctrd/fifo" "$@"
}
ctr_rootfs() { [[ -d $T/ctrd/rootfs ]] || sh "$repo/tests/fixtures/make_rootfs.sh" "$T/ctrd/rootfs" >/dev/null; }
ctr_status() { ctr task ls | awk -v id="$1" '$1 == id {print $3}'; }

t_ctr_run() {
  ctr_up || return
  ctr_rootfs
  local out
  out=$(ctr_run --rm --rootfs "$T/ctrd/rootfs" e2e-c1 /bin/sh -c 'echo hi; exit 3' </dev/null)
  expect_eq "exit code" $? 3 || return 1
  expect_eq "output" "$out" hi || return 1
  ctr_run --rm --rootfs "$T/ctrd/rootfs" e2e-c1 /no/such </dev/null 2>"$T/err"
  [[ $? != 0 ]] || fail "missing binary succeeded" || return 1
  expect_match "error text" "$(cat "$T/err")" "/no/such.*(not found|no such file)" || return 1
  [[ ! -e $CTR_RUNC_ROOT/$CTR_NS/e2e-c1 ]] || fail "state dir left"
}

t_ctr_lifecycle() {
  ctr_up || return
  ctr_rootfs
  ctr_run -d --cpus 0.5 --memory-limit 67108864 --rootfs "$T/ctrd/rootfs" e2e-c2 \
    /bin/sh -c "sleep 1000 & $TERMLOOP" </dev/null >/dev/null || fail "run -d failed" || return 1
  local p out
  p=$(ctr task ls | awk '$1 == "e2e-c2" {print $2}')
  expect_eq "status" "$(ctr_status e2e-c2)" RUNNING || return 1
  expect_eq "cfs_quota_us" "$(host_cg $p cpu cpu.cfs_quota_us)" 50000 || return 1
  expect_eq "limit_in_bytes" "$(host_cg $p memory memory.limit_in_bytes)" 67108864 || return 1
  out=$(ctr task exec --fifo-dir "$T/ctrd/fifo" --exec-id x1 e2e-c2 /bin/sh -c 'echo exec-ok; exit 4' </dev/null)
  expect_eq "exec rc" $? 4 || return 1
  expect_eq "exec output" "$out" exec-ok || return 1
  local n; n=$(ctr task ps e2e-c2 | tail -n +2 | wc -l)
  ((n >= 2)) || fail "ps lists $n pids, want >= 2" || return 1
  ctr task pause e2e-c2 || fail "pause failed" || return 1
  expect_eq "paused" "$(ctr_status e2e-c2)" PAUSED || return 1
  ctr task resume e2e-c2 || fail "resume failed" || return 1
  expect_eq "resumed" "$(ctr_status e2e-c2)" RUNNING || return 1
  ctr task kill -s SIGTERM e2e-c2 || fail "kill failed" || return 1
  local i; for i in $(seq 50); do [[ $(ctr_status e2e-c2) == STOPPED ]] && break; sleep 0.1; done
  expect_eq "stopped" "$(ctr_status e2e-c2)" STOPPED || return 1
  ctr task rm e2e-c2 >/dev/null && ctr container rm e2e-c2 || fail "rm failed" || return 1
  [[ ! -e $CTR_RUNC_ROOT/$CTR_NS/e2e-c2 ]] || fail "state dir left" || return 1
  [[ ! -d /sys/fs/cgroup/pids/$CTR_NS/e2e-c2 ]] || fail "cgroup left"
}

# podman (4.3.1, cgroupfs, hybrid) removes a pod's v1 cgroups but not its name=systemd and
# unified ones, which the runtimes made as parents of the containers' cgroups.
POD_IDS=()
pod_cgroups_rm() {
  local id
  for id in "${POD_IDS[@]}"; do
    rmdir /sys/fs/cgroup/systemd/libpod_parent/"$id" /sys/fs/cgroup/unified/libpod_parent/"$id" 2>/dev/null
  done
  POD_IDS=()
}

# Last: no container of the whole run left a state dir, cgroup or mount behind.
t_no_leftovers() {
  pm rm -a -f -t 0 >/dev/null 2>&1
  pm pod rm -a -f >/dev/null 2>&1
  local ids id bad=""
  ids=$(grep -oE '"ID":"[0-9a-f]{64}"' "$T/events.log" 2>/dev/null | cut -d'"' -f4 | sort -u)
  [[ -n $ids ]] || fail "no container ids in $T/events.log" || return 1
  for id in $ids; do
    [[ -e $RTROOT/$id ]] && bad+=" state:${id:0:12}"
    compgen -G "/sys/fs/cgroup/*/libpod_parent/libpod-$id" >/dev/null && bad+=" cgroup:${id:0:12}"
    compgen -G "/sys/fs/cgroup/*/libpod_parent/*/libpod-$id" >/dev/null && bad+=" cgroup:${id:0:12}"
    grep -q "$id" /proc/self/mountinfo && bad+=" mount:${id:0:12}"
  done
  [[ -z $bad ]] || fail "left behind by $(wc -w <<<"$ids") containers:$bad"
}

# ---- runner ------------------------------------------------------------------------------
tests=(exit_codes stdin_pipe stdin_big tty env_workdir_user detach_logs_wait exec exec_tty
  stop_sigterm stop_timeout kill_signal pause_unpause top_ps memory_oom memory_limit pids_limit cpus
  update read_only cap_drop_all stop_rm_cleanup pid_host tmpfs_devices_groups masked_paths seccomp hostname network_none volumes rm_cleanup parallel
  restart init sysctl ulimit privileged pod userns checkpoint checkpoint_export no_leftovers ctr_run
  ctr_lifecycle)
((${#only[@]})) && tests=("${only[@]}")

echo "e2e: podman $(podman --version | awk '{print $3}'), runtime $runtime, dir $T"
npass=0 nfail=0 nskip=0
for t in "${tests[@]}"; do
  REASON="" t0=$SECONDS
  t_"$t" >"$T/$t.log" 2>&1
  rc=$?
  case $rc in
    0) echo "PASS $t ($((SECONDS - t0))s)"; npass=$((npass + 1)) ;;
    2) echo "SKIP $t: $REASON"; nskip=$((nskip + 1)) ;;
    *) echo "FAIL $t: ${REASON:-rc=$rc}"; nfail=$((nfail + 1))
       sed 's/^/    | /' "$T/$t.log" | tail -n 8 ;;
  esac
  pm rm -a -f -t 0 >/dev/null 2>&1
  pm pod rm -a -f >/dev/null 2>&1
  pod_cgroups_rm
  ctr_reset
done
echo "$npass passed, $nfail failed"
((nfail == 0))
