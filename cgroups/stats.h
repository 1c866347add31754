// Resource usage of a container cgroup in runc's shapes (`runc events --stats`,
// libcontainer/cgroups stats and runc's types/events.go), from v1 or v2 files, plus the
// OOM notification used by `zrun events`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "cgroups/cgroup.h"

namespace zrun::cg {

// Where a container's controller files live. A value type so unit tests can point it at a
// fake tree.
struct StatDirs {
  bool v2 = false;                        // controllers in `unified` (unified mode)
  std::string unified;                    // the cgroup2 directory ("" in legacy mode)
  std::map<std::string, std::string> v1;  // controller -> directory (hybrid, legacy)
  // The directory of `ctrl` on v1, or `unified` on v2 ("" when absent).
  std::string dir(const std::string& ctrl) const;
};
StatDirs stat_dirs(const Cgroup& cg);

struct MemoryEntry {
  uint64_t limit = 0, usage = 0, max = 0, failcnt = 0;
};

struct BlkioEntry {
  uint64_t major = 0, minor = 0;
  std::string op;  // Read, Write, Sync, Async, Discard, Total
  uint64_t value = 0;
};

struct HugetlbStats {
  uint64_t usage = 0, max = 0, failcnt = 0;
};

struct Stats {
  struct Cpu {
    uint64_t total = 0, kernel = 0, user = 0;                         // ns
    std::vector<uint64_t> percpu;                                     // ns (v1 only)
    uint64_t periods = 0, throttled_periods = 0, throttled_time = 0;  // throttled_time: ns
  } cpu;
  struct Memory {
    uint64_t cache = 0;
    // v1 semantics on both versions (as runc): `swap` is memory+swap.
    MemoryEntry usage, swap, kernel, kernel_tcp;
    std::map<std::string, uint64_t> raw;  // memory.stat
  } memory;
  struct Pids {
    uint64_t current = 0, limit = 0;  // limit 0 = unlimited (runc)
  } pids;
  std::vector<BlkioEntry> io_service_bytes, io_serviced;
  std::map<std::string, HugetlbStats> hugetlb;  // page size ("2MB") -> stats
};

// Read everything available; a controller that is not mounted leaves its part zero. An
// error only when the cgroup itself is gone.
base::Result<Stats> read_stats(const StatDirs& d);

// runc's `events` JSON lines: {"type":"stats","id":ID,"data":{...}} and
// {"type":"oom","id":ID}.
std::string stats_json(const Stats& s);  // the "data" object
std::string stats_event(const std::string& id, const Stats& s);
std::string oom_event(const std::string& id);

// Times the kernel OOM-killed a task in the cgroup (v1 memory.oom_control / v2
// memory.events "oom_kill"); nullopt when the kernel does not count it.
std::optional<uint64_t> oom_kill_count(const StatDirs& d);

// Becomes readable when the cgroup hits an OOM: v1 an eventfd registered on
// memory.oom_control through cgroup.event_control; v2 inotify on memory.events, reporting
// only when the "oom"/"oom_kill" counters grew (memory.events also changes on max/high),
// once per OOM like v1 (an OOM bumps both counters, often in two notifications).
class OomWatcher {
 public:
  static base::Result<OomWatcher> open(const StatDirs& d);
  int fd() const { return fd_.get(); }
  // After poll() said readable: the number of new OOM notifications (0 = spurious).
  base::Result<uint64_t> drain();

 private:
  base::UniqueFd fd_;
  base::UniqueFd oom_control_;  // v1: must stay open while registered
  std::string events_dir_;      // v2
  bool v2_ = false;
  // v2: the counters seen so far, and how many "oom" increments still wait for their kill.
  uint64_t last_oom_ = 0, last_kill_ = 0, unmatched_ = 0;
};

// Parse helpers (exposed for unit tests).
// "key value" lines -> map (values that are not unsigned integers are skipped).
std::map<std::string, uint64_t> parse_flat_keyed(std::string_view text);
// v1 blkio "MAJ:MIN Op value" lines ("Total N" skipped).
std::vector<BlkioEntry> parse_blkio_v1(std::string_view text);
// v2 io.stat "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.." -> bytes and ios entries.
void parse_io_stat(std::string_view text, std::vector<BlkioEntry>& bytes,
                   std::vector<BlkioEntry>& ios);

}  // namespace zrun::cg
