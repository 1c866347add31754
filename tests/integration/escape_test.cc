// Escape attempts from inside a *default* container (the config `spec` writes: default
// capabilities, masked/read-only paths, namespaces and, for zrun, the default seccomp
// profile). Each test asserts the attempt fails and, where the protection can be removed
// safely, a positive control shows the same attempt succeeding without it — so the test
// can fail. The probe only opens files for writing (never writes data) where a successful
// attempt would harm the host (/proc/sysrq-trigger, the runtime binary).
//
// Also: LSM fields (apparmorProfile, selinuxLabel, mountLabel) on a host without that LSM
// are a create-time error that leaves nothing behind.
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <set>
#include <thread>

#include "base/sys.h"
#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

class EscapeTest : public ContainerTest {
 protected:
  // Runs the probe with `args` in a default bundle (after `adjust`), returns key=value.
  std::map<std::string, std::string> attempt(std::vector<std::string> args,
                                             const std::function<void(Bundle&)>& adjust = {}) {
    Bundle b(rt);
    b.probe(std::move(args));
    if (adjust) adjust(b);
    RunResult r = rt.run(b, rt.new_id("esc"));
    EXPECT_FALSE(r.timed_out) << r;
    auto kv = parse_kv(r.out);
    if (kv.empty()) ADD_FAILURE() << "no probe output: " << r;
    return kv;
  }

  static void add_cap(Bundle& b, const std::string& cap) {
    for (const char* set : {"bounding", "effective", "permitted"})
      b.config()["process"]["capabilities"][set].push_back(cap);
  }
  static void no_seccomp(Bundle& b) { b.config()["linux"].erase("seccomp"); }
  static bool has_seccomp(Runtime& rt) {
    Bundle b(rt);
    return b.config()["linux"].contains("seccomp");
  }
};

std::string errno_str(int e) { return std::to_string(e); }

// --- PIDs and ptrace --------------------------------------------------------------------

TEST_F(EscapeTest, HostPidsAreInvisible) {
  auto kv = attempt({"pids"});
  // The probe is the container's PID 1 and alone in its PID namespace.
  EXPECT_EQ(kv["pids"], "1");
  auto ids = base::split(kv["pids"], ',');
  std::set<std::string> seen(ids.begin(), ids.end());
  EXPECT_EQ(seen.count(std::to_string(::getpid())), 0u);
}

TEST_F(EscapeTest, HostPidsVisibleWithoutPidNamespace) {  // positive control
  auto kv = attempt({"pids"}, [](Bundle& b) { b.remove_namespace("pid"); });
  auto ids = base::split(kv["pids"], ',');
  std::set<std::string> seen(ids.begin(), ids.end());
  EXPECT_EQ(seen.count(std::to_string(::getpid())), 1u) << kv["pids"];
}

TEST_F(EscapeTest, PtraceOfHostProcessFails) {
  auto kv = attempt({"ptrace", std::to_string(::getpid())});
  EXPECT_EQ(kv["ptrace"], "failed");
  // Not even visible: ESRCH (EPERM would also stop it).
  EXPECT_TRUE(kv["errno"] == errno_str(ESRCH) || kv["errno"] == errno_str(EPERM)) << kv["error"];
}

// --- Mounts -----------------------------------------------------------------------------

TEST_F(EscapeTest, MountIsDenied) {
  auto kv = attempt({"mount", "none", "/tmp", "tmpfs"});
  EXPECT_EQ(kv["mount"], "failed");
  EXPECT_EQ(kv["errno"], errno_str(EPERM)) << kv["error"];
}

TEST_F(EscapeTest, MountDeniedBySeccompEvenWithCapSysAdmin) {
  if (!runtime_is_zrun() || !has_seccomp(rt)) GTEST_SKIP() << "no default seccomp profile";
  auto kv =
      attempt({"mount", "none", "/tmp", "tmpfs"}, [](Bundle& b) { add_cap(b, "CAP_SYS_ADMIN"); });
  EXPECT_EQ(kv["mount"], "failed");
  EXPECT_EQ(kv["errno"], errno_str(EPERM)) << kv["error"];
}

TEST_F(EscapeTest, MountSucceedsWithCapSysAdminAndNoSeccomp) {  // positive control
  auto kv = attempt({"mount", "none", "/tmp", "tmpfs"}, [](Bundle& b) {
    add_cap(b, "CAP_SYS_ADMIN");
    no_seccomp(b);
  });
  EXPECT_EQ(kv["mount"], "ok") << kv["error"];
}

// --- Kernel: modules, sysrq, kcore, masked paths ------------------------------------------

