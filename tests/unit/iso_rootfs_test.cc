// prepare_rootfs + enter_rootfs on a busybox rootfs, in a forked child that first
// unshares mount/pid/uts/ipc namespaces and makes every mount private, so nothing can
// leak to the host. Root only (skipped otherwise).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "base/sys.h"
#include "isolation/process.h"
#include "isolation/rootfs.h"

namespace zrun::iso {
namespace {

using Check = std::function<std::string()>;  // "" = pass, else what failed

spec::Mount mnt(std::string dest, std::string type, std::string src,
                std::vector<std::string> opts) {
  spec::Mount m;
  m.destination = std::move(dest);
  m.type = std::move(type);
  m.source = std::move(src);
  m.options = std::move(opts);
  return m;
}

class RootfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    if (access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "needs busybox-static";
    char tmpl[] = "/tmp/zrun-iso-rootfs-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/rootfs";
    for (const char* d : {"bin", "proc", "sys", "dev", "etc", "tmp", "data"})
      ASSERT_TRUE(base::mkdir_p(root_ + "/" + d).ok());
    ASSERT_EQ(system(("cp /bin/busybox " + root_ + "/bin/busybox").c_str()), 0);
    ASSERT_EQ(symlink("busybox", (root_ + "/bin/sh").c_str()), 0);
    ASSERT_TRUE(base::write_file(root_ + "/etc/marker", "hello").ok());
    ASSERT_TRUE(base::mkdir_p(dir_ + "/hostdata/sub").ok());
    ASSERT_TRUE(base::write_file(dir_ + "/hostdata/file", "data").ok());
    ASSERT_TRUE(base::write_file(dir_ + "/hostfile", "single").ok());
    spec_.root.path = root_;
    spec_.hostname = "zrun-test";
    spec_.process.emplace();
    spec_.process->cwd = "/work/dir";
    spec_.linux_.emplace();
  }
  void TearDown() override {
    if (dir_.empty()) return;
    // Nothing of ours may have leaked into the host's mount table. (Only our own paths are
    // compared: other tests running in parallel may mount and unmount elsewhere.)
    EXPECT_EQ(base::read_file("/proc/self/mountinfo")->find(dir_), std::string::npos)
        << "a mount under " << dir_ << " leaked";
    EXPECT_TRUE(base::remove_tree(dir_).ok());
  }

