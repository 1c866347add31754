// exec: a second process joins the running container's namespaces, cgroup and security
// context; exit codes, errors, --detach/--pid-file, --process, -u/-e/--cwd/--cap, paused and
// stopped containers.
#include <gtest/gtest.h>

#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

class ExecTest : public ContainerTest {
 protected:
  // A running container whose init sleeps; returns its id.
  std::string start_sleeper(Bundle& b) {
    b.probe({"sleep", "60"});
    std::string id = rt.new_id("ex");
    EXPECT_EQ(rt.run(b, id, {"-d"}).code, 0) << b.err();
    EXPECT_EQ(rt.status(id), "running");
    return id;
  }
};

TEST_F(ExecTest, JoinsNamespacesOfTheContainer) {
  Bundle b(rt);
  std::string id = start_sleeper(b);
  int init = rt.state_json(id).value("pid", 0);
  auto r = rt.exec({"exec", id, "/bin/zrun-probe", "ns"});
  ASSERT_EQ(r.code, 0) << r;
  auto kv = parse_kv(r.out);
  for (const char* ns : {"pid", "mnt", "net", "ipc", "uts", "cgroup"})
    EXPECT_EQ(kv[std::string("ns.") + ns], std::to_string(pid_ns_inode(init, ns))) << ns << "\n"
                                                                                   << r.out;
  auto h = rt.exec({"exec", id, "/bin/hostname"});
  EXPECT_EQ(h.out, "zrun-test\n");
  // Its PID inside the container's namespace is not 1 (the init is).
  auto p = parse_kv(rt.exec({"exec", id, "/bin/zrun-probe", "pid"}).out);
  EXPECT_NE(p["pid"], "1");
  EXPECT_NE(p["pid"], "");
}

TEST_F(ExecTest, ExitCodeAndErrors) {
  Bundle b(rt);
  std::string id = start_sleeper(b);
  EXPECT_EQ(rt.exec({"exec", id, "/bin/zrun-probe", "exit", "42"}).code, 42);
  auto missing = rt.exec({"exec", id, "nosuchcmd"});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("executable file not found"), std::string::npos) << missing;
  if (runtime_is_zrun()) {
    EXPECT_EQ(missing.code, 255);
  }
  auto noexec = rt.exec({"exec", id, "/etc/passwd"});
  EXPECT_NE(noexec.code, 0);
  EXPECT_NE(noexec.err.find("permission denied"), std::string::npos) << noexec;
  expect_error(rt.exec({"exec", "nosuch-container", "true"}), "does not exist");
}

TEST_F(ExecTest, UserEnvCwdAndCaps) {
  Bundle b(rt);
  std::string id = start_sleeper(b);
  auto r = rt.exec({"exec", "-u", "1000:1001", "--cwd", "/tmp", "-e", "ZT=42", id, "/bin/sh", "-c",
                    "/bin/zrun-probe id; /bin/zrun-probe cwd; echo ZT=$ZT"});
  ASSERT_EQ(r.code, 0) << r;
  auto kv = parse_kv(r.out);
  EXPECT_EQ(kv["uid"], "1000");
  EXPECT_EQ(kv["gid"], "1001");
  EXPECT_EQ(kv["cwd"], "/tmp");
  EXPECT_EQ(kv["ZT"], "42");
  // --cap adds to the process's sets: CAP_SYS_ADMIN (bit 21) is not in the default spec.
  auto caps =
      parse_kv(rt.exec({"exec", "--cap", "CAP_SYS_ADMIN", id, "/bin/zrun-probe", "caps"}).out);
  auto plain = parse_kv(rt.exec({"exec", id, "/bin/zrun-probe", "caps"}).out);
  EXPECT_NE(caps["CapEff"], plain["CapEff"]);
  EXPECT_EQ(std::stoull(caps["CapEff"], nullptr, 16) & (1ULL << 21), 1ULL << 21);
  EXPECT_EQ(std::stoull(plain["CapEff"], nullptr, 16) & (1ULL << 21), 0u);
}

TEST_F(ExecTest, ProcessFileAndDetachWithPidFile) {
  Bundle b(rt);
  std::string id = start_sleeper(b);
  TempDir tmp;
  write_file(tmp / "process.json",
             R"({"args":["/bin/sh","-c","echo from-file $A"],"cwd":"/","env":["A=1"],)"
             R"("user":{"uid":0,"gid":0}})");
  auto r = rt.exec({"exec", "--process", tmp / "process.json", id});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "from-file 1\n");

  auto d = rt.exec({"exec", "-d", "--pid-file", tmp / "pid", id, "/bin/sleep", "30"});
  ASSERT_EQ(d.code, 0) << d;
  int pid = std::stoi(read_file(tmp / "pid"));
  EXPECT_GT(pid, 0);
  // The detached process is in the container's cgroup and pid namespace.
  int init = rt.state_json(id).value("pid", 0);
  EXPECT_EQ(pid_ns_inode(pid, "pid"), pid_ns_inode(init, "pid"));
  EXPECT_EQ(read_file("/proc/" + std::to_string(pid) + "/cgroup"),
            read_file("/proc/" + std::to_string(init) + "/cgroup"));
}

TEST_F(ExecTest, StoppedContainerIsAnError) {
  Bundle b(rt);
  b.probe({"exit", "0"});
  std::string id = rt.new_id("ex");
  ASSERT_EQ(rt.run(b, id, {"-d"}).code, 0);
  EXPECT_EQ(rt.wait_status(id, "stopped"), "stopped");
  expect_error(rt.exec({"exec", id, "/bin/true"}), "stopped");
}

TEST_F(ExecTest, StdinIsPassedThrough) {
  Bundle b(rt);
  std::string id = start_sleeper(b);
  ExecOptions o;
  o.stdin_data = std::string(3 << 20, 'x');  // 3 MiB round trip
  auto r = rt.exec({"exec", id, "/bin/wc", "-c"}, o);
  ASSERT_EQ(r.code, 0) << r;
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  EXPECT_EQ(out.substr(out.find_first_not_of(' ')), std::to_string(3 << 20));
}

}  // namespace
}  // namespace zrun::test
