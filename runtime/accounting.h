// The runtime's use of eBPF accounting (cgroups/accounting.h): whether a container is
// accounted (global switch ZRUN_ACCOUNTING, annotations), tracking at create, untracking
// at delete, and the stats document shared by `stats`, `events --stats` and
// `delete --report`.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"
#include "cgroups/cgroup.h"
#include "runtime/state_store.h"

namespace zrun::rt {

// Annotations (docs/accounting.md).
inline constexpr const char* kAccountingAnnotation = "org.zrun.accounting";
inline constexpr const char* kSyscallsAnnotation = "org.zrun.accounting.syscalls";
inline constexpr const char* kNetworkAnnotation = "org.zrun.accounting.network";

// Start accounting for a new container's cgroup. Never fails the create: a failure (no
// BTF, EPERM, zrun built without eBPF) is a warning and the container runs unaccounted.
// Returns whether the container is accounted.
bool start_accounting(const std::string& state_root, const cg::Cgroup& cgroup,
                      const std::map<std::string, std::string>& annotations);
// Stop accounting for the container's cgroup (must still exist); the last container of
// the state root unloads the programs and unmounts the bpffs. Errors are warnings.
void stop_accounting(const std::string& state_root, const cg::Cgroup& cgroup);

// {"id", "accounting": {"available", "enabled", "reason"}, "ebpf": {...} or null,
//  "cgroup": <runc stats data>}.
base::Result<nlohmann::json> container_stats(const std::string& state_root,
                                             const ContainerRecord& rec, cg::Cgroup& cgroup);
// Only the eBPF part (null when the container is not accounted), for `events`.
nlohmann::json ebpf_stats(const std::string& state_root, const cg::Cgroup& cgroup,
                          std::string* error = nullptr);

}  // namespace zrun::rt
