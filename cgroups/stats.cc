// Cgroup statistics for `zrun events` (runc's field names and unit conversions).
#include "cgroups/stats.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/sys.h"
#include "cgroups/cgfs.h"

namespace zrun::cg {

using base::Result;

namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

std::optional<uint64_t> parse_u64(std::string_view s) {
  auto v = base::parse_uint(base::trim(s));
  if (!v) return std::nullopt;
  return *v;
}

// A single-value file; "max" (v2 unlimited) -> `max_value`.
std::optional<uint64_t> read_u64(const std::string& dir, const char* file,
                                 uint64_t max_value = kU64Max) {
  if (dir.empty()) return std::nullopt;
  auto s = read_cg(dir, file);
  if (!s) return std::nullopt;
  if (*s == "max") return max_value;
  return parse_u64(*s);
}

std::map<std::string, uint64_t> read_keyed(const std::string& dir, const char* file) {
  if (dir.empty()) return {};
  auto s = read_cg(dir, file);
  return s ? parse_flat_keyed(*s) : std::map<std::string, uint64_t>{};
}

uint64_t get(const std::map<std::string, uint64_t>& m, const char* key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

void cpu_v1(const StatDirs& d, Stats::Cpu& c) {
  std::string acct = d.dir("cpuacct");
  c.total = read_u64(acct, "cpuacct.usage").value_or(0);
  if (auto per = read_cg(acct.empty() ? "/nonexistent" : acct, "cpuacct.usage_percpu")) {
    for (auto& f : base::split(*per, ' '))
      if (auto v = parse_u64(f)) c.percpu.push_back(*v);
  }
  // cpuacct.stat is in USER_HZ ticks; runc reports nanoseconds.
  auto st = read_keyed(acct, "cpuacct.stat");
  long hz = ::sysconf(_SC_CLK_TCK);
  uint64_t ns_per_tick = hz > 0 ? 1000000000ull / static_cast<uint64_t>(hz) : 10000000ull;
  c.user = get(st, "user") * ns_per_tick;
  c.kernel = get(st, "system") * ns_per_tick;
  auto cs = read_keyed(d.dir("cpu"), "cpu.stat");
  c.periods = get(cs, "nr_periods");
  c.throttled_periods = get(cs, "nr_throttled");
  c.throttled_time = get(cs, "throttled_time");
}

void cpu_v2(const StatDirs& d, Stats::Cpu& c) {
  auto cs = read_keyed(d.unified, "cpu.stat");
  c.total = get(cs, "usage_usec") * 1000;
  c.user = get(cs, "user_usec") * 1000;
  c.kernel = get(cs, "system_usec") * 1000;
  c.periods = get(cs, "nr_periods");
  c.throttled_periods = get(cs, "nr_throttled");
  c.throttled_time = get(cs, "throttled_usec") * 1000;
}

MemoryEntry mem_entry_v1(const std::string& dir, const std::string& prefix) {
  MemoryEntry e;
  e.usage = read_u64(dir, (prefix + "usage_in_bytes").c_str()).value_or(0);
  e.max = read_u64(dir, (prefix + "max_usage_in_bytes").c_str()).value_or(0);
  e.limit = read_u64(dir, (prefix + "limit_in_bytes").c_str()).value_or(0);
  e.failcnt = read_u64(dir, (prefix + "failcnt").c_str()).value_or(0);
  return e;
}

void memory_v1(const StatDirs& d, Stats::Memory& m) {
  std::string dir = d.dir("memory");
  if (dir.empty()) return;
  m.usage = mem_entry_v1(dir, "memory.");
  m.swap = mem_entry_v1(dir, "memory.memsw.");
  m.kernel = mem_entry_v1(dir, "memory.kmem.");
  m.kernel_tcp = mem_entry_v1(dir, "memory.kmem.tcp.");
  m.raw = read_keyed(dir, "memory.stat");
  m.cache = get(m.raw, "cache");
}

void memory_v2(const StatDirs& d, Stats::Memory& m) {
  const std::string& dir = d.unified;
  m.raw = read_keyed(dir, "memory.stat");
  m.cache = get(m.raw, "file");
  m.usage.usage = read_u64(dir, "memory.current").value_or(0);
  m.usage.max = read_u64(dir, "memory.peak").value_or(0);
  m.usage.limit = read_u64(dir, "memory.max").value_or(0);
  m.usage.failcnt = get(read_keyed(dir, "memory.events"), "max");
  // runc (getMemoryDataV2) reports swap as memory+swap so v1 consumers keep working.
  auto swap = read_u64(dir, "memory.swap.current");
  if (swap) {
    m.swap.usage = *swap + m.usage.usage;
    auto sp = read_u64(dir, "memory.swap.peak");
    m.swap.max = sp ? *sp + m.usage.max : 0;
    auto smax = read_u64(dir, "memory.swap.max").value_or(kU64Max);
    m.swap.limit = (smax == kU64Max || m.usage.limit == kU64Max) ? kU64Max : smax + m.usage.limit;
    m.swap.failcnt = get(read_keyed(dir, "memory.swap.events"), "fail");
  }
}

void blkio_v1(const StatDirs& d, Stats& s) {
  std::string dir = d.dir("blkio");
  if (dir.empty()) return;
  auto read = [&](const char* rec, const char* flat) {
    auto t = read_cg(dir, rec);
    if (!t) t = read_cg(dir, flat);
    return t ? parse_blkio_v1(*t) : std::vector<BlkioEntry>{};
  };
  s.io_service_bytes =
      read("blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes");
  s.io_serviced = read("blkio.throttle.io_serviced_recursive", "blkio.throttle.io_serviced");
}

// hugetlb.<size>.* files: v1 usage_in_bytes/max_usage_in_bytes/failcnt, v2
// current/max/events "max".
void hugetlb(const StatDirs& d, Stats& s) {
  std::string dir = d.dir("hugetlb");
  if (dir.empty()) return;
  auto names = base::list_dir(dir);
  if (!names) return;
  for (auto& n : *names) {
    const char* suffix = d.v2 ? ".current" : ".usage_in_bytes";
    if (!base::starts_with(n, "hugetlb.") || !n.ends_with(suffix)) continue;
    std::string size = n.substr(8, n.size() - 8 - std::string_view(suffix).size());
    if (size.find('.') != std::string::npos) continue;  // hugetlb.2MB.rsvd.*
    std::string p = "hugetlb." + size;
    HugetlbStats h;
    if (d.v2) {
      h.usage = read_u64(dir, (p + ".current").c_str()).value_or(0);
      h.failcnt = get(read_keyed(dir, (p + ".events").c_str()), "max");
    } else {
      h.usage = read_u64(dir, (p + ".usage_in_bytes").c_str()).value_or(0);
      h.max = read_u64(dir, (p + ".max_usage_in_bytes").c_str()).value_or(0);
      h.failcnt = read_u64(dir, (p + ".failcnt").c_str()).value_or(0);
    }
    s.hugetlb[size] = h;
  }
}

nlohmann::json mem_json(const MemoryEntry& e) {
  return {{"limit", e.limit}, {"usage", e.usage}, {"max", e.max}, {"failcnt", e.failcnt}};
}

nlohmann::json blkio_json(const std::vector<BlkioEntry>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (auto& e : v)
    a.push_back({{"major", e.major}, {"minor", e.minor}, {"op", e.op}, {"value", e.value}});
  return a;
}

}  // namespace

std::string StatDirs::dir(const std::string& ctrl) const {
  if (v2) return unified;
  auto it = v1.find(ctrl);
  return it == v1.end() ? "" : it->second;
}

StatDirs stat_dirs(const Cgroup& cg) {
  StatDirs d;
  d.v2 = cg.mode() == Mode::kUnified;
  d.unified = cg.unified_dir();
  if (!d.v2)
    for (const char* c : {"cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "hugetlb",
                          "freezer", "devices", "rdma"})
      if (auto dir = cg.v1_dir(c); !dir.empty()) d.v1[c] = dir;
  return d;
}

Result<Stats> read_stats(const StatDirs& d) {
  std::string any = d.v2 ? d.unified : (d.v1.empty() ? d.unified : d.v1.begin()->second);
  if (any.empty() || !base::is_dir(any))
    return base::make_error("read stats: cgroup `" + any + "` does not exist");
  Stats s;
  if (d.v2) {
    cpu_v2(d, s.cpu);
    memory_v2(d, s.memory);
    if (auto io = read_cg(d.unified, "io.stat"))
      parse_io_stat(*io, s.io_service_bytes, s.io_serviced);
  } else {
    cpu_v1(d, s.cpu);
    memory_v1(d, s.memory);
    blkio_v1(d, s);
  }
  std::string pids = d.dir("pids");
  s.pids.current = read_u64(pids, "pids.current").value_or(0);
  s.pids.limit = read_u64(pids, "pids.max", 0).value_or(0);
  hugetlb(d, s);
  return s;
}

std::string stats_json(const Stats& s) {
  nlohmann::json raw = nlohmann::json::object();
  for (auto& [k, v] : s.memory.raw) raw[k] = v;
  nlohmann::json huge = nlohmann::json::object();
  for (auto& [size, h] : s.hugetlb)
    huge[size] = {{"usage", h.usage}, {"max", h.max}, {"failcnt", h.failcnt}};
  nlohmann::json j = {{"cpu",
                       {{"usage",
                         {{"total", s.cpu.total},
                          {"percpu", s.cpu.percpu},
                          {"kernel", s.cpu.kernel},
                          {"user", s.cpu.user}}},
                        {"throttling",
                         {{"periods", s.cpu.periods},
                          {"throttledPeriods", s.cpu.throttled_periods},
                          {"throttledTime", s.cpu.throttled_time}}}}},
                      {"memory",
                       {{"cache", s.memory.cache},
                        {"usage", mem_json(s.memory.usage)},
                        {"swap", mem_json(s.memory.swap)},
                        {"kernel", mem_json(s.memory.kernel)},
                        {"kernelTCP", mem_json(s.memory.kernel_tcp)},
                        {"raw", raw}}},
                      {"pids", {{"current", s.pids.current}, {"limit", s.pids.limit}}},
                      {"blkio",
                       {{"ioServiceBytesRecursive", blkio_json(s.io_service_bytes)},
                        {"ioServicedRecursive", blkio_json(s.io_serviced)}}},
                      {"hugetlb", huge}};
  return j.dump();
}

std::string stats_event(const std::string& id, const Stats& s) {
  // runc's field order: type, id, data.
  return R"({"type":"stats","id":)" + nlohmann::json(id).dump() + R"(,"data":)" + stats_json(s) +
         "}";
}

std::string oom_event(const std::string& id) {
  return R"({"type":"oom","id":)" + nlohmann::json(id).dump() + "}";
}

std::optional<uint64_t> oom_kill_count(const StatDirs& d) {
  std::string dir = d.dir("memory");
  if (dir.empty()) return std::nullopt;
  auto m = read_keyed(dir, d.v2 ? "memory.events" : "memory.oom_control");
  auto it = m.find("oom_kill");
  if (it == m.end()) return std::nullopt;
  return it->second;
}

// ---- OOM notification ----

Result<OomWatcher> OomWatcher::open(const StatDirs& d) {
  std::string dir = d.dir("memory");
  if (dir.empty()) return base::make_error("watch for OOM: no memory controller");
  OomWatcher w;
  if (d.v2) {
    w.v2_ = true;
    w.events_dir_ = dir;
    int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd < 0) return base::sys_error("inotify_init1");
    w.fd_.reset(fd);
    std::string path = base::join_path(dir, "memory.events");
    if (::inotify_add_watch(fd, path.c_str(), IN_MODIFY) < 0)
      return base::sys_error("watch `" + path + "`");
    auto ev = read_keyed(dir, "memory.events");
    w.last_oom_ = get(ev, "oom");
    w.last_kill_ = get(ev, "oom_kill");
    return w;
  }
  // cgroup-v1/memory.rst "Memory thresholds"/"OOM Control": write "<eventfd> <fd of
  // memory.oom_control>" to cgroup.event_control.
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return base::sys_error("eventfd");
  w.fd_.reset(efd);
  w.oom_control_ =
      ZRUN_TRY(base::open_file(base::join_path(dir, "memory.oom_control"), O_RDONLY | O_CLOEXEC));
  ZRUN_TRY(write_cg(dir, "cgroup.event_control",
                    std::to_string(efd) + " " + std::to_string(w.oom_control_.get())));
  return w;
}

