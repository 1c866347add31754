// Native checkpoint/restore of a container's process tree (docs/checkpoint.md).
//
// dump:    freeze the cgroup, seize + interrupt every task, thaw (tasks stay
//          ptrace-stopped), check everything is supported (refuse before changing
//          anything), save each task (registers, memory, mm, signals, fds, ...) by /proc,
//          ptrace and injected syscalls, write the image; then kill or detach.
// restore: the runtime creates the container with placeholder tasks (placeholder.h);
//          restore_tasks() rebuilds each one by syscall injection and lets them go.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/result.h"
#include "cgroups/cgroup.h"
#include "checkpoint/image.h"
#include "checkpoint/placeholder.h"

namespace zrun::ckpt {

struct DumpOptions {
  std::string id;          // for messages: "checkpoint `id`: ..."
  std::string image_path;  // created if missing; must be empty
  bool leave_running = false;
  // Incremental images (docs/checkpoint.md): a pre-dump keeps the container running and
  // arms dirty-page tracking; `parent_path` (relative to image_path, or absolute) names
  // the pre-dump whose unchanged pages this image refers to.
  bool pre_dump = false;
  std::string parent_path;
  std::string config;       // config.json text of the container
  std::string cgroup;       // the container's cgroup record
  std::string cgroup_mode;  // --manage-cgroups-mode, saved in the manifest ("" = soft)
};

// Dump the container whose init is `init_pid` (host pid) in cgroup `cg`. Without
// leave_running the tasks are SIGKILLed (via the cgroup) while still stopped, so they
// never run after the image was taken; the caller then deletes the container.
base::Result<void> dump(cg::Cgroup& cg, pid_t init_pid, const DumpOptions& opts);

// The placeholder tree the runtime must create for `img`.
PlaceholderPlan placeholder_plan(const Image& img);
// Rebuild the placeholder tree under `init_pid` (host pid of the container init) from
// `img`, then let every task run.
base::Result<void> restore_tasks(pid_t init_pid, const Image& img);

}  // namespace zrun::ckpt
