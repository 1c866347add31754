// Linux security modules: process.apparmorProfile, process.selinuxLabel and
// linux.mountLabel.
//
// zrun does not apply AppArmor profiles or SELinux labels yet. A spec that asks for one on
// a host without that LSM is refused at create (like runc's "selinux label is specified in
// config, but selinux is disabled"), so a container never silently runs unconfined; the
// same facts drive `zrun features` (linux.apparmor.enabled / linux.selinux.enabled). On a
// host *with* the LSM the field is refused too, naming what is missing, until it is
// implemented: AppArmor would write "exec <profile>" to /proc/self/attr/apparmor/exec
// (fallback /proc/self/attr/exec) in the init just before execve, SELinux the label to
// /proc/self/attr/exec and add context="<mountLabel>" to the container's tmpfs/mqueue
// mounts.
#pragma once

#include "base/result.h"
#include "spec/config.h"
#include "spec/features.h"

namespace zrun::iso {

// Refuses a non-empty apparmorProfile / selinuxLabel of `process` (field names prefixed
// with `where`, e.g. "process").
[[nodiscard]] base::Result<void> check_lsm(const spec::Process& process,
                                           const spec::HostFacts& facts,
                                           const std::string& where = "process");
// The whole spec: process (if any) and linux.mountLabel.
[[nodiscard]] base::Result<void> check_lsm(const spec::Spec& s, const spec::HostFacts& facts);
// Same, with the LSM facts read from the host (only the two files, no seccomp probing).
[[nodiscard]] base::Result<void> check_lsm(const spec::Spec& s);
// An `exec` process (process.json / --apparmor / --process-label), host facts read here.
[[nodiscard]] base::Result<void> check_lsm(const spec::Process& process);
// apparmor/selinux of spec::detect_host_facts(), read without its seccomp probing.
spec::HostFacts host_lsm_facts();

}  // namespace zrun::iso
