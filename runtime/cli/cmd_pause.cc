// pause, resume: freeze/thaw the container's cgroup (runc's semantics and messages).
#include "runtime/cli/command.h"
#include "runtime/container.h"

namespace zrun::cli {
namespace {

using base::Result;

// The container's cgroup or an error: pause/resume have nothing to act on without one.
Result<cg::Cgroup*> need_cgroup(rt::Container& ct, const std::string& id) {
  auto* cg = ZRUN_TRY(ct.cgroup());
  if (!cg)
    return base::make_error("container `" + id +
                            "` has no cgroup (rootless without cgroup delegation): "
                            "nothing to freeze");
  return cg;
}

ZRUN_COMMAND("pause", 80, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("pause", "suspend all processes of a container (cgroup freezer)");
  auto id = std::make_shared<std::string>();
  c->add_option("id", *id, "container id")->required();
  return [id, &g]() -> Result<int> {
    rt::StateStore store(g.root);
    auto ct = ZRUN_TRY(rt::Container::open(store, *id, true));
    std::string ctx = "pause `" + *id + "`";
    // runc pauses running and created containers.
    auto st = ct.status();
    if (st != rt::Status::kRunning && st != rt::Status::kCreated)
      return base::make_error(ctx + ": container not running");
    auto* cg = ZRUN_TRY_CTX(need_cgroup(ct, *id), ctx);
    ZRUN_TRY_CTX(cg->freeze(), ctx);
    return 0;
  };
});

ZRUN_COMMAND("resume", 81, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("resume", "resume a paused container");
  auto id = std::make_shared<std::string>();
  c->add_option("id", *id, "container id")->required();
  return [id, &g]() -> Result<int> {
    rt::StateStore store(g.root);
    auto ct = ZRUN_TRY(rt::Container::open(store, *id, true));
    std::string ctx = "resume `" + *id + "`";
    if (ct.status() != rt::Status::kPaused) return base::make_error(ctx + ": container not paused");
    auto* cg = ZRUN_TRY_CTX(need_cgroup(ct, *id), ctx);
    ZRUN_TRY_CTX(cg->thaw(), ctx);
    return 0;
  };
});

}  // namespace
}  // namespace zrun::cli
