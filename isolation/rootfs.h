// Child-side rootfs setup: runs in the container's init right after clone3, inside the
// new mount namespace, as root, before execve. Called by runtime/init.cc in order:
// set_hostname, prepare_rootfs, (createContainer hooks), enter_rootfs.
#pragma once

#include "base/result.h"
#include "spec/config.h"

namespace zrun::iso {

struct RootfsOptions {
  bool no_pivot = false;  // MS_MOVE + chroot instead of pivot_root (--no-pivot)
  bool userns = false;    // new user ns: cannot mknod -> bind-mount host devices
};

// sethostname/setdomainname for the non-empty fields (the caller decides whether the
// UTS namespace is ours).
base::Result<void> set_hostname(const spec::Spec& spec);

// Make "/" MS_SLAVE|MS_REC, bind root.path onto itself, mount spec.mounts in order
// (destinations resolved inside the rootfs), create /dev (devices, symlinks, ptmx)
// unless /dev is bind-mounted, and create process.cwd. Host paths stay visible.
base::Result<void> prepare_rootfs(const spec::Spec& spec, const RootfsOptions& opts);

// Apply maskedPaths and readonlyPaths, pivot_root (or MS_MOVE+chroot), make "/" read
// only if root.readonly, and apply linux.rootfsPropagation to "/". cwd is "/" after.
base::Result<void> enter_rootfs(const spec::Spec& spec, const RootfsOptions& opts);

}  // namespace zrun::iso
