// Typed model of the OCI runtime-spec config.json (1.x). Field names follow the spec.
// Parsing and validation live in spec/parse.cc; unknown fields are ignored.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace zrun::spec {

struct Root {
  std::string path;  // absolute after resolve_paths() (relative to the bundle in JSON)
  bool readonly = false;
};

struct Mount {
  std::string destination;
  std::string source;
  std::string type;
  std::vector<std::string> options;
  struct IdMap {
    uint32_t container_id = 0, host_id = 0, size = 0;
  };
  std::vector<IdMap> uid_mappings, gid_mappings;
};

struct Rlimit {
  int resource = 0;  // RLIMIT_* number
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t hard = 0, soft = 0;
};

struct Capabilities {
  // Capability numbers (CAP_*), already validated.
  std::vector<int> bounding, effective, inheritable, permitted, ambient;
};

struct User {
  uint32_t uid = 0, gid = 0;
  std::optional<uint32_t> umask;
  std::vector<uint32_t> additional_gids;
  std::string username;
};

struct ConsoleSize {
  unsigned height = 0, width = 0;
};

struct Process {
  bool terminal = false;
  std::optional<ConsoleSize> console_size;
  User user;
  std::vector<std::string> args;
  std::string command_line;  // Windows only; accepted and ignored
  std::vector<std::string> env;
  std::string cwd = "/";
  std::optional<Capabilities> capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::string apparmor_profile;
  std::optional<int> oom_score_adj;
  std::string selinux_label;
};

struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout;  // seconds, > 0
};

struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;
  bool empty() const {
    return prestart.empty() && create_runtime.empty() && create_container.empty() &&
           start_container.empty() && poststart.empty() && poststop.empty();
  }
};

enum class NsType { kPid, kNetwork, kMount, kIpc, kUts, kUser, kCgroup, kTime };

struct Namespace {
  NsType type;
  std::string path;  // empty = create a new one
};

struct IdMapping {
  uint32_t container_id = 0, host_id = 0, size = 0;
};

struct Device {
  std::string path;
  char type = 'c';  // c, b, u, p
  int64_t major = 0, minor = 0;
  std::optional<uint32_t> file_mode;
  std::optional<uint32_t> uid, gid;
};

struct DeviceRule {
  bool allow = false;
  std::string type = "a";  // a, c, b
  std::optional<int64_t> major, minor;
  std::string access;  // rwm subset
};

struct WeightDevice {
  int64_t major = 0, minor = 0;
  std::optional<uint16_t> weight, leaf_weight;
};

struct ThrottleDevice {
  int64_t major = 0, minor = 0;
  uint64_t rate = 0;
};

struct MemoryResources {
  std::optional<int64_t> limit, reservation, swap, kernel, kernel_tcp;
  std::optional<uint64_t> swappiness;
  std::optional<bool> disable_oom_killer, use_hierarchy, check_before_update;
};

struct CpuResources {
  std::optional<uint64_t> shares;
  std::optional<int64_t> quota;
  std::optional<uint64_t> burst, period;
  std::optional<int64_t> realtime_runtime;
  std::optional<uint64_t> realtime_period;
  std::string cpus, mems;
  std::optional<int64_t> idle;
};

struct BlockIoResources {
  std::optional<uint16_t> weight, leaf_weight;
  std::vector<WeightDevice> weight_device;
  std::vector<ThrottleDevice> throttle_read_bps_device, throttle_write_bps_device,
      throttle_read_iops_device, throttle_write_iops_device;
};

struct HugepageLimit {
  std::string page_size;
  uint64_t limit = 0;
};

struct RdmaLimit {
  std::optional<uint32_t> hca_handles, hca_objects;
};

struct Resources {
  std::vector<DeviceRule> devices;
  std::optional<MemoryResources> memory;
  std::optional<CpuResources> cpu;
  std::optional<int64_t> pids_limit;
  std::optional<BlockIoResources> block_io;
  std::vector<HugepageLimit> hugepage_limits;
  std::map<std::string, RdmaLimit> rdma;
  std::map<std::string, std::string> unified;
};

struct SeccompArg {
  unsigned index = 0;
  uint64_t value = 0, value_two = 0;
  std::string op;
};

struct SeccompSyscall {
  std::vector<std::string> names;
  std::string action;
  std::optional<unsigned> errno_ret;
  std::vector<SeccompArg> args;
};

struct Seccomp {
  std::string default_action;
  std::optional<unsigned> default_errno_ret;
  std::vector<std::string> architectures;
  std::vector<std::string> flags;
  std::string listener_path, listener_metadata;
  std::vector<SeccompSyscall> syscalls;
};

struct TimeOffset {
  int64_t secs = 0;
  uint32_t nanosecs = 0;
};

struct Linux {
  std::vector<Namespace> namespaces;
  std::vector<IdMapping> uid_mappings, gid_mappings;
  std::map<std::string, TimeOffset> time_offsets;  // "monotonic", "boottime"
  std::vector<Device> devices;
  std::string cgroups_path;
  std::optional<Resources> resources;
  std::string rootfs_propagation;
  std::optional<Seccomp> seccomp;
  std::map<std::string, std::string> sysctl;
  std::vector<std::string> masked_paths, readonly_paths;
  std::string mount_label;
  std::string intel_rdt_closid;  // accepted, unsupported

  bool has_ns(NsType t) const {
    for (auto& n : namespaces)
      if (n.type == t) return true;
    return false;
  }
  const Namespace* ns(NsType t) const {
    for (auto& n : namespaces)
      if (n.type == t) return &n;
    return nullptr;
  }
};

struct Spec {
  std::string oci_version;
  std::optional<Process> process;
  Root root;
  std::string hostname, domainname;
  std::vector<Mount> mounts;
  Hooks hooks;
  std::map<std::string, std::string> annotations;
  std::optional<Linux> linux_;  // `linux` is a predefined macro in GNU C++
};

// Names used in JSON and error messages ("pid", "network", ...).
const char* ns_type_name(NsType t);
base::Result<NsType> ns_type_from_name(const std::string& name);
// CLONE_NEW* flag for a namespace type.
int ns_clone_flag(NsType t);
// /proc/PID/ns/<file> name for a namespace type.
const char* ns_proc_name(NsType t);

// Parse config.json text. `bundle` resolves a relative root.path. Errors name the JSON
// path: "config.json: .linux.namespaces[2].type: unknown namespace \"netx\"".
base::Result<Spec> parse_config(const std::string& json_text, const std::string& bundle);
// A process object alone (exec --process FILE); errors are prefixed "process.json: ".
base::Result<Process> parse_process(const std::string& json_text);
// A linux.resources object alone (update -r FILE); errors are prefixed "resources: ".
base::Result<Resources> parse_resources(const std::string& json_text);
// Read and parse <bundle>/config.json.
base::Result<Spec> load_bundle(const std::string& bundle);

// Signal names: "KILL", "SIGKILL", "9" -> 9.
base::Result<int> parse_signal(const std::string& s);
// Capability name "CAP_NET_ADMIN" -> number (libcap's list plus the kernel's newer ones).
base::Result<int> parse_capability(const std::string& name);
std::string capability_name(int cap);
// All capabilities this build knows, by name.
std::vector<std::string> all_capability_names();
// RLIMIT_* name -> resource number.
base::Result<int> parse_rlimit(const std::string& name);

}  // namespace zrun::spec
