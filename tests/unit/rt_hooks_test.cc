// OCI hooks: real /bin/sh hooks read the state on stdin, get exactly their env, and fail
// with the phase, path and reason.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <csignal>

#include "base/sys.h"
#include "runtime/hooks.h"

namespace zrun::rt {
namespace {

class HooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zrun-hooks-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(base::remove_tree(dir_).ok()); }

  spec::Hook sh(const std::string& script) {
    spec::Hook h;
    h.path = "/bin/sh";
    h.args = {"sh", "-c", script};
    return h;
  }
  std::string read(const std::string& name) {
    auto r = base::read_file(dir_ + "/" + name);
    return r.ok() ? *r : "<missing: " + r.error().text() + ">";
  }

  std::string dir_;
};

TEST_F(HooksTest, StateOnStdin) {
  const std::string state = R"({"ociVersion":"1.2.0","id":"c1","status":"creating"})";
  auto r = run_hooks({sh("cat > " + dir_ + "/out")}, state, "prestart");
  ASSERT_TRUE(r.ok()) << r.error().text();
  EXPECT_EQ(read("out"), state);
}

TEST_F(HooksTest, RunsInOrder) {
  auto r = run_hooks({sh("echo one >> " + dir_ + "/log"), sh("echo two >> " + dir_ + "/log")}, "{}",
                     "poststart");
  ASSERT_TRUE(r.ok()) << r.error().text();
  EXPECT_EQ(read("log"), "one\ntwo\n");
}

TEST_F(HooksTest, ExactEnv) {
  auto h = sh("env > " + dir_ + "/env");
  h.env = {"FOO=bar", "ZRUN_X=1"};
  ASSERT_TRUE(run_hooks({h}, "{}", "createRuntime").ok());
  std::string env = read("env");
  EXPECT_NE(env.find("FOO=bar\n"), std::string::npos) << env;
  EXPECT_NE(env.find("ZRUN_X=1\n"), std::string::npos) << env;
  // Nothing of ours leaks (dash adds PWD itself).
  EXPECT_EQ(env.find("HOME="), std::string::npos) << env;
  EXPECT_EQ(env.find("PATH=/"), std::string::npos) << env;
}

TEST_F(HooksTest, NonZeroExitStopsTheList) {
  auto r = run_hooks({sh("exit 3"), sh("touch " + dir_ + "/ran")}, "{}", "createContainer");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().text(), "createContainer hook `/bin/sh`: exit status 3");
  EXPECT_FALSE(base::path_exists(dir_ + "/ran"));
}

TEST_F(HooksTest, KilledBySignal) {
  auto r = run_hooks({sh("kill -TERM $$")}, "{}", "poststop");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().text(), "poststop hook `/bin/sh`: killed by signal 15");
}

TEST_F(HooksTest, Timeout) {
  auto h = sh("exec sleep 30");  // exec: no orphaned sleep holding ctest's pipe
  h.timeout = 1;
  auto start = std::chrono::steady_clock::now();
  auto r = run_hooks({h}, "{}", "prestart");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().text(), "prestart hook `/bin/sh`: timed out after 1 s");
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST_F(HooksTest, TimeoutNotHitWhenFast) {
  auto h = sh("cat >/dev/null");
  h.timeout = 10;
  auto r = run_hooks({h}, "{}", "prestart");
  EXPECT_TRUE(r.ok()) << r.error().text();
}

TEST_F(HooksTest, HookIgnoringLargeStdinIsFine) {
  // Bigger than a pipe buffer: our write hits EPIPE once the hook exits; no SIGPIPE.
  std::string big(4 << 20, 'x');
  auto r = run_hooks({sh("exit 0")}, big, "prestart");
  EXPECT_TRUE(r.ok()) << r.error().text();
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST_F(HooksTest, LargeStateIsDeliveredWhole) {
  std::string big(1 << 20, 'y');
  auto r = run_hooks({sh("wc -c > " + dir_ + "/n")}, big, "prestart");
  ASSERT_TRUE(r.ok()) << r.error().text();
  EXPECT_EQ(std::string(base::trim(read("n"))), std::to_string(big.size()));
}

TEST_F(HooksTest, Argv0FromArgs) {
  // busybox picks the applet from argv[0], so this only works if args[0] is passed as is.
  spec::Hook h;
  h.path = "/bin/busybox";
  h.args = {"sh", "-c", "echo ok > " + dir_ + "/a0"};
  auto r = run_hooks({h}, "{}", "startContainer");
  ASSERT_TRUE(r.ok()) << r.error().text();
  EXPECT_EQ(read("a0"), "ok\n");
}

TEST_F(HooksTest, EmptyArgsUsesPath) {
  std::string script = dir_ + "/hook.sh";
  ASSERT_TRUE(base::write_file(script, "#!/bin/sh\ncat > \"$(dirname \"$0\")/st\"\n",
                               O_WRONLY | O_CREAT | O_TRUNC, 0755)
                  .ok());
  spec::Hook h;
  h.path = script;
  auto r = run_hooks({h}, "state!", "prestart");
  ASSERT_TRUE(r.ok()) << r.error().text();
  EXPECT_EQ(read("st"), "state!");
}

TEST_F(HooksTest, OnlyStdioIsInherited) {
  auto leaked = base::open_file("/dev/null", O_RDONLY);  // O_CLOEXEC, must not show up
  ASSERT_TRUE(leaked.ok());
  int raw = ::dup(leaked->get());  // no CLOEXEC: closefrom must still drop it
  ASSERT_GE(raw, 3);
  auto r = run_hooks({sh("exec > " + dir_ + "/fds; ls /proc/$$/fd")}, "{}", "prestart");
  ::close(raw);
  ASSERT_TRUE(r.ok()) << r.error().text();
  EXPECT_EQ(read("fds"), "0\n1\n2\n");
}

TEST_F(HooksTest, MissingBinary) {
  spec::Hook h;
  h.path = dir_ + "/nope";
  auto r = run_hooks({h}, "{}", "prestart");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().text(), "prestart hook `" + h.path + "`: spawn: No such file or directory");
}

TEST_F(HooksTest, EmptyListIsOk) { EXPECT_TRUE(run_hooks({}, "{}", "prestart").ok()); }

}  // namespace
}  // namespace zrun::rt
