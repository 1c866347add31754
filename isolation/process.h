// Process attributes set in the container's init just before execve: sysctls, rlimits,
// oom_score_adj, the executable lookup, the identity switch (capabilities, groups,
// uid/gid, umask, cwd, no_new_privs) and fd hygiene.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "spec/config.h"

namespace zrun::iso {

// Pure: "net.ipv4.ip_forward" -> "/proc/sys/net/ipv4/ip_forward". A key already in path
// form ("net/ipv4/conf/eth0.100/rp_filter") keeps its dots. Empty, "." and ".."
// components are refused, so a key can never leave /proc/sys.
base::Result<std::string> sysctl_path(const std::string& key);
// Write each sysctl (after the pivot: the container's /proc/sys). Errors name the key.
base::Result<void> apply_sysctl(const std::map<std::string, std::string>& sysctl);

// setrlimit for each entry; errors name RLIMIT_X.
base::Result<void> apply_rlimits(const std::vector<spec::Rlimit>& rlimits);

// Write /proc/PID/oom_score_adj (the launcher sets it for the init before it drops
// privileges; raising needs nothing, lowering needs CAP_SYS_RESOURCE).
base::Result<void> set_oom_score_adj(pid_t pid, int score);

// Resolve process.args[0] as runc does: a name with '/' is checked as is (relative to
// `cwd`), otherwise $PATH from `env` is searched (default PATH when unset). Errors:
//   exec: "foo": executable file not found in $PATH
//   exec: "/bin/x": permission denied
//   exec: "/bin/x": stat /bin/x: no such file or directory
// Engines map "not found" to 127 and "permission denied" to 126.
base::Result<std::string> find_executable(const std::string& arg0,
                                          const std::vector<std::string>& env,
                                          const std::string& cwd);

// runc's identity switch: keepcaps, bounding set drop, setgroups, setresgid, setresuid,
// umask (0022 unless set), chdir(cwd), effective/permitted/inheritable, ambient,
// no_new_privs. Absent capabilities mean all sets empty.
base::Result<void> finalize_identity(const spec::Process& process);

// Close every fd above `keep_max` (close_range(2); falls back to /proc/self/fd).
// With `at_exec`, the fds are only marked close-on-exec (CLOSE_RANGE_CLOEXEC): the init
// keeps its exec.fifo end open until the execve itself, which is how `start` learns that
// the user process runs.
base::Result<void> close_fds_above(int keep_max, bool at_exec = false);

}  // namespace zrun::iso
