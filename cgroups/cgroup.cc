// The container cgroup: one implementation over the three layouts. The per-version
// resource writes live in resources_v1.cc / resources_v2.cc; this file owns directory
// lifetime, membership, freezing and killing.
#include "cgroups/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>

#include "base/log.h"
#include "base/scope_exit.h"
#include "base/sys.h"
#include "cgroups/cgfs.h"
#include "cgroups/device_filter.h"
#include "cgroups/resources.h"

namespace zrun::cg {

using base::Result;

namespace {

using Clock = std::chrono::steady_clock;

class CgroupImpl final : public Cgroup {
 public:
  CgroupImpl(Mode mode, std::string path) : mode_(mode), path_(std::move(path)) {}

  std::string to_json() const override;
  Mode mode() const override { return mode_; }
  const std::string& path() const override { return path_; }
  int clone_into_fd() const override { return mode_ == Mode::kUnified ? v2fd_.get() : -1; }
  Result<void> add_pid(pid_t pid) override;
  Result<std::vector<pid_t>> pids() const override;
  Result<void> freeze() override;
  Result<void> thaw() override;
  Result<bool> frozen() const override;
  Result<void> kill_all(int sig) override;
  Result<void> update(const spec::Resources& r,
                      const std::vector<spec::Device>* devices = nullptr) override;
  Result<void> destroy() override;
  std::string unified_dir() const override { return unified_dir_; }
  std::string v1_dir(const std::string& ctrl) const override {
    auto it = v1_dirs_.find(ctrl);
    return it == v1_dirs_.end() ? "" : it->second;
  }

  // Used by create()/load().
  Result<void> make_dirs(const Layout& l, const CgroupConfig& cfg);
  Result<void> apply(const spec::Resources& r, bool update);
  Result<void> apply_device_filter(const std::vector<spec::DeviceRule>& rules);
  void open_v2_fd();
  void from_json(const nlohmann::json& j);

 private:
  // Every distinct leaf directory (co-mounted v1 controllers share one).
  std::vector<std::string> leaves() const;
  Result<void> mkdir_in(const std::string& mount, bool cpuset, bool enable_ctrls,
                        const CgroupConfig& cfg);
  Result<void> set_v2_freeze(bool on);
  Result<void> set_v1_freeze(bool on);
  Result<void> remove_dir(const std::string& dir, bool leaf);

  Mode mode_;
  std::string path_;
  std::string unified_dir_;                     // unified or hybrid
  std::map<std::string, std::string> v1_dirs_;  // controller -> dir (hybrid, legacy)
  std::vector<std::string> created_;            // in creation order (parents first)
  bool v2_freezer_ = false;                     // cgroup.freeze usable
  base::UniqueFd v2fd_;
};

// cpuset.cpus/mems start empty in a new v1 cpuset cgroup and tasks cannot join (ENOSPC)
// until they are set: inherit the parent's.
Result<void> init_v1_cpuset(const std::string& dir) {
  std::string parent = base::dirname(dir);
  for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
    auto cur = read_cg(dir, f);
    if (cur && !cur->empty()) continue;
    auto pv = ZRUN_TRY(read_cg(parent, f));
    ZRUN_TRY(write_cg(dir, f, pv));
  }
  return base::ok();
}

// Enable in `dir`'s subtree_control every controller it has (crun does the same), so the
// child gets the interface files. A controller that cannot be enabled is only logged:
// a resource that needs it then fails naming its missing file.
void enable_v2_controllers(const std::string& dir) {
  auto avail = read_cg(dir, "cgroup.controllers");
  if (!avail || avail->empty()) return;
  auto enabled = read_cg(dir, "cgroup.subtree_control");
  std::set<std::string> have;
  if (enabled)
    for (auto& c : base::split(*enabled, ' ')) have.insert(c);
  std::string all;
  std::vector<std::string> want;
  for (auto& c : base::split(*avail, ' ')) {
    if (c.empty() || have.count(c)) continue;
    want.push_back(c);
    all += (all.empty() ? "+" : " +") + c;
  }
  if (want.empty() || write_cg(dir, "cgroup.subtree_control", all)) return;
  for (auto& c : want) {
    auto r = write_cg(dir, "cgroup.subtree_control", "+" + c);
    if (!r) base::log_debug("enable controller " + c + " in `" + dir + "`: " + r.error().text());
  }
}

// Not root in the initial user namespace (rootless): bpf(2) program loading is refused.
bool unprivileged() {
  if (::geteuid() != 0) return true;
  auto map = base::read_file("/proc/self/uid_map");
  if (!map) return false;
  auto f = base::split(std::string(base::trim(*map)), ' ');
  std::vector<std::string> nums;
  for (auto& x : f)
    if (!x.empty()) nums.push_back(x);
  return !(nums.size() == 3 && nums[0] == "0" && nums[1] == "0" && nums[2] == "4294967295");
}

}  // namespace

