#include "runtime/accounting.h"

#include <seccomp.h>

#include <cstdlib>

#include "base/log.h"
#include "cgroups/accounting.h"
#include "cgroups/stats.h"

namespace zrun::rt {

using base::Result;
using nlohmann::json;

namespace {

bool is_false(const std::string& v) { return v == "false" || v == "0" || v == "off" || v == "no"; }
bool is_true(const std::string& v) { return v == "true" || v == "1" || v == "on" || v == "yes"; }

std::string annotation(const std::map<std::string, std::string>& a, const char* key) {
  auto it = a.find(key);
  return it == a.end() ? std::string() : it->second;
}

// ZRUN_ACCOUNTING=0|false|off|no turns accounting off for every container zrun creates.
bool globally_off() {
  const char* env = std::getenv("ZRUN_ACCOUNTING");
  return env && is_false(env);
}

std::string syscall_name(uint32_t nr) {
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, static_cast<int>(nr));
  std::string s = name ? name : std::to_string(nr);
  std::free(name);
  return s;
}

json net_json(const cg::acct::NetCounters& n) {
  return {{"bytes", n.bytes},
          {"packets", n.packets},
          {"tcp_bytes", n.tcp_bytes},
          {"udp_bytes", n.udp_bytes},
          {"other_bytes", n.other_bytes}};
}

json counters_json(const cg::acct::Counters& c) {
  json sys = nullptr;
  if (c.syscalls_enabled) {
    json top = json::array();
    for (auto& [nr, n] : c.top_syscalls)
      top.push_back({{"nr", nr}, {"name", syscall_name(nr)}, {"count", n}});
    sys = {{"total", c.syscalls}, {"top", top}};
  }
  return {{"cgroup_id", c.cgroup_id},
          {"cpu",
           {{"oncpu_ns", c.oncpu_ns},
            {"voluntary_switches", c.vol_switches},
            {"involuntary_switches", c.invol_switches},
            {"runq",
             {{"count", c.runq_count},
              {"total_ns", c.runq_total_ns},
              {"p50_ns", cg::acct::runq_percentile(c.runq_hist, 50)},
              {"p99_ns", cg::acct::runq_percentile(c.runq_hist, 99)},
              {"log2_hist", c.runq_hist}}}}},
          {"processes",
           {{"forks", c.forks}, {"threads", c.threads}, {"execs", c.execs}, {"exits", c.exits}}},
          {"memory",
           {{"minor_faults", c.min_faults},
            {"major_faults", c.maj_faults},
            {"oom_kills", c.oom_kills}}},
          {"syscalls", sys},
          {"io",
           {{"read_bytes", c.io_read_bytes},
            {"reads", c.io_reads},
            {"write_bytes", c.io_write_bytes},
            {"writes", c.io_writes}}},
          {"network", {{"in", net_json(c.net_in)}, {"out", net_json(c.net_out)}}}};
}

}  // namespace

bool start_accounting(const std::string& state_root, const cg::Cgroup& cgroup,
                      const std::map<std::string, std::string>& annotations) {
  if (globally_off() || is_false(annotation(annotations, kAccountingAnnotation))) return false;
  if (!cg::acct::compiled_in()) return false;  // a build choice, not worth a warning each time
  std::string dir = cgroup.unified_dir();
  if (dir.empty()) {
    base::log_debug("accounting: no unified cgroup (legacy mode): container not accounted");
    return false;
  }
  cg::acct::TrackOptions o;
  o.syscalls = is_true(annotation(annotations, kSyscallsAnnotation));
  o.network = !is_false(annotation(annotations, kNetworkAnnotation));
  if (auto r = cg::acct::track(state_root, dir, o); !r) {
    base::log_warn("eBPF accounting off for this container: " + r.error().text());
    return false;
  }
  return true;
}

void stop_accounting(const std::string& state_root, const cg::Cgroup& cgroup) {
  std::string dir = cgroup.unified_dir();
  if (dir.empty()) return;
  // A cgroup removed behind our back has no id any more: untrack(0) still prunes every
  // tracked cgroup that no longer exists.
  auto id = cg::acct::cgroup_id(dir);
  if (auto r = cg::acct::untrack(state_root, id ? *id : 0); !r)
    base::log_warn("stop eBPF accounting: " + r.error().text());
}

json ebpf_stats(const std::string& state_root, const cg::Cgroup& cgroup, std::string* error) {
  std::string dir = cgroup.unified_dir();
  if (dir.empty() || !cg::acct::compiled_in()) return nullptr;
  auto id = cg::acct::cgroup_id(dir);
  if (!id) return nullptr;
  auto c = cg::acct::read(state_root, *id);
  if (!c) {
    // Pinned objects this zrun cannot read (another version's layout, removed pins):
    // say why instead of looking merely "not accounted".
    if (error) *error = "read eBPF counters: " + c.error().text();
    return nullptr;
  }
  if (!*c) return nullptr;
  return counters_json(**c);
}

// Why a container has no eBPF counters ("" when it has them).
static std::string not_accounted_reason(const ContainerRecord& rec, const cg::Cgroup& cgroup,
                                        const json& ebpf) {
  if (!cg::acct::compiled_in()) return "zrun was built without eBPF support";
  if (cgroup.unified_dir().empty()) return "no unified (v2) cgroup for eBPF";
  if (is_false(annotation(rec.annotations, kAccountingAnnotation)))
    return std::string("turned off by the ") + kAccountingAnnotation + " annotation";
  if (ebpf.is_null())
    return "not accounted (off, or eBPF unavailable when the container was created)";
  return "";
}

Result<json> container_stats(const std::string& state_root, const ContainerRecord& rec,
                             cg::Cgroup& cgroup) {
  auto s = ZRUN_TRY(cg::read_stats(cg::stat_dirs(cgroup)));
  json out = {{"id", rec.id}};
  std::string read_error;
  json ebpf = ebpf_stats(state_root, cgroup, &read_error);
  std::string reason = read_error.empty() ? not_accounted_reason(rec, cgroup, ebpf) : read_error;
  out["accounting"] = {{"available", cg::acct::compiled_in()}, {"enabled", !ebpf.is_null()}};
  if (!reason.empty()) out["accounting"]["reason"] = reason;
  out["ebpf"] = ebpf;
  out["cgroup"] = json::parse(cg::stats_json(s));
  return out;
}

}  // namespace zrun::rt
