#include "runtime/checkpoint.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "base/log.h"
#include "base/sys.h"
#include "checkpoint/checkpoint.h"

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

}  // namespace

Result<void> checkpoint_container(const StateStore& store, const CheckpointOptions& opts) {
  std::string what = "checkpoint `" + opts.id + "`";
  auto ct = ZRUN_TRY_CTX(Container::open(store, opts.id, true), what);
  Status st = ct.status();
  if (st != Status::kRunning)
    return base::make_error(what + ": container is " + status_name(st) + ", not running");
  auto* cg = ZRUN_TRY_CTX(ct.cgroup(), what);
  if (!cg) return base::make_error(what + ": the container has no cgroup to freeze");
  ckpt::DumpOptions d;
  d.id = opts.id;
  d.image_path = ZRUN_TRY_CTX(absolute_path(opts.image_path), what);
  d.leave_running = opts.leave_running;
  d.pre_dump = opts.pre_dump;
  d.parent_path = opts.parent_path;
  d.config = ZRUN_TRY_CTX(base::read_file(ct.dir() + "/config.json"), what);
  d.cgroup = ct.record().cgroup;
  ZRUN_TRY_CTX(ckpt::dump(*cg, ct.record().pid, d), what);
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
  if (img.manifest.pre_dump)
    return base::make_error(what + ": image `" + dir +
                            "` is a pre-dump (its memory was copied while the container ran): " +
                            "restore the dump made with --parent-path");
  auto plan = ckpt::placeholder_plan(img);
  CreateOptions co;
  co.id = opts.id;
  co.bundle = opts.bundle;
  co.pid_file = opts.pid_file;
  co.restore = &plan;
  auto t1 = std::chrono::steady_clock::now();
  auto created = ZRUN_TRY_CTX(create_container(store, co), what);
  auto t2 = std::chrono::steady_clock::now();
  auto r = ckpt::restore_tasks(created.pid, img);
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
  return created;
}

}  // namespace zrun::rt