std::vector<std::string> CgroupImpl::leaves() const {
  std::vector<std::string> out;
  if (!unified_dir_.empty()) out.push_back(unified_dir_);
  for (auto& [ctrl, dir] : v1_dirs_)
    if (std::find(out.begin(), out.end(), dir) == out.end()) out.push_back(dir);
  return out;
}

Result<void> CgroupImpl::mkdir_in(const std::string& mount, bool cpuset, bool enable_ctrls,
                                  const CgroupConfig& cfg) {
  std::string leaf = base::join_path(mount, path_);
  if (base::path_exists(leaf)) return base::sys_error("create cgroup `" + leaf + "`", EEXIST);
  // A shared parent (zrun's default /zrun) can vanish under us: the last container of
  // another zrun removes it when empty, maybe right after we found or made it. Then the
  // walk starts again (a few times) instead of failing the create.
  bool raced = false;
  auto walk = [&]() -> Result<void> {
    std::string cur = mount;
    for (auto& part : base::split(path_, '/')) {
      if (part.empty()) continue;
      if (enable_ctrls) enable_v2_controllers(cur);
      cur = base::join_path(cur, part);
      if (::mkdir(cur.c_str(), 0755) < 0) {
        if (errno == EEXIST && cur != leaf) continue;  // a parent someone else made
        raced = errno == ENOENT;
        return base::sys_error("mkdir `" + cur + "`");
      }
      if (std::find(created_.begin(), created_.end(), cur) == created_.end())
        created_.push_back(cur);
      if (cfg.on_mkdir) cfg.on_mkdir(cur);
      if (!cpuset) continue;
      if (auto r = init_v1_cpuset(cur); !r) {
        raced = !base::path_exists(cur);
        return base::context(std::move(r).error(), "init cpuset `" + cur + "`");
      }
    }
    return base::ok();
  };
  for (int attempt = 0;; attempt++) {
    raced = false;
    auto r = walk();
    if (r || !raced || attempt == 4) return r;
  }
}

Result<void> CgroupImpl::make_dirs(const Layout& l, const CgroupConfig& cfg) {
  if (mode_ != Mode::kLegacy) {
    unified_dir_ = base::join_path(l.unified, path_);
    // Hybrid: the unified hierarchy has no controllers for children and its root is the
    // machine's; only unified mode enables controllers.
    ZRUN_TRY(mkdir_in(l.unified, false, mode_ == Mode::kUnified, cfg));
  }
  if (mode_ == Mode::kUnified) return base::ok();
  std::map<std::string, std::string> mount_dirs;  // mount -> leaf, for co-mounts
  for (auto& [ctrl, mount] : l.v1) {
    auto it = mount_dirs.find(mount);
    if (it == mount_dirs.end()) {
      bool cpuset = false;
      for (auto& [c2, m2] : l.v1) cpuset |= (m2 == mount && c2 == "cpuset");
      ZRUN_TRY(mkdir_in(mount, cpuset, false, cfg));
      it = mount_dirs.emplace(mount, base::join_path(mount, path_)).first;
    }
    v1_dirs_[ctrl] = it->second;
  }
  return base::ok();
}

