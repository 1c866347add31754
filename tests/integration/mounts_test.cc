// Rootfs and mounts: bind/rbind (ro/rw), tmpfs options, proc/sysfs/devpts/mqueue/cgroup,
// the default /dev, linux.devices, masked and readonly paths, readonly root, sysctl and
// symlink escapes out of the rootfs.
#include <sys/mount.h>
#include <sys/stat.h>

#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

constexpr int kEROFS = 30;

class MountsTest : public ContainerTest {
 protected:
  // Run `sh -c script` in the container; returns stdout, expecting exit 0.
  std::string run_sh(Bundle& b, const std::string& script) {
    b.args({"/bin/sh", "-c", script});
    RunResult r = rt.run(b, rt.new_id());
    EXPECT_EQ(r.code, 0) << r;
    return r.out;
  }
  std::vector<MountInfo> container_mounts(Bundle& b) {
    b.probe({"mounts"});
    RunResult r = rt.run(b, rt.new_id());
    EXPECT_EQ(r.code, 0) << r;
    return parse_mountinfo(r.out);
  }
};

TEST_F(MountsTest, BindReadOnly) {
  TempDir host;
  write_file(host / "file", "from-host");
  Bundle b(rt);
  b.add_mount("/data", "bind", host.path(), {"bind", "ro"});
  auto s = parse_sections(run_sh(b,
                                 "echo '== cat'; /bin/zrun-probe cat /data/file; echo; "
                                 "echo '== write'; /bin/zrun-probe write /data/new x; true"));
  EXPECT_EQ(s["cat"].count("error"), 0u);
  EXPECT_EQ(s["write"]["errno"], std::to_string(kEROFS));
  EXPECT_FALSE(path_exists(host / "new"));
}

TEST_F(MountsTest, BindReadWriteWritesThrough) {
  TempDir host;
  Bundle b(rt);
  b.add_mount("/data", "none", host.path(), {"bind", "rw"});
  b.probe({"write", "/data/out", "hello"});
  EXPECT_EQ(run_kv(b)["write"], "ok");
  EXPECT_EQ(read_file(host / "out"), "hello");
}

TEST_F(MountsTest, BindFile) {
  TempDir host;
  write_file(host / "f", "single-file");
  Bundle b(rt);
  b.add_mount("/etc/bound", "bind", host / "f", {"bind", "ro"});
  b.probe({"cat", "/etc/bound"});
  RunResult r = rt.run(b, rt.new_id());
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "single-file");
}

TEST_F(MountsTest, RbindIncludesSubmountsBindDoesNot) {
  TempDir host;
  ::mkdir((host / "sub").c_str(), 0755);
  ASSERT_EQ(::mount("tmpfs", (host / "sub").c_str(), "tmpfs", 0, "size=64k"), 0);
  write_file(host / "sub/marker", "sub");
  Bundle b(rt);
  b.add_mount("/r", "bind", host.path(), {"rbind", "ro"});
  b.add_mount("/b", "bind", host.path(), {"bind", "ro"});
  auto s = parse_sections(run_sh(b,
                                 "echo '== r'; /bin/zrun-probe stat /r/sub/marker; "
                                 "echo '== b'; /bin/zrun-probe stat /b/sub/marker; true"));
  EXPECT_EQ(s["r"]["type"], "file");
  EXPECT_EQ(s["b"]["errno"], "2");
  ::umount2((host / "sub").c_str(), MNT_DETACH);
}

TEST_F(MountsTest, TmpfsOptions) {
  Bundle b(rt);
  b.add_mount("/scratch", "tmpfs", "tmpfs", {"size=1m", "mode=0700", "nosuid", "nodev", "noexec"});
  auto mounts = container_mounts(b);
  const MountInfo* m = find_mount(mounts, "/scratch");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->fstype, "tmpfs");
  EXPECT_TRUE(m->has_option("size=1024k")) << m->super_options;
  EXPECT_TRUE(m->has_option("mode=700")) << m->super_options;
  EXPECT_TRUE(m->has_option("nosuid") && m->has_option("nodev") && m->has_option("noexec"))
      << m->options;
}

TEST_F(MountsTest, DefaultSpecMountKinds) {
  Bundle b(rt);  // the runtime's own `spec` mounts
  auto mounts = container_mounts(b);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"/proc", "proc"},     {"/dev", "tmpfs"},         {"/dev/pts", "devpts"},
      {"/dev/shm", "tmpfs"}, {"/dev/mqueue", "mqueue"}, {"/sys", "sysfs"}};
  for (const auto& [dest, type] : want) {
    const MountInfo* m = find_mount(mounts, dest);
    ASSERT_NE(m, nullptr) << dest;
    EXPECT_EQ(m->fstype, type) << dest;
  }
  EXPECT_TRUE(find_mount(mounts, "/sys")->has_option("ro"));
  bool cgroup = false;
  for (const auto& m : mounts)
    if (m.mount_point.starts_with("/sys/fs/cgroup") && m.fstype.starts_with("cgroup"))
      cgroup = true;
  EXPECT_TRUE(cgroup) << "no cgroup mount under /sys/fs/cgroup";
  // Nothing of the host's mount table leaks in: every mount is at or under the new root.
  for (const auto& m : mounts) EXPECT_EQ(m.mount_point.find(b.path()), std::string::npos);
}

