// create, start, state, kill, delete: runtime-spec runtime.md operations with runc's flags.
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/sys.h"
#include "runtime/cli/command.h"
#include "runtime/container.h"
#include "spec/config.h"

namespace zrun::cli {
namespace {

using base::Result;

void add_create_flags(CLI::App* c, rt::CreateOptions& o) {
  c->add_option("-b,--bundle", o.bundle, "path to the bundle directory")->capture_default_str();
  c->add_option("--console-socket", o.console_socket,
                "unix socket that receives the pty master (process.terminal)");
  c->add_option("--pid-file", o.pid_file, "write the container's init PID to this file");
  c->add_flag("--no-pivot", o.no_pivot, "use MS_MOVE + chroot instead of pivot_root");
  c->add_flag("--no-new-keyring", o.no_new_keyring, "do not create a new session keyring");
  c->add_option("--preserve-fds", o.preserve_fds, "pass N extra fds (3..3+N-1) to the container")
      ->check(CLI::NonNegativeNumber);
}

ZRUN_COMMAND("create", 10, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("create", "create a container (it waits for `start`)");
  auto o = std::make_shared<rt::CreateOptions>();
  add_create_flags(c, *o);
  c->add_option("id", o->id, "container id")->required();
  return [o, &g]() -> Result<int> {
    o->systemd_cgroup = g.systemd_cgroup;
    o->rootless = rt::rootless_mode(g.rootless);
    rt::StateStore store(g.root);
    auto r = rt::create_container(store, *o);
    if (!r) return base::context(std::move(r).error(), "create `" + o->id + "`");
    return 0;
  };
});

ZRUN_COMMAND("start", 20, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("start", "start a created container");
  auto id = std::make_shared<std::string>();
  c->add_option("id", *id, "container id")->required();
  return [id, &g]() -> Result<int> {
    rt::StateStore store(g.root);
    auto ct = ZRUN_TRY(rt::Container::open(store, *id, true));
    ZRUN_TRY_CTX(ct.start(), "start `" + *id + "`");
    return 0;
  };
});

ZRUN_COMMAND("state", 40, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("state", "print the state of a container (OCI JSON)");
  auto id = std::make_shared<std::string>();
  c->add_option("id", *id, "container id")->required();
  return [id, &g]() -> Result<int> {
    rt::StateStore store(g.root);
    auto ct = ZRUN_TRY(rt::Container::open(store, *id, false));
    auto j = nlohmann::json::parse(ct.state_json());
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  };
});

ZRUN_COMMAND("kill", 50, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("kill", "send a signal to the container's init (default TERM)");
  auto id = std::make_shared<std::string>();
  auto sig = std::make_shared<std::string>("SIGTERM");
  auto all = std::make_shared<bool>(false);
  c->add_option("id", *id, "container id")->required();
  c->add_option("signal", *sig, "signal name or number")->capture_default_str();
  c->add_flag("-a,--all", *all, "signal every process in the container's cgroup");
  return [id, sig, all, &g]() -> Result<int> {
    int signo = ZRUN_TRY(spec::parse_signal(*sig));
    rt::StateStore store(g.root);
    auto ct = ZRUN_TRY(rt::Container::open(store, *id, true));
    ZRUN_TRY_CTX(ct.kill(signo, *all), "kill `" + *id + "`");
    return 0;
  };
});

ZRUN_COMMAND("delete", 60, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("delete", "delete a stopped container (--force: any)");
  auto id = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  auto report = std::make_shared<std::string>();
  c->add_option("id", *id, "container id")->required();
  c->add_flag("-f,--force", *force, "kill the container first if it is still alive");
  c->add_option("--report", *report,
                "write the container's final stats (as `zrun stats --json`) to this file");
  return [id, force, report, &g]() -> Result<int> {
    rt::StateStore store(g.root);
    auto ct = rt::Container::open(store, *id, true);
    // As runc: --force of a container that does not exist succeeds (podman deletes a
    // container after `checkpoint`, which already removed it, as runc's does).
    if (!ct && *force && rt::validate_id(*id) && !base::path_exists(store.dir(*id))) return 0;
    if (!ct) return std::move(ct).error();
    ZRUN_TRY(ct->remove(*force, *report));
    return 0;
  };
});

}  // namespace
}  // namespace zrun::cli
