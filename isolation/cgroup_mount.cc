// The "cgroup" mount type. See cgroup_mount.h.
#include "isolation/cgroup_mount.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>

#include "base/sys.h"

namespace zrun::iso {
namespace {

constexpr unsigned long kTmpfsFlags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

struct Hierarchy {
  std::string mount_point;  // host path, e.g. /sys/fs/cgroup/cpu,cpuacct
  std::string root;         // mountinfo root field
  std::string controllers;  // "cpu,cpuacct", "name=systemd", "" for cgroup2
  bool v2 = false;
  std::string cgroup_path;  // our cgroup in it (from /proc/self/cgroup)
};

// mountinfo: id parent maj:min root mountpoint opts [optional...] - fstype source superopts
std::vector<Hierarchy> host_hierarchies(const std::string& mountinfo) {
  static const char* kKnown[] = {"cpu",     "cpuacct",    "cpuset", "memory",  "devices",
                                 "freezer", "blkio",      "pids",   "net_cls", "net_prio",
                                 "hugetlb", "perf_event", "rdma",   "misc"};
  std::vector<Hierarchy> out;
  for (const auto& line : base::split(mountinfo, '\n')) {
    auto f = base::split(line, ' ');
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || dash == f.end() || f.end() - dash < 4) continue;
    const std::string& fstype = *(dash + 1);
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    if (!base::starts_with(f[4], "/sys/fs/cgroup")) continue;
    Hierarchy h{f[4], f[3], "", fstype == "cgroup2", ""};
    for (const auto& o : base::split(*(dash + 3), ',')) {
      bool known =
          base::starts_with(o, "name=") ||
          std::any_of(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return o == k; });
      if (!known) continue;
      if (!h.controllers.empty()) h.controllers += ',';
      h.controllers += o;
    }
    out.push_back(h);
  }
  return out;
}

// Same controller set, ignoring order.
bool same_set(const std::string& a, const std::string& b) {
  auto x = base::split(a, ','), y = base::split(b, ',');
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  return x == y;
}

void attach_cgroup_paths(std::vector<Hierarchy>& hs, const std::string& proc_cgroup) {
  for (const auto& line : base::split(proc_cgroup, '\n')) {
    auto p1 = line.find(':'), p2 = line.find(':', p1 + 1);
    if (p1 == std::string::npos || p2 == std::string::npos) continue;
    std::string ctrls = line.substr(p1 + 1, p2 - p1 - 1), path = line.substr(p2 + 1);
    for (auto& h : hs)
      if ((h.v2 && ctrls.empty()) || (!h.v2 && !ctrls.empty() && same_set(h.controllers, ctrls)))
        h.cgroup_path = path;
  }
}

// Host directory of our cgroup in hierarchy `h` (mount root is usually "/").
std::string host_cgroup_dir(const Hierarchy& h) {
  std::string rel = h.cgroup_path;
  if (h.root != "/" && base::starts_with(rel, h.root)) rel = rel.substr(h.root.size());
  return base::join_path(h.mount_point, rel);
}

base::Result<void> mount_hierarchy(int rootfd, const std::string& dest, const Hierarchy& h,
                                   const MountFlags& mf, bool cgroupns) {
  auto target = ZRUN_TRY(mkdir_in_root(rootfd, dest, false));
  unsigned long flags = mf.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
  if (cgroupns) {
    return mount_on_fd("cgroup", target.get(), h.v2 ? "cgroup2" : "cgroup", flags,
                       h.v2 ? "" : h.controllers, dest);
  }
  auto src = ZRUN_TRY_CTX(base::open_file(host_cgroup_dir(h), O_PATH | O_DIRECTORY),
                          "cgroup mount source");
  ZRUN_TRY(mount_on_fd(fd_path(src.get()), target.get(), "", MS_BIND | MS_REC, "", dest));
  if (flags == 0) return base::ok();
  auto top = ZRUN_TRY(base::open_in_root(rootfd, dest, O_PATH | O_DIRECTORY));
  return remount_bind(top.get(), flags, dest);
}

base::Result<void> mount_cgroup_v1_layout(int rootfd, const spec::Mount& m, const MountFlags& mf,
                                          bool cgroupns) {
  auto hs = host_hierarchies(ZRUN_TRY(base::read_file("/proc/self/mountinfo")));
  attach_cgroup_paths(hs, ZRUN_TRY(base::read_file("/proc/self/cgroup")));
  auto dest = ZRUN_TRY(mkdir_in_root(rootfd, m.destination, false));
  ZRUN_TRY(mount_on_fd("tmpfs", dest.get(), "tmpfs", kTmpfsFlags, "mode=755", m.destination));
  auto dir = ZRUN_TRY(base::open_in_root(rootfd, m.destination, O_PATH | O_DIRECTORY));
  for (const auto& h : hs) {
    if (h.cgroup_path.empty()) continue;  // not a hierarchy we are a member of
    std::string name = base::basename(h.mount_point);
    ZRUN_TRY(mount_hierarchy(rootfd, base::join_path(m.destination, name), h, mf, cgroupns));
    if (name.find(',') == std::string::npos) continue;
    for (const auto& part : base::split(name, ','))
      if (::symlinkat(name.c_str(), dir.get(), part.c_str()) < 0 && errno != EEXIST)
        return base::sys_error("symlink `" + part + "`");
  }
  if (mf.flags & MS_RDONLY)
    ZRUN_TRY(remount_bind(dir.get(), kTmpfsFlags | MS_RDONLY, m.destination));
  return base::ok();
}

}  // namespace

base::Result<void> mount_cgroup(int rootfd, const spec::Mount& m, const MountFlags& mf,
                                bool cgroupns) {
  struct statfs st {};
  if (::statfs("/sys/fs/cgroup", &st) < 0) return base::sys_error("statfs `/sys/fs/cgroup`");
  if (st.f_type != CGROUP2_SUPER_MAGIC) return mount_cgroup_v1_layout(rootfd, m, mf, cgroupns);
  auto dest = ZRUN_TRY(mkdir_in_root(rootfd, m.destination, false));
  unsigned long flags = mf.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
  auto r = mount_on_fd("cgroup2", dest.get(), "cgroup2", flags, mf.data, m.destination);
  if (r.ok() || (r.error().err != EPERM && r.error().err != EBUSY)) return r;
  // Without the right to mount cgroup2 (user ns without cgroup ns): bind the host's.
  auto src = ZRUN_TRY(base::open_file("/sys/fs/cgroup", O_PATH | O_DIRECTORY));
  ZRUN_TRY(mount_on_fd(fd_path(src.get()), dest.get(), "", MS_BIND | MS_REC, "", m.destination));
  if (flags == 0) return base::ok();
  auto top = ZRUN_TRY(base::open_in_root(rootfd, m.destination, O_PATH | O_DIRECTORY));
  return remount_bind(top.get(), flags, m.destination);
}

}  // namespace zrun::iso
