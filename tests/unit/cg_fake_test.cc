// The cgroup driver against fake cgroupfs trees in a temp dir: the exact writes for each
// resource on v2 and v1, directory lifetime (create/rollback/destroy), state round trip.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

#include "base/sys.h"
#include "cgroups/cgfs.h"
#include "cgroups/cgroup.h"
#include "cgroups/resources.h"

namespace zrun::cg {
namespace {

using Files = std::map<std::string, std::string>;  // file -> initial content

const char* kV2Ctrls = "cpuset cpu io memory hugetlb pids rdma";

Files v2_files() {
  return {{"cgroup.controllers", kV2Ctrls},
          {"cgroup.subtree_control", ""},
          {"cgroup.procs", ""},
          {"cgroup.freeze", "0"},
          {"cgroup.events", "populated 0\nfrozen 0\n"},
          {"cgroup.kill", ""},
          {"memory.max", "max"},
          {"memory.low", "0"},
          {"memory.high", "max"},
          {"memory.swap.max", "max"},
          {"memory.current", "0"},
          {"cpu.weight", "100"},
          {"cpu.max", "max 100000"},
          {"cpu.max.burst", "0"},
          {"cpu.idle", "0"},
          {"cpuset.cpus", ""},
          {"cpuset.mems", ""},
          {"pids.max", "max"},
          {"io.weight", "default 100"},
          {"io.max", ""},
          {"hugetlb.2MB.max", "max"},
          {"rdma.max", ""}};
}

std::map<std::string, Files> v1_files() {
  Files procs = {{"cgroup.procs", ""}};
  auto with = [&](Files f) {
    f.insert(procs.begin(), procs.end());
    return f;
  };
  return {
      {"cpu", with({{"cpu.shares", "1024"},
                    {"cpu.cfs_period_us", "100000"},
                    {"cpu.cfs_quota_us", "-1"},
                    {"cpu.cfs_burst_us", "0"},
                    {"cpu.rt_period_us", "1000000"},
                    {"cpu.rt_runtime_us", "0"},
                    {"cpu.idle", "0"}})},
      {"cpuacct", with({})},
      {"cpuset", with({{"cpuset.cpus", ""}, {"cpuset.mems", ""}})},
      {"memory", with({{"memory.limit_in_bytes", "9223372036854771712"},
                       {"memory.memsw.limit_in_bytes", "9223372036854771712"},
                       {"memory.soft_limit_in_bytes", "9223372036854771712"},
                       {"memory.swappiness", "60"},
                       {"memory.oom_control", "oom_kill_disable 0"},
                       {"memory.use_hierarchy", "1"},
                       {"memory.usage_in_bytes", "0"}})},
      {"devices", with({{"devices.allow", ""}, {"devices.deny", ""}})},
      {"freezer", with({{"freezer.state", "THAWED"}})},
      // Like this host: no blkio.weight (CFQ is gone).
      {"blkio", with({{"blkio.throttle.read_bps_device", ""},
                      {"blkio.throttle.write_bps_device", ""},
                      {"blkio.throttle.read_iops_device", ""},
                      {"blkio.throttle.write_iops_device", ""}})},
      {"pids", with({{"pids.max", "max"}})},
      // Hybrid: the unified dir has only the core files (no controllers enabled).
      {"unified", with({{"cgroup.freeze", "0"},
                        {"cgroup.events", "populated 0\nfrozen 0\n"},
                        {"cgroup.kill", ""},
                        {"memory.pressure", ""}})},
  };
}

void put(const std::string& path, const std::string& content) { std::ofstream(path) << content; }

std::string get(const std::string& path) {
  auto r = base::read_file(path);
  return r ? std::string(base::trim(*r)) : "<missing " + path + ">";
}

class FakeCgroupfs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zrun-cg-fake-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    set_write_trace(&trace_);
  }
  void TearDown() override {
    set_write_trace(nullptr);
    (void)base::remove_tree(root_);
  }

