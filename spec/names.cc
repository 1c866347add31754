// Name tables shared by the spec parser and the CLI: namespaces, signals, capabilities,
// rlimits.
#include <sched.h>
#include <sys/capability.h>
#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <string_view>

#include "base/sys.h"
#include "spec/config.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080  // Linux 5.6; missing from older libc headers
#endif

namespace zrun::spec {

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

struct SignalName {
  const char* name;
  int num;
};

// Linux x86/arm/generic numbering (asm-generic/signal.h); the odd arches (mips, alpha,
// sparc) are not targets.
constexpr SignalName kSignals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},   {"IOT", SIGIOT},   {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"KILL", SIGKILL},   {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE},   {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CLD", SIGCHLD},  {"CONT", SIGCONT},
    {"STOP", SIGSTOP},     {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
    {"URG", SIGURG},       {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF},     {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"POLL", SIGPOLL},
    {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

// "RTMIN", "RTMIN+3", "RTMAX-2" -> number, or 0 if not a real-time signal name.
int parse_rt_signal(const std::string& s) {
  // glibc's SIGRTMIN (34) leaves 32/33 to NPTL, matching what runc and kill(1) use.
  int base = 0, sign = 1;
  std::string rest;
  if (s.rfind("RTMIN", 0) == 0) {
    base = SIGRTMIN;
    rest = s.substr(5);
  } else if (s.rfind("RTMAX", 0) == 0) {
    base = SIGRTMAX;
    sign = -1;
    rest = s.substr(5);
  } else {
    return 0;
  }
  if (rest.empty()) return base;
  if (rest[0] != (sign > 0 ? '+' : '-')) return 0;
  auto n = base::parse_uint(rest.substr(1));
  if (!n || *n > static_cast<uint64_t>(SIGRTMAX - SIGRTMIN)) return 0;
  return base + sign * static_cast<int>(*n);
}

// Capability names by number, as of Linux 6.x (include/uapi/linux/capability.h).
constexpr const char* kCapNames[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};
constexpr int kNumCapNames = static_cast<int>(sizeof(kCapNames) / sizeof(kCapNames[0]));

// Highest capability number libcap knows of for names newer than our table.
int libcap_max_cap() {
  int bits = static_cast<int>(cap_max_bits());
  return bits > 0 ? bits - 1 : kNumCapNames - 1;
}

struct RlimitName {
  const char* name;
  int resource;
};

constexpr RlimitName kRlimits[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

}  // namespace

namespace {

// One row per namespace type: its config.json name, its /proc/PID/ns file, its flag.
struct NsInfo {
  NsType type;
  const char* name;
  const char* proc;
  int flag;
};

constexpr NsInfo kNamespaces[] = {
    {NsType::kPid, "pid", "pid", CLONE_NEWPID},
    {NsType::kNetwork, "network", "net", CLONE_NEWNET},
    {NsType::kMount, "mount", "mnt", CLONE_NEWNS},
    {NsType::kIpc, "ipc", "ipc", CLONE_NEWIPC},
    {NsType::kUts, "uts", "uts", CLONE_NEWUTS},
    {NsType::kUser, "user", "user", CLONE_NEWUSER},
    {NsType::kCgroup, "cgroup", "cgroup", CLONE_NEWCGROUP},
    {NsType::kTime, "time", "time", CLONE_NEWTIME},
};

const NsInfo& ns_info(NsType t) {
  for (const auto& i : kNamespaces)
    if (i.type == t) return i;
  return kNamespaces[0];  // unreachable: every enumerator has a row
}

}  // namespace

const char* ns_type_name(NsType t) { return ns_info(t).name; }
const char* ns_proc_name(NsType t) { return ns_info(t).proc; }
int ns_clone_flag(NsType t) { return ns_info(t).flag; }

base::Result<NsType> ns_type_from_name(const std::string& name) {
  for (const auto& i : kNamespaces)
    if (name == i.name) return i.type;
  return base::make_error("unknown namespace \"" + name + "\"");
}

base::Result<int> parse_signal(const std::string& s) {
  auto bad = [&](std::string why) {
    return base::make_error("invalid signal \"" + s + "\"" + (why.empty() ? "" : ": " + why));
  };
  if (s.empty()) return bad("empty");
  if (std::isdigit(static_cast<unsigned char>(s[0]))) {
    auto n = base::parse_uint(s);
    if (!n) return bad("");
    if (*n < 1 || *n > static_cast<uint64_t>(SIGRTMAX))
      return bad("out of range 1-" + std::to_string(SIGRTMAX));
    return static_cast<int>(*n);
  }
  std::string name = upper(s);
  if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
  for (const auto& sig : kSignals)
    if (name == sig.name) return sig.num;
  if (int rt = parse_rt_signal(name)) return rt;
  return bad("");
}

base::Result<int> parse_capability(const std::string& name) {
  std::string n = upper(name);
  // cap_from_name() also accepts bare numbers; OCI requires names.
  if (n.rfind("CAP_", 0) != 0) return base::make_error("unknown capability \"" + name + "\"");
  for (int i = 0; i < kNumCapNames; ++i)
    if (n == kCapNames[i]) return i;
  cap_value_t v = 0;
  if (cap_from_name(n.c_str(), &v) == 0 && v >= 0 && v <= libcap_max_cap())
    return static_cast<int>(v);
  return base::make_error("unknown capability \"" + name + "\"");
}

std::string capability_name(int cap) {
  if (cap >= 0 && cap < kNumCapNames) return kCapNames[cap];
  if (char* s = cap_to_name(static_cast<cap_value_t>(cap))) {
    std::string out = upper(s);
    cap_free(s);
    // libcap prints unknown numbers as plain digits; keep the CAP_ prefix for clarity.
    if (out.rfind("CAP_", 0) == 0) return out;
  }
  return "CAP_" + std::to_string(cap);
}

std::vector<std::string> all_capability_names() {
  std::vector<std::string> out(kCapNames, kCapNames + kNumCapNames);
  for (int cap = kNumCapNames; cap <= libcap_max_cap(); ++cap) {
    std::string n = capability_name(cap);
    if (n != "CAP_" + std::to_string(cap)) out.push_back(n);
  }
  return out;
}

base::Result<int> parse_rlimit(const std::string& name) {
  for (const auto& r : kRlimits)
    if (name == r.name) return r.resource;
  return base::make_error("unknown rlimit \"" + name + "\"");
}

}  // namespace zrun::spec
