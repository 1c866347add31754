// list: the containers under --root, as runc prints them (table, json, or ids with -q).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/sys.h"
#include "runtime/cli/command.h"
#include "runtime/container.h"

namespace zrun::cli {
namespace {

using base::Result;

ZRUN_COMMAND("list", 70, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("list", "list containers");
  auto format = std::make_shared<std::string>("table");
  auto quiet = std::make_shared<bool>(false);
  c->add_option("-f,--format", *format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  c->add_flag("-q,--quiet", *quiet, "print only the container ids");
  return [format, quiet, &g]() -> Result<int> {
    rt::StateStore store(g.root);
    auto ids = ZRUN_TRY(store.list_ids());
    nlohmann::json arr = nlohmann::json::array();
    std::string table = "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n";
    for (auto& id : ids) {
      auto ct = rt::Container::open(store, id, false);
      if (!ct) continue;  // deleted meanwhile, or half-created
      if (*quiet) {
        std::printf("%s\n", id.c_str());
        continue;
      }
      const auto& r = ct->record();
      auto st = ct->status();
      pid_t pid = st == rt::Status::kStopped ? 0 : r.pid;
      arr.push_back({{"ociVersion", r.oci_version},
                     {"id", id},
                     {"pid", pid},
                     {"status", rt::status_name(st)},
                     {"bundle", r.bundle},
                     {"rootfs", r.rootfs},
                     {"created", r.created},
                     {"annotations", r.annotations},
                     {"owner", base::user_name(r.owner_uid)}});
      table += id + "\t" + std::to_string(pid) + "\t" + rt::status_name(st) + "\t" + r.bundle +
               "\t" + r.created + "\t" + base::user_name(r.owner_uid) + "\n";
    }
    if (*quiet) return 0;
    if (*format == "json")
      std::printf("%s\n", arr.dump().c_str());
    else
      std::fputs(table.c_str(), stdout);
    return 0;
  };
});

}  // namespace
}  // namespace zrun::cli
