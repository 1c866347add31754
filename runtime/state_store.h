// The on-disk state of containers: <root>/<id>/{state.json, config.json, exec.fifo}.
// state.json is written atomically (temp + fsync + rename + fsync dir). Mutating commands
// hold flock(LOCK_EX) on the container directory; readers hold LOCK_SH.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace zrun::rt {

// What zrun persists about a container (not the OCI state document; see Container).
struct ContainerRecord {
  std::string id;
  std::string bundle;
  std::string oci_version;
  std::string rootfs;
  std::string created;  // RFC 3339
  uint32_t owner_uid = 0;
  pid_t pid = 0;
  uint64_t pid_start_time = 0;  // /proc/PID/stat starttime, guards against PID reuse
  std::map<std::string, std::string> annotations;
  std::string cgroup;  // cg::Cgroup::to_json(), empty when no cgroup
  // Whether the saved config has poststart/poststop hooks: start and delete parse the
  // saved config.json only then (they are on the hot path of `run`).
  bool poststart_hooks = false;
  bool poststop_hooks = false;
};

// Valid container ids: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 1024 bytes, never "." / "..".
base::Result<void> validate_id(const std::string& id);

class StateStore {
 public:
  explicit StateStore(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }
  std::string dir(const std::string& id) const { return root_ + "/" + id; }

  // Make a new container directory (error "container `id` already exists") and lock it
  // exclusively. The returned fd holds the lock.
  base::Result<base::UniqueFd> create_dir(const std::string& id) const;
  // Lock an existing container directory (error "container `id` does not exist").
  base::Result<base::UniqueFd> lock(const std::string& id, bool exclusive) const;
  base::Result<ContainerRecord> read(const std::string& id) const;
  base::Result<void> write(const ContainerRecord& rec) const;
  base::Result<std::vector<std::string>> list_ids() const;
  base::Result<void> remove(const std::string& id) const;

 private:
  std::string root_;
};

std::string rfc3339_now();

}  // namespace zrun::rt
