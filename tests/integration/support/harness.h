// Integration-test harness: temp bundles built from the runtime's own `spec` output, a
// runtime wrapper with a private --root that runs commands with a timeout and cleans up
// every container it created, and "no leftovers" checks.
//
// The runtime under test comes from $ZRUN_TEST_RUNTIME (default: the zrun binary built by
// CMake), so the same tests run against runc:
//   ZRUN_TEST_RUNTIME=/usr/sbin/runc ./build/tests/lifecycle_test
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zrun::test {

using Json = nlohmann::json;
using namespace std::chrono_literals;

// Skip the current test unless we are root (integration tests run real containers).
#define ZRUN_REQUIRE_ROOT()                                                       \
  do {                                                                            \
    if (::geteuid() != 0) GTEST_SKIP() << "integration tests need root (euid 0)"; \
  } while (0)

// Paths of the artifacts under test.
std::string runtime_path();  // $ZRUN_TEST_RUNTIME or ZRUN_BIN
std::string probe_path();    // $ZRUN_TEST_PROBE or ZRUN_PROBE
std::string source_dir();    // $ZRUN_TEST_SOURCE_DIR or ZRUN_SOURCE_DIR
// True when the runtime under test is zrun (basename starts with "zrun"); tests assert
// zrun-specific message formats (the `zrun: ` prefix) only then.
bool runtime_is_zrun();

// A directory under $TMPDIR (default /tmp) removed on destruction. Removal never crosses
// into a mount point: a leaked mount is detached first (it is ours, it is under our dir).
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "zrun-it");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The rootfs template, built once per test process with tests/fixtures/make_rootfs.sh.
const std::string& template_rootfs();

struct RunResult {
  int code = -1;  // exit code; 128+N if killed by signal N; -1 if it could not start
  std::string out, err;
  bool timed_out = false;
  std::string describe() const;  // for assertion messages
};
std::ostream& operator<<(std::ostream& os, const RunResult& r);

struct ExecOptions {
  std::chrono::milliseconds timeout = 20s;
  std::string stdin_data;  // fed to the child's stdin (empty: /dev/null)
  // When set, the child's stdout/stderr go to these files (kept after the call, so output
  // the container writes later, e.g. after `create`, can be read from them).
  std::string stdout_path, stderr_path;
  std::vector<std::string> env;  // extra KEY=VALUE entries
  std::vector<int> pass_fds;     // become fds 3, 4, ... in the child (for --preserve-fds)
};

// Run argv (argv[0] is a path) with stdio captured via files; the child gets its own
// process group, and on timeout the group is SIGKILLed and reaped.
RunResult run_command(const std::vector<std::string>& argv, const ExecOptions& opts = {});

class Runtime;

class Bundle {
 public:
  // Creates a temp bundle: rootfs (hard-linked copy of the template) and config.json from
  // `<runtime> spec`, adjusted for tests: terminal=false, root.readonly=false, args =
  // probe `pid`, hostname "zrun-test".
  explicit Bundle(Runtime& rt);
  ~Bundle();  // SIGKILLs processes still running with cwd/root in the bundle
  Bundle(const Bundle&) = delete;
  Bundle& operator=(const Bundle&) = delete;

  const std::string& path() const { return dir_.path(); }
  std::string rootfs() const { return dir_.path() + "/rootfs"; }
  Json& config() { return config_; }
  const Json& config() const { return config_; }

  // Process.
  Bundle& args(std::vector<std::string> a);
  Bundle& probe(std::vector<std::string> probe_args);  // args = /bin/zrun-probe + probe_args
  Bundle& env(const std::string& kv);                  // add or replace KEY=VALUE
  Bundle& terminal(bool on);
  Bundle& readonly_root(bool on);

  // Linux.
  Bundle& add_namespace(const std::string& type, const std::string& path = "");
  Bundle& remove_namespace(const std::string& type);
  bool has_namespace(const std::string& type) const;
  Bundle& add_mount(const std::string& dest, const std::string& type, const std::string& source,
                    std::vector<std::string> options = {});
  Bundle& remove_mount(const std::string& dest);
  // Hook entry {path, args, env, timeout} appended to hooks.<phase>.
  Bundle& add_hook(const std::string& phase, const std::string& path,
                   std::vector<std::string> args = {}, std::vector<std::string> env = {},
                   int timeout = 0);

  // Write config.json (Runtime calls this before create/run).
  void save() const;
  // Output the container wrote to stdout/stderr when created with Runtime::create.
  std::string out() const;
  std::string err() const;
  std::string out_path() const { return dir_.path() + "/container.out"; }
  std::string err_path() const { return dir_.path() + "/container.err"; }

 private:
  TempDir dir_;
  Json config_;
};

class Runtime {
 public:
  Runtime();  // private --root in a temp dir
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime();  // `delete --force` of every tracked container, then the root is removed

  const std::string& path() const { return path_; }
  std::string root() const { return root_dir_.path() + "/root"; }

  // `<runtime> --root ROOT args...`
  RunResult exec(const std::vector<std::string>& args, const ExecOptions& opts = {});
  // A fresh container id (also tracked for cleanup).
  std::string new_id(const std::string& stem = "c");
  void track(const std::string& id);