TEST_F(EscapeTest, KernelModuleLoadIsDenied) {
  // init_module(NULL, 0, "") and finit_module(-1, "", 0): the capability (or seccomp)
  // check comes first, so nothing is ever loaded even if it passed (bad image / fd). A
  // kernel without module support (CONFIG_MODULES=n, as our CI VMs) answers ENOSYS.
  const int kernel_errno = path_exists("/proc/modules") ? EPERM : ENOSYS;
  const bool seccomp = runtime_is_zrun() && has_seccomp(rt);
  for (auto nr : {SYS_init_module, SYS_finit_module}) {
    std::vector<std::string> args = {"syscall", std::to_string(nr)};
    if (nr == SYS_finit_module) args.push_back("-1");
    auto kv = attempt(args);
    EXPECT_EQ(kv["syscall"], "failed") << nr;
    EXPECT_EQ(kv["errno"], errno_str(seccomp ? EPERM : kernel_errno)) << nr << ": " << kv["error"];
    // Without seccomp the missing CAP_SYS_MODULE still refuses it.
    kv = attempt(args, no_seccomp);
    EXPECT_EQ(kv["syscall"], "failed") << nr;
    EXPECT_EQ(kv["errno"], errno_str(kernel_errno)) << nr << " (no seccomp): " << kv["error"];
  }
}

TEST_F(EscapeTest, SysrqTriggerIsNotWritable) {
  if (!path_exists("/proc/sysrq-trigger")) GTEST_SKIP() << "no /proc/sysrq-trigger";
  auto kv = attempt({"open", "/proc/sysrq-trigger", "w"});
  EXPECT_EQ(kv["open"], "failed");
  EXPECT_TRUE(kv["errno"] == errno_str(EROFS) || kv["errno"] == errno_str(EACCES)) << kv["error"];
}

TEST_F(EscapeTest, KcoreIsMasked) {
  if (!path_exists("/proc/kcore")) GTEST_SKIP() << "no /proc/kcore on this host";
  Bundle b(rt);
  b.args({"/bin/sh", "-c",
          "echo '== stat'; zrun-probe stat /proc/kcore; echo '== bytes';"
          " echo n=$(head -c 4096 /proc/kcore | wc -c)"});
  RunResult r = rt.run(b, rt.new_id("esc"));
  auto s = parse_sections(r.out);
  // /dev/null bound over it (runc does the same): a char device 1:3, reads nothing.
  EXPECT_EQ(s["stat"]["type"], "char") << r;
  EXPECT_EQ(s["stat"]["rdev"], "1:3") << r;
  EXPECT_EQ(s["bytes"]["n"], "0") << r;
}

TEST_F(EscapeTest, WritingMaskedPathsReachesNothing) {
  Bundle b(rt);
  // Masked files: writes go to /dev/null, the file still reads empty. Masked directories
  // are read-only empty tmpfs: creating a file fails.
  std::string script;
  for (const char* f : {"/proc/kcore", "/proc/timer_list", "/proc/sched_debug", "/proc/keys"}) {
    if (!path_exists(f)) continue;
    script += std::string("echo '== ") + f + "'; zrun-probe write " + f + " x;" + " echo n=$(cat " +
              f + " | wc -c);";
  }
  if (path_exists("/sys/firmware"))
    script +=
        "echo '== /sys/firmware'; zrun-probe write /sys/firmware/zrun-x x;"
        " echo n=$(ls -A /sys/firmware | wc -l);";
  ASSERT_FALSE(script.empty());
  b.args({"/bin/sh", "-c", script});
  RunResult r = rt.run(b, rt.new_id("esc"));
  auto s = parse_sections(r.out);
  ASSERT_FALSE(s.empty()) << r;
  for (auto& [path, kv] : s) {
    EXPECT_EQ(kv["n"], "0") << path << ": " << r;
    if (path == "/sys/firmware") {
      EXPECT_EQ(kv["write"], "failed") << r;
    }
  }
}

// --- Network, hostname ------------------------------------------------------------------

TEST_F(EscapeTest, RawSocketNeedsCapNetRaw) {
  auto kv = attempt({"socket-raw"});
  EXPECT_EQ(kv["socket"], "failed");
  EXPECT_EQ(kv["errno"], errno_str(EPERM)) << kv["error"];
  kv = attempt({"socket-raw"}, [](Bundle& b) { add_cap(b, "CAP_NET_RAW"); });  // control
  EXPECT_EQ(kv["socket"], "ok") << kv["error"];
}

