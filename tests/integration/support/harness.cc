#include "tests/integration/support/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#ifndef ZRUN_BIN
#define ZRUN_BIN "zrun"
#endif
#ifndef ZRUN_PROBE
#define ZRUN_PROBE "zrun-probe"
#endif
#ifndef ZRUN_SOURCE_DIR
#define ZRUN_SOURCE_DIR "."
#endif

namespace zrun::test {
namespace {

std::string env_or(const char* name, const char* def) {
  const char* v = std::getenv(name);
  return v && *v ? v : def;
}

bool starts_with(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}

std::string read_link(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

// Unescape the octal escapes mountinfo uses for spaces etc. ("\040").
std::string unescape_mountinfo(const std::string& s) {
  std::string r;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      r += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      r += s[i];
    }
  }
  return r;
}

// Mount points (host mount namespace) at or below `dir`, deepest first.
std::vector<std::string> mounts_under(const std::string& dir) {
  std::vector<std::string> found;
  std::istringstream in(read_file("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, devno, root, mnt;
    ls >> id >> parent >> devno >> root >> mnt;
    mnt = unescape_mountinfo(mnt);
    if (mnt == dir || starts_with(mnt, dir + "/")) found.push_back(mnt);
  }
  std::sort(found.begin(), found.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return found;
}

int remove_entry(const char* path, const struct stat*, int type, struct FTW*) {
  if (type == FTW_DP)
    ::rmdir(path);
  else
    ::unlink(path);
  return 0;
}

// rm -rf that stays on one filesystem (FTW_MOUNT) and never follows symlinks (FTW_PHYS).
void remove_tree(const std::string& path) {
  for (const auto& m : mounts_under(path)) ::umount2(m.c_str(), MNT_DETACH);
  ::nftw(path.c_str(), remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

// Hard-link copy of a tree (symlinks recreated, dirs made with the same mode).
void link_tree(const std::string& from, const std::string& to) {
  struct stat st;
  if (::lstat(from.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    ::mkdir(to.c_str(), st.st_mode & 07777);
    ::chmod(to.c_str(), st.st_mode & 07777);
    DIR* d = ::opendir(from.c_str());
    if (!d) return;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      link_tree(from + "/" + n, to + "/" + n);
    }
    ::closedir(d);
  } else if (S_ISLNK(st.st_mode)) {
    (void)::symlink(read_link(from).c_str(), to.c_str());
  } else {
    (void)::link(from.c_str(), to.c_str());
  }
}

// Processes whose cwd or root lies inside `dir`: "pid N cwd=PATH" lines, and their pids.
std::vector<std::string> processes_in(const std::string& dir, std::vector<pid_t>* pids = nullptr) {
  std::vector<std::string> found;
  DIR* d = ::opendir("/proc");
  if (!d) return found;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string base = std::string("/proc/") + e->d_name;
    for (const char* what : {"/cwd", "/root"}) {
      std::string t = read_link(base + what);
      if (t == dir || starts_with(t, dir + "/")) {
        found.push_back(std::string("pid ") + e->d_name + " " + (what + 1) + "=" + t);
        if (pids) pids->push_back(static_cast<pid_t>(std::atoi(e->d_name)));
        break;
      }
    }
  }
  ::closedir(d);
  return found;
}

// Only real cgroup directories count (not, e.g., a tmpfs covering a hierarchy).
bool is_cgroupfs(const std::string& path) {
  struct statfs fs;
  return ::statfs(path.c_str(), &fs) == 0 &&
         (fs.f_type == CGROUP_SUPER_MAGIC || fs.f_type == CGROUP2_SUPER_MAGIC);
}

void find_cgroup_dirs(const std::string& dir, const std::string& name, int depth,
                      std::vector<std::string>& found) {
  if (depth > 3) return;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_type != DT_DIR) continue;
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string p = dir + "/" + n;
    if (n == name && is_cgroupfs(p)) found.push_back(p);
    find_cgroup_dirs(p, name, depth + 1, found);
  }
  ::closedir(d);
}

std::atomic<unsigned> g_temp_counter{0};

}  // namespace

std::string runtime_path() { return env_or("ZRUN_TEST_RUNTIME", ZRUN_BIN); }
std::string probe_path() { return env_or("ZRUN_TEST_PROBE", ZRUN_PROBE); }
std::string source_dir() { return env_or("ZRUN_TEST_SOURCE_DIR", ZRUN_SOURCE_DIR); }

bool runtime_is_zrun() {
  std::string p = runtime_path();
  std::string base = p.substr(p.rfind('/') + 1);
  return starts_with(base, "zrun");
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return;
  (void)!::write(fd, data.data(), data.size());
  ::fchmod(fd, mode);
  ::close(fd);
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string unified_dir(pid_t pid) {
  std::string base =
      path_exists("/sys/fs/cgroup/unified") ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup";
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/cgroup"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return base + line.substr(3);
  return "";
}

bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && st.st_size > 0) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

TempDir::TempDir(const std::string& prefix) {
  std::string tmp = env_or("TMPDIR", "/tmp");
  std::string tmpl = tmp + "/" + prefix + "." + std::to_string(::getpid()) + "." +
                     std::to_string(g_temp_counter++) + ".XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
    return;
  }
  path_ = buf.data();
  ::chmod(path_.c_str(), 0755);  // a user-namespaced container must be able to traverse it
}

