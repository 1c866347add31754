// Mount option parsing (pure) and fd-based mount primitives. See mounts.h.
#include "isolation/mounts.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <string_view>

#include "base/sys.h"

namespace zrun::iso {
namespace {

struct FlagOpt {
  const char* name;
  bool clear;  // the option clears the flag ("rw" clears MS_RDONLY)
  unsigned long flag;
};

// mount(8) option names (runc's table plus the few it lacks).
constexpr FlagOpt kFlagOpts[] = {
    {"defaults", false, 0},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},
    {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},
    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},
    {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"bind", false, MS_BIND},
    {"rbind", false, MS_BIND | MS_REC},
    {"silent", false, MS_SILENT},
    {"loud", true, MS_SILENT},
    {"iversion", false, MS_I_VERSION},
    {"noiversion", true, MS_I_VERSION},
    {"lazytime", false, MS_LAZYTIME},
    {"nolazytime", true, MS_LAZYTIME},
    {"nosymfollow", false, MS_NOSYMFOLLOW},
    {"symfollow", true, MS_NOSYMFOLLOW},
};

struct AttrOpt {
  const char* name;
  uint64_t set, clr;
};

// Recursive attributes for mount_setattr(2). The atime mode is one field
// (MOUNT_ATTR__ATIME): changing it needs the whole field in attr_clr, and clearing
// a single atime bit is EINVAL, so "undo" options select the kernel default (relatime);
// "rnorelatime" selects strictatime as norelatime does in mount(8).
constexpr AttrOpt kAttrOpts[] = {
    {"rro", MOUNT_ATTR_RDONLY, 0},
    {"rrw", 0, MOUNT_ATTR_RDONLY},
    {"rnosuid", MOUNT_ATTR_NOSUID, 0},
    {"rsuid", 0, MOUNT_ATTR_NOSUID},
    {"rnodev", MOUNT_ATTR_NODEV, 0},
    {"rdev", 0, MOUNT_ATTR_NODEV},
    {"rnoexec", MOUNT_ATTR_NOEXEC, 0},
    {"rexec", 0, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", MOUNT_ATTR_NODIRATIME, 0},
    {"rdiratime", 0, MOUNT_ATTR_NODIRATIME},
    {"rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW, 0},
    {"rsymfollow", 0, MOUNT_ATTR_NOSYMFOLLOW},
    {"rnoatime", MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME},
    {"ratime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
    {"rrelatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
    {"rnorelatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME},
    {"rstrictatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME},
    {"rnostrictatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
};

void apply_attr(MountFlags& mf, const AttrOpt& a) {
  if (a.clr & MOUNT_ATTR__ATIME) {
    mf.attr_set &= ~static_cast<uint64_t>(MOUNT_ATTR__ATIME);
    mf.attr_clr |= MOUNT_ATTR__ATIME;
    mf.attr_set |= a.set;
    return;
  }
  mf.attr_set = (mf.attr_set & ~a.clr) | a.set;
  mf.attr_clr = (mf.attr_clr & ~a.set) | a.clr;
}

}  // namespace

unsigned long propagation_flags(const std::string& name) {
  if (name == "private") return MS_PRIVATE;
  if (name == "rprivate") return MS_PRIVATE | MS_REC;
  if (name == "shared") return MS_SHARED;
  if (name == "rshared") return MS_SHARED | MS_REC;
  if (name == "slave") return MS_SLAVE;
  if (name == "rslave") return MS_SLAVE | MS_REC;
  if (name == "unbindable") return MS_UNBINDABLE;
  if (name == "runbindable") return MS_UNBINDABLE | MS_REC;
  return 0;
}

MountFlags parse_mount_options(const std::vector<std::string>& options) {
  MountFlags mf;
  for (const auto& opt : options) {
    bool done = false;
    for (const auto& f : kFlagOpts) {
      if (opt != f.name) continue;
      if (f.clear)
        mf.flags &= ~f.flag;
      else
        mf.flags |= f.flag;
      done = true;
      break;
    }
    if (done) continue;
    if (unsigned long p = propagation_flags(opt)) {
      mf.propagation = p;  // the last one wins, as in mount(8)
      continue;
    }
    for (const auto& a : kAttrOpts) {
      if (opt != a.name) continue;
      apply_attr(mf, a);
      done = true;
      break;
    }
    if (done) continue;
    if (opt == "tmpcopyup") {
      mf.tmpcopyup = true;
    } else if (opt == "notmpcopyup") {
      mf.tmpcopyup = false;
    } else if (opt == "idmap" || opt == "ridmap") {
      mf.idmap = true;
    } else if (!opt.empty()) {
      if (!mf.data.empty()) mf.data += ',';
      mf.data += opt;
    }
  }
  return mf;
}

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

namespace {

// Path components of `path`, in order ("" and "." dropped; ".." kept).
std::deque<std::string> components(const std::string& path) {
  std::deque<std::string> out;
  for (auto& c : base::split(path, '/'))
    if (!c.empty() && c != ".") out.push_back(c);
  return out;
}

std::string join_components(const std::vector<std::string>& comps) {
  std::string s;
  for (auto& c : comps) s += "/" + c;
  return s.empty() ? "/" : s;
}

// The target of the symlink `name` in `dirfd`, or "" with errno set.
std::string read_link_at(int dirfd, const std::string& name) {
  std::string target(4096, '\0');
  ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
  if (n < 0) return "";
  target.resize(static_cast<size_t>(n));
  return target;
}

}  // namespace

base::Result<base::UniqueFd> mkdir_in_root(int rootfd, const std::string& path, bool file,
                                           mode_t mode) {
  // The walk resolves symlinks itself, component by component, like openat2's
  // RESOLVE_IN_ROOT: an absolute target restarts at the rootfs, ".." stops at it. So
  // `done` is always a symlink-free path inside the rootfs, and a *dangling* symlink
  // (runc creates its target too) gets its target created inside the rootfs, never on
  // the host path it names. Each step reopens through openat2(RESOLVE_IN_ROOT).
  constexpr int kMaxLinks = 40;  // MAXSYMLINKS, as path_resolution(7)
  std::deque<std::string> todo = components(path);
  std::vector<std::string> done;
  int links = 0;
  auto cur = ZRUN_TRY(base::open_in_root(rootfd, "/", O_PATH | O_DIRECTORY));
  while (!todo.empty()) {
    std::string comp = std::move(todo.front());
    todo.pop_front();
    if (comp == "..") {
      if (!done.empty()) done.pop_back();
      cur = ZRUN_TRY(base::open_in_root(rootfd, join_components(done), O_PATH | O_DIRECTORY));
      continue;
    }
    bool last = todo.empty();
    std::string here = join_components(done);
    here = (here == "/" ? "" : here) + "/" + comp;
    struct stat st {};
    int rc = ::fstatat(cur.get(), comp.c_str(), &st, AT_SYMLINK_NOFOLLOW);
    int err = rc < 0 ? errno : 0;
    if (rc == 0 && S_ISLNK(st.st_mode)) {
      if (++links > kMaxLinks) return base::sys_error("resolve `" + path + "` in rootfs", ELOOP);
      std::string target = read_link_at(cur.get(), comp);
      if (target.empty()) return base::sys_error("readlink `" + here + "` in rootfs");
      auto more = components(target);
      todo.insert(todo.begin(), more.begin(), more.end());
      if (target.front() == '/') {
        done.clear();
        cur = ZRUN_TRY(base::open_in_root(rootfd, "/", O_PATH | O_DIRECTORY));
      }
      continue;
    }
    if (rc < 0 && err != ENOENT) return base::sys_error("stat `" + here + "` in rootfs", err);
    if (rc < 0) {
      // `cur` was itself resolved inside the root, so creating relative to it is safe.
      if (last && file) {
        rc = ::openat(cur.get(), comp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
                      0644);
        if (rc >= 0) ::close(rc);
      } else {
        rc = ::mkdirat(cur.get(), comp.c_str(), mode);
      }
      if (rc < 0 && errno != EEXIST) return base::sys_error("create `" + here + "` in rootfs");
    }
    // Reopened from the root: if the entry was swapped for a symlink meanwhile, it is
    // still resolved inside the rootfs.
    cur = ZRUN_TRY(base::open_in_root(rootfd, here, O_PATH));
    done.push_back(std::move(comp));
  }
  return cur;
}

base::Result<void> mount_on_fd(const std::string& source, int target_fd, const std::string& fstype,
                               unsigned long flags, const std::string& data,
                               const std::string& what) {
  std::string target = fd_path(target_fd);
  if (::mount(source.empty() ? nullptr : source.c_str(), target.c_str(),
              fstype.empty() ? nullptr : fstype.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) < 0)
    return base::sys_error("mount `" + what + "`");
  return base::ok();
}

base::Result<void> remount_bind(int target_fd, unsigned long flags, const std::string& what) {
  std::string target = fd_path(target_fd);
  unsigned long f = (flags & ~(MS_REC | MS_SILENT)) | MS_REMOUNT | MS_BIND;
  if (::mount(nullptr, target.c_str(), nullptr, f, nullptr) == 0) return base::ok();
  int err = errno;
  if (err != EPERM) return base::sys_error("remount `" + what + "`", err);
  // In a user namespace the kernel locks nosuid/nodev/noexec/atime flags that the
  // mount already had (mount_namespaces(7)); keep them and retry.
  struct statfs st {};
  if (::fstatfs(target_fd, &st) < 0) return base::sys_error("statfs `" + what + "`");
  unsigned long locked =
      static_cast<unsigned long>(st.f_flags) &
      (ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_NOATIME | ST_NODIRATIME | ST_RELATIME | ST_RDONLY);
  if ((f | locked) == f) return base::sys_error("remount `" + what + "`", err);
  if (::mount(nullptr, target.c_str(), nullptr, f | locked, nullptr) < 0)
    return base::sys_error("remount `" + what + "`");
  return base::ok();
}

base::Result<void> set_recursive_attrs(int target_fd, uint64_t set, uint64_t clr,
                                       const std::string& what) {
  struct mount_attr attr {};
  attr.attr_set = set;
  attr.attr_clr = clr;
  if (::mount_setattr(target_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
    return base::sys_error("set recursive mount attributes on `" + what + "`");
  return base::ok();
}

}  // namespace zrun::iso

namespace zrun::iso {
namespace {

base::Result<void> copy_file_data(int src, int dst, const std::string& name) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(src, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::sys_error("read `" + name + "`");
    if (n == 0) return base::ok();
    ZRUN_TRY_CTX(base::write_all(dst, std::string_view(buf, static_cast<size_t>(n))),
                 "copy `" + name + "`");
  }
}

base::Result<void> copy_entry(int src_dir, int dst_dir, const char* name, const struct stat& st) {
  std::string n = name;
  if (S_ISDIR(st.st_mode)) {
    if (::mkdirat(dst_dir, name, st.st_mode & 07777) < 0 && errno != EEXIST)
      return base::sys_error("mkdir `" + n + "`");
    auto s = ZRUN_TRY(base::open_at(src_dir, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    auto d = ZRUN_TRY(base::open_at(dst_dir, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    ZRUN_TRY_CTX(copy_dir_contents(s.get(), d.get()), n);
  } else if (S_ISREG(st.st_mode)) {
    auto s = ZRUN_TRY(base::open_at(src_dir, n, O_RDONLY | O_NOFOLLOW));
    auto d = ZRUN_TRY(
        base::open_at(dst_dir, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, st.st_mode & 07777));
    ZRUN_TRY(copy_file_data(s.get(), d.get(), n));
  } else if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t len = ::readlinkat(src_dir, name, target.data(), target.size());
    if (len < 0) return base::sys_error("readlink `" + n + "`");
    target.resize(static_cast<size_t>(len));
    if (::symlinkat(target.c_str(), dst_dir, name) < 0)
      return base::sys_error("symlink `" + n + "`");
  } else if (::mknodat(dst_dir, name, st.st_mode, st.st_rdev) < 0) {
    return base::sys_error("mknod `" + n + "`");
  }
  if (::fchownat(dst_dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
    return base::sys_error("chown `" + n + "`");
  if (!S_ISLNK(st.st_mode) && ::fchmodat(dst_dir, name, st.st_mode & 07777, 0) < 0)
    return base::sys_error("chmod `" + n + "`");
  return base::ok();
}

}  // namespace

base::Result<void> copy_dir_contents(int src_dirfd, int dst_dirfd) {
  int dupfd = ::fcntl(src_dirfd, F_DUPFD_CLOEXEC, 0);
  if (dupfd < 0) return base::sys_error("dup");
  DIR* dir = ::fdopendir(dupfd);
  if (!dir) {
    int err = errno;
    ::close(dupfd);
    return base::sys_error("opendir", err);
  }
  struct Closer {
    DIR* d;
    ~Closer() { ::closedir(d); }
  } closer{dir};
  while (struct dirent* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    struct stat st {};
    if (::fstatat(src_dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      return base::sys_error(std::string("stat `") + e->d_name + "`");
    ZRUN_TRY(copy_entry(src_dirfd, dst_dirfd, e->d_name, st));
  }
  return base::ok();
}

}  // namespace zrun::iso
