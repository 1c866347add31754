// linux.resources on cgroup v2 (and the spec -> v2 value conversions).
#include <cmath>
#include <string>

#include "base/log.h"
#include "base/sys.h"
#include "cgroups/cgfs.h"
#include "cgroups/resources.h"

namespace zrun::cg {

using base::Result;

uint64_t cpu_shares_to_weight(uint64_t shares) {
  if (shares == 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  double l = std::log2(static_cast<double>(shares));
  // Quadratic in log2(shares) through (2,1), (1024,100), (262144,10000).
  double exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0;
  return static_cast<uint64_t>(std::ceil(std::pow(10.0, exponent)));
}

uint64_t cpu_shares_to_weight_linear(uint64_t shares) {
  if (shares == 0) return 0;
  return 1 + ((shares - 2) * 9999) / 262142;
}

Result<int64_t> swap_to_v2(int64_t memory_swap, int64_t memory) {
  // "memory unlimited, swap unset" means both unlimited, as on v1.
  if (memory == -1 && memory_swap == 0) return int64_t{-1};
  if (memory_swap == -1 || memory_swap == 0) return memory_swap;
  if (memory == 0 || memory == -1)
    return base::make_error("memory.swap: unable to set swap limit without memory limit");
  if (memory < 0) return base::make_error("memory.limit: invalid value " + std::to_string(memory));
  if (memory_swap < memory)
    return base::make_error("memory.swap: memory+swap limit " + std::to_string(memory_swap) +
                            " is less than memory limit " + std::to_string(memory));
  return memory_swap - memory;
}

uint64_t blkio_weight_to_io_weight(uint64_t weight) {
  if (weight == 0) return 0;
  if (weight < 10) weight = 10;
  return 1 + (weight - 10) * 9999 / 990;
}

Result<void> validate_unified_key(const std::string& key) {
  auto bad = [&](const char* why) { return base::make_error("unified key `" + key + "`: " + why); };
  if (key.empty()) return bad("empty");
  if (key.find('/') != std::string::npos) return bad("must not contain '/'");
  if (key.find("..") != std::string::npos) return bad("must not contain \"..\"");
  auto dot = key.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == key.size())
    return bad("must be <controller>.<name>");
  for (char c : key)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return bad("invalid character");
  return base::ok();
}

namespace {

std::string num_or_max(int64_t v) { return v < 0 ? "max" : std::to_string(v); }

// The current memory.max as a number (-1 = max), for swap conversion on update.
int64_t current_memory_max(const std::string& dir) {
  auto cur = read_cg(dir, "memory.max");
  if (!cur || *cur == "max") return -1;
  auto v = base::parse_int(*cur);
  return v ? *v : -1;
}

Result<void> memory_v2(const std::string& dir, const spec::MemoryResources& m, bool update) {
  if (update && m.check_before_update.value_or(false) && m.limit && *m.limit > 0) {
    auto cur = read_cg(dir, "memory.current");
    auto used = cur ? base::parse_int(*cur) : Result<int64_t>(base::make_error(""));
    if (used && *used > *m.limit)
      return base::make_error("memory.limit " + std::to_string(*m.limit) +
                              " is below current usage " + std::to_string(*used));
  }
  if (m.swap && *m.swap != 0) {
    int64_t mem = m.limit ? *m.limit : current_memory_max(dir);
    int64_t swap = ZRUN_TRY(swap_to_v2(*m.swap, mem));
    // memory.swap.max is absent without swap accounting; "max" there is the default.
    if (swap != 0 && !(swap < 0 && !cg_file_exists(dir, "memory.swap.max")))
      ZRUN_TRY(write_cg(dir, "memory.swap.max", num_or_max(swap)));
  } else if (m.limit && *m.limit == -1 && cg_file_exists(dir, "memory.swap.max")) {
    ZRUN_TRY(write_cg(dir, "memory.swap.max", "max"));
  }
  if (m.limit && *m.limit != 0) ZRUN_TRY(write_cg(dir, "memory.max", num_or_max(*m.limit)));
  if (m.reservation && *m.reservation != 0)
    ZRUN_TRY(write_cg(dir, "memory.low", num_or_max(*m.reservation)));
  if (m.swappiness) {
    // v2 has no per-cgroup swappiness: accept only the host value (a no-op).
    auto host = base::read_file("/proc/sys/vm/swappiness");
    auto hv = host ? base::parse_uint(*host) : Result<uint64_t>(base::make_error(""));
    if (!hv || *hv != *m.swappiness)
      return base::make_error("memory.swappiness: not supported on cgroup v2");
  }
  if (m.disable_oom_killer.value_or(false))
    base::log_warn("memory.disableOOMKiller: not supported on cgroup v2, ignored");
  if (m.kernel || m.kernel_tcp)
    base::log_debug("memory.kernel/kernelTCP: ignored (no kernel memory limits on cgroup v2)");
  if (m.use_hierarchy && !*m.use_hierarchy)
    return base::make_error("memory.useHierarchy=false: not supported on cgroup v2");
  return base::ok();
}

Result<void> cpu_max_v2(const std::string& dir, const spec::CpuResources& c) {
  bool has_quota = c.quota && *c.quota != 0;
  bool has_period = c.period && *c.period != 0;
  if (!has_quota && !has_period) return base::ok();
  std::string quota;
  if (has_quota) {
    quota = *c.quota < 0 ? "max" : std::to_string(*c.quota);
  } else {
    // Period alone: keep the current quota ("max" on a fresh cgroup).
    auto cur = read_cg(dir, "cpu.max");
    quota = cur && !cur->empty() ? base::split(*cur, ' ')[0] : "max";
  }
  // Quota alone: the kernel keeps the current period.
  std::string v = has_period ? quota + " " + std::to_string(*c.period) : quota;
  return write_cg(dir, "cpu.max", v);
}

Result<void> cpu_v2(const std::string& dir, const spec::CpuResources& c) {
  if (c.shares && *c.shares != 0)
    ZRUN_TRY(write_cg(dir, "cpu.weight", std::to_string(cpu_shares_to_weight(*c.shares))));
  ZRUN_TRY(cpu_max_v2(dir, c));
  if (c.burst) ZRUN_TRY(write_cg(dir, "cpu.max.burst", std::to_string(*c.burst)));
  if ((c.realtime_runtime && *c.realtime_runtime != 0) ||
      (c.realtime_period && *c.realtime_period != 0))
    return base::make_error("cpu.realtimeRuntime/realtimePeriod: not supported on cgroup v2");
  if (c.idle) ZRUN_TRY(write_cg(dir, "cpu.idle", std::to_string(*c.idle)));
  if (!c.cpus.empty()) ZRUN_TRY(write_cg(dir, "cpuset.cpus", c.cpus));
  if (!c.mems.empty()) ZRUN_TRY(write_cg(dir, "cpuset.mems", c.mems));
  return base::ok();
}

std::string dev(int64_t major, int64_t minor) {
  return std::to_string(major) + ":" + std::to_string(minor);
}

Result<void> io_v2(const std::string& dir, const spec::BlockIoResources& b) {
  // BFQ takes blkio-style weights as is; io.weight (the iocost/CFQ-less default) needs
  // the conversion.
  bool bfq = cg_file_exists(dir, "io.bfq.weight");
  if (b.weight && *b.weight != 0) {
    if (bfq)
      ZRUN_TRY(write_cg(dir, "io.bfq.weight", std::to_string(*b.weight)));
    else
      ZRUN_TRY(write_cg(dir, "io.weight", std::to_string(blkio_weight_to_io_weight(*b.weight))));
  }
  if (b.leaf_weight && *b.leaf_weight != 0)
    return base::make_error("blockIO.leafWeight: not supported on cgroup v2");
  for (auto& wd : b.weight_device) {
    if (!wd.weight) continue;
    if (bfq)
      ZRUN_TRY(write_cg(dir, "io.bfq.weight",
                        dev(wd.major, wd.minor) + " " + std::to_string(*wd.weight)));
    else
      ZRUN_TRY(write_cg(
          dir, "io.weight",
          dev(wd.major, wd.minor) + " " + std::to_string(blkio_weight_to_io_weight(*wd.weight))));
  }
  auto throttle = [&](const std::vector<spec::ThrottleDevice>& v, const char* key) -> Result<void> {
    for (auto& t : v) {
      std::string rate = t.rate == 0 ? "max" : std::to_string(t.rate);
      ZRUN_TRY(write_cg(dir, "io.max", dev(t.major, t.minor) + " " + key + "=" + rate));
    }
    return base::ok();
  };
  ZRUN_TRY(throttle(b.throttle_read_bps_device, "rbps"));
  ZRUN_TRY(throttle(b.throttle_write_bps_device, "wbps"));
  ZRUN_TRY(throttle(b.throttle_read_iops_device, "riops"));
  ZRUN_TRY(throttle(b.throttle_write_iops_device, "wiops"));
  return base::ok();
}

// Faults are charged to hugetlb.<size>.max, reservations (mmap of MAP_HUGETLB or
// hugetlbfs) to hugetlb.<size>.rsvd.max (Linux 5.7+). With only the first, an mmap past
// the limit succeeds and the task gets SIGBUS at a later fault (seen in the 6.12 guest);
// with both it gets ENOMEM from mmap. runc and crun set both where the file exists.
Result<void> hugetlb_v2(const std::string& dir, const spec::HugepageLimit& h) {
  std::string prefix = "hugetlb." + h.page_size;
  ZRUN_TRY(write_cg(dir, prefix + ".max", std::to_string(h.limit)));
  if (cg_file_exists(dir, prefix + ".rsvd.max"))
    ZRUN_TRY(write_cg(dir, prefix + ".rsvd.max", std::to_string(h.limit)));
  return base::ok();
}

}  // namespace

std::string rdma_value(const std::string& device, const spec::RdmaLimit& l) {
  std::string v = device;
  if (l.hca_handles) v += " hca_handle=" + std::to_string(*l.hca_handles);
  if (l.hca_objects) v += " hca_object=" + std::to_string(*l.hca_objects);
  return v;
}

Result<void> apply_v2(const std::string& dir, const spec::Resources& r, bool update) {
  if (r.memory) ZRUN_TRY(memory_v2(dir, *r.memory, update));
  if (r.cpu) ZRUN_TRY(cpu_v2(dir, *r.cpu));
  if (r.pids_limit)
    ZRUN_TRY(write_cg(dir, "pids.max", num_or_max(*r.pids_limit <= 0 ? -1 : *r.pids_limit)));
  if (r.block_io) ZRUN_TRY(io_v2(dir, *r.block_io));
  for (auto& h : r.hugepage_limits) ZRUN_TRY(hugetlb_v2(dir, h));
  for (auto& [device, l] : r.rdma) ZRUN_TRY(write_cg(dir, "rdma.max", rdma_value(device, l)));
  for (auto& [key, value] : r.unified) {
    ZRUN_TRY(validate_unified_key(key));
    ZRUN_TRY(write_cg(dir, key, value));
  }
  return base::ok();
}

}  // namespace zrun::cg
