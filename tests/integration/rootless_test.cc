// Rootless containers, run by a real unprivileged user the test creates (useradd): zrun
// spec --rootless + run/create/start/exec/ps/kill/delete as that user with
// XDG_RUNTIME_DIR pointing at a private dir, the own-id map written directly and a
// /etc/subuid range mapped through newuidmap/newgidmap. The user, its group and the
// exact previous content of /etc/subuid, /etc/subgid (and shadow's "-" backups) are
// restored at the end, also when a test fails. Needs root (to create the user) and
// unprivileged user namespaces (skipped with the reason when the kernel refuses them).
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

constexpr uint32_t kRangeSize = 65536;

// A file's exact content (or its absence), put back on destruction.
class FileBackup {
 public:
  explicit FileBackup(std::string path) : path_(std::move(path)) {
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0) {
      existed_ = true;
      mode_ = st.st_mode & 07777;
      uid_ = st.st_uid;
      gid_ = st.st_gid;
      times_[0] = st.st_atim;
      times_[1] = st.st_mtim;
      content_ = read_file(path_);
    }
  }
  ~FileBackup() { restore(); }
  void restore() const {
    if (!existed_) {
      ::unlink(path_.c_str());
      return;
    }
    write_file(path_, content_, mode_);
    ::chmod(path_.c_str(), mode_);
    if (::chown(path_.c_str(), uid_, gid_) != 0) ADD_FAILURE() << "chown " << path_;
    ::utimensat(AT_FDCWD, path_.c_str(), times_, 0);
  }
  const std::string& content() const { return content_; }

 private:
  std::string path_;
  bool existed_ = false;
  mode_t mode_ = 0644;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  struct timespec times_[2] = {};
  std::string content_;
};

// The first id after every range in a /etc/subuid-style file (at least 1000000), so the
// test's range overlaps nobody's.
uint32_t free_range_base(const std::string& text) {
  uint64_t base = 1000000;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(':'), b = line.rfind(':');
    if (a == std::string::npos || a == b) continue;
    uint64_t start = std::stoull(line.substr(a + 1, b - a - 1)),
             size = std::stoull(line.substr(b + 1));
    base = std::max(base, start + size);
  }
  return static_cast<uint32_t>(base);
}

// The unprivileged user for the whole suite.
struct TestUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  uint32_t sub_base = 0;  // its /etc/subuid and /etc/subgid range: [sub_base, +kRangeSize)
  TempDir home{"zrun-it-rootless-home"};
  // Taken before useradd touches anything.
  std::vector<std::unique_ptr<FileBackup>> backups;
  bool created = false;

  TestUser() {
    for (const char* f : {"/etc/subuid", "/etc/subgid", "/etc/subuid-", "/etc/subgid-",
                          "/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-"})
      backups.push_back(std::make_unique<FileBackup>(f));
    name = "zrt" + std::to_string(::getpid() % 1000000);
    RunResult r = run_command({"/usr/sbin/useradd", "-M", "-d", home / "home", "-s",
                               "/usr/sbin/nologin", "-c", "zrun rootless test", name});
    if (r.code != 0) {
      ADD_FAILURE() << "useradd " << name << ": " << r;
      return;
    }
    created = true;
    struct passwd* pw = ::getpwnam(name.c_str());
    if (!pw) {
      ADD_FAILURE() << "getpwnam " << name;
      return;
    }
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    // Exactly the old content plus our range (useradd may have added one of its own).
    sub_base = free_range_base(backups[0]->content() + "\n" + backups[1]->content());
    std::string entry = name + ":" + std::to_string(sub_base) + ":" + std::to_string(kRangeSize);
    for (int i : {0, 1}) {
      std::string old = backups[i]->content();
      if (!old.empty() && old.back() != '\n') old += "\n";
      write_file(i == 0 ? "/etc/subuid" : "/etc/subgid", old + entry + "\n");
    }
  }
  ~TestUser() {
    if (created) {
      RunResult r = run_command({"/usr/sbin/userdel", name});
      if (r.code != 0) ADD_FAILURE() << "userdel " << name << ": " << r;
      if (::getgrnam(name.c_str())) (void)run_command({"/usr/sbin/groupdel", name});
    }
    backups.clear();  // restores the files, after userdel rewrote them
  }
};

