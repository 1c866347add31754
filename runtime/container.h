// A container as the CLI sees it: its persisted record plus status derived from facts
// (process alive with the recorded start time, exec.fifo present, cgroup frozen), and the
// OCI lifecycle operations (runtime-spec runtime.md).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "cgroups/cgroup.h"
#include "checkpoint/placeholder.h"
#include "runtime/state_store.h"
#include "spec/config.h"

namespace zrun::rt {

enum class Status { kCreating, kCreated, kRunning, kPaused, kStopped };
const char* status_name(Status s);

struct CreateOptions {
  std::string id;
  std::string bundle = ".";
  std::string console_socket;
  int console_fd = -1;  // instead of console_socket: an already connected socket (run's tty)
  std::string pid_file;
  bool no_pivot = false;
  bool no_new_keyring = false;
  int preserve_fds = 0;
  bool systemd_cgroup = false;
  // Rootless mode (see rootless_mode()): cgroups only where delegated, else none.
  bool rootless = false;
  // restore: the init forks this tree of placeholder tasks instead of exec'ing the
  // process, and the container is ready when they wait for the restorer.
  const ckpt::PlaceholderPlan* restore = nullptr;
  // restore: the cgroup gets these instead of the bundle's linux.resources (the ones the
  // container had at checkpoint). Null: the bundle's.
  const spec::Resources* resources = nullptr;
};

// The global --rootless flag ("true", "false", "auto") resolved as runc does: auto means
// rootless when the effective uid is not 0 or we run in a user namespace that does not
// map the whole id range (root in a rootless engine's namespace).
bool rootless_mode(const std::string& flag);

// What `create` leaves for `run` to wait on.
struct Created {
  pid_t pid = 0;
  base::UniqueFd pidfd;
  bool terminal = false;  // process.terminal: the pty master went to the console socket
};

// Create the container (runtime.md "create"): on success it is in `created` and its init
// waits on exec.fifo. On error nothing is left behind: no state dir, cgroup or process.
base::Result<Created> create_container(const StateStore& store, const CreateOptions& opts);

class Container {
 public:
  // Open and lock (exclusive for mutating commands).
  static base::Result<Container> open(const StateStore& store, const std::string& id,
                                      bool exclusive);

  const ContainerRecord& record() const { return rec_; }
  const std::string& dir() const { return dir_; }
  Status status() const;
  // runtime-spec state JSON.
  std::string state_json() const;
  // The saved config.json (hooks, process) — parsed on demand.
  base::Result<spec::Spec> spec() const;
  // The container's cgroup, loaded from the record; nullptr when it has none.
  base::Result<cg::Cgroup*> cgroup();

  // Host PIDs of the container's processes, sorted: from its cgroup; without one
  // (rootless, not delegated) every process in the init's PID namespace, or just the
  // init when it has none of its own.
  base::Result<std::vector<pid_t>> pids();

  base::Result<void> start();
  base::Result<void> kill(int sig, bool all);
  // Remove the container (runtime.md "delete"); `force` kills a live one first. A
  // non-empty `report` gets the final stats (`zrun stats --json`) before the cgroup goes.
  base::Result<void> remove(bool force, const std::string& report = "");

 private:
  Container() = default;
  base::Result<void> write_report(const std::string& path, cg::Cgroup& cg);
  const StateStore* store_ = nullptr;
  ContainerRecord rec_;
  std::string dir_;
  base::UniqueFd lock_;
  std::unique_ptr<cg::Cgroup> cg_;
};

// The process is the container's init only if its start time matches what was recorded.
bool init_alive(const ContainerRecord& rec);
// A pidfd of the container's init, re-checked against the recorded start time after
// opening (no PID-reuse race). "container `id` is not running" otherwise.
base::Result<base::UniqueFd> open_init_pidfd(const ContainerRecord& rec);
// The runtime-spec state document of `rec` with `status` (for `state` and for hooks).
std::string state_document(const ContainerRecord& rec, const char* status);
// Signal the container's init via pidfd (no PID-reuse race). ESRCH -> "not running".
base::Result<void> signal_init(const ContainerRecord& rec, int sig);

}  // namespace zrun::rt
