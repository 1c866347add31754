// Bean counters from cgroup v1 / v2 files (see beancounters.h for the sources).
#include "cgroups/beancounters.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/sys.h"
#include "cgroups/cgfs.h"

namespace zrun::cg {

using base::Result;
using U64 = std::optional<uint64_t>;

namespace {

// v1 reports "unlimited" as LONG_MAX rounded down to a page (9223372036854771712).
constexpr uint64_t kV1Unlimited = 9223372036854771712ull;

U64 norm(U64 v) {
  if (v && *v >= kV1Unlimited) return kUnlimited;
  return v;
}

// "" when `dir` is unset or the file is missing.
std::string text(const std::string& dir, const char* file) {
  if (dir.empty()) return "";
  auto s = read_cg(dir, file);
  return s ? *s : "";
}

U64 read_u(const std::string& dir, const std::string& file) {
  if (dir.empty()) return std::nullopt;
  auto s = read_cg(dir, file);
  if (!s) return std::nullopt;
  if (*s == "max") return kUnlimited;
  auto v = base::parse_uint(*s);
  if (!v) return std::nullopt;
  return norm(*v);
}

U64 keyed(const std::string& dir, const std::string& file, const char* key) {
  if (dir.empty()) return std::nullopt;
  auto s = read_cg(dir, file);
  if (!s) return std::nullopt;
  auto m = parse_flat_keyed(*s);
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

BeanCounter physpages(const StatDirs& d) {
  BeanCounter b{"physpages", "bytes"};
  std::string dir = d.dir("memory");
  if (d.v2) {
    b.held = read_u(dir, "memory.current");
    b.maxheld = read_u(dir, "memory.peak");
    b.barrier = read_u(dir, "memory.high");
    b.limit = read_u(dir, "memory.max");
    b.failcnt = keyed(dir, "memory.events", "max");
    if (auto oom = keyed(dir, "memory.events", "oom_kill")) b.extra["oom_kill"] = *oom;
  } else {
    b.held = read_u(dir, "memory.usage_in_bytes");
    b.maxheld = read_u(dir, "memory.max_usage_in_bytes");
    b.barrier = read_u(dir, "memory.soft_limit_in_bytes");
    b.limit = read_u(dir, "memory.limit_in_bytes");
    b.failcnt = read_u(dir, "memory.failcnt");
    if (auto oom = keyed(dir, "memory.oom_control", "oom_kill")) b.extra["oom_kill"] = *oom;
  }
  return b;
}

BeanCounter swap(const StatDirs& d, std::vector<std::string>& notes) {
  BeanCounter b{"swap", "bytes"};
  std::string dir = d.dir("memory");
  if (d.v2) {
    b.held = read_u(dir, "memory.swap.current");
    b.maxheld = read_u(dir, "memory.swap.peak");
    b.barrier = read_u(dir, "memory.swap.high");
    b.limit = read_u(dir, "memory.swap.max");
    b.failcnt = keyed(dir, "memory.swap.events", "fail");
  } else {
    // v1 accounts memory+swap (memsw); swap alone is the difference.
    auto memsw = read_u(dir, "memory.memsw.usage_in_bytes");
    auto mem = read_u(dir, "memory.usage_in_bytes");
    if (memsw && mem) b.held = *memsw > *mem ? *memsw - *mem : 0;
    auto lsw = read_u(dir, "memory.memsw.limit_in_bytes");
    auto lmem = read_u(dir, "memory.limit_in_bytes");
    if (lsw && lmem) b.limit = *lsw == kUnlimited ? kUnlimited : *lsw - std::min(*lsw, *lmem);
    b.failcnt = read_u(dir, "memory.memsw.failcnt");
    if (b.held) notes.push_back("swap.barrier: cgroup v1 has no swap soft limit");
  }
  if (!b.held) notes.push_back("swap: swap accounting is not available on this host");
  return b;
}

BeanCounter kmem(const StatDirs& d, std::vector<std::string>& notes) {
  BeanCounter b{"kmem", "bytes"};
  std::string dir = d.dir("memory");
  if (d.v2) {
    b.held = keyed(dir, "memory.stat", "kernel");
    notes.push_back("kmem: cgroup v2 charges kernel memory to physpages (no own limit/failcnt)");
  } else {
    b.held = read_u(dir, "memory.kmem.usage_in_bytes");
    b.maxheld = read_u(dir, "memory.kmem.max_usage_in_bytes");
    b.limit = read_u(dir, "memory.kmem.limit_in_bytes");
    b.failcnt = read_u(dir, "memory.kmem.failcnt");
    if (b.held) notes.push_back("kmem: kernels >= 5.16 ignore the v1 kmem limit");
  }
  return b;
}

BeanCounter numproc(const StatDirs& d) {
  BeanCounter b{"numproc", "processes"};
  std::string dir = d.dir("pids");
  b.held = read_u(dir, "pids.current");
  b.maxheld = read_u(dir, "pids.peak");
  b.limit = read_u(dir, "pids.max");
  b.barrier = b.limit;  // pids has no soft limit: OpenVZ's numproc had barrier == limit
  b.failcnt = keyed(dir, "pids.events", "max");
  return b;
}

BeanCounter cpu(const StatDirs& d, const Stats& s, std::vector<std::string>& notes) {
  BeanCounter b{"cpu", "ns"};
  b.held = s.cpu.total;
  b.failcnt = s.cpu.throttled_periods;
  if (d.v2) {
    auto f = base::split(text(d.unified, "cpu.max"), ' ');
    if (f.size() == 2) {
      if (f[0] == "max") {
        b.limit = kUnlimited;
      } else if (auto q = base::parse_uint(f[0]), p = base::parse_uint(f[1]); q && p) {
        b.extra["quota_us"] = *q;
        b.extra["period_us"] = *p;
      }
    }
  } else if (auto q = text(d.dir("cpu"), "cpu.cfs_quota_us"); !q.empty()) {
    auto qv = base::parse_int(q);
    if (qv && *qv < 0) {
      b.limit = kUnlimited;
    } else if (qv) {
      b.extra["quota_us"] = static_cast<uint64_t>(*qv);
      if (auto p = read_u(d.dir("cpu"), "cpu.cfs_period_us")) b.extra["period_us"] = *p;
    }
  }
  notes.push_back("cpu: held is cumulative CPU time; maxheld/barrier do not apply" +
                  std::string(b.limit ? "" : "; limit is quota_us per period_us") +
                  "; failcnt = throttled periods");
  return b;
}

BeanCounter io(const StatDirs& d, const Stats& s, std::vector<std::string>& notes) {
  BeanCounter b{"io", "bytes"};
  uint64_t total = 0;
  for (auto& e : s.io_service_bytes)
    if (e.op == "Read" || e.op == "Write") total += e.value;
  b.held = total;
  std::string dir = d.dir(d.v2 ? "io" : "blkio");
  bool throttled = false;
  if (d.v2) {
    throttled = !text(dir, "io.max").empty();
  } else {
    for (const char* f : {"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                          "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"})
      throttled |= !text(dir, f).empty();
  }
  if (!throttled) b.limit = kUnlimited;
  notes.push_back("io: held is bytes read+written; the kernel counts no io refusals" +
                  std::string(throttled ? "; per-device throttles set (see io.max/blkio)" : ""));
  return b;
}

// Fill missing peaks from (and record them in) `peak_file`.
void track_peaks(BeanCounters& bc, const std::string& peak_file) {
  nlohmann::json stored = nlohmann::json::object();
  if (!peak_file.empty()) {
    if (auto text = base::read_file(peak_file)) {
      try {
        stored = nlohmann::json::parse(*text);
      } catch (const nlohmann::json::exception&) {
        stored = nlohmann::json::object();  // torn or foreign: start again
      }
    }
  }
  if (!stored.is_object()) stored = nlohmann::json::object();
  bool changed = false;
  for (auto& r : bc.rows) {
    if (r.maxheld || !r.held || r.resource == "cpu" || r.resource == "io") continue;
    uint64_t prev = stored.value(r.resource, uint64_t{0});
    uint64_t peak = std::max(prev, *r.held);
    if (peak != prev || !stored.contains(r.resource)) changed = true;
    stored[r.resource] = peak;
    r.maxheld = peak;
    r.maxheld_sampled = true;
    bc.notes.push_back(r.resource + ".maxheld: no kernel peak counter; sampled by zrun (" +
                       (peak_file.empty() ? "this reading only" : "a lower bound") + ")");
  }
  if (changed && !peak_file.empty()) {
    auto w = base::write_file_atomic(peak_file, stored.dump());
    if (!w) base::log_debug("store bean counter peaks: " + w.error().text());
  }
}

}  // namespace

Result<BeanCounters> read_beancounters(const StatDirs& d, const std::string& peak_file) {
  Stats s = ZRUN_TRY_CTX(read_stats(d), "read bean counters");
  BeanCounters bc;
  bc.rows.push_back(physpages(d));
  bc.rows.push_back(swap(d, bc.notes));
  bc.rows.push_back(kmem(d, bc.notes));
  bc.rows.push_back(numproc(d));
  bc.rows.push_back(cpu(d, s, bc.notes));
  bc.rows.push_back(io(d, s, bc.notes));
  track_peaks(bc, peak_file);
  return bc;
}

namespace {

nlohmann::json opt(const U64& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

std::string cell(const U64& v, bool sampled = false) {
  return v ? std::to_string(*v) + (sampled ? "*" : "") : "-";
}

}  // namespace

std::string beancounters_json(const std::string& id, const BeanCounters& bc) {
  nlohmann::json rows = nlohmann::json::array();
  for (auto& r : bc.rows) {
    nlohmann::json j = {{"resource", r.resource},    {"unit", r.unit},
                        {"held", opt(r.held)},       {"maxheld", opt(r.maxheld)},
                        {"barrier", opt(r.barrier)}, {"limit", opt(r.limit)},
                        {"failcnt", opt(r.failcnt)}, {"maxheld_sampled", r.maxheld_sampled}};
    for (auto& [k, v] : r.extra) j[k] = v;
    rows.push_back(std::move(j));
  }
  return nlohmann::json({{"id", id}, {"counters", rows}, {"notes", bc.notes}}).dump();
}

std::string beancounters_table(const std::vector<std::pair<std::string, BeanCounters>>& all) {
  std::string out = "Version: 2.5\n";
  char line[512];
  std::snprintf(line, sizeof line, "%12s  %-10s %20s %20s %20s %20s %12s\n", "uid", "resource",
                "held", "maxheld", "barrier", "limit", "failcnt");
  out += line;
  bool any_sampled = false;
  for (auto& [id, bc] : all) {
    bool first = true;
    for (auto& r : bc.rows) {
      std::string who = first ? id + ":" : "";
      first = false;
      any_sampled |= r.maxheld_sampled;
      std::snprintf(line, sizeof line, "%12s  %-10s %20s %20s %20s %20s %12s\n", who.c_str(),
                    r.resource.c_str(), cell(r.held).c_str(),
                    cell(r.maxheld, r.maxheld_sampled).c_str(), cell(r.barrier).c_str(),
                    cell(r.limit).c_str(), cell(r.failcnt).c_str());
      out += line;
    }
  }
  out +=
      "\nUnits: physpages/swap/kmem/io bytes, numproc processes, cpu ns. "
      "\"-\": not kept by the kernel.\n";
  if (any_sampled) out += "*: no kernel peak counter; sampled by zrun (a lower bound).\n";
  return out;
}

}  // namespace zrun::cg
