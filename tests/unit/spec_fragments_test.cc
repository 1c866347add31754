// exec --process and update -r parse single objects; errors name their own document.
#include <gtest/gtest.h>

#include "spec/config.h"

namespace zrun::spec {
namespace {

TEST(SpecFragments, ProcessParses) {
  auto p = parse_process(R"({"args":["sh","-c","true"],"cwd":"/tmp","env":["A=1"],
                             "user":{"uid":5,"gid":6},"terminal":true})");
  ASSERT_TRUE(p.ok()) << p.error().text();
  EXPECT_EQ(p->args.size(), 3u);
  EXPECT_EQ(p->cwd, "/tmp");
  EXPECT_EQ(p->user.uid, 5u);
  EXPECT_TRUE(p->terminal);
}

TEST(SpecFragments, ProcessErrorsNameProcessJson) {
  auto p = parse_process(R"({"args":["sh"],"cwd":"relative"})");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().msg, "process.json: .cwd: must be an absolute path");
  auto q = parse_process("[1]");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().msg, "process.json: expected a JSON object");
}

TEST(SpecFragments, ResourcesParse) {
  auto r = parse_resources(R"({"memory":{"limit":1048576},"pids":{"limit":10}})");
  ASSERT_TRUE(r.ok()) << r.error().text();
  ASSERT_TRUE(r->memory && r->memory->limit);
  EXPECT_EQ(*r->memory->limit, 1048576);
  EXPECT_EQ(r->pids_limit.value_or(0), 10);
  auto bad = parse_resources(R"({"memory":{"limit":"x"}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().msg.rfind("resources: .memory.limit: ", 0), 0u) << bad.error().msg;
}

}  // namespace
}  // namespace zrun::spec
