#!/usr/bin/env python3
"""configs.py BASE_CONFIG OUT_DIR — write one bundle per VM test case.

BASE_CONFIG is the output of `zrun spec`; every case gets OUT_DIR/<case>/config.json with
the shared guest rootfs (/vm/rootfs), no terminal, and its own process and resources. The
guest has no JSON tools, so everything case-specific is decided here, on the host. Two
values are only known inside the guest (the virtio disk's major:minor): they are written as
the bare words @VDA_MAJOR@ / @VDA_MINOR@ and substituted by guest.sh with sed.
"""
import copy
import json
import os
import sys

MIB = 1 << 20
PROBE = "/bin/zrun-probe"


def writable_cgroup_mount(c):
    """Drop `ro` from the container's /sys/fs/cgroup mount (it makes cgroups of its own)."""
    for m in c["mounts"]:
        if m["destination"] == "/sys/fs/cgroup":
            m["options"] = [o for o in m["options"] if o != "ro"]


def base(spec, case, args, cgroup=True):
    c = copy.deepcopy(spec)
    c["root"] = {"path": "/vm/rootfs", "readonly": False}
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    c["hostname"] = case
    if cgroup:
        c["linux"]["cgroupsPath"] = "/zrun-vm/" + case
    c["linux"].setdefault("resources", {})
    return c


def resources(c):
    return c["linux"]["resources"]


