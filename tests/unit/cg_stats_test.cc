// Stats (runc's `events --stats` shapes) from fake v1 and v2 cgroupfs trees.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/sys.h"
#include "cgroups/stats.h"
#include "tests/unit/fake_tree.h"

namespace zrun::cg {
namespace {

using test::Files;

class FakeTree : public test::FakeTreeTest {
 protected:
  StatDirs v1_tree() {
    StatDirs d;
    d.unified = dir("unified", {{"cgroup.procs", ""}});
    d.v1["cpu"] = dir("cpu", {{"cpu.stat",
                               "nr_periods 40\nnr_throttled 7\nthrottled_time 123456\n"
                               "nr_bursts 0\nburst_time 0\n"},
                              {"cpu.cfs_quota_us", "20000\n"},
                              {"cpu.cfs_period_us", "100000\n"}});
    d.v1["cpuacct"] = dir("cpuacct", {{"cpuacct.usage", "5000000\n"},
                                      {"cpuacct.usage_percpu", "3000000 2000000 \n"},
                                      {"cpuacct.stat", "user 3\nsystem 1\n"}});
    d.v1["memory"] =
        dir("memory", {{"memory.usage_in_bytes", "1048576\n"},
                       {"memory.max_usage_in_bytes", "2097152\n"},
                       {"memory.limit_in_bytes", "33554432\n"},
                       {"memory.soft_limit_in_bytes", "9223372036854771712\n"},
                       {"memory.failcnt", "12\n"},
                       {"memory.memsw.usage_in_bytes", "1572864\n"},
                       {"memory.memsw.max_usage_in_bytes", "2621440\n"},
                       {"memory.memsw.limit_in_bytes", "67108864\n"},
                       {"memory.memsw.failcnt", "2\n"},
                       {"memory.kmem.usage_in_bytes", "4096\n"},
                       {"memory.kmem.max_usage_in_bytes", "8192\n"},
                       {"memory.kmem.limit_in_bytes", "9223372036854771712\n"},
                       {"memory.kmem.failcnt", "0\n"},
                       {"memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"},
                       {"memory.stat", "cache 8192\nrss 1040384\nswap 524288\n"}});
    d.v1["pids"] =
        dir("pids", {{"pids.current", "4\n"}, {"pids.max", "max\n"}, {"pids.events", "max 5\n"}});
    d.v1["blkio"] = dir(
        "blkio", {{"blkio.throttle.io_service_bytes_recursive",
                   "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n"
                   "8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n"},
                  {"blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Write 2\nTotal 3\n"}});
    return d;
  }

