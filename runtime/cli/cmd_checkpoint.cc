// checkpoint, restore: runc's command lines (docs/checkpoint.md). Flags for features not
// implemented yet are accepted by the parser only to fail with a clear message.
#include <optional>

#include "base/log.h"
#include "base/sys.h"
#include "runtime/checkpoint.h"
#include "runtime/cli/command.h"
#include "runtime/cli/relay.h"

namespace zrun::cli {
namespace {

using base::Result;

struct Unsupported {
  std::vector<std::pair<std::string, bool>> flags;  // name, given
  Result<void> check(const std::string& cmd) const {
    for (auto& [name, given] : flags)
      if (given) return base::make_error(cmd + ": " + name + " is not supported yet");
    return base::ok();
  }
};

struct CheckpointFlags {
  rt::CheckpointOptions opts;
  bool tcp = false, file_locks = false, shell_job = false, ext_unix = false;
};

ZRUN_COMMAND("checkpoint", 86, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("checkpoint", "checkpoint a running container to an image");
  auto f = std::make_shared<CheckpointFlags>();
  f->opts.image_path = "checkpoint";
  c->add_option("--image-path", f->opts.image_path, "directory for the image")
      ->capture_default_str();
  c->add_option("--work-path", f->opts.work_path,
                "directory for stats-dump (CRIU's statistics; default: the image)");
  c->add_flag("--leave-running", f->opts.leave_running, "keep the container running");
  c->add_flag("--tcp-established", f->tcp, "checkpoint established TCP connections");
  c->add_flag("--file-locks", f->file_locks, "checkpoint file locks");
  c->add_flag("--shell-job", f->shell_job,
              "accepted for runc compatibility (sessions outside the pod are always allowed)");
  c->add_flag("--ext-unix-sk", f->ext_unix, "allow external unix sockets");
  c->add_option("--manage-cgroups-mode", f->opts.cgroups_mode, "soft|full|strict|ignore");
  c->add_flag("--pre-dump", f->opts.pre_dump,
              "dump, keep running and track written pages for a later --parent-path dump");
  c->add_option("--parent-path", f->opts.parent_path,
                "pre-dump image to store only changed pages against (relative to --image-path)");
  c->add_option("id", f->opts.id, "container id")->required();
  return [f, &g]() -> Result<int> {
    Unsupported u{{{"--tcp-established", f->tcp},
                   {"--file-locks", f->file_locks},
                   {"--ext-unix-sk", f->ext_unix}}};
    ZRUN_TRY(u.check("checkpoint"));
    rt::StateStore store(g.root);
    ZRUN_TRY(rt::checkpoint_container(store, f->opts));
    return 0;
  };
});

struct RestoreFlags {
  rt::RestoreOptions opts;
  bool detach = false, tcp = false, file_locks = false, shell_job = false, ext_unix = false;
};

ZRUN_COMMAND("restore", 87, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("restore", "restore a container from a checkpoint image");
  auto f = std::make_shared<RestoreFlags>();
  f->opts.image_path = "checkpoint";
  c->add_option("-b,--bundle", f->opts.bundle, "path to the bundle directory")
      ->capture_default_str();
  c->add_option("--image-path", f->opts.image_path, "directory of the image")
      ->capture_default_str();
  c->add_option("--work-path", f->opts.work_path,
                "directory for stats-restore (CRIU's statistics; default: the image)");
  c->add_flag("-d,--detach", f->detach, "return once the container runs");
  c->add_option("--console-socket", f->opts.console_socket,
                "unix socket that receives the new console's pty master (process.terminal)");
  c->add_option("--pid-file", f->opts.pid_file, "write the container's init PID here");
  c->add_option("--manage-cgroups-mode", f->opts.cgroups_mode, "soft|full|strict|ignore");
  c->add_flag("--tcp-established", f->tcp, "restore established TCP connections");
  c->add_flag("--file-locks", f->file_locks, "restore file locks");
  c->add_flag("--shell-job", f->shell_job,
              "accepted for runc compatibility (sessions outside the pod are always allowed)");
  c->add_flag("--ext-unix-sk", f->ext_unix, "allow external unix sockets");
  c->add_option("id", f->opts.id, "container id")->required();
  return [f, &g]() -> Result<int> {
    Unsupported u{{{"--tcp-established", f->tcp},
                   {"--file-locks", f->file_locks},
                   {"--ext-unix-sk", f->ext_unix}}};
    ZRUN_TRY(u.check("restore"));
    // As run: in the foreground without --console-socket we hold the other end and proxy
    // the console ourselves (runc does the same); detached, a terminal container needs
    // --console-socket (create's check, "restore `id`: process.terminal is true: ...").
    std::optional<ConsolePair> console;
    if (!f->detach && f->opts.console_socket.empty()) {
      console = ZRUN_TRY(make_console_pair());
      f->opts.console_fd = console->theirs.get();
    }
    rt::StateStore store(g.root);
    auto created = ZRUN_TRY(rt::restore_container(store, f->opts));
    if (f->detach) return 0;
    int status = ZRUN_TRY(relay_until_exit(created, console ? &*console : nullptr));
    auto ct = ZRUN_TRY(rt::Container::open(store, f->opts.id, true));
    if (auto r = ct.remove(true); !r) base::log_warn(r.error().text());
    return base::exit_code_from_status(status);
  };
});

}  // namespace
}  // namespace zrun::cli
