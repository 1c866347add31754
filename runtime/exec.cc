#include "runtime/exec.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>

#include "base/sys.h"
#include "cgroups/process_cgroup.h"
#include "isolation/console.h"
#include "isolation/lsm.h"
#include "isolation/process.h"
#include "isolation/seccomp.h"
#include "runtime/sync_protocol.h"

namespace zrun::rt {

namespace {

using base::Result;
using base::UniqueFd;

struct ExecChild {
  const spec::Process* process = nullptr;
  int pidfd = -1;    // the container init
  int ns_flags = 0;  // namespaces to join (pid excluded: joined by the parent)
  int sync_fd = -1;
  int console_fd = -1;
  int preserve_fds = 0;
  std::vector<int> close_fds;
  const iso::SeccompProgram* seccomp = nullptr;  // the container's linux.seccomp
  int seccomp_listener_fd = -1;
  const std::string* state = nullptr;  // container state, for the seccomp listener
};

Result<std::string> exec_child_steps(const ExecChild& c) {
  for (int fd : c.close_fds) ::close(fd);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // One setns(2) on a pidfd joins all namespaces atomically (Linux 5.8); the mount
  // namespace switch also moves our root and cwd to the container's.
  if (c.ns_flags && ::setns(c.pidfd, c.ns_flags) < 0)
    return base::sys_error("join the container's namespaces");
  ::close(c.pidfd);
  ZRUN_TRY(sync_expect(c.sync_fd, SyncType::kGo));
  const auto& p = *c.process;
  ZRUN_TRY(iso::apply_rlimits(p.rlimits));
  if (p.terminal) ZRUN_TRY_CTX(iso::setup_console(c.console_fd, p.console_size), "console");
  auto exe = ZRUN_TRY(iso::find_executable(p.args[0], p.env, p.cwd));
  // As in the init: without no_new_privs, seccomp before the caps drop.
  if (c.seccomp && !p.no_new_privileges)
    ZRUN_TRY(iso::apply_seccomp(*c.seccomp, c.seccomp_listener_fd, *c.state));
  ZRUN_TRY(iso::finalize_identity(p));
  return exe;
}

[[noreturn]] void run_exec_child(const ExecChild& c) noexcept {
  auto exe = exec_child_steps(c);
  if (!exe) {
    (void)sync_send(c.sync_fd, SyncType::kError, 0, exe.error().err, exe.error().msg);
    ::_exit(1);
  }
  ::prctl(PR_SET_PDEATHSIG, 0);
  if (!sync_send(c.sync_fd, SyncType::kReady).ok()) ::_exit(1);
  ::close(c.sync_fd);
  if (c.seccomp && c.process->no_new_privileges) {
    if (auto r = iso::apply_seccomp(*c.seccomp, c.seccomp_listener_fd, *c.state); !r) {
      std::string m = "zrun: " + r.error().text() + "\n";
      ssize_t w = ::write(2, m.data(), m.size());
      (void)w;
      ::_exit(1);
    }
  }
  (void)iso::close_fds_above(2 + c.preserve_fds, /*at_exec=*/true);
  auto argv = base::c_strings(c.process->args);
  auto envp = base::c_strings(c.process->env);
  ::execve(exe->c_str(), argv.data(), envp.data());
  int e = errno;
  std::string m = "zrun: exec `" + *exe + "`: " + std::strerror(e) + "\n";
  ssize_t r = ::write(2, m.data(), m.size());
  (void)r;
  ::_exit(e == ENOENT ? 127 : 126);
}

}  // namespace

Result<Created> exec_in_container(Container& ct, const ExecOptions& opts) {
  Status st = ct.status();
  if (st == Status::kStopped) return base::make_error("cannot exec in a stopped container");
  if (st == Status::kPaused && !opts.ignore_paused)
    return base::make_error("cannot exec in a paused container (use --ignore-paused)");
  if (opts.process.args.empty()) return base::make_error("exec: no command given");
  ZRUN_TRY(iso::check_lsm(opts.process));
  auto s = ZRUN_TRY(ct.spec());
  auto pidfd = ZRUN_TRY(open_init_pidfd(ct.record()));
  auto* cg = ZRUN_TRY(ct.cgroup());

  ExecChild c;
  c.process = &opts.process;
  c.pidfd = pidfd.get();
  c.preserve_fds = opts.preserve_fds;
  bool join_pid = false;
  if (s.linux_)
    for (auto& n : s.linux_->namespaces) {
      if (n.type == spec::NsType::kPid)
        join_pid = true;
      else
        c.ns_flags |= spec::ns_clone_flag(n.type);
    }
  UniqueFd console;
  if (opts.process.terminal) {
    if (opts.console_fd >= 0) {
      c.console_fd = opts.console_fd;
    } else {
      if (opts.console_socket.empty())
        return base::make_error("exec --tty: --console-socket is required with --detach");
      console = ZRUN_TRY_CTX(iso::connect_unix(opts.console_socket), "--console-socket");
      c.console_fd = console.get();
    }
  }
  // The container's seccomp profile applies to exec'd processes too (runc).
  std::optional<iso::SeccompProgram> seccomp;
  UniqueFd seccomp_sock;
  std::string state = ct.state_json();
  if (s.linux_ && s.linux_->seccomp) {
    seccomp = ZRUN_TRY(iso::compile_seccomp(*s.linux_->seccomp));
    c.seccomp = &*seccomp;
    c.state = &state;
    if (seccomp->notify) {
      seccomp_sock = ZRUN_TRY_CTX(iso::connect_unix(seccomp->listener_path), "seccomp listener");
      c.seccomp_listener_fd = seccomp_sock.get();
    }
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return base::sys_error("socketpair");
  UniqueFd parent_sock(sv[0]), child_sock(sv[1]);
  c.sync_fd = child_sock.get();
  c.close_fds = {parent_sock.get()};

  // Our next child is born in the container's PID namespace (pid_for_children). Joining
  // a PID namespace needs CAP_SYS_ADMIN in our own user namespace too (pidns_install), so
  // an unprivileged (rootless) caller joins the container's user namespace with it, in
  // one setns(2); the child then must not join it again (EINVAL).
  int pid_flags = CLONE_NEWPID;
  if (::geteuid() != 0 && (c.ns_flags & CLONE_NEWUSER)) {
    pid_flags |= CLONE_NEWUSER;
    c.ns_flags &= ~CLONE_NEWUSER;
  }
  if (join_pid && ::setns(pidfd.get(), pid_flags) < 0)
    return base::sys_error("join the container's pid namespace");
  int cgfd = cg ? cg->clone_into_fd() : -1;
  int child_pidfd = -1;
  long pid = base::clone3_fork(0, cgfd, &child_pidfd);
  UniqueFd init_cg;
  if (pid < 0 && errno == EBUSY && cgfd >= 0) {
    // The container enabled controllers below its cgroup (v2 then allows no process in
    // it): join the init's cgroup instead, as runc does (see cgroups/process_cgroup.h).
    init_cg = ZRUN_TRY_CTX(cg::open_process_cgroup(*cg, ct.record().pid), "exec: clone3: EBUSY");
    pid = base::clone3_fork(0, init_cg.get(), &child_pidfd);
  }
  if (pid < 0) return base::sys_error("clone3");
  if (pid == 0) run_exec_child(c);
  Created out{static_cast<pid_t>(pid), UniqueFd(child_pidfd), opts.process.terminal};
  child_sock.reset();
  auto fail = [&](base::Error e) -> Result<Created> {
    ::syscall(SYS_pidfd_send_signal, out.pidfd.get(), SIGKILL, nullptr, 0);
    (void)base::wait_pid(out.pid);
    return e;
  };
  if (cg && cgfd < 0) {  // born in its cgroup on v2: a join would only wait for RCU
    auto r = cg->add_pid(out.pid);
    if (!r) return fail(base::context(std::move(r).error(), "join cgroup"));
  }
  if (auto r = sync_send(parent_sock.get(), SyncType::kGo); !r) return fail(std::move(r).error());
  if (auto r = sync_expect(parent_sock.get(), SyncType::kReady); !r)
    return fail(std::move(r).error());
  if (!opts.pid_file.empty()) {
    auto r = base::write_file_atomic(opts.pid_file, std::to_string(out.pid), 0644,
                                     /*durable=*/false);
    if (!r) return fail(base::context(std::move(r).error(), "pid file"));
  }
  return out;
}

}  // namespace zrun::rt
