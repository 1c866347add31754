// eBPF accounting (docs/accounting.md) on real containers: the kernel-side counters agree
// with known work and with the cgroup's own counters, stay per container, and nothing
// pinned or mounted is left after the last delete. Tolerances are generous where the
// machine's noise matters (2 shared cores), exact where the work is exact.
#include "cgroups/accounting.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <sstream>
#include <thread>

#include "base/bpf_syscall.h"
#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;

class AccountingTest : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped()) return;
    if (!runtime_is_zrun()) GTEST_SKIP() << "zrun-only feature";
    if (!path_exists("/sys/kernel/btf/vmlinux")) GTEST_SKIP() << "kernel has no BTF";
  }

  // create + start, then wait for the container to stop (the work is done).
  void run_to_end(Bundle& b, const std::string& id, std::chrono::milliseconds t = 30s) {
    RunResult r = rt.create(b, id);
    ASSERT_EQ(r.code, 0) << r;
    r = rt.start(id);
    ASSERT_EQ(r.code, 0) << r;
    ASSERT_EQ(rt.wait_status(id, "stopped", t), "stopped") << b.out() << b.err();
  }

  void start(Bundle& b, const std::string& id) {
    RunResult r = rt.create(b, id);
    ASSERT_EQ(r.code, 0) << r;
    r = rt.start(id);
    ASSERT_EQ(r.code, 0) << r;
  }

  // `stats --json ID` -> the container's document.
  Json stats(const std::string& id) {
    RunResult r = rt.exec({"stats", "--json", id});
    EXPECT_EQ(r.code, 0) << r;
    try {
      Json j = Json::parse(r.out);
      if (j.is_array() && j.size() == 1) return j[0];
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what() << ": " << r.out;
    }
    return Json();
  }

  // The eBPF part; skips the test when this zrun was built without accounting.
  Json ebpf(const std::string& id) {
    Json s = stats(id);
    if (!s.is_object()) return Json();
    if (!s["accounting"].value("available", false)) return Json();
    EXPECT_TRUE(s["accounting"].value("enabled", false)) << s.dump(2);
    return s["ebpf"];
  }

  static uint64_t num(const Json& j, std::initializer_list<const char*> path) {
    const Json* p = &j;
    for (const char* k : path) {
      if (!p->is_object() || !p->contains(k)) return ~0ull;
      p = &(*p)[k];
    }
    return p->is_number_unsigned() ? p->get<uint64_t>() : ~0ull;
  }

  std::string bpffs() const { return rt.root() + "/.bpf"; }
  bool bpffs_mounted() const {
    struct statfs st {};
    return ::statfs(bpffs().c_str(), &st) == 0 && st.f_type == kBpfFsMagic;
  }
  bool mountinfo_mentions_bpffs() const {
    return read_file("/proc/self/mountinfo").find(bpffs() + " ") != std::string::npos;
  }
};

#define SKIP_IF_COMPILED_OUT(json)                                                  \
  do {                                                                              \
    if ((json).is_null()) GTEST_SKIP() << "zrun was built without eBPF accounting"; \
  } while (0)

TEST_F(AccountingTest, OnCpuTimeMatchesCgroupCpuUsage) {
  Bundle b(rt);
  b.probe({"spin", "1"});
  std::string id = rt.new_id();
  run_to_end(b, id);
  Json s = stats(id);
  SKIP_IF_COMPILED_OUT(s["ebpf"]);
  uint64_t oncpu = num(s["ebpf"], {"cpu", "oncpu_ns"});
  uint64_t usage = num(s["cgroup"], {"cpu", "usage", "total"});
  ASSERT_GT(usage, 100'000'000u) << s.dump(2);  // the spinner got at least 100 ms
  double ratio = static_cast<double>(oncpu) / static_cast<double>(usage);
  EXPECT_GT(ratio, 0.9) << "on-cpu " << oncpu << " ns vs cgroup " << usage << " ns";
  EXPECT_LT(ratio, 1.1) << "on-cpu " << oncpu << " ns vs cgroup " << usage << " ns";
  // A spinner is preempted, it does not block: involuntary switches dominate, and each
  // preemption is a wait in the run queue.
  EXPECT_GT(num(s["ebpf"], {"cpu", "involuntary_switches"}), 0u);
  EXPECT_GT(num(s["ebpf"], {"cpu", "runq", "count"}), 0u);
  EXPECT_GT(num(s["ebpf"], {"cpu", "runq", "p99_ns"}), 0u);
  EXPECT_GE(num(s["ebpf"], {"cpu", "runq", "p99_ns"}), num(s["ebpf"], {"cpu", "runq", "p50_ns"}));
}