TempDir::~TempDir() {
  if (!path_.empty()) remove_tree(path_);
}

const std::string& template_rootfs() {
  static std::once_flag once;
  static std::unique_ptr<TempDir> dir;
  static std::string rootfs;
  std::call_once(once, [] {
    dir = std::make_unique<TempDir>("zrun-it-rootfs");
    rootfs = dir->path() + "/rootfs";
    RunResult r = run_command(
        {"/bin/sh", source_dir() + "/tests/fixtures/make_rootfs.sh", rootfs, probe_path()});
    if (r.code != 0) ADD_FAILURE() << "make_rootfs.sh failed: " << r;
    // The template must outlive every test; remove it at exit.
    std::atexit([] { dir.reset(); });
  });
  return rootfs;
}

std::string RunResult::describe() const {
  std::ostringstream os;
  os << "code=" << code << (timed_out ? " (timed out)" : "") << "\n--- stdout ---\n"
     << out << "\n--- stderr ---\n"
     << err;
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const RunResult& r) { return os << r.describe(); }

RunResult run_command(const std::vector<std::string>& argv, const ExecOptions& opts) {
  RunResult res;
  TempDir io("zrun-it-io");
  std::string out_path = opts.stdout_path.empty() ? io / "out" : opts.stdout_path;
  std::string err_path = opts.stderr_path.empty() ? io / "err" : opts.stderr_path;
  // stdin is always a pipe (closed after stdin_data), never /dev/null: a runtime that
  // chowns the container's stdio to the container user (crun 1.8 does) would otherwise
  // chown the host's /dev/null.
  int in_pipe[2] = {-1, -1};
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return res;

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::string> envs;
  for (char** e = environ; *e; e++) envs.emplace_back(*e);
  for (const auto& e : opts.env) envs.push_back(e);
  std::vector<char*> cenv;
  for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return res;
  if (pid == 0) {
    ::setpgid(0, 0);
    int in = in_pipe[0];
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) ::_exit(126);
    // Move the fds to pass above any fd we are about to overwrite, then place them.
    // (No allocation here: the test may have other threads, fork() copied only this one.)
    int moved[16];
    size_t n_moved = std::min<size_t>(opts.pass_fds.size(), 16);
    for (size_t i = 0; i < n_moved; i++) moved[i] = ::fcntl(opts.pass_fds[i], F_DUPFD, 100);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    int next = 3;
    for (size_t i = 0; i < n_moved; i++) ::dup2(moved[i], next++);  // dup2 clears FD_CLOEXEC
    // Do not leak the test's other fds into the runtime (and thus the container).
    ::syscall(SYS_close_range, next, ~0U, 0);
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from the parent, to win the race with a timeout kill
  ::close(in_pipe[0]);
  // A command that exits without reading its stdin must not kill the test binary with
  // SIGPIPE (its destructors clean up containers and cgroups).
  static const bool sigpipe_ignored = (::signal(SIGPIPE, SIG_IGN), true);
  (void)sigpipe_ignored;
  if (!opts.stdin_data.empty())
    (void)!::write(in_pipe[1], opts.stdin_data.data(), opts.stdin_data.size());
  ::close(in_pipe[1]);
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  int status = 0;
  if (pidfd >= 0) {
    struct pollfd p = {pidfd, POLLIN, 0};
    int n;
    do {
      n = ::poll(&p, 1, static_cast<int>(opts.timeout.count()));
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
      res.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
    ::close(pidfd);
  }
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  res.out = read_file(out_path);
  res.err = read_file(err_path);
  return res;
}

// ---------------------------------------------------------------------------------------
// Bundle

Bundle::Bundle(Runtime& rt) : dir_("zrun-it-bundle") {
  link_tree(template_rootfs(), rootfs());
  RunResult r = rt.spec(path());
  if (r.code != 0) {
    ADD_FAILURE() << "`" << rt.path() << " spec` failed: " << r;
    return;
  }
  try {
    config_ = Json::parse(read_file(path() + "/config.json"));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "parse config.json from `spec`: " << e.what();
    return;
  }
  config_["root"]["path"] = "rootfs";
  config_["root"]["readonly"] = false;
  config_["process"]["terminal"] = false;
  config_["hostname"] = "zrun-test";
  probe({"pid"});
}

Bundle::~Bundle() {
  // Processes a leaky runtime left running in our rootfs were started by this test: kill
  // them (by pid) so the temp dir can go and nothing keeps running.
  std::vector<pid_t> pids;
  if (!path().empty()) processes_in(path(), &pids);
  for (pid_t pid : pids) ::kill(pid, SIGKILL);
}

Bundle& Bundle::args(std::vector<std::string> a) {
  config_["process"]["args"] = a;
  return *this;
}

Bundle& Bundle::probe(std::vector<std::string> probe_args) {
  probe_args.insert(probe_args.begin(), "/bin/zrun-probe");
  return args(std::move(probe_args));
}

Bundle& Bundle::env(const std::string& kv) {
  Json& e = config_["process"]["env"];
  if (!e.is_array()) e = Json::array();
  std::string key = kv.substr(0, kv.find('='));
  for (auto& v : e) {
    if (v.get<std::string>().substr(0, v.get<std::string>().find('=')) == key) {
      v = kv;
      return *this;
    }
  }
  e.push_back(kv);
  return *this;
}

Bundle& Bundle::terminal(bool on) {
  config_["process"]["terminal"] = on;
  return *this;
}

Bundle& Bundle::readonly_root(bool on) {
  config_["root"]["readonly"] = on;
  return *this;
}

Bundle& Bundle::add_namespace(const std::string& type, const std::string& ns_path) {
  remove_namespace(type);
  Json ns = {{"type", type}};
  if (!ns_path.empty()) ns["path"] = ns_path;
  config_["linux"]["namespaces"].push_back(ns);
  return *this;
}

Bundle& Bundle::remove_namespace(const std::string& type) {
  Json& nss = config_["linux"]["namespaces"];
  if (!nss.is_array()) nss = Json::array();
  Json kept = Json::array();
  for (const auto& ns : nss)
    if (ns.value("type", "") != type) kept.push_back(ns);
  nss = kept;
  return *this;
}

bool Bundle::has_namespace(const std::string& type) const {
  const auto& l = config_.value("linux", Json::object());
  for (const auto& ns : l.value("namespaces", Json::array()))
    if (ns.value("type", "") == type) return true;
  return false;
}

Bundle& Bundle::add_mount(const std::string& dest, const std::string& type,
                          const std::string& source, std::vector<std::string> options) {
  Json m = {{"destination", dest}, {"type", type}, {"source", source}};
  if (!options.empty()) m["options"] = options;
  config_["mounts"].push_back(m);
  return *this;
}

Bundle& Bundle::remove_mount(const std::string& dest) {
  Json kept = Json::array();
  for (const auto& m : config_.value("mounts", Json::array()))
    if (m.value("destination", "") != dest) kept.push_back(m);
  config_["mounts"] = kept;
  return *this;
}

Bundle& Bundle::add_hook(const std::string& phase, const std::string& hook_path,
                         std::vector<std::string> hook_args, std::vector<std::string> hook_env,
                         int timeout) {
  Json h = {{"path", hook_path}};
  if (!hook_args.empty()) h["args"] = hook_args;
  if (!hook_env.empty()) h["env"] = hook_env;
  if (timeout > 0) h["timeout"] = timeout;
  config_["hooks"][phase].push_back(h);
  return *this;
}

void Bundle::save() const { write_file(path() + "/config.json", config_.dump(2)); }
std::string Bundle::out() const { return read_file(out_path()); }
std::string Bundle::err() const { return read_file(err_path()); }

// ---------------------------------------------------------------------------------------
// Runtime

Runtime::Runtime() : path_(runtime_path()), root_dir_("zrun-it-root") {}

Runtime::~Runtime() {
  for (const auto& id : ids_) {
    if (path_exists(root() + "/" + id)) {
      ExecOptions o;
      o.timeout = 10s;
      (void)exec({"delete", "--force", id}, o);
    }
    // A runtime under test may leak cgroups (the test has flagged it); do not leave them
    // on the machine. rmdir only removes empty cgroups, deepest first.
    std::vector<std::string> cgroups = cgroup_dirs_named(id);
    std::sort(cgroups.begin(), cgroups.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const auto& d : cgroups) ::rmdir(d.c_str());
  }
}

RunResult Runtime::exec(const std::vector<std::string>& args, const ExecOptions& opts) {
  std::vector<std::string> argv = {path_, "--root", root()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, opts);
}

std::string Runtime::new_id(const std::string& stem) {
  // Unique per process, not per Runtime: cgroup paths are global, so a cgroup leaked by
  // one test must not collide with the next test's container.
  static std::atomic<unsigned> counter{0};
  std::string id =
      "zt-" + stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  track(id);
  return id;
}

void Runtime::track(const std::string& id) { ids_.push_back(id); }

RunResult Runtime::spec(const std::string& dir) { return exec({"spec", "-b", dir}); }

RunResult Runtime::run(const Bundle& b, const std::string& id, std::vector<std::string> extra,
                       ExecOptions opts) {
  b.save();
  std::vector<std::string> args = {"run", "-b", b.path()};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(id);
  return exec(args, opts);
}

RunResult Runtime::create(const Bundle& b, const std::string& id, std::vector<std::string> extra) {
  b.save();
  std::vector<std::string> args = {"create", "-b", b.path()};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(id);
  ExecOptions o;
  o.stdout_path = b.out_path();
  o.stderr_path = b.err_path();
  RunResult r = exec(args, o);
  return r;
}

RunResult Runtime::start(const std::string& id) { return exec({"start", id}); }
RunResult Runtime::state(const std::string& id) { return exec({"state", id}); }

Json Runtime::state_json(const std::string& id) {
  RunResult r = state(id);
  if (r.code != 0) return nullptr;
  try {
    return Json::parse(r.out);
  } catch (const std::exception&) {
    return nullptr;
  }
}

std::string Runtime::status(const std::string& id) {
  Json s = state_json(id);
  return s.is_object() ? s.value("status", "") : "";
}

RunResult Runtime::kill(const std::string& id, const std::string& sig, bool all) {
  std::vector<std::string> args = {"kill"};
  if (all) args.push_back("--all");
  args.push_back(id);
  if (!sig.empty()) args.push_back(sig);
  return exec(args);
}

RunResult Runtime::del(const std::string& id, bool force) {
  if (force) return exec({"delete", "--force", id});
  return exec({"delete", id});
}

RunResult Runtime::list(std::vector<std::string> extra) {
  extra.insert(extra.begin(), "list");
  return exec(extra);
}

std::string Runtime::wait_status(const std::string& id, const std::string& want,
                                 std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  std::string s;
  while (true) {
    s = status(id);
    if (s == want || std::chrono::steady_clock::now() >= end) return s;
    std::this_thread::sleep_for(10ms);
  }
}

const Json& Runtime::features() {
  if (!features_loaded_) {
    features_loaded_ = true;
    RunResult r = exec({"features"});
    if (r.code == 0) {
      try {
        features_ = Json::parse(r.out);
      } catch (const std::exception&) {
      }
    }
  }
  return features_;
}

bool Runtime::supports_namespace(const std::string& type) {
  const Json& f = features();
  if (!f.is_object() || !f.contains("linux")) return false;
  for (const auto& ns : f["linux"].value("namespaces", Json::array()))
    if (ns == type) return true;
  return false;
}

// ---------------------------------------------------------------------------------------
// Helpers

std::map<std::string, std::string> parse_kv(const std::string& out) {
  std::map<std::string, std::string> kv;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return kv;
}

std::map<std::string, std::map<std::string, std::string>> parse_sections(const std::string& out) {
  std::map<std::string, std::map<std::string, std::string>> sections;
  std::istringstream in(out);
  std::string line, current;
  while (std::getline(in, line)) {
    if (starts_with(line, "== ")) {
      current = line.substr(3);
      sections[current];
      continue;
    }
    auto eq = line.find('=');
    if (eq != std::string::npos) sections[current][line.substr(0, eq)] = line.substr(eq + 1);
  }
  return sections;
}

bool MountInfo::has_option(const std::string& o) const {
  for (const std::string* list : {&options, &super_options}) {
    std::istringstream in(*list);
    std::string item;
    while (std::getline(in, item, ','))
      if (item == o) return true;
  }
  return false;
}

std::vector<MountInfo> parse_mountinfo(const std::string& text) {
  std::vector<MountInfo> mounts;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount_point options [optional...] - fstype source super
    std::istringstream ls(line);
    std::string id, parent, dev, field;
    MountInfo m;
    if (!(ls >> id >> parent >> dev >> m.root >> m.mount_point >> m.options)) continue;
    while (ls >> field && field != "-") {
    }
    ls >> m.fstype >> m.source >> m.super_options;
    m.root = unescape_mountinfo(m.root);
    m.mount_point = unescape_mountinfo(m.mount_point);
    mounts.push_back(m);
  }
  return mounts;
}

