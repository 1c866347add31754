// Mount option parsing and the fd-based mount primitives the rootfs setup is built on.
// Every destination inside the container rootfs is opened with openat2(RESOLVE_IN_ROOT)
// and mounted onto through its /proc/self/fd/N path (runc's approach), so a symlink or
// ".." planted in the rootfs can never redirect a mount onto the host.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace zrun::iso {

// The parsed form of an OCI mount's "options".
struct MountFlags {
  unsigned long flags = 0;        // MS_* passed to mount(2) (MS_BIND, MS_RDONLY, ...)
  unsigned long propagation = 0;  // MS_PRIVATE|MS_SHARED|MS_SLAVE|MS_UNBINDABLE (+MS_REC)
  uint64_t attr_set = 0;          // MOUNT_ATTR_* to set recursively (mount_setattr)
  uint64_t attr_clr = 0;          // MOUNT_ATTR_* to clear recursively
  std::string data;               // unknown options, comma-joined ("mode=755,size=64k")
  bool tmpcopyup = false;         // copy the directory's existing content into the tmpfs
  bool idmap = false;             // idmap/ridmap: id-mapped mount requested (unsupported)

  bool has_recursive_attrs() const { return attr_set != 0 || attr_clr != 0; }
};

// Pure: map every documented option (mount(8) flags, propagation, r* recursive
// attributes, tmpcopyup) and pass the rest through as filesystem data.
MountFlags parse_mount_options(const std::vector<std::string>& options);

// Propagation option name -> MS_* flags ("rslave" -> MS_SLAVE|MS_REC); 0 if unknown.
unsigned long propagation_flags(const std::string& name);

// "/proc/self/fd/N" for an fd (mount(2) follows the magic link to the fd's object).
std::string fd_path(int fd);

// Open `path` inside the rootfs (O_PATH), creating missing directories component by
// component; when `file` is true the last component is created as an empty file instead.
// Symlinks are resolved inside the root, so nothing outside it can be reached; a dangling
// symlink gets its target created inside the root (as runc does).
base::Result<base::UniqueFd> mkdir_in_root(int rootfd, const std::string& path, bool file,
                                           mode_t mode = 0755);

// mount(2) with the target given as an fd.
base::Result<void> mount_on_fd(const std::string& source, int target_fd, const std::string& fstype,
                               unsigned long flags, const std::string& data,
                               const std::string& what);

// Remount the mount at `target_fd` (bind remount) with `flags`. When the kernel refuses
// (EPERM: flags locked in a user namespace), retry keeping the mount's current locked
// flags (nosuid/nodev/noexec/atime) as statfs reports them.
base::Result<void> remount_bind(int target_fd, unsigned long flags, const std::string& what);

// Apply recursive attributes with mount_setattr(2) AT_RECURSIVE.
base::Result<void> set_recursive_attrs(int target_fd, uint64_t set, uint64_t clr,
                                       const std::string& what);

// Copy a directory tree (files, dirs, symlinks, device nodes, fifos; modes and owners)
// from `src_dirfd` into `dst_dirfd`, both opened O_RDONLY|O_DIRECTORY. For tmpcopyup.
base::Result<void> copy_dir_contents(int src_dirfd, int dst_dirfd);

}  // namespace zrun::iso
