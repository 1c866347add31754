// run: create + start, then (foreground) relay signals to the container and exit with its
// exit code; the container is deleted when it exits unless --keep.
#include <optional>

#include "base/log.h"
#include "base/sys.h"
#include "runtime/cli/command.h"
#include "runtime/cli/relay.h"
#include "runtime/container.h"

namespace zrun::cli {
namespace {

using base::Result;

struct RunOptions {
  rt::CreateOptions create;
  bool detach = false;
  bool keep = false;
};

ZRUN_COMMAND("run", 30, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("run", "create and start a container, wait for it to exit");
  auto o = std::make_shared<RunOptions>();
  c->add_option("-b,--bundle", o->create.bundle, "path to the bundle directory")
      ->capture_default_str();
  c->add_option("--console-socket", o->create.console_socket,
                "unix socket that receives the pty master (process.terminal)");
  c->add_option("--pid-file", o->create.pid_file, "write the container's init PID here");
  c->add_flag("--no-pivot", o->create.no_pivot, "use MS_MOVE + chroot instead of pivot_root");
  c->add_flag("--no-new-keyring", o->create.no_new_keyring, "no new session keyring");
  c->add_option("--preserve-fds", o->create.preserve_fds, "pass N extra fds to the container")
      ->check(CLI::NonNegativeNumber);
  c->add_flag("-d,--detach", o->detach, "return once the container has started");
  c->add_flag("--keep", o->keep, "do not delete the container after it exits");
  c->add_option("id", o->create.id, "container id")->required();
  return [o, &g]() -> Result<int> {
    o->create.systemd_cgroup = g.systemd_cgroup;
    o->create.rootless = rt::rootless_mode(g.rootless);
    rt::StateStore store(g.root);
    const std::string& id = o->create.id;
    // Foreground without --console-socket: if the spec asks for a terminal, we hold the
    // other end of the console socket and proxy the pty ourselves.
    std::optional<ConsolePair> console;
    if (!o->detach && o->create.console_socket.empty()) {
      console = ZRUN_TRY(make_console_pair());
      o->create.console_fd = console->theirs.get();
    }
    auto created = rt::create_container(store, o->create);
    if (!created) return base::context(std::move(created).error(), "run `" + id + "`");
    {
      auto ct = ZRUN_TRY(rt::Container::open(store, id, true));
      auto r = ct.start();
      if (!r) {
        (void)ct.remove(true);
        return base::context(std::move(r).error(), "run `" + id + "`");
      }
    }
    if (o->detach) return 0;
    int status = ZRUN_TRY(relay_until_exit(*created, console ? &*console : nullptr));
    if (!o->keep) {
      auto ct = ZRUN_TRY(rt::Container::open(store, id, true));
      if (auto r = ct.remove(true); !r) base::log_warn(r.error().text());
    }
    return base::exit_code_from_status(status);
  };
});

}  // namespace
}  // namespace zrun::cli