TEST_F(AccountingTest, ForkLoopCountsForksAndExits) {
  constexpr uint64_t kForks = 50;
  Bundle b(rt);
  b.probe({"fork", std::to_string(kForks)});
  std::string id = rt.new_id();
  run_to_end(b, id);
  Json e = ebpf(id);
  SKIP_IF_COMPILED_OUT(e);
  EXPECT_GE(num(e, {"processes", "forks"}), kForks) << e.dump(2);
  EXPECT_LT(num(e, {"processes", "forks"}), kForks + 5) << e.dump(2);
  EXPECT_EQ(num(e, {"processes", "threads"}), 0u) << e.dump(2);
  // The children and the init itself.
  EXPECT_GE(num(e, {"processes", "exits"}), kForks + 1) << e.dump(2);
  EXPECT_LT(num(e, {"processes", "exits"}), kForks + 6) << e.dump(2);
}

TEST_F(AccountingTest, ExecsAreCounted) {
  constexpr uint64_t kExecs = 20;
  Bundle b(rt);
  b.probe({"execn", std::to_string(kExecs)});
  std::string id = rt.new_id();
  run_to_end(b, id);
  EXPECT_NE(b.out().find("execn=done"), std::string::npos) << b.out() << b.err();
  Json e = ebpf(id);
  SKIP_IF_COMPILED_OUT(e);
  // kExecs by the probe plus the init's own execve of it.
  EXPECT_GE(num(e, {"processes", "execs"}), kExecs + 1) << e.dump(2);
  EXPECT_LT(num(e, {"processes", "execs"}), kExecs + 4) << e.dump(2);
}

TEST_F(AccountingTest, PageFaultsAndOomKillAreCounted) {
  if (!path_exists("/sys/fs/cgroup/memory/cgroup.procs") &&
      !path_exists("/sys/fs/cgroup/cgroup.controllers"))
    GTEST_SKIP() << "no memory controller";
  Bundle b(rt);
  b.config()["linux"]["resources"]["memory"] = {{"limit", 32 << 20}};
  std::string swaps = read_file("/proc/swaps");
  if (std::count(swaps.begin(), swaps.end(), '\n') > 1)
    b.config()["linux"]["resources"]["memory"]["swap"] = 32 << 20;
  b.probe({"hog", "96"});
  std::string id = rt.new_id();
  RunResult r = rt.run(b, id, {"--keep"}, {.timeout = 60s});
  EXPECT_EQ(r.code, 128 + SIGKILL) << r;
  Json e = ebpf(id);
  SKIP_IF_COMPILED_OUT(e);
  EXPECT_GE(num(e, {"memory", "oom_kills"}), 1u) << e.dump(2);
  EXPECT_LT(num(e, {"memory", "oom_kills"}), 3u) << e.dump(2);
  // Touching up to 32 MiB one page at a time: thousands of minor faults (4 KiB pages, or
  // fewer with THP, hence the low bar).
  EXPECT_GT(num(e, {"memory", "minor_faults"}), 100u) << e.dump(2);
}

TEST_F(AccountingTest, OtherContainersCountersDoNotMove) {
  Bundle quiet(rt);
  quiet.probe({"sleep", "60"});
  std::string qid = rt.new_id("quiet");
  start(quiet, qid);
  Bundle busy(rt);
  busy.args({"/bin/sh", "-c", "/bin/zrun-probe fork 20; /bin/zrun-probe spin 0.3"});
  std::string bid = rt.new_id("busy");
  // Let the quiet one settle into its sleep first.
  std::this_thread::sleep_for(300ms);
  Json before = ebpf(qid);
  SKIP_IF_COMPILED_OUT(before);
  run_to_end(busy, bid);
  Json after = ebpf(qid);
  Json b = ebpf(bid);
  // sh forks the first command (which forks 20) and execs the last one.
  EXPECT_GE(num(b, {"processes", "forks"}), 21u) << b.dump(2);
  for (auto path : std::vector<std::vector<const char*>>{{"processes", "forks"},
                                                         {"processes", "execs"},
                                                         {"processes", "exits"},
                                                         {"cpu", "oncpu_ns"},
                                                         {"memory", "minor_faults"}}) {
    EXPECT_EQ(num(before, {path[0], path[1]}), num(after, {path[0], path[1]}))
        << path[0] << "." << path[1] << "\nbefore " << before.dump() << "\nafter " << after.dump();
  }
}

