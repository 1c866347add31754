#include "runtime/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys.h"
#include "base/unique_fd.h"

namespace zrun::rt {

namespace {

int64_t now_ms() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// posix_spawn (CLONE_VFORK in glibc) reports exec failures synchronously and never runs
// our code in the child, so this is safe in a multi-threaded or freshly forked caller.
base::Result<pid_t> spawn_hook(const spec::Hook& hook, int stdin_fd) {
  std::vector<char*> argv, envp;
  if (hook.args.empty()) argv.push_back(const_cast<char*>(hook.path.c_str()));
  for (auto& a : hook.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : hook.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawnattr_init(&attr);
  // dup2 clears FD_CLOEXEC on fd 0; closefrom drops anything a caller leaked without it.
  ::posix_spawn_file_actions_adddup2(&fa, stdin_fd, 0);
  ::posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  // The hook starts with an empty signal mask and default SIGPIPE even though we may
  // block or ignore them.
  sigset_t empty, defaults;
  ::sigemptyset(&empty);
  ::sigemptyset(&defaults);
  ::sigaddset(&defaults, SIGPIPE);
  ::posix_spawnattr_setsigmask(&attr, &empty);
  ::posix_spawnattr_setsigdefault(&attr, &defaults);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, hook.path.c_str(), &fa, &attr, argv.data(), envp.data());
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) return base::sys_error("spawn", rc);
  return pid;
}

// Blocks SIGPIPE while writing to a hook that may exit without reading its stdin, and
// discards a SIGPIPE our writes raised, so the caller's disposition never matters.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pipe_set, pending;
    ::sigemptyset(&pipe_set);
    ::sigaddset(&pipe_set, SIGPIPE);
    ::sigpending(&pending);
    was_pending_ = ::sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_);
  }
  ~SigpipeGuard() {
    sigset_t pipe_set, pending;
    ::sigemptyset(&pipe_set);
    ::sigaddset(&pipe_set, SIGPIPE);
    ::sigpending(&pending);
    if (!was_pending_ && ::sigismember(&pending, SIGPIPE) == 1) {
      struct timespec zero {};
      while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

// Feed `data` into `wfd` (non-blocking) while waiting for the hook's pidfd, up to
// `timeout_ms` (< 0: no limit). Returns false on timeout.
base::Result<bool> feed_and_wait(int pidfd, base::UniqueFd wfd, std::string_view data,
                                 int64_t timeout_ms) {
  SigpipeGuard guard;
  const int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
  if (data.empty()) wfd.reset();
  for (;;) {
    struct pollfd fds[2] = {{pidfd, POLLIN, 0}, {wfd.get(), POLLOUT, 0}};
    int wait = -1;
    if (deadline >= 0) {
      int64_t left = deadline - now_ms();
      if (left <= 0) return false;
      wait = static_cast<int>(left);
    }
    int n = ::poll(fds, wfd.valid() ? 2 : 1, wait);
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::sys_error("poll");
    }
    if (n == 0) continue;  // re-check the deadline
    if (fds[0].revents) return true;
    if (!wfd.valid() || !fds[1].revents) continue;
    ssize_t w = ::write(wfd.get(), data.data(), data.size());
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    // EPIPE: the hook does not want its state; that is its business, not an error.
    if (w < 0) {
      wfd.reset();
      continue;
    }
    data.remove_prefix(static_cast<size_t>(w));
    if (data.empty()) wfd.reset();  // EOF for the hook
  }
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

}  // namespace

base::Result<void> run_hook(const spec::Hook& hook, const std::string& state_json,
                            std::string_view phase) {
  const std::string ctx = std::string(phase) + " hook `" + hook.path + "`";
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return base::context(base::sys_error("pipe"), ctx);
  base::UniqueFd rfd(p[0]), wfd(p[1]);
  auto pid = spawn_hook(hook, rfd.get());
  if (!pid) return base::context(std::move(pid).error(), ctx);
  rfd.reset();
  // Only our end is non-blocking: the two ends are separate open file descriptions.
  ::fcntl(wfd.get(), F_SETFL, ::fcntl(wfd.get(), F_GETFL) | O_NONBLOCK);

  auto pidfd_r = base::pidfd_open(*pid);
  if (!pidfd_r) {
    ::kill(*pid, SIGKILL);
    (void)base::wait_pid(*pid);
    return base::context(std::move(pidfd_r).error(), ctx);
  }
  base::UniqueFd pidfd(*pidfd_r);
  int64_t timeout_ms = hook.timeout ? int64_t{*hook.timeout} * 1000 : -1;
  auto exited = feed_and_wait(pidfd.get(), std::move(wfd), state_json, timeout_ms);
  if (!exited || !*exited) ::kill(*pid, SIGKILL);  // not reaped yet, so the pid is still ours
  auto status = base::wait_pid(*pid);
  if (!exited) return base::context(std::move(exited).error(), ctx);
  if (!*exited)
    return base::make_error(ctx + ": timed out after " + std::to_string(*hook.timeout) + " s");
  if (!status) return base::context(std::move(status).error(), ctx);
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0)
    return base::make_error(ctx + ": " + describe(*status));
  return base::ok();
}

base::Result<void> run_hooks(const std::vector<spec::Hook>& hooks, const std::string& state_json,
                             std::string_view phase) {
  for (const auto& h : hooks) ZRUN_TRY(run_hook(h, state_json, phase));
  return base::ok();
}

}  // namespace zrun::rt