const MountInfo* find_mount(const std::vector<MountInfo>& mounts, const std::string& mount_point) {
  const MountInfo* found = nullptr;
  for (const auto& m : mounts)
    if (m.mount_point == mount_point) found = &m;
  return found;
}

unsigned long long host_ns_inode(const std::string& type) {
  struct stat st;
  return ::stat(("/proc/self/ns/" + type).c_str(), &st) == 0 ? st.st_ino : 0;
}

unsigned long long pid_ns_inode(pid_t pid, const std::string& type) {
  struct stat st;
  std::string p = "/proc/" + std::to_string(pid) + "/ns/" + type;
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

std::vector<std::string> cgroup_dirs_named(const std::string& id) {
  std::vector<std::string> found;
  DIR* d = ::opendir("/sys/fs/cgroup");
  if (!d) return found;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    find_cgroup_dirs(std::string("/sys/fs/cgroup/") + e->d_name, id, 1, found);
  }
  ::closedir(d);
  return found;
}

std::string leftovers(const Runtime& rt, const Bundle& b, const std::string& id) {
  std::ostringstream os;
  if (path_exists(rt.root() + "/" + id)) os << "state dir " << rt.root() << "/" << id << "\n";
  for (const auto& f : cgroup_dirs_named(id)) os << "cgroup " << f << "\n";
  for (const auto& m : mounts_under(b.path())) os << "mount " << m << "\n";
  for (const auto& p : processes_in(b.path())) os << p << "\n";
  return os.str();
}

