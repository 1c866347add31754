#include "isolation/seccomp.h"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "base/log.h"
#include "base/sys.h"
#include "base/unique_fd.h"
#include "isolation/console.h"

namespace zrun::iso {

namespace {

using base::Result;

struct FlagName {
  const char* name;
  unsigned bit;
};

// Bits from <linux/seccomp.h>; spelled out because libseccomp 2.5 has no API for
// WAIT_KILLABLE_RECV and we call seccomp(2) ourselves anyway.
constexpr FlagName kFlags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", 1U << 0},
    {"SECCOMP_FILTER_FLAG_LOG", 1U << 1},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", 1U << 2},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 1U << 5},
};
constexpr unsigned kNewListener = 1U << 3;
constexpr unsigned kTsyncEsrch = 1U << 4;
constexpr unsigned kWaitKillableRecv = 1U << 5;
constexpr unsigned kTsync = 1U << 0;

// seccomp(2) validates the flags before it copies the program: with a NULL program a
// supported combination fails with EFAULT, an unknown one with EINVAL. Nothing is
// installed either way, and no privilege is needed to ask.
bool kernel_accepts_flags(unsigned flags) {
  long r = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, nullptr);
  return r < 0 && errno == EFAULT;
}

Result<uint32_t> action_value(const std::string& name, std::optional<unsigned> errno_ret) {
  unsigned e = errno_ret.value_or(EPERM);
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(e);
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(e);
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (name == "SCMP_ACT_NOTIFY") return SCMP_ACT_NOTIFY;
  return base::make_error("unknown seccomp action `" + name + "`");
}

Result<scmp_compare> compare_op(const std::string& op) {
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  return base::make_error("unknown seccomp operator `" + op + "`");
}

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

Result<void> add_archs(scmp_filter_ctx ctx, const std::vector<std::string>& archs) {
  for (const auto& a : archs) {
    // "SCMP_ARCH_X86_64" -> libseccomp's "x86_64".
    std::string name = a.substr(a.rfind("SCMP_ARCH_", 0) == 0 ? 10 : 0);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    uint32_t token = seccomp_arch_resolve_name(name.c_str());
    if (token == 0) {
      // An architecture this libseccomp does not know cannot execute on this host; its
      // syscalls hit the filter's bad-arch action (kill).
      base::log_debug("seccomp: skipping architecture `" + a + "` unknown to libseccomp");
      continue;
    }
    int rc = seccomp_arch_add(ctx, token);
    if (rc < 0 && rc != -EEXIST)  // the native arch is always present
      return base::sys_error("seccomp: add architecture `" + a + "`", -rc);
  }
  return base::ok();
}

// runc's semantics: all comparators of one entry form one rule (AND), unless two of them
// test the same argument, in which case each comparator becomes its own rule (OR) — the
// only way a profile can say "arg0 == A or arg0 == B".
Result<std::vector<std::vector<scmp_arg_cmp>>> rule_conditions(const spec::SeccompSyscall& sc) {
  std::vector<scmp_arg_cmp> all;
  bool repeated = false;
  unsigned seen = 0;
  for (const auto& a : sc.args) {
    auto op = ZRUN_TRY(compare_op(a.op));
    scmp_arg_cmp c{};
    c.arg = a.index;
    c.op = op;
    c.datum_a = a.value;  // the mask for MASKED_EQ
    c.datum_b = op == SCMP_CMP_MASKED_EQ ? a.value_two : 0;
    all.push_back(c);
    if (seen & (1U << a.index)) repeated = true;
    seen |= 1U << a.index;
  }
  std::vector<std::vector<scmp_arg_cmp>> rules;
  if (!repeated) {
    rules.push_back(std::move(all));
  } else {
    for (const auto& c : all) rules.push_back({c});
  }
  return rules;
}

