#include "runtime/checkpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/sys.h"
#include "checkpoint/checkpoint.h"
#include "spec/config.h"

namespace zrun::rt {

using base::Result;

namespace {

Result<std::string> absolute_path(const std::string& p) {
  if (p.empty()) return base::make_error("--image-path is required");
  if (p[0] == '/') return base::clean_path(p);
  char cwd[4096];
  if (!::getcwd(cwd, sizeof(cwd))) return base::sys_error("getcwd");
  return base::clean_path(base::join_path(cwd, p));
}

// A cgroup the container made below its own (in any hierarchy), or "".
std::string nested_cgroup(const cg::Cgroup& cg) {
  std::vector<std::string> dirs{cg.unified_dir()};
  for (const char* c :
       {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"})
    dirs.push_back(cg.v1_dir(c));
  for (auto& d : dirs) {
    if (d.empty()) continue;
    auto names = base::list_dir(d);
    if (!names) continue;
    for (auto& n : *names) {
      struct stat st {};
      if (::stat((d + "/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return d + "/" + n;
    }
  }
  return "";
}

// The resources the container had at checkpoint: linux.resources of the saved config
// (`zrun update` keeps it current); none saved means none.
Result<spec::Resources> saved_resources(const std::string& config) {
  try {
    auto j = nlohmann::json::parse(config);
    if (!j.contains("linux") || !j["linux"].contains("resources")) return spec::Resources{};
    return spec::parse_resources(j["linux"]["resources"].dump());
  } catch (const std::exception& e) {
    return base::make_error(std::string("image config: ") + e.what());
  }
}

// The restored container's saved config.json (what `update` merges into and the next
// checkpoint saves) gets the resources applied from the image, not the bundle's.
Result<void> save_restored_resources(const std::string& path, const std::string& image_config) {
  try {
    auto config = nlohmann::json::parse(ZRUN_TRY(base::read_file(path)));
    auto from = nlohmann::json::parse(image_config);
    auto& lx = config["linux"];
    if (!lx.is_object()) lx = nlohmann::json::object();
    if (from.contains("linux") && from["linux"].contains("resources"))
      lx["resources"] = from["linux"]["resources"];
    else
      lx.erase("resources");
    return base::write_file_atomic(path, config.dump(2) + "\n", 0600);
  } catch (const std::exception& e) {
    return base::make_error(std::string("save resources: ") + e.what());
  }
}

}  // namespace

Result<void> check_cgroups_mode(const std::string& mode) {
  if (mode.empty() || mode == "soft" || mode == "full" || mode == "strict" || mode == "ignore")
    return base::ok();
  return base::make_error("--manage-cgroups-mode: invalid mode `" + mode +
                          "` (soft, full, strict or ignore)");
}

Result<void> checkpoint_container(const StateStore& store, const CheckpointOptions& opts) {
  std::string what = "checkpoint `" + opts.id + "`";
  auto ct = ZRUN_TRY_CTX(Container::open(store, opts.id, true), what);
  Status st = ct.status();
  if (st != Status::kRunning)
    return base::make_error(what + ": container is " + status_name(st) + ", not running");
  ZRUN_TRY_CTX(check_cgroups_mode(opts.cgroups_mode), what);
  auto* cg = ZRUN_TRY_CTX(ct.cgroup(), what);
  if (!cg) return base::make_error(what + ": the container has no cgroup to freeze");
  // full and strict promise every cgroup back with its properties (CRIU): cgroups the
  // container made below its own are not saved, so those modes refuse them; soft
  // restores their tasks into the container's cgroup.
  if (opts.cgroups_mode == "full" || opts.cgroups_mode == "strict") {
    auto nested = nested_cgroup(*cg);
    if (!nested.empty())
      return base::make_error(what + ": --manage-cgroups-mode " + opts.cgroups_mode +
                              ": nested cgroup `" + nested + "` cannot be saved yet");
  }
  ckpt::DumpOptions d;
  d.id = opts.id;
  d.image_path = ZRUN_TRY_CTX(absolute_path(opts.image_path), what);
  d.leave_running = opts.leave_running;
  d.config = ZRUN_TRY_CTX(base::read_file(ct.dir() + "/config.json"), what);
  d.cgroup = ct.record().cgroup;
  if (opts.cgroups_mode == "ignore") d.cgroup_mode = "ignore";
  ZRUN_TRY_CTX(ckpt::dump(*cg, ct.record().pid, d), what);
  // Engines written for CRIU take inventory.img as the sign of a complete image (podman
  // stats it before a restore): name our manifest so too.
  std::string inv = d.image_path + "/inventory.img";
  if (::symlink("manifest.json", inv.c_str()) < 0 && errno != EEXIST)
    return base::sys_error(what + ": symlink `" + inv + "`");
  if (!opts.leave_running) ZRUN_TRY_CTX(ct.remove(true), what);
  return base::ok();
}

Result<Created> restore_container(const StateStore& store, const RestoreOptions& opts) {
  std::string what = "restore `" + opts.id + "`";
  auto dir = ZRUN_TRY_CTX(absolute_path(opts.image_path), what);
  // Everything in the image is checked before anything is created.
  auto img = ZRUN_TRY_CTX(ckpt::load_image(dir), what);
  ZRUN_TRY_CTX(check_cgroups_mode(opts.cgroups_mode), what);
  auto plan = ckpt::placeholder_plan(img);
  CreateOptions co;
  co.id = opts.id;
  co.bundle = opts.bundle;
  co.pid_file = opts.pid_file;
  co.console_socket = opts.console_socket;
  co.console_fd = opts.console_fd;
  co.restore = &plan;
  // The limits move with the pod (CRIU restores the saved properties of a cgroup it
  // creates, and a restored container always gets a new one): unless ignore was asked at
  // checkpoint or now, the cgroup gets the resources saved in the image.
  spec::Resources resources;
  if (opts.cgroups_mode != "ignore" && img.manifest.cgroup_mode != "ignore") {
    resources = ZRUN_TRY_CTX(saved_resources(img.manifest.config), what);
    co.resources = &resources;
  }
  auto created = ZRUN_TRY_CTX(create_container(store, co), what);
  Result<void> r = base::ok();
  if (co.resources)
    r = save_restored_resources(store.dir(opts.id) + "/config.json", img.manifest.config);
  if (r) r = ckpt::restore_tasks(created.pid, img);
  if (r) {
    // No exec.fifo: the container is running (Container::status).
    if (::unlink((store.dir(opts.id) + "/exec.fifo").c_str()) < 0)
      r = base::sys_error("remove exec.fifo");
  }
  if (!r) {
    if (auto ct = Container::open(store, opts.id, true); ct) (void)ct->remove(true);
    return base::context(std::move(r).error(), what);
  }
  return created;
}

}  // namespace zrun::rt
