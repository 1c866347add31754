#include "spec/features.h"

#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "base/sys.h"
#include "spec/config.h"

#ifndef ZRUN_VERSION
#define ZRUN_VERSION "unknown"
#endif

namespace zrun::spec {

namespace {

using OJson = nlohmann::ordered_json;

// Every option isolation/mounts.cc understands (its flag table, propagation, tmpcopyup),
// sorted like runc's list.
constexpr std::string_view kMountOptions =
    "async atime bind defaults dev diratime dirsync exec iversion lazytime loud mand "
    "noatime nodev nodiratime noexec noiversion nolazytime nomand norelatime "
    "nostrictatime nosuid nosymfollow private ratime rbind rdev rdiratime relatime "
    "remount rexec rnoatime rnodev rnodiratime rnoexec rnorelatime rnostrictatime "
    "rnosuid rnosymfollow ro rprivate rrelatime rro rrw rshared rslave rstrictatime "
    "rsuid rsymfollow runbindable rw shared silent slave strictatime suid symfollow "
    "sync tmpcopyup unbindable";

OJson mount_options() {
  OJson out = OJson::array();
  for (auto& o : base::split(kMountOptions, ' ')) out.push_back(o);
  return out;
}

OJson seccomp(const HostFacts& facts) {
  return {
      {"enabled", true},
      {"actions",
       {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
        "SCMP_ACT_TRAP"}},
      {"operators",
       {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
        "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}},
      // The architectures libseccomp 2.5 knows.
      {"archs",
       {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
        "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"}},
      {"knownFlags",
       {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}},
      {"supportedFlags", facts.seccomp_flags},
  };
}

OJson linux_section(const HostFacts& facts) {
  OJson ns = OJson::array();
  for (NsType t : {NsType::kCgroup, NsType::kIpc, NsType::kMount, NsType::kNetwork, NsType::kPid,
                   NsType::kTime, NsType::kUser, NsType::kUts})
    ns.push_back(ns_type_name(t));
  return {
      {"namespaces", ns},
      {"capabilities", all_capability_names()},
      {"cgroup",
       {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}, {"rdma", true}}},
      {"seccomp", seccomp(facts)},
      {"apparmor", {{"enabled", facts.apparmor}}},
      {"selinux", {{"enabled", facts.selinux}}},
      {"intelRdt", {{"enabled", false}}},
      {"mountExtensions", {{"idmap", {{"enabled", false}}}}},
  };
}

}  // namespace

HostFacts detect_host_facts() {
  HostFacts f;
  auto aa = base::read_file("/sys/module/apparmor/parameters/enabled");
  f.apparmor = aa && base::trim(*aa) == "Y";
  f.selinux = base::path_exists("/sys/fs/selinux/enforce");
  // seccomp(2) checks the flags before it reads the program: with a NULL program a known
  // flag fails with EFAULT, an unknown one with EINVAL, and nothing is installed.
  // WAIT_KILLABLE_RECV (5.19) is only valid together with NEW_LISTENER.
  constexpr std::pair<const char*, unsigned> kFlags[] = {
      {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
      {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
      {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
      {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
       SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | SECCOMP_FILTER_FLAG_NEW_LISTENER}};
  f.seccomp_flags.clear();
  for (auto [name, bits] : kFlags) {
    long r = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, bits, nullptr);
    if (r < 0 && errno == EFAULT) f.seccomp_flags.push_back(name);
  }
  return f;
}

std::string features_json(const HostFacts& facts) {
  OJson doc = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", "1.2.0"},
      {"hooks",
       {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
      {"mountOptions", mount_options()},
      {"linux", linux_section(facts)},
      {"annotations",
       {{"io.github.zrun.version", ZRUN_VERSION},
        {"org.opencontainers.runc.checkpoint.enabled", "true"}}},
  };
  return doc.dump(4);
}

}  // namespace zrun::spec
