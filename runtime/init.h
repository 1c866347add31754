// The container's init process: everything between clone3() and execve(). The parent
// prepares an InitContext before clone3; the child (a copy-on-write copy of the parent)
// runs run_init(), which never returns. See runtime/sync_protocol.h for the handshake.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "checkpoint/placeholder.h"
#include "isolation/seccomp.h"
#include "spec/config.h"

namespace zrun::rt {

struct InitContext {
  const spec::Spec* spec = nullptr;
  int sync_fd = -1;            // child's end of the socketpair
  int fifo_fd = -1;            // O_PATH fd of <state>/exec.fifo
  int console_fd = -1;         // connected --console-socket, when process.terminal
  std::vector<int> close_fds;  // parent-only fds (lock, parent's sync end) the child closes
  // Namespaces joined by path, opened (and type-checked) by the parent. A user namespace,
  // if any, comes first.
  std::vector<std::pair<spec::NsType, int>> join_fds;
  int unshare_flags = 0;     // namespaces the child creates itself after the joins
  bool new_user_ns = false;  // parent must write id maps (kUserNsReady)
  bool new_time_ns = false;
  bool new_cgroup_ns_late = false;  // unshare cgroup ns after the parent's cgroup join
  bool new_net_ns = false;
  bool set_uts = false;  // hostname/domainname apply (new or joined uts ns)
  bool no_pivot = false;
  bool new_keyring = true;
  int preserve_fds = 0;          // fds 3..3+n-1 survive into the container
  std::vector<std::string> env;  // process.env plus LISTEN_FDS/LISTEN_PID when passed
  const iso::SeccompProgram* seccomp = nullptr;  // compiled by the parent, or none
  int seccomp_listener_fd = -1;  // connected to linux.seccomp.listenerPath (NOTIFY only)
  // restore: fork these placeholder tasks (still privileged: the restorer sets each
  // task's credentials) and park instead of exec (checkpoint/placeholder.h).
  const ckpt::PlaceholderPlan* restore = nullptr;
};

[[noreturn]] void run_init(const InitContext& ctx) noexcept;

}  // namespace zrun::rt
