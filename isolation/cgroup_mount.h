// The OCI "cgroup" mount type: what a container sees at /sys/fs/cgroup.
//  - unified host: a cgroup2 mount (the cgroup namespace, if any, scopes it); if the
//    kernel refuses (EPERM/EBUSY) the host's /sys/fs/cgroup is bind-mounted instead.
//  - hybrid/legacy host (runc's v1 layout): a tmpfs (mode=755) at the destination with
//    one directory per host hierarchy (cpu, memory, ..., unified, systemd). With a
//    cgroup namespace each one is a fresh cgroup mount (the kernel roots it at the
//    namespace's cgroup); without one, the container's own cgroup directory in each
//    hierarchy is bind-mounted. Co-mounted controllers get symlinks (cpuacct -> cpu,cpuacct).
//    The mount's flags (ro, nosuid, ...) apply to every hierarchy; a "ro" mount makes the
//    tmpfs read-only too.
#pragma once

#include "base/result.h"
#include "isolation/mounts.h"
#include "spec/config.h"

namespace zrun::iso {

base::Result<void> mount_cgroup(int rootfd, const spec::Mount& m, const MountFlags& mf,
                                bool cgroupns);

}  // namespace zrun::iso