  // mode: the layout to fake. v1 mounts at <root>/<ctrl>, cgroup2 at <root>/unified
  // (hybrid) or <root>/v2 (unified).
  void make_tree(Mode mode) {
    layout_ = Layout{};
    layout_.mode = mode;
    files_.clear();
    if (mode == Mode::kUnified) {
      layout_.unified = root_ + "/v2";
      files_[layout_.unified] = v2_files();
    } else {
      for (auto& [name, f] : v1_files()) {
        std::string mount = root_ + "/" + name;
        if (name == "unified") {
          if (mode == Mode::kLegacy) continue;
          layout_.unified = mount;
        } else {
          layout_.v1[name] = mount;
        }
        files_[mount] = f;
      }
    }
    for (auto& [mount, f] : files_) {
      ASSERT_TRUE(base::mkdir_p(mount).ok());
      populate(mount);
    }
    if (mode != Mode::kUnified) {
      put(root_ + "/cpuset/cpuset.cpus", "0-1");
      put(root_ + "/cpuset/cpuset.mems", "0");
    }
    trace_.clear();
  }

  void populate(const std::string& dir) {
    for (auto& [mount, f] : files_) {
      if (dir != mount && !base::starts_with(dir, mount + "/")) continue;
      for (auto& [name, content] : f) put(dir + "/" + name, content);
    }
  }

  CgroupConfig config(const std::string& path, const spec::Resources* r = nullptr) {
    CgroupConfig cfg;
    cfg.path = path;
    cfg.resources = r;
    cfg.fs_root = root_;
    cfg.layout = layout_;
    cfg.on_mkdir = [this](const std::string& dir) { populate(dir); };
    return cfg;
  }

  // Trace as "relative/path=value", leaving out the files matching `skip`.
  std::vector<std::string> writes(const std::string& skip = "\x01") {
    std::vector<std::string> out;
    for (auto& [path, value] : trace_) {
      std::string rel = path.substr(root_.size() + 1);
      if (rel.find(skip) != std::string::npos) continue;
      out.push_back(rel + "=" + value);
    }
    return out;
  }

  std::string root_;
  Layout layout_;
  std::map<std::string, Files> files_;
  std::vector<std::pair<std::string, std::string>> trace_;
};

spec::Resources full_resources() {
  spec::Resources r;
  r.memory.emplace();
  r.memory->limit = 100 << 20;
  r.memory->reservation = 50 << 20;
  r.memory->swap = 300 << 20;
  r.memory->kernel = 1 << 20;  // accepted and ignored
  r.cpu.emplace();
  r.cpu->shares = 1024;
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.cpu->burst = 1000;
  r.cpu->cpus = "0";
  r.cpu->mems = "0";
  r.cpu->idle = 0;
  r.pids_limit = 100;
  r.block_io.emplace();
  r.block_io->throttle_read_bps_device.push_back({8, 0, 1048576});
  r.block_io->throttle_write_iops_device.push_back({8, 0, 0});
  return r;
}

