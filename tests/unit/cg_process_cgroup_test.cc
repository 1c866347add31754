// exec's fallback cgroup on v2: the one the container's init is in, never outside the
// container's own cgroup (no root, no cgroupfs).
#include <gtest/gtest.h>

#include "cgroups/process_cgroup.h"

namespace zrun::cg {
namespace {

constexpr const char* kPath = "/zrun/web1";
constexpr const char* kDir = "/sys/fs/cgroup/zrun/web1";

TEST(ProcessCgroup, InsideTheContainersCgroup) {
  auto d = process_cgroup_dir(kPath, kDir, "0::/zrun/web1/init.scope\n");
  ASSERT_TRUE(d.ok()) << d.error().text();
  EXPECT_EQ(*d, "/sys/fs/cgroup/zrun/web1/init.scope");
  d = process_cgroup_dir(kPath, kDir, "0::/zrun/web1\n");
  ASSERT_TRUE(d.ok()) << d.error().text();
  EXPECT_EQ(*d, kDir);
  // Hybrid: the unified line among v1 ones.
  d = process_cgroup_dir(kPath, "/sys/fs/cgroup/unified/zrun/web1",
                         "4:memory:/zrun/web1\n0::/zrun/web1/a/b\n");
  ASSERT_TRUE(d.ok()) << d.error().text();
  EXPECT_EQ(*d, "/sys/fs/cgroup/unified/zrun/web1/a/b");
}

TEST(ProcessCgroup, RefusesAnythingElse) {
  for (const char* text : {"0::/zrun/web10\n", "0::/zrun\n", "0::/\n", "0::/other/web1\n",
                           "0::/zrun/web1/../web2\n", "4:memory:/zrun/web1\n", ""}) {
    auto d = process_cgroup_dir(kPath, kDir, text);
    EXPECT_FALSE(d.ok()) << text << " -> " << (d.ok() ? *d : "");
  }
}

}  // namespace
}  // namespace zrun::cg
