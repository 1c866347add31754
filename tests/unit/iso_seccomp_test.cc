// Seccomp: compile with libseccomp (every action, operator, flag, arch), install the raw
// program in forked children (no root needed: the child sets no_new_privs) and check what
// each action does, including a NOTIFY round trip through the listener message.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <functional>
#include <nlohmann/json.hpp>

#include "isolation/console.h"
#include "isolation/seccomp.h"
#include "spec/default_spec.h"

namespace zrun::iso {
namespace {

spec::SeccompSyscall rule(std::vector<std::string> names, std::string action,
                          std::optional<unsigned> errno_ret = std::nullopt,
                          std::vector<spec::SeccompArg> args = {}) {
  spec::SeccompSyscall sc;
  sc.names = std::move(names);
  sc.action = std::move(action);
  sc.errno_ret = errno_ret;
  sc.args = std::move(args);
  return sc;
}

spec::SeccompArg arg(unsigned index, std::string op, uint64_t value, uint64_t two = 0) {
  return spec::SeccompArg{index, value, two, std::move(op)};
}

spec::Seccomp allow_but(std::vector<spec::SeccompSyscall> rules) {
  spec::Seccomp s;
  s.default_action = "SCMP_ACT_ALLOW";
  s.syscalls = std::move(rules);
  return s;
}

// Fork; the child sets no_new_privs, installs `s` and runs `fn` (its return value is the
// exit code). Returns the exit code, or 128+signal.
int with_filter(const spec::Seccomp& s, const std::function<int()>& fn) {
  auto prog = compile_seccomp(s);
  EXPECT_TRUE(prog.ok()) << prog.error().text();
  if (!prog.ok()) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) _exit(100);
    if (!install_seccomp(*prog).ok()) _exit(101);
    // exit_group directly: the sanitizers' _exit hook (leak check) needs syscalls a
    // restrictive filter refuses.
    syscall(SYS_exit_group, fn());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// 0 when syscall `r` failed with `want`, else a code naming what happened.
int expect_errno(long r, int want) {
  if (r != -1) return 50;
  return errno == want ? 0 : 51;
}

TEST(SeccompCompile, EveryActionCompiles) {
  for (const char* a :
       {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"}) {
    auto s = allow_but({rule({"getppid"}, a)});
    s.listener_path = "/run/x.sock";
    auto p = compile_seccomp(s);
    ASSERT_TRUE(p.ok()) << a << ": " << p.error().text();
    EXPECT_GT(p->filter.size(), 4u) << a;
    EXPECT_EQ(p->notify, std::string(a) == "SCMP_ACT_NOTIFY") << a;
  }
  spec::Seccomp deny;
  deny.default_action = "SCMP_ACT_ERRNO";
  deny.default_errno_ret = 38;
  deny.syscalls = {rule({"read", "write", "exit_group"}, "SCMP_ACT_ALLOW")};
  auto p = compile_seccomp(deny);
  ASSERT_TRUE(p.ok()) << p.error().text();
  EXPECT_FALSE(p->notify);
  EXPECT_EQ(p->flags, 0u);
}

TEST(SeccompCompile, EveryDefaultActionButNotify) {
  for (const char* a :
       {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_ALLOW"}) {
    spec::Seccomp s;
    s.default_action = a;
    s.syscalls = {
        rule({"getppid"}, a == std::string("SCMP_ACT_ALLOW") ? "SCMP_ACT_LOG" : "SCMP_ACT_ALLOW")};
    EXPECT_TRUE(compile_seccomp(s).ok()) << a;
  }
  spec::Seccomp s;
  s.default_action = "SCMP_ACT_NOTIFY";
  auto p = compile_seccomp(s);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().msg.find("default action"), std::string::npos) << p.error().msg;
}

TEST(SeccompCompile, RuleRepeatingDefaultActionIsIgnored) {
  // libseccomp itself would refuse it (EACCES).
  auto s = allow_but({rule({"getppid"}, "SCMP_ACT_ALLOW")});
  EXPECT_TRUE(compile_seccomp(s).ok());
}

TEST(SeccompCompile, UnknownSyscallIsSkipped) {
  auto s = allow_but({rule({"zrun_no_such_syscall", "getppid"}, "SCMP_ACT_ERRNO", 42)});
  auto p = compile_seccomp(s);
  ASSERT_TRUE(p.ok()) << p.error().text();
  // The known name in the same entry still gets its rule.
  EXPECT_EQ(with_filter(s, [] { return expect_errno(syscall(SYS_getppid), 42); }), 0);
}

TEST(SeccompCompile, NotifyNeedsListenerPath) {
  auto p = compile_seccomp(allow_but({rule({"getppid"}, "SCMP_ACT_NOTIFY")}));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().msg.find("listenerPath"), std::string::npos) << p.error().msg;
  auto s = allow_but({rule({"sendmsg"}, "SCMP_ACT_NOTIFY")});
  s.listener_path = "/run/x.sock";
  EXPECT_FALSE(compile_seccomp(s).ok());
}

TEST(SeccompCompile, Flags) {
  auto s = allow_but({rule({"getppid"}, "SCMP_ACT_ERRNO")});
  s.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
  auto p = compile_seccomp(s);
  ASSERT_TRUE(p.ok()) << p.error().text();
  EXPECT_EQ(p->flags, unsigned(SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW));
  // Meaningless (and EINVAL for the kernel) without a listener: dropped.
  s.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  EXPECT_EQ(compile_seccomp(s)->flags, 0u);

  auto n = allow_but({rule({"getppid"}, "SCMP_ACT_NOTIFY")});
  n.listener_path = "/run/x.sock";
  n.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  p = compile_seccomp(n);
  ASSERT_TRUE(p.ok()) << p.error().text();  // kernel >= 5.19
  EXPECT_EQ(p->flags,
            unsigned(SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_NEW_LISTENER |
                     SECCOMP_FILTER_FLAG_TSYNC_ESRCH | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV));
  auto flags = supported_seccomp_flags();
  EXPECT_EQ(flags.size(), 4u);
}

TEST(SeccompCompile, Architectures) {
  auto s = allow_but({rule({"getppid", "socketcall"}, "SCMP_ACT_ERRNO")});
  s.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64",
                     "SCMP_ARCH_LOONGARCH64"};  // the last is unknown to libseccomp 2.5
  auto one = compile_seccomp(allow_but({rule({"getppid"}, "SCMP_ACT_ERRNO")}));
  auto many = compile_seccomp(s);
  ASSERT_TRUE(many.ok()) << many.error().text();
  EXPECT_GT(many->filter.size(), one->filter.size());
}

TEST(SeccompCompile, TooLongFilterIsAnError) {
  std::vector<spec::SeccompArg> args;
  for (unsigned v = 0; v < 4200; ++v) args.push_back(arg(0, "SCMP_CMP_EQ", v * 7 + 1));
  auto p = compile_seccomp(allow_but({rule({"umask"}, "SCMP_ACT_ERRNO", 1, args)}));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().msg.find("limit of 4096"), std::string::npos) << p.error().msg;
}