TEST_F(FakeCgroupfs, V2WritesEveryResource) {
  make_tree(Mode::kUnified);
  auto r = full_resources();
  r.block_io->weight = 500;
  r.hugepage_limits.push_back({"2MB", 4194304});
  r.rdma["mlx5_1"].hca_handles = 3;
  r.unified["memory.high"] = "80000000";
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});  // a bpf program
  auto cg = Cgroup::create(config("/zrun/c1", &r));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  EXPECT_EQ((*cg)->mode(), Mode::kUnified);
  EXPECT_GE((*cg)->clone_into_fd(), 0);
  std::string all = "+cpuset +cpu +io +memory +hugetlb +pids +rdma";
  std::vector<std::string> want = {
      "v2/cgroup.subtree_control=" + all,
      "v2/zrun/cgroup.subtree_control=" + all,
      "v2/zrun/c1/memory.swap.max=209715200",
      "v2/zrun/c1/memory.max=104857600",
      "v2/zrun/c1/memory.low=52428800",
      "v2/zrun/c1/cpu.weight=100",
      "v2/zrun/c1/cpu.max=50000 100000",
      "v2/zrun/c1/cpu.max.burst=1000",
      "v2/zrun/c1/cpu.idle=0",
      "v2/zrun/c1/cpuset.cpus=0",
      "v2/zrun/c1/cpuset.mems=0",
      "v2/zrun/c1/pids.max=100",
      "v2/zrun/c1/io.weight=4950",
      "v2/zrun/c1/io.max=8:0 rbps=1048576",
      "v2/zrun/c1/io.max=8:0 wiops=max",
      "v2/zrun/c1/hugetlb.2MB.max=4194304",
      "v2/zrun/c1/rdma.max=mlx5_1 hca_handle=3",
      "v2/zrun/c1/memory.high=80000000",
      // The device rules (with the defaults) as a cgroup_device program, not a file.
      "v2/zrun/c1/bpf:cgroup_device=64 insns",
  };
  EXPECT_EQ(writes(), want);
  EXPECT_EQ(get(root_ + "/v2/zrun/c1/memory.max"), "104857600");
  EXPECT_EQ(get(root_ + "/v2/zrun/c1/cpu.max"), "50000 100000");
  ASSERT_TRUE((*cg)->destroy().ok());
  EXPECT_FALSE(base::path_exists(root_ + "/v2/zrun"));
  EXPECT_TRUE(base::path_exists(root_ + "/v2/cgroup.procs"));
}

TEST_F(FakeCgroupfs, V2CpuMaxPartialAndPidsMax) {
  make_tree(Mode::kUnified);
  auto cg = Cgroup::create(config("/c2"));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  std::string d = root_ + "/v2/c2/";
  spec::Resources r;
  r.cpu.emplace();
  r.cpu->period = 250000;  // keeps the current quota ("max")
  ASSERT_TRUE((*cg)->update(r).ok());
  EXPECT_EQ(get(d + "cpu.max"), "max 250000");
  put(d + "cpu.max", "20000 250000");
  r.cpu->period.reset();
  r.cpu->quota = 30000;  // the kernel keeps the period
  ASSERT_TRUE((*cg)->update(r).ok());
  EXPECT_EQ(get(d + "cpu.max"), "30000");
  r.cpu->quota = -1;
  r.cpu->period = 100000;
  ASSERT_TRUE((*cg)->update(r).ok());
  EXPECT_EQ(get(d + "cpu.max"), "max 100000");
  for (int64_t v : {-1, 0}) {
    spec::Resources p;
    p.pids_limit = v;
    ASSERT_TRUE((*cg)->update(p).ok());
    EXPECT_EQ(get(d + "pids.max"), "max");
  }
  ASSERT_TRUE((*cg)->destroy().ok());
  ASSERT_TRUE((*cg)->destroy().ok());  // idempotent
}

// hugetlb: the reservation limit goes with the fault limit where the kernel has it
// (V2WritesEveryResource has no rsvd file: nothing written there).
TEST_F(FakeCgroupfs, V2HugetlbSetsTheReservationLimitToo) {
  make_tree(Mode::kUnified);
  auto cg = Cgroup::create(config("/h1"));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  std::string d = root_ + "/v2/h1/";
  put(d + "hugetlb.2MB.rsvd.max", "max");
  spec::Resources r;
  r.hugepage_limits.push_back({"2MB", 8388608});
  ASSERT_TRUE((*cg)->update(r).ok());
  EXPECT_EQ(get(d + "hugetlb.2MB.max"), "8388608");
  EXPECT_EQ(get(d + "hugetlb.2MB.rsvd.max"), "8388608");
  ASSERT_TRUE((*cg)->destroy().ok());
}

