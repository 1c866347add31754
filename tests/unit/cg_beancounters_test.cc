// Bean counters from fake v1 and v2 cgroupfs trees: the column sources, unlimited as
// LONG_MAX, unavailable columns, and the sampled maxheld where the kernel has no peak.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "base/sys.h"
#include "cgroups/beancounters.h"
#include "tests/unit/fake_tree.h"

namespace zrun::cg {
namespace {

using test::Files;

class BeanTree : public test::FakeTreeTest {
 protected:
  // v1 without pids.peak (kernels before 6.x) and without memsw.
  StatDirs v1_tree() {
    StatDirs d;
    d.v1["memory"] = dir("memory", {{"memory.usage_in_bytes", "1048576\n"},
                                    {"memory.max_usage_in_bytes", "2097152\n"},
                                    {"memory.soft_limit_in_bytes", "9223372036854771712\n"},
                                    {"memory.limit_in_bytes", "33554432\n"},
                                    {"memory.failcnt", "12\n"},
                                    {"memory.oom_control", "oom_kill_disable 0\noom_kill 3\n"},
                                    {"memory.kmem.usage_in_bytes", "4096\n"},
                                    {"memory.kmem.max_usage_in_bytes", "8192\n"},
                                    {"memory.kmem.limit_in_bytes", "9223372036854771712\n"},
                                    {"memory.kmem.failcnt", "0\n"}});
    d.v1["pids"] =
        dir("pids", {{"pids.current", "4\n"}, {"pids.max", "10\n"}, {"pids.events", "max 5\n"}});
    d.v1["cpu"] = dir("cpu", {{"cpu.stat", "nr_periods 40\nnr_throttled 7\nthrottled_time 9\n"},
                              {"cpu.cfs_quota_us", "20000\n"},
                              {"cpu.cfs_period_us", "100000\n"}});
    d.v1["cpuacct"] = dir("cpuacct", {{"cpuacct.usage", "5000000\n"}});
    d.v1["blkio"] = dir("blkio", {{"blkio.throttle.io_service_bytes",
                                   "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n"},
                                  {"blkio.throttle.read_bps_device", ""},
                                  {"blkio.throttle.write_bps_device", ""}});
    return d;
  }

  // v2 without memory.peak/pids.peak (kernels before 5.19/6.1).
  StatDirs v2_tree() {
    StatDirs d;
    d.v2 = true;
    d.unified = dir("v2", {{"memory.current", "1048576\n"},
                           {"memory.high", "16777216\n"},
                           {"memory.max", "max\n"},
                           {"memory.events", "low 0\nhigh 3\nmax 12\noom 2\noom_kill 1\n"},
                           {"memory.swap.current", "0\n"},
                           {"memory.swap.peak", "4096\n"},
                           {"memory.swap.high", "max\n"},
                           {"memory.swap.max", "0\n"},
                           {"memory.swap.events", "high 0\nmax 0\nfail 4\n"},
                           {"memory.stat", "anon 1040384\nfile 8192\nkernel 4096\n"},
                           {"pids.current", "4\n"},
                           {"pids.max", "max\n"},
                           {"pids.events", "max 5\n"},
                           {"cpu.stat", "usage_usec 5000\nnr_periods 40\nnr_throttled 7\n"},
                           {"cpu.max", "max 100000\n"},
                           {"io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n"},
                           {"io.max", "8:0 rbps=1048576 wbps=max riops=max wiops=max\n"}});
    return d;
  }

