// Loading and attaching the cgroup v2 device filter with the raw bpf(2) syscall.
#include <fcntl.h>

#include <cstring>

#include "base/bpf_syscall.h"
#include "base/sys.h"
#include "cgroups/device_filter.h"

namespace zrun::cg {

using base::Result;
using base::UniqueFd;

namespace {

// The kernel checks a program's license only when it calls GPL-only helpers; this one
// calls no helper at all.
constexpr char kLicense[] = "Apache-2.0";
constexpr const char* kNeedsBpf =
    "linux.resources.devices: cgroup v2 device rules need eBPF (BPF_PROG_TYPE_CGROUP_DEVICE)";

// The last non-empty line of the verifier log: the reason it refused.
std::string last_log_line(const std::string& log) {
  auto lines = base::split(log, '\n');
  for (size_t i = lines.size(); i-- > 0;)
    if (!base::trim(lines[i]).empty()) return std::string(base::trim(lines[i]));
  return "";
}

Result<UniqueFd> load_program(const std::vector<bpf_insn>& prog) {
  union bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insns = base::bpf_ptr(prog.data());
  a.insn_cnt = static_cast<__u32>(prog.size());
  a.license = base::bpf_ptr(kLicense);
  static_assert(sizeof(kDeviceFilterName) <= BPF_OBJ_NAME_LEN);
  std::memcpy(a.prog_name, kDeviceFilterName, sizeof(kDeviceFilterName));
  auto fd = base::bpf(BPF_PROG_LOAD, a, "load program");
  if (fd) return UniqueFd(static_cast<int>(*fd));
  int err = fd.error().err;
  if (err == ENOSYS) return base::context(std::move(fd).error(), "kernel without bpf(2)");
  if (err == EPERM) return base::context(std::move(fd).error(), "needs CAP_BPF or CAP_SYS_ADMIN");
  // Again with the verifier's log: an empty log means the kernel does not know the
  // program type (no CONFIG_CGROUP_BPF); otherwise its last line says what it refused.
  std::string log(64 * 1024, '\0');
  a.log_level = 1;
  a.log_buf = base::bpf_ptr(log.data());
  a.log_size = static_cast<__u32>(log.size());
  auto again = base::bpf(BPF_PROG_LOAD, a, "load program");
  if (again) return UniqueFd(static_cast<int>(*again));
  log.resize(std::strlen(log.c_str()));
  std::string why = last_log_line(log);
  if (why.empty() && again.error().err == EINVAL)
    return base::context(std::move(again).error(),
                         "kernel without BPF_PROG_TYPE_CGROUP_DEVICE (CONFIG_CGROUP_BPF)");
  if (why.empty()) return std::move(again).error();
  return base::context(std::move(again).error(), "verifier: " + why);
}

Result<UniqueFd> open_cgroup(const std::string& dir) {
  // Not O_PATH: the bpf commands take the cgroup through fdget(), which refuses O_PATH.
  return base::open_file(dir, O_RDONLY | O_DIRECTORY);
}

Result<std::vector<uint32_t>> query_ids(int cgfd) {
  std::vector<uint32_t> ids(16);
  for (;;) {
    union bpf_attr a;
    std::memset(&a, 0, sizeof a);
    a.query.target_fd = static_cast<__u32>(cgfd);
    a.query.attach_type = BPF_CGROUP_DEVICE;
    a.query.prog_ids = base::bpf_ptr(ids.data());
    a.query.prog_cnt = static_cast<__u32>(ids.size());
    auto r = base::bpf(BPF_PROG_QUERY, a, "query attached programs");
    if (!r && r.error().err == ENOSPC && ids.size() < 4096) {
      ids.resize(ids.size() * 4);
      continue;
    }
    if (!r) return std::move(r).error();
    ids.resize(a.query.prog_cnt);
    return ids;
  }
}

struct Prog {
  AttachedProgram info;
  UniqueFd fd;
};

// The programs attached to `cgfd` with an fd each (a program detached meanwhile is
// skipped).
Result<std::vector<Prog>> attached(int cgfd) {
  std::vector<Prog> out;
  for (uint32_t id : ZRUN_TRY(query_ids(cgfd))) {
    union bpf_attr a;
    std::memset(&a, 0, sizeof a);
    a.prog_id = id;
    auto fd = base::bpf(BPF_PROG_GET_FD_BY_ID, a, "open program " + std::to_string(id));
    if (!fd && fd.error().err == ENOENT) continue;
    if (!fd) return std::move(fd).error();
    Prog p;
    p.fd.reset(static_cast<int>(*fd));
    bpf_prog_info info;
    std::memset(&info, 0, sizeof info);
    std::memset(&a, 0, sizeof a);
    a.info.bpf_fd = static_cast<__u32>(p.fd.get());
    a.info.info_len = sizeof info;
    a.info.info = base::bpf_ptr(&info);
    ZRUN_TRY(base::bpf(BPF_OBJ_GET_INFO_BY_FD, a, "program " + std::to_string(id) + " info"));
    p.info.id = id;
    p.info.name.assign(info.name, strnlen(info.name, sizeof info.name));
    out.push_back(std::move(p));
  }
  return out;
}

bool is_ours(const AttachedProgram& p) { return p.name == kDeviceFilterName; }

Result<void> attach(int cgfd, int progfd, int replace_fd) {
  union bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.target_fd = static_cast<__u32>(cgfd);
  a.attach_bpf_fd = static_cast<__u32>(progfd);
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (replace_fd >= 0) {
    a.attach_flags |= BPF_F_REPLACE;
    a.replace_bpf_fd = static_cast<__u32>(replace_fd);
  }
  ZRUN_TRY(base::bpf(BPF_PROG_ATTACH, a, "attach program"));
  return base::ok();
}

Result<void> detach(int cgfd, int progfd) {
  union bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.target_fd = static_cast<__u32>(cgfd);
  a.attach_bpf_fd = static_cast<__u32>(progfd);
  a.attach_type = BPF_CGROUP_DEVICE;
  auto r = base::bpf(BPF_PROG_DETACH, a, "detach program");
  if (!r && r.error().err != ENOENT) return std::move(r).error();
  return base::ok();
}

}  // namespace

Result<void> attach_device_filter(const std::string& cgroup_dir,
                                  const std::vector<spec::DeviceRule>& rules) {
  std::string ctx = "device filter for `" + cgroup_dir + "`";
  auto prog = ZRUN_TRY_CTX(device_filter_program(rules), "linux.resources.devices");
  UniqueFd progfd = ZRUN_TRY_CTX(load_program(prog), kNeedsBpf);
  UniqueFd cgfd = ZRUN_TRY_CTX(open_cgroup(cgroup_dir), ctx);
  std::vector<Prog> old;
  for (auto& p : ZRUN_TRY_CTX(attached(cgfd.get()), ctx))
    if (is_ours(p.info)) old.push_back(std::move(p));
  if (old.size() == 1) {
    auto r = attach(cgfd.get(), progfd.get(), old[0].fd.get());
    if (r) return base::ok();
    // Kernels before 5.6 have no BPF_F_REPLACE (EINVAL): attach, then detach the old one.
    if (r.error().err != EINVAL) return base::context(std::move(r).error(), ctx);
  }
  ZRUN_TRY_CTX(attach(cgfd.get(), progfd.get(), -1), ctx);
  for (auto& p : old) ZRUN_TRY_CTX(detach(cgfd.get(), p.fd.get()), ctx);
  return base::ok();
}

Result<std::vector<AttachedProgram>> attached_device_programs(const std::string& cgroup_dir) {
  std::string ctx = "device programs of `" + cgroup_dir + "`";
  UniqueFd cgfd = ZRUN_TRY_CTX(open_cgroup(cgroup_dir), ctx);
  std::vector<AttachedProgram> out;
  for (auto& p : ZRUN_TRY_CTX(attached(cgfd.get()), ctx)) out.push_back(p.info);
  return out;
}

Result<void> detach_device_filter(const std::string& cgroup_dir) {
  std::string ctx = "detach device filter from `" + cgroup_dir + "`";
  UniqueFd cgfd = ZRUN_TRY_CTX(open_cgroup(cgroup_dir), ctx);
  for (auto& p : ZRUN_TRY_CTX(attached(cgfd.get()), ctx))
    if (is_ours(p.info)) ZRUN_TRY_CTX(detach(cgfd.get(), p.fd.get()), ctx);
  return base::ok();
}

}  // namespace zrun::cg
