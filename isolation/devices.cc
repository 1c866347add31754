// /dev setup inside the container rootfs. See devices.h.
#include "isolation/devices.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/sys.h"
#include "isolation/mounts.h"

namespace zrun::iso {
namespace {

spec::Device make_dev(const char* path, int64_t major, int64_t minor) {
  spec::Device d;
  d.path = path;
  d.type = 'c';
  d.major = major;
  d.minor = minor;
  d.file_mode = 0666;
  d.uid = 0;
  d.gid = 0;
  return d;
}

mode_t dev_type_bits(char type) {
  switch (type) {
    case 'b':
      return S_IFBLK;
    case 'p':
      return S_IFIFO;
    default:
      return S_IFCHR;  // 'c' and 'u' (unbuffered char)
  }
}

// Bind-mount the host's node at dev.path over an empty file in the rootfs (runc does
// this where mknod is not permitted).
base::Result<void> bind_device(int rootfd, const spec::Device& dev) {
  auto dest = ZRUN_TRY(mkdir_in_root(rootfd, dev.path, /*file=*/true));
  auto src = ZRUN_TRY_CTX(base::open_file(dev.path, O_PATH), "bind device");
  return mount_on_fd(fd_path(src.get()), dest.get(), "", MS_BIND, "", dev.path);
}

// Symlinks every runc container has; existing entries are left alone.
base::Result<void> create_dev_symlinks(int devfd) {
  struct Link {
    const char* target;
    const char* name;
  };
  static constexpr Link kLinks[] = {{"/proc/self/fd", "fd"},
                                    {"/proc/self/fd/0", "stdin"},
                                    {"/proc/self/fd/1", "stdout"},
                                    {"/proc/self/fd/2", "stderr"}};
  for (const auto& l : kLinks)
    if (::symlinkat(l.target, devfd, l.name) < 0 && errno != EEXIST)
      return base::sys_error(std::string("symlink `/dev/") + l.name + "`");
  // runc links /dev/core only when the host has /proc/kcore.
  if (base::path_exists("/proc/kcore") && ::symlinkat("/proc/kcore", devfd, "core") < 0 &&
      errno != EEXIST)
    return base::sys_error("symlink `/dev/core`");
  // /dev/ptmx must be the devpts instance's ptmx (devpts newinstance semantics).
  if (::unlinkat(devfd, "ptmx", 0) < 0 && errno != ENOENT)
    return base::sys_error("remove `/dev/ptmx`");
  if (::symlinkat("pts/ptmx", devfd, "ptmx") < 0) return base::sys_error("symlink `/dev/ptmx`");
  for (const char* d : {"shm", "pts"})
    if (::mkdirat(devfd, d, 0755) < 0 && errno != EEXIST)
      return base::sys_error(std::string("mkdir `/dev/") + d + "`");
  return base::ok();
}

}  // namespace

const std::vector<spec::Device>& default_devices() {
  static const std::vector<spec::Device> kDefault = {
      make_dev("/dev/null", 1, 3),   make_dev("/dev/zero", 1, 5),    make_dev("/dev/full", 1, 7),
      make_dev("/dev/random", 1, 8), make_dev("/dev/urandom", 1, 9), make_dev("/dev/tty", 5, 0),
  };
  return kDefault;
}

base::Result<void> create_device(int rootfd, const spec::Device& dev, bool bind_only) {
  if (bind_only) return bind_device(rootfd, dev);
  std::string clean = base::clean_path(dev.path);
  auto parent = ZRUN_TRY(mkdir_in_root(rootfd, base::dirname(clean), /*file=*/false));
  std::string name = base::basename(clean);
  mode_t mode = (dev.file_mode.value_or(0666) & 07777) | dev_type_bits(dev.type);
  dev_t num = dev.type == 'p'
                  ? 0
                  : makedev(static_cast<unsigned>(dev.major), static_cast<unsigned>(dev.minor));
  if (::mknodat(parent.get(), name.c_str(), mode, num) < 0) {
    if (errno == EEXIST) return base::ok();
    if (errno == EPERM) return bind_device(rootfd, dev);
    return base::sys_error("mknod `" + dev.path + "`");
  }
  if (dev.uid || dev.gid) {
    if (::fchownat(parent.get(), name.c_str(), dev.uid ? *dev.uid : static_cast<uid_t>(-1),
                   dev.gid ? *dev.gid : static_cast<gid_t>(-1), AT_SYMLINK_NOFOLLOW) < 0)
      return base::sys_error("chown `" + dev.path + "`");
  }
  return base::ok();
}

base::Result<void> setup_dev(int rootfd, const spec::Spec& spec, bool bind_only) {
  // Device modes are exact (fileMode), not filtered by the init's umask.
  mode_t old = ::umask(0);
  struct Restore {
    mode_t m;
    ~Restore() { ::umask(m); }
  } restore{old};
  auto devdir = ZRUN_TRY(mkdir_in_root(rootfd, "/dev", /*file=*/false));
  const std::vector<spec::Device> none;
  const auto& extra = spec.linux_ ? spec.linux_->devices : none;
  for (const auto& d : default_devices()) {
    bool overridden = false;
    for (const auto& e : extra)
      if (base::clean_path(e.path) == d.path) overridden = true;
    if (!overridden) ZRUN_TRY(create_device(rootfd, d, bind_only));
  }
  for (const auto& e : extra) ZRUN_TRY(create_device(rootfd, e, bind_only));
  return create_dev_symlinks(devdir.get());
}

}  // namespace zrun::iso