  // Typed helpers (save the bundle's config first where relevant).
  RunResult spec(const std::string& dir);
  RunResult run(const Bundle& b, const std::string& id, std::vector<std::string> extra = {},
                ExecOptions opts = {});
  // Container stdio goes to b.out_path()/b.err_path() (read with b.out()).
  RunResult create(const Bundle& b, const std::string& id, std::vector<std::string> extra = {});
  RunResult start(const std::string& id);
  RunResult state(const std::string& id);
  Json state_json(const std::string& id);     // null on failure
  std::string status(const std::string& id);  // "" on failure
  RunResult kill(const std::string& id, const std::string& sig = "", bool all = false);
  RunResult del(const std::string& id, bool force = false);
  RunResult list(std::vector<std::string> extra = {});
  // Poll `state` until status == want (or the timeout); returns the last status seen.
  std::string wait_status(const std::string& id, const std::string& want,
                          std::chrono::milliseconds timeout = 5s);
  // `features` document (null if unsupported); cached.
  const Json& features();
  bool supports_namespace(const std::string& type);

 private:
  std::string path_;
  TempDir root_dir_;
  std::vector<std::string> ids_;
  Json features_;
  bool features_loaded_ = false;
};

// "key=value" lines → map (later keys win; lines without '=' are ignored).
std::map<std::string, std::string> parse_kv(const std::string& out);
// Output made of sections "== NAME" followed by key=value lines (a shell loop calling the
// probe several times) → NAME → key → value.
std::map<std::string, std::map<std::string, std::string>> parse_sections(const std::string& out);

// One /proc/PID/mountinfo line.
struct MountInfo {
  std::string mount_point, root, fstype, source;
  std::string options;                          // per-mount: rw,nosuid,...
  std::string super_options;                    // per-superblock: size=...,mode=...
  bool has_option(const std::string& o) const;  // in either list
};
std::vector<MountInfo> parse_mountinfo(const std::string& text);
// The top-most mount at `mount_point` (the last one listed), or nullptr.
const MountInfo* find_mount(const std::vector<MountInfo>& mounts, const std::string& mount_point);

// Inode of /proc/self/ns/<type> (host side); 0 on error.
unsigned long long host_ns_inode(const std::string& type);
// Inode of /proc/<pid>/ns/<type>; 0 on error.
unsigned long long pid_ns_inode(pid_t pid, const std::string& type);
std::string read_file(const std::string& path);  // "" on error
void write_file(const std::string& path, const std::string& data, mode_t mode = 0644);
bool path_exists(const std::string& path);
// Wait until `path` exists and is non-empty (hook logs, pid files); false on timeout.
bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout = 5s);

// The cgroup2 directory of `pid`, from the "0::" line of /proc/PID/cgroup (under
// /sys/fs/cgroup/unified on hybrid hosts); "" if none.
std::string unified_dir(pid_t pid);

// Cgroup directories named `id` at depth <= 3 under /sys/fs/cgroup/*/ (real cgroupfs only).
std::vector<std::string> cgroup_dirs_named(const std::string& id);

// Everything an operation on container `id` of bundle `b` may have left on the host:
// state dir under the root, cgroup dirs named `id` (depth <= 3 under /sys/fs/cgroup/*/),
// mounts mentioning the bundle path, processes whose cwd or root is inside the bundle.
// Empty string when clean; otherwise one line per leftover.
std::string leftovers(const Runtime& rt, const Bundle& b, const std::string& id);

// Host device nodes (/dev/null, zero, full, random, urandom, tty, ptmx) that are no longer
// root:root 0666 — a runtime bug that breaks the whole machine. Repairs them and returns
// one line per problem ("" when intact).
std::string host_dev_damage();

// A listening unix socket for --console-socket; receive_fd() accepts one connection and
// returns the fd sent with SCM_RIGHTS (-1 on timeout/error; caller owns the fd).
class ConsoleSocket {
 public:
  ConsoleSocket();
  ~ConsoleSocket();
  const std::string& path() const { return path_; }
  int receive_fd(std::chrono::milliseconds timeout = 5s);

 private:
  TempDir dir_;
  std::string path_;
  int fd_ = -1;
};

// Read from fd until `needle` appears, EOF/EIO, or the timeout; returns what was read.
std::string read_until(int fd, const std::string& needle, std::chrono::milliseconds timeout = 5s);

// Base fixture: skips unless root, gives each test its own Runtime (private --root).
class ContainerTest : public ::testing::Test {
 protected:
  void SetUp() override { ZRUN_REQUIRE_ROOT(); }
  // Fails the test if the runtime damaged the host's /dev nodes (and repairs them).
  void TearDown() override;
  // A failed command: non-zero exit, a message on stderr; for zrun also the `zrun: `
  // prefix and (if given) `contains` in the message.
  static void expect_error(const RunResult& r, const std::string& contains = "");
  // Run the bundle in the foreground and parse the probe's key=value output.
  std::map<std::string, std::string> run_kv(Bundle& b, int want_code = 0);

  Runtime rt;
};

}  // namespace zrun::test
