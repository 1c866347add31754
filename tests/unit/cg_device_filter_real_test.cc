// The device filter on this machine's real cgroup2 hierarchy (root only; skipped
// otherwise). On our hybrid hosts that is /sys/fs/cgroup/unified, with the v1 devices
// controller mounted too: this shows the kernel runs the cgroup2 program there as well.
// Creates /zrun-devtest-<pid>/c, attaches, moves a forked child in, lets it open device
// nodes, checks EPERM exactly where the rules say, replaces and detaches the program, and
// removes everything (the program is freed with the cgroup).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/bpf_syscall.h"
#include "base/sys.h"
#include "cgroups/cgroup.h"
#include "cgroups/device_filter.h"

namespace zrun::cg {
namespace {

using spec::DeviceRule;

struct Open {
  const char* path;
  int flags;
};

class RealDeviceFilter : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    auto l = detect_layout();
    ASSERT_TRUE(l.ok()) << l.error().text();
    if (l->unified.empty()) GTEST_SKIP() << "no cgroup2 hierarchy (legacy layout)";
    parent_ = l->unified + "/zrun-devtest-" + std::to_string(::getpid());
    leaf_ = parent_ + "/c";
    ASSERT_EQ(::mkdir(parent_.c_str(), 0755), 0) << parent_ << ": " << std::strerror(errno);
    ASSERT_EQ(::mkdir(leaf_.c_str(), 0755), 0) << leaf_ << ": " << std::strerror(errno);
  }
  void TearDown() override {
    if (!leaf_.empty()) ::rmdir(leaf_.c_str());
    if (!parent_.empty()) ::rmdir(parent_.c_str());
  }

  // Attach, skipping the test when the kernel has no cgroup device programs.
  bool attach(const std::vector<DeviceRule>& rules) {
    auto r = attach_device_filter(leaf_, rules);
    if (!r && r.error().msg.find("kernel without") != std::string::npos) {
      skipped_ = r.error().text();
      return false;
    }
    EXPECT_TRUE(r.ok()) << r.error().text();
    return r.ok();
  }

  // A child moved into the cgroup opens each node; returns 0 or the errno per open.
  std::vector<int> opens_in_cgroup(const std::vector<Open>& opens) {
    int go[2], res[2];
    EXPECT_EQ(::pipe(go), 0);
    EXPECT_EQ(::pipe(res), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(go[1]);
      ::close(res[0]);
      char b;
      if (::read(go[0], &b, 1) != 1) ::_exit(1);
      for (auto& o : opens) {
        int fd = ::open(o.path, o.flags | O_CLOEXEC);
        int e = fd < 0 ? errno : 0;
        if (fd >= 0) ::close(fd);
        if (::write(res[1], &e, sizeof e) != sizeof e) ::_exit(2);
      }
      ::_exit(0);
    }
    ::close(go[0]);
    ::close(res[1]);
    auto w = base::write_file(leaf_ + "/cgroup.procs", std::to_string(pid), O_WRONLY);
    EXPECT_TRUE(w.ok()) << w.error().text();
    EXPECT_EQ(::write(go[1], "x", 1), 1);
    ::close(go[1]);
    std::vector<int> out;
    int e;
    while (::read(res[0], &e, sizeof e) == sizeof e) out.push_back(e);
    ::close(res[0]);
    auto st = base::wait_pid(pid);
    EXPECT_TRUE(st.ok() && WIFEXITED(*st) && WEXITSTATUS(*st) == 0);
    EXPECT_EQ(out.size(), opens.size());
    return out;
  }

  std::vector<AttachedProgram> programs() {
    auto p = attached_device_programs(leaf_);
    EXPECT_TRUE(p.ok()) << p.error().text();
    return p.ok() ? *p : std::vector<AttachedProgram>{};
  }

  std::string parent_, leaf_, skipped_;
};