TEST(SeccompInstall, ErrnoReturnsErrno) {
  auto s =
      allow_but({rule({"getppid"}, "SCMP_ACT_ERRNO", 38), rule({"getpgid"}, "SCMP_ACT_ERRNO")});
  EXPECT_EQ(with_filter(s,
                        [] {
                          if (expect_errno(syscall(SYS_getppid), ENOSYS)) return 1;
                          if (expect_errno(syscall(SYS_getpgid, 0), EPERM)) return 2;  // default
                          return syscall(SYS_getpid) > 0 ? 0 : 3;
                        }),
            0);
}

TEST(SeccompInstall, DefaultErrnoRet) {
  spec::Seccomp s;
  s.default_action = "SCMP_ACT_ERRNO";
  s.default_errno_ret = 38;
  s.syscalls = {rule({"exit_group", "exit", "getpid"}, "SCMP_ACT_ALLOW")};
  EXPECT_EQ(with_filter(s,
                        [] {
                          if (syscall(SYS_getpid) <= 0) return 1;
                          return expect_errno(syscall(SYS_getppid), ENOSYS);
                        }),
            0);
}

TEST(SeccompInstall, KillAndKillProcessAndTrap) {
  for (const char* a : {"SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS"}) {
    EXPECT_EQ(with_filter(allow_but({rule({"getppid"}, a)}),
                          [] { return syscall(SYS_getppid) >= 0 ? 0 : 1; }),
              128 + SIGSYS)
        << a;
  }
  // TRAP: SIGSYS is delivered to a handler (and would kill without one).
  EXPECT_EQ(with_filter(allow_but({rule({"getppid"}, "SCMP_ACT_TRAP")}),
                        [] {
                          signal(SIGSYS, [](int) { _exit(42); });
                          syscall(SYS_getppid);
                          return 1;
                        }),
            42);
  EXPECT_EQ(with_filter(allow_but({rule({"getppid"}, "SCMP_ACT_TRAP")}),
                        [] { return syscall(SYS_getppid) >= 0 ? 0 : 1; }),
            128 + SIGSYS);
}

