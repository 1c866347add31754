// linux.seccomp in real containers: each action does what it says (ERRNO returns the errno,
// KILL/KILL_PROCESS kill with SIGSYS, TRAP delivers a catchable SIGSYS, LOG logs to the
// kernel log, NOTIFY reaches a listener that answers the syscall), argument comparisons,
// both install points (noNewPrivileges true: just before execve; false: before the caps
// drop), and the `spec` default profile (blocks keyctl and unshare(CLONE_NEWUSER), lets
// ordinary programs run).
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "isolation/console.h"
#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

Json rule(std::vector<std::string> names, const std::string& action, Json extra = Json::object()) {
  Json r = {{"names", names}, {"action", action}};
  for (auto& [k, v] : extra.items()) r[k] = v;
  return r;
}

Json allow_but(std::vector<Json> rules) {
  return {{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", rules}};
}

// A static helper that makes one raw syscall: `zrun-syscall NR [ARG...]` prints
// ret=R and errno=E. Built once per test process with the host compiler (the probe has
// no such subcommand); tests that need it skip when no static toolchain is present.
const std::string& syscall_helper() {
  static TempDir dir("zrun-it-sc");
  static std::string path = [] {
    std::string src = dir / "sc.c", bin = dir / "zrun-syscall";
    write_file(src, R"(#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char** argv) {
  long a[6] = {0};
  for (int i = 2; i < argc && i < 8; i++) a[i - 2] = strtol(argv[i], 0, 0);
  long r = syscall(strtol(argv[1], 0, 0), a[0], a[1], a[2], a[3], a[4], a[5]);
  printf("ret=%ld\nerrno=%d\n", r, r < 0 ? errno : 0);
  return 0;
}
)");
    RunResult r = run_command({"/bin/sh", "-c", "cc -static -O1 -o " + bin + " " + src});
    return r.code == 0 ? bin : std::string();
  }();
  return path;
}

#define REQUIRE_SYSCALL_HELPER()                                                \
  do {                                                                          \
    if (syscall_helper().empty()) GTEST_SKIP() << "no static C toolchain (cc)"; \
  } while (0)

void install_helper(Bundle& b) {
  RunResult r = run_command({"/bin/cp", syscall_helper(), b.rootfs() + "/bin/zrun-syscall"});
  ASSERT_EQ(r.code, 0) << r;
}

// Accepts one connection on a unix socket, receives the seccomp listener fd with the
// containerProcessState message, then answers every notification with success (val 0),
// recording the syscall numbers, until the filter has no users left.
class NotifyListener {
 public:
  NotifyListener() : dir_("zrun-it-notify"), path_(dir_ / "listener.sock") {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~NotifyListener() {
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  const std::string& path() const { return path_; }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  std::string message, error;
  std::vector<int> syscalls;

 private:
  void serve() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 20000) != 1) return void(error = "no connection");
    int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    auto nfd = iso::recv_fd_named(conn, &message);
    ::close(conn);
    if (!nfd.ok()) return void(error = nfd.error().text());
    for (;;) {
      pollfd q{nfd->get(), POLLIN, 0};
      if (::poll(&q, 1, 20000) != 1) return void(error = "notification timeout");
      if (!(q.revents & POLLIN)) return;  // POLLHUP: every task using the filter is gone
      seccomp_notif req{};
      if (::ioctl(nfd->get(), SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) continue;  // task died
      syscalls.push_back(req.data.nr);
      seccomp_notif_resp resp{};
      resp.id = req.id;
      ::ioctl(nfd->get(), SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
  }

  TempDir dir_;
  std::string path_;
  int fd_ = -1;
  std::thread thread_;
};

// New kernel log records (the audit lines SCMP_ACT_LOG produces when no auditd runs).
class KernelLog {
 public:
  KernelLog() {
    fd_ = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ >= 0) ::lseek(fd_, 0, SEEK_END);
  }
  ~KernelLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  std::string read_new() {
    std::string out;
    char buf[8192];
    for (;;) {
      ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n < 0 && errno == EPIPE) continue;  // overwritten records
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
};

class SeccompTest : public ContainerTest {
 protected:
  void seccomp(Bundle& b, const Json& s) { b.config()["linux"]["seccomp"] = s; }
};

class SeccompNnpTest : public SeccompTest, public ::testing::WithParamInterface<bool> {};

// Both install points: with no_new_privs right before execve, without it before the
// capabilities are dropped (installing after the drop would fail: no CAP_SYS_ADMIN).
TEST_P(SeccompNnpTest, ErrnoReturnsErrno) {
  Bundle b(rt);
  b.config()["process"]["noNewPrivileges"] = GetParam();
  // An unknown name in the list is skipped, the others still apply.
  seccomp(b, allow_but({rule({"mkdir", "mkdirat", "zrun_no_such_syscall"}, "SCMP_ACT_ERRNO",
                             {{"errnoRet", 38}})}));
  b.args({"/bin/sh", "-c", "mkdir /tmp/x; echo rc=$?; test -d /tmp/x || echo absent=1"});
  RunResult r = rt.run(b, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_NE(r.err.find("Function not implemented"), std::string::npos) << r;
  auto kv = parse_kv(r.out);
  EXPECT_EQ(kv["rc"], "1") << r;
  EXPECT_EQ(kv["absent"], "1") << r;
}

TEST_P(SeccompNnpTest, NotifyReachesListener) {
  NotifyListener listener;
  Bundle b(rt);
  b.config()["process"]["noNewPrivileges"] = GetParam();
  Json s = allow_but({rule({"mkdir", "mkdirat"}, "SCMP_ACT_NOTIFY")});
  s["listenerPath"] = listener.path();
  s["listenerMetadata"] = "zrun-test-metadata";
  // Kernel 5.19+, set by seccomp(2) directly (libseccomp 2.5 cannot); runc 1.1 has no flags.
  if (runtime_is_zrun()) s["flags"] = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  seccomp(b, s);
  // The listener answers "success" without doing anything: mkdir reports success but
  // no directory appears.
  b.args({"/bin/sh", "-c", "mkdir /tmp/x && echo mkdir=ok; test -d /tmp/x || echo absent=1"});
  std::string id = rt.new_id();
  RunResult r = rt.run(b, id);
  listener.join();
  ASSERT_EQ(r.code, 0) << r;
  ASSERT_EQ(listener.error, "") << r;
  auto kv = parse_kv(r.out);
  EXPECT_EQ(kv["mkdir"], "ok") << r;
  EXPECT_EQ(kv["absent"], "1") << r;
  ASSERT_FALSE(listener.syscalls.empty());
  EXPECT_TRUE(listener.syscalls[0] == SYS_mkdir || listener.syscalls[0] == SYS_mkdirat)
      << listener.syscalls[0];
  Json m = Json::parse(listener.message, nullptr, false);
  ASSERT_TRUE(m.is_object()) << listener.message;
  EXPECT_EQ(m["fds"], Json::parse(R"(["seccompFd"])"));
  EXPECT_EQ(m["metadata"], "zrun-test-metadata");
  EXPECT_TRUE(m.contains("ociVersion"));
  EXPECT_EQ(m["state"]["id"], id);
  EXPECT_EQ(m["state"]["bundle"], b.path());
  EXPECT_GT(m["pid"].get<int>(), 1);
  EXPECT_EQ(m["pid"], m["state"]["pid"]);
}

// `exec` processes get the container's profile too (both install points).
TEST_P(SeccompNnpTest, ExecGetsTheProfile) {
  Bundle b(rt);
  b.config()["process"]["noNewPrivileges"] = GetParam();
  seccomp(b, allow_but({rule({"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO", {{"errnoRet", 38}})}));
  b.probe({"sleep", "60"});
  std::string id = rt.new_id("ex");
  ASSERT_EQ(rt.run(b, id, {"-d"}).code, 0) << b.err();
  auto r = rt.exec({"exec", id, "/bin/mkdir", "/tmp/x"});
  EXPECT_NE(r.code, 0) << r;
  EXPECT_NE(r.err.find("Function not implemented"), std::string::npos) << r;
  EXPECT_EQ(rt.exec({"exec", id, "/bin/touch", "/tmp/y"}).code, 0);
}

INSTANTIATE_TEST_SUITE_P(NoNewPrivileges, SeccompNnpTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Nnp" : "NoNnp"; });

TEST_F(SeccompTest, KillKillsWithSigsys) {
  for (const char* action : {"SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS"}) {
    Bundle b(rt);
    seccomp(b, allow_but({rule({"mkdir", "mkdirat"}, action)}));
    b.args({"/bin/mkdir", "/tmp/x"});
    RunResult r = rt.run(b, rt.new_id());
    EXPECT_EQ(r.code, 128 + SIGSYS) << action << ": " << r;  // 159
  }
}

TEST_F(SeccompTest, TrapDeliversCatchableSigsys) {
  Bundle b(rt);
  // umask 077 is a shell builtin: the shell itself makes the syscall and runs its trap.
  seccomp(b,
          allow_but({rule({"umask"}, "SCMP_ACT_TRAP",
                          {{"args", {{{"index", 0}, {"value", 077}, {"op", "SCMP_CMP_EQ"}}}}})}));
  b.args({"/bin/sh", "-c", "trap 'echo caught=SIGSYS' SYS; umask 077; umask 022; echo done=1"});
  RunResult r = rt.run(b, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  auto kv = parse_kv(r.out);
  EXPECT_EQ(kv["caught"], "SIGSYS") << r;
  EXPECT_EQ(kv["done"], "1") << r;

  // Without a handler SIGSYS terminates the process.
  Bundle b2(rt);
  seccomp(b2, allow_but({rule({"mkdir", "mkdirat"}, "SCMP_ACT_TRAP")}));
  b2.args({"/bin/mkdir", "/tmp/x"});
  EXPECT_EQ(rt.run(b2, rt.new_id()).code, 128 + SIGSYS);
}

TEST_F(SeccompTest, LogAllowsAndLogs) {
  KernelLog klog;
  Bundle b(rt);
  seccomp(b, allow_but({rule({"mkdir", "mkdirat"}, "SCMP_ACT_LOG")}));
  b.args({"/bin/sh", "-c", "mkdir /tmp/x && test -d /tmp/x && echo made=1"});
  RunResult r = rt.run(b, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(parse_kv(r.out)["made"], "1") << r;
  if (!klog.ok() ||
      read_file("/proc/sys/kernel/seccomp/actions_logged").find("log") == std::string::npos)
    GTEST_SKIP() << "kernel log not readable or the log action is not logged here";
  // The audit record (type 1326, AUDIT_SECCOMP) with code=SCMP_ACT_LOG; printed to the
  // kernel log when no audit daemon listens.
  std::string log;
  for (int i = 0; i < 20 && log.find("code=0x7ffc0000") == std::string::npos; ++i) {
    log += klog.read_new();
    if (log.find("code=0x7ffc0000") == std::string::npos) ::usleep(50000);
  }
  EXPECT_NE(log.find("type=1326"), std::string::npos) << log;
  EXPECT_NE(log.find("comm=\"mkdir\""), std::string::npos) << log;
  EXPECT_NE(log.find("code=0x7ffc0000"), std::string::npos) << log;
}

TEST_F(SeccompTest, ArgumentComparison) {
  Bundle b(rt);
  // personality(PER_LINUX32 = 8) is refused, personality(PER_LINUX = 0) is not.
  seccomp(b, allow_but({rule({"personality"}, "SCMP_ACT_ERRNO",
                             {{"errnoRet", 22},
                              {"args", {{{"index", 0}, {"value", 8}, {"op", "SCMP_CMP_EQ"}}}}})}));
  b.args({"/bin/sh", "-c",
          "/bin/busybox linux32 /bin/true; echo l32=$?; /bin/busybox linux64 /bin/true; "
          "echo l64=$?"});
  RunResult r = rt.run(b, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  auto kv = parse_kv(r.out);
  EXPECT_NE(kv["l32"], "0") << r;
  EXPECT_EQ(kv["l64"], "0") << r;
  EXPECT_NE(r.err.find("Invalid argument"), std::string::npos) << r;
}

TEST_F(SeccompTest, DefaultArchitectureListAndFlags) {
  KernelLog klog;
  Bundle b(rt);
  Json s = allow_but({rule({"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO")});
  s["architectures"] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  // runc 1.1 refuses any flag ("not yet supported"); the features document says.
  bool flags = runtime_is_zrun();
  if (flags) s["flags"] = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
  seccomp(b, s);
  b.args({"/bin/sh", "-c", "mkdir /tmp/x; echo rc=$?"});
  RunResult r = rt.run(b, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(parse_kv(r.out)["rc"], "1") << r;
  EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r;
  // SECCOMP_FILTER_FLAG_LOG: the ERRNO(EPERM) outcome is logged too (the audit code is the action
  // without its data: 0x50000).
  if (!flags || !klog.ok() ||
      read_file("/proc/sys/kernel/seccomp/actions_logged").find("errno") == std::string::npos)
    return;
  std::string log;
  for (int i = 0; i < 20 && log.find("code=0x50000") == std::string::npos; ++i) {
    log += klog.read_new();
    if (log.find("code=0x50000") == std::string::npos) ::usleep(50000);
  }
  EXPECT_NE(log.find("code=0x50000"), std::string::npos) << log;
}

TEST_F(SeccompTest, InvalidProfilesAreCreateErrors) {
  Bundle b(rt);
  seccomp(b, allow_but({rule({"mkdir"}, "SCMP_ACT_BOGUS")}));
  expect_error(rt.run(b, rt.new_id()), "SCMP_ACT_BOGUS");
  Bundle b2(rt);
  seccomp(b2, allow_but({rule({"mkdir"}, "SCMP_ACT_NOTIFY")}));  // no listenerPath
  std::string id = rt.new_id();
  expect_error(rt.run(b2, id), "listenerPath");
  EXPECT_EQ(leftovers(rt, b2, id), "");
}

// The profile `zrun spec` writes (every Bundle starts from it).
class DefaultProfileTest : public SeccompTest {
 protected:
  void SetUp() override {
    SeccompTest::SetUp();
    if (IsSkipped()) return;
    Bundle probe(rt);
    if (!probe.config()["linux"].contains("seccomp"))
      GTEST_SKIP() << "the runtime's `spec` has no seccomp profile";
  }
};

TEST_F(DefaultProfileTest, OrdinaryProgramsWork) {
  Bundle b(rt);
  b.args({"/bin/sh", "-c",
          "set -e; mkdir -p /tmp/a/b; echo hi > /tmp/a/b/f; cat /tmp/a/b/f; ls / >/dev/null; "
          "ps >/dev/null; sleep 0.01 & wait; id -u; /bin/zrun-probe pid"});
  RunResult r = rt.run(b, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("hi\n0\n"), std::string::npos) << r;
  EXPECT_EQ(parse_kv(r.out)["pid"], "1") << r;
}

TEST_F(DefaultProfileTest, BlocksUnshareUserNamespace) {
  Bundle b(rt);
  b.args({"/bin/sh", "-c",
          "/bin/busybox unshare -U /bin/true; echo userns=$?; "
          "/bin/busybox unshare -U -r /bin/true; echo userns_root=$?"});
  RunResult r = rt.run(b, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  auto kv = parse_kv(r.out);
  EXPECT_NE(kv["userns"], "0") << r;
  EXPECT_NE(kv["userns_root"], "0") << r;
  EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r;
}

TEST_F(DefaultProfileTest, BlocksKeyctlAndFriends) {
  REQUIRE_SYSCALL_HELPER();
  Bundle b(rt);
  install_helper(b);
  // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING), add_key, unshare(NEWUSER),
  // clone3 (ENOSYS so libc falls back), then an allowed one (getpid).
  auto call = [](long nr, const std::string& args) {
    return "echo == " + std::to_string(nr) + "; /bin/zrun-syscall " + std::to_string(nr) + " " +
           args + "; ";
  };
  b.args({"/bin/sh", "-c",
          call(SYS_keyctl, "0 -3") + call(SYS_add_key, "0 0 0 0 0") +
              call(SYS_unshare, std::to_string(0x10000000)) + call(SYS_clone3, "0 0") +
              call(SYS_bpf, "0 0 0") + call(SYS_getpid, "")});
  RunResult r = rt.run(b, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  auto sec = parse_sections(r.out);
  EXPECT_EQ(sec[std::to_string(SYS_keyctl)]["errno"], "1") << r;
  EXPECT_EQ(sec[std::to_string(SYS_add_key)]["errno"], "1") << r;
  EXPECT_EQ(sec[std::to_string(SYS_unshare)]["errno"], "1") << r;
  EXPECT_EQ(sec[std::to_string(SYS_clone3)]["errno"], "38") << r;
  EXPECT_EQ(sec[std::to_string(SYS_bpf)]["errno"], "1") << r;
  EXPECT_EQ(sec[std::to_string(SYS_getpid)]["ret"], "1") << r;

  // Without the profile keyctl works (so the test would fail without it).
  Bundle open(rt);
  install_helper(open);
  open.config()["linux"].erase("seccomp");
  open.args({"/bin/zrun-syscall", std::to_string(SYS_keyctl), "0", "-3"});
  RunResult r2 = rt.run(open, rt.new_id());
  ASSERT_EQ(r2.code, 0) << r2;
  EXPECT_EQ(parse_kv(r2.out)["errno"], "0") << r2;
}

}  // namespace
}  // namespace zrun::test
