// events: runc-compatible JSON events — `--stats` prints one stats object; otherwise a
// stats event every --interval plus an oom event whenever the cgroup hits an OOM, until
// the container stops.
#include <poll.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "cgroups/beancounters.h"
#include "cgroups/stats.h"
#include "runtime/accounting.h"
#include "runtime/cli/command.h"
#include "runtime/container.h"

namespace zrun::cli {
namespace {

using base::Result;
using Clock = std::chrono::steady_clock;

// Go-style durations as runc takes them ("5s", "500ms", "1m", "1.5s"); a bare number is
// seconds.
Result<std::chrono::milliseconds> parse_duration(const std::string& s) {
  std::string err = "invalid duration \"" + s + "\"";
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return base::make_error(err);
  double v = 0;
  try {
    v = std::stod(s.substr(0, i));
  } catch (const std::exception&) {
    return base::make_error(err);
  }
  std::string unit = s.substr(i);
  double ms = unit == "ms"                  ? v
              : unit == "s" || unit.empty() ? v * 1000
              : unit == "m"                 ? v * 60000
              : unit == "h"                 ? v * 3600000
                                            : -1;
  if (ms <= 0) return base::make_error(err);
  return std::chrono::milliseconds(static_cast<long long>(ms));
}

// runc's stats event with zrun's eBPF counters added as data.ebpf (runc's own fields stay
// as they are for engines); data.ebpf is null when the container is not accounted.
std::string with_ebpf(const std::string& event, const std::string& root, const cg::Cgroup& cg) {
  // The event is {"type":..,"id":..,"data":{..}}: splice the member into `data` so runc's
  // field order stays as it is (a re-serialization would sort the keys).
  if (event.size() < 2 || event.compare(event.size() - 2, 2, "}}") != 0) return event;
  return event.substr(0, event.size() - 2) + ",\"ebpf\":" + rt::ebpf_stats(root, cg).dump() + "}}";
}

void emit(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// The event stream. The container lock is not held (kill/delete must not wait for us);
// liveness comes from the recorded init (pid + start time).
Result<int> stream(const std::string& root, const rt::ContainerRecord& rec, cg::Cgroup& cgroup,
                   const std::string& dir, std::chrono::milliseconds interval) {
  auto dirs = cg::stat_dirs(cgroup);
  auto watcher = cg::OomWatcher::open(dirs);
  if (!watcher) base::log_warn("events: no OOM notification: " + watcher.error().text());
  auto next = Clock::now();
  while (rt::init_alive(rec)) {
    if (Clock::now() >= next) {
      auto s = cg::read_stats(dirs);
      if (!s) break;  // the cgroup went away with the container
      emit(with_ebpf(cg::stats_event(rec.id, *s), root, cgroup));
      (void)cg::read_beancounters(dirs, dir + "/peaks.json");  // keep sampled peaks fresh
      next += interval;
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
    int timeout = static_cast<int>(std::clamp<long long>(wait.count(), 0, 500));
    struct pollfd p = {watcher ? watcher->fd() : -1, POLLIN, 0};
    int n = ::poll(&p, 1, timeout);
    if (n > 0 && (p.revents & POLLIN)) {
      auto oom = watcher->drain();
      if (oom && *oom > 0) emit(cg::oom_event(rec.id));
    }
  }
  return 0;
}

ZRUN_COMMAND("events", 92, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("events", "display container events (stats, oom) as JSON");
  auto id = std::make_shared<std::string>();
  auto stats = std::make_shared<bool>(false);
  auto interval = std::make_shared<std::string>("5s");
  c->add_flag("--stats", *stats, "print the container's stats once and exit");
  c->add_option("--interval", *interval, "stats collection interval")->capture_default_str();
  c->add_option("id", *id, "container id")->required();
  return [id, stats, interval, &g]() -> Result<int> {
    std::string ctx = "events `" + *id + "`";
    auto every = ZRUN_TRY_CTX(parse_duration(*interval), ctx + ": --interval");
    rt::StateStore store(g.root);
    rt::ContainerRecord rec;
    std::string dir;
    std::unique_ptr<cg::Cgroup> cgroup;
    {
      auto ct = ZRUN_TRY(rt::Container::open(store, *id, false));
      if (ct.status() == rt::Status::kStopped)
        return base::make_error(ctx + ": container is stopped");
      rec = ct.record();
      dir = ct.dir();
    }  // drop the lock before streaming
    if (rec.cgroup.empty()) return base::make_error(ctx + ": container has no cgroup");
    cgroup = ZRUN_TRY_CTX(cg::Cgroup::load(rec.cgroup), ctx);
    if (*stats) {
      auto s = ZRUN_TRY_CTX(cg::read_stats(cg::stat_dirs(*cgroup)), ctx);
      emit(with_ebpf(cg::stats_event(*id, s), g.root, *cgroup));
      return 0;
    }
    return stream(g.root, rec, *cgroup, dir, every);
  };
});

}  // namespace
}  // namespace zrun::cli
