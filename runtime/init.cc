#include "runtime/init.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "base/sys.h"
#include "checkpoint/placeholder.h"
#include "isolation/console.h"
#include "isolation/namespaces.h"
#include "isolation/process.h"
#include "isolation/rootfs.h"
#include "isolation/seccomp.h"
#include "netns/loopback.h"
#include "runtime/hooks.h"
#include "runtime/sync_protocol.h"

namespace zrun::rt {

namespace {

using base::Result;

constexpr long kKeyctlJoinSessionKeyring = 1;
ckpt::PlaceholderRole g_restore_role;  // this task's place in the restored tree

Result<void> join_and_unshare(const InitContext& ctx) {
  for (auto& [type, fd] : ctx.join_fds)
    ZRUN_TRY(iso::join_namespace(fd, type, spec::ns_type_name(type)));
  if (ctx.unshare_flags != 0 && ::unshare(ctx.unshare_flags) < 0)
    return base::sys_error("unshare namespaces");
  return base::ok();
}

// A new user namespace has no mappings until the parent writes them; wait for that, then
// become root inside it.
Result<SyncMessage> handshake(const InitContext& ctx) {
  if (ctx.new_user_ns) ZRUN_TRY(sync_send(ctx.sync_fd, SyncType::kUserNsReady));
  auto go = ZRUN_TRY(sync_expect(ctx.sync_fd, SyncType::kGo));
  if (ctx.new_user_ns) {
    // uid/gid 0 may be unmapped (EINVAL): the process keeps full caps in its namespace.
    if (::setresgid(0, 0, 0) < 0 && errno != EINVAL) return base::sys_error("setresgid 0");
    if (::setresuid(0, 0, 0) < 0 && errno != EINVAL) return base::sys_error("setresuid 0");
  }
  return go;
}

Result<void> setup_rootfs(const InitContext& ctx, uint32_t go_flags,
                          const std::string& hooks_state) {
  const auto& s = *ctx.spec;
  iso::RootfsOptions opts;
  opts.no_pivot = ctx.no_pivot;
  opts.userns = s.linux_ && s.linux_->has_ns(spec::NsType::kUser);
  ZRUN_TRY_CTX(iso::prepare_rootfs(s, opts), "prepare rootfs");
  if (go_flags & kGoRunHooks) {
    ZRUN_TRY(sync_send(ctx.sync_fd, SyncType::kMountsDone));
    ZRUN_TRY(sync_expect(ctx.sync_fd, SyncType::kHooksDone));
  }
  // createContainer hooks: in the container's namespaces, before pivot_root (config.md).
  ZRUN_TRY(run_hooks(s.hooks.create_container, hooks_state, "createContainer"));
  // Sysctls before enter_rootfs makes /proc/sys read-only (readonlyPaths). We are in the
  // container's namespaces already, and the parent allowed only namespaced keys, so the
  // not-yet-pivoted /proc/sys writes the container's values.
  if (s.linux_) ZRUN_TRY(iso::apply_sysctl(s.linux_->sysctl));
  return iso::enter_rootfs(s, opts);
}

// Blocks until `zrun start` opens the fifo, then says so with one byte. The write end
// stays open (O_CLOEXEC) until execve, so `start` sees EOF exactly when the user process
// runs (or the init died) and runs poststart hooks only then (config.md).
Result<void> wait_for_start(const InitContext& ctx) {
  // Re-open the O_PATH fd for writing via its magic link.
  std::string path = "/proc/self/fd/" + std::to_string(ctx.fifo_fd);
  auto fd = ZRUN_TRY_CTX(base::open_file(path, O_WRONLY), "open exec fifo");
  ZRUN_TRY_CTX(base::write_all(fd.get(), "0"), "write exec fifo");
  ::close(ctx.fifo_fd);
  (void)fd.release();  // closed by execve
  return base::ok();
}

// Steps up to the point where the parent may exit (kReady).
Result<std::string> init_steps(const InitContext& ctx, std::string* hooks_state) {
  const auto& s = *ctx.spec;
  const auto& proc = *s.process;
  for (int fd : ctx.close_fds) ::close(fd);
  // The cwd is already the bundle: the launcher chdir()s there before clone3 and we inherit
  // it. No chdir here: in a new user namespace we would be checked as the mapped root, which
  // may not traverse the engine's private dirs (podman --uidmap: 0700 userdata dir).
  // Die with the parent while it still needs us; cleared before kReady, after which the
  // parent exits and we are reparented to the engine's subreaper.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ZRUN_TRY(join_and_unshare(ctx));
  // kGo carries the state document (status "creating") for the hooks run in here.
  auto go = ZRUN_TRY(handshake(ctx));
  *hooks_state = std::move(go.text);
  if (ctx.new_cgroup_ns_late && ::unshare(CLONE_NEWCGROUP) < 0)
    return base::sys_error("unshare cgroup namespace");
  if (ctx.new_time_ns) ZRUN_TRY(iso::enter_new_time_ns(s.linux_->time_offsets));
  if (ctx.new_net_ns) ZRUN_TRY(net::loopback_up());
  if (ctx.new_keyring) ::syscall(SYS_keyctl, kKeyctlJoinSessionKeyring, nullptr);  // best effort
  if (ctx.set_uts) ZRUN_TRY_CTX(iso::set_hostname(s), "set hostname");
  ZRUN_TRY(setup_rootfs(ctx, go.hdr.flags, *hooks_state));
  ZRUN_TRY(iso::apply_rlimits(proc.rlimits));
  if (proc.terminal) ZRUN_TRY_CTX(iso::setup_console(ctx.console_fd, proc.console_size), "console");
  std::string exe;
  if (!ctx.restore) exe = ZRUN_TRY(iso::find_executable(proc.args[0], ctx.env, proc.cwd));
  // Nothing may run in the container before it is in its cgroup (see kGoJoinLater); and
  // wait before a seccomp filter could forbid recv.
  if (go.hdr.flags & kGoJoinLater) ZRUN_TRY(sync_expect(ctx.sync_fd, SyncType::kCgroupJoined));
  if (ctx.restore) {
    g_restore_role = ZRUN_TRY(ckpt::spawn_placeholders(*ctx.restore));
    // Each task gets the spec's filter, as each original inherited it (no clone3 after
    // this: the default profile refuses it).
    if (ctx.seccomp) ZRUN_TRY(iso::apply_seccomp(*ctx.seccomp, -1, *hooks_state));
    return exe;
  }
  // Without no_new_privs, seccomp(2) needs CAP_SYS_ADMIN: install before caps drop (runc).
  if (ctx.seccomp && !proc.no_new_privileges)
    ZRUN_TRY(iso::apply_seccomp(*ctx.seccomp, ctx.seccomp_listener_fd, *hooks_state));
  ZRUN_TRY(iso::finalize_identity(proc));
  return exe;
}

// After kReady the parent is gone: the container's stderr is the only place left to say
// what went wrong.
[[noreturn]] void fail(const base::Error& e, int code) {
  std::string m = "zrun: " + e.text() + "\n";
  ssize_t r = ::write(2, m.data(), m.size());
  (void)r;
  ::_exit(code);
}

// restore: every placeholder task reports to the init, which reports kReady; then all
// wait for the restorer (runtime/checkpoint.cc).
[[noreturn]] void run_placeholder(const InitContext& ctx) noexcept {
  auto r = ckpt::placeholder_ready(*ctx.restore, g_restore_role);
  if (!r) {
    (void)sync_send(ctx.sync_fd, SyncType::kError, 0, r.error().err, r.error().msg);
    ::_exit(1);
  }
  if (g_restore_role.vpid == 1) {
    ::prctl(PR_SET_PDEATHSIG, 0);
    if (!sync_send(ctx.sync_fd, SyncType::kReady).ok()) ::_exit(1);
  }
  ckpt::park_placeholder();
}

}  // namespace

void run_init(const InitContext& ctx) noexcept {
  std::string hooks_state;
  auto exe = init_steps(ctx, &hooks_state);
  if (!exe) {
    (void)sync_send(ctx.sync_fd, SyncType::kError, 0, exe.error().err, exe.error().msg);
    ::_exit(1);
  }
  if (ctx.restore) run_placeholder(ctx);
  ::prctl(PR_SET_PDEATHSIG, 0);
  if (!sync_send(ctx.sync_fd, SyncType::kReady).ok()) ::_exit(1);
  ::close(ctx.sync_fd);

  if (auto r = wait_for_start(ctx); !r) fail(r.error(), 1);
  if (!ctx.spec->hooks.start_container.empty()) {
    // Before the user process runs, the container is still "created".
    auto pos = hooks_state.find("\"status\":\"creating\"");
    if (pos != std::string::npos) hooks_state.replace(pos + 9, 10, "\"created\"");
    if (auto r = run_hooks(ctx.spec->hooks.start_container, hooks_state, "startContainer"); !r)
      fail(r.error(), 1);
  }
  // With no_new_privs, seccomp goes in as the last step before execve (fewest runtime
  // syscalls under the filter).
  if (ctx.seccomp && ctx.spec->process->no_new_privileges) {
    if (auto r = iso::apply_seccomp(*ctx.seccomp, ctx.seccomp_listener_fd, hooks_state); !r)
      fail(r.error(), 1);
  }
  if (auto r = iso::close_fds_above(2 + ctx.preserve_fds, /*at_exec=*/true); !r) fail(r.error(), 1);
  auto argv = base::c_strings(ctx.spec->process->args);
  auto envp = base::c_strings(ctx.env);
  ::execve(exe->c_str(), argv.data(), envp.data());
  int e = errno;
  fail(base::sys_error("exec `" + *exe + "`", e), e == ENOENT ? 127 : 126);
}

}  // namespace zrun::rt
