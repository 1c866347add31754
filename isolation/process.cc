// Process attributes for the container's init. See process.h.
#include "isolation/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "base/log.h"
#include "base/sys.h"

namespace zrun::iso {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string cap_label(int cap) {
  char* n = ::cap_to_name(static_cast<cap_value_t>(cap));
  std::string s = n ? n : std::to_string(cap);
  if (n) ::cap_free(n);
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool contains(const std::vector<int>& v, int x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Go's strerror style (lower case), for the runc-compatible exec messages.
std::string lower_strerror(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// 0 if `path` is an executable non-directory (Go's findExecutable), else an errno.
int check_executable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0) return errno;
  if (S_ISDIR(st.st_mode) || (st.st_mode & 0111) == 0) return EACCES;
  return 0;
}

base::Result<void> drop_bounding(const std::vector<int>& keep) {
  int max = ::cap_max_bits();
  for (int cap = 0; cap < max; ++cap) {
    if (contains(keep, cap) || ::cap_get_bound(static_cast<cap_value_t>(cap)) <= 0) continue;
    if (::cap_drop_bound(static_cast<cap_value_t>(cap)) < 0)
      return base::sys_error("drop `" + cap_label(cap) + "` from the bounding set");
  }
  return base::ok();
}

base::Result<void> set_user(const spec::User& u) {
  auto sg = base::read_file("/proc/self/setgroups");
  // In a user ns whose gid_map was written with setgroups denied, setgroups is EPERM.
  bool deny = sg.ok() && base::trim(*sg) == "deny";
  if (!deny) {
    std::vector<gid_t> groups(u.additional_gids.begin(), u.additional_gids.end());
    if (::setgroups(groups.size(), groups.data()) < 0) return base::sys_error("setgroups");
  } else if (!u.additional_gids.empty()) {
    // As runc: silently dropping them could widen access (a group used to deny).
    return base::make_error(
        "process.user.additionalGids: setgroups is denied in this user namespace (rootless "
        "gid map written without newgidmap): map a range from /etc/subgid to use them");
  }
  if (::setresgid(u.gid, u.gid, u.gid) < 0)
    return base::sys_error("setresgid `" + std::to_string(u.gid) + "`");
  if (::setresuid(u.uid, u.uid, u.uid) < 0)
    return base::sys_error("setresuid `" + std::to_string(u.uid) + "`");
  return base::ok();
}

// Effective/permitted/inheritable. Capabilities the process no longer has (outside the
// bounding set of the host, e.g. CAP_SYS_RESOURCE here) are skipped with a warning,
// as runc does for unavailable capabilities.
base::Result<void> set_cap_sets(const spec::Capabilities& caps) {
  cap_t cur = ::cap_get_proc();
  if (!cur) return base::sys_error("cap_get_proc");
  cap_t next = ::cap_init();
  struct Free {
    cap_t a, b;
    ~Free() {
      ::cap_free(a);
      ::cap_free(b);
    }
  } free_caps{cur, next};
  std::vector<cap_value_t> p, e, i;
  std::string skipped;
  for (int c : caps.permitted) {
    cap_flag_value_t have = CAP_CLEAR;
    ::cap_get_flag(cur, static_cast<cap_value_t>(c), CAP_PERMITTED, &have);
    if (have == CAP_SET)
      p.push_back(static_cast<cap_value_t>(c));
    else
      skipped += " " + cap_label(c);
  }
  for (int c : caps.effective)
    if (std::find(p.begin(), p.end(), c) != p.end()) e.push_back(static_cast<cap_value_t>(c));
  for (int c : caps.inheritable) i.push_back(static_cast<cap_value_t>(c));
  if (!skipped.empty()) base::log_warn("ignoring unavailable capabilities:" + skipped);
  if ((!p.empty() &&
       ::cap_set_flag(next, CAP_PERMITTED, static_cast<int>(p.size()), p.data(), CAP_SET) < 0) ||
      (!e.empty() &&
       ::cap_set_flag(next, CAP_EFFECTIVE, static_cast<int>(e.size()), e.data(), CAP_SET) < 0) ||
      (!i.empty() &&
       ::cap_set_flag(next, CAP_INHERITABLE, static_cast<int>(i.size()), i.data(), CAP_SET) < 0))
    return base::sys_error("cap_set_flag");
  if (::cap_set_proc(next) < 0) return base::sys_error("set capabilities");
  return base::ok();
}

// An ambient capability needs to be both permitted and inheritable. runc's own default
// spec lists ambient caps without inheritable ones, and runc only warns when the raise
// fails (EPERM); do the same so such bundles run unchanged.
base::Result<void> raise_ambient(const std::vector<int>& ambient) {
  for (int c : ambient)
    if (::cap_set_ambient(static_cast<cap_value_t>(c), CAP_SET) < 0) {
      if (errno != EPERM) return base::sys_error("raise ambient capability `" + cap_label(c) + "`");
      base::log_debug("cannot raise ambient capability `" + cap_label(c) +
                      "`: not in the inheritable set");
    }
  return base::ok();
}

}  // namespace

base::Result<std::string> sysctl_path(const std::string& key) {
  std::string rel = key;
  // Path form keeps dots (interface names such as eth0.100); dotted form maps . -> /.
  if (rel.find('/') == std::string::npos) std::replace(rel.begin(), rel.end(), '.', '/');
  for (const auto& c : base::split(rel, '/'))
    if (c.empty() || c == "." || c == "..")
      return base::make_error("invalid sysctl key `" + key + "`");
  return "/proc/sys/" + rel;
}

base::Result<void> apply_sysctl(const std::map<std::string, std::string>& sysctl) {
  for (const auto& [key, value] : sysctl) {
    auto path = ZRUN_TRY(sysctl_path(key));
    auto r = base::write_file(path, value, O_WRONLY | O_TRUNC);
    if (!r.ok()) return base::sys_error("set sysctl `" + key + "`", r.error().err);
  }
  return base::ok();
}

base::Result<void> apply_rlimits(const std::vector<spec::Rlimit>& rlimits) {
  for (const auto& r : rlimits) {
    struct rlimit lim {};
    lim.rlim_cur = static_cast<rlim_t>(r.soft);
    lim.rlim_max = static_cast<rlim_t>(r.hard);
    if (::prlimit(0, static_cast<__rlimit_resource>(r.resource), &lim, nullptr) < 0) {
      int err = errno;
      struct rlimit cur {};
      if (err == EPERM &&
          ::prlimit(0, static_cast<__rlimit_resource>(r.resource), nullptr, &cur) == 0)
        return base::sys_error("setrlimit `" + r.type + "`: raising the hard limit above " +
                                   std::to_string(cur.rlim_max) +
                                   " needs CAP_SYS_RESOURCE in the initial user namespace "
                                   "(not available rootless)",
                               err);
      return base::sys_error("setrlimit `" + r.type + "`", err);
    }
  }
  return base::ok();
}

base::Result<void> set_oom_score_adj(pid_t pid, int score) {
  std::string path = "/proc/" + std::to_string(pid) + "/oom_score_adj";
  auto r = base::write_file(path, std::to_string(score), O_WRONLY);
  if (r || (r.error().err != EACCES && r.error().err != EPERM)) return r;
  auto cur = base::read_file(path);
  return base::sys_error("set oom_score_adj " + std::to_string(score) +
                             ": lowering it below the current " +
                             (cur ? std::string(base::trim(*cur)) : std::string("value")) +
                             " needs CAP_SYS_RESOURCE (not available rootless)",
                         r.error().err);
}

base::Result<std::string> find_executable(const std::string& arg0,
                                          const std::vector<std::string>& env,
                                          const std::string& cwd) {
  const std::string quoted = "exec: \"" + arg0 + "\": ";
  if (arg0.empty()) return base::make_error("exec: \"\": executable file not found in $PATH");
  if (arg0.find('/') != std::string::npos) {
    std::string path = arg0[0] == '/' ? arg0 : base::join_path(cwd.empty() ? "/" : cwd, arg0);
    int err = check_executable(path);
    if (err == 0) return path;
    if (err == EACCES) return base::make_error(quoted + "permission denied");
    return base::make_error(quoted + "stat " + arg0 + ": " + lower_strerror(err));
  }
  std::string search = kDefaultPath;
  for (const auto& e : env)
    if (base::starts_with(e, "PATH=")) search = e.substr(5);
  for (auto dir : base::split(search, ':')) {
    if (dir.empty()) dir = ".";
    std::string path = dir + "/" + arg0;
    if (dir[0] != '/') path = base::join_path(cwd.empty() ? "/" : cwd, path);
    if (check_executable(path) == 0) return path;
  }
  return base::make_error(quoted + "executable file not found in $PATH");
}

base::Result<void> finalize_identity(const spec::Process& process) {
  static const spec::Capabilities kNoCaps;
  const spec::Capabilities& caps = process.capabilities ? *process.capabilities : kNoCaps;
  // Until execve this process runs the runtime binary. Once its capabilities are no more
  // than the container's, a container process (an `exec`, while the init waits for
  // `start`) could open /proc/PID/exe and, after the runtime exits, reopen it for writing
  // (CVE-2019-5736). Non-dumpable makes /proc/PID/exe need CAP_SYS_PTRACE; execve resets it.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return base::sys_error("prctl PR_SET_DUMPABLE");
  ZRUN_TRY(drop_bounding(caps.bounding));
  // Keep the permitted set across the uid change; it is trimmed to the spec below.
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return base::sys_error("prctl PR_SET_KEEPCAPS");
  // As runc: try cwd as root first (the user may lack search permission on the way)
  // and again as the user (root squashing on NFS may refuse root).
  bool in_cwd = process.cwd.empty() || ::chdir(process.cwd.c_str()) == 0;
  ZRUN_TRY(set_user(process.user));
  ::umask(static_cast<mode_t>(process.user.umask.value_or(022)));
  if (!in_cwd && ::chdir(process.cwd.c_str()) < 0)
    return base::sys_error("chdir `" + process.cwd + "`");
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return base::sys_error("prctl PR_SET_KEEPCAPS");
  ZRUN_TRY(set_cap_sets(caps));
  ZRUN_TRY(raise_ambient(caps.ambient));
  if (process.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return base::sys_error("prctl PR_SET_NO_NEW_PRIVS");
  return base::ok();
}

base::Result<void> close_fds_above(int keep_max, bool at_exec) {
  unsigned first = static_cast<unsigned>(keep_max + 1);
  constexpr unsigned kCloseRangeCloexec = 1U << 2;  // linux/close_range.h, Linux 5.11
  if (::syscall(SYS_close_range, first, ~0U, at_exec ? kCloseRangeCloexec : 0U) == 0)
    return base::ok();
  // Kernels before 5.9: walk /proc/self/fd.
  auto names = ZRUN_TRY(base::list_dir("/proc/self/fd"));
  for (const auto& n : names) {
    auto fd = base::parse_int(n);
    if (!fd.ok() || *fd <= keep_max) continue;
    if (at_exec)
      ::fcntl(static_cast<int>(*fd), F_SETFD, FD_CLOEXEC);
    else
      ::close(static_cast<int>(*fd));
  }
  return base::ok();
}

}  // namespace zrun::iso
