#include "checkpoint/placeholder.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

namespace zrun::ckpt {

using base::Result;

namespace {

// Session and group as saved: a leader makes its own, others join their leader's (which
// exists already: leaders are created before the tasks of their group in vpid order).
Result<void> set_session(const PlaceholderTask& t) {
  if (t.sid == t.vpid && ::getsid(0) != t.vpid && ::setsid() < 0)
    return base::sys_error("placeholder " + std::to_string(t.vpid) + ": setsid");
  if (::getpgid(0) != t.pgid && ::setpgid(0, t.pgid) < 0)
    return base::sys_error("placeholder " + std::to_string(t.vpid) + ": setpgid " +
                           std::to_string(t.pgid));
  return base::ok();
}

// A thread that only waits for the restorer: it runs no C++ (its stack is a bare mmap),
// the child side of clone3 loops in pause(2) right in this asm.
long clone3_waiting_thread(struct clone_args* args) {
  long ret;
  asm volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "2: mov $34, %%eax\n\t"  // SYS_pause
      "syscall\n\t"
      "jmp 2b\n\t"
      "1:"
      : "=a"(ret)
      : "a"(SYS_clone3), "D"(args), "S"(sizeof(*args))
      : "rcx", "r11", "memory");
  return ret;
}

Result<void> spawn_threads(const PlaceholderTask& t) {
  constexpr size_t kStack = 64 * 1024;
  for (pid_t tid : t.threads) {
    void* stack =
        ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) return base::sys_error("placeholder: thread stack");
    struct clone_args args {};
    pid_t want = tid;
    args.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    args.stack = reinterpret_cast<uint64_t>(stack);
    args.stack_size = kStack;
    args.set_tid = reinterpret_cast<uint64_t>(&want);
    args.set_tid_size = 1;
    long r = clone3_waiting_thread(&args);
    if (r < 0)
      return base::sys_error("placeholder: clone3 thread " + std::to_string(tid),
                             static_cast<int>(-r));
  }
  return base::ok();
}

}  // namespace

Result<PlaceholderRole> spawn_placeholders(const PlaceholderPlan& plan) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return base::sys_error("placeholder pipe");
  PlaceholderRole role;
  const PlaceholderTask* self = &plan.tasks[0];
  // Each task forks its own children, in plan order: parents exist before children.
  for (size_t i = 0; i < plan.tasks.size(); i++) {
    const auto& t = plan.tasks[i];
    if (t.ppid != role.vpid || t.vpid == role.vpid) continue;
    struct clone_args args {};
    pid_t tid = t.vpid;
    args.exit_signal = SIGCHLD;
    args.set_tid = reinterpret_cast<uint64_t>(&tid);
    args.set_tid_size = 1;
    long r = ::syscall(SYS_clone3, &args, sizeof(args));
    if (r < 0) {
      int e = errno;
      if (e == EEXIST)
        return base::sys_error("placeholder: pid " + std::to_string(t.vpid) + " is taken", e);
      return base::sys_error("placeholder: clone3 pid " + std::to_string(t.vpid), e);
    }
    if (r == 0) {
      role.vpid = t.vpid;
      self = &t;
      i = static_cast<size_t>(-1);  // start over: now fork our own children
    }
  }
  ZRUN_TRY(set_session(*self));
  ZRUN_TRY(spawn_threads(*self));
  if (role.vpid == 1) {
    ::close(p[1]);
    role.ready_fd = p[0];
  } else {
    ::close(p[0]);
    role.ready_fd = p[1];
  }
  return role;
}

Result<void> placeholder_ready(const PlaceholderPlan& plan, const PlaceholderRole& role) {
  if (role.vpid != 1) {
    char c = 1;
    if (::write(role.ready_fd, &c, 1) != 1) return base::sys_error("placeholder ready");
    ::close(role.ready_fd);
    return base::ok();
  }
  size_t want = plan.tasks.size() - 1, got = 0;
  char buf[64];
  for (;;) {
    ssize_t n = ::read(role.ready_fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::sys_error("placeholder: wait for tasks");
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(role.ready_fd);
  if (got != want)
    return base::make_error("placeholder: " + std::to_string(want - got) +
                            " task(s) failed to start");
  return base::ok();
}

void park_placeholder() noexcept {
  ::syscall(SYS_close_range, 3, ~0U, 0);
  for (;;) ::pause();
}

}  // namespace zrun::ckpt
