// The driver on this machine's real cgroup hierarchies (root only; skipped otherwise).
// Creates /zrun-test-<pid>, puts a counting child (and grandchild) in it, freezes, thaws,
// kills and destroys, and checks nothing is left in any hierarchy.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "base/sys.h"
#include "cgroups/cgroup.h"

namespace zrun::cg {
namespace {

struct Counters {
  std::atomic<uint64_t> child{0}, grandchild{0};
};

class RealCgroup : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    auto l = detect_layout();
    ASSERT_TRUE(l.ok()) << l.error().text();
    layout_ = *l;
    path_ = "/zrun-test-" + std::to_string(::getpid()) + "/c1";
    void* p = ::mmap(nullptr, sizeof(Counters), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    ctr_ = new (p) Counters;
  }
  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      (void)base::wait_pid(child_);
    }
    if (cg_) (void)cg_->destroy();
    if (ctr_) ::munmap(ctr_, sizeof(Counters));
  }

  // Both counters advance within `ms`.
  bool counting(unsigned ms) {
    uint64_t c = ctr_->child, g = ctr_->grandchild;
    base::sleep_ms(ms);
    return ctr_->child != c && ctr_->grandchild != g;
  }

  std::vector<std::string> all_leaves() const {
    std::vector<std::string> out;
    if (!layout_.unified.empty()) out.push_back(layout_.unified + path_);
    for (auto& [c, m] : layout_.v1) out.push_back(m + path_);
    return out;
  }

  void run_cycle(Layout layout) {
    spec::Resources r;
    r.pids_limit = 64;
    r.memory.emplace();
    r.memory->limit = 256 << 20;
    spec::CpuResources cpu;  // built whole: GCC 12 + ASan warns on emplace() here
    cpu.shares = 512;
    r.cpu = cpu;
    r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});
    r.devices.push_back({true, "c", 1, 3, "rwm"});
    r.devices.push_back({true, "c", std::nullopt, std::nullopt, "m"});
    r.devices.push_back({true, "b", 8, std::nullopt, "r"});
    CgroupConfig cfg;
    cfg.path = path_;
    cfg.resources = &r;
    cfg.layout = layout;
    auto cg = Cgroup::create(cfg);
    ASSERT_TRUE(cg.ok()) << cg.error().text();
    cg_ = std::move(*cg);
    for (auto& d : all_leaves()) EXPECT_TRUE(base::is_dir(d)) << d;
    auto rd = [](const std::string& dir, const char* f) {
      auto t = base::read_file(dir + "/" + f);
      return t ? std::string(base::trim(*t)) : std::string("<unreadable>");
    };
    if (layout.mode == Mode::kUnified) {
      EXPECT_EQ(rd(cg_->unified_dir(), "memory.max"), "268435456");
      EXPECT_EQ(rd(cg_->unified_dir(), "pids.max"), "64");
      EXPECT_EQ(rd(cg_->unified_dir(), "cpu.weight"), "59");
    } else {
      EXPECT_EQ(rd(cg_->v1_dir("memory"), "memory.limit_in_bytes"), "268435456");
      EXPECT_EQ(rd(cg_->v1_dir("pids"), "pids.max"), "64");
      EXPECT_EQ(rd(cg_->v1_dir("cpu"), "cpu.shares"), "512");
      EXPECT_NE(rd(cg_->v1_dir("cpuset"), "cpuset.cpus"), "");
      // The spec's rules, then runc's default allowed devices (the kernel merges
      // duplicates such as "c 1:3 rwm").
      EXPECT_EQ(rd(cg_->v1_dir("devices"), "devices.list"),
                "c 1:3 rwm\nc *:* m\nb 8:* r\nb *:* m\nc 1:8 rwm\nc 1:7 rwm\nc 5:0 rwm\n"
                "c 1:5 rwm\nc 1:9 rwm\nc 5:1 rwm\nc 136:* rwm\nc 5:2 rwm");
    }

    // The child joins before it forks the grandchild: hold it with a pipe.
    int go[2];
    ASSERT_EQ(::pipe(go), 0);
    child_ = ::fork();
    if (child_ == 0) {
      char b;
      ::close(go[1]);
      if (::read(go[0], &b, 1) != 1) ::_exit(1);
      spawn_inner();
    }
    ::close(go[0]);
    auto added = cg_->add_pid(child_);
    ASSERT_TRUE(added.ok()) << added.error().text();
    ASSERT_EQ(::write(go[1], "x", 1), 1);
    ::close(go[1]);
    ASSERT_TRUE(counting(200));

    auto pids = cg_->pids();
    ASSERT_TRUE(pids.ok()) << pids.error().text();
    EXPECT_EQ(pids->size(), 2u);
    EXPECT_NE(std::find(pids->begin(), pids->end(), child_), pids->end());

    ASSERT_TRUE(cg_->freeze().ok());
    EXPECT_TRUE(*cg_->frozen());
    base::sleep_ms(20);  // a tick already in flight may still land
    EXPECT_FALSE(counting(200)) << "frozen tasks kept running";
    ASSERT_TRUE(cg_->thaw().ok());
    EXPECT_FALSE(*cg_->frozen());
    EXPECT_TRUE(counting(200)) << "thawed tasks did not resume";

    auto k = cg_->kill_all(SIGKILL);
    ASSERT_TRUE(k.ok()) << k.error().text();
    auto st = base::wait_pid(child_);
    ASSERT_TRUE(st.ok());
    EXPECT_TRUE(WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL);
    child_ = -1;
    EXPECT_FALSE(counting(100)) << "grandchild survived kill_all";

    auto d = cg_->destroy();
    ASSERT_TRUE(d.ok()) << d.error().text();
    for (auto& dir : all_leaves()) {
      EXPECT_FALSE(base::path_exists(dir)) << dir;
      EXPECT_FALSE(base::path_exists(base::dirname(dir))) << base::dirname(dir);
    }
    EXPECT_TRUE(cg_->destroy().ok());
    cg_.reset();
  }

  [[noreturn]] void spawn_inner() {
    if (::fork() == 0)
      for (;;) {
        ctr_->grandchild++;
        ::usleep(1000);
      }
    for (;;) {
      ctr_->child++;
      ::usleep(1000);
    }
  }

  Layout layout_;
  std::string path_;
  Counters* ctr_ = nullptr;
  pid_t child_ = -1;
  std::unique_ptr<Cgroup> cg_;
};

TEST_F(RealCgroup, HostLayoutLifecycle) { run_cycle(layout_); }

// The v1-only paths (freezer.state, kill without cgroup.kill) on the same host.
TEST_F(RealCgroup, LegacyLifecycle) {
  if (layout_.v1.empty()) GTEST_SKIP() << "no v1 hierarchies";
  Layout legacy = layout_;
  legacy.mode = Mode::kLegacy;
  legacy.unified.clear();
  layout_ = legacy;
  run_cycle(legacy);
}

}  // namespace
}  // namespace zrun::cg
