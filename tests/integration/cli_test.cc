// The global flags engines rely on: --version, --log + --log-format json, relative --root,
// features.
#include <gtest/gtest.h>

#include <sstream>

#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

class CliTest : public ContainerTest {};

TEST_F(CliTest, VersionNamesSpecAndFeatures) {
  auto r = run_command({runtime_path(), "--version"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("version"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("spec: 1."), std::string::npos) << r.out;
}

TEST_F(CliTest, JsonLogGetsOneErrorLinePerFailure) {
  if (!runtime_is_zrun()) GTEST_SKIP() << "zrun's log format";
  TempDir tmp;
  std::string log = tmp / "log.json";
  auto r = run_command({runtime_path(), "--root", tmp / "root", "--log", log, "--log-format",
                        "json", "state", "does-not-exist"});
  EXPECT_NE(r.code, 0);
  std::istringstream lines(read_file(log));
  std::string line, last;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    last = line;
  }
  ASSERT_EQ(n, 1) << read_file(log);
  auto j = Json::parse(last);
  EXPECT_EQ(j["level"], "error");
  EXPECT_NE(j["msg"].get<std::string>().find("does not exist"), std::string::npos);
  EXPECT_TRUE(j.contains("time"));
  // People still see the error on stderr.
  EXPECT_NE(r.err.find("zrun: "), std::string::npos) << r;
}

TEST_F(CliTest, RelativeRootWorksAcrossCreate) {
  // create chdirs to the bundle; a relative --root must still mean the caller's cwd.
  Bundle b(rt);
  b.probe({"sleep", "30"});
  b.save();
  TempDir tmp;
  std::string id = "zt-rel-" + std::to_string(::getpid());
  auto r = run_command({"/bin/sh", "-c",
                        "cd " + tmp.path() + " && " + runtime_path() + " --root rel create -b " +
                            b.path() + " " + id + " && " + runtime_path() + " --root rel state " +
                            id + " && " + runtime_path() + " --root rel delete -f " + id});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("\"created\""), std::string::npos) << r;
  EXPECT_TRUE(cgroup_dirs_named(id).empty());
}

TEST_F(CliTest, FeaturesListsEveryNamespace) {
  auto f = rt.features();
  ASSERT_FALSE(f.is_null());
  auto ns = f["linux"]["namespaces"];
  for (const char* t : {"pid", "network", "mount", "ipc", "uts", "user", "cgroup"})
    EXPECT_NE(std::find(ns.begin(), ns.end(), t), ns.end()) << t;
}

}  // namespace
}  // namespace zrun::test