TEST_F(FakeCgroupfs, V2Rejections) {
  make_tree(Mode::kUnified);
  auto cg = Cgroup::create(config("/c3"));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  spec::Resources rt;
  rt.cpu.emplace();
  rt.cpu->realtime_runtime = 1000;
  EXPECT_FALSE((*cg)->update(rt).ok());
  spec::Resources sw;
  sw.memory.emplace();
  auto host = base::read_file("/proc/sys/vm/swappiness");
  uint64_t hv = host ? *base::parse_uint(*host) : 60;
  sw.memory->swappiness = hv == 7 ? 8 : 7;
  EXPECT_FALSE((*cg)->update(sw).ok());
  sw.memory->swappiness = hv;  // the host value is a no-op
  EXPECT_TRUE((*cg)->update(sw).ok());
  spec::Resources bad;
  bad.unified["../cgroup.procs"] = "1";
  EXPECT_FALSE((*cg)->update(bad).ok());
  spec::Resources absent;
  absent.unified["misc.max"] = "x 1";
  auto e = (*cg)->update(absent);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().msg.find("misc.max"), std::string::npos) << e.error().msg;
  // checkBeforeUpdate: below current usage.
  put(root_ + "/v2/c3/memory.current", "5000");
  spec::Resources m;
  m.memory.emplace();
  m.memory->limit = 4000;
  m.memory->check_before_update = true;
  EXPECT_FALSE((*cg)->update(m).ok());
  m.memory->check_before_update = false;
  EXPECT_TRUE((*cg)->update(m).ok());
  // Swap without a memory limit anywhere.
  spec::Resources s;
  s.memory.emplace();
  s.memory->swap = 1 << 20;
  put(root_ + "/v2/c3/memory.max", "max");
  EXPECT_FALSE((*cg)->update(s).ok());
  ASSERT_TRUE((*cg)->destroy().ok());
}

TEST_F(FakeCgroupfs, V1WritesEveryResource) {
  make_tree(Mode::kHybrid);
  auto r = full_resources();
  r.memory->swappiness = 10;
  r.memory->disable_oom_killer = true;
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});
  r.devices.push_back({true, "c", 1, 3, "rwm"});
  r.devices.push_back({true, "c", std::nullopt, std::nullopt, "m"});
  r.devices.push_back({false, "b", 8, std::nullopt, "w"});
  auto cg = Cgroup::create(config("/zrun/c1", &r));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  EXPECT_EQ((*cg)->mode(), Mode::kHybrid);
  EXPECT_EQ((*cg)->clone_into_fd(), -1);
  std::vector<std::string> want = {
      // New cpuset cgroups inherit the parent's cpus/mems (else joining fails: ENOSPC).
      "cpuset/zrun/cpuset.cpus=0-1",
      "cpuset/zrun/cpuset.mems=0",
      "cpuset/zrun/c1/cpuset.cpus=0-1",
      "cpuset/zrun/c1/cpuset.mems=0",
      // memsw shrinks from "unlimited": the limit goes first.
      "memory/zrun/c1/memory.limit_in_bytes=104857600",
      "memory/zrun/c1/memory.memsw.limit_in_bytes=314572800",
      "memory/zrun/c1/memory.soft_limit_in_bytes=52428800",
      "memory/zrun/c1/memory.swappiness=10",
      "memory/zrun/c1/memory.oom_control=1",
      "cpu/zrun/c1/cpu.shares=1024",
      "cpu/zrun/c1/cpu.cfs_period_us=100000",
      "cpu/zrun/c1/cpu.cfs_quota_us=50000",
      "cpu/zrun/c1/cpu.cfs_burst_us=1000",
      "cpu/zrun/c1/cpu.idle=0",
      "cpuset/zrun/c1/cpuset.cpus=0",
      "cpuset/zrun/c1/cpuset.mems=0",
      "pids/zrun/c1/pids.max=100",
      "blkio/zrun/c1/blkio.throttle.read_bps_device=8:0 1048576",
      "blkio/zrun/c1/blkio.throttle.write_iops_device=8:0 0",
      "devices/zrun/c1/devices.deny=a",
      "devices/zrun/c1/devices.deny=a *:* rwm",
      "devices/zrun/c1/devices.allow=c 1:3 rwm",
      "devices/zrun/c1/devices.allow=c *:* m",
      "devices/zrun/c1/devices.deny=b 8:* w",
      // runc's default allowed devices always follow the spec's rules.
      "devices/zrun/c1/devices.allow=c *:* m",
      "devices/zrun/c1/devices.allow=b *:* m",
      "devices/zrun/c1/devices.allow=c 1:3 rwm",
      "devices/zrun/c1/devices.allow=c 1:8 rwm",
      "devices/zrun/c1/devices.allow=c 1:7 rwm",
      "devices/zrun/c1/devices.allow=c 5:0 rwm",
      "devices/zrun/c1/devices.allow=c 1:5 rwm",
      "devices/zrun/c1/devices.allow=c 1:9 rwm",
      "devices/zrun/c1/devices.allow=c 5:1 rwm",
      "devices/zrun/c1/devices.allow=c 136:* rwm",
      "devices/zrun/c1/devices.allow=c 5:2 rwm",
      // Hybrid: the same rules as a program on the unified hierarchy too.
      "unified/zrun/c1/bpf:cgroup_device=82 insns",
  };
  EXPECT_EQ(writes(), want);
  EXPECT_EQ((*cg)->v1_dir("memory"), root_ + "/memory/zrun/c1");
  EXPECT_EQ((*cg)->unified_dir(), root_ + "/unified/zrun/c1");
  EXPECT_TRUE(base::is_dir(root_ + "/unified/zrun/c1"));
  // Unlimited swap: memsw must be raised before the limit.
  trace_.clear();
  spec::Resources u;
  u.memory.emplace();
  u.memory->limit = 200 << 20;
  u.memory->swap = -1;
  ASSERT_TRUE((*cg)->update(u).ok());
  EXPECT_EQ(writes(), (std::vector<std::string>{
                          "memory/zrun/c1/memory.memsw.limit_in_bytes=-1",
                          "memory/zrun/c1/memory.limit_in_bytes=209715200",
                      }));
  ASSERT_TRUE((*cg)->destroy().ok());
  for (auto& [name, f] : v1_files()) EXPECT_FALSE(base::path_exists(root_ + "/" + name + "/zrun"));
}

