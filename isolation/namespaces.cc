#include "isolation/namespaces.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys.h"

namespace zrun::iso {

using base::Result;

Result<base::UniqueFd> open_namespace(const std::string& path, spec::NsType t) {
  auto fd = ZRUN_TRY_CTX(base::open_file(path, O_RDONLY),
                         std::string("join ") + spec::ns_type_name(t) + " namespace");
  int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0)
    return base::sys_error(std::string("join ") + spec::ns_type_name(t) + " namespace: `" + path +
                           "` is not a namespace");
  if (type != spec::ns_clone_flag(t))
    return base::make_error(std::string("join ") + spec::ns_type_name(t) + " namespace: `" + path +
                            "` is a namespace of another type");
  return fd;
}

Result<void> join_namespace(int fd, spec::NsType t, const std::string& path) {
  if (::setns(fd, spec::ns_clone_flag(t)) < 0)
    return base::sys_error(std::string("setns ") + spec::ns_type_name(t) + " `" + path + "`");
  return base::ok();
}

namespace {

std::string format_map(const std::vector<spec::IdMapping>& m) {
  std::string s;
  for (auto& e : m)
    s += std::to_string(e.container_id) + " " + std::to_string(e.host_id) + " " +
         std::to_string(e.size) + "\n";
  return s;
}

// The one map an unprivileged process may write itself (user_namespaces(7)): a single
// line mapping its own effective id.
bool own_id_only(const std::vector<spec::IdMapping>& m, uint32_t own) {
  return m.size() == 1 && m[0].host_id == own && m[0].size == 1;
}

// Run the setuid helper `tool` (newuidmap/newgidmap from shadow's uidmap package) as
// `tool PID inside outside count...`; it checks the ranges against /etc/subuid or
// /etc/subgid. Its stderr becomes the error message.
Result<void> run_map_helper(const char* tool, pid_t pid, const std::vector<spec::IdMapping>& m) {
  std::vector<std::string> args = {tool, std::to_string(pid)};
  for (auto& e : m)
    for (uint32_t v : {e.container_id, e.host_id, e.size}) args.push_back(std::to_string(v));
  std::string cmd;
  for (auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) < 0) return base::sys_error("pipe");
  base::UniqueFd rd(pipefd[0]), wr(pipefd[1]);
  auto argv = base::c_strings(args);
  pid_t child = ::fork();
  if (child < 0) return base::sys_error("fork `" + cmd + "`");
  if (child == 0) {
    ::dup2(wr.get(), 2);
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
    }
    ::execvp(tool, argv.data());
    ::_exit(errno == ENOENT ? 127 : 126);
  }
  wr.reset();
  auto err = base::read_fd(rd.get());
  int status = ZRUN_TRY(base::wait_pid(child));
  int code = base::exit_code_from_status(status);
  if (code == 127)
    return base::make_error(std::string(tool) +
                            " not found: mapping more than your own id needs newuidmap and "
                            "newgidmap (Debian package uidmap)");
  if (code != 0) {
    std::string text = err.ok() ? std::string(base::trim(*err)) : "";
    return base::make_error("`" + cmd + "` failed (exit " + std::to_string(code) + ")" +
                            (text.empty() ? "" : ": " + text));
  }
  return base::ok();
}

}  // namespace

Result<void> write_id_maps(pid_t pid, const std::vector<spec::IdMapping>& uids,
                           const std::vector<spec::IdMapping>& gids) {
  std::string base = "/proc/" + std::to_string(pid);
  bool root = ::geteuid() == 0;
  // Each map must be written in a single write(2) (user_namespaces(7)).
  if (!uids.empty()) {
    if (root || own_id_only(uids, ::geteuid()))
      ZRUN_TRY_CTX(base::write_file(base + "/uid_map", format_map(uids), O_WRONLY),
                   "write uid map");
    else
      ZRUN_TRY_CTX(run_map_helper("newuidmap", pid, uids), "write uid map");
  }
  if (!gids.empty()) {
    if (root) {
      ZRUN_TRY_CTX(base::write_file(base + "/gid_map", format_map(gids), O_WRONLY),
                   "write gid map");
    } else if (own_id_only(gids, ::getegid())) {
      // Without CAP_SETGID in the parent namespace the kernel accepts our own gid only
      // once setgroups(2) is disabled for the namespace (Linux 3.19, CVE-2014-8989): the
      // container then cannot have supplementary groups.
      ZRUN_TRY_CTX(base::write_file(base + "/setgroups", "deny", O_WRONLY), "write gid map");
      ZRUN_TRY_CTX(base::write_file(base + "/gid_map", format_map(gids), O_WRONLY),
                   "write gid map");
    } else {
      ZRUN_TRY_CTX(run_map_helper("newgidmap", pid, gids), "write gid map");
    }
  }
  return base::ok();
}

Result<void> enter_new_time_ns(const std::map<std::string, spec::TimeOffset>& offsets) {
  if (::unshare(CLONE_NEWTIME) < 0) return base::sys_error("unshare time namespace");
  std::string text;
  for (auto& [clock, off] : offsets)
    text += clock + " " + std::to_string(off.secs) + " " + std::to_string(off.nanosecs) + "\n";
  if (!text.empty())
    ZRUN_TRY_CTX(base::write_file("/proc/self/timens_offsets", text, O_WRONLY),
                 "set time namespace offsets");
  auto fd = ZRUN_TRY(base::open_file("/proc/self/ns/time_for_children", O_RDONLY));
  if (::setns(fd.get(), CLONE_NEWTIME) < 0) return base::sys_error("enter time namespace");
  return base::ok();
}

}  // namespace zrun::iso
