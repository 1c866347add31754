// zrun update's persistence: the patch merge into the saved config.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/update.h"

namespace zrun::rt {
namespace {

using Json = nlohmann::json;

Json merged(const std::string& config, const std::string& patch) {
  auto r = merge_resources_patch(config, patch);
  EXPECT_TRUE(r.ok()) << r.error().text();
  return r.ok() ? Json::parse(*r) : Json();
}

TEST(UpdatePatch, MergesObjectsAndKeepsEarlierChanges) {
  std::string config = R"({"ociVersion":"1.0.2","process":{"args":["sh"]},
    "linux":{"namespaces":[{"type":"pid"}],
             "resources":{"devices":[{"allow":false,"access":"rwm"}],
                          "memory":{"limit":67108864,"reservation":1000},
                          "cpu":{"quota":20000}}}})";
  Json j = merged(config, R"({"memory":{"limit":134217728},"cpu":{"period":100000}})");
  auto& res = j["linux"]["resources"];
  EXPECT_EQ(res["memory"]["limit"], 134217728);
  EXPECT_EQ(res["memory"]["reservation"], 1000);  // untouched
  EXPECT_EQ(res["cpu"]["quota"], 20000);          // an earlier change kept
  EXPECT_EQ(res["cpu"]["period"], 100000);
  EXPECT_EQ(res["devices"].size(), 1u);
  EXPECT_EQ(j["process"]["args"][0], "sh");  // the rest of the config as it was
  EXPECT_EQ(j["linux"]["namespaces"][0]["type"], "pid");

  // A second, partial update on top of the first.
  j = merged(j.dump(), R"({"pids":{"limit":42},"memory":{"swap":null}})");
  EXPECT_EQ(j["linux"]["resources"]["memory"]["limit"], 134217728);
  EXPECT_FALSE(j["linux"]["resources"]["memory"].contains("swap"));  // null: left alone
  EXPECT_EQ(j["linux"]["resources"]["pids"]["limit"], 42);

  // Arrays (device rules, throttle lists) replace the saved ones whole.
  j = merged(j.dump(), R"({"devices":[{"allow":true,"access":"rwm"},{"allow":false,"type":"c",
                              "major":1,"minor":3,"access":"r"}]})");
  ASSERT_EQ(j["linux"]["resources"]["devices"].size(), 2u);
  EXPECT_EQ(j["linux"]["resources"]["devices"][0]["allow"], true);
}

TEST(UpdatePatch, CreatesResourcesAndRejectsGarbage) {
  Json j = merged(R"({"ociVersion":"1.0.2"})", R"({"pids":{"limit":5}})");
  EXPECT_EQ(j["linux"]["resources"]["pids"]["limit"], 5);
  EXPECT_FALSE(merge_resources_patch("{", "{}").ok());
  EXPECT_FALSE(merge_resources_patch("{}", "[1]").ok());
  EXPECT_FALSE(merge_resources_patch(R"({"linux":3})", "{}").ok());
}

}  // namespace
}  // namespace zrun::rt