TEST(SeccompInstall, LogAllowsAndTraceWithoutTracerIsEnosys) {
  EXPECT_EQ(with_filter(allow_but({rule({"getppid"}, "SCMP_ACT_LOG")}),
                        [] { return syscall(SYS_getppid) > 0 ? 0 : 1; }),
            0);
  EXPECT_EQ(with_filter(allow_but({rule({"getppid"}, "SCMP_ACT_TRACE", 5)}),
                        [] { return expect_errno(syscall(SYS_getppid), ENOSYS); }),
            0);
}

TEST(SeccompInstall, ArgumentsSameIndexAreOr) {
  auto s = allow_but({rule({"umask"}, "SCMP_ACT_ERRNO", 33,
                           {arg(0, "SCMP_CMP_EQ", 077), arg(0, "SCMP_CMP_EQ", 070)})});
  EXPECT_EQ(with_filter(s,
                        [] {
                          if (expect_errno(syscall(SYS_umask, 077), 33)) return 1;
                          if (expect_errno(syscall(SYS_umask, 070), 33)) return 2;
                          return syscall(SYS_umask, 022) >= 0 ? 0 : 3;
                        }),
            0);
}

TEST(SeccompInstall, ArgumentsDifferentIndexAreAnd) {
  auto s = allow_but({rule({"getpriority"}, "SCMP_ACT_ERRNO", 77,
                           {arg(0, "SCMP_CMP_EQ", PRIO_PROCESS), arg(1, "SCMP_CMP_EQ", 0)})});
  EXPECT_EQ(with_filter(s,
                        [] {
                          if (expect_errno(syscall(SYS_getpriority, PRIO_PROCESS, 0), 77)) return 1;
                          if (syscall(SYS_getpriority, PRIO_PROCESS, getpid()) < 0) return 2;
                          if (syscall(SYS_getpriority, PRIO_PGRP, 0) < 0) return 3;
                          return 0;
                        }),
            0);
}

TEST(SeccompInstall, MaskedEqAndComparisons) {
  auto s = allow_but({
      rule({"unshare"}, "SCMP_ACT_ERRNO", 99,
           {arg(0, "SCMP_CMP_MASKED_EQ", CLONE_NEWUSER, CLONE_NEWUSER)}),
      rule({"umask"}, "SCMP_ACT_ERRNO", 33, {arg(0, "SCMP_CMP_GT", 0700)}),
      rule({"getpgid"}, "SCMP_ACT_ERRNO", 34, {arg(0, "SCMP_CMP_NE", 0)}),
  });
  EXPECT_EQ(with_filter(s,
                        [] {
                          if (expect_errno(syscall(SYS_unshare, CLONE_NEWUSER), 99)) return 1;
                          if (expect_errno(syscall(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS), 99))
                            return 2;
                          if (syscall(SYS_unshare, 0) != 0) return 3;  // other flags pass
                          if (expect_errno(syscall(SYS_umask, 0701), 33)) return 4;
                          if (syscall(SYS_umask, 0700) < 0) return 5;
                          if (expect_errno(syscall(SYS_getpgid, getpid()), 34)) return 6;
                          return syscall(SYS_getpgid, 0) > 0 ? 0 : 7;
                        }),
            0);
}

