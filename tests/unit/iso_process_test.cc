// sysctl keys, rlimits, find_executable, close_fds_above, finalize_identity (root only).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>

#include "base/sys.h"
#include "isolation/process.h"

namespace zrun::iso {
namespace {

// Run `fn` in a forked child; returns its exit code (0 = the checks passed).
int in_child(const std::function<int()>& fn) {
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(Sysctl, DottedKeys) {
  EXPECT_EQ(*sysctl_path("net.ipv4.ip_forward"), "/proc/sys/net/ipv4/ip_forward");
  EXPECT_EQ(*sysctl_path("kernel.shmmax"), "/proc/sys/kernel/shmmax");
  EXPECT_EQ(*sysctl_path("net/ipv4/conf/eth0.100/rp_filter"),
            "/proc/sys/net/ipv4/conf/eth0.100/rp_filter");
}

TEST(Sysctl, RejectsEscapes) {
  for (const char* bad : {"..", "net/../../etc/passwd", "kernel..x", ".kernel", "kernel.",
                          "/kernel/x", "a/./b", ""}) {
    auto r = sysctl_path(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().msg.find(std::string("`") + bad + "`"), std::string::npos) << r.error().msg;
  }
  auto r = apply_sysctl({{"net..x", "1"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().msg, "invalid sysctl key `net..x`");
}

TEST(Sysctl, ErrorNamesKey) {
  auto r = apply_sysctl({{"kernel.zrun_no_such_key", "1"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().msg, "set sysctl `kernel.zrun_no_such_key`");
  EXPECT_EQ(r.error().err, ENOENT);
}

TEST(Rlimits, AppliesAndNamesResource) {
  EXPECT_EQ(in_child([] {
              spec::Rlimit r{RLIMIT_NOFILE, "RLIMIT_NOFILE", 512, 256};
              if (!apply_rlimits({r}).ok()) return 1;
              struct rlimit got {};
              getrlimit(RLIMIT_NOFILE, &got);
              return got.rlim_cur == 256 && got.rlim_max == 512 ? 0 : 2;
            }),
            0);
  spec::Rlimit bad{RLIMIT_NOFILE, "RLIMIT_NOFILE", 1, 2};  // soft > hard
  auto r = apply_rlimits({bad});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().msg, "setrlimit `RLIMIT_NOFILE`");
}

// Rootless (no CAP_SYS_RESOURCE): raising a hard limit is EPERM, and the message says why.
TEST(Rlimits, RaisingHardLimitWithoutCapabilityExplains) {
  EXPECT_EQ(in_child([] {
              if (::geteuid() == 0 && ::setresuid(65534, 65534, 65534) != 0) return 1;
              struct rlimit low {
                64, 128
              };
              if (::setrlimit(RLIMIT_NOFILE, &low) != 0) return 2;
              spec::Rlimit r{RLIMIT_NOFILE, "RLIMIT_NOFILE", 256, 256};
              auto res = apply_rlimits({r});
              if (res.ok()) return 3;
              if (res.error().err != EPERM) return 4;
              const std::string& m = res.error().msg;
              return m.find("setrlimit `RLIMIT_NOFILE`: raising the hard limit above 128") == 0 &&
                             m.find("CAP_SYS_RESOURCE") != std::string::npos
                         ? 0
                         : 5;
            }),
            0);
}

class FindExecutable : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zrun-iso-exec-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(base::mkdir_p(dir_ + "/bin").ok());
    ASSERT_TRUE(base::mkdir_p(dir_ + "/sbin").ok());
    ASSERT_TRUE(base::mkdir_p(dir_ + "/bin/adir").ok());
    ASSERT_TRUE(base::write_file(dir_ + "/bin/tool", "#!/bin/sh\n", 0, 0755).ok());
    ASSERT_TRUE(base::write_file(dir_ + "/bin/noexec", "x", 0, 0644).ok());
    ASSERT_TRUE(base::write_file(dir_ + "/sbin/noexec", "#!/bin/sh\n", 0, 0755).ok());
    ASSERT_EQ(chmod((dir_ + "/bin/noexec").c_str(), 0644), 0);
  }
  void TearDown() override { (void)base::remove_tree(dir_); }
  std::vector<std::string> env() const {
    return {"A=1", "PATH=" + dir_ + "/bin:" + dir_ + "/sbin"};
  }
  std::string dir_;
};

TEST_F(FindExecutable, SearchesPath) {
  EXPECT_EQ(*find_executable("tool", env(), "/"), dir_ + "/bin/tool");
  // A non-executable match earlier in PATH is skipped.
  EXPECT_EQ(*find_executable("noexec", env(), "/"), dir_ + "/sbin/noexec");
}

TEST_F(FindExecutable, NotFound) {
  auto r = find_executable("foo", env(), "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().text(), "exec: \"foo\": executable file not found in $PATH");
  // Directories are not executables.
  r = find_executable("adir", env(), "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().text(), "exec: \"adir\": executable file not found in $PATH");
}

TEST_F(FindExecutable, DefaultPathWhenUnset) {
  auto r = find_executable("sh", {"HOME=/"}, "/");
  ASSERT_TRUE(r.ok()) << r.error().text();
  EXPECT_TRUE(*r == "/usr/bin/sh" || *r == "/bin/sh" || *r == "/usr/sbin/sh") << *r;
}

TEST_F(FindExecutable, ExplicitPaths) {
  EXPECT_EQ(*find_executable(dir_ + "/bin/tool", {}, "/"), dir_ + "/bin/tool");
  EXPECT_EQ(*find_executable("bin/tool", {}, dir_), dir_ + "/bin/tool");
  EXPECT_EQ(*find_executable("./tool", {}, dir_ + "/bin"), dir_ + "/bin/./tool");
  auto r = find_executable(dir_ + "/bin/noexec", env(), "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().text(), "exec: \"" + dir_ + "/bin/noexec\": permission denied");
  r = find_executable(dir_ + "/bin/adir", env(), "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().text(), "exec: \"" + dir_ + "/bin/adir\": permission denied");
  r = find_executable("/nonexistent/x", env(), "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().text(),
            "exec: \"/nonexistent/x\": stat /nonexistent/x: no such file or directory");
}

TEST(CloseFds, ClosesAboveKeep) {
  EXPECT_EQ(in_child([] {
              int a = open("/dev/null", O_RDONLY);
              int b = open("/dev/null", O_RDONLY);
              if (a < 0 || b <= a) return 1;
              if (!close_fds_above(a).ok()) return 2;
              if (fcntl(a, F_GETFD) < 0) return 3;
              return fcntl(b, F_GETFD) < 0 && errno == EBADF ? 0 : 4;
            }),
            0);
}

TEST(OomScoreAdj, Writes) {
  EXPECT_EQ(in_child([] {
              if (!set_oom_score_adj(::getpid(), 500).ok()) return 1;
              auto s = base::read_file("/proc/self/oom_score_adj");
              return s.ok() && base::trim(*s) == "500" ? 0 : 2;
            }),
            0);
}

bool has_cap(cap_t c, cap_value_t v, cap_flag_t f) {
  cap_flag_value_t val = CAP_CLEAR;
  cap_get_flag(c, v, f, &val);
  return val == CAP_SET;
}

TEST(FinalizeIdentity, SwitchesUserAndCapabilities) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  char tmpl[] = "/tmp/zrun-iso-cwd-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string cwd = tmpl;
  ASSERT_EQ(chmod(tmpl, 0755), 0);
  int rc = in_child([&] {
    spec::Process p;
    p.cwd = cwd;
    p.user.uid = 1234;
    p.user.gid = 2345;
    p.user.additional_gids = {3456, 4567};
    p.user.umask = 027;
    p.no_new_privileges = true;
    spec::Capabilities caps;
    caps.bounding = {CAP_KILL, CAP_NET_BIND_SERVICE, CAP_CHOWN};
    caps.permitted = {CAP_KILL, CAP_NET_BIND_SERVICE};
    caps.effective = {CAP_KILL, CAP_NET_BIND_SERVICE};
    caps.inheritable = {CAP_NET_BIND_SERVICE};
    caps.ambient = {CAP_NET_BIND_SERVICE};
    p.capabilities = caps;
    auto r = finalize_identity(p);
    if (!r.ok()) {
      fprintf(stderr, "finalize_identity: %s\n", r.error().text().c_str());
      return 1;
    }
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    if (ru != 1234 || eu != 1234 || su != 1234 || rg != 2345 || eg != 2345 || sg != 2345) return 2;
    gid_t groups[8];
    if (getgroups(8, groups) != 2 || groups[0] != 3456 || groups[1] != 4567) return 3;
    mode_t old = umask(0);
    if (old != 027) return 4;
    char buf[256];
    if (!getcwd(buf, sizeof(buf)) || cwd != buf) return 5;
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return 6;
    if (cap_get_bound(CAP_KILL) != 1 || cap_get_bound(CAP_SYS_ADMIN) != 0 ||
        cap_get_bound(CAP_CHOWN) != 1)
      return 7;
    cap_t c = cap_get_proc();
    bool ok = has_cap(c, CAP_KILL, CAP_EFFECTIVE) && has_cap(c, CAP_KILL, CAP_PERMITTED) &&
              !has_cap(c, CAP_KILL, CAP_INHERITABLE) &&
              has_cap(c, CAP_NET_BIND_SERVICE, CAP_INHERITABLE) &&
              !has_cap(c, CAP_SYS_ADMIN, CAP_PERMITTED) && !has_cap(c, CAP_CHOWN, CAP_PERMITTED) &&
              !has_cap(c, CAP_CHOWN, CAP_EFFECTIVE);
    cap_free(c);
    if (!ok) return 8;
    if (cap_get_ambient(CAP_NET_BIND_SERVICE) != 1 || cap_get_ambient(CAP_KILL) != 0) return 9;
    return 0;
  });
  rmdir(tmpl);
  EXPECT_EQ(rc, 0);
}

TEST(FinalizeIdentity, NoCapabilitiesMeansEmptySets) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  int rc = in_child([] {
    spec::Process p;  // root, no capabilities object
    if (!finalize_identity(p).ok()) return 1;
    cap_t c = cap_get_proc();
    cap_t empty = cap_init();
    bool same = cap_compare(c, empty) == 0;
    cap_free(c);
    cap_free(empty);
    if (!same) return 2;
    for (int i = 0; i < cap_max_bits(); ++i)
      if (cap_get_bound(i) != 0) return 3;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST(FinalizeIdentity, ChdirErrorNamesCwd) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  int rc = in_child([] {
    spec::Process p;
    p.cwd = "/nonexistent-zrun-cwd";
    auto r = finalize_identity(p);
    return !r.ok() && r.error().msg == "chdir `/nonexistent-zrun-cwd`" ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
}

}  // namespace
}  // namespace zrun::iso