TEST_F(FakeCgroupfs, V1MissingFileOrControllerIsAClearErrorAndRollsBack) {
  make_tree(Mode::kHybrid);
  spec::Resources r;
  r.block_io.emplace();
  r.block_io->weight = 500;
  auto cg = Cgroup::create(config("/zrun/c1", &r));
  ASSERT_FALSE(cg.ok());
  EXPECT_NE(cg.error().msg.find("`blkio.weight`"), std::string::npos) << cg.error().msg;
  EXPECT_NE(cg.error().msg.find("create cgroup `/zrun/c1`"), std::string::npos);
  for (auto& [name, f] : v1_files()) EXPECT_FALSE(base::path_exists(root_ + "/" + name + "/zrun"));
  spec::Resources h;
  h.hugepage_limits.push_back({"2MB", 1 << 21});
  cg = Cgroup::create(config("/zrun/c1", &h));
  ASSERT_FALSE(cg.ok());
  EXPECT_NE(cg.error().msg.find("`hugetlb` is not mounted"), std::string::npos) << cg.error().msg;
  EXPECT_FALSE(base::path_exists(root_ + "/memory/zrun"));
}

TEST_F(FakeCgroupfs, UnifiedKeysInHybridAndLegacy) {
  make_tree(Mode::kHybrid);
  spec::Resources r;
  r.unified["memory.pressure"] = "some 1000 10000";
  auto cg = Cgroup::create(config("/u1", &r));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  EXPECT_EQ(get(root_ + "/unified/u1/memory.pressure"), "some 1000 10000");
  r.unified = {{"memory.max", "1"}};
  EXPECT_FALSE((*cg)->update(r).ok());
  ASSERT_TRUE((*cg)->destroy().ok());

  make_tree(Mode::kLegacy);
  r.unified = {{"memory.pressure", "x"}};
  cg = Cgroup::create(config("/u1", &r));
  ASSERT_FALSE(cg.ok());
  EXPECT_NE(cg.error().msg.find("requires cgroup v2"), std::string::npos);
}

