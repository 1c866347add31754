// Process attributes: args/env/cwd, user uid/gid/additionalGids/umask, rlimits,
// oomScoreAdj, noNewPrivileges, the five capability sets, stdio and --preserve-fds.
#include <fcntl.h>
#include <unistd.h>

#include <set>
#include <sstream>

#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

class ProcessTest : public ContainerTest {};

std::set<std::string> split_set(const std::string& s) {
  std::set<std::string> out;
  std::istringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.insert(item);
  return out;
}

TEST_F(ProcessTest, ArgsEnvCwd) {
  Bundle b(rt);
  b.env("FOO=bar baz").env("PATH=/bin:/custom");
  b.config()["process"]["cwd"] = "/tmp";
  b.args({"/bin/sh", "-c", "/bin/zrun-probe cwd; /bin/zrun-probe env; echo \"argv=$0|$1\"", "a0",
          "a1"});
  RunResult r = rt.run(b, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  auto kv = parse_kv(r.out);
  EXPECT_EQ(kv["cwd"], "/tmp");
  EXPECT_EQ(kv["FOO"], "bar baz");
  EXPECT_EQ(kv["PATH"], "/bin:/custom");
  EXPECT_EQ(kv["argv"], "a0|a1");
}

TEST_F(ProcessTest, UserUidGidAdditionalGids) {
  Bundle b(rt);
  b.config()["process"]["user"] = {{"uid", 1000}, {"gid", 1001}, {"additionalGids", {5, 100}}};
  b.probe({"id"});
  auto kv = run_kv(b);
  EXPECT_EQ(kv["uid"], "1000");
  EXPECT_EQ(kv["euid"], "1000");
  EXPECT_EQ(kv["gid"], "1001");
  EXPECT_EQ(kv["egid"], "1001");
  auto groups = split_set(kv["groups"]);
  EXPECT_TRUE(groups.count("5") && groups.count("100")) << kv["groups"];
  EXPECT_FALSE(groups.count("0")) << "root's supplementary groups leaked: " << kv["groups"];
}

TEST_F(ProcessTest, Umask) {
  Bundle b(rt);
  b.config()["process"]["user"]["umask"] = 027;
  b.probe({"umask"});
  EXPECT_EQ(run_kv(b)["umask"], "0027");
}

TEST_F(ProcessTest, Rlimits) {
  Bundle b(rt);
  b.config()["process"]["rlimits"] =
      Json::array({{{"type", "RLIMIT_NOFILE"}, {"soft", 123}, {"hard", 456}},
                   {{"type", "RLIMIT_CORE"}, {"soft", 0}, {"hard", 1024}},
                   {{"type", "RLIMIT_NPROC"}, {"soft", 500}, {"hard", 600}}});
  b.probe({"rlimits"});
  auto kv = run_kv(b);
  EXPECT_EQ(kv["RLIMIT_NOFILE"], "123:456");
  EXPECT_EQ(kv["RLIMIT_CORE"], "0:1024");
  EXPECT_EQ(kv["RLIMIT_NPROC"], "500:600");
}

TEST_F(ProcessTest, OomScoreAdj) {
  Bundle b(rt);
  b.config()["process"]["oomScoreAdj"] = 500;
  b.probe({"cat", "/proc/self/oom_score_adj"});
  RunResult r = rt.run(b, rt.new_id());
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "500\n");
}

TEST_F(ProcessTest, NoNewPrivileges) {
  for (bool on : {true, false}) {
    Bundle b(rt);
    b.config()["process"]["noNewPrivileges"] = on;
    b.probe({"nnp"});
    EXPECT_EQ(run_kv(b)["NoNewPrivs"], on ? "1" : "0");
  }
}

// CAP_CHOWN = bit 0 (0x1), CAP_KILL = bit 5 (0x20).
Json caps_json() {
  return {{"bounding", {"CAP_KILL", "CAP_CHOWN"}},
          {"effective", {"CAP_KILL"}},
          {"permitted", {"CAP_KILL", "CAP_CHOWN"}},
          {"inheritable", {"CAP_CHOWN"}},
          {"ambient", {"CAP_CHOWN"}}};
}