std::string host_hostname() {
  char h[256] = "";
  ::gethostname(h, sizeof(h) - 1);
  return h;
}

TEST_F(EscapeTest, HostnameCannotBeChanged) {
  std::string before = host_hostname();
  auto kv = attempt({"sethostname", "zrun-escaped"});
  EXPECT_EQ(kv["sethostname"], "failed");
  EXPECT_EQ(kv["errno"], errno_str(EPERM)) << kv["error"];
  EXPECT_EQ(host_hostname(), before);
}

TEST_F(EscapeTest, HostnameChangeWithCapSysAdminStaysInUtsNamespace) {  // control
  std::string before = host_hostname();
  Bundle b(rt);
  add_cap(b, "CAP_SYS_ADMIN");
  b.args({"/bin/sh", "-c", "zrun-probe sethostname zrun-escaped; zrun-probe hostname"});
  RunResult r = rt.run(b, rt.new_id("esc"));
  auto kv = parse_kv(r.out);
  EXPECT_EQ(kv["sethostname"], "ok") << r;
  EXPECT_EQ(kv["hostname"], "zrun-escaped") << r;
  EXPECT_EQ(host_hostname(), before);
}

// --- Default seccomp profile: keyrings and user namespaces ------------------------------

TEST_F(EscapeTest, KeyctlDeniedByDefaultSeccomp) {
  if (!runtime_is_zrun() || !has_seccomp(rt)) GTEST_SKIP() << "no default seccomp profile";
  // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0); add_key(NULL, ...).
  std::vector<std::string> keyctl = {"syscall", std::to_string(SYS_keyctl), "0", "-3", "0"};
  auto kv = attempt(keyctl);
  EXPECT_EQ(kv["syscall"], "failed");
  EXPECT_EQ(kv["errno"], errno_str(EPERM)) << kv["error"];
  kv = attempt({"syscall", std::to_string(SYS_add_key)});
  EXPECT_EQ(kv["errno"], errno_str(EPERM)) << kv["error"];
  kv = attempt(keyctl, no_seccomp);  // control: the session keyring exists
  EXPECT_EQ(kv["syscall"], "ok") << kv["error"];
}

TEST_F(EscapeTest, UnshareUserNamespaceDeniedByDefaultSeccomp) {
  if (!runtime_is_zrun() || !has_seccomp(rt)) GTEST_SKIP() << "no default seccomp profile";
  const std::string nr = std::to_string(SYS_unshare);
  // CLONE_NEWUSER alone and combined with CLONE_NEWNS (the MASKED_EQ rule must match both).
  for (const char* flags : {"0x10000000", "0x10020000"}) {
    auto kv = attempt({"syscall", nr, flags});
    EXPECT_EQ(kv["syscall"], "failed") << flags;
    EXPECT_EQ(kv["errno"], errno_str(EPERM)) << flags << ": " << kv["error"];
  }
  auto kv = attempt({"syscall", nr, "0x10000000"}, no_seccomp);  // control
  EXPECT_EQ(kv["syscall"], "ok") << kv["error"];
}

// --- Bundle symlinks and `..` in mount destinations --------------------------------------

// Plants symlinks in the bundle's rootfs aiming at host paths under `host` (absolute and
// relative with `..`), mounts onto them, and returns the run's result.
RunResult run_with_planted_symlinks(Runtime& rt, Bundle& b, const TempDir& host,
                                    const TempDir& src) {
  auto plant = [&](const std::string& target, const std::string& link) {
    EXPECT_EQ(::symlink(target.c_str(), (b.rootfs() + link).c_str()), 0) << link;
  };
  plant(host.path() + "/dir", "/abs");
  plant("../../../../../../../.." + host.path() + "/rel", "/rel");
  plant(host.path() + "/file", "/absfile");
  plant(host.path() + "/secret", "/secret");
  b.add_mount("/abs", "bind", src.path(), {"rbind", "ro"});
  b.add_mount("/rel", "tmpfs", "tmpfs", {"size=64k"});
  b.add_mount("/absfile", "bind", src / "marker", {"bind", "ro"});
  b.args({"/bin/sh", "-c",
          "cat /abs/marker; cat /absfile; cat /secret; echo > /rel/pwned;"
          " echo '== mounts'; cat /proc/self/mountinfo"});
  return rt.run(b, rt.new_id("esc"));
}

void expect_host_untouched(const TempDir& host, const RunResult& r) {
  for (const char* p : {"/dir", "/rel", "/file", "/rel/pwned"})
    EXPECT_FALSE(path_exists(host.path() + p)) << p << " created on the host: " << r;
  for (const auto& m : parse_mountinfo(read_file("/proc/self/mountinfo")))
    EXPECT_NE(m.mount_point.rfind(host.path(), 0), 0u) << m.mount_point;
  EXPECT_EQ(read_file(host / "secret"), "host-secret\n");
}