Result<uint64_t> OomWatcher::drain() {
  if (!v2_) {
    uint64_t n = 0;
    if (::read(fd_.get(), &n, sizeof n) != sizeof n)
      return errno == EAGAIN ? Result<uint64_t>(0) : base::sys_error("read eventfd");
    return n;
  }
  char buf[4096];
  while (::read(fd_.get(), buf, sizeof buf) > 0) {
  }
  // The kernel bumps "oom" when the OOM killer runs for this cgroup and "oom_kill" when it
  // killed a task in it: one OOM, but usually two inotify events, since the kill comes
  // after cgroup_file_notify()'s 10 ms rate limit under load (seen in the TCG guest). A
  // kill that follows a counted "oom" is that OOM; a kill without one (an ancestor's limit
  // took one of our tasks) is an OOM of its own.
  auto ev = read_keyed(events_dir_, "memory.events");
  uint64_t oom = get(ev, "oom"), kill = get(ev, "oom_kill");
  uint64_t d_oom = oom > last_oom_ ? oom - last_oom_ : 0;
  uint64_t d_kill = kill > last_kill_ ? kill - last_kill_ : 0;
  last_oom_ = std::max(last_oom_, oom);
  last_kill_ = std::max(last_kill_, kill);
  uint64_t matched = std::min(d_kill, unmatched_ + d_oom);
  unmatched_ = unmatched_ + d_oom - matched;
  return d_oom + (d_kill - matched);
}

