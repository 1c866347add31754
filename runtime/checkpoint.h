// `checkpoint` and `restore` of a container: the runtime side around checkpoint/ (state,
// locking, cgroup, create with placeholders). See docs/checkpoint.md.
#pragma once

#include <string>

#include "base/result.h"
#include "runtime/container.h"
#include "runtime/state_store.h"

namespace zrun::rt {

// A valid --manage-cgroups-mode value ("" is the default, soft)?
base::Result<void> check_cgroups_mode(const std::string& mode);

struct CheckpointOptions {
  std::string id;
  std::string image_path;
  bool leave_running = false;
  std::string work_path;  // stats-dump goes here ("" = the image directory)
  // --manage-cgroups-mode: "" or soft, full, strict, ignore (docs/checkpoint.md "Cgroups").
  std::string cgroups_mode;
  bool pre_dump = false;    // dump memory, keep running, arm dirty tracking
  std::string parent_path;  // a pre-dump: relative to image_path, or absolute
};

// Dump the container to the image; without leave_running it is then killed and deleted.
// A refusal (something not supported) leaves the container running untouched.
base::Result<void> checkpoint_container(const StateStore& store, const CheckpointOptions& opts);

struct RestoreOptions {
  std::string id;
  std::string bundle = ".";
  std::string image_path;
  std::string pid_file;
  std::string work_path;  // stats-restore goes here ("" = the image directory)
  // process.terminal: where the new console's master goes (as for create).
  std::string console_socket;
  int console_fd = -1;
  // --manage-cgroups-mode: "" or soft, full, strict take the resources the container had
  // at checkpoint (the image's config); ignore takes the bundle's.
  std::string cgroups_mode;
};

// Create container `id` from the bundle with the image's processes, running. On error
// nothing is left behind.
base::Result<Created> restore_container(const StateStore& store, const RestoreOptions& opts);

}  // namespace zrun::rt
