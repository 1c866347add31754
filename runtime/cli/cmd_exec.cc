// exec: run a new process in a running container, with runc's flags.
#include <optional>

#include "base/sys.h"
#include "runtime/cli/command.h"
#include "runtime/cli/relay.h"
#include "runtime/exec.h"

namespace zrun::cli {
namespace {

using base::Result;

struct ExecFlags {
  std::string id, process_file, console_socket, pid_file, cwd, user, apparmor, label, cgroup;
  std::vector<std::string> args, env, caps;
  std::vector<uint32_t> additional_gids;
  bool tty = false, detach = false, no_new_privs = false, ignore_paused = false;
  int preserve_fds = 0;
};

// Replace or append KEY=VALUE entries.
void merge_env(std::vector<std::string>& env, const std::vector<std::string>& extra) {
  for (auto& kv : extra) {
    auto key = kv.substr(0, kv.find('='));
    bool replaced = false;
    for (auto& e : env)
      if (e.substr(0, e.find('=')) == key) {
        e = kv;
        replaced = true;
      }
    if (!replaced) env.push_back(kv);
  }
}

Result<void> apply_user(spec::Process& p, const std::string& user) {
  auto parts = base::split(user, ':');
  if (parts.size() > 2) return base::make_error("--user `" + user + "`: expected UID[:GID]");
  auto uid = base::parse_uint(parts[0]);
  if (!uid) return base::make_error("--user `" + user + "`: only numeric UID[:GID] is supported");
  p.user.uid = static_cast<uint32_t>(*uid);
  if (parts.size() == 2) {
    auto gid = base::parse_uint(parts[1]);
    if (!gid) return base::make_error("--user `" + user + "`: only numeric UID[:GID] is supported");
    p.user.gid = static_cast<uint32_t>(*gid);
  }
  return base::ok();
}

// The process to run: --process FILE as is, else the container's own process spec with
// the flags applied on top (runc's rules).
Result<spec::Process> resolve_process(const ExecFlags& f, const spec::Spec& s) {
  if (!f.process_file.empty()) {
    auto text = ZRUN_TRY_CTX(base::read_file(f.process_file), "--process");
    auto p = ZRUN_TRY(spec::parse_process(text));
    if (f.tty) p.terminal = true;
    return p;
  }
  if (f.args.empty()) return base::make_error("exec: no command given (ARGS or --process)");
  spec::Process p = s.process ? *s.process : spec::Process{};
  p.args = f.args;
  p.terminal = f.tty;
  merge_env(p.env, f.env);
  if (!f.cwd.empty()) p.cwd = f.cwd;
  if (!f.user.empty()) ZRUN_TRY(apply_user(p, f.user));
  if (!f.additional_gids.empty()) p.user.additional_gids = f.additional_gids;
  if (f.no_new_privs) p.no_new_privileges = true;
  if (!f.caps.empty()) {
    if (!p.capabilities) p.capabilities = spec::Capabilities{};
    for (auto& name : f.caps) {
      int cap = ZRUN_TRY(spec::parse_capability(name));
      for (auto* set :
           {&p.capabilities->bounding, &p.capabilities->effective, &p.capabilities->permitted,
            &p.capabilities->ambient, &p.capabilities->inheritable})
        set->push_back(cap);
    }
  }
  return p;
}

ZRUN_COMMAND("exec", 35, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("exec", "run a new process inside a running container");
  auto f = std::make_shared<ExecFlags>();
  c->add_option("-p,--process", f->process_file, "process.json to run (instead of ARGS)");
  c->add_flag("-t,--tty", f->tty, "allocate a pseudo-terminal");
  c->add_option("--console-socket", f->console_socket, "unix socket receiving the pty master");
  c->add_flag("-d,--detach", f->detach, "return once the process has started");
  c->add_option("--pid-file", f->pid_file, "write the process's host PID here");
  c->add_option("--cwd", f->cwd, "working directory inside the container");
  c->add_option("-e,--env", f->env, "set an environment variable KEY=VALUE")
      ->allow_extra_args(false);
  c->add_option("-u,--user", f->user, "UID[:GID] to run as");
  c->add_option("-g,--additional-gids", f->additional_gids, "additional group ids")
      ->allow_extra_args(false);
  c->add_option("-c,--cap", f->caps, "add a capability")->allow_extra_args(false);
  c->add_flag("--no-new-privs", f->no_new_privs, "set no_new_privs");
  c->add_option("--apparmor", f->apparmor, "AppArmor profile");
  c->add_option("--process-label", f->label, "SELinux label");
  c->add_option("--preserve-fds", f->preserve_fds, "pass N extra fds to the process")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--cgroup", f->cgroup, "run in a sub-cgroup of the container");
  c->add_flag("--ignore-paused", f->ignore_paused, "allow exec into a paused container");
  c->add_option("id", f->id, "container id")->required();
  c->add_option("args", f->args, "command and its arguments");
  // runc's syntax: options, then ID, then the command with its own options untouched.
  c->positionals_at_end();
  return [f, &g]() -> Result<int> {
    g_error_exit_code = 255;
    if (!f->apparmor.empty() || !f->label.empty())
      return base::make_error("exec: AppArmor/SELinux are not enabled on this host");
    if (!f->cgroup.empty()) return base::make_error("exec --cgroup is not supported yet");
    rt::StateStore store(g.root);
    auto ct = ZRUN_TRY(rt::Container::open(store, f->id, false));
    auto s = ZRUN_TRY(ct.spec());
    rt::ExecOptions o;
    o.process = ZRUN_TRY(resolve_process(*f, s));
    o.console_socket = f->console_socket;
    o.pid_file = f->pid_file;
    o.preserve_fds = f->preserve_fds;
    o.ignore_paused = f->ignore_paused;
    std::optional<ConsolePair> console;
    if (!f->detach && o.process.terminal && f->console_socket.empty()) {
      console = ZRUN_TRY(make_console_pair());
      o.console_fd = console->theirs.get();
    }
    auto created = rt::exec_in_container(ct, o);
    if (!created) return base::context(std::move(created).error(), "exec `" + f->id + "`");
    if (f->detach) return 0;
    int status = ZRUN_TRY(relay_until_exit(*created, console ? &*console : nullptr));
    return base::exit_code_from_status(status);
  };
});

}  // namespace
}  // namespace zrun::cli