// ---- parsers ----

std::map<std::string, uint64_t> parse_flat_keyed(std::string_view text) {
  std::map<std::string, uint64_t> out;
  for (auto& line : base::split(text, '\n')) {
    auto t = base::trim(line);
    auto sp = t.find(' ');
    if (sp == std::string_view::npos) continue;
    if (auto v = parse_u64(t.substr(sp + 1))) out[std::string(t.substr(0, sp))] = *v;
  }
  return out;
}

namespace {

bool parse_devnum(std::string_view s, BlkioEntry& e) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  auto maj = parse_u64(s.substr(0, colon));
  auto min = parse_u64(s.substr(colon + 1));
  if (!maj || !min) return false;
  e.major = *maj;
  e.minor = *min;
  return true;
}

}  // namespace

std::vector<BlkioEntry> parse_blkio_v1(std::string_view text) {
  std::vector<BlkioEntry> out;
  for (auto& line : base::split(text, '\n')) {
    auto f = base::split(base::trim(line), ' ');
    if (f.size() != 3) continue;  // "Total N"
    BlkioEntry e;
    auto v = parse_u64(f[2]);
    if (!parse_devnum(f[0], e) || !v) continue;
    e.op = f[1];
    e.value = *v;
    out.push_back(std::move(e));
  }
  return out;
}

