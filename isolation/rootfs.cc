// Child-side rootfs setup. See rootfs.h. Every path inside the rootfs is resolved with
// openat2(RESOLVE_IN_ROOT) relative to the rootfs fd and mounted onto via /proc/self/fd/N
// (runc's defence against symlink races, CVE-2019-19921 / CVE-2021-30465).
#include "isolation/rootfs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/sys.h"
#include "isolation/cgroup_mount.h"
#include "isolation/devices.h"
#include "isolation/mounts.h"

namespace zrun::iso {
namespace {

bool is_bind(const spec::Mount& m, const MountFlags& mf) {
  return m.type == "bind" || (mf.flags & MS_BIND);
}

bool has_dev_bind(const spec::Spec& spec) {
  for (const auto& m : spec.mounts)
    if (base::clean_path(m.destination) == "/dev" && is_bind(m, parse_mount_options(m.options)))
      return true;
  return false;
}

// Flags that need a remount after a bind (mount(2) ignores them with MS_BIND).
constexpr unsigned long kBindIgnored = MS_BIND | MS_REC | MS_REMOUNT | MS_SILENT;

base::Result<base::UniqueFd> mount_bind_entry(int rootfd, const spec::Mount& m,
                                              const MountFlags& mf) {
  struct stat st {};
  if (::stat(m.source.c_str(), &st) < 0)
    return base::sys_error("stat bind source `" + m.source + "`");
  auto dest = ZRUN_TRY(mkdir_in_root(rootfd, m.destination, !S_ISDIR(st.st_mode)));
  auto src = ZRUN_TRY(base::open_file(m.source, O_PATH));
  ZRUN_TRY(mount_on_fd(fd_path(src.get()), dest.get(), "", MS_BIND | (mf.flags & MS_REC), "",
                       m.destination));
  // Reopen: the old fd names the directory under the new mount, not the mount.
  auto top = ZRUN_TRY(base::open_in_root(rootfd, m.destination, O_PATH));
  if (mf.flags & ~kBindIgnored) ZRUN_TRY(remount_bind(top.get(), mf.flags, m.destination));
  return top;
}

base::Result<base::UniqueFd> mount_fs_entry(int rootfd, const spec::Mount& m, const MountFlags& mf,
                                            unsigned long flags) {
  auto dest = ZRUN_TRY(mkdir_in_root(rootfd, m.destination, false));
  base::UniqueFd old;  // tmpcopyup: the directory's content stays reachable through this fd
  if (mf.tmpcopyup && m.type == "tmpfs") {
    old = ZRUN_TRY(base::open_in_root(rootfd, m.destination, O_RDONLY | O_DIRECTORY));
    flags &= ~MS_RDONLY;
  }
  auto r = mount_on_fd(m.source, dest.get(), m.type, flags, mf.data, m.destination);
  const char* host = m.type == "sysfs" ? "/sys" : m.type == "mqueue" ? "/dev/mqueue" : nullptr;
  if (!r.ok() && host && r.error().err == EPERM) {
    // sysfs/mqueue cannot be mounted in a user ns that does not own the net/ipc ns:
    // bind the host's instead (runc does the same).
    auto src = ZRUN_TRY(base::open_file(host, O_PATH | O_DIRECTORY));
    r = mount_on_fd(fd_path(src.get()), dest.get(), "", MS_BIND | MS_REC, "", m.destination);
    if (r.ok() && (flags & ~kBindIgnored)) {
      auto top = ZRUN_TRY(base::open_in_root(rootfd, m.destination, O_PATH));
      r = remount_bind(top.get(), flags, m.destination);
    }
  }
  if (!r.ok()) return std::move(r).error();
  auto top = ZRUN_TRY(base::open_in_root(rootfd, m.destination, O_PATH));
  if (old) {
    auto fresh = ZRUN_TRY(base::open_in_root(rootfd, m.destination, O_RDONLY | O_DIRECTORY));
    ZRUN_TRY_CTX(copy_dir_contents(old.get(), fresh.get()), "tmpcopyup");
    if (mf.flags & MS_RDONLY) ZRUN_TRY(remount_bind(top.get(), mf.flags, m.destination));
  }
  return top;
}

// runc's checkProcMount: nothing may be mounted over /proc except a procfs, nor inside
// /proc except the few files lxcfs emulates (mounting over /proc entries can disable
// LSM protections, CVE-2019-16884).
base::Result<void> check_proc_mount(const spec::Mount& m) {
  std::string dest = base::clean_path(m.destination);
  if (dest == "/proc") {
    if (m.type == "proc" || m.source.empty()) return base::ok();
    struct statfs st {};
    if (::statfs(m.source.c_str(), &st) == 0 && st.f_type == PROC_SUPER_MAGIC) return base::ok();
    return base::make_error("`/proc` cannot be mounted because it is not of type proc");
  }
  if (!base::starts_with(dest, "/proc/")) return base::ok();
  static const char* kAllowed[] = {"/proc/cpuinfo", "/proc/diskstats",
                                   "/proc/meminfo", "/proc/stat",
                                   "/proc/swaps",   "/proc/uptime",
                                   "/proc/loadavg", "/proc/slabinfo",
                                   "/proc/net/dev", "/proc/sys/kernel/ns_last_pid"};
  for (const char* a : kAllowed)
    if (dest == a) return base::ok();
  return base::make_error("`" + dest + "` cannot be mounted because it is inside /proc");
}

// One entry of spec.mounts. `dev_ro_flags` receives the flags of a read-only /dev mount,
// which is made read-only only after the device nodes are created in it (as runc does).
base::Result<void> mount_entry(int rootfd, const spec::Spec& spec, const spec::Mount& m,
                               unsigned long* dev_ro_flags) {
  MountFlags mf = parse_mount_options(m.options);
  if (mf.idmap) return base::make_error("id-mapped mounts are not supported");
  ZRUN_TRY(check_proc_mount(m));
  if (m.type == "cgroup") {
    bool cgroupns = spec.linux_ && spec.linux_->has_ns(spec::NsType::kCgroup);
    return mount_cgroup(rootfd, m, mf, cgroupns);
  }
  base::UniqueFd top;
  if (is_bind(m, mf)) {
    top = ZRUN_TRY(mount_bind_entry(rootfd, m, mf));
  } else {
    unsigned long flags = mf.flags;
    if (base::clean_path(m.destination) == "/dev" && (flags & MS_RDONLY)) {
      *dev_ro_flags = flags;
      flags &= ~MS_RDONLY;
    }
    top = ZRUN_TRY(mount_fs_entry(rootfd, m, mf, flags));
  }
  if (mf.propagation &&
      ::mount(nullptr, fd_path(top.get()).c_str(), nullptr, mf.propagation, nullptr) < 0)
    return base::sys_error("set propagation of `" + m.destination + "`");
  if (mf.has_recursive_attrs())
    ZRUN_TRY(set_recursive_attrs(top.get(), mf.attr_set, mf.attr_clr, m.destination));
  return base::ok();
}

base::Result<void> readonly_path(int rootfd, const std::string& path) {
  auto fd = base::open_in_root(rootfd, path, O_PATH);
  if (!fd.ok() && fd.error().err == ENOENT) return base::ok();
  if (!fd.ok()) return std::move(fd).error();
  ZRUN_TRY(mount_on_fd(fd_path(fd->get()), fd->get(), "", MS_BIND | MS_REC, "", path));
  auto top = ZRUN_TRY(base::open_in_root(rootfd, path, O_PATH));
  return remount_bind(top.get(), MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, path);
}

base::Result<void> mask_path(int rootfd, const std::string& path) {
  auto fd = base::open_in_root(rootfd, path, O_PATH);
  if (!fd.ok() && (fd.error().err == ENOENT || fd.error().err == ENOTDIR)) return base::ok();
  if (!fd.ok()) return std::move(fd).error();
  struct stat st {};
  if (::fstat(fd->get(), &st) < 0) return base::sys_error("stat `" + path + "`");
  if (S_ISDIR(st.st_mode)) return mount_on_fd("tmpfs", fd->get(), "tmpfs", MS_RDONLY, "", path);
  return mount_on_fd("/dev/null", fd->get(), "", MS_BIND, "", path);
}

base::Result<void> do_pivot_root(const std::string& root) {
  auto oldroot = ZRUN_TRY(base::open_file("/", O_RDONLY | O_DIRECTORY));
  auto newroot = ZRUN_TRY(base::open_file(root, O_RDONLY | O_DIRECTORY));
  if (::fchdir(newroot.get()) < 0) return base::sys_error("chdir `" + root + "`");
  // pivot_root(".", "."): the old root ends up stacked on "/" and is detached below,
  // so no directory for it is needed inside the rootfs (pivot_root(2) NOTES).
  if (::syscall(SYS_pivot_root, ".", ".") < 0) return base::sys_error("pivot_root");
  if (::fchdir(oldroot.get()) < 0) return base::sys_error("chdir to old root");
  // Keep the unmount from propagating to the host's mounts.
  if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0)
    return base::sys_error("make old root rslave");
  if (::umount2(".", MNT_DETACH) < 0) return base::sys_error("unmount old root");
  if (::chdir("/") < 0) return base::sys_error("chdir `/`");
  return base::ok();
}

base::Result<void> move_root(const std::string& root) {
  if (::chdir(root.c_str()) < 0) return base::sys_error("chdir `" + root + "`");
  if (::mount(root.c_str(), "/", nullptr, MS_MOVE, nullptr) < 0)
    return base::sys_error("move rootfs to `/`");
  if (::chroot(".") < 0) return base::sys_error("chroot");
  if (::chdir("/") < 0) return base::sys_error("chdir `/`");
  return base::ok();
}

base::Result<void> remount_root_readonly() {
  auto root = ZRUN_TRY(base::open_file("/", O_PATH | O_DIRECTORY));
  struct statfs st {};
  if (::fstatfs(root.get(), &st) < 0) return base::sys_error("statfs `/`");
  unsigned long keep =
      static_cast<unsigned long>(st.f_flags) &
      (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
  return remount_bind(root.get(), keep | MS_RDONLY, "/");
}

}  // namespace

base::Result<void> set_hostname(const spec::Spec& spec) {
  if (!spec.hostname.empty() && ::sethostname(spec.hostname.data(), spec.hostname.size()) < 0)
    return base::sys_error("sethostname `" + spec.hostname + "`");
  if (!spec.domainname.empty() &&
      ::setdomainname(spec.domainname.data(), spec.domainname.size()) < 0)
    return base::sys_error("setdomainname `" + spec.domainname + "`");
  return base::ok();
}

base::Result<void> prepare_rootfs(const spec::Spec& spec, const RootfsOptions& opts) {
  const std::string& root = spec.root.path;
  // Nothing we mount may propagate back to the host; host mounts may still come in.
  if (::mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr) < 0)
    return base::sys_error("make `/` rslave");
  // pivot_root needs the new root to be a mount point.
  if (::mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
    return base::sys_error("bind mount rootfs `" + root + "`");
  auto rootfd = ZRUN_TRY(base::open_file(root, O_PATH | O_DIRECTORY));
  unsigned long dev_ro_flags = 0;
  for (const auto& m : spec.mounts)
    ZRUN_TRY_CTX(mount_entry(rootfd.get(), spec, m, &dev_ro_flags),
                 "mount `" + m.destination + "`");
  if (!has_dev_bind(spec)) ZRUN_TRY_CTX(setup_dev(rootfd.get(), spec, opts.userns), "setup /dev");
  if (dev_ro_flags) {
    auto dev = ZRUN_TRY(base::open_in_root(rootfd.get(), "/dev", O_PATH | O_DIRECTORY));
    ZRUN_TRY(remount_bind(dev.get(), dev_ro_flags, "/dev"));
  }
  if (spec.process && !spec.process->cwd.empty())
    ZRUN_TRY_CTX(mkdir_in_root(rootfd.get(), spec.process->cwd, false), "create cwd");
  return base::ok();
}

base::Result<void> enter_rootfs(const spec::Spec& spec, const RootfsOptions& opts) {
  const std::string& root = spec.root.path;
  {
    // Applied before the pivot, resolved inside the rootfs; the host's /proc provides
    // /proc/self/fd even when the container has no /proc of its own.
    auto rootfd = ZRUN_TRY(base::open_file(root, O_PATH | O_DIRECTORY));
    if (spec.linux_) {
      for (const auto& p : spec.linux_->readonly_paths)
        ZRUN_TRY_CTX(readonly_path(rootfd.get(), p), "readonly path `" + p + "`");
      for (const auto& p : spec.linux_->masked_paths)
        ZRUN_TRY_CTX(mask_path(rootfd.get(), p), "mask path `" + p + "`");
    }
  }
  if (opts.no_pivot)
    ZRUN_TRY(move_root(root));
  else
    ZRUN_TRY(do_pivot_root(root));
  if (spec.root.readonly) ZRUN_TRY(remount_root_readonly());
  if (spec.linux_ && !spec.linux_->rootfs_propagation.empty()) {
    const std::string& p = spec.linux_->rootfs_propagation;
    unsigned long flags = propagation_flags(p);
    if (flags == 0) return base::make_error("unknown rootfsPropagation `" + p + "`");
    if (::mount(nullptr, "/", nullptr, flags, nullptr) < 0)
      return base::sys_error("set rootfs propagation `" + p + "`");
  }
  return base::ok();
}

}  // namespace zrun::iso
