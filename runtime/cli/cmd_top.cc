// top: a live table of every container under --root, sorted by CPU, refreshed every
// --interval (like top(1)): cpu% from the cgroup's usage, memory held/limit, pids,
// syscalls/s and network in/out per second from the eBPF accountant, run-queue p99.
// `q` quits; `--once` prints one frame (rates over a short first sample) for scripts.
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "runtime/accounting.h"
#include "runtime/cli/command.h"
#include "runtime/container.h"

namespace zrun::cli {
namespace {

using base::Result;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Sample {
  std::string status;
  uint64_t cpu_ns = 0, mem = 0, mem_limit = 0, pids = 0, pids_limit = 0;
  bool ebpf = false;
  uint64_t syscalls = 0, net_in = 0, net_out = 0, runq_p99 = 0;
  bool syscalls_on = false;
};

uint64_t at(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return 0;
    p = &(*p)[k];
  }
  return p->is_number_unsigned() ? p->get<uint64_t>() : 0;
}

std::map<std::string, Sample> sample(const rt::StateStore& store) {
  std::map<std::string, Sample> out;
  auto ids = store.list_ids();
  if (!ids) return out;
  for (auto& id : *ids) {
    auto ct = rt::Container::open(store, id, false);
    if (!ct) continue;
    Sample s;
    s.status = rt::status_name(ct->status());
    auto cg = ct->cgroup();
    if (cg && *cg) {
      if (auto j = rt::container_stats(store.root(), ct->record(), **cg)) {
        const json& c = (*j)["cgroup"];
        const json& e = (*j)["ebpf"];
        s.cpu_ns = at(c, {"cpu", "usage", "total"});
        s.mem = at(c, {"memory", "usage", "usage"});
        s.mem_limit = at(c, {"memory", "usage", "limit"});
        s.pids = at(c, {"pids", "current"});
        s.pids_limit = at(c, {"pids", "limit"});
        if (!e.is_null()) {
          s.ebpf = true;
          s.syscalls_on = e["syscalls"].is_object();
          s.syscalls = at(e, {"syscalls", "total"});
          s.net_in = at(e, {"network", "in", "bytes"});
          s.net_out = at(e, {"network", "out", "bytes"});
          s.runq_p99 = at(e, {"cpu", "runq", "p99_ns"});
        }
      }
    }
    out[id] = s;
  }
  return out;
}

std::string bytes(double b) {
  const char* units[] = {"B", "K", "M", "G", "T"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof(buf), u ? "%.1f%s" : "%.0f%s", b, units[u]);
  return buf;
}

std::string frame(const std::map<std::string, Sample>& prev,
                  const std::map<std::string, Sample>& now, double secs) {
  struct Row {
    std::string id;
    const Sample* s;
    double cpu, sys, in, out;
  };
  std::vector<Row> rows;
  for (auto& [id, s] : now) {
    auto it = prev.find(id);
    auto rate = [&](uint64_t a, uint64_t b) {
      return it == prev.end() || b < a || secs <= 0 ? 0.0 : static_cast<double>(b - a) / secs;
    };
    const Sample* p = it == prev.end() ? nullptr : &it->second;
    rows.push_back({id, &s, p ? rate(p->cpu_ns, s.cpu_ns) / 1e7 : 0.0,
                    p ? rate(p->syscalls, s.syscalls) : 0.0, p ? rate(p->net_in, s.net_in) : 0.0,
                    p ? rate(p->net_out, s.net_out) : 0.0});
  }
  std::sort(rows.begin(), rows.end(),
            [](auto& a, auto& b) { return a.cpu != b.cpu ? a.cpu > b.cpu : a.id < b.id; });
  std::string out;
  char line[256];
  std::snprintf(line, sizeof(line), "%-20s %-8s %6s %17s %11s %10s %9s %9s %9s\n", "ID", "STATUS",
                "CPU%", "MEM/LIMIT", "PIDS", "SYSCALLS/s", "NET-IN/s", "NET-OUT/s", "RUNQ-P99");
  out += line;
  for (auto& r : rows) {
    const Sample& s = *r.s;
    std::string lim = s.mem_limit == 0 || s.mem_limit >= (1ull << 62)
                          ? "max"
                          : bytes(static_cast<double>(s.mem_limit));
    std::string mem = bytes(static_cast<double>(s.mem)) + "/" + lim;
    std::string pids = std::to_string(s.pids) + "/" +
                       (s.pids_limit ? std::to_string(s.pids_limit) : std::string("max"));
    std::string sys = !s.ebpf         ? "-"
                      : s.syscalls_on ? std::to_string(static_cast<uint64_t>(r.sys))
                                      : "off";
    std::string in = s.ebpf ? bytes(r.in) : "-", outb = s.ebpf ? bytes(r.out) : "-";
    char p99[32] = "-";
    if (s.ebpf && s.runq_p99)
      std::snprintf(p99, sizeof(p99), "%.0fus", static_cast<double>(s.runq_p99) / 1e3);
    std::snprintf(line, sizeof(line), "%-20.20s %-8s %6.1f %17s %11s %10s %9s %9s %9s\n",
                  r.id.c_str(), s.status.c_str(), r.cpu, mem.c_str(), pids.c_str(), sys.c_str(),
                  in.c_str(), outb.c_str(), p99);
    out += line;
  }
  return out;
}

// Raw-ish terminal (no echo, no line buffering) while top runs, so a single `q` quits.
class RawTerminal {
 public:
  RawTerminal() {
    if (::isatty(0) && ::tcgetattr(0, &saved_) == 0) {
      struct termios t = saved_;
      t.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      t.c_cc[VMIN] = 0;
      t.c_cc[VTIME] = 0;
      active_ = ::tcsetattr(0, TCSANOW, &t) == 0;
    }
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(0, TCSANOW, &saved_);
  }

 private:
  struct termios saved_ {};
  bool active_ = false;
};

ZRUN_COMMAND("top", 94, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("top", "live table of containers sorted by CPU (q quits)");
  auto once = std::make_shared<bool>(false);
  auto interval = std::make_shared<double>(2.0);
  c->add_flag("--once", *once, "print one frame and exit (rates over a 0.5 s sample)");
  c->add_option("-d,--interval", *interval, "seconds between refreshes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return [once, interval, &g]() -> Result<int> {
    rt::StateStore store(g.root);
    auto prev = sample(store);
    auto t0 = Clock::now();
    int first_ms = *once ? 500 : 300;
    if (*once) {
      ::usleep(static_cast<useconds_t>(first_ms) * 1000);
      auto now = sample(store);
      double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      std::fputs(frame(prev, now, secs).c_str(), stdout);
      return 0;
    }
    RawTerminal raw;
    int wait_ms = first_ms;
    for (;;) {
      struct pollfd p = {0, POLLIN, 0};
      int n = ::poll(&p, 1, wait_ms);
      if (n > 0 && (p.revents & POLLIN)) {
        char ch = 0;
        ssize_t r = ::read(0, &ch, 1);
        if (r <= 0 || ch == 'q' || ch == 'Q') break;
      } else if (n > 0) {
        break;  // stdin closed
      }
      auto now = sample(store);
      auto t1 = Clock::now();
      double secs = std::chrono::duration<double>(t1 - t0).count();
      std::string f = frame(prev, now, secs);
      std::printf("\033[H\033[2J%s", f.c_str());
      std::fflush(stdout);
      prev = std::move(now);
      t0 = t1;
      wait_ms = static_cast<int>(*interval * 1000);
    }
    return 0;
  };
});

}  // namespace
}  // namespace zrun::cli
