// stats: what each container consumed, measured in the kernel by the eBPF accountant
// (docs/accounting.md), next to the cgroup's own counters. `--json` prints an array of
// the documents `delete --report` writes.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "runtime/accounting.h"
#include "runtime/cli/command.h"
#include "runtime/container.h"

namespace zrun::cli {
namespace {

using base::Result;
using nlohmann::json;

std::string human_bytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof(buf), u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

std::string human_ns(uint64_t ns) {
  char buf[32];
  if (ns >= 1000000000ull)
    std::snprintf(buf, sizeof(buf), "%.3f s", static_cast<double>(ns) / 1e9);
  else if (ns >= 1000000ull)
    std::snprintf(buf, sizeof(buf), "%.3f ms", static_cast<double>(ns) / 1e6);
  else if (ns >= 1000ull)
    std::snprintf(buf, sizeof(buf), "%.1f us", static_cast<double>(ns) / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%llu ns", static_cast<unsigned long long>(ns));
  return buf;
}

uint64_t u(const json& j, const char* a, const char* b = nullptr, const char* c = nullptr) {
  const json* p = &j;
  for (const char* k : {a, b, c}) {
    if (!k) break;
    if (!p->is_object() || !p->contains(k)) return 0;
    p = &(*p)[k];
  }
  return p->is_number_unsigned() ? p->get<uint64_t>() : 0;
}

void print_text(const json& s) {
  const json& cg = s["cgroup"];
  const json& e = s["ebpf"];
  std::printf("%s\n", s["id"].get<std::string>().c_str());
  uint64_t mem_limit = u(cg, "memory", "usage", "limit");
  std::string limit = mem_limit == 0 || mem_limit >= (1ull << 62) ? "max" : human_bytes(mem_limit);
  uint64_t pids_limit = u(cg, "pids", "limit");
  std::printf("  cgroup:    cpu %s (user %s, system %s)  memory %s / %s (peak %s)\n",
              human_ns(u(cg, "cpu", "usage", "total")).c_str(),
              human_ns(u(cg, "cpu", "usage", "user")).c_str(),
              human_ns(u(cg, "cpu", "usage", "kernel")).c_str(),
              human_bytes(u(cg, "memory", "usage", "usage")).c_str(), limit.c_str(),
              human_bytes(u(cg, "memory", "usage", "max")).c_str());
  uint64_t rd = 0, wr = 0;
  if (cg.contains("blkio") && cg["blkio"].contains("ioServiceBytesRecursive"))
    for (auto& x : cg["blkio"]["ioServiceBytesRecursive"]) {
      if (x.value("op", "") == "Read") rd += x.value("value", 0ull);
      if (x.value("op", "") == "Write") wr += x.value("value", 0ull);
    }
  std::printf("             pids %llu / %s  io read %s write %s\n",
              static_cast<unsigned long long>(u(cg, "pids", "current")),
              pids_limit ? std::to_string(pids_limit).c_str() : "max", human_bytes(rd).c_str(),
              human_bytes(wr).c_str());
  if (e.is_null()) {
    std::printf("  ebpf:      unavailable: %s\n",
                s["accounting"].value("reason", std::string("unknown")).c_str());
    return;
  }
  std::printf(
      "  cpu:       on-cpu %s  switches %llu voluntary, %llu involuntary  run-queue delay "
      "p50 <= %s, p99 <= %s (%llu waits)\n",
      human_ns(u(e, "cpu", "oncpu_ns")).c_str(),
      static_cast<unsigned long long>(u(e, "cpu", "voluntary_switches")),
      static_cast<unsigned long long>(u(e, "cpu", "involuntary_switches")),
      human_ns(u(e["cpu"], "runq", "p50_ns")).c_str(),
      human_ns(u(e["cpu"], "runq", "p99_ns")).c_str(),
      static_cast<unsigned long long>(u(e["cpu"], "runq", "count")));
  std::printf("  processes: forks %llu  threads %llu  execs %llu  exits %llu\n",
              static_cast<unsigned long long>(u(e, "processes", "forks")),
              static_cast<unsigned long long>(u(e, "processes", "threads")),
              static_cast<unsigned long long>(u(e, "processes", "execs")),
              static_cast<unsigned long long>(u(e, "processes", "exits")));
  std::printf("  memory:    page faults %llu minor, %llu major  oom kills %llu\n",
              static_cast<unsigned long long>(u(e, "memory", "minor_faults")),
              static_cast<unsigned long long>(u(e, "memory", "major_faults")),
              static_cast<unsigned long long>(u(e, "memory", "oom_kills")));
  std::printf(
      "  io:        read %s (%llu bios)  written %s (%llu bios) by its own tasks "
      "(not writeback)\n",
      human_bytes(u(e, "io", "read_bytes")).c_str(),
      static_cast<unsigned long long>(u(e, "io", "reads")),
      human_bytes(u(e, "io", "write_bytes")).c_str(),
      static_cast<unsigned long long>(u(e, "io", "writes")));
  for (const char* dir : {"in", "out"}) {
    const json& n = e["network"][dir];
    std::printf("  net %-4s   %s, %llu packets (tcp %s, udp %s, other %s)\n", dir,
                human_bytes(u(n, "bytes")).c_str(),
                static_cast<unsigned long long>(u(n, "packets")),
                human_bytes(u(n, "tcp_bytes")).c_str(), human_bytes(u(n, "udp_bytes")).c_str(),
                human_bytes(u(n, "other_bytes")).c_str());
  }
  if (e["syscalls"].is_null()) {
    std::printf("  syscalls:  not counted (annotation %s=true)\n", rt::kSyscallsAnnotation);
  } else {
    std::string top;
    for (auto& t : e["syscalls"]["top"])
      top += " " + t["name"].get<std::string>() + " " + std::to_string(t["count"].get<uint64_t>());
    std::printf("  syscalls:  %llu total; top:%s\n",
                static_cast<unsigned long long>(u(e, "syscalls", "total")), top.c_str());
  }
}

ZRUN_COMMAND("stats", 93, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("stats", "show what containers consumed (eBPF + cgroup counters)");
  auto ids = std::make_shared<std::vector<std::string>>();
  auto as_json = std::make_shared<bool>(false);
  c->add_flag("--json", *as_json, "print a JSON array, one document per container");
  c->add_option("id", *ids, "container ids")->required();
  return [ids, as_json, &g]() -> Result<int> {
    rt::StateStore store(g.root);
    json all = json::array();
    for (auto& id : *ids) {
      std::string ctx = "stats `" + id + "`";
      auto ct = ZRUN_TRY(rt::Container::open(store, id, false));
      auto* cg = ZRUN_TRY_CTX(ct.cgroup(), ctx);
      if (!cg) return base::make_error(ctx + ": container has no cgroup");
      auto s = ZRUN_TRY_CTX(rt::container_stats(g.root, ct.record(), *cg), ctx);
      s["status"] = rt::status_name(ct.status());
      all.push_back(std::move(s));
    }
    if (*as_json) {
      std::printf("%s\n", all.dump(2).c_str());
      return 0;
    }
    for (auto& s : all) print_text(s);
    return 0;
  };
});

}  // namespace
}  // namespace zrun::cli