TEST_F(FakeCgroupfs, DestroyRemovesOnlyWhatCreateMade) {
  make_tree(Mode::kHybrid);
  // /zrun pre-exists in memory (e.g. another container's parent): keep it.
  ASSERT_TRUE(base::mkdir_p(root_ + "/memory/zrun").ok());
  put(root_ + "/memory/zrun/keep", "x");
  auto cg = Cgroup::create(config("/zrun/c1"));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  std::string json = (*cg)->to_json();
  EXPECT_NE(json.find(root_ + "/cpu/zrun\""), std::string::npos) << json;
  EXPECT_EQ(json.find(root_ + "/memory/zrun\""), std::string::npos) << json;
  EXPECT_NE(json.find(root_ + "/memory/zrun/c1\""), std::string::npos) << json;
  // A child cgroup made inside the container goes too.
  ASSERT_TRUE(base::mkdir_p(root_ + "/unified/zrun/c1/sub").ok());
  ASSERT_TRUE((*cg)->destroy().ok());
  EXPECT_TRUE(base::path_exists(root_ + "/memory/zrun/keep"));
  EXPECT_FALSE(base::path_exists(root_ + "/memory/zrun/c1"));
  EXPECT_FALSE(base::path_exists(root_ + "/cpu/zrun"));
  EXPECT_FALSE(base::path_exists(root_ + "/unified/zrun"));
  EXPECT_TRUE(base::path_exists(root_ + "/cpu/cgroup.procs"));
}

// The default parent /zrun goes with the last container, whichever created it.
TEST_F(FakeCgroupfs, LastContainerOutRemovesTheDefaultParent) {
  make_tree(Mode::kHybrid);
  auto first = Cgroup::create(config("/zrun/a"));  // creates /zrun
  auto second = Cgroup::create(config("/zrun/b"));
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE((*first)->destroy().ok());
  EXPECT_TRUE(base::path_exists(root_ + "/memory/zrun/b"));
  ASSERT_TRUE((*second)->destroy().ok());
  for (const char* h : {"memory", "cpu", "pids", "unified"})
    EXPECT_FALSE(base::path_exists(root_ + "/" + h + "/zrun")) << h;
}

// Another zrun's last container removes the empty default parent right after we made it
// (before its cpuset was initialised): the create walks again instead of failing, and the
// destroy still removes all it made.
TEST_F(FakeCgroupfs, DefaultParentRemovedByAnotherZrunMidCreate) {
  make_tree(Mode::kHybrid);
  auto cfg = config("/zrun/c1");
  int removed = 0;
  cfg.on_mkdir = [&](const std::string& dir) {
    if (dir == root_ + "/cpuset/zrun" && removed++ == 0) {
      ASSERT_TRUE(base::remove_tree(dir).ok());
      return;
    }
    populate(dir);
  };
  auto cg = Cgroup::create(cfg);
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  EXPECT_EQ(removed, 2);
  EXPECT_EQ(get(root_ + "/cpuset/zrun/c1/cpuset.cpus"), "0-1");
  ASSERT_TRUE((*cg)->destroy().ok());
  for (const char* h : {"cpuset", "memory", "pids", "unified"})
    EXPECT_FALSE(base::path_exists(root_ + "/" + h + "/zrun")) << h;
}

TEST_F(FakeCgroupfs, ExistingLeafIsRefusedAndNothingIsLeft) {
  make_tree(Mode::kHybrid);
  ASSERT_TRUE(base::mkdir_p(root_ + "/pids/zrun/c1").ok());
  auto cg = Cgroup::create(config("/zrun/c1"));
  ASSERT_FALSE(cg.ok());
  EXPECT_EQ(cg.error().err, EEXIST);
  EXPECT_TRUE(base::is_dir(root_ + "/pids/zrun/c1"));
  EXPECT_FALSE(base::path_exists(root_ + "/cpu/zrun"));
  EXPECT_FALSE(base::path_exists(root_ + "/blkio/zrun"));
  EXPECT_FALSE(base::path_exists(root_ + "/unified/zrun"));
}

