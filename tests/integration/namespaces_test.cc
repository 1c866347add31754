// Each namespace type: new ones differ from the host's, joined ones match their target,
// and each one's visible effect (PID 1, hostname, lo up, id mapping, clock offsets).
#include <sys/stat.h>

#include <cstdlib>

#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

class NamespacesTest : public ContainerTest {};

TEST_F(NamespacesTest, PidNamespaceMakesProcessPid1) {
  Bundle b(rt);
  b.probe({"pid"});
  auto kv = run_kv(b);
  EXPECT_EQ(kv["pid"], "1");
  EXPECT_EQ(kv["ppid"], "0");
}

TEST_F(NamespacesTest, UtsNamespaceSetsHostname) {
  Bundle b(rt);
  b.config()["hostname"] = "box-1";
  b.probe({"hostname"});
  EXPECT_EQ(run_kv(b)["hostname"], "box-1");
}

TEST_F(NamespacesTest, UtsNamespaceSetsDomainname) {
  if (!runtime_is_zrun()) GTEST_SKIP() << "runc 1.1 ignores `domainname` (added in runc 1.2)";
  Bundle b(rt);
  b.config()["domainname"] = "example.test";
  b.probe({"hostname"});
  EXPECT_EQ(run_kv(b)["domainname"], "example.test");
}

TEST_F(NamespacesTest, NewNamespacesDifferFromHost) {
  Bundle b(rt);
  for (const char* t : {"pid", "network", "ipc", "uts", "mount", "cgroup"}) b.add_namespace(t);
  b.probe({"ns"});
  auto kv = run_kv(b);
  // /proc/self/ns names differ from the spec's ("network" -> "net", "mount" -> "mnt").
  for (const char* t : {"pid", "net", "ipc", "uts", "mnt", "cgroup"}) {
    ASSERT_TRUE(kv.count(std::string("ns.") + t)) << t;
    EXPECT_NE(std::stoull(kv[std::string("ns.") + t]), host_ns_inode(t)) << t;
  }
}

TEST_F(NamespacesTest, SharedNamespacesMatchHostWhenNotRequested) {
  Bundle b(rt);
  b.remove_namespace("network").remove_namespace("ipc").remove_namespace("cgroup");
  b.probe({"ns"});
  auto kv = run_kv(b);
  EXPECT_EQ(std::stoull(kv["ns.net"]), host_ns_inode("net"));
  EXPECT_EQ(std::stoull(kv["ns.ipc"]), host_ns_inode("ipc"));
}

