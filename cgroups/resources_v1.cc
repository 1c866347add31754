// linux.resources on cgroup v1 controllers (legacy and hybrid hosts).
#include <string>

#include "base/log.h"
#include "base/sys.h"
#include "cgroups/cgfs.h"
#include "cgroups/resources.h"

namespace zrun::cg {

using base::Result;

namespace {

using Dirs = std::map<std::string, std::string>;

// The directory of controller `ctrl`, or an error naming what is missing.
Result<std::string> need(const Dirs& dirs, const std::string& ctrl, const char* field) {
  auto it = dirs.find(ctrl);
  if (it == dirs.end() || it->second.empty())
    return base::make_error(std::string(field) + ": cgroup v1 controller `" + ctrl +
                            "` is not mounted on this host");
  return it->second;
}

std::optional<int64_t> read_int(const std::string& dir, const char* file) {
  auto s = read_cg(dir, file);
  if (!s) return std::nullopt;
  auto v = base::parse_int(*s);
  if (!v) return std::nullopt;
  return *v;
}

// The kernel requires memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every
// step, so raise memsw first when it grows and lower the limit first when it shrinks.
Result<void> memory_and_swap_v1(const std::string& dir, const spec::MemoryResources& m) {
  bool set_limit = m.limit && *m.limit != 0;
  bool set_swap = m.swap && *m.swap != 0;
  if (!set_swap) {
    if (set_limit) ZRUN_TRY(write_cg(dir, "memory.limit_in_bytes", std::to_string(*m.limit)));
    return base::ok();
  }
  auto cur = read_int(dir, "memory.memsw.limit_in_bytes");
  bool swap_first = *m.swap == -1 || (cur && *m.swap > *cur);
  if (swap_first) ZRUN_TRY(write_cg(dir, "memory.memsw.limit_in_bytes", std::to_string(*m.swap)));
  if (set_limit) ZRUN_TRY(write_cg(dir, "memory.limit_in_bytes", std::to_string(*m.limit)));
  if (!swap_first) ZRUN_TRY(write_cg(dir, "memory.memsw.limit_in_bytes", std::to_string(*m.swap)));
  return base::ok();
}

Result<void> memory_v1(const Dirs& dirs, const spec::MemoryResources& m, bool update) {
  auto dir = ZRUN_TRY(need(dirs, "memory", "linux.resources.memory"));
  if (update && m.check_before_update.value_or(false) && m.limit && *m.limit > 0) {
    auto used = read_int(dir, "memory.usage_in_bytes");
    if (used && *used > *m.limit)
      return base::make_error("memory.limit " + std::to_string(*m.limit) +
                              " is below current usage " + std::to_string(*used));
  }
  ZRUN_TRY(memory_and_swap_v1(dir, m));
  if (m.reservation && *m.reservation != 0)
    ZRUN_TRY(write_cg(dir, "memory.soft_limit_in_bytes", std::to_string(*m.reservation)));
  if (m.swappiness) {
    if (*m.swappiness > 100)
      return base::make_error("memory.swappiness: " + std::to_string(*m.swappiness) +
                              " is out of range [0, 100]");
    ZRUN_TRY(write_cg(dir, "memory.swappiness", std::to_string(*m.swappiness)));
  }
  if (m.disable_oom_killer) {
    if (*m.disable_oom_killer)
      ZRUN_TRY(write_cg(dir, "memory.oom_control", "1"));
    else if (update)
      ZRUN_TRY(write_cg(dir, "memory.oom_control", "0"));
  }
  // Kernels >= 5.16 ignore (and 6.x removed) kmem limits; kmem.tcp is deprecated.
  if (m.kernel || m.kernel_tcp) base::log_debug("memory.kernel/kernelTCP: ignored");
  // Always on since 5.x (writing 0 fails): only an explicit false is worth an error.
  if (m.use_hierarchy && !*m.use_hierarchy) ZRUN_TRY(write_cg(dir, "memory.use_hierarchy", "0"));
  return base::ok();
}

// cfs_period_us and cfs_quota_us are validated against each other (and the parent's
// bandwidth) on every write: write the period first, and on EINVAL retry quota first.
Result<void> cfs_v1(const std::string& dir, const spec::CpuResources& c) {
  bool has_quota = c.quota && *c.quota != 0;
  bool has_period = c.period && *c.period != 0;
  std::string q = has_quota ? std::to_string(*c.quota < 0 ? -1 : *c.quota) : "";
  std::string p = has_period ? std::to_string(*c.period) : "";
  if (has_period) {
    auto r = write_cg(dir, "cpu.cfs_period_us", p);
    if (!r) {
      if (r.error().err != EINVAL || !has_quota) return r;
      ZRUN_TRY(write_cg(dir, "cpu.cfs_quota_us", q));
      return write_cg(dir, "cpu.cfs_period_us", p);
    }
  }
  if (has_quota) ZRUN_TRY(write_cg(dir, "cpu.cfs_quota_us", q));
  return base::ok();
}

Result<void> cpu_v1(const Dirs& dirs, const spec::CpuResources& c) {
  bool cpu_ctl = (c.shares && *c.shares != 0) || (c.quota && *c.quota != 0) ||
                 (c.period && *c.period != 0) || c.burst || c.idle ||
                 (c.realtime_runtime && *c.realtime_runtime != 0) ||
                 (c.realtime_period && *c.realtime_period != 0);
  if (cpu_ctl) {
    auto dir = ZRUN_TRY(need(dirs, "cpu", "linux.resources.cpu"));
    if (c.shares && *c.shares != 0)
      ZRUN_TRY(write_cg(dir, "cpu.shares", std::to_string(*c.shares)));
    ZRUN_TRY(cfs_v1(dir, c));
    if (c.burst) ZRUN_TRY(write_cg(dir, "cpu.cfs_burst_us", std::to_string(*c.burst)));
    // The runtime must fit in the period: period first.
    if (c.realtime_period && *c.realtime_period != 0)
      ZRUN_TRY(write_cg(dir, "cpu.rt_period_us", std::to_string(*c.realtime_period)));
    if (c.realtime_runtime && *c.realtime_runtime != 0)
      ZRUN_TRY(write_cg(dir, "cpu.rt_runtime_us", std::to_string(*c.realtime_runtime)));
    if (c.idle) ZRUN_TRY(write_cg(dir, "cpu.idle", std::to_string(*c.idle)));
  }
  if (!c.cpus.empty() || !c.mems.empty()) {
    auto dir = ZRUN_TRY(need(dirs, "cpuset", "linux.resources.cpu.cpus/mems"));
    if (!c.cpus.empty()) ZRUN_TRY(write_cg(dir, "cpuset.cpus", c.cpus));
    if (!c.mems.empty()) ZRUN_TRY(write_cg(dir, "cpuset.mems", c.mems));
  }
  return base::ok();
}

std::string dev(int64_t major, int64_t minor) {
  return std::to_string(major) + ":" + std::to_string(minor);
}

Result<void> blkio_v1(const Dirs& dirs, const spec::BlockIoResources& b) {
  auto dir = ZRUN_TRY(need(dirs, "blkio", "linux.resources.blockIO"));
  // CFQ's blkio.weight is gone since 5.0; BFQ exposes blkio.bfq.weight instead.
  const char* wfile =
      cg_file_exists(dir, "blkio.weight") || !cg_file_exists(dir, "blkio.bfq.weight")
          ? "blkio.weight"
          : "blkio.bfq.weight";
  if (b.weight && *b.weight != 0) ZRUN_TRY(write_cg(dir, wfile, std::to_string(*b.weight)));
  if (b.leaf_weight && *b.leaf_weight != 0)
    ZRUN_TRY(write_cg(dir, "blkio.leaf_weight", std::to_string(*b.leaf_weight)));
  std::string wdfile = std::string(wfile) + "_device";
  for (auto& wd : b.weight_device) {
    if (wd.weight)
      ZRUN_TRY(write_cg(dir, wdfile, dev(wd.major, wd.minor) + " " + std::to_string(*wd.weight)));
    if (wd.leaf_weight)
      ZRUN_TRY(write_cg(dir, "blkio.leaf_weight_device",
                        dev(wd.major, wd.minor) + " " + std::to_string(*wd.leaf_weight)));
  }
  auto throttle = [&](const std::vector<spec::ThrottleDevice>& v,
                      const char* file) -> Result<void> {
    for (auto& t : v)
      ZRUN_TRY(write_cg(dir, file, dev(t.major, t.minor) + " " + std::to_string(t.rate)));
    return base::ok();
  };
  ZRUN_TRY(throttle(b.throttle_read_bps_device, "blkio.throttle.read_bps_device"));
  ZRUN_TRY(throttle(b.throttle_write_bps_device, "blkio.throttle.write_bps_device"));
  ZRUN_TRY(throttle(b.throttle_read_iops_device, "blkio.throttle.read_iops_device"));
  ZRUN_TRY(throttle(b.throttle_write_iops_device, "blkio.throttle.write_iops_device"));
  return base::ok();
}

std::string device_rule(const spec::DeviceRule& d) {
  std::string t = d.type.empty() ? "a" : d.type;
  std::string maj = d.major && *d.major >= 0 ? std::to_string(*d.major) : "*";
  std::string min = d.minor && *d.minor >= 0 ? std::to_string(*d.minor) : "*";
  std::string acc = d.access.empty() ? "rwm" : d.access;
  return t + " " + maj + ":" + min + " " + acc;
}

// Deny everything, then replay the rules in order (later rules win, as in the spec).
Result<void> devices_v1(const Dirs& dirs, const std::vector<spec::DeviceRule>& rules) {
  auto dir = ZRUN_TRY(need(dirs, "devices", "linux.resources.devices"));
  ZRUN_TRY(write_cg(dir, "devices.deny", "a"));
  for (auto& d : rules)
    ZRUN_TRY(write_cg(dir, d.allow ? "devices.allow" : "devices.deny", device_rule(d)));
  return base::ok();
}

Result<void> unified_in_hybrid(const std::string& unified_dir,
                               const std::map<std::string, std::string>& unified) {
  if (unified.empty()) return base::ok();
  if (unified_dir.empty())
    return base::make_error("linux.resources.unified: requires cgroup v2 (this host is v1)");
  for (auto& [key, value] : unified) {
    ZRUN_TRY(validate_unified_key(key));
    ZRUN_TRY(write_cg(unified_dir, key, value));
  }
  return base::ok();
}

}  // namespace

const std::vector<spec::DeviceRule>& default_allowed_devices() {
  static const std::vector<spec::DeviceRule> k = [] {
    auto c = [](std::optional<int64_t> maj, std::optional<int64_t> min, const char* acc) {
      return spec::DeviceRule{true, "c", maj, min, acc};
    };
    return std::vector<spec::DeviceRule>{
        c(std::nullopt, std::nullopt, "m"),
        spec::DeviceRule{true, "b", std::nullopt, std::nullopt, "m"},
        c(1, 3, "rwm"),               // null
        c(1, 8, "rwm"),               // random
        c(1, 7, "rwm"),               // full
        c(5, 0, "rwm"),               // tty
        c(1, 5, "rwm"),               // zero
        c(1, 9, "rwm"),               // urandom
        c(5, 1, "rwm"),               // console
        c(136, std::nullopt, "rwm"),  // /dev/pts/*
        c(5, 2, "rwm"),               // ptmx
    };
  }();
  return k;
}

std::vector<spec::DeviceRule> device_rules_with_defaults(const std::vector<spec::DeviceRule>& rules,
                                                         const std::vector<spec::Device>* devices) {
  if (rules.empty()) return rules;
  std::vector<spec::DeviceRule> out = rules;
  if (devices) {
    for (auto& d : *devices) {
      if (d.type != 'c' && d.type != 'b' && d.type != 'u') continue;  // fifos: no rule
      out.push_back({true, d.type == 'b' ? "b" : "c", d.major, d.minor, "rwm"});
    }
  }
  auto& defs = default_allowed_devices();
  out.insert(out.end(), defs.begin(), defs.end());
  return out;
}

Result<void> apply_v1(const Dirs& dirs, const std::string& unified_dir, const spec::Resources& r,
                      bool update) {
  if (r.memory) ZRUN_TRY(memory_v1(dirs, *r.memory, update));
  if (r.cpu) ZRUN_TRY(cpu_v1(dirs, *r.cpu));
  if (r.pids_limit) {
    auto dir = ZRUN_TRY(need(dirs, "pids", "linux.resources.pids"));
    ZRUN_TRY(write_cg(dir, "pids.max",
                      *r.pids_limit <= 0 ? std::string("max") : std::to_string(*r.pids_limit)));
  }
  if (r.block_io) ZRUN_TRY(blkio_v1(dirs, *r.block_io));
  if (!r.hugepage_limits.empty()) {
    auto dir = ZRUN_TRY(need(dirs, "hugetlb", "linux.resources.hugepageLimits"));
    for (auto& h : r.hugepage_limits)
      ZRUN_TRY(
          write_cg(dir, "hugetlb." + h.page_size + ".limit_in_bytes", std::to_string(h.limit)));
  }
  if (!r.rdma.empty()) {
    auto dir = ZRUN_TRY(need(dirs, "rdma", "linux.resources.rdma"));
    for (auto& [device, l] : r.rdma) ZRUN_TRY(write_cg(dir, "rdma.max", rdma_value(device, l)));
  }
  // Hybrid without a v1 devices controller: the unified hierarchy's device filter is the
  // only enforcement (the caller attaches it); legacy: an error naming the controller.
  if (!r.devices.empty() && (dirs.count("devices") || unified_dir.empty()))
    ZRUN_TRY(devices_v1(dirs, r.devices));
  ZRUN_TRY(unified_in_hybrid(unified_dir, r.unified));
  return base::ok();
}

}  // namespace zrun::cg