TEST_F(ProcessTest, CapabilitiesNonRootUser) {
  Bundle b(rt);
  b.config()["process"]["capabilities"] = caps_json();
  b.config()["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  b.probe({"caps"});
  auto kv = run_kv(b);
  // After execve as non-root: permitted = effective = ambient (capabilities(7)).
  EXPECT_EQ(kv["CapBnd"], "0000000000000021");
  EXPECT_EQ(kv["CapInh"], "0000000000000001");
  EXPECT_EQ(kv["CapAmb"], "0000000000000001");
  EXPECT_EQ(kv["CapPrm"], "0000000000000001");
  EXPECT_EQ(kv["CapEff"], "0000000000000001");
}

TEST_F(ProcessTest, CapabilitiesRoot) {
  Bundle b(rt);
  b.config()["process"]["capabilities"] = caps_json();
  b.probe({"caps"});
  auto kv = run_kv(b);
  // Root gets the whole bounding set as permitted and effective on execve.
  EXPECT_EQ(kv["CapBnd"], "0000000000000021");
  EXPECT_EQ(kv["CapPrm"], "0000000000000021");
  EXPECT_EQ(kv["CapEff"], "0000000000000021");
  EXPECT_EQ(kv["CapInh"], "0000000000000001");
  EXPECT_EQ(kv["CapAmb"], "0000000000000001");
}

// runc 1.1's own `spec` lists ambient caps without inheritable ones; such bundles run
// (the raise is skipped, as runc does) instead of failing create.
TEST_F(ProcessTest, AmbientWithoutInheritableStillRuns) {
  Bundle b(rt);
  b.config()["process"]["capabilities"] = {{"bounding", {"CAP_KILL"}},
                                           {"effective", {"CAP_KILL"}},
                                           {"permitted", {"CAP_KILL"}},
                                           {"ambient", {"CAP_KILL"}}};
  b.probe({"caps"});
  auto kv = run_kv(b);
  EXPECT_EQ(kv["CapAmb"], "0000000000000000");
  EXPECT_EQ(kv["CapBnd"], "0000000000000020");
}

TEST_F(ProcessTest, NoCapabilities) {
  Bundle b(rt);
  b.config()["process"]["capabilities"] = Json::object();
  b.probe({"caps"});
  auto kv = run_kv(b);
  for (const char* k : {"CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"})
    EXPECT_EQ(kv[k], "0000000000000000") << k;
}

TEST_F(ProcessTest, StdinPassesThrough) {
  Bundle b(rt);
  b.args({"/bin/sh", "-c", "read line; echo \"got=$line\"; echo oops >&2"});
  ExecOptions o;
  o.stdin_data = "hello\n";
  RunResult r = rt.run(b, rt.new_id(), {}, o);
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "got=hello\n");
  EXPECT_NE(r.err.find("oops"), std::string::npos) << r;
}

TEST_F(ProcessTest, OnlyStdioFdsAreOpen) {
  Bundle b(rt);
  b.probe({"fds"});
  auto kv = run_kv(b);
  std::set<std::string> fds;
  for (const auto& [k, v] : kv)
    if (k.starts_with("fd.")) fds.insert(k);
  EXPECT_EQ(fds, (std::set<std::string>{"fd.0", "fd.1", "fd.2"}));
}

TEST_F(ProcessTest, PreserveFds) {
  TempDir dir;
  write_file(dir / "passed", "through-fd-3");
  int fd = ::open((dir / "passed").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  Bundle b(rt);
  b.probe({"cat", "/proc/self/fd/3"});
  ExecOptions o;
  o.pass_fds = {fd};
  RunResult r = rt.run(b, rt.new_id(), {"--preserve-fds", "1"}, o);
  ::close(fd);
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "through-fd-3");
}

// Socket activation: LISTEN_FDS in the runtime's environment, addressed to the runtime
// (LISTEN_PID = its pid, sd_listen_fds(3) rules), passes fds 3.. through and tells the
// container process (LISTEN_FDS, LISTEN_PID=1), as runc does.
TEST_F(ProcessTest, ListenFdsArePassedThrough) {
  TempDir dir;
  write_file(dir / "sock", "activated");
  int fd = ::open((dir / "sock").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  Bundle b(rt);
  b.args({"/bin/sh", "-c",
          "cat /proc/self/fd/3; echo; echo LISTEN_FDS=$LISTEN_FDS; echo LISTEN_PID=$LISTEN_PID"});
  b.save();
  std::string id = rt.new_id();
  auto run = [&](const std::string& listen_pid) {
    ExecOptions o;
    o.pass_fds = {fd};
    return run_command({"/bin/sh", "-c",
                        "LISTEN_FDS=1 LISTEN_PID=" + listen_pid + " exec " + rt.path() +
                            " --root " + rt.root() + " run -b " + b.path() + " " + id},
                       o);
  };
  RunResult r = run("$$");  // the shell's pid is the runtime's after exec
  ASSERT_EQ(r.code, 0) << r;
  auto kv = parse_kv(r.out);
  EXPECT_EQ(r.out.substr(0, 9), "activated") << r;
  EXPECT_EQ(kv["LISTEN_FDS"], "1");
  EXPECT_EQ(kv["LISTEN_PID"], "1");
  // Addressed to another process: not ours to pass on.
  RunResult other = run("1");
  ::close(fd);
  EXPECT_EQ(parse_kv(other.out)["LISTEN_FDS"], "") << other;
}

}  // namespace
}  // namespace zrun::test
