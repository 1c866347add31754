// Cgroup limits enforced on real containers (this host: hybrid, v1 controllers), and the
// commands over them: pause/resume, ps, update, kill --all, events, beancounters.
// Tolerances are generous: CI machines are small and noisy (2 cores).
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/bpf_syscall.h"
#include "cgroups/device_filter.h"
#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

using Clock = std::chrono::steady_clock;

class CgroupsTest : public ContainerTest {
 protected:
  // create + start; returns the init's host PID (0 on failure, with a test failure).
  int start(Bundle& b, const std::string& id) {
    RunResult r = rt.create(b, id);
    EXPECT_EQ(r.code, 0) << r;
    if (r.code != 0) return 0;
    r = rt.start(id);
    EXPECT_EQ(r.code, 0) << r;
    Json s = rt.state_json(id);
    return s.is_object() ? s.value("pid", 0) : 0;
  }

  // The v1 directory of `ctrl` the process is in, from /proc/PID/cgroup ("" if none).
  static std::string v1_dir(int pid, const std::string& ctrl) {
    std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/cgroup"));
    std::string line;
    while (std::getline(in, line)) {
      auto a = line.find(':'), b = line.find(':', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      std::string ctrls = "," + line.substr(a + 1, b - a - 1) + ",";
      if (ctrls.find("," + ctrl + ",") != std::string::npos)
        return "/sys/fs/cgroup/" + ctrl + line.substr(b + 1);
    }
    return "";
  }

  static long long read_num(const std::string& path) {
    std::string s = read_file(path);
    try {
      return std::stoll(s);
    } catch (...) {
      return -1;
    }
  }

  // Hybrid/unified: cgroup.events "frozen 1" in the unified hierarchy; legacy: the v1
  // freezer's state.
  static bool kernel_says_frozen(int pid) {
    std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/cgroup"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("0::", 0) != 0) continue;
      std::string base =
          path_exists("/sys/fs/cgroup/unified") ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup";
      std::string ev = read_file(base + line.substr(3) + "/cgroup.events");
      if (ev.find("frozen ") != std::string::npos) return ev.find("frozen 1") != std::string::npos;
    }
    return read_file(v1_dir(pid, "freezer") + "/freezer.state") == "FROZEN\n";
  }

  static bool have_v1(const std::string& ctrl) {
    return path_exists("/sys/fs/cgroup/" + ctrl + "/cgroup.procs");
  }

  // `beancounters --json ID` -> the row for `resource` (null when absent).
  Json bean_row(const std::string& id, const std::string& resource) {
    RunResult r = rt.exec({"beancounters", "--json", id});
    EXPECT_EQ(r.code, 0) << r;
    try {
      Json j = Json::parse(r.out);
      for (auto& c : j)
        if (c.value("id", "") == id)
          for (auto& row : c["counters"])
            if (row.value("resource", "") == resource) return row;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "beancounters --json: " << e.what() << "\n" << r;
    }
    return Json();
  }

  static long long num_or(const Json& row, const char* key, long long def = -1) {
    return row.is_object() && row.contains(key) && row[key].is_number() ? row[key].get<long long>()
                                                                        : def;
  }

  bool zrun_only() {
    if (!runtime_is_zrun()) {
      GTEST_LOG_(INFO) << "zrun-specific command; skipped for " << rt.path();
      return false;
    }
    return true;
  }
};

// A shell loop in the container counting into /tmp/count (read from the host side).
void counting_bundle(Bundle& b) {
  b.args({"/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i >/tmp/count; sleep 0.05; done"});
}

long long read_count(const Bundle& b) {
  try {
    return std::stoll(read_file(b.rootfs() + "/tmp/count"));
  } catch (...) {
    return -1;
  }
}

