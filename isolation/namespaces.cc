#include "isolation/namespaces.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>

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
}  // namespace

Result<void> write_id_maps(pid_t pid, const std::vector<spec::IdMapping>& uids,
                           const std::vector<spec::IdMapping>& gids) {
  std::string base = "/proc/" + std::to_string(pid);
  // Each map must be written in a single write(2) (user_namespaces(7)).
  if (!uids.empty())
    ZRUN_TRY_CTX(base::write_file(base + "/uid_map", format_map(uids), O_WRONLY), "write uid map");
  if (!gids.empty())
    ZRUN_TRY_CTX(base::write_file(base + "/gid_map", format_map(gids), O_WRONLY), "write gid map");
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
