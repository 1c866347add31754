// The user-space half of eBPF accounting that needs no root: run-queue percentiles from
// the log2 histogram, the bpffs location, the cgroup id of a directory.
#include <gtest/gtest.h>

#include "cgroups/accounting.h"

namespace zrun::cg::acct {
namespace {

TEST(Accounting, PercentileOfEmptyHistogramIsZero) {
  EXPECT_EQ(runq_percentile(std::vector<uint64_t>(40, 0), 50), 0u);
}

TEST(Accounting, PercentileIsTheUpperBoundOfItsBucket) {
  std::vector<uint64_t> h(40, 0);
  h[10] = 98;  // [1024, 2048) ns
  h[20] = 2;   // [1 Mi, 2 Mi) ns
  EXPECT_EQ(runq_percentile(h, 50), 2048u);
  EXPECT_EQ(runq_percentile(h, 98), 2048u);
  EXPECT_EQ(runq_percentile(h, 99), 2u << 20);
  EXPECT_EQ(runq_percentile(h, 100), 2u << 20);
}

TEST(Accounting, BpffsLivesUnderTheStateRoot) {
  EXPECT_EQ(bpffs_dir("/run/zrun"), "/run/zrun/.bpf");
}

TEST(Accounting, CgroupIdOfAMissingDirectoryIsAnError) {
  auto id = cgroup_id("/nonexistent/zrun-unit-test");
  ASSERT_FALSE(id);
  EXPECT_NE(id.error().text().find("/nonexistent/zrun-unit-test"), std::string::npos);
}

}  // namespace
}  // namespace zrun::cg::acct
