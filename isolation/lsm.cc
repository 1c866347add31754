#include "isolation/lsm.h"

#include <string>

#include "base/sys.h"

namespace zrun::iso {

namespace {

base::Result<void> refuse(const std::string& field, const std::string& value, bool enabled,
                          const char* lsm) {
  if (value.empty()) return base::ok();
  if (!enabled)
    return base::make_error(field + " `" + value + "`: " + lsm +
                            " is not enabled on this host (see `zrun features`)");
  return base::make_error(field + " `" + value + "`: " + lsm + " labels are not supported yet");
}

}  // namespace

base::Result<void> check_lsm(const spec::Process& process, const spec::HostFacts& facts,
                             const std::string& where) {
  ZRUN_TRY(
      refuse(where + ".apparmorProfile", process.apparmor_profile, facts.apparmor, "AppArmor"));
  ZRUN_TRY(refuse(where + ".selinuxLabel", process.selinux_label, facts.selinux, "SELinux"));
  return base::ok();
}

base::Result<void> check_lsm(const spec::Spec& s, const spec::HostFacts& facts) {
  if (s.process) ZRUN_TRY(check_lsm(*s.process, facts));
  if (s.linux_)
    ZRUN_TRY(refuse("linux.mountLabel", s.linux_->mount_label, facts.selinux, "SELinux"));
  return base::ok();
}

spec::HostFacts host_lsm_facts() {
  // The same tests as spec::detect_host_facts(), without its seccomp probing.
  spec::HostFacts f;
  auto aa = base::read_file("/sys/module/apparmor/parameters/enabled");
  f.apparmor = aa && base::trim(*aa) == "Y";
  f.selinux = base::path_exists("/sys/fs/selinux/enforce");
  return f;
}

base::Result<void> check_lsm(const spec::Spec& s) {
  bool wanted =
      (s.process && (!s.process->apparmor_profile.empty() || !s.process->selinux_label.empty())) ||
      (s.linux_ && !s.linux_->mount_label.empty());
  if (!wanted) return base::ok();  // the common case reads nothing
  return check_lsm(s, host_lsm_facts());
}

base::Result<void> check_lsm(const spec::Process& process) {
  if (process.apparmor_profile.empty() && process.selinux_label.empty()) return base::ok();
  return check_lsm(process, host_lsm_facts());
}

}  // namespace zrun::iso
