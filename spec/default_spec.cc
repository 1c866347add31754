#include "spec/default_spec.h"

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <string_view>

#include "base/sys.h"

namespace zrun::spec {

namespace {

using OJson = nlohmann::ordered_json;

OJson mount(const char* dest, const char* type, const char* source,
            std::initializer_list<const char*> options) {
  OJson m = {{"destination", dest}, {"type", type}, {"source", source}};
  if (options.size() != 0) m["options"] = options;
  return m;
}

OJson process() {
  const auto caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  return {
      {"terminal", true},
      {"user", {{"uid", 0}, {"gid", 0}}},
      {"args", {"sh"}},
      {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
      {"cwd", "/"},
      {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
      {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
      {"noNewPrivileges", true},
  };
}

OJson mounts(bool rootless) {
  OJson devpts = mount("/dev/pts", "devpts", "devpts",
                       {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"});
  // Without a mapping for gid 5 the kernel rejects gid=5 in a user namespace.
  if (rootless) devpts["options"].erase(devpts["options"].size() - 1);
  // A user namespace that does not own the network namespace cannot mount sysfs.
  OJson sys = rootless ? mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"})
                       : mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"});
  OJson all = {
      // Unlike runc's template, /proc gets nosuid,noexec,nodev (as Docker's): nothing in it
      // should ever be executed or be a device.
      mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      devpts,
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      sys,
  };
  // Rootless: the rbind of /sys already shows the host's cgroupfs (read-only); a cgroup
  // mount would need the hierarchies' directories, which are not delegated to the user.
  if (!rootless)
    all.push_back(mount("/sys/fs/cgroup", "cgroup", "cgroup",
                        {"nosuid", "noexec", "nodev", "relatime", "ro"}));
  return all;
}

// The default seccomp profile. Docker's is an allowlist of ~350 syscalls that must track
// every new kernel; ours is the other way round: allow by default and deny (EPERM) the
// syscalls Docker denies to a container without extra capabilities that are *not* already
// refused by the default capability set (keyrings are not namespaced, user namespaces
// and io_uring/bpf/perf/userfaultfd widen the kernel attack surface), plus the privileged
// ones as defence in depth. A user who grants CAP_SYS_ADMIN and wants mount() inside must
// edit this list, as with Docker's --cap-add without --security-opt.
constexpr std::string_view kDeniedSyscalls =
    "acct add_key bpf clock_adjtime clock_settime create_module delete_module finit_module "
    "fsconfig fsmount fsopen fspick get_kernel_syms init_module io_uring_enter "
    "io_uring_register io_uring_setup ioperm iopl kcmp kexec_file_load kexec_load keyctl "
    "lookup_dcookie mount mount_setattr move_mount name_to_handle_at nfsservctl "
    "open_by_handle_at open_tree perf_event_open pivot_root query_module quotactl quotactl_fd "
    "reboot request_key setns settimeofday stime swapoff swapon syslog _sysctl sysfs umount "
    "umount2 uselib userfaultfd ustat vhangup vm86 vm86old";

OJson default_seccomp() {
  OJson archs = OJson::array();
#if defined(__x86_64__)
  archs = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
  archs = {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#endif
  // Creating a user namespace needs no capability: refuse the flag in clone and unshare.
  // clone3 passes its flags in memory seccomp cannot read; ENOSYS makes libc fall back to
  // clone (Docker does the same).
  OJson newuser = {{{"index", 0},
                    {"value", CLONE_NEWUSER},
                    {"valueTwo", CLONE_NEWUSER},
                    {"op", "SCMP_CMP_MASKED_EQ"}}};
  return {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"architectures", archs},
      {"syscalls",
       {{{"names", base::split(kDeniedSyscalls, ' ')},
         {"action", "SCMP_ACT_ERRNO"},
         {"errnoRet", EPERM}},
        {{"names", {"clone", "unshare"}},
         {"action", "SCMP_ACT_ERRNO"},
         {"errnoRet", EPERM},
         {"args", newuser}},
        {{"names", {"clone3"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", ENOSYS}}}},
  };
}

OJson linux_section(bool rootless) {
  OJson lx = OJson::object();
  if (!rootless) {
    lx["resources"] = {{"devices", {{{"allow", false}, {"access", "rwm"}}}}};
  } else {
    lx["uidMappings"] = {{{"containerID", 0}, {"hostID", ::geteuid()}, {"size", 1}}};
    lx["gidMappings"] = {{{"containerID", 0}, {"hostID", ::getegid()}, {"size", 1}}};
  }
  OJson ns = OJson::array();
  for (const char* t : {"pid", "network", "ipc", "uts", "mount", "cgroup"}) {
    if (rootless && std::string_view(t) == "network") continue;
    ns.push_back({{"type", t}});
  }
  if (rootless) ns.push_back({{"type", "user"}});
  lx["namespaces"] = ns;
  lx["maskedPaths"] = {"/proc/acpi",
                       "/proc/asound",
                       "/proc/kcore",
                       "/proc/keys",
                       "/proc/latency_stats",
                       "/proc/timer_list",
                       "/proc/timer_stats",
                       "/proc/sched_debug",
                       "/sys/firmware",
                       "/proc/scsi",
                       "/sys/devices/virtual/powercap"};
  lx["readonlyPaths"] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
  lx["seccomp"] = default_seccomp();
  return lx;
}

}  // namespace

std::string default_spec_json(bool rootless) {
  OJson doc = {
      {"ociVersion", "1.2.0"},
      {"process", process()},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "zrun"},
      {"mounts", mounts(rootless)},
      {"linux", linux_section(rootless)},
  };
  return doc.dump(1, '\t');
}

}  // namespace zrun::spec
