// ps: the host PIDs in the container's cgroup (rootless without one: those in its PID
// namespace). `-f json` prints a JSON array of ints (what containerd parses); the table is
// a small `ps -ef` from /proc (runc shells out to ps(1), which a host may not have).
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/sys.h"
#include "runtime/cli/command.h"
#include "runtime/container.h"

namespace zrun::cli {
namespace {

using base::Result;

struct ProcRow {
  std::string uid = "?", ppid = "?", cmd;
};

ProcRow proc_row(pid_t pid) {
  ProcRow r;
  std::string base = "/proc/" + std::to_string(pid);
  if (auto status = base::read_file(base + "/status")) {
    for (auto& line : base::split(*status, '\n')) {
      if (base::starts_with(line, "PPid:")) r.ppid = std::string(base::trim(line.substr(5)));
      if (base::starts_with(line, "Uid:")) {
        auto f = base::split(std::string(base::trim(line.substr(4))), '\t');
        if (!f.empty()) {
          auto uid = base::parse_uint(f[0]);
          r.uid = uid ? base::user_name(static_cast<uint32_t>(*uid)) : f[0];
        }
      }
    }
  }
  if (auto cmdline = base::read_file(base + "/cmdline")) {
    for (char ch : *cmdline) r.cmd += ch == '\0' ? ' ' : ch;
    while (!r.cmd.empty() && r.cmd.back() == ' ') r.cmd.pop_back();
  }
  if (r.cmd.empty()) {  // kernel thread or zombie: [comm] like ps
    auto comm = base::read_file(base + "/comm");
    r.cmd = "[" + (comm ? std::string(base::trim(*comm)) : std::string("?")) + "]";
  }
  return r;
}

ZRUN_COMMAND("ps", 90, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("ps", "list the processes running inside a container");
  auto id = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("table");
  c->add_option("-f,--format", *format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  c->add_option("id", *id, "container id")->required();
  // runc passes extra arguments to ps(1); accept and ignore them.
  c->allow_extras();
  return [id, format, &g]() -> Result<int> {
    rt::StateStore store(g.root);
    auto ct = ZRUN_TRY(rt::Container::open(store, *id, false));
    std::string ctx = "ps `" + *id + "`";
    auto pids = ZRUN_TRY_CTX(ct.pids(), ctx);
    if (*format == "json") {
      std::printf("%s\n", nlohmann::json(pids).dump().c_str());
      return 0;
    }
    std::printf("%-8s %8s %8s %s\n", "UID", "PID", "PPID", "CMD");
    for (pid_t p : pids) {
      auto r = proc_row(p);
      std::printf("%-8s %8d %8s %s\n", r.uid.c_str(), p, r.ppid.c_str(), r.cmd.c_str());
    }
    return 0;
  };
});

}  // namespace
}  // namespace zrun::cli