// Wait until the counter moves past `after` (false on timeout).
bool count_advances(const Bundle& b, long long after, std::chrono::milliseconds timeout = 5s) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (read_count(b) > after) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST_F(CgroupsTest, PauseStopsProcessesAndResumeContinues) {
  Bundle b(rt);
  counting_bundle(b);
  std::string id = rt.new_id();
  int pid = start(b, id);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(count_advances(b, 0)) << "counter never started";

  RunResult r = rt.exec({"pause", id});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(rt.status(id), "paused");
  EXPECT_TRUE(kernel_says_frozen(pid));
  long long frozen_at = read_count(b);
  std::this_thread::sleep_for(500ms);  // 10 iterations if it were running
  EXPECT_EQ(read_count(b), frozen_at) << "the counter advanced while paused";
  expect_error(rt.exec({"pause", id}), "not running");

  r = rt.exec({"resume", id});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(rt.status(id), "running");
  EXPECT_TRUE(count_advances(b, frozen_at)) << "the counter did not continue after resume";
  expect_error(rt.exec({"resume", id}), "not paused");
}

TEST_F(CgroupsTest, PsListsThePids) {
  Bundle b(rt);
  b.args({"/bin/sh", "-c", "sleep 100 & sleep 100 & wait"});
  std::string id = rt.new_id();
  int pid = start(b, id);
  ASSERT_GT(pid, 0);
  Json pids;
  for (int i = 0; i < 50; ++i) {  // until both sleeps exist
    RunResult r = rt.exec({"ps", "--format", "json", id});
    ASSERT_EQ(r.code, 0) << r;
    pids = Json::parse(r.out);
    if (pids.size() >= 3) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(pids.is_array()) << pids;
  ASSERT_EQ(pids.size(), 3u) << pids;
  EXPECT_NE(std::find(pids.begin(), pids.end(), Json(pid)), pids.end()) << pids;
  for (auto& p : pids) EXPECT_TRUE(path_exists("/proc/" + std::to_string(p.get<int>())));
  RunResult t = rt.exec({"ps", id});
  ASSERT_EQ(t.code, 0) << t;
  EXPECT_NE(t.out.find("PID"), std::string::npos) << t;
  EXPECT_NE(t.out.find(std::to_string(pid)), std::string::npos) << t;
  EXPECT_NE(t.out.find("sleep 100"), std::string::npos) << t;
}

TEST_F(CgroupsTest, MemoryHogIsOomKilledInsideOnly) {
  if (!have_v1("memory")) GTEST_SKIP() << "no v1 memory controller";
  Bundle b(rt);
  b.config()["linux"]["resources"]["memory"] = {{"limit", 32 << 20}};
  // With swap on the host, memory+swap = memory keeps the hog from escaping into swap (v1
  // then counts the refusal in memsw.failcnt, our swap row, instead of memory.failcnt).
  std::string swaps = read_file("/proc/swaps");
  bool host_swap = std::count(swaps.begin(), swaps.end(), '\n') > 1;
  if (host_swap) b.config()["linux"]["resources"]["memory"]["swap"] = 32 << 20;
  b.probe({"hog", "96"});
  std::string id = rt.new_id();
  RunResult r = rt.run(b, id, {"--keep"}, {.timeout = 60s});
  EXPECT_EQ(r.code, 128 + SIGKILL) << r;
  EXPECT_EQ(r.out.find("hog=96"), std::string::npos) << r;
  if (zrun_only()) {
    Json row = bean_row(id, "physpages");
    long long fails = num_or(row, "failcnt", 0);
    if (host_swap) fails += num_or(bean_row(id, "swap"), "failcnt", 0);
    EXPECT_GT(fails, 0) << row;
    if (row.contains("oom_kill")) {
      EXPECT_GE(row["oom_kill"].get<long long>(), 1) << row;
    }
    EXPECT_EQ(num_or(row, "limit"), 32 << 20) << row;
    EXPECT_GE(num_or(row, "maxheld"), 16 << 20) << row;
  }
}

TEST_F(CgroupsTest, ForkLoopStopsAtPidsLimit) {
  if (!have_v1("pids")) GTEST_SKIP() << "no v1 pids controller";
  Bundle b(rt);
  b.config()["linux"]["resources"]["pids"] = {{"limit", 10}};
  b.probe({"fork", "50"});
  std::string id = rt.new_id();
  RunResult r = rt.run(b, id, {"--keep"}, {.timeout = 60s});
  auto kv = parse_kv(r.out);
  EXPECT_EQ(kv["errno"], std::to_string(EAGAIN)) << r;
  EXPECT_EQ(kv["forked"], "9") << r;  // the probe itself is the 10th task
  if (zrun_only()) {
    Json row = bean_row(id, "numproc");
    EXPECT_GT(num_or(row, "failcnt"), 0) << row;
    EXPECT_EQ(num_or(row, "limit"), 10) << row;
    EXPECT_GE(num_or(row, "maxheld"), 10) << row;
  }
}

TEST_F(CgroupsTest, CpuQuotaLimitsASpinner) {
  if (!have_v1("cpu") || !have_v1("cpuacct")) GTEST_SKIP() << "no v1 cpu/cpuacct";
  Bundle b(rt);
  b.config()["linux"]["resources"]["cpu"] = {{"quota", 20000}, {"period", 100000}};
  b.args({"/bin/sh", "-c", "exec /bin/zrun-probe spin 30"});
  std::string id = rt.new_id();
  int pid = start(b, id);
  ASSERT_GT(pid, 0);
  std::string acct = v1_dir(pid, "cpuacct") + "/cpuacct.usage";
  std::this_thread::sleep_for(200ms);
  long long u0 = read_num(acct);
  auto t0 = Clock::now();
  std::this_thread::sleep_for(1500ms);
  long long u1 = read_num(acct);
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_GE(u0, 0);
  double share = static_cast<double>(u1 - u0) / 1e9 / wall;
  // 20% of one CPU; unthrottled it would be ~100%.
  EXPECT_GT(share, 0.05) << "spinner got almost no CPU";
  EXPECT_LT(share, 0.45) << "spinner was not throttled to its quota";
}

TEST_F(CgroupsTest, CpusetPinsToCpu0) {
  Bundle b(rt);
  b.config()["linux"]["resources"]["cpu"] = {{"cpus", "0"}};
  b.probe({"cat", "/proc/self/status"});
  RunResult r = rt.run(b, rt.new_id());
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("Cpus_allowed_list:\t0\n"), std::string::npos) << r;
}