  // Runs prepare_rootfs, `mid`, enter_rootfs, `after` as PID 1 of fresh namespaces.
  // With `userns`, the namespaces are created inside a new user namespace mapping
  // container 0..65535 to host 0..65535 (written by the outer child, as a launcher would).
  std::string run(const RootfsOptions& opts, const Check& mid, const Check& after, int extra_ns = 0,
                  bool userns = false) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return "pipe";
    pid_t pid = fork();
    if (pid == 0) {
      close(p[0]);
      auto fail = [&](const std::string& m) {
        (void)!write(p[1], m.data(), m.size());
        _exit(1);
      };
      if (userns) enter_user_ns(fail);
      if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | extra_ns) < 0)
        fail("unshare");
      if (mount(nullptr, "/", nullptr, MS_PRIVATE | MS_REC, nullptr) < 0) fail("make private");
      pid_t init = fork();
      if (init == 0) {
        if (auto r = set_hostname(spec_); !r.ok()) fail(r.error().text());
        if (auto r = prepare_rootfs(spec_, opts); !r.ok()) fail("prepare: " + r.error().text());
        if (auto m = mid ? mid() : ""; !m.empty()) fail("mid: " + m);
        if (auto r = enter_rootfs(spec_, opts); !r.ok()) fail("enter: " + r.error().text());
        if (auto m = after ? after() : ""; !m.empty()) fail("after: " + m);
        _exit(0);
      }
      int st = 0;
      waitpid(init, &st, 0);
      _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 100);
    }
    close(p[1]);
    base::UniqueFd rd(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    std::string msg = *base::read_fd(rd.get());
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      return msg.empty() ? "child status " + std::to_string(st) : msg;
    return "";
  }

  // Fork: the child continues in a new user ns once this process wrote its maps; this
  // process waits and exits with the child's status.
  template <class Fail>
  static void enter_user_ns(const Fail& fail) {
    int up[2], down[2];
    if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0) fail("pipe");
    pid_t child = fork();
    if (child == 0) {
      char c = 0;
      if (unshare(CLONE_NEWUSER) < 0) fail("unshare user");
      if (write(up[1], "u", 1) != 1 || read(down[0], &c, 1) != 1) fail("sync");
      if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) fail("setresuid");
      return;
    }
    char c = 0;
    if (read(up[0], &c, 1) != 1) fail("sync");
    std::string dir = "/proc/" + std::to_string(child);
    if (!base::write_file(dir + "/uid_map", "0 0 65536", O_WRONLY).ok() ||
        !base::write_file(dir + "/gid_map", "0 0 65536", O_WRONLY).ok())
      fail("write id maps");
    if (write(down[1], "g", 1) != 1) fail("sync");
    int st = 0;
    waitpid(child, &st, 0);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 100);
  }

  void add_standard_mounts() {
    spec_.mounts = {
        mnt("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
        mnt("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
        mnt("/dev/pts", "devpts", "devpts",
            {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}),
        mnt("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
        mnt("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
        mnt("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
        mnt("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}),
    };
  }

  std::string dir_, root_;
  spec::Spec spec_;
};

std::string check_char_dev(const char* path, unsigned maj, unsigned min) {
  struct stat st {};
  if (stat(path, &st) < 0) return std::string("stat ") + path;
  if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != maj || minor(st.st_rdev) != min)
    return std::string("wrong device ") + path;
  return "";
}

std::string check_link(const char* path, const char* want) {
  char buf[256] = {};
  if (readlink(path, buf, sizeof(buf) - 1) < 0) return std::string("readlink ") + path;
  return std::string(buf) == want ? "" : std::string("link ") + path + " -> " + buf;
}

TEST_F(RootfsTest, StandardContainer) {
  add_standard_mounts();
  spec_.mounts.push_back(mnt("/data", "bind", dir_ + "/hostdata", {"rbind", "ro", "nosuid"}));
  spec_.mounts.push_back(mnt("/etc/single", "bind", dir_ + "/hostfile", {"bind", "ro"}));
  spec_.linux_->masked_paths = {"/proc/kcore", "/proc/acpi", "/proc/zrun-nonexistent",
                                "/proc/timer_list"};
  spec_.linux_->readonly_paths = {"/proc/sys", "/proc/sysrq-trigger", "/proc/zrun-none"};
  std::string err = run({}, nullptr, [] {
    if (getpid() != 1) return std::string("not pid 1");
    char host[64] = {};
    gethostname(host, sizeof(host));
    if (std::string(host) != "zrun-test") return std::string("hostname ") + host;
    if (access("/bin/busybox", X_OK) != 0) return std::string("no busybox");
    if (access("/etc/marker", R_OK) != 0) return std::string("no marker");
    char cwd[64] = {};
    if (!getcwd(cwd, sizeof(cwd)) || std::string(cwd) != "/") return std::string("cwd");
    struct stat st {};
    if (stat("/work/dir", &st) < 0 || !S_ISDIR(st.st_mode)) return std::string("cwd not created");
    // /proc is ours (pid ns) and the host's root is gone.
    if (base::read_file("/proc/self/stat")->substr(0, 2) != "1 ") return std::string("proc");
    if (access("/usr", F_OK) == 0) return std::string("host root still visible");
    for (auto d : {std::make_tuple("/dev/null", 1u, 3u), std::make_tuple("/dev/zero", 1u, 5u),
                   std::make_tuple("/dev/full", 1u, 7u), std::make_tuple("/dev/random", 1u, 8u),
                   std::make_tuple("/dev/urandom", 1u, 9u), std::make_tuple("/dev/tty", 5u, 0u)})
      if (auto e = check_char_dev(std::get<0>(d), std::get<1>(d), std::get<2>(d)); !e.empty())
        return e;
    if (stat("/dev/null", &st) < 0 || (st.st_mode & 0777) != 0666) return std::string("null mode");
    struct statfs sf {};
    for (auto [p, t] :
         {std::pair{"/dev/ptmx", "pts/ptmx"}, std::pair{"/dev/fd", "/proc/self/fd"},
          std::pair{"/dev/stdin", "/proc/self/fd/0"}, std::pair{"/dev/stdout", "/proc/self/fd/1"},
          std::pair{"/dev/stderr", "/proc/self/fd/2"}})
      if (auto e = check_link(p, t); !e.empty()) return e;
    if (access("/proc/kcore", F_OK) == 0 || lstat("/dev/core", &st) == 0)
      if (auto e = check_link("/dev/core", "/proc/kcore"); !e.empty()) return e;
    int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY);
    if (fd < 0) return std::string("open ptmx");
    close(fd);
    if (base::write_file("/dev/shm/x", "1").ok() == false) return std::string("shm write");
    if (access("/dev/mqueue", F_OK) != 0) return std::string("mqueue");
    // Read-only binds, with the file bind and the recursive one.
    if (*base::read_file("/data/file") != "data") return std::string("bind content");
    if (open("/data/new", O_WRONLY | O_CREAT, 0644) >= 0 || errno != EROFS)
      return std::string("/data writable");
    if (statfs("/data", &sf) < 0 || !(sf.f_flags & ST_NOSUID)) return std::string("/data suid");
    if (*base::read_file("/etc/single") != "single") return std::string("file bind");
    if (open("/etc/single", O_WRONLY) >= 0 || errno != EROFS) return std::string("file bind rw");
    // Masked paths.
    for (const char* p : {"/proc/kcore", "/proc/timer_list"})
      if (access(p, F_OK) == 0)
        if (auto e = check_char_dev(p, 1, 3); !e.empty()) return "masked " + e;
    if (access("/proc/timer_list", F_OK) == 0 && !base::read_file("/proc/timer_list")->empty())
      return std::string("timer_list");
    if (access("/proc/acpi", F_OK) == 0) {
      if (statfs("/proc/acpi", &sf) < 0 || sf.f_type != TMPFS_MAGIC || !(sf.f_flags & ST_RDONLY))
        return std::string("acpi not masked");
    }
    // Read-only paths keep the proc fs but refuse writes.
    if (open("/proc/sys/kernel/hostname", O_WRONLY) >= 0 || errno != EROFS)
      return std::string("/proc/sys writable");
    if (statfs("/proc/sys", &sf) < 0 || !(sf.f_flags & ST_NOEXEC) || !(sf.f_flags & ST_NOSUID))
      return std::string("/proc/sys flags");
    // sysfs ro, the cgroup layout with our memory cgroup, ro.
    if (statfs("/sys", &sf) < 0 || !(sf.f_flags & ST_RDONLY)) return std::string("/sys rw");
    if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", R_OK) != 0)
      return std::string("cgroup memory missing");
    if (statfs("/sys/fs/cgroup/memory", &sf) < 0 || !(sf.f_flags & ST_RDONLY))
      return std::string("cgroup memory rw");
    if (mkdir("/sys/fs/cgroup/foo", 0755) == 0 || errno != EROFS)
      return std::string("cgroup tmpfs rw");
    // The root stays writable without root.readonly.
    if (!base::write_file("/tmp/ok", "1").ok()) return std::string("root ro");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

TEST_F(RootfsTest, ReadonlyRootPropagationSysctlNoPivot) {
  spec_.mounts = {mnt("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"})};
  spec_.root.readonly = true;
  spec_.linux_->rootfs_propagation = "shared";
  for (bool no_pivot : {false, true}) {
    RootfsOptions opts;
    opts.no_pivot = no_pivot;
    std::string err = run(opts, nullptr, [] {
      if (open("/newfile", O_WRONLY | O_CREAT, 0644) >= 0 || errno != EROFS)
        return std::string("root writable");
      auto mi = *base::read_file("/proc/self/mountinfo");
      bool shared = false;
      for (auto& line : base::split(mi, '\n')) {
        auto f = base::split(line, ' ');
        if (f.size() > 6 && f[4] == "/" && line.find("shared:") != std::string::npos) shared = true;
      }
      if (!shared) return "root not shared:\n" + mi;
      if (auto r = apply_sysctl({{"kernel.domainname", "zrun.example"}}); !r.ok())
        return r.error().text();
      if (base::trim(*base::read_file("/proc/sys/kernel/domainname")) != "zrun.example")
        return std::string("domainname");
      return std::string();
    });
    EXPECT_EQ(err, "") << "no_pivot=" << no_pivot;
  }
}

TEST_F(RootfsTest, SymlinkEscapesStayInsideRootfs) {
  ASSERT_EQ(symlink("/", (root_ + "/etc/evil").c_str()), 0);
  ASSERT_EQ(symlink("../../../../../../", (root_ + "/etc/evil2").c_str()), 0);
  ASSERT_EQ(symlink("/etc/hostname", (root_ + "/etc/maskme").c_str()), 0);
  std::string tag = "zrun-escape-" + std::to_string(getpid());
  spec_.mounts = {
      mnt("/etc/evil/" + tag, "tmpfs", "tmpfs", {"size=64k"}),
      mnt("/etc/evil2/tmp/" + tag, "tmpfs", "tmpfs", {"size=64k"}),
      mnt("/../../../" + tag + "-dots", "tmpfs", "tmpfs", {"size=64k"}),
  };
  spec_.linux_->masked_paths = {"/etc/maskme"};
  std::string root = root_;
  std::string err = run(
      {},
      [&] {
        // Still before the pivot: the host is visible, nothing may have appeared there.
        for (auto p : {"/" + tag, "/tmp/" + tag, "/" + tag + "-dots"})
          if (access(p.c_str(), F_OK) == 0) return "escaped to host " + p;
        struct statfs sf {};
        if (statfs("/", &sf) == 0 && sf.f_type == TMPFS_MAGIC)
          return std::string("host / is tmpfs");
        for (auto p : {root + "/" + tag, root + "/tmp/" + tag, root + "/" + tag + "-dots"})
          if (statfs(p.c_str(), &sf) < 0 || sf.f_type != TMPFS_MAGIC) return "not mounted " + p;
        return std::string();
      },
      [] {
        // /etc/maskme resolved to the container's (missing) /etc/hostname: nothing masked.
        return std::string();
      });
  EXPECT_EQ(err, "");
  // The host's /etc/hostname was not masked (that would have shown up in mountinfo too).
  EXPECT_TRUE(base::read_file("/etc/hostname").ok());
  EXPECT_FALSE(base::path_exists("/" + tag));
}

TEST_F(RootfsTest, DevicesTmpcopyupRecursiveAttrs) {
  ASSERT_TRUE(base::mkdir_p(dir_ + "/hostdata/sub/inner").ok());
  spec_.mounts = {
      mnt("/proc", "proc", "proc", {}),
      mnt("/dev", "tmpfs", "tmpfs", {"mode=755", "ro"}),
      mnt("/etc", "tmpfs", "tmpfs", {"tmpcopyup", "mode=755"}),
      mnt("/data", "bind", dir_ + "/hostdata", {"rbind", "rro", "rnosuid"}),
  };
  spec::Device d;
  d.path = "/dev/custom/null2";
  d.type = 'c';
  d.major = 1;
  d.minor = 3;
  d.file_mode = 0600;
  d.uid = 1000;
  d.gid = 1001;
  spec::Device fifo;
  fifo.path = "/dev/fifo";
  fifo.type = 'p';
  spec_.linux_->devices = {d, fifo};
  std::string err = run({}, nullptr, [] {
    if (auto e = check_char_dev("/dev/custom/null2", 1, 3); !e.empty()) return e;
    struct stat st {};
    stat("/dev/custom/null2", &st);
    if ((st.st_mode & 07777) != 0600 || st.st_uid != 1000 || st.st_gid != 1001)
      return std::string("device mode/owner");
    if (stat("/dev/fifo", &st) < 0 || !S_ISFIFO(st.st_mode)) return std::string("fifo");
    // /dev made read-only only after it was populated.
    if (mkdir("/dev/x", 0755) == 0 || errno != EROFS) return std::string("/dev writable");
    // tmpcopyup: old content visible, new writes land in the tmpfs.
    if (*base::read_file("/etc/marker") != "hello") return std::string("tmpcopyup content");
    if (!base::write_file("/etc/new", "n").ok()) return std::string("etc write");
    struct statfs sf {};
    if (statfs("/etc", &sf) < 0 || sf.f_type != TMPFS_MAGIC) return std::string("etc not tmpfs");
    // rro applies to submounts too.
    if (mkdir("/data/sub/inner/x", 0755) == 0 || errno != EROFS) return std::string("rro");
    if (statfs("/data/sub", &sf) < 0 || !(sf.f_flags & ST_NOSUID)) return std::string("rnosuid");
    return std::string();
  });
  EXPECT_EQ(err, "");
  EXPECT_FALSE(base::path_exists(root_ + "/etc/new"));
}

TEST_F(RootfsTest, UserNamespaceModeBindsDevices) {
  spec_.mounts = {mnt("/dev", "tmpfs", "tmpfs", {"mode=755"})};
  RootfsOptions opts;
  opts.userns = true;
  std::string err = run(opts, nullptr, [] { return check_char_dev("/dev/null", 1, 3); });
  EXPECT_EQ(err, "");
}

TEST_F(RootfsTest, CgroupNamespaceMountsFreshHierarchies) {
  spec_.mounts = {
      mnt("/proc", "proc", "proc", {}),
      mnt("/sys", "sysfs", "sysfs", {"ro"}),
      mnt("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "ro"}),
  };
  spec_.linux_->namespaces.push_back({spec::NsType::kCgroup, ""});
  std::string err = run(
      {}, nullptr,
      [] {
        if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", R_OK) != 0)
          return std::string("no memory hierarchy");
        if (access("/sys/fs/cgroup/pids/pids.max", R_OK) == 0)  // root of ns: no pids.max at top
          return std::string("pids.max at the cgroup ns root");
        return std::string();
      },
      CLONE_NEWCGROUP);
  EXPECT_EQ(err, "");
}

TEST_F(RootfsTest, RefusesMountsOverProcEntries) {
  spec_.mounts = {mnt("/proc", "proc", "proc", {}),
                  mnt("/proc/uptime", "bind", dir_ + "/hostfile", {"bind"}),
                  mnt("/proc/sysrq-trigger", "bind", dir_ + "/hostfile", {"bind"})};
  std::string err = run({}, nullptr, nullptr);
  EXPECT_NE(err.find("mount `/proc/sysrq-trigger`: `/proc/sysrq-trigger` cannot be mounted "
                     "because it is inside /proc"),
            std::string::npos)
      << err;
  spec_.mounts = {mnt("/proc", "tmpfs", "tmpfs", {})};
  err = run({}, nullptr, nullptr);
  EXPECT_NE(err.find("not of type proc"), std::string::npos) << err;
}

// In a new user namespace: devices are bind mounts, sysfs falls back to a bind of the
// host's, and remounts keep the flags the kernel locks.
TEST_F(RootfsTest, InsideUserNamespace) {
  add_standard_mounts();
  spec_.mounts.push_back(mnt("/data", "bind", dir_ + "/hostdata", {"rbind", "ro"}));
  spec_.root.readonly = true;
  spec_.linux_->masked_paths = {"/proc/timer_list", "/proc/acpi"};
  spec_.linux_->readonly_paths = {"/proc/sys"};
  spec_.linux_->namespaces.push_back({spec::NsType::kUser, ""});
  RootfsOptions opts;
  opts.userns = true;
  std::string err = run(
      opts, nullptr,
      [] {
        if (auto e = check_char_dev("/dev/null", 1, 3); !e.empty()) return e;
        if (base::write_file("/dev/null", "x", O_WRONLY).ok() == false) return std::string("null");
        if (open("/newfile", O_WRONLY | O_CREAT, 0644) >= 0 || errno != EROFS)
          return std::string("root writable");
        if (open("/data/new", O_WRONLY | O_CREAT, 0644) >= 0 || errno != EROFS)
          return std::string("/data writable");
        if (open("/proc/sys/kernel/hostname", O_WRONLY) >= 0 || errno != EROFS)
          return std::string("/proc/sys writable");
        if (access("/sys/fs/cgroup/memory", F_OK) != 0) return std::string("cgroup");
        if (access("/sys/kernel", F_OK) != 0) return std::string("sysfs");
        return std::string();
      },
      0, /*userns=*/true);
  EXPECT_EQ(err, "");
}

// The whole child-side sequence as runtime/init.cc runs it, ending in execve.
TEST_F(RootfsTest, FullSequenceExecsAsUser) {
  add_standard_mounts();
  ASSERT_EQ(chmod(root_.c_str(), 0755), 0);
  ASSERT_EQ(chmod((root_ + "/tmp").c_str(), 01777), 0);
  auto& p = *spec_.process;
  p.args = {"sh", "-c",
            "id -u > /tmp/out; id -G >> /tmp/out; pwd >> /tmp/out; grep -E 'CapEff|CapAmb' "
            "/proc/self/status >> /tmp/out; ulimit -n >> /tmp/out"};
  p.env = {"PATH=/usr/bin:/bin"};
  p.cwd = "/tmp";
  p.user.uid = 1000;
  p.user.gid = 1000;
  p.user.additional_gids = {5, 6};
  p.rlimits = {{RLIMIT_NOFILE, "RLIMIT_NOFILE", 1000, 900}};
  spec::Capabilities caps;
  caps.bounding = caps.permitted = caps.effective = caps.inheritable =
      caps.ambient = {CAP_NET_BIND_SERVICE};
  p.capabilities = caps;
  spec::Process proc = p;
  std::string err = run({}, nullptr, [proc] {
    if (auto r = apply_rlimits(proc.rlimits); !r.ok()) return r.error().text();
    auto exe = find_executable(proc.args[0], proc.env, proc.cwd);
    if (!exe.ok()) return exe.error().text();
    if (*exe != "/bin/sh") return "found " + *exe;
    if (auto r = finalize_identity(proc); !r.ok()) return r.error().text();
    if (auto r = close_fds_above(2); !r.ok()) return r.error().text();
    std::vector<char*> argv;
    for (auto& a : proc.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : proc.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    execve(exe->c_str(), argv.data(), envp.data());
    return std::string("execve failed");
  });
  EXPECT_EQ(err, "");
  auto out = base::read_file(root_ + "/tmp/out");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out,
            "1000\n1000 5 6\n/tmp\nCapEff:\t0000000000000400\nCapAmb:\t0000000000000400\n900\n");
}

}  // namespace
}  // namespace zrun::iso