def cases(spec):
    out = {}

    # memory.max: a 96 MiB hog in a 32 MiB cgroup is OOM-killed.
    c = base(spec, "memory-max", [PROBE, "hog", "96"])
    resources(c)["memory"] = {"limit": 32 * MIB}
    out["memory-max"] = c

    # memory.high (OCI has no field: the `unified` map): a 32 MiB hog over a 16 MiB soft
    # limit is throttled, not killed.
    c = base(spec, "memory-high", [PROBE, "hog", "32"])
    resources(c)["unified"] = {"memory.high": str(16 * MIB)}
    out["memory-high"] = c

    # hugetlb: 4 MiB of 2 MiB pages (the guest reserves 8 pages); the probe wants 8 MiB.
    c = base(spec, "hugetlb", [PROBE, "huge", "8"])
    resources(c)["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 * MIB}]
    out["hugetlb"] = c

    # Swap (guest swap on a second virtio disk): memory 32 MiB, memory+swap 64 MiB, so
    # v2 memory.swap.max = 32 MiB; a 48 MiB hog fits only by swapping.
    c = base(spec, "swap", [PROBE, "hog", "48"])
    resources(c)["memory"] = {"limit": 32 * MIB, "swap": 64 * MIB}
    out["swap"] = c

    # pids.max: a fork loop stops at 10 tasks.
    c = base(spec, "pids-max", [PROBE, "fork", "50"])
    resources(c)["pids"] = {"limit": 10}
    out["pids-max"] = c

    # cpu.max: 20 ms per 100 ms period.
    c = base(spec, "cpu-max", [PROBE, "spin", "120"])
    resources(c)["cpu"] = {"quota": 20000, "period": 100000}
    out["cpu-max"] = c

    # io.max: O_DIRECT writes to the guest's virtio disk, throttled to 1 MiB/s. The
    # container's clock is the guest's /proc/uptime (no time namespace).
    dd = (
        "read a _ </proc/uptime; "
        "dd if=/dev/zero of=/dev/vda bs=256k count=16 oflag=direct 2>/dev/null; "
        "rc=$?; read b _ </proc/uptime; echo dd=$rc; echo t0=$a; echo t1=$b"
    )
    c = base(spec, "io-max", ["/bin/sh", "-c", dd])
    vda = {"major": "@VDA_MAJOR@", "minor": "@VDA_MINOR@"}
    c["linux"]["devices"] = [dict(path="/dev/vda", type="b", fileMode=0o660, **vda)]
    resources(c)["blockIO"] = {"throttleWriteBpsDevice": [dict(rate=MIB, **vda)]}
    out["io-max"] = c

    # Device filter (v2: a BPF_PROG_TYPE_CGROUP_DEVICE program). The virtio disk's node is
    # bind-mounted in (not in linux.devices, which zrun allows like runc does); the spec's
    # deny-all plus "allow b MAJ:MIN w" must refuse opening it for reading (EPERM), allow
    # opening it for writing (nothing is written), and keep the default devices (/dev/null)
    # usable. A char device would not do: the non-default ones check capabilities of their
    # own (/dev/kmsg: CAP_SYSLOG), which would pass this case without any device filter.
    probe3 = (
        "for m in r w; do /bin/zrun-probe open /dev/vda $m | grep ^errno=; done; "
        "/bin/zrun-probe open /dev/null rw | grep ^errno="
    )
    c = base(spec, "devices", ["/bin/sh", "-c", probe3])
    c["mounts"].append(
        {"destination": "/dev/vda", "type": "bind", "source": "/dev/vda", "options": ["bind"]}
    )
    resources(c)["devices"] = [
        {"allow": False, "access": "rwm"},
        dict(allow=True, type="b", access="w", **vda),
    ]
    out["devices"] = c

    # Freezer: a shell counting into /tmp/count (read by the guest in the shared rootfs).
    count = "i=0; while :; do i=$((i+1)); echo $i >/tmp/count; sleep 0.05; done"
    out["freeze"] = base(spec, "freeze", ["/bin/sh", "-c", count])
    out["delete-paused"] = base(spec, "delete-paused", [PROBE, "sleep", "1000"])

    # cgroup.kill: init -> sh -> sleep (a grandchild of the container's init).
    tree = ["/bin/sh", "-c", "sh -c 'sleep 1000 & wait' & wait"]
    out["kill-all"] = base(spec, "kill-all", tree)
    out["delete-force"] = base(spec, "delete-force", tree)

    # Bean counters against the kernel's files; default cgroupsPath (none in the spec).
    c = base(spec, "beancounters", ["/bin/sh", "-c", "sleep 1000 & sleep 1000 & wait"], False)
    resources(c)["memory"] = {"limit": 64 * MIB}
    resources(c)["pids"] = {"limit": 20}
    out["beancounters"] = c
    # update: live limits change on v2.
    c = base(spec, "update", [PROBE, "sleep", "1000"])
    resources(c)["memory"] = {"limit": 64 * MIB}
    resources(c)["pids"] = {"limit": 20}
    out["update"] = c

    # events: stats every second and an oom event (inotify on memory.events) when the hog
    # started after `events` is watching is killed; the shell then exits, ending the stream.
    c = base(spec, "events", ["/bin/sh", "-c", "sleep 3; %s hog 96; sleep 1" % PROBE])
    resources(c)["memory"] = {"limit": 32 * MIB}
    out["events"] = c

    # A relative cgroupsPath, with zrun started from a non-root cgroup (as from a login
    # shell's scope): v2 cannot enable controllers below a cgroup that has processes.
    c = base(spec, "relative-path", [PROBE, "sleep", "1000"], False)
    c["linux"]["cgroupsPath"] = "zrun-rel/ctr"
    resources(c)["memory"] = {"limit": 32 * MIB}
    resources(c)["pids"] = {"limit": 15}
    out["relative-path"] = c

    # A container that makes a cgroup of its own (as systemd or a nested runtime would)
    # through a writable cgroup mount, and moves a child into it.
    inner = "mkdir /sys/fs/cgroup/inner && sleep 1000 & sleep 1; " \
        "echo $! >/sys/fs/cgroup/inner/cgroup.procs; wait"
    c = base(spec, "nested", ["/bin/sh", "-c", inner])
    writable_cgroup_mount(c)
    out["nested"] = c

    # Like systemd in a container: move every process (init too) to a child cgroup and
    # enable controllers below the container's cgroup, which then may hold no process.
    sysd = "mkdir /sys/fs/cgroup/init.scope && echo $$ >/sys/fs/cgroup/init.scope/cgroup.procs " \
        "&& echo +pids +memory >/sys/fs/cgroup/cgroup.subtree_control && echo ready=1; " \
        "exec sleep 1000"
    c = base(spec, "systemd-like", ["/bin/sh", "-c", sysd])
    writable_cgroup_mount(c)
    out["systemd-like"] = c

    # cgroup namespace + cgroup mount: the container sees its own subtree as the root.
    show = "cat /proc/self/cgroup; echo max=$(cat /sys/fs/cgroup/memory.max); " \
        "echo pids=$(cat /sys/fs/cgroup/pids.max); ls /sys/fs/cgroup | grep -c '^cgroup\\.'"
    c = base(spec, "cgroupns", ["/bin/sh", "-c", show])
    resources(c)["memory"] = {"limit": 48 * MIB}
    resources(c)["pids"] = {"limit": 30}
    out["cgroupns"] = c
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    for name, c in cases(spec).items():
        os.makedirs(os.path.join(sys.argv[2], name), exist_ok=True)
        text = json.dumps(c, indent=1)
        for key in ("VDA_MAJOR", "VDA_MINOR"):
            text = text.replace('"@%s@"' % key, "@%s@" % key)
        with open(os.path.join(sys.argv[2], name, "config.json"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
