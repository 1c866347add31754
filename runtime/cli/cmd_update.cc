// update: change a live container's linux.resources (runc's flags and -r JSON).
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/sys.h"
#include "runtime/cli/command.h"
#include "runtime/container.h"
#include "runtime/update.h"
#include "spec/config.h"

namespace zrun::cli {
namespace {

using base::Result;

struct UpdateFlags {
  std::string resources_file;
  std::string memory, memory_swap, memory_reservation, kernel_memory, kernel_memory_tcp;
  std::optional<uint64_t> cpu_shares, cpu_period, cpu_rt_period;
  std::optional<int64_t> cpu_quota, cpu_rt_runtime, pids_limit;
  std::string cpuset_cpus, cpuset_mems;
  std::optional<uint16_t> blkio_weight;
};

// "-1" (unlimited) or a size with an optional binary suffix as docker's RAMInBytes:
// 512, 1.5g, 100m, 64k, 2GiB, 10 MB.
Result<int64_t> parse_memory_size(const std::string& s) {
  std::string ctx = "invalid memory size \"" + s + "\"";
  if (s == "-1") return -1;
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return base::make_error(ctx);
  double num = 0;
  try {
    num = std::stod(s.substr(0, i));
  } catch (const std::exception&) {
    return base::make_error(ctx);
  }
  std::string unit;
  for (size_t k = i; k < s.size(); ++k)
    if (s[k] != ' ') unit += static_cast<char>(std::tolower(static_cast<unsigned char>(s[k])));
  static const std::pair<const char*, int> kUnits[] = {
      {"", 0},   {"b", 0},   {"k", 1}, {"kb", 1}, {"kib", 1}, {"m", 2},
      {"mb", 2}, {"mib", 2}, {"g", 3}, {"gb", 3}, {"gib", 3}, {"t", 4},
      {"tb", 4}, {"tib", 4}, {"p", 5}, {"pb", 5}, {"pib", 5}};
  for (auto& [name, pow] : kUnits) {
    if (unit != name) continue;
    double v = num * std::pow(1024.0, pow);
    if (v >= 9.2e18) return base::make_error(ctx + ": too large");
    return static_cast<int64_t>(v);
  }
  return base::make_error(ctx + ": unknown unit \"" + unit + "\"");
}

Result<std::string> read_resources_source(const std::string& file) {
  if (file == "-") {
    auto r = base::read_fd(STDIN_FILENO);
    if (!r) return base::context(std::move(r).error(), "read resources from stdin");
    return *r;
  }
  auto r = base::read_file(file);
  if (!r) return base::context(std::move(r).error(), "read `" + file + "`");
  return *r;
}

Result<void> set_mem(const std::string& flag, const std::string& v, std::optional<int64_t>& out) {
  if (v.empty()) return base::ok();
  auto n = parse_memory_size(v);
  if (!n) return base::context(std::move(n).error(), flag);
  out = *n;
  return base::ok();
}

// Flags override the JSON (runc applies them after reading -r).
Result<void> apply_flags(const UpdateFlags& f, spec::Resources& r) {
  bool mem = !f.memory.empty() || !f.memory_swap.empty() || !f.memory_reservation.empty() ||
             !f.kernel_memory.empty() || !f.kernel_memory_tcp.empty();
  if (mem) {
    auto& m = r.memory ? *r.memory : r.memory.emplace();
    ZRUN_TRY(set_mem("--memory", f.memory, m.limit));
    ZRUN_TRY(set_mem("--memory-swap", f.memory_swap, m.swap));
    ZRUN_TRY(set_mem("--memory-reservation", f.memory_reservation, m.reservation));
    ZRUN_TRY(set_mem("--kernel-memory", f.kernel_memory, m.kernel));
    ZRUN_TRY(set_mem("--kernel-memory-tcp", f.kernel_memory_tcp, m.kernel_tcp));
  }
  bool cpu = f.cpu_shares || f.cpu_period || f.cpu_quota || f.cpu_rt_period || f.cpu_rt_runtime ||
             !f.cpuset_cpus.empty() || !f.cpuset_mems.empty();
  if (cpu) {
    auto& c = r.cpu ? *r.cpu : r.cpu.emplace();
    if (f.cpu_shares) c.shares = f.cpu_shares;
    if (f.cpu_period) c.period = f.cpu_period;
    if (f.cpu_quota) c.quota = f.cpu_quota;
    if (f.cpu_rt_period) c.realtime_period = f.cpu_rt_period;
    if (f.cpu_rt_runtime) c.realtime_runtime = f.cpu_rt_runtime;
    if (!f.cpuset_cpus.empty()) c.cpus = f.cpuset_cpus;
    if (!f.cpuset_mems.empty()) c.mems = f.cpuset_mems;
  }
  if (f.pids_limit) r.pids_limit = f.pids_limit;
  if (f.blkio_weight) {
    auto& b = r.block_io ? *r.block_io : r.block_io.emplace();
    b.weight = f.blkio_weight;
  }
  return base::ok();
}

// What this update changes, as a linux.resources JSON object to merge into the saved
// config: the -r document as given, with the flags (already parsed into `r`) over it.
std::string update_patch(const UpdateFlags& f, const std::string& resources_text,
                         const spec::Resources& r) {
  nlohmann::json p = nlohmann::json::object();
  // spec::parse_resources() accepted the text already: this does not throw.
  if (!resources_text.empty()) p = nlohmann::json::parse(resources_text, nullptr, false);
  if (!p.is_object()) p = nlohmann::json::object();
  auto set = [&](const char* obj, const char* key, auto v) { p[obj][key] = v; };
  if (r.memory) {
    auto& m = *r.memory;
    if (!f.memory.empty()) set("memory", "limit", *m.limit);
    if (!f.memory_swap.empty()) set("memory", "swap", *m.swap);
    if (!f.memory_reservation.empty()) set("memory", "reservation", *m.reservation);
    if (!f.kernel_memory.empty()) set("memory", "kernel", *m.kernel);
    if (!f.kernel_memory_tcp.empty()) set("memory", "kernelTCP", *m.kernel_tcp);
  }
  if (f.cpu_shares) set("cpu", "shares", *f.cpu_shares);
  if (f.cpu_period) set("cpu", "period", *f.cpu_period);
  if (f.cpu_quota) set("cpu", "quota", *f.cpu_quota);
  if (f.cpu_rt_period) set("cpu", "realtimePeriod", *f.cpu_rt_period);
  if (f.cpu_rt_runtime) set("cpu", "realtimeRuntime", *f.cpu_rt_runtime);
  if (!f.cpuset_cpus.empty()) set("cpu", "cpus", f.cpuset_cpus);
  if (!f.cpuset_mems.empty()) set("cpu", "mems", f.cpuset_mems);
  if (f.pids_limit) set("pids", "limit", *f.pids_limit);
  if (f.blkio_weight) set("blockIO", "weight", *f.blkio_weight);
  return p.dump();
}

void add_update_flags(CLI::App* c, UpdateFlags& f) {
  c->add_option("-r,--resources", f.resources_file,
                "path to a linux.resources JSON file, or - for stdin");
  c->add_option("--memory", f.memory, "memory limit (e.g. 100m, -1 for unlimited)");
  c->add_option("--memory-swap", f.memory_swap, "memory+swap limit (-1 for unlimited)");
  c->add_option("--memory-reservation", f.memory_reservation, "memory soft limit");
  c->add_option("--kernel-memory", f.kernel_memory, "kernel memory limit (ignored by the kernel)");
  c->add_option("--kernel-memory-tcp", f.kernel_memory_tcp, "kernel TCP buffer limit (ignored)");
  c->add_option("--cpu-share,--cpu-shares", f.cpu_shares, "CPU shares (relative weight)");
  c->add_option("--cpu-period", f.cpu_period, "CFS period in microseconds");
  c->add_option("--cpu-quota", f.cpu_quota, "CFS quota in microseconds per period (-1: none)");
  c->add_option("--cpu-rt-period", f.cpu_rt_period, "realtime period in microseconds");
  c->add_option("--cpu-rt-runtime", f.cpu_rt_runtime, "realtime runtime in microseconds");
  c->add_option("--cpuset-cpus", f.cpuset_cpus, "CPUs to run on (0-3, 0,1)");
  c->add_option("--cpuset-mems", f.cpuset_mems, "memory nodes to use (0-3, 0,1)");
  c->add_option("--pids-limit", f.pids_limit, "maximum number of processes (-1/0: unlimited)");
  c->add_option("--blkio-weight", f.blkio_weight, "block IO weight, 10-1000");
}

ZRUN_COMMAND("update", 85, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("update", "update a container's resource limits");
  auto f = std::make_shared<UpdateFlags>();
  auto id = std::make_shared<std::string>();
  add_update_flags(c, *f);
  c->add_option("id", *id, "container id")->required();
  return [f, id, &g]() -> Result<int> {
    std::string ctx = "update `" + *id + "`";
    spec::Resources r;
    std::string text;
    if (!f->resources_file.empty()) {
      text = ZRUN_TRY_CTX(read_resources_source(f->resources_file), ctx);
      r = ZRUN_TRY_CTX(spec::parse_resources(text), ctx);
    }
    ZRUN_TRY_CTX(apply_flags(*f, r), ctx);
    rt::StateStore store(g.root);
    auto ct = ZRUN_TRY(rt::Container::open(store, *id, true));
    if (ct.status() == rt::Status::kStopped)
      return base::make_error(ctx + ": container is stopped");
    ZRUN_TRY_CTX(rt::update_resources(ct, r, update_patch(*f, text, r)), ctx);
    return 0;
  };
});

}  // namespace
}  // namespace zrun::cli