// `fn` in a child running as uid/gid with no capabilities: 0 if it succeeded, else errno.
int errno_as(uid_t uid, gid_t gid, const std::function<int()>& fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0)
      ::_exit(255);
    ::_exit(fn());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 254;
}

// Directories named `id` anywhere under /sys/fs/cgroup (rootless cgroups would be below
// zrun's own cgroup, deeper than cgroup_dirs_named() looks).
void find_named(const std::string& dir, const std::string& id, int depth,
                std::vector<std::string>& out) {
  if (depth > 10) return;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    std::string p = dir + "/" + e->d_name;
    if (id == e->d_name) out.push_back(p);
    find_named(p, id, depth + 1, out);
  }
  ::closedir(d);
}

std::vector<std::string> cgroups_named(const std::string& id) {
  std::vector<std::string> out;
  find_named("/sys/fs/cgroup", id, 0, out);
  return out;
}

class RootlessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    user_ = new TestUser();
  }
  static void TearDownTestSuite() {
    delete user_;
    user_ = nullptr;
  }

  void SetUp() override {
    ZRUN_REQUIRE_ROOT();
    ASSERT_TRUE(user_ && user_->created && user_->uid != 0);
    // Can this user create a user namespace here? (Debian's
    // kernel.unprivileged_userns_clone, user.max_user_namespaces, an LSM may refuse.)
    int err =
        errno_as(user_->uid, user_->gid, [] { return ::unshare(CLONE_NEWUSER) == 0 ? 0 : errno; });
    if (err != 0)
      GTEST_SKIP() << "unprivileged user namespaces are refused here (unshare: "
                   << std::strerror(err) << "; user.max_user_namespaces="
                   << read_file("/proc/sys/user/max_user_namespaces") << ")";
    // The bundle: a private copy of the template rootfs (not hard links: it is chowned).
    RunResult r = run_command({"/bin/cp", "-a", template_rootfs(), bundle_ / "rootfs"});
    ASSERT_EQ(r.code, 0) << r;
    ASSERT_EQ(run_command({"/bin/chown", "-R", owner(), bundle_.path()}).code, 0);
    ASSERT_EQ(run_command({"/bin/chown", owner(), xdg_.path()}).code, 0);
    ASSERT_EQ(::chmod(xdg_.path().c_str(), 0700), 0);
  }

  void TearDown() override {
    if (!user_ || !user_->created) return;
    // Whatever a failed test left running: delete --force as the user.
    for (auto& id : ids_) (void)as_user({"delete", "--force", id});
  }

  static std::string owner() {
    return std::to_string(user_->uid) + ":" + std::to_string(user_->gid);
  }
  std::string root() const { return xdg_ / "zrun"; }

  // `zrun --root $XDG_RUNTIME_DIR/zrun args...` as the user (no --root when !with_root).
  RunResult as_user(std::vector<std::string> args, bool with_root = true, ExecOptions o = {}) {
    std::vector<std::string> argv = {"/usr/bin/setpriv",
                                     "--reuid=" + std::to_string(user_->uid),
                                     "--regid=" + std::to_string(user_->gid),
                                     "--init-groups",
                                     "--",
                                     "/usr/bin/env",
                                     "-i",
                                     "PATH=/usr/bin:/bin",
                                     "HOME=" + user_->home.path(),
                                     "XDG_RUNTIME_DIR=" + xdg_.path(),
                                     runtime_path()};
    if (with_root) argv.insert(argv.end(), {"--root", root()});
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, o);
  }

  // `spec --rootless` as the user, then the test's adjustments.
  Json rootless_spec() {
    RunResult r = as_user({"spec", "--rootless", "-b", bundle_.path()});
    EXPECT_EQ(r.code, 0) << r;
    Json c = Json::parse(read_file(bundle_ / "config.json"));
    c["process"]["terminal"] = false;
    c["root"]["readonly"] = false;
    c["hostname"] = "rootless-test";
    return c;
  }
  void save(const Json& c) {
    write_file(bundle_ / "config.json", c.dump(2));
    ASSERT_EQ(::chown((bundle_ / "config.json").c_str(), user_->uid, user_->gid), 0);
  }
  std::string new_id() {
    static int n = 0;
    ids_.push_back("zt-rl-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    return ids_.back();
  }
  void expect_no_leftovers(const std::string& id) {
    EXPECT_FALSE(path_exists(root() + "/" + id)) << "state dir left";
    EXPECT_EQ(cgroups_named(id), std::vector<std::string>{});
  }
  uid_t owner_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_uid;
  }

  static TestUser* user_;
  TempDir bundle_{"zrun-it-rootless"};
  TempDir xdg_{"zrun-it-rootless-xdg"};
  std::vector<std::string> ids_;
};

