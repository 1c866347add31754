// Namespace primitives: joining by path, user-namespace id maps, time-namespace offsets.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "spec/config.h"

namespace zrun::iso {

// Open a namespace file (e.g. /proc/123/ns/net or a bind-mounted ns) and check that it is
// a namespace of type `t` (NS_GET_NSTYPE), so a wrong path fails before clone.
base::Result<base::UniqueFd> open_namespace(const std::string& path, spec::NsType t);
base::Result<void> join_namespace(int fd, spec::NsType t, const std::string& path);

// Parent side: write /proc/PID/{uid_map,gid_map} for a child in a new user namespace.
base::Result<void> write_id_maps(pid_t pid, const std::vector<spec::IdMapping>& uids,
                                 const std::vector<spec::IdMapping>& gids);

// Child side: create a time namespace with `offsets` and enter it. Offsets can only be
// written before any task is in the namespace, so clone3(CLONE_NEWTIME) cannot be used:
// unshare() (the ns is for children), write /proc/self/timens_offsets, then setns() into
// /proc/self/ns/time_for_children (allowed while single-threaded).
base::Result<void> enter_new_time_ns(const std::map<std::string, spec::TimeOffset>& offsets);

}  // namespace zrun::iso
