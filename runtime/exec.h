// exec: start another process inside a running container (runc exec). It joins every
// namespace of the container's init through its pidfd, the container's cgroup, and the
// security context of the process spec (the saved config's process, overridden by flags or
// replaced by --process).
#pragma once

#include <string>

#include "base/result.h"
#include "runtime/container.h"
#include "spec/config.h"

namespace zrun::rt {

struct ExecOptions {
  spec::Process process;  // fully resolved
  std::string console_socket;
  int console_fd = -1;  // instead of console_socket (foreground tty proxy)
  std::string pid_file;
  int preserve_fds = 0;
  bool ignore_paused = false;
  std::string cgroup_subpath;  // --cgroup: a sub-cgroup of the container's (v2: relative)
};

// Start the process; returns once it is about to execve (pid file written).
base::Result<Created> exec_in_container(Container& ct, const ExecOptions& opts);

}  // namespace zrun::rt