TestUser* RootlessTest::user_ = nullptr;

TEST_F(RootlessTest, SpecRootlessRunsAsMappedRoot) {
  Json c = rootless_spec();
  // What spec --rootless gives: a user ns mapping our own ids, no network ns (runc).
  EXPECT_EQ(c["linux"]["uidMappings"][0]["hostID"], user_->uid);
  EXPECT_EQ(c["linux"]["gidMappings"][0]["hostID"], user_->gid);
  c["process"]["args"] = {"/bin/sh", "-c",
                          "echo uid=$(id -u) gid=$(id -g); cat /proc/self/uid_map; "
                          "echo host=$(hostname); echo hi > /made-inside && "
                          "cat /proc/self/setgroups; exit 7"};
  save(c);
  std::string id = new_id();
  // No --root: the default for a non-root user is $XDG_RUNTIME_DIR/zrun.
  RunResult r = as_user({"run", "-b", bundle_.path(), id}, /*with_root=*/false);
  EXPECT_EQ(r.code, 7) << r;  // the container's exit code propagates
  EXPECT_NE(r.out.find("uid=0 gid=0\n"), std::string::npos) << r;
  std::string map_line = "0 " + std::to_string(user_->uid) + " 1";
  std::istringstream maps(r.out);
  bool mapped = false;
  for (std::string l; std::getline(maps, l);) {
    std::istringstream f(l);
    std::string a, b, n;
    f >> a >> b >> n;
    mapped |= a + " " + b + " " + n == map_line;
  }
  EXPECT_TRUE(mapped) << r;
  EXPECT_NE(r.out.find("host=rootless-test\n"), std::string::npos) << r;
  // Written without newgidmap: setgroups is denied in the namespace.
  EXPECT_NE(r.out.find("deny"), std::string::npos) << r;
  // The file the container's root made belongs to the user on the host.
  EXPECT_EQ(read_file(bundle_ / "rootfs/made-inside"), "hi\n");
  EXPECT_EQ(owner_of(bundle_ / "rootfs/made-inside"), user_->uid);
  // Cgroups are not delegated to the user on our machines: a warning, no cgroup.
  if (r.err.find("cgroups are not delegated") == std::string::npos)
    ADD_FAILURE() << "expected the no-delegation warning (is the cgroup tree writable by "
                  << user_->name << "?): " << r;
  expect_no_leftovers(id);
}

