// linux.resources -> cgroup file writes, for the v2 (unified) and v1 hierarchies.
// Conversions follow the OCI runtime-spec and runc/opencontainers-cgroups.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "base/result.h"
#include "spec/config.h"

namespace zrun::cg {

// cpu.shares (v1, [2, 262144], default 1024) -> cpu.weight (v2, [1, 10000], default 100).
// The quadratic-in-log2 formula of opencontainers/cgroups ConvertCPUSharesToCgroupV2Value
// (runc PR #4785, crun issue #1721; replaced the linear 1 + (s-2)*9999/262142, which
// mapped the default 1024 to 39): 1024 -> 100, 2 -> 1, 262144 -> 10000. 0 = unset -> 0.
uint64_t cpu_shares_to_weight(uint64_t shares);
// The old linear formula (runc < 1.3, crun < 1.23), kept for reference/comparison.
uint64_t cpu_shares_to_weight_linear(uint64_t shares);
// OCI memory.swap is memory+swap; v2 memory.swap.max is swap alone (runc's
// ConvertMemorySwapToCgroupV2Value). -1 = max, 0 = unset.
base::Result<int64_t> swap_to_v2(int64_t memory_swap, int64_t memory);
// blkio.weight [10, 1000] -> io.weight [1, 10000] (runc's convertBlkIOToIOWeightValue).
uint64_t blkio_weight_to_io_weight(uint64_t weight);
// `unified` keys: "<controller>.<name>" or "cgroup.<name>", no '/', not "..".
base::Result<void> validate_unified_key(const std::string& key);

// Apply to the container's v2 directory (unified mode). `update` = a live cgroup (zrun
// update). Device rules are not file writes on v2: the caller attaches the device filter
// (cgroups/device_filter.h).
base::Result<void> apply_v2(const std::string& dir, const spec::Resources& r, bool update);
// Apply to v1 controller directories (`dirs`: controller -> directory). `unified_dir` is
// the hybrid-mode cgroup2 directory ("" in legacy mode) for `unified` keys. Device rules
// (when non-empty: the complete list, defaults included) are replayed into the devices
// controller; in hybrid mode without a v1 devices controller they are left to the
// caller's device filter on the unified hierarchy.
base::Result<void> apply_v1(const std::map<std::string, std::string>& dirs,
                            const std::string& unified_dir, const spec::Resources& r, bool update);

// runc's specconv.AllowedDevices: mknod of any char/block node, null, zero, full, random,
// urandom, tty, console, ptmx and /dev/pts/* (rwm). Always allowed after the spec's rules
// so the default /dev works even when the rules start with deny-all.
const std::vector<spec::DeviceRule>& default_allowed_devices();
// `rules` + an allow-rwm rule per linux.devices entry (not fifos) + the defaults. Empty
// `rules` stay empty: no device rules means the cgroup's inherited policy is kept.
std::vector<spec::DeviceRule> device_rules_with_defaults(const std::vector<spec::DeviceRule>& rules,
                                                         const std::vector<spec::Device>* devices);

// "mlx5_1 hca_handle=3 hca_object=10000" for rdma.max (same syntax on v1 and v2).
std::string rdma_value(const std::string& device, const spec::RdmaLimit& l);

}  // namespace zrun::cg