Result<void> CgroupImpl::apply(const spec::Resources& r, bool update) {
  // Rules the program cannot express fail before anything is written (v1 included).
  if (!r.devices.empty()) ZRUN_TRY_CTX(device_filter_program(r.devices), "linux.resources.devices");
  if (mode_ == Mode::kUnified)
    ZRUN_TRY(apply_v2(unified_dir_, r, update));
  else
    ZRUN_TRY(apply_v1(v1_dirs_, mode_ == Mode::kHybrid ? unified_dir_ : "", r, update));
  if (!r.devices.empty() && !unified_dir_.empty()) ZRUN_TRY(apply_device_filter(r.devices));
  return base::ok();
}

// The device rules as a BPF_PROG_TYPE_CGROUP_DEVICE program on the unified hierarchy.
// Unified mode: the only enforcement. Hybrid mode too: the kernel runs the program of the
// task's cgroup2 cgroup first and then the v1 devices controller (security/device_cgroup.c
// devcgroup_check_permission(), since Linux 4.15; both must allow), so the policy holds on
// both hierarchies, and also where no v1 devices controller is mounted. Where the v1
// controller enforces the same rules, a program that cannot be loaded only costs the
// second layer: a warning.
Result<void> CgroupImpl::apply_device_filter(const std::vector<spec::DeviceRule>& rules) {
  const std::string what = base::join_path(unified_dir_, "bpf:cgroup_device");
  auto prog = ZRUN_TRY(device_filter_program(rules));  // checked in apply()
  // A fake tree (unit tests) has no cgroup to attach to: trace what would be attached.
  if (!on_cgroupfs(unified_dir_)) {
    trace_action(what, std::to_string(prog.size()) + " insns");
    return base::ok();
  }
  auto r = attach_device_filter(unified_dir_, rules);
  const char* why = nullptr;
  if (!r && mode_ == Mode::kHybrid && !v1_dir("devices").empty())
    why = "the v1 devices controller still enforces the rules";
  else if (!r && device_rules_deny_nothing(rules))
    why = "the rules deny nothing";  // runc's canSkipEBPFError
  else if (!r && r.error().err == EPERM && unprivileged())
    why =
        "not enforced for a rootless container: like runc, zrun relies on it having no "
        "device access beyond its user's";
  if (why) {
    static bool warned = false;
    if (!warned) base::log_warn(r.error().text() + " (" + why + ")");
    warned = true;
    return base::ok();
  }
  if (!r) return r;
  trace_action(what, std::to_string(prog.size()) + " insns");
  return base::ok();
}

void CgroupImpl::open_v2_fd() {
  v2_freezer_ = !unified_dir_.empty() && cg_file_exists(unified_dir_, "cgroup.freeze");
  if (mode_ != Mode::kUnified) return;
  auto fd = base::open_file(unified_dir_, O_PATH | O_DIRECTORY);
  if (fd) v2fd_ = std::move(*fd);
}

Result<std::unique_ptr<Cgroup>> Cgroup::create(const CgroupConfig& cfg) {
  std::string ctx = "create cgroup `" + cfg.path + "`";
  if (cfg.path.empty() || cfg.path.front() != '/' || base::clean_path(cfg.path) != cfg.path ||
      cfg.path == "/")
    return base::make_error(ctx + ": path must be absolute, clean and not the root");
  Layout l = cfg.layout ? *cfg.layout : ZRUN_TRY_CTX(detect_layout(cfg.fs_root), ctx);
  auto cg = std::make_unique<CgroupImpl>(l.mode, cfg.path);
  base::ScopeExit rollback([&] {
    auto r = cg->destroy();
    if (!r) base::log_warn(ctx + ": roll back: " + r.error().text());
  });
  ZRUN_TRY_CTX(cg->make_dirs(l, cfg), ctx);
  cg->open_v2_fd();
  if (cfg.resources) {
    spec::Resources r = *cfg.resources;
    r.devices = device_rules_with_defaults(r.devices, cfg.devices);
    ZRUN_TRY_CTX(cg->apply(r, false), ctx + ": apply resources");
  }
  rollback.dismiss();
  return std::unique_ptr<Cgroup>(std::move(cg));
}