TEST(SeccompInstall, NotifyRoundTrip) {
  auto s = allow_but({rule({"getppid"}, "SCMP_ACT_NOTIFY")});
  s.listener_path = "/run/listener.sock";
  s.listener_metadata = "a \"b\"";
  auto prog = compile_seccomp(s);
  ASSERT_TRUE(prog.ok()) << prog.error().text();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) _exit(100);
    std::string state = R"({"ociVersion":"1.2.0","id":"x","status":"creating","pid":4321})";
    if (!apply_seccomp(*prog, sv[1], state).ok()) _exit(101);
    if (fcntl(sv[1], F_GETFD) != -1) _exit(102);  // the socket was closed
    _exit(syscall(SYS_getppid) == 1234 ? 0 : 103);
  }
  close(sv[1]);
  std::string text;
  auto fd = recv_fd_named(sv[0], &text);
  close(sv[0]);
  ASSERT_TRUE(fd.ok()) << fd.error().text();
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["fds"], nlohmann::json::parse(R"(["seccompFd"])"));
  EXPECT_EQ(j["pid"], 4321);
  EXPECT_EQ(j["metadata"], "a \"b\"");
  EXPECT_EQ(j["state"]["status"], "creating");
  EXPECT_EQ(j["ociVersion"], "1.2.0");

  struct seccomp_notif req {};
  ASSERT_EQ(ioctl(fd->get(), SECCOMP_IOCTL_NOTIF_RECV, &req), 0) << strerror(errno);
  EXPECT_EQ(req.data.nr, SYS_getppid);
  EXPECT_EQ(static_cast<pid_t>(req.pid), pid);
  struct seccomp_notif_resp resp {};
  resp.id = req.id;
  resp.val = 1234;
  ASSERT_EQ(ioctl(fd->get(), SECCOMP_IOCTL_NOTIF_SEND, &resp), 0) << strerror(errno);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SeccompInstall, ListenerMessagePidIsTopLevel) {
  SeccompProgram p;
  p.listener_message_head = R"({"ociVersion":"1.2.0","fds":["seccompFd"],"metadata":"")";
  auto m = seccomp_listener_message(
      p, R"({"ociVersion":"1.2.0","id":"x","status":"created","pid":77,"bundle":"/b",)"
         R"("annotations":{"k":"\"pid\":5"}})");
  auto j = nlohmann::json::parse(m);
  EXPECT_EQ(j["pid"], 77);
  EXPECT_EQ(j["state"]["annotations"]["k"], "\"pid\":5");
}

TEST(SeccompInstall, DefaultProfile) {
  auto spec = spec::parse_config(spec::default_spec_json(false), "/b");
  ASSERT_TRUE(spec.ok()) << spec.error().text();
  EXPECT_EQ(with_filter(*spec->linux_->seccomp,
                        [] {
                          if (expect_errno(syscall(SYS_keyctl, 0, 0), EPERM)) return 1;
                          if (expect_errno(syscall(SYS_add_key, 0, 0, 0, 0, 0), EPERM)) return 2;
                          if (expect_errno(syscall(SYS_unshare, CLONE_NEWUSER), EPERM)) return 3;
                          if (expect_errno(syscall(SYS_clone3, nullptr, 0), ENOSYS)) return 4;
                          if (expect_errno(syscall(SYS_bpf, 0, nullptr, 0), EPERM)) return 5;
                          if (expect_errno(syscall(SYS_userfaultfd, 0), EPERM)) return 6;
                          if (syscall(SYS_unshare, 0) != 0) return 7;
                          // fork (clone without CLONE_NEWUSER) still works.
                          pid_t p = fork();
                          if (p == 0) _exit(0);
                          int st = 0;
                          if (p < 0 || waitpid(p, &st, 0) != p || st != 0) return 8;
                          return 0;
                        }),
            0);
}

}  // namespace
}  // namespace zrun::iso