TEST_F(AccountingTest, LastDeleteLeavesNothingPinnedOrMounted) {
  Bundle a(rt), b(rt);
  a.probe({"sleep", "60"});
  b.probe({"sleep", "60"});
  std::string ida = rt.new_id(), idb = rt.new_id();
  start(a, ida);
  start(b, idb);
  if (!bpffs_mounted()) {
    Json s = stats(ida);
    if (!s["accounting"].value("available", false))
      GTEST_SKIP() << "zrun was built without eBPF accounting";
    FAIL() << "no bpffs at " << bpffs() << ": " << s.dump(2);
  }
  EXPECT_TRUE(path_exists(bpffs() + "/map_tracked"));
  EXPECT_TRUE(path_exists(bpffs() + "/link_sched_switch"));
  RunResult r = rt.del(ida, true);
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_TRUE(bpffs_mounted()) << "one container is still accounted";
  EXPECT_TRUE(path_exists(bpffs() + "/map_tracked"));
  r = rt.del(idb, true);
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_FALSE(bpffs_mounted());
  EXPECT_FALSE(mountinfo_mentions_bpffs()) << read_file("/proc/self/mountinfo");
  EXPECT_FALSE(path_exists(bpffs())) << "mount point left behind";
  EXPECT_EQ(leftovers(rt, a, ida), "");
  EXPECT_EQ(leftovers(rt, b, idb), "");
}

// Maps pinned by another zrun version (a different counter layout) while its containers
// run: stats says so instead of misreading them, and delete still cleans up.
TEST_F(AccountingTest, PinnedMapsOfAnotherLayoutAreRefused) {
  Bundle b(rt);
  b.probe({"sleep", "60"});
  std::string id = rt.new_id();
  start(b, id);
  SKIP_IF_COMPILED_OUT(ebpf(id));
  // Keep the real map by fd (bpffs has no rename), put the fake under its name.
  std::string real = bpffs() + "/map_counters";
  union bpf_attr get {};
  get.pathname = base::bpf_ptr(real.c_str());
  auto kept = base::bpf(BPF_OBJ_GET, get, "open pinned map");
  ASSERT_TRUE(kept.ok()) << kept.error().text();
  ASSERT_EQ(::unlink(real.c_str()), 0) << strerror(errno);
  union bpf_attr a {};
  a.map_type = BPF_MAP_TYPE_ARRAY;
  a.key_size = 4;
  a.value_size = 8;
  a.max_entries = 1;
  auto fake = base::bpf(BPF_MAP_CREATE, a, "create map");
  ASSERT_TRUE(fake.ok()) << fake.error().text();
  union bpf_attr pin {};
  pin.bpf_fd = static_cast<uint32_t>(*fake);
  pin.pathname = base::bpf_ptr(real.c_str());
  ASSERT_TRUE(base::bpf(BPF_OBJ_PIN, pin, "pin").ok());
  ::close(static_cast<int>(*fake));
  Json st = stats(id);
  EXPECT_FALSE(st["accounting"].value("enabled", true)) << st.dump(2);
  EXPECT_NE(st["accounting"].value("reason", "").find("loaded by another zrun version"),
            std::string::npos)
      << st.dump(2);
  ::unlink(real.c_str());
  pin.bpf_fd = static_cast<uint32_t>(*kept);
  ASSERT_TRUE(base::bpf(BPF_OBJ_PIN, pin, "pin").ok());
  ::close(static_cast<int>(*kept));
  EXPECT_EQ(rt.del(id, true).code, 0);
  EXPECT_FALSE(bpffs_mounted());
  EXPECT_EQ(leftovers(rt, b, id), "");
}