// ---- membership ----

Result<void> CgroupImpl::add_pid(pid_t pid) {
  std::string p = std::to_string(pid);
  for (auto& dir : leaves()) {
    // EINVAL: the task may still be in TASK_NEW right after clone (runc retries too).
    for (int i = 0;; ++i) {
      auto r = write_cg(dir, "cgroup.procs", p);
      if (r) break;
      if (r.error().err != EINVAL || i == 4)
        return base::context(std::move(r).error(), "add pid " + p + " to `" + dir + "`");
      base::sleep_ms(30);
    }
  }
  return base::ok();
}

Result<std::vector<pid_t>> CgroupImpl::pids() const {
  std::string dir = unified_dir_;
  for (const char* c : {"pids", "freezer", "memory", "cpu"})
    if (dir.empty()) dir = v1_dir(c);
  if (dir.empty() && !v1_dirs_.empty()) dir = v1_dirs_.begin()->second;
  if (dir.empty()) return base::make_error("list pids of cgroup `" + path_ + "`: no hierarchy");
  return ZRUN_TRY_CTX(read_procs_recursive(dir), "list pids of cgroup `" + path_ + "`");
}

// ---- freezer ----

namespace {

// Poll `check` until it returns true or `timeout` passes (1 ms, then growing to 10 ms).
template <class F>
Result<bool> poll_until(F check, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  unsigned delay = 1;
  for (;;) {
    bool done = ZRUN_TRY(check());
    if (done) return true;
    if (Clock::now() >= deadline) return false;
    base::sleep_ms(delay);
    delay = std::min(delay * 2, 10u);
  }
}

}  // namespace

Result<void> CgroupImpl::set_v2_freeze(bool on) {
  std::string ctx = std::string(on ? "freeze" : "thaw") + " cgroup `" + unified_dir_ + "`";
  ZRUN_TRY_CTX(write_cg(unified_dir_, "cgroup.freeze", on ? "1" : "0"), ctx);
  std::string want = on ? "1" : "0";
  auto done = ZRUN_TRY_CTX(poll_until(
                               [&]() -> Result<bool> {
                                 auto ev = ZRUN_TRY(read_cg(unified_dir_, "cgroup.events"));
                                 return keyed_value(ev, "frozen") == want;
                               },
                               std::chrono::milliseconds(5000)),
                           ctx);
  if (done) return base::ok();
  if (on) (void)write_cg(unified_dir_, "cgroup.freeze", "0");
  return base::make_error(ctx + ": timed out waiting for `cgroup.events` frozen " + want);
}

Result<void> CgroupImpl::set_v1_freeze(bool on) {
  std::string dir = v1_dir("freezer");
  if (dir.empty()) return base::make_error("freeze cgroup `" + path_ + "`: no freezer");
  std::string ctx = std::string(on ? "freeze" : "thaw") + " cgroup `" + dir + "`";
  const char* want = on ? "FROZEN" : "THAWED";
  int round = 0;
  auto done = ZRUN_TRY_CTX(poll_until(
                               [&]() -> Result<bool> {
                                 // Tasks forking during the freeze can leave it FREEZING:
                                 // re-request periodically (runc does the same).
                                 if (round++ % 10 == 0)
                                   ZRUN_TRY(write_cg(dir, "freezer.state", want));
                                 auto st = ZRUN_TRY(read_cg(dir, "freezer.state"));
                                 return st == want;
                               },
                               std::chrono::milliseconds(5000)),
                           ctx);
  if (done) return base::ok();
  if (on) (void)write_cg(dir, "freezer.state", "THAWED");
  return base::make_error(ctx + ": timed out waiting for `freezer.state` " + want);
}

Result<void> CgroupImpl::freeze() {
  return v2_freezer_ ? set_v2_freeze(true) : set_v1_freeze(true);
}

Result<void> CgroupImpl::thaw() {
  return v2_freezer_ ? set_v2_freeze(false) : set_v1_freeze(false);
}