Result<void> add_syscall_rules(scmp_filter_ctx ctx, const spec::SeccompSyscall& sc,
                               uint32_t default_action, bool* notify) {
  uint32_t action = ZRUN_TRY(action_value(sc.action, sc.errno_ret));
  // libseccomp refuses a rule that repeats the default action (EACCES); it is a no-op.
  if (action == default_action) return base::ok();
  if (action == SCMP_ACT_NOTIFY) *notify = true;
  auto rules = ZRUN_TRY(rule_conditions(sc));
  for (const auto& name : sc.names) {
    if (action == SCMP_ACT_NOTIFY && name == "sendmsg")
      return base::make_error(
          "seccomp: SCMP_ACT_NOTIFY cannot be used for `sendmsg` (the runtime sends the "
          "listener fd with it)");
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      base::log_debug("seccomp: skipping unknown syscall `" + name + "`");
      continue;
    }
    for (const auto& conds : rules) {
      int rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(conds.size()),
                                      conds.empty() ? nullptr : conds.data());
      if (rc < 0) return base::sys_error("seccomp: add rule for `" + name + "`", -rc);
    }
  }
  return base::ok();
}

Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx ctx) {
  int raw = ::memfd_create("zrun-seccomp", MFD_CLOEXEC);
  if (raw < 0) return base::sys_error("seccomp: memfd_create");
  base::UniqueFd fd(raw);
  int rc = seccomp_export_bpf(ctx, fd.get());
  if (rc < 0) return base::sys_error("seccomp: export bpf", -rc);
  if (::lseek(fd.get(), 0, SEEK_SET) < 0) return base::sys_error("seccomp: lseek");
  std::string bytes = ZRUN_TRY_CTX(base::read_fd(fd.get()), "seccomp: read bpf");
  if (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0)
    return base::make_error("seccomp: export bpf: unexpected size " + std::to_string(bytes.size()));
  std::vector<sock_filter> out(bytes.size() / sizeof(sock_filter));
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

Result<unsigned> filter_flags(const spec::Seccomp& s, bool notify) {
  unsigned flags = 0;
  for (const auto& f : s.flags) {
    for (const auto& k : kFlags)
      if (f == k.name) flags |= k.bit;
  }
  if (flags & kWaitKillableRecv) {
    if (!notify) {
      // The kernel accepts it only with a listener (EINVAL otherwise); libseccomp 2.6
      // drops it the same way.
      base::log_debug(
          "seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored without "
          "SCMP_ACT_NOTIFY");
      flags &= ~kWaitKillableRecv;
    }
  }
  if (notify) {
    flags |= kNewListener;
    // TSYNC with a listener is EINVAL unless failures are reported as ESRCH; the init
    // is single-threaded, so this changes nothing else.
    if (flags & kTsync) flags |= kTsyncEsrch;
  }
  for (const auto& k : kFlags) {
    if (!(flags & k.bit)) continue;
    unsigned probe = k.bit | (k.bit == kWaitKillableRecv ? kNewListener : 0);
    if (!kernel_accepts_flags(probe))
      return base::make_error(std::string("seccomp: flag ") + k.name +
                              " is not supported by this kernel");
  }
  return flags;
}

std::string json_string(std::string_view s) { return "\"" + base::json_escape(s) + "\""; }

// The top-level "pid" of a state document made by spec::state_to_json, which writes it
// before any user-controlled member (annotations), so the first match is the right one.
std::string_view state_pid(std::string_view state) {
  auto pos = state.find("\"pid\":");
  if (pos == std::string_view::npos) return "0";
  pos += 6;
  while (pos < state.size() && state[pos] == ' ') ++pos;
  size_t end = pos;
  while (end < state.size() && state[end] >= '0' && state[end] <= '9') ++end;
  return end > pos ? state.substr(pos, end - pos) : std::string_view("0");
}

}  // namespace

std::vector<std::string> supported_seccomp_flags() {
  std::vector<std::string> out;
  for (const auto& k : kFlags) {
    unsigned probe = k.bit | (k.bit == kWaitKillableRecv ? kNewListener : 0);
    if (kernel_accepts_flags(probe)) out.emplace_back(k.name);
  }
  return out;
}

Result<SeccompProgram> compile_seccomp(const spec::Seccomp& s) {
  uint32_t def = ZRUN_TRY(action_value(s.default_action, s.default_errno_ret));
  if (def == SCMP_ACT_NOTIFY)
    return base::make_error("seccomp: SCMP_ACT_NOTIFY cannot be the default action");
  Ctx ctx(seccomp_init(def));
  if (!ctx)
    return base::make_error("seccomp: init filter with default action `" + s.default_action +
                            "` failed");
  ZRUN_TRY(add_archs(ctx.get(), s.architectures));
  bool notify = false;
  for (const auto& sc : s.syscalls) ZRUN_TRY(add_syscall_rules(ctx.get(), sc, def, &notify));
  if (notify && s.listener_path.empty())
    return base::make_error("seccomp: SCMP_ACT_NOTIFY requires linux.seccomp.listenerPath");
  SeccompProgram prog;
  prog.filter = ZRUN_TRY(export_bpf(ctx.get()));
  // Refused here rather than by seccomp(2) in the child, where it would surface late.
  if (prog.filter.size() > BPF_MAXINSNS)
    return base::make_error("seccomp: the filter has " + std::to_string(prog.filter.size()) +
                            " instructions, more than the kernel's limit of " +
                            std::to_string(BPF_MAXINSNS));
  prog.flags = ZRUN_TRY(filter_flags(s, notify));
  prog.notify = notify;
  if (notify) {
    prog.listener_path = s.listener_path;
    prog.listener_message_head = "{\"ociVersion\":\"1.2.0\",\"fds\":[\"seccompFd\"],\"metadata\":" +
                                 json_string(s.listener_metadata);
  }
  return prog;
}

Result<int> install_seccomp(const SeccompProgram& prog) noexcept {
  struct sock_fprog fprog {};
  fprog.len = static_cast<unsigned short>(prog.filter.size());
  fprog.filter = const_cast<sock_filter*>(prog.filter.data());
  long r = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, prog.flags, &fprog);
  if (r < 0) return base::sys_error("seccomp: install filter");
  return (prog.flags & kNewListener) ? static_cast<int>(r) : -1;
}

std::string seccomp_listener_message(const SeccompProgram& prog, std::string_view state_json) {
  std::string m = prog.listener_message_head;
  m += ",\"pid\":";
  m += state_pid(state_json);
  m += ",\"state\":";
  m += state_json;
  m += "}";
  return m;
}

Result<void> apply_seccomp(const SeccompProgram& prog, int listener_sock,
                           std::string_view state_json) noexcept {
  int listener = ZRUN_TRY(install_seccomp(prog));
  if (listener < 0) return base::ok();
  base::UniqueFd owned(listener), sock(listener_sock);
  ZRUN_TRY_CTX(send_fd(sock.get(), listener, seccomp_listener_message(prog, state_json)),
               "seccomp: send listener fd to `" + prog.listener_path + "`");
  return base::ok();
}

}  // namespace zrun::iso
