// The container's cgroup, across hierarchies. Contract used by runtime/ (the launcher
// creates it before clone3, the CLI loads it from state.json for kill/pause/ps/delete).
//
// Modes (see docs/ARCHITECTURE.md "Cgroups on the machines we build on"):
//  - unified: one cgroup2 directory does everything (CLONE_INTO_CGROUP possible).
//  - hybrid:  v1 controllers at /sys/fs/cgroup/<ctrl>/<path> for limits, *and* a cgroup in
//             the unified hierarchy (/sys/fs/cgroup/unified/<path>) for freeze/kill/eBPF.
//  - legacy:  v1 only.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "spec/config.h"

namespace zrun::cg {

enum class Mode { kUnified, kHybrid, kLegacy };
const char* mode_name(Mode m);
base::Result<Mode> mode_from_name(std::string_view name);

// Where the hierarchies are mounted.
struct Layout {
  Mode mode = Mode::kUnified;
  // cgroup2 mount point ("" in legacy mode).
  std::string unified;
  // v1 controller -> mount point (co-mounted controllers share one). Named hierarchies
  // (name=systemd) are skipped: no resources live there.
  std::map<std::string, std::string> v1;
};

// Detect the host's cgroup layout from /proc/self/mountinfo. `mountinfo` and the cgroup
// root are injectable for unit tests against a fake tree.
base::Result<Mode> detect_mode();
base::Result<Layout> detect_layout(const std::string& fs_root = "/sys/fs/cgroup");
// unified = cgroup2 mounted at `fs_root`; hybrid = v1 controllers + cgroup2 elsewhere;
// legacy = v1 controllers only.
base::Result<Layout> detect_layout_from(std::string_view mountinfo,
                                        const std::string& fs_root = "/sys/fs/cgroup");

struct CgroupConfig {
  // Path relative to the hierarchy roots, always starting with '/': resolved from
  // linux.cgroupsPath (absolute as is; relative to zrun's own cgroup; empty -> /zrun/<id>).
  std::string path;
  const spec::Resources* resources = nullptr;  // may be null
  // linux.devices: the runtime creates these nodes, so (like runc) they are allowed after
  // the spec's device rules, together with default_allowed_devices(). May be null.
  const std::vector<spec::Device>* devices = nullptr;
  std::string fs_root = "/sys/fs/cgroup";  // overridden by unit tests
  // Unit tests: a layout instead of /proc/self/mountinfo detection.
  std::optional<Layout> layout;
  // Unit tests: called after each mkdir so a fake tree can get the files the kernel
  // would create.
  std::function<void(const std::string& dir)> on_mkdir;
};

// Resolve linux.cgroupsPath for container `id` (see CgroupConfig::path). Errors: the
// systemd "slice:prefix:name" form (no systemd cgroup driver), a path escaping its root
// with "..", a path that is the root cgroup itself.
base::Result<std::string> resolve_path(const std::string& cgroups_path, const std::string& id);
// Same with zrun's own /proc/self/cgroup text and the mode injected (unit tests).
base::Result<std::string> resolve_path_from(const std::string& cgroups_path, const std::string& id,
                                            std::string_view proc_self_cgroup, Mode mode);

class Cgroup {
 public:
  virtual ~Cgroup() = default;

  // Create every cgroup directory for the container and apply `resources`. On error,
  // nothing created is left behind. The leaf must not exist yet (zrun only ever writes
  // to directories it created).
  static base::Result<std::unique_ptr<Cgroup>> create(const CgroupConfig& cfg);
  // Re-open an existing container cgroup from what to_json() saved (no mkdir).
  static base::Result<std::unique_ptr<Cgroup>> load(const std::string& saved_json);

  // Serialized description (mode, path, the directories created) for state.json.
  virtual std::string to_json() const = 0;
  virtual Mode mode() const = 0;
  virtual const std::string& path() const = 0;

  // O_PATH|O_DIRECTORY fd of the v2 directory usable with CLONE_INTO_CGROUP, or -1 where
  // that is not possible (hybrid/legacy: v1 controllers need an explicit join).
  virtual int clone_into_fd() const = 0;
  // Move `pid` into every hierarchy's cgroup (no-op for hierarchies joined at clone).
  virtual base::Result<void> add_pid(pid_t pid) = 0;

  // Host PIDs in the cgroup and its descendants, sorted (read from the unified hierarchy
  // if present, else pids/freezer).
  virtual base::Result<std::vector<pid_t>> pids() const = 0;
  // Freeze/thaw, waiting until the kernel reports the state reached.
  virtual base::Result<void> freeze() = 0;
  virtual base::Result<void> thaw() = 0;
  virtual base::Result<bool> frozen() const = 0;
  // Signal every process in the cgroup (SIGKILL uses cgroup.kill where available, and
  // waits, bounded, until the cgroup is empty).
  virtual base::Result<void> kill_all(int sig) = 0;
  // Apply (new) resources to a live cgroup (zrun update). Non-empty `r.devices` replace
  // the device policy whole (v1 devices files rewritten; the v2 device filter replaced
  // atomically), followed like on create by the allow rules for `devices` (the saved
  // spec's linux.devices, may be null) and default_allowed_devices(); empty `r.devices`
  // leave it alone.
  virtual base::Result<void> update(const spec::Resources& r,
                                    const std::vector<spec::Device>* devices = nullptr) = 0;
  // Remove every directory create() made (kill nothing; retries while the kernel still
  // releases exiting tasks; EBUSY after ~1 s is an error). Safe to call twice.
  virtual base::Result<void> destroy() = 0;

  // Directory of this cgroup in the unified hierarchy ("" in legacy mode), and the
  // directory for v1 controller `ctrl` ("" if not mounted / unified mode). For stats,
  // bean counters and eBPF attachment.
  virtual std::string unified_dir() const = 0;
  virtual std::string v1_dir(const std::string& ctrl) const = 0;
};

}  // namespace zrun::cg
