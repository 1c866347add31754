// config.json .linux -> spec::Linux: namespaces, id mappings, devices, resources, seccomp.
#include <algorithm>
#include <set>

#include "spec/config.h"
#include "spec/json_reader.h"

namespace zrun::spec::detail {

namespace {

bool is_abs(const std::string& p) { return !p.empty() && p[0] == '/'; }

template <class T>
bool contains(std::initializer_list<T> list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

// Seccomp names from the runtime-spec (config-linux.md#seccomp).
constexpr std::initializer_list<const char*> kSeccompActions = {
    "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY"};
constexpr std::initializer_list<const char*> kSeccompOps = {
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",       "SCMP_CMP_EQ",
    "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"};
constexpr std::initializer_list<const char*> kSeccompFlags = {
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
constexpr std::initializer_list<const char*> kSeccompArchs = {
    "SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",     "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",    "SCMP_ARCH_SH",       "SCMP_ARCH_SHEB"};
constexpr std::initializer_list<const char*> kPropagations = {
    "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"};

base::Result<void> parse_namespaces(const Json& j, const std::string& path, Linux& out) {
  ZRUN_TRY(
      get_objects(j, "namespaces", path, out.namespaces,
                  [](const Json& e, const std::string& p, Namespace& ns) -> base::Result<void> {
                    std::string type;
                    ZRUN_TRY(require(e, "type", p, type));
                    auto t = ns_type_from_name(type);
                    if (!t) return json_error(child(p, "type"), t.error().msg);
                    ns.type = *t;
                    ZRUN_TRY(get(e, "path", p, ns.path));
                    if (!ns.path.empty() && !is_abs(ns.path))
                      return json_error(child(p, "path"), "must be an absolute path");
                    return base::ok();
                  }));
  std::set<NsType> seen;
  for (size_t i = 0; i < out.namespaces.size(); ++i)
    if (!seen.insert(out.namespaces[i].type).second)
      return json_error(
          child(index(child(path, "namespaces"), i), "type"),
          std::string("duplicate namespace \"") + ns_type_name(out.namespaces[i].type) + "\"");
  return base::ok();
}

base::Result<void> parse_idmaps(const Json& j, const char* key, const std::string& path,
                                std::vector<IdMapping>& out) {
  return get_objects(j, key, path, out,
                     [](const Json& e, const std::string& p, IdMapping& m) -> base::Result<void> {
                       ZRUN_TRY(require(e, "containerID", p, m.container_id));
                       ZRUN_TRY(require(e, "hostID", p, m.host_id));
                       ZRUN_TRY(require(e, "size", p, m.size));
                       if (m.size == 0)
                         return json_error(child(p, "size"), "must be greater than 0");
                       return base::ok();
                     });
}

base::Result<void> parse_time_offsets(const Json& j, const std::string& path, Linux& out) {
  auto obj = ZRUN_TRY(object_at(j, "timeOffsets", path));
  if (!obj) return base::ok();
  std::string p = child(path, "timeOffsets");
  for (auto it = obj->begin(); it != obj->end(); ++it) {
    std::string kp = child(p, it.key().c_str());
    if (it.key() != "monotonic" && it.key() != "boottime")
      return json_error(kp, "unknown clock \"" + it.key() + "\"");
    if (!it.value().is_object()) return json_error(kp, "expected object");
    TimeOffset off;
    ZRUN_TRY(get(it.value(), "secs", kp, off.secs));
    ZRUN_TRY(get(it.value(), "nanosecs", kp, off.nanosecs));
    if (off.nanosecs >= 1000000000u)
      return json_error(child(kp, "nanosecs"), "must be less than 1000000000");
    out.time_offsets[it.key()] = off;
  }
  return base::ok();
}

base::Result<void> parse_device(const Json& e, const std::string& p, Device& d) {
  ZRUN_TRY(require(e, "path", p, d.path));
  if (!is_abs(d.path)) return json_error(child(p, "path"), "must be an absolute path");
  std::string type;
  ZRUN_TRY(require(e, "type", p, type));
  if (type.size() != 1 || std::string_view("cbup").find(type[0]) == std::string_view::npos)
    return json_error(child(p, "type"), "unknown device type \"" + type + "\"");
  d.type = type[0];
  if (d.type != 'p') {
    ZRUN_TRY(require(e, "major", p, d.major));
    ZRUN_TRY(require(e, "minor", p, d.minor));
  }
  ZRUN_TRY(get(e, "fileMode", p, d.file_mode));
  ZRUN_TRY(get(e, "uid", p, d.uid));
  ZRUN_TRY(get(e, "gid", p, d.gid));
  return base::ok();
}

base::Result<void> parse_device_rule(const Json& e, const std::string& p, DeviceRule& r) {
  ZRUN_TRY(require(e, "allow", p, r.allow));
  ZRUN_TRY(get(e, "type", p, r.type));
  if (r.type.empty()) r.type = "a";
  if (r.type != "a" && r.type != "c" && r.type != "b")
    return json_error(child(p, "type"), "unknown device type \"" + r.type + "\"");
  ZRUN_TRY(get(e, "major", p, r.major));
  ZRUN_TRY(get(e, "minor", p, r.minor));
  ZRUN_TRY(get(e, "access", p, r.access));
  if (r.access.find_first_not_of("rwm") != std::string::npos)
    return json_error(child(p, "access"), "invalid access \"" + r.access + "\"");
  return base::ok();
}

base::Result<void> parse_memory(const Json& j, const std::string& p, MemoryResources& m) {
  ZRUN_TRY(get(j, "limit", p, m.limit));
  ZRUN_TRY(get(j, "reservation", p, m.reservation));
  ZRUN_TRY(get(j, "swap", p, m.swap));
  ZRUN_TRY(get(j, "kernel", p, m.kernel));
  ZRUN_TRY(get(j, "kernelTCP", p, m.kernel_tcp));
  ZRUN_TRY(get(j, "swappiness", p, m.swappiness));
  if (m.swappiness && *m.swappiness > 100)
    return json_error(child(p, "swappiness"), "must be between 0 and 100");
  ZRUN_TRY(get(j, "disableOOMKiller", p, m.disable_oom_killer));
  ZRUN_TRY(get(j, "useHierarchy", p, m.use_hierarchy));
  ZRUN_TRY(get(j, "checkBeforeUpdate", p, m.check_before_update));
  return base::ok();
}

base::Result<void> parse_cpu(const Json& j, const std::string& p, CpuResources& c) {
  ZRUN_TRY(get(j, "shares", p, c.shares));
  ZRUN_TRY(get(j, "quota", p, c.quota));
  ZRUN_TRY(get(j, "burst", p, c.burst));
  ZRUN_TRY(get(j, "period", p, c.period));
  ZRUN_TRY(get(j, "realtimeRuntime", p, c.realtime_runtime));
  ZRUN_TRY(get(j, "realtimePeriod", p, c.realtime_period));
  ZRUN_TRY(get(j, "cpus", p, c.cpus));
  ZRUN_TRY(get(j, "mems", p, c.mems));
  ZRUN_TRY(get(j, "idle", p, c.idle));
  return base::ok();
}

base::Result<void> parse_throttle(const Json& j, const char* key, const std::string& p,
                                  std::vector<ThrottleDevice>& out) {
  return get_objects(
      j, key, p, out,
      [](const Json& e, const std::string& ep, ThrottleDevice& d) -> base::Result<void> {
        ZRUN_TRY(require(e, "major", ep, d.major));
        ZRUN_TRY(require(e, "minor", ep, d.minor));
        ZRUN_TRY(require(e, "rate", ep, d.rate));
        return base::ok();
      });
}

base::Result<void> parse_blkio(const Json& j, const std::string& p, BlockIoResources& b) {
  ZRUN_TRY(get(j, "weight", p, b.weight));
  ZRUN_TRY(get(j, "leafWeight", p, b.leaf_weight));
  ZRUN_TRY(
      get_objects(j, "weightDevice", p, b.weight_device,
                  [](const Json& e, const std::string& ep, WeightDevice& d) -> base::Result<void> {
                    ZRUN_TRY(require(e, "major", ep, d.major));
                    ZRUN_TRY(require(e, "minor", ep, d.minor));
                    ZRUN_TRY(get(e, "weight", ep, d.weight));
                    ZRUN_TRY(get(e, "leafWeight", ep, d.leaf_weight));
                    return base::ok();
                  }));
  ZRUN_TRY(parse_throttle(j, "throttleReadBpsDevice", p, b.throttle_read_bps_device));
  ZRUN_TRY(parse_throttle(j, "throttleWriteBpsDevice", p, b.throttle_write_bps_device));
  ZRUN_TRY(parse_throttle(j, "throttleReadIOPSDevice", p, b.throttle_read_iops_device));
  ZRUN_TRY(parse_throttle(j, "throttleWriteIOPSDevice", p, b.throttle_write_iops_device));
  return base::ok();
}

base::Result<void> parse_rdma(const Json& j, const std::string& path, Resources& r) {
  auto obj = ZRUN_TRY(object_at(j, "rdma", path));
  if (!obj) return base::ok();
  std::string p = child(path, "rdma");
  for (auto it = obj->begin(); it != obj->end(); ++it) {
    std::string kp = child(p, it.key().c_str());
    if (!it.value().is_object()) return json_error(kp, "expected object");
    RdmaLimit lim;
    ZRUN_TRY(get(it.value(), "hcaHandles", kp, lim.hca_handles));
    ZRUN_TRY(get(it.value(), "hcaObjects", kp, lim.hca_objects));
    r.rdma[it.key()] = lim;
  }
  return base::ok();
}

base::Result<void> parse_resources(const Json& j, const std::string& p, Resources& r) {
  ZRUN_TRY(get_objects(j, "devices", p, r.devices, parse_device_rule));
  if (auto m = ZRUN_TRY(object_at(j, "memory", p))) {
    MemoryResources mem;
    ZRUN_TRY(parse_memory(*m, child(p, "memory"), mem));
    r.memory = mem;
  }
  if (auto c = ZRUN_TRY(object_at(j, "cpu", p))) {
    CpuResources cpu;
    ZRUN_TRY(parse_cpu(*c, child(p, "cpu"), cpu));
    r.cpu = std::move(cpu);
  }
  if (auto pids = ZRUN_TRY(object_at(j, "pids", p)))
    ZRUN_TRY(get(*pids, "limit", child(p, "pids"), r.pids_limit));
  if (auto b = ZRUN_TRY(object_at(j, "blockIO", p))) {
    BlockIoResources blkio;
    ZRUN_TRY(parse_blkio(*b, child(p, "blockIO"), blkio));
    r.block_io = std::move(blkio);
  }
  ZRUN_TRY(
      get_objects(j, "hugepageLimits", p, r.hugepage_limits,
                  [](const Json& e, const std::string& ep, HugepageLimit& h) -> base::Result<void> {
                    ZRUN_TRY(require(e, "pageSize", ep, h.page_size));
                    ZRUN_TRY(require(e, "limit", ep, h.limit));
                    return base::ok();
                  }));
  ZRUN_TRY(parse_rdma(j, p, r));
  ZRUN_TRY(get(j, "unified", p, r.unified));
  return base::ok();
}

base::Result<void> check_action(const std::string& action, const std::string& path) {
  if (!contains(kSeccompActions, action))
    return json_error(path, "unknown seccomp action \"" + action + "\"");
  return base::ok();
}

base::Result<void> parse_syscall(const Json& e, const std::string& p, SeccompSyscall& sc) {
  ZRUN_TRY(require(e, "names", p, sc.names));
  if (sc.names.empty()) return json_error(child(p, "names"), "must not be empty");
  ZRUN_TRY(require(e, "action", p, sc.action));
  ZRUN_TRY(check_action(sc.action, child(p, "action")));
  ZRUN_TRY(get(e, "errnoRet", p, sc.errno_ret));
  return get_objects(
      e, "args", p, sc.args,
      [](const Json& a, const std::string& ap, SeccompArg& arg) -> base::Result<void> {
        ZRUN_TRY(require(a, "index", ap, arg.index));
        if (arg.index > 5) return json_error(child(ap, "index"), "must be between 0 and 5");
        ZRUN_TRY(require(a, "value", ap, arg.value));
        ZRUN_TRY(get(a, "valueTwo", ap, arg.value_two));
        ZRUN_TRY(require(a, "op", ap, arg.op));
        if (!contains(kSeccompOps, arg.op))
          return json_error(child(ap, "op"), "unknown seccomp operator \"" + arg.op + "\"");
        return base::ok();
      });
}

base::Result<void> parse_seccomp(const Json& j, const std::string& p, Seccomp& s) {
  ZRUN_TRY(require(j, "defaultAction", p, s.default_action));
  ZRUN_TRY(check_action(s.default_action, child(p, "defaultAction")));
  ZRUN_TRY(get(j, "defaultErrnoRet", p, s.default_errno_ret));
  ZRUN_TRY(get(j, "architectures", p, s.architectures));
  for (size_t i = 0; i < s.architectures.size(); ++i)
    if (!contains(kSeccompArchs, s.architectures[i]))
      return json_error(index(child(p, "architectures"), i),
                        "unknown seccomp architecture \"" + s.architectures[i] + "\"");
  ZRUN_TRY(get(j, "flags", p, s.flags));
  for (size_t i = 0; i < s.flags.size(); ++i)
    if (!contains(kSeccompFlags, s.flags[i]))
      return json_error(index(child(p, "flags"), i), "unknown seccomp flag \"" + s.flags[i] + "\"");
  ZRUN_TRY(get(j, "listenerPath", p, s.listener_path));
  ZRUN_TRY(get(j, "listenerMetadata", p, s.listener_metadata));
  ZRUN_TRY(get_objects(j, "syscalls", p, s.syscalls, parse_syscall));
  return base::ok();
}

base::Result<void> parse_paths(const Json& j, const char* key, const std::string& path,
                               std::vector<std::string>& out) {
  ZRUN_TRY(get(j, key, path, out));
  for (size_t i = 0; i < out.size(); ++i)
    if (!is_abs(out[i])) return json_error(index(child(path, key), i), "must be an absolute path");
  return base::ok();
}

// runc's validator: mappings and the user namespace go together; so do time offsets and
// the time namespace.
base::Result<void> validate(const std::string& path, const Linux& lx) {
  const Namespace* user = lx.ns(NsType::kUser);
  bool maps = !lx.uid_mappings.empty() || !lx.gid_mappings.empty();
  if (maps && !user)
    return json_error(child(path, !lx.uid_mappings.empty() ? "uidMappings" : "gidMappings"),
                      "user namespace mappings require a user namespace");
  if (user && user->path.empty() && (lx.uid_mappings.empty() || lx.gid_mappings.empty()))
    return json_error(child(path, "namespaces"),
                      "a new user namespace requires uidMappings and gidMappings");
  if (!lx.time_offsets.empty() && !lx.has_ns(NsType::kTime))
    return json_error(child(path, "timeOffsets"), "time offsets require a time namespace");
  return base::ok();
}

}  // namespace

base::Result<void> parse_resources_object(const Json& j, const std::string& path, Resources& out) {
  return parse_resources(j, path, out);
}

base::Result<void> parse_linux(const Json& j, const std::string& path, Linux& out) {
  ZRUN_TRY(parse_namespaces(j, path, out));
  ZRUN_TRY(parse_idmaps(j, "uidMappings", path, out.uid_mappings));
  ZRUN_TRY(parse_idmaps(j, "gidMappings", path, out.gid_mappings));
  ZRUN_TRY(parse_time_offsets(j, path, out));
  ZRUN_TRY(get_objects(j, "devices", path, out.devices, parse_device));
  ZRUN_TRY(get(j, "cgroupsPath", path, out.cgroups_path));
  if (auto r = ZRUN_TRY(object_at(j, "resources", path))) {
    Resources res;
    ZRUN_TRY(parse_resources(*r, child(path, "resources"), res));
    out.resources = std::move(res);
  }
  ZRUN_TRY(get(j, "rootfsPropagation", path, out.rootfs_propagation));
  if (!out.rootfs_propagation.empty() && !contains(kPropagations, out.rootfs_propagation))
    return json_error(child(path, "rootfsPropagation"),
                      "unknown propagation \"" + out.rootfs_propagation + "\"");
  if (auto s = ZRUN_TRY(object_at(j, "seccomp", path))) {
    Seccomp sec;
    ZRUN_TRY(parse_seccomp(*s, child(path, "seccomp"), sec));
    out.seccomp = std::move(sec);
  }
  ZRUN_TRY(get(j, "sysctl", path, out.sysctl));
  ZRUN_TRY(parse_paths(j, "maskedPaths", path, out.masked_paths));
  ZRUN_TRY(parse_paths(j, "readonlyPaths", path, out.readonly_paths));
  ZRUN_TRY(get(j, "mountLabel", path, out.mount_label));
  if (auto rdt = ZRUN_TRY(object_at(j, "intelRdt", path)))
    ZRUN_TRY(get(*rdt, "closID", child(path, "intelRdt"), out.intel_rdt_closid));
  return validate(path, out);
}

}  // namespace zrun::spec::detail