TEST_F(RootlessTest, LifecycleAsUser) {
  Json c = rootless_spec();
  c["process"]["args"] = {"/bin/sh", "-c", "sleep 300 & sleep 301 & wait"};
  save(c);
  std::string id = new_id();
  ExecOptions quiet;
  quiet.stdout_path = bundle_ / "out";
  quiet.stderr_path = bundle_ / "err";
  RunResult r = as_user({"create", "-b", bundle_.path(), id}, true, quiet);
  ASSERT_EQ(r.code, 0) << r << read_file(bundle_ / "err");
  Json st = Json::parse(as_user({"state", id}).out);
  EXPECT_EQ(st["status"], "created");
  pid_t init = st["pid"].get<pid_t>();
  r = as_user({"start", id});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(Json::parse(as_user({"state", id}).out)["status"], "running");
  r = as_user({"list"});
  EXPECT_NE(r.out.find(id), std::string::npos) << r;
  EXPECT_NE(r.out.find(user_->name), std::string::npos) << r;  // OWNER column
  // The init runs as the user on the host.
  EXPECT_EQ(owner_of("/proc/" + std::to_string(init)), user_->uid);

  r = as_user({"exec", id, "/bin/sh", "-c", "id -u; cat /proc/self/uid_map; ps -o pid,args"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out.substr(0, 2), "0\n") << r;
  EXPECT_NE(r.out.find("sleep 301"), std::string::npos) << r;  // same pid namespace

  // No cgroup: ps lists the pid namespace's processes (init + 2 sleeps).
  r = as_user({"ps", "-f", "json", id});
  ASSERT_EQ(r.code, 0) << r;
  auto pids = Json::parse(r.out);
  EXPECT_EQ(pids.size(), 3u) << r;
  EXPECT_NE(std::find(pids.begin(), pids.end(), init), pids.end()) << r;
  // pause needs a freezer: a clear error, the container keeps running.
  r = as_user({"pause", id});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("has no cgroup"), std::string::npos) << r;
  // kill --all: every process of the pid namespace gets the signal (the init's children
  // die, so the shell's wait returns and it exits).
  r = as_user({"kill", "--all", id, "TERM"});
  EXPECT_EQ(r.code, 0) << r;
  for (int i = 0; i < 100 && Json::parse(as_user({"state", id}).out)["status"] != "stopped"; ++i)
    ::usleep(20000);
  EXPECT_EQ(Json::parse(as_user({"state", id}).out)["status"], "stopped");
  r = as_user({"delete", id});
  EXPECT_EQ(r.code, 0) << r;
  expect_no_leftovers(id);
}

// process.terminal (the spec default): the pty comes from the container's own devpts,
// mounted in the user namespace, and its master reaches the user's console socket.
TEST_F(RootlessTest, TerminalThroughConsoleSocket) {
  ConsoleSocket cs;
  ASSERT_EQ(::chmod(cs.path().c_str(), 0777), 0);  // the user connects to it
  Json c = rootless_spec();
  c["process"]["terminal"] = true;
  c["process"]["args"] = {"/bin/sh", "-c", "echo tty=$(tty) id=$(id -u); sleep 0.2"};
  save(c);
  std::string id = new_id();
  RunResult r = as_user({"run", "-d", "--console-socket", cs.path(), "-b", bundle_.path(), id});
  ASSERT_EQ(r.code, 0) << r;
  int master = cs.receive_fd();
  ASSERT_GE(master, 0) << "no pty master received";
  std::string out = read_until(master, "id=0");
  ::close(master);
  EXPECT_NE(out.find("tty=/dev/pts/0"), std::string::npos) << out;
  for (int i = 0; i < 100 && Json::parse(as_user({"state", id}).out)["status"] != "stopped"; ++i)
    ::usleep(20000);
  EXPECT_EQ(as_user({"delete", id}).code, 0);
  expect_no_leftovers(id);
}