TEST_F(MountsTest, DevHasDefaultNodesAndLinks) {
  Bundle b(rt);
  std::string script;
  for (const char* p :
       {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
        "/dev/ptmx", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/shm", "/dev/pts"})
    script += std::string("echo '== ") + p + "'; /bin/zrun-probe stat " + p + "; ";
  script += "echo '== rw'; echo x > /dev/null && head -c 4 /dev/zero | wc -c";
  auto s = parse_sections(run_sh(b, script));
  const std::vector<std::pair<std::string, std::string>> chars = {
      {"/dev/null", "1:3"},   {"/dev/zero", "1:5"},    {"/dev/full", "1:7"},
      {"/dev/random", "1:8"}, {"/dev/urandom", "1:9"}, {"/dev/tty", "5:0"}};
  for (const auto& [p, rdev] : chars) {
    EXPECT_EQ(s[p]["type"], "char") << p;
    EXPECT_EQ(s[p]["rdev"], rdev) << p;
    EXPECT_EQ(s[p]["mode"], "0666") << p;
  }
  EXPECT_EQ(s["/dev/ptmx"]["type"], "symlink");
  EXPECT_EQ(s["/dev/ptmx"]["target"], "pts/ptmx");
  EXPECT_EQ(s["/dev/fd"]["target"], "/proc/self/fd");
  EXPECT_EQ(s["/dev/stdin"]["target"], "/proc/self/fd/0");
  EXPECT_EQ(s["/dev/stdout"]["target"], "/proc/self/fd/1");
  EXPECT_EQ(s["/dev/stderr"]["target"], "/proc/self/fd/2");
  EXPECT_EQ(s["/dev/shm"]["type"], "dir");
  EXPECT_EQ(s["/dev/pts"]["type"], "dir");
}

TEST_F(MountsTest, LinuxDevicesAreCreated) {
  Bundle b(rt);
  b.config()["linux"]["devices"] = Json::array({{{"path", "/dev/fuse"},
                                                 {"type", "c"},
                                                 {"major", 10},
                                                 {"minor", 229},
                                                 {"fileMode", 0640},
                                                 {"uid", 0},
                                                 {"gid", 0}}});
  b.probe({"stat", "/dev/fuse"});
  auto kv = run_kv(b);
  EXPECT_EQ(kv["type"], "char");
  EXPECT_EQ(kv["rdev"], "10:229");
  EXPECT_EQ(kv["mode"], "0640");
}

TEST_F(MountsTest, MaskedPaths) {
  Bundle b(rt);
  ::mkdir((b.rootfs() + "/etc/secret-dir").c_str(), 0755);
  write_file(b.rootfs() + "/etc/secret-dir/key", "k");
  write_file(b.rootfs() + "/etc/secret-file", "s");
  b.config()["linux"]["maskedPaths"] =
      Json::array({"/proc/kcore", "/etc/secret-dir", "/etc/secret-file", "/does/not/exist"});
  std::string out = run_sh(b,
                           "echo \"kcore=$(head -c 16 /proc/kcore | wc -c)\"; "
                           "echo \"dir=$(ls -A /etc/secret-dir | wc -l)\"; "
                           "echo \"file=$(cat /etc/secret-file | wc -c)\"");
  auto kv = parse_kv(out);
  EXPECT_EQ(kv["kcore"], "0") << out;
  EXPECT_EQ(kv["dir"], "0") << out;
  EXPECT_EQ(kv["file"], "0") << out;
  EXPECT_EQ(read_file(b.rootfs() + "/etc/secret-file"), "s");  // masked, not removed
}

TEST_F(MountsTest, ReadonlyPaths) {
  Bundle b(rt);
  ::mkdir((b.rootfs() + "/etc/rodir").c_str(), 0755);
  b.config()["linux"]["readonlyPaths"] = Json::array({"/proc/sys", "/etc/rodir"});
  auto s = parse_sections(run_sh(b,
                                 "echo '== dir'; /bin/zrun-probe write /etc/rodir/x 1; "
                                 "echo '== sys'; /bin/zrun-probe write "
                                 "/proc/sys/kernel/hostname h; "
                                 "echo '== other'; /bin/zrun-probe write /etc/x 1; true"));
  EXPECT_EQ(s["dir"]["errno"], std::to_string(kEROFS));
  EXPECT_EQ(s["sys"]["errno"], std::to_string(kEROFS));
  EXPECT_EQ(s["other"]["write"], "ok");
}

TEST_F(MountsTest, ReadonlyRoot) {
  Bundle b(rt);
  b.readonly_root(true);
  auto s = parse_sections(run_sh(b,
                                 "echo '== root'; /bin/zrun-probe write /x 1; "
                                 "echo '== shm'; /bin/zrun-probe write /dev/shm/x 1; true"));
  EXPECT_EQ(s["root"]["errno"], std::to_string(kEROFS));
  EXPECT_EQ(s["shm"]["write"], "ok");
}

TEST_F(MountsTest, Sysctl) {
  Bundle b(rt);
  b.add_namespace("network");
  b.config()["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
  b.probe({"cat", "/proc/sys/net/ipv4/ip_forward"});
  RunResult r = rt.run(b, rt.new_id());
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "1\n");
  EXPECT_EQ(read_file("/proc/sys/net/ipv4/ip_forward"), "0\n");  // host untouched
}

TEST_F(MountsTest, SymlinkInRootfsCannotEscape) {
  TempDir host;
  Bundle b(rt);
  // /evil points at a host directory by absolute path; it must resolve inside the rootfs.
  ASSERT_EQ(::symlink(host.path().c_str(), (b.rootfs() + "/evil").c_str()), 0);
  // The same path exists inside the rootfs, so the mount must succeed there: a runtime
  // that followed the link on the host would mount over (and write into) the host dir.
  ASSERT_EQ(::system(("mkdir -p " + b.rootfs() + host.path()).c_str()), 0);
  b.add_mount("/evil", "tmpfs", "tmpfs", {"size=64k"});
  b.args(
      {"/bin/sh", "-c",
       "echo pwned > /evil/pwned && grep -q ' /evil\\| " + host.path() + " ' /proc/self/mounts"});
  RunResult r = rt.run(b, rt.new_id());
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_FALSE(path_exists(host / "pwned")) << r;
  for (const auto& m : parse_mountinfo(read_file("/proc/self/mountinfo")))
    EXPECT_NE(m.mount_point, host.path());
}

// A destination that is a *dangling* symlink: like runc, the link is resolved inside the
// rootfs and its missing target is created there (directories for a tmpfs, a file for a
// file bind mount), never at the host path the link names.
TEST_F(MountsTest, DanglingSymlinkDestinationCreatedInsideRootfs) {
  TempDir host;                      // the host path the absolute links name
  std::string gone = host / "gone";  // does not exist on the host either
  TempDir src;
  write_file(src / "file", "bound-file");
  Bundle b(rt);
  ASSERT_EQ(::symlink((gone + "/dir").c_str(), (b.rootfs() + "/dangling").c_str()), 0);
  ASSERT_EQ(::symlink((gone + "/file").c_str(), (b.rootfs() + "/dangling-file").c_str()), 0);
  // Relative, climbing above the rootfs: ".." stops at the rootfs as for RESOLVE_IN_ROOT.
  ASSERT_EQ(::symlink("../../../../rel-target/sub", (b.rootfs() + "/tmp/rel").c_str()), 0);
  b.add_mount("/dangling", "tmpfs", "tmpfs", {"size=64k"});
  b.add_mount("/dangling-file", "bind", src / "file", {"bind", "ro"});
  b.add_mount("/tmp/rel", "tmpfs", "tmpfs", {"size=64k"});
  b.args({"/bin/sh", "-c",
          "echo in > /dangling/x && cat /dangling-file && echo rel > /tmp/rel/y && "
          "grep -q ' " +
              gone +
              "/dir tmpfs ' /proc/self/mounts && "
              "grep -q ' /rel-target/sub tmpfs ' /proc/self/mounts"});
  RunResult r = rt.run(b, rt.new_id());
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "bound-file");
  // The targets now exist inside the rootfs (as empty mount points)...
  struct stat st {};
  EXPECT_EQ(::lstat((b.rootfs() + gone + "/dir").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(::lstat((b.rootfs() + gone + "/file").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(::lstat((b.rootfs() + "/rel-target/sub").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  // ... the links are still links, and nothing appeared on the host.
  EXPECT_EQ(::lstat((b.rootfs() + "/dangling").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_FALSE(path_exists(gone)) << r;
  EXPECT_FALSE(path_exists("/rel-target"));
  for (const auto& m : parse_mountinfo(read_file("/proc/self/mountinfo")))
    EXPECT_FALSE(m.mount_point.starts_with(host.path())) << m.mount_point;
}

}  // namespace
}  // namespace zrun::test