TEST_F(RealDeviceFilter, DeniesInTheCgroupOnlyAndIsReplacedAndFreed) {
  // Everything allowed but reading /dev/null (char 1:3).
  if (!attach({{true, "a", std::nullopt, std::nullopt, "rwm"}, {false, "c", 1, 3, "r"}}))
    GTEST_SKIP() << skipped_;
  auto progs = programs();
  ASSERT_EQ(progs.size(), 1u);
  EXPECT_EQ(progs[0].name, kDeviceFilterName);
  uint32_t first = progs[0].id;

  std::vector<Open> opens = {{"/dev/null", O_RDONLY},
                             {"/dev/null", O_WRONLY},
                             {"/dev/null", O_RDWR},
                             {"/dev/zero", O_RDONLY},
                             {"/dev/zero", O_RDWR}};
  EXPECT_EQ(opens_in_cgroup(opens), (std::vector<int>{EPERM, 0, EPERM, 0, 0}));
  // Outside the cgroup nothing changed.
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  ::close(fd);

  // Replaced (update): default deny, /dev/null read-write only.
  ASSERT_TRUE(attach({{false, "a", std::nullopt, std::nullopt, "rwm"}, {true, "c", 1, 3, "rw"}}));
  progs = programs();
  ASSERT_EQ(progs.size(), 1u) << "the old program was not replaced";
  EXPECT_NE(progs[0].id, first);
  EXPECT_EQ(opens_in_cgroup(opens), (std::vector<int>{0, 0, 0, EPERM, EPERM}));
  for (int i = 0; i < 100 && base::bpf_program_exists(first); ++i) base::sleep_ms(10);
  EXPECT_FALSE(base::bpf_program_exists(first)) << "the replaced program is still loaded";

  // Detached: the cgroup's policy is the inherited one again.
  ASSERT_TRUE(detach_device_filter(leaf_).ok());
  EXPECT_TRUE(programs().empty());
  EXPECT_EQ(opens_in_cgroup(opens), (std::vector<int>{0, 0, 0, 0, 0}));

  // Attached again, then the cgroup goes: the kernel frees the program with it.
  ASSERT_TRUE(attach({{false, "a", std::nullopt, std::nullopt, "rwm"}}));
  progs = programs();
  ASSERT_EQ(progs.size(), 1u);
  ASSERT_EQ(::rmdir(leaf_.c_str()), 0) << std::strerror(errno);
  leaf_.clear();
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !base::bpf_program_exists(progs[0].id);
    if (!gone) base::sleep_ms(10);
  }
  EXPECT_TRUE(gone) << "program " << progs[0].id << " outlived its cgroup";
}

// Through the driver: Cgroup::create attaches on the unified hierarchy (unified and hybrid
// mode), update replaces, destroy frees.
TEST_F(RealDeviceFilter, CgroupCreateUpdateDestroy) {
  auto l = detect_layout();
  ASSERT_TRUE(l.ok());
  spec::Resources r;
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});
  r.devices.push_back({false, "c", 1, 5, "rwm"});  // the default list allows /dev/zero again
  CgroupConfig cfg;
  cfg.path = "/zrun-devtest-" + std::to_string(::getpid()) + "/d";
  cfg.resources = &r;
  auto cg = Cgroup::create(cfg);
  ASSERT_TRUE(cg.ok()) << cg.error().text();
  std::string dir = (*cg)->unified_dir();
  auto progs = attached_device_programs(dir);
  ASSERT_TRUE(progs.ok()) << progs.error().text();
  ASSERT_EQ(progs->size(), 1u);
  uint32_t id = (*progs)[0].id;

  spec::Resources u;
  u.devices.push_back({true, "a", std::nullopt, std::nullopt, "rwm"});
  u.devices.push_back({false, "c", 1, 7, "rwm"});  // /dev/full; the defaults re-allow it
  auto up = (*cg)->update(u);
  ASSERT_TRUE(up.ok()) << up.error().text();
  progs = attached_device_programs(dir);
  ASSERT_TRUE(progs.ok());
  ASSERT_EQ(progs->size(), 1u);
  EXPECT_NE((*progs)[0].id, id);
  id = (*progs)[0].id;

  ASSERT_TRUE((*cg)->destroy().ok());
  EXPECT_FALSE(base::path_exists(dir));
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !base::bpf_program_exists(id);
    if (!gone) base::sleep_ms(10);
  }
  EXPECT_TRUE(gone);
}

}  // namespace
}  // namespace zrun::cg