ConsoleSocket::ConsoleSocket() : dir_("zrun-it-console") {
  path_ = dir_ / "console.sock";
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd_, 4) != 0)
    ADD_FAILURE() << "console socket " << path_ << ": " << std::strerror(errno);
}

ConsoleSocket::~ConsoleSocket() {
  if (fd_ >= 0) ::close(fd_);
}

int ConsoleSocket::receive_fd(std::chrono::milliseconds timeout) {
  struct pollfd p = {fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return -1;
  int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (conn < 0) return -1;
  char data[4096];
  struct iovec iov = {data, sizeof data};
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  int got = -1;
  p = {conn, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1 &&
      ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) >= 0) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        std::memcpy(&got, CMSG_DATA(c), sizeof(int));
    }
  }
  ::close(conn);
  return got;
}

std::string read_until(int fd, const std::string& needle, std::chrono::milliseconds timeout) {
  std::string got;
  auto end = std::chrono::steady_clock::now() + timeout;
  while (got.find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    struct pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

void ContainerTest::TearDown() {
  std::string damage = host_dev_damage();
  EXPECT_EQ(damage, "") << "the runtime changed the host's /dev (repaired)";
}

std::string host_dev_damage() {
  std::ostringstream os;
  for (const char* p : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                        "/dev/tty", "/dev/ptmx"}) {
    struct stat st;
    if (::stat(p, &st) != 0) continue;
    if (st.st_uid != 0 || st.st_gid != 0) {
      os << p << " owned by " << st.st_uid << ":" << st.st_gid << "\n";
      (void)!::chown(p, 0, 0);
    }
    if ((st.st_mode & 07777) != 0666) {
      os << p << " mode " << std::oct << (st.st_mode & 07777) << std::dec << "\n";
      ::chmod(p, 0666);
    }
  }
  return os.str();
}

void ContainerTest::expect_error(const RunResult& r, const std::string& contains) {
  EXPECT_NE(r.code, 0) << r;
  EXPECT_FALSE(r.err.empty()) << r;
  if (runtime_is_zrun()) {
    EXPECT_TRUE(starts_with(r.err, "zrun: ")) << r;
    if (!contains.empty()) {
      EXPECT_NE(r.err.find(contains), std::string::npos) << r;
    }
  }
}

std::map<std::string, std::string> ContainerTest::run_kv(Bundle& b, int want_code) {
  RunResult r = rt.run(b, rt.new_id("run"));
  EXPECT_EQ(r.code, want_code) << r;
  return parse_kv(r.out);
}

}  // namespace zrun::test
