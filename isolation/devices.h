// /dev inside the container: device nodes (default set + linux.devices), the standard
// symlinks (/dev/fd, /dev/std*, /dev/ptmx, /dev/core) and the shm/pts directories.
#pragma once

#include "base/result.h"
#include "spec/config.h"

namespace zrun::iso {

// The devices every container gets (null, zero, full, random, urandom, tty), 0666.
const std::vector<spec::Device>& default_devices();

// Populate /dev under `rootfd`. With `bind_only` (new user namespace) device nodes are
// bind mounts of the host's nodes, as mknod is not allowed there; mknod failing with
// EPERM falls back to the same.
base::Result<void> setup_dev(int rootfd, const spec::Spec& spec, bool bind_only);

// Create one device node at dev.path inside the rootfs.
base::Result<void> create_device(int rootfd, const spec::Device& dev, bool bind_only);

}  // namespace zrun::iso