  static const BeanCounter& row(const BeanCounters& bc, const std::string& name) {
    for (auto& r : bc.rows)
      if (r.resource == name) return r;
    static BeanCounter none;
    ADD_FAILURE() << "no row " << name;
    return none;
  }
};

TEST_F(BeanTree, V1Columns) {
  auto bc = read_beancounters(v1_tree(), "");
  ASSERT_TRUE(bc.ok()) << bc.error().text();
  auto& mem = row(*bc, "physpages");
  EXPECT_EQ(mem.held, 1048576u);
  EXPECT_EQ(mem.maxheld, 2097152u);
  EXPECT_FALSE(mem.maxheld_sampled);
  EXPECT_EQ(mem.barrier, kUnlimited);  // v1's page-rounded LONG_MAX -> LONG_MAX
  EXPECT_EQ(mem.limit, 33554432u);
  EXPECT_EQ(mem.failcnt, 12u);
  EXPECT_EQ(mem.extra.at("oom_kill"), 3u);
  auto& km = row(*bc, "kmem");
  EXPECT_EQ(km.held, 4096u);
  EXPECT_EQ(km.maxheld, 8192u);
  EXPECT_EQ(km.limit, kUnlimited);
  EXPECT_FALSE(km.barrier);
  auto& sw = row(*bc, "swap");  // no memsw files: unavailable
  EXPECT_FALSE(sw.held);
  EXPECT_FALSE(sw.limit);
  auto& np = row(*bc, "numproc");
  EXPECT_EQ(np.held, 4u);
  EXPECT_EQ(np.maxheld, 4u);  // no pids.peak: sampled
  EXPECT_TRUE(np.maxheld_sampled);
  EXPECT_EQ(np.barrier, 10u);
  EXPECT_EQ(np.limit, 10u);
  EXPECT_EQ(np.failcnt, 5u);
  auto& cpu = row(*bc, "cpu");
  EXPECT_EQ(cpu.held, 5000000u);
  EXPECT_EQ(cpu.failcnt, 7u);
  EXPECT_FALSE(cpu.limit);  // a quota: reported as quota_us/period_us
  EXPECT_EQ(cpu.extra.at("quota_us"), 20000u);
  EXPECT_EQ(cpu.extra.at("period_us"), 100000u);
  auto& io = row(*bc, "io");
  EXPECT_EQ(io.held, 12288u);  // Read + Write, not the Total lines
  EXPECT_EQ(io.limit, kUnlimited);
  EXPECT_FALSE(io.failcnt);
  EXPECT_FALSE(bc->notes.empty());
}

TEST_F(BeanTree, V2Columns) {
  auto bc = read_beancounters(v2_tree(), "");
  ASSERT_TRUE(bc.ok()) << bc.error().text();
  auto& mem = row(*bc, "physpages");
  EXPECT_EQ(mem.held, 1048576u);
  EXPECT_EQ(mem.maxheld, 1048576u);  // no memory.peak: sampled
  EXPECT_TRUE(mem.maxheld_sampled);
  EXPECT_EQ(mem.barrier, 16777216u);
  EXPECT_EQ(mem.limit, kUnlimited);
  EXPECT_EQ(mem.failcnt, 12u);
  EXPECT_EQ(mem.extra.at("oom_kill"), 1u);
  auto& sw = row(*bc, "swap");
  EXPECT_EQ(sw.held, 0u);
  EXPECT_EQ(sw.maxheld, 4096u);
  EXPECT_FALSE(sw.maxheld_sampled);
  EXPECT_EQ(sw.barrier, kUnlimited);
  EXPECT_EQ(sw.limit, 0u);
  EXPECT_EQ(sw.failcnt, 4u);
  auto& km = row(*bc, "kmem");
  EXPECT_EQ(km.held, 4096u);
  EXPECT_FALSE(km.limit);
  EXPECT_FALSE(km.failcnt);
  auto& np = row(*bc, "numproc");
  EXPECT_EQ(np.limit, kUnlimited);
  EXPECT_EQ(np.failcnt, 5u);
  auto& cpu = row(*bc, "cpu");
  EXPECT_EQ(cpu.held, 5000000u);
  EXPECT_EQ(cpu.limit, kUnlimited);
  auto& io = row(*bc, "io");
  EXPECT_EQ(io.held, 12288u);
  EXPECT_FALSE(io.limit);  // per-device throttles cannot be one number
}

TEST_F(BeanTree, SampledPeakSurvivesBetweenReadings) {
  StatDirs d = v1_tree();
  std::string peaks = root_ + "/peaks.json";
  ASSERT_TRUE(read_beancounters(d, peaks).ok());
  put(d.v1["pids"] + "/pids.current", "9\n");
  ASSERT_TRUE(read_beancounters(d, peaks).ok());
  put(d.v1["pids"] + "/pids.current", "2\n");
  auto bc = read_beancounters(d, peaks);
  ASSERT_TRUE(bc.ok());
  auto& np = row(*bc, "numproc");
  EXPECT_EQ(np.held, 2u);
  EXPECT_EQ(np.maxheld, 9u);
  EXPECT_TRUE(np.maxheld_sampled);
  // A kernel peak wins over the samples once it exists.
  put(d.v1["pids"] + "/pids.peak", "10\n");
  bc = read_beancounters(d, peaks);
  ASSERT_TRUE(bc.ok());
  EXPECT_EQ(row(*bc, "numproc").maxheld, 10u);
  EXPECT_FALSE(row(*bc, "numproc").maxheld_sampled);
  // A corrupt peaks file starts over instead of failing.
  put(peaks, "{not json");
  EXPECT_TRUE(read_beancounters(d, peaks).ok());
}

TEST_F(BeanTree, JsonAndTable) {
  auto bc = read_beancounters(v1_tree(), "");
  ASSERT_TRUE(bc.ok());
  auto j = nlohmann::json::parse(beancounters_json("c1", *bc));
  EXPECT_EQ(j["id"], "c1");
  ASSERT_EQ(j["counters"].size(), 6u);
  auto& mem = j["counters"][0];
  EXPECT_EQ(mem["resource"], "physpages");
  EXPECT_EQ(mem["barrier"], 9223372036854775807ull);
  EXPECT_EQ(mem["failcnt"], 12);
  EXPECT_TRUE(j["counters"][1]["held"].is_null());  // swap unavailable -> null
  EXPECT_TRUE(j["counters"][3]["maxheld_sampled"].get<bool>());
  EXPECT_FALSE(j["notes"].empty());

  std::string t = beancounters_table({{"c1", *bc}});
  EXPECT_NE(t.find("resource"), std::string::npos) << t;
  EXPECT_NE(t.find("c1:"), std::string::npos) << t;
  EXPECT_NE(t.find("9223372036854775807"), std::string::npos) << t;
  EXPECT_NE(t.find("4*"), std::string::npos) << t;  // sampled numproc maxheld flagged
  EXPECT_NE(t.find(" - "), std::string::npos) << t;
}

TEST_F(BeanTree, GoneCgroupIsAnError) {
  StatDirs d;
  d.v1["memory"] = root_ + "/gone";
  EXPECT_FALSE(read_beancounters(d, "").ok());
}

}  // namespace
}  // namespace zrun::cg