TEST_F(NamespacesTest, NetworkNamespaceHasLoopbackUp) {
  Bundle b(rt);
  b.add_namespace("network");
  b.args({"/bin/sh", "-c", "cat /sys/class/net/lo/flags; ls /sys/class/net"});
  RunResult r = rt.run(b, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  unsigned long flags = std::strtoul(r.out.c_str(), nullptr, 16);
  EXPECT_TRUE(flags & 0x1) << "IFF_UP not set: " << r.out;
  // A fresh network namespace has only lo.
  EXPECT_EQ(r.out.substr(r.out.find('\n') + 1), "lo\n") << r.out;
}

TEST_F(NamespacesTest, JoinNamespacesByPath) {
  Bundle a(rt);
  a.probe({"sleep", "30"});
  std::string ida = rt.new_id("a");
  ASSERT_EQ(rt.run(a, ida, {"-d"}).code, 0);
  int pid = rt.state_json(ida).value("pid", 0);
  ASSERT_GT(pid, 0);

  Bundle b(rt);
  std::string proc = "/proc/" + std::to_string(pid) + "/ns/";
  b.add_namespace("network", proc + "net").add_namespace("uts", proc + "uts");
  b.add_namespace("ipc", proc + "ipc");
  b.config().erase("hostname");  // joining a uts namespace: the spec must not set it
  b.probe({"ns"});
  auto kv = run_kv(b);
  EXPECT_EQ(std::stoull(kv["ns.net"]), pid_ns_inode(pid, "net"));
  EXPECT_EQ(std::stoull(kv["ns.uts"]), pid_ns_inode(pid, "uts"));
  EXPECT_EQ(std::stoull(kv["ns.ipc"]), pid_ns_inode(pid, "ipc"));
  EXPECT_NE(std::stoull(kv["ns.mnt"]), pid_ns_inode(pid, "mnt"));
  EXPECT_EQ(rt.del(ida, true).code, 0);
}

void add_user_mapping(Bundle& b, unsigned host_id) {
  b.add_namespace("user");
  Json map = Json::array({{{"containerID", 0}, {"hostID", host_id}, {"size", 65536}}});
  b.config()["linux"]["uidMappings"] = map;
  b.config()["linux"]["gidMappings"] = map;
  // cgroup v1 hierarchies cannot be mounted from a user namespace.
  b.remove_mount("/sys/fs/cgroup");
}

TEST_F(NamespacesTest, UserNamespaceMapsRootToHostId) {
  Bundle b(rt);
  add_user_mapping(b, 100000);
  b.probe({"id"});
  auto kv = run_kv(b);
  EXPECT_EQ(kv["uid"], "0");
  EXPECT_EQ(kv["gid"], "0");

  Bundle c(rt);
  add_user_mapping(c, 100000);
  c.probe({"sleep", "30"});
  std::string id = rt.new_id();
  ASSERT_EQ(rt.create(c, id).code, 0) << c.err();
  int pid = rt.state_json(id).value("pid", 0);
  struct stat st;
  ASSERT_EQ(::stat(("/proc/" + std::to_string(pid)).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 100000u);
  EXPECT_EQ(st.st_gid, 100000u);
  std::string uid_map = read_file("/proc/" + std::to_string(pid) + "/uid_map");
  EXPECT_NE(uid_map.find("100000"), std::string::npos) << uid_map;
  EXPECT_NE(pid_ns_inode(pid, "user"), host_ns_inode("user"));
  EXPECT_EQ(rt.del(id, true).code, 0);
}

TEST_F(NamespacesTest, UserNamespaceNonRootUser) {
  Bundle b(rt);
  add_user_mapping(b, 200000);
  b.config()["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  b.probe({"id"});
  auto kv = run_kv(b);
  EXPECT_EQ(kv["uid"], "1000");
  EXPECT_EQ(kv["gid"], "1000");
}

TEST_F(NamespacesTest, TimeNamespaceOffsets) {
  if (!rt.supports_namespace("time"))
    GTEST_SKIP() << rt.path() << " does not list the time namespace in `features`";
  Bundle b(rt);
  b.add_namespace("time");
  b.config()["linux"]["timeOffsets"] = {{"monotonic", {{"secs", 86400}, {"nanosecs", 0}}},
                                        {"boottime", {{"secs", 3 * 86400}, {"nanosecs", 0}}}};
  b.probe({"sleep", "30"});
  std::string id = rt.new_id();
  ASSERT_EQ(rt.create(b, id).code, 0) << b.err();
  int pid = rt.state_json(id).value("pid", 0);
  // "monotonic      86400         0" (columns are padded): compare whitespace-split fields.
  std::istringstream off(read_file("/proc/" + std::to_string(pid) + "/timens_offsets"));
  std::map<std::string, std::string> secs;
  std::string clock, s, ns;
  while (off >> clock >> s >> ns) secs[clock] = s + " " + ns;
  EXPECT_EQ(secs["monotonic"], "86400 0");
  EXPECT_EQ(secs["boottime"], "259200 0");
  EXPECT_NE(pid_ns_inode(pid, "time"), host_ns_inode("time"));
  EXPECT_EQ(rt.del(id, true).code, 0);

  // /proc/uptime inside reflects the boottime offset.
  Bundle u(rt);
  u.add_namespace("time");
  u.config()["linux"]["timeOffsets"] = {{"boottime", {{"secs", 3 * 86400}, {"nanosecs", 0}}}};
  u.probe({"cat", "/proc/uptime"});
  RunResult r = rt.run(u, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  double host_uptime = std::strtod(read_file("/proc/uptime").c_str(), nullptr);
  EXPECT_GT(std::strtod(r.out.c_str(), nullptr), host_uptime + 3 * 86400 - 10) << r.out;
}

}  // namespace
}  // namespace zrun::test