// More than the own id: ranges from /etc/subuid and /etc/subgid through newuidmap and
// newgidmap; a chown inside lands in the subordinate range on the host.
TEST_F(RootlessTest, SubordinateRangeViaNewuidmap) {
  if (::access("/usr/bin/newuidmap", X_OK) != 0 || ::access("/usr/bin/newgidmap", X_OK) != 0)
    GTEST_SKIP() << "newuidmap/newgidmap (package uidmap) not installed";
  Json c = rootless_spec();
  Json range = {{{"containerID", 0}, {"hostID", user_->uid}, {"size", 1}},
                {{"containerID", 1}, {"hostID", user_->sub_base}, {"size", kRangeSize}}};
  c["linux"]["uidMappings"] = range;
  range[0]["hostID"] = user_->gid;
  c["linux"]["gidMappings"] = range;
  for (const char* set : {"bounding", "effective", "permitted"})
    c["process"]["capabilities"][set].push_back("CAP_CHOWN");
  c["process"]["args"] = {"/bin/sh", "-c",
                          "cat /proc/self/uid_map; touch /owned && chown 1000:1000 /owned && "
                          "stat -c owner=%u:%g /owned"};
  save(c);
  std::string id = new_id();
  RunResult r = as_user({"run", "-b", bundle_.path(), id});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find(std::to_string(user_->sub_base)), std::string::npos) << r;
  EXPECT_NE(r.out.find("owner=1000:1000"), std::string::npos) << r;
  // Container id 1 is sub_base, so 1000 is sub_base + 999 on the host.
  struct stat st {};
  ASSERT_EQ(::lstat((bundle_ / "rootfs/owned").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, user_->sub_base + 999);
  EXPECT_EQ(st.st_gid, user_->sub_base + 999);
  expect_no_leftovers(id);
}

// A range the user was not given: newuidmap refuses and create fails cleanly.
TEST_F(RootlessTest, RangeOutsideSubuidIsRefused) {
  Json c = rootless_spec();
  c["linux"]["uidMappings"] = {
      {{"containerID", 0}, {"hostID", user_->uid}, {"size", 1}},
      {{"containerID", 1}, {"hostID", user_->sub_base + kRangeSize}, {"size", 1000}}};
  c["process"]["args"] = {"/bin/true"};
  save(c);
  std::string id = new_id();
  RunResult r = as_user({"run", "-b", bundle_.path(), id});
  EXPECT_NE(r.code, 0) << r;
  EXPECT_NE(r.err.find("write uid map"), std::string::npos) << r;
  EXPECT_NE(r.err.find("newuidmap"), std::string::npos) << r;
  expect_no_leftovers(id);
}

// linux.resources in a rootless spec without cgroup delegation: a warning, not a failure.
TEST_F(RootlessTest, ResourcesWithoutDelegationWarnAndRun) {
  Json c = rootless_spec();
  c["linux"]["resources"] = {{"memory", {{"limit", 256 << 20}}}, {"pids", {{"limit", 100}}}};
  c["process"]["args"] = {"/bin/sh", "-c", "echo ran"};
  save(c);
  std::string id = new_id();
  RunResult r = as_user({"run", "-b", bundle_.path(), id});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "ran\n") << r;
  EXPECT_NE(r.err.find("warning"), std::string::npos) << r;
  EXPECT_NE(r.err.find("linux.resources not applied"), std::string::npos) << r;
  expect_no_leftovers(id);
}

// What only real root may do gives a clear error rather than a half-set-up container.
TEST_F(RootlessTest, PrivilegedSettingsFailClearly) {
  Json c = rootless_spec();
  c["process"]["args"] = {"/bin/true"};
  c["process"]["user"]["additionalGids"] = {0};
  save(c);
  RunResult r = as_user({"run", "-b", bundle_.path(), new_id()});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("setgroups is denied"), std::string::npos) << r;

  c["process"]["user"].erase("additionalGids");
  c["process"]["oomScoreAdj"] = -500;
  save(c);
  r = as_user({"run", "-b", bundle_.path(), new_id()});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("oom_score_adj -500"), std::string::npos) << r;
  EXPECT_NE(r.err.find("CAP_SYS_RESOURCE"), std::string::npos) << r;
  for (auto& id : ids_) expect_no_leftovers(id);
}

}  // namespace
}  // namespace zrun::test
