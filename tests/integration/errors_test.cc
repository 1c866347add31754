// Error cases: invalid configs name the JSON path (zrun), bad arguments fail cleanly, and
// a failed create leaves no state dir, cgroup, mount or process behind.
#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

class ErrorsTest : public ContainerTest {
 protected:
  // create must fail (with `contains` in zrun's message) and leave the host clean.
  void expect_create_fails(Bundle& b, const std::string& contains = "") {
    std::string id = rt.new_id("err");
    RunResult r = rt.create(b, id);
    expect_error(r, contains);
    EXPECT_EQ(leftovers(rt, b, id), "");
    EXPECT_NE(rt.state(id).code, 0) << "a failed create left a container behind";
  }
};

TEST_F(ErrorsTest, UnknownNamespaceNamesJsonPath) {
  Bundle b(rt);
  size_t index = b.config()["linux"]["namespaces"].size();
  b.config()["linux"]["namespaces"].push_back({{"type", "netx"}});
  expect_create_fails(b, ".linux.namespaces[" + std::to_string(index) + "].type");
  if (runtime_is_zrun()) {
    RunResult r = rt.create(b, rt.new_id());
    EXPECT_NE(r.err.find("netx"), std::string::npos) << r;
    EXPECT_NE(r.err.find("config.json"), std::string::npos) << r;
  }
}

TEST_F(ErrorsTest, UnknownCapabilityNamesJsonPath) {
  if (!runtime_is_zrun()) GTEST_SKIP() << "runc only warns about unknown capabilities";
  Bundle b(rt);
  b.config()["process"]["capabilities"]["bounding"] = {"CAP_KILL", "CAP_BOGUS"};
  expect_create_fails(b, ".process.capabilities.bounding[1]");
}

TEST_F(ErrorsTest, MountWithoutDestination) {
  Bundle b(rt);
  size_t index = b.config()["mounts"].size();
  b.config()["mounts"].push_back({{"type", "tmpfs"}, {"source", "tmpfs"}});
  expect_create_fails(b, ".mounts[" + std::to_string(index) + "]");
}

TEST_F(ErrorsTest, WrongTypeNamesJsonPath) {
  Bundle b(rt);
  b.config()["process"]["args"] = "/bin/true";  // must be an array
  expect_create_fails(b, ".process.args");
}

TEST_F(ErrorsTest, RelativeCwd) {
  Bundle b(rt);
  b.config()["process"]["cwd"] = "tmp";
  expect_create_fails(b, ".process.cwd");
}

TEST_F(ErrorsTest, DuplicateNamespace) {
  if (!runtime_is_zrun()) GTEST_SKIP() << "runc accepts duplicate namespace entries";
  Bundle b(rt);
  b.config()["linux"]["namespaces"].push_back({{"type", "pid"}});
  expect_create_fails(b, "namespaces");
}

TEST_F(ErrorsTest, MalformedJson) {
  Bundle b(rt);
  b.save();
  write_file(b.path() + "/config.json", "{\"ociVersion\": \"1.0.2\", ");
  std::string id = rt.new_id("err");
  RunResult r = rt.exec({"create", "-b", b.path(), id});
  expect_error(r, "config.json");
  EXPECT_EQ(leftovers(rt, b, id), "");
}

TEST_F(ErrorsTest, MissingConfig) {
  TempDir dir;
  std::string id = rt.new_id("err");
  expect_error(rt.exec({"create", "-b", dir.path(), id}), "config.json");
  EXPECT_FALSE(path_exists(rt.root() + "/" + id));
}

TEST_F(ErrorsTest, MissingRootfs) {
  Bundle b(rt);
  b.config()["root"]["path"] = "no-such-rootfs";
  expect_create_fails(b);
}

TEST_F(ErrorsTest, NonexistentExecutableFailsAtCreate) {
  Bundle b(rt);
  b.args({"/nonexistent"});
  expect_create_fails(b, "/nonexistent");
}

TEST_F(ErrorsTest, NonexistentExecutableFailsRun) {
  Bundle b(rt);
  b.args({"/nonexistent"});
  std::string id = rt.new_id("err");
  RunResult r = rt.run(b, id);
  expect_error(r, "/nonexistent");
  EXPECT_EQ(leftovers(rt, b, id), "");
}

TEST_F(ErrorsTest, InvalidMountSourceLeavesNothing) {
  Bundle b(rt);
  b.add_mount("/data", "bind", "/nonexistent/zrun-it-src", {"bind"});
  expect_create_fails(b, "/nonexistent/zrun-it-src");
}

TEST_F(ErrorsTest, UnknownFilesystemTypeLeavesNothing) {
  Bundle b(rt);
  b.add_mount("/data", "nosuchfs", "none");
  expect_create_fails(b, "/data");
}

TEST_F(ErrorsTest, BadSignal) {
  Bundle b(rt);
  b.probe({"sleep", "30"});
  std::string id = rt.new_id();
  ASSERT_EQ(rt.run(b, id, {"-d"}).code, 0);
  expect_error(rt.kill(id, "SIGNOPE"));
  expect_error(rt.kill(id, "999"));
  EXPECT_EQ(rt.status(id), "running");
}

TEST_F(ErrorsTest, UnknownCommandAndFlag) {
  expect_error(rt.exec({"no-such-command"}));
  expect_error(rt.exec({"create", "--no-such-flag", "x"}));
}

}  // namespace
}  // namespace zrun::test
