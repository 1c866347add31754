// `checkpoint` and `restore` of a container: the runtime side around checkpoint/ (state,
// locking, cgroup, create with placeholders). See docs/checkpoint.md.
#pragma once

#include <string>

#include "base/result.h"
#include "runtime/container.h"
#include "runtime/state_store.h"

namespace zrun::rt {

struct CheckpointOptions {
  std::string id;
  std::string image_path;
  bool leave_running = false;
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
};

// Create container `id` from the bundle with the image's processes, running. On error
// nothing is left behind.
base::Result<Created> restore_container(const StateStore& store, const RestoreOptions& opts);

}  // namespace zrun::rt