TEST_F(AccountingTest, AnnotationTurnsAccountingOff) {
  Bundle b(rt);
  b.config()["annotations"]["org.zrun.accounting"] = "false";
  b.probe({"sleep", "60"});
  std::string id = rt.new_id();
  start(b, id);
  Json s = stats(id);
  EXPECT_FALSE(s["accounting"].value("enabled", true)) << s.dump(2);
  EXPECT_TRUE(s["ebpf"].is_null()) << s.dump(2);
  EXPECT_NE(s["accounting"].value("reason", "").find("org.zrun.accounting"), std::string::npos)
      << s.dump(2);
  EXPECT_FALSE(bpffs_mounted()) << "nothing should be loaded for an opted-out container";
}

TEST_F(AccountingTest, EnvironmentTurnsAccountingOffGlobally) {
  Bundle b(rt);
  b.probe({"sleep", "60"});
  b.save();
  std::string id = rt.new_id();
  RunResult r = rt.exec(
      {"create", "--bundle", b.path(), id},
      {.stdout_path = b.out_path(), .stderr_path = b.err_path(), .env = {"ZRUN_ACCOUNTING=off"}});
  ASSERT_EQ(r.code, 0) << r;
  Json s = stats(id);
  EXPECT_TRUE(s["ebpf"].is_null()) << s.dump(2);
  EXPECT_FALSE(bpffs_mounted());
}

TEST_F(AccountingTest, DeleteReportAndEventsCarryTheEbpfCounters) {
  Bundle b(rt);
  b.probe({"sleep", "60"});
  std::string id = rt.new_id();
  start(b, id);
  RunResult ev = rt.exec({"events", "--stats", id});
  ASSERT_EQ(ev.code, 0) << ev;
  EXPECT_EQ(ev.out.rfind(R"({"type":"stats","id":)", 0), 0u) << "runc's field order: " << ev.out;
  Json j = Json::parse(ev.out);
  EXPECT_EQ(j.value("type", ""), "stats");
  EXPECT_TRUE(j["data"].contains("cpu")) << "runc's fields stay";
  EXPECT_TRUE(j["data"].contains("ebpf"));
  bool compiled = !j["data"]["ebpf"].is_null();
  TempDir t;
  std::string report = t / "report.json";
  RunResult r = rt.exec({"delete", "--force", "--report", report, id});
  ASSERT_EQ(r.code, 0) << r;
  Json rep = Json::parse(read_file(report));
  EXPECT_EQ(rep.value("id", ""), id);
  EXPECT_TRUE(rep["cgroup"].contains("memory")) << rep.dump(2);
  if (compiled) {
    EXPECT_GE(num(rep["ebpf"], {"processes", "execs"}), 1u) << rep.dump(2);
  }
  EXPECT_FALSE(bpffs_mounted());
}

}  // namespace
}  // namespace zrun::test

