// linux.seccomp: the filter is compiled in the parent with libseccomp (before clone3) and
// installed in the container's init with a raw seccomp(2) call, so no libseccomp code runs
// after clone (ARCHITECTURE.md "Process model").
//
// Order in the init (as runc): without noNewPrivileges, installing a filter needs
// CAP_SYS_ADMIN, so it happens before the identity switch drops capabilities; with
// noNewPrivileges it happens as late as possible, right before execve, so that a
// profile needs to allow as few of the runtime's own syscalls as possible.
#pragma once

#include <linux/filter.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "spec/config.h"

namespace zrun::iso {

struct SeccompProgram {
  std::vector<sock_filter> filter;  // classic BPF exported by libseccomp
  unsigned flags = 0;               // SECCOMP_FILTER_FLAG_* passed to seccomp(2)
  bool notify = false;              // a rule uses SCMP_ACT_NOTIFY (flags has NEW_LISTENER)
  std::string listener_path;        // linux.seccomp.listenerPath (host path)
  // Start of the runtime-spec "containerProcessState" message, built here because the
  // child must not use JSON code: {"ociVersion":..,"fds":["seccompFd"],"metadata":..,
  // the child appends "pid" and "state".
  std::string listener_message_head;
};

// Parent side. Errors: unknown architecture for libseccomp is skipped (it cannot run on
// this host), an unknown syscall name is skipped with a debug log (as runc), anything
// libseccomp rejects is an error naming the syscall.
base::Result<SeccompProgram> compile_seccomp(const spec::Seccomp& seccomp);

// SECCOMP_FILTER_FLAG_* names (runtime-spec spelling) that this kernel accepts for
// seccomp(2), probed without installing anything.
std::vector<std::string> supported_seccomp_flags();

// Child side: seccomp(SECCOMP_SET_MODE_FILTER, flags, prog). Returns the notify listener
// fd when the program uses SCMP_ACT_NOTIFY, else -1.
base::Result<int> install_seccomp(const SeccompProgram& prog) noexcept;

// Child side: install, and for SCMP_ACT_NOTIFY send the listener fd with the container
// process state (`state_json` is the container state document, whose top-level "pid" is
// copied) over `listener_sock` (connected by the parent to listenerPath), then close
// both. A program without notify leaves `listener_sock` alone.
base::Result<void> apply_seccomp(const SeccompProgram& prog, int listener_sock,
                                 std::string_view state_json) noexcept;

// The containerProcessState message for `state_json` (pure; exposed for tests).
std::string seccomp_listener_message(const SeccompProgram& prog, std::string_view state_json);

}  // namespace zrun::iso