void parse_io_stat(std::string_view text, std::vector<BlkioEntry>& bytes,
                   std::vector<BlkioEntry>& ios) {
  static const std::pair<const char*, const char*> kBytes[] = {
      {"rbytes", "Read"}, {"wbytes", "Write"}, {"dbytes", "Discard"}};
  static const std::pair<const char*, const char*> kIos[] = {
      {"rios", "Read"}, {"wios", "Write"}, {"dios", "Discard"}};
  for (auto& line : base::split(text, '\n')) {
    auto f = base::split(base::trim(line), ' ');
    BlkioEntry dev;
    if (f.empty() || !parse_devnum(f[0], dev)) continue;
    std::map<std::string, uint64_t> kv;
    for (size_t i = 1; i < f.size(); ++i) {
      auto eq = f[i].find('=');
      if (eq == std::string::npos) continue;
      if (auto v = parse_u64(std::string_view(f[i]).substr(eq + 1))) kv[f[i].substr(0, eq)] = *v;
    }
    auto add = [&](auto& table, std::vector<BlkioEntry>& out) {
      for (auto& [key, op] : table) {
        auto it = kv.find(key);
        if (it == kv.end()) continue;
        BlkioEntry e = dev;
        e.op = op;
        e.value = it->second;
        out.push_back(e);
      }
    };
    add(kBytes, bytes);
    add(kIos, ios);
  }
}

}  // namespace zrun::cg