Result<bool> CgroupImpl::frozen() const {
  if (v2_freezer_) {
    auto ev = ZRUN_TRY(read_cg(unified_dir_, "cgroup.events"));
    return keyed_value(ev, "frozen") == std::string("1");
  }
  std::string dir = v1_dir("freezer");
  if (dir.empty()) return false;
  auto st = ZRUN_TRY(read_cg(dir, "freezer.state"));
  return st == "FROZEN";
}

// ---- kill ----

namespace {

bool is_zombie_or_gone(pid_t pid) {
  auto stat = base::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  auto rp = stat->rfind(')');
  return rp == std::string::npos || rp + 2 >= stat->size() || (*stat)[rp + 2] == 'Z';
}

Result<bool> all_dead(const Cgroup& cg) {
  auto pids = ZRUN_TRY(cg.pids());
  for (pid_t p : pids)
    if (!is_zombie_or_gone(p)) return false;
  return true;
}

Result<void> signal_pids(const std::vector<pid_t>& pids, int sig) {
  for (pid_t p : pids)
    if (::kill(p, sig) < 0 && errno != ESRCH) return base::sys_error("kill " + std::to_string(p));
  return base::ok();
}

}  // namespace

Result<void> CgroupImpl::kill_all(int sig) {
  std::string ctx = "kill cgroup `" + path_ + "`";
  if (sig != SIGKILL) {
    auto pids = ZRUN_TRY_CTX(this->pids(), ctx);
    ZRUN_TRY_CTX(signal_pids(pids, sig), ctx);
    return base::ok();
  }
  if (!unified_dir_.empty() && cg_file_exists(unified_dir_, "cgroup.kill")) {
    ZRUN_TRY_CTX(write_cg(unified_dir_, "cgroup.kill", "1"), ctx);
  } else {
    // Without cgroup.kill a task may fork between listing and killing: freeze so the
    // set is stable, kill, thaw (v1 frozen tasks die only once thawed); repeat.
    for (int round = 0; round < 10; ++round) {
      bool froze = static_cast<bool>(freeze());
      auto pids = ZRUN_TRY_CTX(this->pids(), ctx);
      auto r = signal_pids(pids, SIGKILL);
      if (froze) (void)thaw();
      if (!r) return base::context(std::move(r).error(), ctx);
      if (pids.empty() || ZRUN_TRY_CTX(all_dead(*this), ctx)) break;
      base::sleep_ms(10);
    }
  }
  auto done = ZRUN_TRY_CTX(
      poll_until([&] { return all_dead(*this); }, std::chrono::milliseconds(1000)), ctx);
  if (!done) return base::make_error(ctx + ": processes still alive after SIGKILL");
  return base::ok();
}

Result<void> CgroupImpl::update(const spec::Resources& r,
                                const std::vector<spec::Device>* devices) {
  std::string ctx = "update cgroup `" + path_ + "`";
  if (r.devices.empty()) {
    ZRUN_TRY_CTX(apply(r, true), ctx);
    return base::ok();
  }
  // New device rules replace the old ones whole, with the defaults appended as on create.
  spec::Resources full = r;
  full.devices = device_rules_with_defaults(r.devices, devices);
  ZRUN_TRY_CTX(apply(full, true), ctx);
  return base::ok();
}

// ---- destroy ----

namespace {

// A fake tree (unit tests) holds regular files the kernel would not: drop them so rmdir
// can work. Never reached on cgroupfs.
void clear_fake_files(const std::string& dir) {
  if (on_cgroupfs(dir)) return;
  auto names = base::list_dir(dir);
  if (!names) return;
  for (auto& n : *names) {
    std::string p = base::join_path(dir, n);
    if (!base::is_dir(p)) ::unlink(p.c_str());
  }
}

// Remove the cgroups below a container's leaf (made inside the container, e.g. through
// its cgroup namespace): all of them are the container's.
Result<void> remove_children(const std::string& dir, int depth) {
  if (depth > 64) return base::make_error("remove `" + dir + "`: cgroup tree too deep");
  auto names = base::list_subdirs(dir);
  if (!names) return names.error().err == ENOENT ? base::ok() : Result<void>(names.error());
  for (auto& n : *names) {
    std::string sub = base::join_path(dir, n);
    ZRUN_TRY(remove_children(sub, depth + 1));
    clear_fake_files(sub);
    if (::rmdir(sub.c_str()) < 0 && errno != ENOENT) return base::sys_error("rmdir `" + sub + "`");
  }
  return base::ok();
}

}  // namespace