  StatDirs v2_tree() {
    StatDirs d;
    d.v2 = true;
    d.unified =
        dir("v2", {{"cpu.stat",
                    "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\n"
                    "nr_periods 40\nnr_throttled 7\nthrottled_usec 123\n"},
                   {"cpu.max", "20000 100000\n"},
                   {"memory.current", "1048576\n"},
                   {"memory.peak", "2097152\n"},
                   {"memory.max", "33554432\n"},
                   {"memory.high", "max\n"},
                   {"memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\n"},
                   {"memory.swap.current", "524288\n"},
                   {"memory.swap.max", "max\n"},
                   {"memory.swap.events", "high 0\nmax 0\nfail 4\n"},
                   {"memory.stat", "anon 1040384\nfile 8192\nkernel 4096\n"},
                   {"pids.current", "4\n"},
                   {"pids.max", "10\n"},
                   {"pids.events", "max 5\n"},
                   {"io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"},
                   {"hugetlb.2MB.current", "0\n"},
                   {"hugetlb.2MB.max", "max\n"},
                   {"hugetlb.2MB.events", "max 1\n"},
                   {"hugetlb.2MB.rsvd.current", "0\n"}});
    return d;
  }
};

TEST_F(FakeTree, V1Stats) {
  auto s = read_stats(v1_tree());
  ASSERT_TRUE(s.ok()) << s.error().text();
  EXPECT_EQ(s->cpu.total, 5000000u);
  EXPECT_EQ(s->cpu.percpu, (std::vector<uint64_t>{3000000, 2000000}));
  long hz = ::sysconf(_SC_CLK_TCK);
  EXPECT_EQ(s->cpu.user, 3 * (1000000000ull / hz));
  EXPECT_EQ(s->cpu.kernel, 1 * (1000000000ull / hz));
  EXPECT_EQ(s->cpu.periods, 40u);
  EXPECT_EQ(s->cpu.throttled_periods, 7u);
  EXPECT_EQ(s->cpu.throttled_time, 123456u);
  EXPECT_EQ(s->memory.usage.usage, 1048576u);
  EXPECT_EQ(s->memory.usage.max, 2097152u);
  EXPECT_EQ(s->memory.usage.limit, 33554432u);
  EXPECT_EQ(s->memory.usage.failcnt, 12u);
  EXPECT_EQ(s->memory.swap.usage, 1572864u);
  EXPECT_EQ(s->memory.swap.failcnt, 2u);
  EXPECT_EQ(s->memory.kernel.max, 8192u);
  EXPECT_EQ(s->memory.cache, 8192u);
  EXPECT_EQ(s->memory.raw.at("rss"), 1040384u);
  EXPECT_EQ(s->pids.current, 4u);
  EXPECT_EQ(s->pids.limit, 0u);               // "max" -> 0 as runc
  ASSERT_EQ(s->io_service_bytes.size(), 6u);  // the device-less "Total N" line dropped
  EXPECT_EQ(s->io_service_bytes[1].op, "Write");
  EXPECT_EQ(s->io_service_bytes[1].value, 8192u);
  EXPECT_EQ(s->io_serviced.size(), 2u);
  EXPECT_EQ(oom_kill_count(v1_tree()), 3u);
}

TEST_F(FakeTree, V2Stats) {
  auto s = read_stats(v2_tree());
  ASSERT_TRUE(s.ok()) << s.error().text();
  EXPECT_EQ(s->cpu.total, 5000000u);  // usec -> ns
  EXPECT_EQ(s->cpu.user, 3000000u);
  EXPECT_EQ(s->cpu.kernel, 2000000u);
  EXPECT_TRUE(s->cpu.percpu.empty());
  EXPECT_EQ(s->cpu.throttled_periods, 7u);
  EXPECT_EQ(s->cpu.throttled_time, 123000u);
  EXPECT_EQ(s->memory.usage.usage, 1048576u);
  EXPECT_EQ(s->memory.usage.max, 2097152u);
  EXPECT_EQ(s->memory.usage.limit, 33554432u);
  EXPECT_EQ(s->memory.usage.failcnt, 12u);
  // runc: v2 swap is reported as memory+swap; unlimited swap -> max uint64.
  EXPECT_EQ(s->memory.swap.usage, 1048576u + 524288u);
  EXPECT_EQ(s->memory.swap.limit, UINT64_MAX);
  EXPECT_EQ(s->memory.swap.failcnt, 4u);
  EXPECT_EQ(s->memory.cache, 8192u);
  EXPECT_EQ(s->pids.current, 4u);
  EXPECT_EQ(s->pids.limit, 10u);
  ASSERT_EQ(s->io_service_bytes.size(), 3u);
  EXPECT_EQ(s->io_service_bytes[0].op, "Read");
  EXPECT_EQ(s->io_service_bytes[0].value, 4096u);
  EXPECT_EQ(s->io_serviced[1].value, 2u);
  ASSERT_EQ(s->hugetlb.size(), 1u);  // hugetlb.2MB.rsvd.* is not a page size
  EXPECT_EQ(s->hugetlb.at("2MB").failcnt, 1u);
  EXPECT_EQ(oom_kill_count(v2_tree()), 1u);
}

TEST_F(FakeTree, MissingControllersLeaveZeros) {
  StatDirs d;
  d.unified = dir("unified", {{"cgroup.procs", ""}});
  d.v1["memory"] = dir("memory", {{"memory.usage_in_bytes", "100\n"}});
  auto s = read_stats(d);
  ASSERT_TRUE(s.ok()) << s.error().text();
  EXPECT_EQ(s->memory.usage.usage, 100u);
  EXPECT_EQ(s->cpu.total, 0u);
  EXPECT_EQ(s->pids.current, 0u);
  StatDirs gone;
  gone.v1["memory"] = root_ + "/no-such-cgroup";
  EXPECT_FALSE(read_stats(gone).ok());
}

TEST_F(FakeTree, EventJsonHasRuncShape) {
  auto s = read_stats(v1_tree());
  ASSERT_TRUE(s.ok());
  std::string line = stats_event("c1", *s);
  EXPECT_EQ(line.rfind(R"({"type":"stats","id":"c1","data":{)", 0), 0u) << line;
  auto j = nlohmann::json::parse(line);
  auto& d = j["data"];
  EXPECT_EQ(d["cpu"]["usage"]["total"], 5000000);
  EXPECT_EQ(d["cpu"]["usage"]["percpu"].size(), 2u);
  EXPECT_EQ(d["cpu"]["throttling"]["throttledPeriods"], 7);
  EXPECT_EQ(d["memory"]["usage"]["limit"], 33554432);
  EXPECT_EQ(d["memory"]["swap"]["failcnt"], 2);
  EXPECT_EQ(d["memory"]["raw"]["cache"], 8192);
  EXPECT_EQ(d["pids"]["current"], 4);
  EXPECT_EQ(d["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
  EXPECT_TRUE(d["hugetlb"].is_object());
  EXPECT_EQ(oom_event("c1"), R"({"type":"oom","id":"c1"})");
}

TEST(StatsParse, Helpers) {
  auto m = parse_flat_keyed("a 1\nb x\n c  3 \nd\n");
  EXPECT_EQ(m, (std::map<std::string, uint64_t>{{"a", 1}, {"c", 3}}));
  auto b = parse_blkio_v1("8:16 Read 10\nbad line\n8:x Write 1\nTotal 10\n");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].major, 8u);
  EXPECT_EQ(b[0].minor, 16u);
  std::vector<BlkioEntry> bytes, ios;
  parse_io_stat("253:0 rbytes=1 wbytes=2 rios=3 wios=4\n", bytes, ios);
  ASSERT_EQ(bytes.size(), 2u);
  ASSERT_EQ(ios.size(), 2u);
  EXPECT_EQ(bytes[1].value, 2u);
  EXPECT_EQ(ios[0].value, 3u);
  EXPECT_EQ(ios[0].major, 253u);
}

// The v2 OOM watcher reports only when memory.events' oom counters grow (the file also
// changes on max/high). inotify works on a regular file, so the fake tree is enough.
TEST_F(FakeTree, V2OomWatcherCountsOnlyOomChanges) {
  StatDirs d = v2_tree();
  auto w = OomWatcher::open(d);
  ASSERT_TRUE(w.ok()) << w.error().text();
  std::string ev = d.unified + "/memory.events";
  ASSERT_TRUE(base::write_file(ev, "low 0\nhigh 0\nmax 13\noom 2\noom_kill 1\n").ok());
  auto n = w->drain();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  ASSERT_TRUE(base::write_file(ev, "low 0\nhigh 0\nmax 14\noom 3\noom_kill 2\n").ok());
  n = w->drain();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
}

// One OOM bumps "oom" and then "oom_kill", often as two notifications: one event, as v1
// reports it. A kill with no "oom" of ours (an ancestor's OOM) is an event of its own.
TEST_F(FakeTree, V2OomWatcherReportsOneEventPerOom) {
  StatDirs d = v2_tree();  // oom 2, oom_kill 1
  auto w = OomWatcher::open(d);
  ASSERT_TRUE(w.ok()) << w.error().text();
  std::string ev = d.unified + "/memory.events";
  auto step = [&](const char* text) {
    EXPECT_TRUE(base::write_file(ev, text).ok());
    auto n = w->drain();
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : 99u;
  };
  EXPECT_EQ(step("low 0\nhigh 0\nmax 13\noom 3\noom_kill 1\n"), 1u);  // the OOM
  EXPECT_EQ(step("low 0\nhigh 0\nmax 13\noom 3\noom_kill 2\n"), 0u);  // its kill
  EXPECT_EQ(step("low 0\nhigh 0\nmax 13\noom 3\noom_kill 3\n"), 1u);  // an ancestor's
  EXPECT_EQ(step("low 0\nhigh 0\nmax 14\noom 5\noom_kill 5\n"), 2u);  // two, coalesced
}

}  // namespace
}  // namespace zrun::cg
