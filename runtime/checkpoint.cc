#include "runtime/checkpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/log.h"
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

// CRIU's statistics files, which engines read for `--print-stats` (podman via go-criu):
// IMG_SERVICE_MAGIC, STATS_MAGIC, a u32 size, then one StatsEntry protobuf (criu
// images/stats.proto) holding a DumpStatsEntry (field 1) or a RestoreStatsEntry (field 2).
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::string pb_fields(const std::vector<std::pair<int, uint64_t>>& fields) {
  std::string out;
  for (auto& [num, v] : fields) {
    put_varint(out, static_cast<uint64_t>(num) << 3);  // wire type 0: varint
    put_varint(out, v);
  }
  return out;
}

Result<void> write_stats(const std::string& path, int field, const std::string& entry) {
  std::string msg;
  put_varint(msg, static_cast<uint64_t>(field) << 3 | 2);  // wire type 2: embedded message
  put_varint(msg, entry.size());
  msg += entry;
  std::string out;
  for (uint32_t w : {0x55105940u, 0x57093306u, static_cast<uint32_t>(msg.size())})
    out.append(reinterpret_cast<const char*>(&w), 4);
  out += msg;
  return base::write_file_atomic(path, out, 0600);
}

// Pages in the image's page files.
uint64_t image_pages(const std::string& dir) {
  uint64_t n = 0;
  if (auto names = base::list_dir(dir))
    for (auto& e : *names) {
      struct stat st {};
      if (base::starts_with(e, "pages-") && ::stat((dir + "/" + e).c_str(), &st) == 0)
        n += static_cast<uint64_t>(st.st_size) / 4096;
    }
  return n;
}

uint64_t micros_since(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
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
  d.pre_dump = opts.pre_dump;
  d.parent_path = opts.parent_path;
  d.config = ZRUN_TRY_CTX(base::read_file(ct.dir() + "/config.json"), what);
  d.cgroup = ct.record().cgroup;
  if (opts.cgroups_mode == "ignore") d.cgroup_mode = "ignore";
  auto t0 = std::chrono::steady_clock::now();
  ZRUN_TRY_CTX(ckpt::dump(*cg, ct.record().pid, d), what);
  // The tasks are stopped for the whole dump, which is not split into CRIU's phases:
  // frozen_time is all of it, freezing/memdump/memwrite are not measured (0).
  uint64_t pages = image_pages(d.image_path);
  std::string work = opts.work_path.empty() ? d.image_path : opts.work_path;
  if (auto w = write_stats(work + "/stats-dump", 1,
                           pb_fields({{1, 0},
                                      {2, micros_since(t0)},
                                      {3, 0},
                                      {4, 0},
                                      {5, pages},
                                      {6, 0},
                                      {7, pages},
                                      {9, 0}}));
      !w)
    base::log_warn(what + ": stats-dump: " + w.error().text());
  // Engines written for CRIU take inventory.img as the sign of a complete image (podman
  // stats it before a restore): name our manifest so too.
  std::string inv = d.image_path + "/inventory.img";
  if (::symlink("manifest.json", inv.c_str()) < 0 && errno != EEXIST)
    return base::sys_error(what + ": symlink `" + inv + "`");
  if (!opts.leave_running && !opts.pre_dump) ZRUN_TRY_CTX(ct.remove(true), what);
  return base::ok();
}

Result<Created> restore_container(const StateStore& store, const RestoreOptions& opts) {
  std::string what = "restore `" + opts.id + "`";
  auto t0 = std::chrono::steady_clock::now();
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  auto dir = ZRUN_TRY_CTX(absolute_path(opts.image_path), what);
  // Everything in the image is checked before anything is created.
  auto img = ZRUN_TRY_CTX(ckpt::load_image(dir), what);
  ZRUN_TRY_CTX(check_cgroups_mode(opts.cgroups_mode), what);
  if (img.manifest.pre_dump)
    return base::make_error(what + ": image `" + dir +
                            "` is a pre-dump (its memory was copied while the container ran): " +
                            "restore the dump made with --parent-path");
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
  auto t1 = std::chrono::steady_clock::now();
  auto created = ZRUN_TRY_CTX(create_container(store, co), what);
  auto t2 = std::chrono::steady_clock::now();
  uint64_t forking = micros_since(t1);
  Result<void> r = base::ok();
  if (co.resources)
    r = save_restored_resources(store.dir(opts.id) + "/config.json", img.manifest.config);
  if (r) r = ckpt::restore_tasks(created.pid, img);
  char timing[128];
  std::snprintf(timing, sizeof(timing),
                "restore timing: image %.1f ms, create %.1f ms, tasks %.1f ms", ms(t0, t1),
                ms(t1, t2), ms(t2, std::chrono::steady_clock::now()));
  base::log_debug(timing);
  if (r) {
    // No exec.fifo: the container is running (Container::status).
    if (::unlink((store.dir(opts.id) + "/exec.fifo").c_str()) < 0)
      r = base::sys_error("remove exec.fifo");
  }
  if (!r) {
    if (auto ct = Container::open(store, opts.id, true); ct) (void)ct->remove(true);
    return base::context(std::move(r).error(), what);
  }
  // forking_time: the container with its placeholder tree; restore_time: rebuilding it.
  // The container runs already: statistics that cannot be written are only a warning.
  std::string work = opts.work_path.empty() ? dir : opts.work_path;
  if (auto w = write_stats(
          work + "/stats-restore", 2,
          pb_fields({{1, 0}, {2, 0}, {3, forking}, {4, micros_since(t2)}, {5, image_pages(dir)}}));
      !w)
    base::log_warn(what + ": stats-restore: " + w.error().text());
  return created;
}

}  // namespace zrun::rt
