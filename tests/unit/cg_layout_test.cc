// Mode detection, cgroupsPath resolution and value conversions (no root, no cgroupfs).
#include <gtest/gtest.h>

#include "base/sys.h"
#include "cgroups/cgroup.h"
#include "cgroups/resources.h"

namespace zrun::cg {
namespace {

// Shapes taken from real hosts (the hybrid one is this build machine's).
constexpr const char* kHybrid =
    "10:31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "11:32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "12:33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "13:34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "14:35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "15:36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "16:37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "17:38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "18:39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "19:40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "20:41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

constexpr const char* kUnified =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

constexpr const char* kLegacy =
    "25 22 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n"
    "27 25 0:24 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup "
    "rw,xattr,name=systemd\n"
    "30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw shared:13 - cgroup cgroup rw,cpu,cpuacct\n"
    "31 25 0:28 / /sys/fs/cgroup/memory rw shared:14 - cgroup cgroup rw,memory\n"
    "32 25 0:29 / /sys/fs/cgroup/net_cls,net_prio rw shared:15 - cgroup cgroup "
    "rw,net_cls,net_prio\n"
    "33 25 0:30 / /sys/fs/cgroup/pids rw shared:16 - cgroup cgroup rw,pids\n";

TEST(CgDetect, Hybrid) {
  auto l = detect_layout_from(kHybrid);
  ASSERT_TRUE(l.ok()) << l.error().text();
  EXPECT_EQ(l->mode, Mode::kHybrid);
  EXPECT_EQ(l->unified, "/sys/fs/cgroup/unified");
  EXPECT_EQ(l->v1.size(), 8u);
  EXPECT_EQ(l->v1.at("memory"), "/sys/fs/cgroup/memory");
  EXPECT_EQ(l->v1.at("cpuacct"), "/sys/fs/cgroup/cpuacct");
  EXPECT_EQ(l->v1.count("systemd"), 0u);
  EXPECT_EQ(l->v1.count("name=systemd"), 0u);
}

// The bench's crun workaround: a tmpfs over the cgroup2 mount turns hybrid into legacy.
TEST(CgDetect, HiddenMountIsIgnored) {
  std::string mi =
      std::string(kHybrid) + "99 23 0:99 / /sys/fs/cgroup/unified rw,relatime - tmpfs none rw\n";
  auto l = detect_layout_from(mi);
  ASSERT_TRUE(l.ok()) << l.error().text();
  EXPECT_EQ(l->mode, Mode::kLegacy);
  EXPECT_TRUE(l->unified.empty());
  // Covering /sys/fs/cgroup itself hides every hierarchy.
  auto none =
      detect_layout_from(std::string(kHybrid) + "99 23 0:99 / /sys/fs/cgroup rw - tmpfs none rw\n");
  EXPECT_FALSE(none.ok());
}

TEST(CgDetect, Unified) {
  auto l = detect_layout_from(kUnified);
  ASSERT_TRUE(l.ok()) << l.error().text();
  EXPECT_EQ(l->mode, Mode::kUnified);
  EXPECT_EQ(l->unified, "/sys/fs/cgroup");
  EXPECT_TRUE(l->v1.empty());
}

TEST(CgDetect, LegacyWithCoMounts) {
  auto l = detect_layout_from(kLegacy);
  ASSERT_TRUE(l.ok()) << l.error().text();
  EXPECT_EQ(l->mode, Mode::kLegacy);
  EXPECT_EQ(l->unified, "");
  EXPECT_EQ(l->v1.at("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(l->v1.at("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(l->v1.at("net_prio"), "/sys/fs/cgroup/net_cls,net_prio");
  EXPECT_EQ(l->v1.size(), 6u);
}

TEST(CgDetect, InjectedRootAndEscapes) {
  std::string mi = "30 22 0:26 / /tmp/fake\\040root rw - cgroup2 cgroup2 rw\n";
  auto l = detect_layout_from(mi, "/tmp/fake root");
  ASSERT_TRUE(l.ok()) << l.error().text();
  EXPECT_EQ(l->mode, Mode::kUnified);
  EXPECT_EQ(l->unified, "/tmp/fake root");
}

TEST(CgDetect, NoCgroupfsIsAnError) {
  auto l = detect_layout_from("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().msg.find("no cgroup filesystem"), std::string::npos);
}

TEST(CgDetect, ThisHost) {
  auto m = detect_mode();
  ASSERT_TRUE(m.ok()) << m.error().text();
  EXPECT_STRNE(mode_name(*m), "?");
}

TEST(CgDetect, ModeNames) {
  for (auto m : {Mode::kUnified, Mode::kHybrid, Mode::kLegacy})
    EXPECT_EQ(*mode_from_name(mode_name(m)), m);
  EXPECT_FALSE(mode_from_name("v3").ok());
}

constexpr const char* kSelfV1 =
    "9:name=systemd:/\n8:pids:/pidsgrp\n4:memory:/process_api/b6e6\n1:cpu:/\n0::/\n";

TEST(CgResolve, Default) {
  EXPECT_EQ(*resolve_path_from("", "web1", "", Mode::kUnified), "/zrun/web1");
  EXPECT_FALSE(resolve_path_from("", "a/b", "", Mode::kUnified).ok());
  EXPECT_FALSE(resolve_path_from("", "..", "", Mode::kUnified).ok());
}

TEST(CgResolve, Absolute) {
  EXPECT_EQ(*resolve_path_from("/a/b", "x", "", Mode::kUnified), "/a/b");
  EXPECT_EQ(*resolve_path_from("//a/./b/", "x", "", Mode::kUnified), "/a/b");
  EXPECT_EQ(*resolve_path_from("/a/../b", "x", "", Mode::kUnified), "/b");
  auto esc = resolve_path_from("/../etc", "x", "", Mode::kUnified);
  ASSERT_FALSE(esc.ok());
  EXPECT_NE(esc.error().msg.find("escapes"), std::string::npos);
  EXPECT_FALSE(resolve_path_from("/", "x", "", Mode::kUnified).ok());
  EXPECT_FALSE(resolve_path_from("/a/..", "x", "", Mode::kUnified).ok());
}

// v2: below the parent of zrun's own cgroup (which holds zrun itself, so no controllers
// can be enabled for its children), as runc does.
TEST(CgResolve, RelativeUnifiedGoesBelowTheParentOfOwnCgroup) {
  EXPECT_EQ(*resolve_path_from("foo/bar", "x", "0::/user.slice/user-0.slice/session-1.scope\n",
                               Mode::kUnified),
            "/user.slice/user-0.slice/foo/bar");
  EXPECT_EQ(*resolve_path_from("foo/bar", "x", "0::/user.slice\n", Mode::kUnified), "/foo/bar");
  EXPECT_EQ(*resolve_path_from("foo", "x", "0::/\n", Mode::kUnified), "/foo");
  EXPECT_FALSE(resolve_path_from("foo/../../x", "x", "0::/user.slice\n", Mode::kUnified).ok());
  EXPECT_FALSE(resolve_path_from("..", "x", "0::/a/b\n", Mode::kUnified).ok());
}

TEST(CgResolve, RelativeV1UsesMemoryThenPids) {
  EXPECT_EQ(*resolve_path_from("c1", "x", kSelfV1, Mode::kHybrid), "/process_api/b6e6/c1");
  EXPECT_EQ(*resolve_path_from("c1", "x", "8:pids:/p\n0::/\n", Mode::kLegacy), "/p/c1");
  EXPECT_EQ(*resolve_path_from("c1", "x", "3:cpu,cpuacct:/c\n0::/u\n", Mode::kLegacy), "/u/c1");
}

TEST(CgResolve, SystemdFormRejected) {
  auto r = resolve_path_from("system.slice:zrun:web1", "web1", "", Mode::kUnified);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().msg.find("systemd cgroup driver not supported"), std::string::npos);
  if (!base::path_exists("/run/systemd/system")) {
    EXPECT_NE(r.error().msg.find("no systemd"), std::string::npos);
  }
  EXPECT_FALSE(resolve_path_from("a:b", "x", "", Mode::kUnified).ok());
}

TEST(CgConvert, SharesToWeight) {
  EXPECT_EQ(cpu_shares_to_weight(0), 0u);
  EXPECT_EQ(cpu_shares_to_weight(1), 1u);
  EXPECT_EQ(cpu_shares_to_weight(2), 1u);
  EXPECT_EQ(cpu_shares_to_weight(1024), 100u);
  EXPECT_EQ(cpu_shares_to_weight(512), 59u);
  EXPECT_EQ(cpu_shares_to_weight(2048), 174u);
  EXPECT_EQ(cpu_shares_to_weight(262144), 10000u);
  EXPECT_EQ(cpu_shares_to_weight(1000000), 10000u);
  EXPECT_EQ(cpu_shares_to_weight_linear(1024), 39u);
  EXPECT_EQ(cpu_shares_to_weight_linear(262144), 10000u);
  // Monotonic over the whole range.
  uint64_t prev = 0;
  for (uint64_t s = 2; s <= 262144; s += 97) {
    uint64_t w = cpu_shares_to_weight(s);
    EXPECT_GE(w, prev);
    prev = w;
  }
}

TEST(CgConvert, SwapToV2) {
  EXPECT_EQ(*swap_to_v2(0, -1), -1);
  EXPECT_EQ(*swap_to_v2(-1, 100), -1);
  EXPECT_EQ(*swap_to_v2(0, 100), 0);
  EXPECT_EQ(*swap_to_v2(300, 100), 200);
  EXPECT_EQ(*swap_to_v2(100, 100), 0);
  EXPECT_FALSE(swap_to_v2(50, 100).ok());
  EXPECT_FALSE(swap_to_v2(300, 0).ok());
  EXPECT_FALSE(swap_to_v2(300, -1).ok());
}

TEST(CgConvert, BlkioWeight) {
  EXPECT_EQ(blkio_weight_to_io_weight(0), 0u);
  EXPECT_EQ(blkio_weight_to_io_weight(10), 1u);
  EXPECT_EQ(blkio_weight_to_io_weight(1000), 10000u);
  EXPECT_EQ(blkio_weight_to_io_weight(500), 4950u);
}

TEST(CgConvert, UnifiedKeys) {
  EXPECT_TRUE(validate_unified_key("memory.high").ok());
  EXPECT_TRUE(validate_unified_key("cgroup.max.depth").ok());
  EXPECT_TRUE(validate_unified_key("io.bfq.weight").ok());
  EXPECT_FALSE(validate_unified_key("../memory.max").ok());
  EXPECT_FALSE(validate_unified_key("sub/memory.max").ok());
  EXPECT_FALSE(validate_unified_key("memory").ok());
  EXPECT_FALSE(validate_unified_key(".max").ok());
  EXPECT_FALSE(validate_unified_key("memory.").ok());
  EXPECT_FALSE(validate_unified_key("").ok());
}

}  // namespace
}  // namespace zrun::cg