namespace zrun::test {
namespace {

TEST_F(AccountingTest, SyscallCountingIsOptInAndCountsGetpid) {
  constexpr uint64_t kCalls = 100000;
  Bundle plain(rt);
  plain.probe({"sleep", "60"});
  std::string pid_plain = rt.new_id("plain");
  start(plain, pid_plain);
  if (!bpffs_mounted()) GTEST_SKIP() << "zrun was built without eBPF accounting";
  // Default accounting puts no hook on the syscall path.
  EXPECT_FALSE(path_exists(bpffs() + "/link_sys_enter"));
  EXPECT_TRUE(ebpf(pid_plain)["syscalls"].is_null());

  Bundle b(rt);
  b.config()["annotations"]["org.zrun.accounting.syscalls"] = "true";
  // The shell sleeps after the getpid loop, so the container stays alive to be read.
  b.args({"/bin/sh", "-c", "/bin/zrun-probe getpid " + std::to_string(kCalls) + "; sleep 60"});
  std::string id = rt.new_id("sys");
  start(b, id);
  EXPECT_TRUE(path_exists(bpffs() + "/link_sys_enter"));
  ASSERT_TRUE(wait_for_file(b.out_path(), 20s));
  Json e;
  for (int i = 0; i < 100; ++i) {
    if (b.out().find("getpid=") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(b.out().find("getpid="), std::string::npos) << b.out() << b.err();
  e = ebpf(id);
  ASSERT_TRUE(e["syscalls"].is_object()) << e.dump(2);
  EXPECT_GE(num(e, {"syscalls", "total"}), kCalls) << e.dump(2);
  uint64_t getpid = 0;
  for (auto& t : e["syscalls"]["top"])
    if (t.value("name", "") == "getpid") getpid = t.value("count", 0ull);
  EXPECT_GE(getpid, kCalls) << e.dump(2);
  EXPECT_LT(getpid, kCalls + 50) << e.dump(2);
  // The plain container's syscalls were not counted.
  EXPECT_TRUE(ebpf(pid_plain)["syscalls"].is_null());

  // The last opted-in container gone, the sys_enter hook goes too.
  RunResult r = rt.del(id, true);
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_TRUE(bpffs_mounted());
  EXPECT_FALSE(path_exists(bpffs() + "/link_sys_enter"));
}

TEST_F(AccountingTest, LoopbackTrafficIsCountedBothWays) {
  constexpr uint64_t kBytes = 1 << 20;
  Bundle b(rt);
  if (!b.has_namespace("network")) b.add_namespace("network");
  b.probe({"tcp-loop", std::to_string(kBytes)});
  std::string id = rt.new_id();
  run_to_end(b, id);
  ASSERT_NE(b.out().find("tcp_loop=" + std::to_string(kBytes)), std::string::npos)
      << b.out() << b.err();
  Json e = ebpf(id);
  SKIP_IF_COMPILED_OUT(e);
  for (const char* dir : {"out", "in"}) {
    const Json& n = e["network"][dir];
    EXPECT_GE(num(n, {"bytes"}), kBytes) << dir << " " << e.dump(2);
    EXPECT_GE(num(n, {"tcp_bytes"}), kBytes) << dir << " " << e.dump(2);
    EXPECT_LT(num(n, {"bytes"}), 2 * kBytes) << dir << " " << e.dump(2);
    EXPECT_GT(num(n, {"packets"}), 0u) << dir;
  }
}

// Direct I/O bypasses the page cache, so the container's own task submits the bios
// (block_bio_queue in its context): the written bytes are exact, up to the filesystem's
// own metadata writes (slack). Buffered writeback would be a kworker's, not counted.
TEST_F(AccountingTest, DirectIoWriteIsCounted) {
  constexpr uint64_t kBytes = 8 << 20, kSlack = 2 << 20;
  Bundle b(rt);
  struct stat st {};
  ASSERT_EQ(::stat(b.rootfs().c_str(), &st), 0);
  // Anonymous devices (major 0: tmpfs, overlayfs, ...) have no block queue.
  if (major(st.st_dev) == 0)
    GTEST_SKIP() << "the test rootfs " << b.rootfs() << " is not on a block device";
  b.probe({"dio-write", "/dio.bin", std::to_string(kBytes)});
  std::string id = rt.new_id();
  run_to_end(b, id);
  if (b.out().find("open=failed") != std::string::npos &&
      b.out().find("errno=22") != std::string::npos)
    GTEST_SKIP() << "the rootfs filesystem does not support O_DIRECT: " << b.out() << b.err();
  ASSERT_NE(b.out().find("dio_write=" + std::to_string(kBytes)), std::string::npos)
      << b.out() << b.err();
  Json e = ebpf(id);
  SKIP_IF_COMPILED_OUT(e);
  EXPECT_GE(num(e, {"io", "write_bytes"}), kBytes) << e.dump(2);
  EXPECT_LT(num(e, {"io", "write_bytes"}), kBytes + kSlack) << e.dump(2);
  EXPECT_GT(num(e, {"io", "writes"}), 0u) << e.dump(2);
  // The text view shows it next to the cgroup's io figures.
  RunResult r = rt.exec({"stats", id});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("  io:        read "), std::string::npos) << r.out;
}

}  // namespace
}  // namespace zrun::test

namespace zrun::test {
namespace {

TEST_F(AccountingTest, TopOnceShowsTheSpinnerFirst) {
  Bundle spin(rt), idle(rt);
  spin.probe({"spin", "10"});
  idle.probe({"sleep", "60"});
  std::string sid = rt.new_id("spin"), iid = rt.new_id("idle");
  start(idle, iid);
  start(spin, sid);
  std::this_thread::sleep_for(300ms);
  RunResult r = rt.exec({"top", "--once"});
  ASSERT_EQ(r.code, 0) << r;
  auto header = r.out.find("CPU%");
  auto s = r.out.find(sid), i = r.out.find(iid);
  ASSERT_NE(header, std::string::npos) << r.out;
  ASSERT_NE(s, std::string::npos) << r.out;
  ASSERT_NE(i, std::string::npos) << r.out;
  EXPECT_LT(s, i) << "sorted by CPU:\n" << r.out;
  EXPECT_NE(r.out.find("running"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace zrun::test

// The programs cache, per CPU, the running task's status and, per cgroup id, the tracked
// map's answer (accounting.bpf.c). What those caches could get wrong: a process that joins
// a container later, tasks of another container or of the host, and many context
// switches between CPUs. Syscall counts of getpid loops are exact, so they show it.
namespace zrun::test {
namespace {

class AccountingCacheTest : public AccountingTest {
 protected:
  // A container counting its syscalls that runs `cmd`, then stays alive.
  void start_counting(Bundle& b, const std::string& id, const std::string& cmd) {
    b.config()["annotations"]["org.zrun.accounting.syscalls"] = "true";
    b.args({"/bin/sh", "-c", cmd + "; echo done=1; sleep 60"});
    start(b, id);
  }

  static bool wait_done(Bundle& b) {
    for (int i = 0; i < 600; ++i) {
      if (b.out().find("done=1") != std::string::npos) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  uint64_t getpid_count(const std::string& id) {
    Json e = ebpf(id);
    if (!e.is_object() || !e["syscalls"].is_object()) return ~0ull;
    uint64_t n = 0;
    for (auto& t : e["syscalls"]["top"])
      if (t.value("name", "") == "getpid") n = t.value("count", 0ull);
    return n;
  }
};

// A process `zrun exec` moves into the running container is counted from then on (the
// migration invalidates every cached status); before it, the container made no getpid.
TEST_F(AccountingCacheTest, ExecJoinerIsCounted) {
  constexpr uint64_t kCalls = 200000;
  Bundle b(rt);
  b.config()["annotations"]["org.zrun.accounting.syscalls"] = "true";
  b.probe({"sleep", "60"});
  std::string id = rt.new_id("join");
  start(b, id);
  if (!bpffs_mounted()) GTEST_SKIP() << "zrun was built without eBPF accounting";
  uint64_t before = getpid_count(id);
  EXPECT_LT(before, 50u);
  RunResult r = rt.exec({"exec", id, "/bin/zrun-probe", "getpid", std::to_string(kCalls)});
  ASSERT_EQ(r.code, 0) << r;
  ASSERT_NE(r.out.find("getpid=" + std::to_string(kCalls)), std::string::npos) << r;
  uint64_t after = getpid_count(id);
  EXPECT_GE(after, before + kCalls);
  EXPECT_LT(after, before + kCalls + 50);
}

// Two containers and the host make getpid calls at the same time, more runnable tasks
// than CPUs (thousands of switches and CPU migrations): each container counts exactly its
// own calls; the host's are nobody's.
TEST_F(AccountingCacheTest, TwoContainersAndTheHostStaySeparate) {
  constexpr uint64_t kA = 150000, kB = 50000, kHost = 400000;
  Bundle a(rt), b(rt);
  std::string ida = rt.new_id("a"), idb = rt.new_id("b");
  std::string loop_a = "/bin/zrun-probe getpid " + std::to_string(kA);
  start_counting(a, ida, loop_a + " & " + loop_a + " & wait");
  start_counting(b, idb, "/bin/zrun-probe getpid " + std::to_string(kB));
  if (!bpffs_mounted()) GTEST_SKIP() << "zrun was built without eBPF accounting";
  std::thread host([] {
    for (uint64_t i = 0; i < kHost; ++i) ::syscall(SYS_getpid);
  });
  host.join();
  ASSERT_TRUE(wait_done(a)) << a.out() << a.err();
  ASSERT_TRUE(wait_done(b)) << b.out() << b.err();
  uint64_t na = getpid_count(ida), nb = getpid_count(idb);
  EXPECT_GE(na, 2 * kA);
  EXPECT_LT(na, 2 * kA + 50);
  EXPECT_GE(nb, kB);
  EXPECT_LT(nb, kB + 50);
  Json e = ebpf(ida);
  EXPECT_GT(num(e, {"cpu", "voluntary_switches"}) + num(e, {"cpu", "involuntary_switches"}), 2u)
      << e.dump(2);
}

// Many short sleeps: every getpid of the loop follows a switch-in, so every one runs
// right after sched_switch refilled this CPU's cached status.
TEST_F(AccountingCacheTest, CountsStayExactAcrossContextSwitches) {
  constexpr uint64_t kRounds = 2000;
  Bundle b(rt);
  std::string id = rt.new_id("sw");
  start_counting(b, id, "/bin/zrun-probe getpid-sleep " + std::to_string(kRounds));
  if (!bpffs_mounted()) GTEST_SKIP() << "zrun was built without eBPF accounting";
  ASSERT_TRUE(wait_done(b)) << b.out() << b.err();
  ASSERT_NE(b.out().find("getpid_sleep=" + std::to_string(kRounds)), std::string::npos) << b.out();
  uint64_t n = getpid_count(id);
  EXPECT_GE(n, kRounds);
  EXPECT_LT(n, kRounds + 50);
  Json e = ebpf(id);
  EXPECT_GE(num(e, {"cpu", "voluntary_switches"}), kRounds) << e.dump(2);
}

// A running task moved between cgroups (a cgroup.procs write, not a fork) while it spins
// on the CPU without a syscall, so it may not switch out before its next counted call:
// the migration's generation bump must invalidate the cached status. A host process is
// moved into container A, makes kA getpid calls, is moved into container B, makes kB.
TEST_F(AccountingCacheTest, MigratedRunningTaskIsCountedWhereItIs) {
  constexpr uint64_t kA = 100000, kB = 30000;
  Bundle a(rt), b(rt);
  for (Bundle* x : {&a, &b}) {
    x->config()["annotations"]["org.zrun.accounting.syscalls"] = "true";
    x->probe({"sleep", "60"});
  }
  std::string ida = rt.new_id("a"), idb = rt.new_id("b");
  start(a, ida);
  start(b, idb);
  if (!bpffs_mounted()) GTEST_SKIP() << "zrun was built without eBPF accounting";
  std::string cga = unified_dir(rt.state_json(ida).value("pid", 0));
  std::string cgb = unified_dir(rt.state_json(idb).value("pid", 0));
  ASSERT_FALSE(cga.empty() || cgb.empty());
  uint64_t a0 = getpid_count(ida), b0 = getpid_count(idb);

  struct Shared {
    std::atomic<int> phase, ack;
  };
  void* mem =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* sh = new (mem) Shared{};
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    while (sh->phase.load() < 1) {
    }
    for (uint64_t i = 0; i < kA; ++i) ::syscall(SYS_getpid);
    sh->ack.store(1);
    while (sh->phase.load() < 2) {
    }
    for (uint64_t i = 0; i < kB; ++i) ::syscall(SYS_getpid);
    ::_exit(0);
  }
  auto move = [&](const std::string& dir) {
    int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    std::string p = std::to_string(pid);
    bool ok = fd >= 0 && ::write(fd, p.data(), p.size()) == static_cast<ssize_t>(p.size());
    if (fd >= 0) ::close(fd);
    return ok;
  };
  bool moved_a = move(cga);
  sh->phase.store(1);
  for (int i = 0; moved_a && i < 3000 && sh->ack.load() == 0; ++i)
    std::this_thread::sleep_for(10ms);
  bool acked = sh->ack.load() == 1;
  bool moved_b = acked && move(cgb);
  sh->phase.store(2);
  if (!moved_a || !moved_b) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::munmap(mem, sizeof(Shared));
  ASSERT_TRUE(moved_a) << "move into " << cga;
  ASSERT_TRUE(acked);
  ASSERT_TRUE(moved_b) << "move into " << cgb;
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  uint64_t na = getpid_count(ida) - a0, nb = getpid_count(idb) - b0;
  EXPECT_GE(na, kA);
  EXPECT_LT(na, kA + 50);
  EXPECT_GE(nb, kB);
  EXPECT_LT(nb, kB + 50);
}

// Programs loaded by a zrun without the cache generations (no map_gens pinned) while its
// containers run: this zrun cannot invalidate their caches, so it refuses them like a
// different layout; delete still cleans up.
TEST_F(AccountingCacheTest, PinnedMapsWithoutGenerationsAreRefused) {
  Bundle b(rt);
  b.probe({"sleep", "60"});
  std::string id = rt.new_id();
  start(b, id);
  if (!bpffs_mounted()) GTEST_SKIP() << "zrun was built without eBPF accounting";
  ASSERT_EQ(::unlink((bpffs() + "/map_gens").c_str()), 0) << strerror(errno);
  Json st = stats(id);
  EXPECT_FALSE(st["accounting"].value("enabled", true)) << st.dump(2);
  EXPECT_NE(st["accounting"].value("reason", "").find("loaded by another zrun version"),
            std::string::npos)
      << st.dump(2);
  EXPECT_EQ(rt.del(id, true).code, 0);
  EXPECT_FALSE(bpffs_mounted());
  EXPECT_EQ(leftovers(rt, b, id), "");
}

}  // namespace
}  // namespace zrun::test

namespace zrun::test {
namespace {

// Off the build host's kernel the loader relocates against the kernel's own BTF and finds
// the kfunc's and structs' ids by scanning it (cgroups/btf_scan.cc); ZRUN_ACCOUNTING_BTF=
// kernel takes that path here. The programs must load and count as with the embedded ids.
TEST_F(AccountingTest, KernelBtfPathLoadsAndCounts) {
  constexpr uint64_t kExecs = 5;
  Bundle b(rt);
  b.probe({"execn", std::to_string(kExecs)});
  b.save();
  std::string id = rt.new_id();
  RunResult r =
      rt.exec({"create", "--bundle", b.path(), id}, {.stdout_path = b.out_path(),
                                                     .stderr_path = b.err_path(),
                                                     .env = {"ZRUN_ACCOUNTING_BTF=kernel"}});
  ASSERT_EQ(r.code, 0) << r;
  r = rt.start(id);
  ASSERT_EQ(r.code, 0) << r;
  ASSERT_EQ(rt.wait_status(id, "stopped", 30s), "stopped") << b.out() << b.err();
  EXPECT_EQ(b.err().find("accounting"), std::string::npos) << b.err();  // no load warning
  Json e = ebpf(id);
  SKIP_IF_COMPILED_OUT(e);
  EXPECT_GE(num(e, {"processes", "execs"}), kExecs + 1) << e.dump(2);
  EXPECT_LT(num(e, {"processes", "execs"}), kExecs + 4) << e.dump(2);
  EXPECT_GT(num(e, {"cpu", "oncpu_ns"}), 0u) << e.dump(2);
}

// A BTF the loader cannot use (here garbage): accounting is off for the container with a
// warning naming the cause, the container runs, nothing stays loaded or mounted.
TEST_F(AccountingTest, UnusableBtfDegradesToAWarning) {
  if (!cg::acct::compiled_in()) GTEST_SKIP() << "zrun was built without eBPF accounting";
  TempDir tmp("zrun-it-btf");
  std::string bad = tmp.path() + "/garbage.btf";
  write_file(bad, std::string(4096, 'x'));
  Bundle b(rt);
  b.probe({"execn", "2"});
  b.save();
  std::string id = rt.new_id();
  RunResult r =
      rt.exec({"create", "--bundle", b.path(), id}, {.stdout_path = b.out_path(),
                                                     .stderr_path = b.err_path(),
                                                     .env = {"ZRUN_ACCOUNTING_BTF=" + bad}});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_NE(b.err().find("eBPF accounting off"), std::string::npos) << b.err();
  EXPECT_NE(b.err().find("not BTF"), std::string::npos) << b.err();
  EXPECT_FALSE(bpffs_mounted());
  r = rt.start(id);
  ASSERT_EQ(r.code, 0) << r;
  ASSERT_EQ(rt.wait_status(id, "stopped", 30s), "stopped") << b.out() << b.err();
  EXPECT_NE(b.out().find("execn=done"), std::string::npos) << b.out() << b.err();
  Json s = stats(id);
  EXPECT_TRUE(s["ebpf"].is_null()) << s.dump(2);
}

}  // namespace
}  // namespace zrun::test
