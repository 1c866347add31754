#include "spec/default_spec.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

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
  return {
      mount("/proc", "proc", "proc", {}),
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      devpts,
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      sys,
      mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}),
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
  // Hook point: the default seccomp profile (a later issue) goes into lx["seccomp"] here.
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
