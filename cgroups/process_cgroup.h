// The cgroup a container process is in now, for `exec` on cgroup v2.
//
// A container may enable controllers below its own cgroup (systemd in a container moves
// every process to init.scope and does this); v2's "no internal processes" rule then
// forbids processes in the container's cgroup itself, and clone3(CLONE_INTO_CGROUP) into
// it fails with EBUSY. Like runc (opencontainers/runc#2356), exec then joins the cgroup
// the container's init is in, provided it lies inside the container's cgroup.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "cgroups/cgroup.h"

namespace zrun::cg {

// The v2 directory for the "0::" line of `proc_pid_cgroup` (/proc/PID/cgroup), given the
// container's cgroup `path` (hierarchy-relative, e.g. /zrun/web1) and its v2 directory
// `unified_dir`. Errors: no "0::" line, or a cgroup outside the container's.
base::Result<std::string> process_cgroup_dir(const std::string& path,
                                             const std::string& unified_dir,
                                             std::string_view proc_pid_cgroup);

// O_PATH directory fd of the v2 cgroup `pid` is in (see above), for CLONE_INTO_CGROUP.
base::Result<base::UniqueFd> open_process_cgroup(const Cgroup& cg, pid_t pid);

}  // namespace zrun::cg