Result<void> CgroupImpl::remove_dir(const std::string& dir, bool leaf) {
  if (!leaf) {
    // A shared parent such as /zrun: other containers may live there now; leave it.
    clear_fake_files(dir);
    if (::rmdir(dir.c_str()) < 0 && errno != ENOENT) {
      if (errno == EBUSY || errno == ENOTEMPTY) {
        base::log_debug("keep cgroup `" + dir + "`: still in use");
        return base::ok();
      }
      return base::sys_error("rmdir `" + dir + "`");
    }
    return base::ok();
  }
  // EBUSY while exiting tasks are still being released by the kernel: retry ~1 s.
  auto deadline = Clock::now() + std::chrono::milliseconds(1000);
  for (unsigned delay = 1;; delay = std::min(delay * 2, 50u)) {
    // Usually the leaf is empty: one rmdir. Sub-cgroups (EBUSY on cgroupfs) or a fake
    // tree's files (ENOTEMPTY) are cleared only when it fails.
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return base::ok();
    int e = errno;
    if (e == EBUSY || e == ENOTEMPTY) {
      ZRUN_TRY(remove_children(dir, 0));
      clear_fake_files(dir);
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return base::ok();
      e = errno;
    }
    if (e != EBUSY || Clock::now() >= deadline) return base::sys_error("rmdir `" + dir + "`", e);
    base::sleep_ms(delay);
  }
}

Result<void> CgroupImpl::destroy() {
  v2fd_.reset();
  std::set<std::string> leaf_set;
  for (auto& l : leaves()) leaf_set.insert(l);
  // Deepest first; parents were recorded before their children.
  while (!created_.empty()) {
    std::string dir = created_.back();
    ZRUN_TRY_CTX(remove_dir(dir, leaf_set.count(dir) > 0), "destroy cgroup `" + path_ + "`");
    created_.pop_back();
  }
  // zrun's default parent (/zrun, for paths /zrun/<id>) is created by whichever container
  // came first and outlives it while others use it; the last container out removes it.
  // Only that one directory name, only when empty (rmdir fails otherwise).
  if (base::starts_with(path_, "/zrun/") && path_.find('/', 6) == std::string::npos)
    for (auto& l : leaf_set) ::rmdir(base::dirname(l).c_str());
  return base::ok();
}

// ---- state.json ----

std::string CgroupImpl::to_json() const {
  nlohmann::json j;
  j["mode"] = mode_name(mode_);
  j["path"] = path_;
  j["unified"] = unified_dir_;
  j["v1"] = v1_dirs_;
  j["created"] = created_;
  return j.dump();
}

Result<std::unique_ptr<Cgroup>> Cgroup::load(const std::string& saved_json) {
  try {
    auto j = nlohmann::json::parse(saved_json);
    auto mode = ZRUN_TRY(mode_from_name(j.at("mode").get<std::string>()));
    auto cg = std::make_unique<CgroupImpl>(mode, j.at("path").get<std::string>());
    cg->from_json(j);
    cg->open_v2_fd();
    return std::unique_ptr<Cgroup>(std::move(cg));
  } catch (const nlohmann::json::exception& e) {
    return base::make_error(std::string("load cgroup state: ") + e.what());
  }
}

void CgroupImpl::from_json(const nlohmann::json& j) {
  unified_dir_ = j.value("unified", std::string());
  v1_dirs_ = j.value("v1", std::map<std::string, std::string>());
  created_ = j.value("created", std::vector<std::string>());
}

}  // namespace zrun::cg