// The targets exist inside the rootfs: the mounts land there, never on the host paths.
TEST_F(EscapeTest, SymlinkedMountDestinationsStayInRootfs) {
  TempDir host("zrun-it-host"), src("zrun-it-src");
  write_file(host / "secret", "host-secret\n");
  write_file(src / "marker", "from-bundle\n");
  Bundle b(rt);
  std::string inside = b.rootfs() + host.path();
  ASSERT_EQ(run_command({"/bin/mkdir", "-p", inside + "/dir", inside + "/rel"}).code, 0);
  write_file(inside + "/file", "");
  RunResult r = run_with_planted_symlinks(rt, b, host, src);
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("from-bundle\nfrom-bundle\n"), std::string::npos) << r;
  EXPECT_EQ(r.out.find("host-secret"), std::string::npos) << r;  // the host file is not read
  expect_host_untouched(host, r);
  auto pos = r.out.find("== mounts");
  ASSERT_NE(pos, std::string::npos) << r;
  auto mounts = parse_mountinfo(r.out.substr(pos));
  for (const char* p : {"/dir", "/rel", "/file"})
    EXPECT_NE(find_mount(mounts, host.path() + p), nullptr) << p << ": " << r;
}

// Dangling symlinks: a runtime that follows them out of the rootfs would create the
// targets on the host. zrun refuses (runc creates them inside the rootfs); either way
// the host is untouched.
TEST_F(EscapeTest, DanglingSymlinkedMountDestinationsDoNotReachHost) {
  TempDir host("zrun-it-host"), src("zrun-it-src");
  write_file(host / "secret", "host-secret\n");
  write_file(src / "marker", "from-bundle\n");
  Bundle b(rt);
  // rootfs/tmp exists; the rest of the targets' paths does not.
  RunResult r = run_with_planted_symlinks(rt, b, host, src);
  EXPECT_EQ(r.out.find("host-secret"), std::string::npos) << r;
  expect_host_untouched(host, r);
  if (r.code == 0) {
    auto pos = r.out.find("== mounts");
    ASSERT_NE(pos, std::string::npos) << r;
    EXPECT_NE(find_mount(parse_mountinfo(r.out.substr(pos)), host.path() + "/rel"), nullptr) << r;
  }
}

TEST_F(EscapeTest, DotDotMountDestinationStaysInside) {
  std::string name = "zrun-it-dotdot-" + std::to_string(::getpid());
  ASSERT_FALSE(path_exists("/tmp/" + name));
  Bundle b(rt);
  b.add_mount("/../../../../tmp/" + name, "tmpfs", "tmpfs", {"size=64k"});
  b.args({"/bin/sh", "-c", "echo x > /tmp/" + name + "/f; cat /proc/self/mountinfo"});
  RunResult r = rt.run(b, rt.new_id("esc"));
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_FALSE(path_exists("/tmp/" + name)) << "created on the host: " << r;
  EXPECT_NE(find_mount(parse_mountinfo(r.out), "/tmp/" + name), nullptr) << r;
  EXPECT_TRUE(path_exists(b.rootfs() + "/tmp/" + name)) << r;
}

// --- Runtime binary overwrite (CVE-2019-5736 class) --------------------------------------