TEST_F(FakeCgroupfs, BadPathsAreRefused) {
  make_tree(Mode::kUnified);
  for (const char* p : {"", "/", "rel", "/a/../b", "/a/"})
    EXPECT_FALSE(Cgroup::create(config(p)).ok()) << p;
}

TEST_F(FakeCgroupfs, StateRoundTripAndMembership) {
  make_tree(Mode::kHybrid);
  auto cg = Cgroup::create(config("/zrun/c1"));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  auto loaded = Cgroup::load((*cg)->to_json());
  ASSERT_TRUE(loaded.ok()) << loaded.error().text();
  EXPECT_EQ((*loaded)->mode(), Mode::kHybrid);
  EXPECT_EQ((*loaded)->path(), "/zrun/c1");
  EXPECT_EQ((*loaded)->v1_dir("cpuacct"), root_ + "/cpuacct/zrun/c1");
  trace_.clear();
  ASSERT_TRUE((*loaded)->add_pid(4242).ok());
  auto w = writes();
  EXPECT_EQ(w.size(), 9u);  // unified + 8 v1 hierarchies
  for (auto& x : w) EXPECT_NE(x.find("zrun/c1/cgroup.procs=4242"), std::string::npos) << x;
  // pids() reads the unified dir, recursively.
  put(root_ + "/unified/zrun/c1/cgroup.procs", "34\n12\n");
  ASSERT_TRUE(base::mkdir_p(root_ + "/unified/zrun/c1/sub").ok());
  put(root_ + "/unified/zrun/c1/sub/cgroup.procs", "56\n12\n");
  auto pids = (*loaded)->pids();
  ASSERT_TRUE(pids.ok()) << pids.error().text();
  EXPECT_EQ(*pids, (std::vector<pid_t>{12, 34, 56}));
  ASSERT_TRUE((*loaded)->destroy().ok());
  EXPECT_FALSE(base::path_exists(root_ + "/unified/zrun"));
  EXPECT_FALSE(base::path_exists(root_ + "/cpu/zrun"));
  EXPECT_FALSE(Cgroup::load("{").ok());
  EXPECT_FALSE(Cgroup::load("{\"mode\":\"v9\",\"path\":\"/x\"}").ok());
}

TEST_F(FakeCgroupfs, V1FreezerOnLegacy) {
  make_tree(Mode::kLegacy);
  auto cg = Cgroup::create(config("/f1"));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  EXPECT_FALSE(*(*cg)->frozen());
  ASSERT_TRUE((*cg)->freeze().ok());
  EXPECT_EQ(get(root_ + "/freezer/f1/freezer.state"), "FROZEN");
  EXPECT_TRUE(*(*cg)->frozen());
  ASSERT_TRUE((*cg)->thaw().ok());
  EXPECT_FALSE(*(*cg)->frozen());
  ASSERT_TRUE((*cg)->destroy().ok());
}

