// OpenVZ-style bean counters (/proc/user_beancounters) over a container's cgroup: per
// resource what is held now, the most ever held, the soft barrier, the hard limit and how
// many times the kernel refused (failcnt). Sources: docs/ARCHITECTURE.md "Bean counters".
//
// Where the kernel keeps no peak (v1 pids without pids.peak, v2 before memory.peak/
// pids.peak, swap and kmem on v2), zrun keeps its own: every reading (`beancounters`,
// each `events` tick) stores max(stored, held) in a file in the container's state dir.
// Such a maxheld is a *sampled lower bound* and is flagged (`maxheld_sampled`).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "cgroups/stats.h"

namespace zrun::cg {

// Unlimited, printed as OpenVZ did (LONG_MAX).
inline constexpr uint64_t kUnlimited = 9223372036854775807ull;

struct BeanCounter {
  std::string resource;  // physpages, swap, kmem, numproc, cpu, io
  std::string unit;      // bytes, processes, ns
  // nullopt = the kernel has no such value for this resource ("-" / null).
  std::optional<uint64_t> held, maxheld, barrier, limit, failcnt;
  bool maxheld_sampled = false;
  std::map<std::string, uint64_t> extra;  // e.g. oom_kill, quota_us, period_us
};

struct BeanCounters {
  std::vector<BeanCounter> rows;
  std::vector<std::string> notes;  // why a column is "-" or sampled
};

// Read the counters. `peak_file` ("" = none) stores the sampled maxheld values between
// calls and is updated (best effort: a read-only state dir only loses the tracking).
base::Result<BeanCounters> read_beancounters(const StatDirs& d, const std::string& peak_file);

// {"id":ID,"counters":[{"resource","unit","held","maxheld","barrier","limit","failcnt",
// "maxheld_sampled",...extra}],"notes":[...]}
std::string beancounters_json(const std::string& id, const BeanCounters& bc);
// The text table for several containers (id, counters), /proc/user_beancounters style.
std::string beancounters_table(const std::vector<std::pair<std::string, BeanCounters>>& all);

}  // namespace zrun::cg