TEST_F(CgroupsTest, UpdateChangesALiveLimit) {
  if (!have_v1("memory")) GTEST_SKIP() << "no v1 memory controller";
  Bundle b(rt);
  b.config()["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
  b.probe({"sleep", "100"});
  std::string id = rt.new_id();
  int pid = start(b, id);
  ASSERT_GT(pid, 0);
  std::string mem = v1_dir(pid, "memory");
  EXPECT_EQ(read_num(mem + "/memory.limit_in_bytes"), 64 << 20);
  RunResult r = rt.exec({"update", "--memory", "128m", id});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(read_num(mem + "/memory.limit_in_bytes"), 128 << 20);
  // The resources JSON from stdin (runc's `update -r -`).
  ExecOptions o;
  o.stdin_data = R"({"memory": {"limit": 100663296}, "pids": {"limit": 42}})";
  r = rt.exec({"update", "-r", "-", id}, o);
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(read_num(mem + "/memory.limit_in_bytes"), 96 << 20);
  if (have_v1("pids")) {
    EXPECT_EQ(read_num(v1_dir(pid, "pids") + "/pids.max"), 42);
  }
  expect_error(rt.exec({"update", "--memory", "12q", id}), "memory");
}

TEST_F(CgroupsTest, KillAllReachesGrandchildren) {
  Bundle b(rt);
  // init -> sh -> sleep: the sleep is a grandchild of init.
  b.args({"/bin/sh", "-c", "sh -c 'sleep 100 & wait' & wait"});
  std::string id = rt.new_id();
  int pid = start(b, id);
  ASSERT_GT(pid, 0);
  Json pids;
  for (int i = 0; i < 50; ++i) {
    RunResult r = rt.exec({"ps", "-f", "json", id});
    pids = Json::parse(r.out.empty() ? "[]" : r.out);
    if (pids.size() >= 3) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_GE(pids.size(), 3u) << pids;
  RunResult k = rt.kill(id, "KILL", true);
  ASSERT_EQ(k.code, 0) << k;
  EXPECT_EQ(rt.wait_status(id, "stopped"), "stopped");
  for (auto& p : pids) {
    std::string stat = read_file("/proc/" + std::to_string(p.get<int>()) + "/stat");
    auto rp = stat.rfind(')');
    bool dead = stat.empty() || (rp != std::string::npos && stat[rp + 2] == 'Z');
    EXPECT_TRUE(dead) << "pid " << p << " survived kill --all: " << stat;
  }
}

TEST_F(CgroupsTest, DeleteLeavesNoCgroupInAnyHierarchy) {
  Bundle b(rt);
  b.config()["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
  b.config()["linux"]["resources"]["pids"] = {{"limit", 100}};
  b.probe({"sleep", "100"});
  std::string id = rt.new_id();
  int pid = start(b, id);
  ASSERT_GT(pid, 0);
  std::vector<std::string> dirs;
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(':'), c = line.find(':', a + 1);
    std::string ctrls = line.substr(a + 1, c - a - 1), path = line.substr(c + 1);
    if (path.find(id) == std::string::npos) continue;
    if (ctrls.empty())
      dirs.push_back("/sys/fs/cgroup/unified" + path);
    else if (ctrls.find("name=") == std::string::npos)
      dirs.push_back("/sys/fs/cgroup/" + ctrls.substr(0, ctrls.find(',')) + path);
  }
  EXPECT_FALSE(dirs.empty());
  for (auto& d : dirs) EXPECT_TRUE(path_exists(d)) << d;
  RunResult r = rt.del(id, true);
  ASSERT_EQ(r.code, 0) << r;
  for (auto& d : dirs) EXPECT_FALSE(path_exists(d)) << d << " left behind";
  EXPECT_EQ(leftovers(rt, b, id), "");
}

TEST_F(CgroupsTest, EventsStatsHasRuncFields) {
  if (!zrun_only()) GTEST_SKIP();
  Bundle b(rt);
  b.config()["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
  b.config()["linux"]["resources"]["pids"] = {{"limit", 50}};
  b.probe({"sleep", "100"});
  std::string id = rt.new_id();
  ASSERT_GT(start(b, id), 0);
  RunResult r = rt.exec({"events", "--stats", id});
  ASSERT_EQ(r.code, 0) << r;
  Json e = Json::parse(r.out);
  EXPECT_EQ(e["type"], "stats");
  EXPECT_EQ(e["id"], id);
  const Json& d = e["data"];
  EXPECT_GT(d["cpu"]["usage"]["total"].get<uint64_t>(), 0u) << d;
  for (const char* k : {"percpu", "kernel", "user"}) EXPECT_TRUE(d["cpu"]["usage"].contains(k));
  for (const char* k : {"periods", "throttledPeriods", "throttledTime"})
    EXPECT_TRUE(d["cpu"]["throttling"].contains(k)) << k;
  EXPECT_GT(d["memory"]["usage"]["usage"].get<uint64_t>(), 0u) << d;
  EXPECT_EQ(d["memory"]["usage"]["limit"], 64 << 20) << d;
  for (const char* k : {"max", "failcnt"}) EXPECT_TRUE(d["memory"]["usage"].contains(k)) << k;
  for (const char* k : {"swap", "kernel", "raw"}) EXPECT_TRUE(d["memory"].contains(k)) << k;
  EXPECT_EQ(d["pids"]["current"], 1) << d;
  EXPECT_EQ(d["pids"]["limit"], 50) << d;
  EXPECT_TRUE(d["blkio"].is_object()) << d;
  EXPECT_TRUE(d["hugetlb"].is_object()) << d;
}

TEST_F(CgroupsTest, EventsReportsOomAndStopsWithTheContainer) {
  if (!zrun_only()) GTEST_SKIP();
  if (!have_v1("memory") && !path_exists("/sys/fs/cgroup/cgroup.controllers"))
    GTEST_SKIP() << "no memory controller";
  Bundle b(rt);
  b.config()["linux"]["resources"]["memory"] = {{"limit", 32 << 20}};
  // The hog starts after `events` is watching and is the one the OOM killer picks; the
  // shell then exits, which ends the event stream.
  b.args({"/bin/sh", "-c", "sleep 2; /bin/zrun-probe hog 96; sleep 1"});
  std::string id = rt.new_id();
  ASSERT_GT(start(b, id), 0);
  RunResult r = rt.exec({"events", "--interval", "1s", id}, {.timeout = 30s});
  EXPECT_FALSE(r.timed_out) << "events did not exit when the container stopped: " << r;
  EXPECT_EQ(r.code, 0) << r;
  int stats = 0, ooms = 0;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    Json e = Json::parse(line, nullptr, false);
    ASSERT_FALSE(e.is_discarded()) << line;
    EXPECT_EQ(e["id"], id);
    if (e["type"] == "stats") ++stats;
    if (e["type"] == "oom") ++ooms;
  }
  EXPECT_GE(stats, 2) << r;
  EXPECT_GE(ooms, 1) << r;
}

TEST_F(CgroupsTest, BeancountersTableListsAllContainers) {
  if (!zrun_only()) GTEST_SKIP();
  Bundle b1(rt), b2(rt);
  b1.probe({"sleep", "100"});
  b2.probe({"sleep", "100"});
  std::string id1 = rt.new_id(), id2 = rt.new_id();
  ASSERT_GT(start(b1, id1), 0);
  ASSERT_GT(start(b2, id2), 0);
  RunResult r = rt.exec({"beancounters"});
  ASSERT_EQ(r.code, 0) << r;
  for (const char* k : {"held", "maxheld", "barrier", "limit", "failcnt", "physpages", "swap",
                        "numproc", "cpu", "io"})
    EXPECT_NE(r.out.find(k), std::string::npos) << k << "\n" << r;
  EXPECT_NE(r.out.find(id1 + ":"), std::string::npos) << r;
  EXPECT_NE(r.out.find(id2 + ":"), std::string::npos) << r;
  // No limit set: unlimited prints as LONG_MAX, like OpenVZ.
  Json row = bean_row(id1, "numproc");
  EXPECT_EQ(row["limit"].get<uint64_t>(), 9223372036854775807ull) << row;
  EXPECT_EQ(row["held"], 1) << row;
  expect_error(rt.exec({"beancounters", "no-such-container"}), "no-such-container");
}

// A host device node bind-mounted into the container: present, but the device rules
// (deny all + the default list) do not allow it. /dev/net/tun (char 10:200): opening it
// needs no capability (only TUNSETIFF does) and has no effect.
constexpr const char* kTun = "/dev/tunx";
void tun_bundle(Bundle& b) { b.add_mount(kTun, "bind", "/dev/net/tun", {"bind"}); }

TEST_F(CgroupsTest, DeviceRulesDenyInsideAndTheFilterIsAttached) {
  Bundle b(rt);
  tun_bundle(b);
  if (!path_exists("/dev/net/tun")) GTEST_SKIP() << "no /dev/net/tun on this host";
  b.probe({"open", kTun, "r"});
  auto kv = run_kv(b, 1);
  EXPECT_EQ(kv["open"], "failed");
  EXPECT_EQ(kv["errno"], std::to_string(EPERM)) << kv["error"];
  // The same node with a rule allowing it (later rules win over the leading deny-all).
  b.config()["linux"]["resources"]["devices"].push_back(
      {{"allow", true}, {"type", "c"}, {"major", 10}, {"minor", 200}, {"access", "r"}});
  kv = run_kv(b, 0);
  EXPECT_EQ(kv["open"], "ok") << kv["error"];
  b.probe({"open", kTun, "rw"});  // "r" does not cover an O_RDWR open
  kv = run_kv(b, 1);
  EXPECT_EQ(kv["errno"], std::to_string(EPERM)) << kv["error"];

  if (!zrun_only()) return;
  // zrun attaches the rules as a cgroup_device eBPF program on the container's cgroup2
  // cgroup, in hybrid mode too (next to the v1 devices controller); delete frees it.
  b.probe({"sleep", "100"});
  std::string id = rt.new_id();
  int pid = start(b, id);
  ASSERT_GT(pid, 0);
  std::string dir = unified_dir(pid);
  if (dir.empty()) GTEST_SKIP() << "no cgroup2 hierarchy";
  auto progs = cg::attached_device_programs(dir);
  ASSERT_TRUE(progs.ok()) << progs.error().text();
  ASSERT_EQ(progs->size(), 1u) << dir;
  EXPECT_EQ((*progs)[0].name, cg::kDeviceFilterName);
  uint32_t id0 = (*progs)[0].id;
  EXPECT_TRUE(base::bpf_program_exists(id0));
  RunResult r = rt.del(id, true);
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_FALSE(path_exists(dir));
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !base::bpf_program_exists(id0);
    if (!gone) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(gone) << "device program " << id0 << " outlived the container";
  EXPECT_EQ(leftovers(rt, b, id), "");
}

// update -r with device rules replaces them live: on the v1 devices controller and the
// cgroup2 program alike (exactly one zrun program stays attached).
TEST_F(CgroupsTest, UpdateReplacesDeviceRules) {
  if (!zrun_only()) GTEST_SKIP();
  if (!path_exists("/dev/net/tun")) GTEST_SKIP() << "no /dev/net/tun on this host";
  Bundle b(rt);
  tun_bundle(b);
  b.probe({"sleep", "100"});
  std::string id = rt.new_id();
  int pid = start(b, id);
  ASSERT_GT(pid, 0);
  auto open_tun = [&] {
    return parse_kv(rt.exec({"exec", id, "/bin/zrun-probe", "open", kTun, "rw"}).out);
  };
  EXPECT_EQ(open_tun()["errno"], std::to_string(EPERM));
  ExecOptions o;
  o.stdin_data = R"({"devices": [{"allow": false, "access": "rwm"},
                                 {"allow": true, "type": "c", "major": 10, "minor": 200,
                                  "access": "rw"}]})";
  RunResult r = rt.exec({"update", "-r", "-", id}, o);
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(open_tun()["open"], "ok");
  // The default nodes stay usable after the new rules.
  auto kv = parse_kv(rt.exec({"exec", id, "/bin/zrun-probe", "open", "/dev/null", "rw"}).out);
  EXPECT_EQ(kv["open"], "ok") << kv["error"];
  std::string dir = unified_dir(pid);
  if (!dir.empty()) {
    auto progs = cg::attached_device_programs(dir);
    ASSERT_TRUE(progs.ok()) << progs.error().text();
    EXPECT_EQ(progs->size(), 1u);
  }
  // Saved for later: the device rules in the state dir's config.json are the new ones.
  Json saved = Json::parse(read_file(rt.root() + "/" + id + "/config.json"));
  EXPECT_EQ(saved["linux"]["resources"]["devices"].size(), 2u) << saved["linux"]["resources"];
}