std::string file_digest(const std::string& path) {
  std::string data = read_file(path);
  struct stat st {};
  ::stat(path.c_str(), &st);
  return std::to_string(data.size()) + ":" + std::to_string(std::hash<std::string>{}(data)) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// No process in the probe's output had its exe opened for writing, now or after waiting.
void expect_no_exe_write(const std::map<std::string, std::string>& kv, const RunResult& r) {
  for (auto& [k, v] : kv) {
    if (k.rfind("write.", 0) == 0 || k.rfind("reopen.", 0) == 0) {
      EXPECT_NE(v, "ok") << k << ": " << r;
    }
    if (k.rfind("exe.", 0) == 0) {
      EXPECT_NE(v, runtime_path()) << k << ": " << r;
    }
  }
}

TEST_F(EscapeTest, RuntimeBinaryNotReachableFromInit) {
  std::string before = file_digest(runtime_path());
  Bundle b(rt);
  // PID 1 is a shell; the probe is its child: every visible exe is tried.
  b.args({"/bin/sh", "-c", "zrun-probe exe-write 0.2; true"});
  RunResult r = rt.run(b, rt.new_id("esc"));
  auto kv = parse_kv(r.out);
  EXPECT_EQ(kv["self"], "/bin/zrun-probe") << r;
  EXPECT_EQ(kv.count("exe.1"), 1u) << r;
  expect_no_exe_write(kv, r);
  EXPECT_EQ(file_digest(runtime_path()), before);
}

// While the container is `created` its init is still runtime code waiting for `start`:
// the window CVE-2019-5736 used. A detached exec'd process grabs every /proc/N/exe it can
// (an O_PATH handle), `exec -d` and `start` return, the init execs the user program, and
// once no runtime process runs any more (no ETXTBSY) it reopens them for writing.
TEST_F(EscapeTest, RuntimeBinaryNotWritableFromExecDuringCreated) {
  std::string before = file_digest(runtime_path());
  Bundle b(rt);
  b.probe({"sleep", "10"});
  std::string id = rt.new_id("esc");
  RunResult c = rt.create(b, id);
  ASSERT_EQ(c.code, 0) << c;
  ExecOptions o;
  o.stdout_path = b.path() + "/exec.out";
  RunResult e = rt.exec({"exec", "-d", id, "/bin/zrun-probe", "exe-write", "2"}, o);
  if (e.code != 0) GTEST_SKIP() << "exec into a created container refused: " << e;
  std::this_thread::sleep_for(300ms);
  RunResult s = rt.start(id);
  EXPECT_EQ(s.code, 0) << s;
  std::string out;
  for (int i = 0; i < 50 && out.find("reopen.") == std::string::npos; i++) {
    std::this_thread::sleep_for(100ms);
    out = read_file(o.stdout_path);
  }
  std::this_thread::sleep_for(100ms);
  RunResult r{0, read_file(o.stdout_path), "", false};
  auto kv = parse_kv(r.out);
  EXPECT_EQ(kv["self"], "/bin/zrun-probe") << r;
  EXPECT_EQ(kv.count("exe.1"), 1u) << r;
  expect_no_exe_write(kv, r);
  EXPECT_EQ(file_digest(runtime_path()), before);
  rt.kill(id, "KILL");
}

// --- LSM fields on a host without the LSM -------------------------------------------------

class LsmTest : public ContainerTest {
 protected:
  void expect_refused(const std::function<void(Json&)>& set, const std::string& field,
                      bool lsm_enabled) {
    if (lsm_enabled) GTEST_SKIP() << "the LSM is enabled on this host";
    Bundle b(rt);
    set(b.config());
    std::string id = rt.new_id("lsm");
    RunResult r = rt.create(b, id);
    expect_error(r, field);
    if (runtime_is_zrun()) {
      EXPECT_NE(r.err.find("not enabled"), std::string::npos) << r;
    }
    EXPECT_EQ(leftovers(rt, b, id), "");
  }
  static bool apparmor_enabled() {
    return base::trim(read_file("/sys/module/apparmor/parameters/enabled")) == "Y";
  }
  static bool selinux_enabled() { return path_exists("/sys/fs/selinux/enforce"); }
};

// zrun applies no LSM labels yet; its features document reports the host's LSMs (runc
// reports what it was compiled with, so this is zrun-only).
TEST_F(LsmTest, FeaturesMatchHost) {
  if (!runtime_is_zrun()) GTEST_SKIP() << "runc reports compiled-in support";
  const Json& f = rt.features();
  if (f.is_null()) GTEST_SKIP() << "no features";
  EXPECT_EQ(f["linux"]["apparmor"]["enabled"], apparmor_enabled());
  EXPECT_EQ(f["linux"]["selinux"]["enabled"], selinux_enabled());
}

TEST_F(LsmTest, ApparmorProfileWithoutApparmorIsCreateError) {
  expect_refused([](Json& c) { c["process"]["apparmorProfile"] = "zrun-test-profile"; },
                 "process.apparmorProfile", apparmor_enabled());
}

TEST_F(LsmTest, SelinuxLabelWithoutSelinuxIsCreateError) {
  if (!runtime_is_zrun()) GTEST_SKIP() << "zrun-only message";
  expect_refused([](Json& c) { c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"; },
                 "process.selinuxLabel", selinux_enabled());
}

TEST_F(LsmTest, MountLabelWithoutSelinuxIsCreateError) {
  if (!runtime_is_zrun()) GTEST_SKIP() << "runc ignores mountLabel without SELinux";
  expect_refused(
      [](Json& c) { c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0"; },
      "linux.mountLabel", selinux_enabled());
}

}  // namespace
}  // namespace zrun::test