// linux.devices nodes are allowed after the spec's rules, before runc's defaults; a spec
// without device rules keeps the inherited policy (no writes at all).
TEST_F(FakeCgroupfs, V1AllowsLinuxDevicesAndDefaults) {
  make_tree(Mode::kHybrid);
  spec::Resources r;
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});
  std::vector<spec::Device> devs = {
      {"/dev/fuse", 'c', 10, 229}, {"/dev/fifo", 'p', 0, 0}, {"/dev/loop9", 'b', 7, 9}};
  auto cfg = config("/zrun/d1", &r);
  cfg.devices = &devs;
  auto cg = Cgroup::create(cfg);
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  auto w = writes();
  auto at = [&](const std::string& rule) {
    return std::find(w.begin(), w.end(), "devices/zrun/d1/devices.allow=" + rule) - w.begin();
  };
  auto deny = std::find(w.begin(), w.end(), "devices/zrun/d1/devices.deny=a *:* rwm") - w.begin();
  ASSERT_LT(static_cast<size_t>(deny), w.size());
  EXPECT_GT(at("c 10:229 rwm"), deny);
  EXPECT_GT(at("b 7:9 rwm"), at("c 10:229 rwm"));
  EXPECT_GT(at("c 1:3 rwm"), at("b 7:9 rwm"));
  EXPECT_LT(static_cast<size_t>(at("c 136:* rwm")), w.size());
  EXPECT_EQ(
      std::count_if(w.begin(), w.end(), [](auto& x) { return x.find("0:0") != std::string::npos; }),
      0);  // no rule for the fifo
  ASSERT_TRUE((*cg)->destroy().ok());

  trace_.clear();
  spec::Resources none;
  none.pids_limit = 5;
  auto cg2 = Cgroup::create(config("/zrun/d2", &none));
  ASSERT_TRUE(cg2.ok()) << cg2.error().text();
  for (auto& x : writes()) EXPECT_EQ(x.find("devices."), std::string::npos) << x;
  ASSERT_TRUE((*cg2)->destroy().ok());
}

// Where the device rules go per layout, and update replacing them.
TEST_F(FakeCgroupfs, DeviceFilterPerLayoutAndUpdate) {
  spec::Resources r;
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});
  auto count = [&](const std::string& what) {
    auto w = writes();
    return std::count_if(w.begin(), w.end(),
                         [&](auto& x) { return x.find(what) != std::string::npos; });
  };
  make_tree(Mode::kLegacy);
  auto cg = Cgroup::create(config("/zrun/d1", &r));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  EXPECT_EQ(count("bpf:"), 0);  // no cgroup2 at all
  EXPECT_GT(count("devices.allow"), 0);
  ASSERT_TRUE((*cg)->destroy().ok());

  make_tree(Mode::kHybrid);
  cg = Cgroup::create(config("/zrun/d1", &r));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  EXPECT_EQ(count("unified/zrun/d1/bpf:cgroup_device="), 1);
  EXPECT_GT(count("devices.allow"), 0);
  // update: rules given -> both layers replaced; no rules -> device policy untouched.
  trace_.clear();
  spec::Resources u;
  u.devices.push_back({true, "c", 10, 229, "rw"});
  std::vector<spec::Device> devs = {{"/dev/loop9", 'b', 7, 9}};
  ASSERT_TRUE((*cg)->update(u, &devs).ok());
  EXPECT_EQ(count("devices/zrun/d1/devices.deny=a"), 1);
  EXPECT_EQ(count("devices.allow=c 10:229 rw"), 1);
  EXPECT_EQ(count("devices.allow=b 7:9 rwm"), 1);  // linux.devices, then the defaults
  EXPECT_EQ(count("devices.allow=c 136:* rwm"), 1);
  EXPECT_EQ(count("unified/zrun/d1/bpf:cgroup_device="), 1);
  trace_.clear();
  spec::Resources p;
  p.pids_limit = 9;
  ASSERT_TRUE((*cg)->update(p).ok());
  EXPECT_EQ(count("devices"), 0);
  EXPECT_EQ(count("bpf:"), 0);
  // A rule the program cannot express is an error (before anything is attached).
  u.devices = {{true, "x", 1, 3, "r"}};
  auto bad = (*cg)->update(u);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().msg.find("type \"x\""), std::string::npos) << bad.error().msg;
  ASSERT_TRUE((*cg)->destroy().ok());

  // Hybrid without a v1 devices controller: the program alone.
  make_tree(Mode::kHybrid);
  layout_.v1.erase("devices");
  cg = Cgroup::create(config("/zrun/d2", &r));
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  EXPECT_EQ(count("devices."), 0);
  EXPECT_EQ(count("unified/zrun/d2/bpf:cgroup_device="), 1);
  ASSERT_TRUE((*cg)->destroy().ok());
}

}  // namespace
}  // namespace zrun::cg
