// beancounters: OpenVZ-style resource counters of one or all containers (see
// cgroups/beancounters.h for the sources and the sampled maxheld).
#include <cstdio>

#include "cgroups/beancounters.h"
#include "runtime/cli/command.h"
#include "runtime/container.h"

namespace zrun::cli {
namespace {

using base::Result;

// The counters of container `id`; nullopt for a container without a cgroup.
Result<std::optional<cg::BeanCounters>> counters_of(const rt::StateStore& store,
                                                    const std::string& id) {
  auto ct = ZRUN_TRY(rt::Container::open(store, id, false));
  auto* cgroup = ZRUN_TRY(ct.cgroup());
  if (!cgroup) return std::optional<cg::BeanCounters>();
  auto bc = ZRUN_TRY_CTX(cg::read_beancounters(cg::stat_dirs(*cgroup), ct.dir() + "/peaks.json"),
                         "beancounters `" + id + "`");
  return std::optional<cg::BeanCounters>(std::move(bc));
}

ZRUN_COMMAND("beancounters", 95, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("beancounters",
                               "show resource bean counters (held, maxheld, barrier, limit, "
                               "failcnt) of a container, or of all");
  auto id = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  c->add_option("id", *id, "container id (default: all containers)");
  c->add_flag("--json", *json, "print a JSON array, one object per container");
  return [id, json, &g]() -> Result<int> {
    rt::StateStore store(g.root);
    std::vector<std::string> ids;
    if (!id->empty()) {
      ids.push_back(*id);
    } else {
      ids = ZRUN_TRY(store.list_ids());
    }
    std::vector<std::pair<std::string, cg::BeanCounters>> all;
    for (auto& cid : ids) {
      auto bc = counters_of(store, cid);
      if (!bc) {
        if (!id->empty()) return std::move(bc).error();
        continue;  // listing all: a container deleted meanwhile is not an error
      }
      if (*bc) all.emplace_back(cid, std::move(**bc));
    }
    if (*json) {
      std::string out = "[";
      for (size_t i = 0; i < all.size(); ++i)
        out += (i ? "," : "") + cg::beancounters_json(all[i].first, all[i].second);
      std::printf("%s]\n", out.c_str());
    } else {
      std::fputs(cg::beancounters_table(all).c_str(), stdout);
    }
    return 0;
  };
});

}  // namespace
}  // namespace zrun::cli
