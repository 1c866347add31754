// The runtime-spec state document.
#include <gtest/gtest.h>

#include "spec/state.h"

namespace zrun::spec {
namespace {

TEST(SpecState, ToJson) {
  State s;
  s.id = "c1";
  s.status = "running";
  s.pid = 42;
  s.bundle = "/b";
  EXPECT_EQ(state_to_json(s),
            R"({"ociVersion":"1.2.0","id":"c1","status":"running","pid":42,"bundle":"/b"})");
  s.annotations = {{"k", "v"}};
  s.status = "stopped";
  s.pid = 0;
  EXPECT_EQ(state_to_json(s), R"({"ociVersion":"1.2.0","id":"c1","status":"stopped","pid":0,)"
                              R"("bundle":"/b","annotations":{"k":"v"}})");
  EXPECT_EQ(state_to_json(s, true).substr(0, 26), "{\n  \"ociVersion\": \"1.2.0\",");
}

TEST(SpecState, RoundTrip) {
  State s;
  s.oci_version = "1.0.2";
  s.id = "x";
  s.status = "created";
  s.pid = 7;
  s.bundle = "/bundle";
  s.annotations = {{"a", "1"}, {"b", "2"}};
  auto r = state_from_json(state_to_json(s));
  ASSERT_TRUE(r.ok()) << r.error().text();
  EXPECT_EQ(r->oci_version, "1.0.2");
  EXPECT_EQ(r->id, "x");
  EXPECT_EQ(r->status, "created");
  EXPECT_EQ(r->pid, 7);
  EXPECT_EQ(r->bundle, "/bundle");
  EXPECT_EQ(r->annotations, s.annotations);
}

TEST(SpecState, Errors) {
  EXPECT_EQ(state_from_json("{").error().text(), "state: invalid JSON");
  EXPECT_EQ(state_from_json("[]").error().text(), "state: invalid JSON");
  EXPECT_EQ(state_from_json(R"({"ociVersion":"1.0.0","status":"running"})").error().text(),
            "state: .id: missing required field");
  EXPECT_EQ(state_from_json(R"({"ociVersion":"1.0.0","id":"a","status":"running","pid":"1"})")
                .error()
                .text(),
            "state: .pid: expected 32-bit integer");
}

}  // namespace
}  // namespace zrun::spec
