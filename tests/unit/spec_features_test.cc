// `zrun features` document.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "spec/config.h"
#include "spec/features.h"

namespace zrun::spec {
namespace {

using nlohmann::json;

bool has(const json& arr, const std::string& v) {
  return std::find(arr.begin(), arr.end(), v) != arr.end();
}

TEST(SpecFeatures, Document) {
  auto j = json::parse(features_json(HostFacts{}));
  EXPECT_EQ(j["ociVersionMin"], "1.0.0");
  EXPECT_EQ(j["ociVersionMax"], "1.2.0");
  EXPECT_EQ(j["hooks"], json::parse(R"(["prestart", "createRuntime", "createContainer",
                                         "startContainer", "poststart", "poststop"])"));
  for (const char* o :
       {"ro", "rw", "rbind", "rro", "rnosuid", "rshared", "runbindable", "tmpcopyup", "strictatime",
        "nostrictatime", "silent", "loud", "nosymfollow"})
    EXPECT_TRUE(has(j["mountOptions"], o)) << o;
  EXPECT_FALSE(has(j["mountOptions"], "idmap"));
  EXPECT_FALSE(has(j["mountOptions"], ""));
  const json& lx = j["linux"];
  EXPECT_EQ(lx["namespaces"].size(), 8u);
  EXPECT_TRUE(has(lx["namespaces"], "time"));
  EXPECT_TRUE(has(lx["namespaces"], "network"));
  EXPECT_EQ(lx["capabilities"].size(), all_capability_names().size());
  EXPECT_TRUE(has(lx["capabilities"], "CAP_SYS_ADMIN"));
  EXPECT_EQ(lx["cgroup"]["v1"], true);
  EXPECT_EQ(lx["cgroup"]["v2"], true);
  EXPECT_EQ(lx["cgroup"]["systemd"], false);
  EXPECT_EQ(lx["cgroup"]["rdma"], true);
  EXPECT_EQ(lx["seccomp"]["enabled"], true);
  EXPECT_EQ(lx["seccomp"]["actions"].size(), 9u);
  EXPECT_EQ(lx["seccomp"]["operators"].size(), 7u);
  EXPECT_TRUE(has(lx["seccomp"]["archs"], "SCMP_ARCH_X86_64"));
  EXPECT_TRUE(has(lx["seccomp"]["knownFlags"], "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"));
  EXPECT_TRUE(has(lx["seccomp"]["supportedFlags"], "SECCOMP_FILTER_FLAG_LOG"));
  EXPECT_EQ(lx["apparmor"]["enabled"], false);
  EXPECT_EQ(lx["selinux"]["enabled"], false);
  EXPECT_EQ(lx["intelRdt"]["enabled"], false);
  EXPECT_EQ(lx["mountExtensions"]["idmap"]["enabled"], false);
  EXPECT_EQ(j["annotations"]["io.github.zrun.version"], ZRUN_VERSION);
  EXPECT_EQ(j["annotations"]["org.opencontainers.runc.checkpoint.enabled"], "true");
}

TEST(SpecFeatures, HostFactsAreReported) {
  HostFacts f;
  f.apparmor = true;
  f.selinux = true;
  auto j = json::parse(features_json(f));
  EXPECT_EQ(j["linux"]["apparmor"]["enabled"], true);
  EXPECT_EQ(j["linux"]["selinux"]["enabled"], true);
}

TEST(SpecFeatures, OrderAndIndentLikeRunc) {
  std::string s = features_json(HostFacts{});
  EXPECT_EQ(s.rfind("{\n    \"ociVersionMin\": \"1.0.0\",\n    \"ociVersionMax\"", 0), 0u) << s;
  // Whatever this host has, detection must not crash and must agree with the document.
  HostFacts f = detect_host_facts();
  auto j = json::parse(features_json());
  EXPECT_EQ(j["linux"]["apparmor"]["enabled"], f.apparmor);
  EXPECT_EQ(j["linux"]["selinux"]["enabled"], f.selinux);
  EXPECT_EQ(j["linux"]["seccomp"]["supportedFlags"], json(f.seccomp_flags));
}

TEST(SpecFeatures, SeccompFlagsAreProbed) {
  HostFacts f;
  f.seccomp_flags = {"SECCOMP_FILTER_FLAG_LOG"};
  auto j = json::parse(features_json(f));
  EXPECT_EQ(j["linux"]["seccomp"]["supportedFlags"], json::parse(R"(["SECCOMP_FILTER_FLAG_LOG"])"));
  // This kernel (6.x) has all four, WAIT_KILLABLE_RECV (5.19) included; every supported
  // flag is a known one.
  HostFacts host = detect_host_facts();
  auto hj = json::parse(features_json(host));
  for (const auto& flag : hj["linux"]["seccomp"]["supportedFlags"])
    EXPECT_TRUE(has(hj["linux"]["seccomp"]["knownFlags"], flag)) << flag;
  EXPECT_TRUE(has(hj["linux"]["seccomp"]["supportedFlags"], "SECCOMP_FILTER_FLAG_LOG"));
  EXPECT_TRUE(
      has(hj["linux"]["seccomp"]["supportedFlags"], "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"));
}

}  // namespace
}  // namespace zrun::spec