// update keeps what it changed in the container's saved config: a second, partial update
// keeps the first change (in the cgroup and in the saved spec), and beancounters shows the
// limits in force.
TEST_F(CgroupsTest, UpdateIsSavedAndAPartialUpdateKeepsEarlierChanges) {
  if (!zrun_only()) GTEST_SKIP();
  Bundle b(rt);
  b.config()["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
  b.probe({"sleep", "100"});
  std::string id = rt.new_id();
  ASSERT_GT(start(b, id), 0);
  auto saved = [&] {
    return Json::parse(read_file(rt.root() + "/" + id + "/config.json"))["linux"]["resources"];
  };
  RunResult r = rt.exec({"update", "--memory", "128m", id});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(num_or(bean_row(id, "physpages"), "limit"), 128 << 20);
  EXPECT_EQ(saved()["memory"]["limit"], 128 << 20) << saved();
  r = rt.exec({"update", "--pids-limit", "42", id});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(num_or(bean_row(id, "numproc"), "limit"), 42);
  EXPECT_EQ(num_or(bean_row(id, "physpages"), "limit"), 128 << 20);
  Json res = saved();
  EXPECT_EQ(res["memory"]["limit"], 128 << 20) << res;
  EXPECT_EQ(res["pids"]["limit"], 42) << res;
  EXPECT_EQ(res["devices"].size(), 1u) << res;  // untouched by both updates
  // A failed update changes nothing on disk.
  expect_error(rt.exec({"update", "--memory", "12q", id}), "memory");
  EXPECT_EQ(saved(), res);
}

}  // namespace
}  // namespace zrun::test
