// eBPF resource accounting per container (docs/accounting.md): global tracepoint programs
// pinned in a bpffs under the state root, a `tracked` map of container cgroup ids, per-CPU
// counters. The CLI is short-lived, so everything that must outlive it is pinned:
//
//   <state root>/.bpf/          bpffs mounted by zrun (only if that path is not one yet)
//     map_tracked, map_counters, map_syscalls     maps read by `zrun stats`
//     map_gens                                    generations invalidating the programs'
//                                                 caches (bumped after `tracked` changes)
//     link_<tracepoint>                           global attachments (sched, oom, block)
//     prog_sys_enter, link_sys_enter              syscall counting, linked while opted in
//     prog_skb_in, prog_skb_out                   network programs
//     net_<cgroup id>_in / _out                   per-container cgroup_skb links
//
// The first tracked container loads and attaches; the last untrack unpins everything and
// unmounts the bpffs. Callers serialize through a lock on the state root directory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace zrun::cg::acct {

// Whether this zrun was built with the accounting programs (clang, bpftool, libbpf and the
// build host's BTF); when false every operation below fails with a clear error.
bool compiled_in();

// The cgroup id eBPF sees for the cgroup directory `dir` (bpf_get_current_cgroup_id():
// the kernfs node id of the unified-hierarchy cgroup, its file handle).
base::Result<uint64_t> cgroup_id(const std::string& dir);

struct TrackOptions {
  bool syscalls = false;  // count syscalls (sys_enter hook while any container wants it)
  bool network = true;    // attach cgroup_skb programs to the cgroup
};

// Start accounting for the unified cgroup `dir` (loads and pins the programs when it is
// the first). On error nothing of this container is left tracked.
base::Result<void> track(const std::string& state_root, const std::string& dir,
                         const TrackOptions& opts);
// Stop accounting for cgroup id `cgid` (and any tracked cgroup that no longer exists);
// the last one unloads everything and unmounts the bpffs. Safe to call for untracked ids.
base::Result<void> untrack(const std::string& state_root, uint64_t cgid);

struct NetCounters {
  uint64_t bytes = 0, packets = 0, tcp_bytes = 0, udp_bytes = 0, other_bytes = 0;
};

// Summed over CPUs.
struct Counters {
  uint64_t cgroup_id = 0;
  bool syscalls_enabled = false;
  uint64_t oncpu_ns = 0, vol_switches = 0, invol_switches = 0;
  uint64_t runq_count = 0, runq_total_ns = 0;
  std::vector<uint64_t> runq_hist;  // bucket b: [2^b, 2^(b+1)) ns
  uint64_t forks = 0, threads = 0, execs = 0, exits = 0;
  uint64_t min_faults = 0, maj_faults = 0, oom_kills = 0;
  uint64_t syscalls = 0;
  std::vector<std::pair<uint32_t, uint64_t>> top_syscalls;  // (nr, count), by count desc
  NetCounters net_in, net_out;
  // Block I/O submitted by the container's own tasks (not page-cache writeback).
  uint64_t io_reads = 0, io_read_bytes = 0, io_writes = 0, io_write_bytes = 0;
};

// The counters of cgroup id `cgid`; nullopt when it is not tracked (accounting off for the
// container, or unavailable when it was created).
base::Result<std::optional<Counters>> read(const std::string& state_root, uint64_t cgid,
                                           size_t top_syscalls = 10);

// Upper bound (ns) of the histogram bucket holding the p-th percentile (0 < p <= 100);
// 0 for an empty histogram.
uint64_t runq_percentile(const std::vector<uint64_t>& hist, double p);

// The pinned objects' directory for a state root.
std::string bpffs_dir(const std::string& state_root);

}  // namespace zrun::cg::acct
