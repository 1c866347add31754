// The cgroup a container process is in now (see process_cgroup.h).
#include "cgroups/process_cgroup.h"

#include <fcntl.h>

#include "base/sys.h"

namespace zrun::cg {

using base::Result;

Result<std::string> process_cgroup_dir(const std::string& path, const std::string& unified_dir,
                                       std::string_view proc_pid_cgroup) {
  for (auto& line : base::split(proc_pid_cgroup, '\n')) {
    if (line.rfind("0::", 0) != 0) continue;
    std::string p(base::trim(std::string_view(line).substr(3)));
    if (base::clean_path(p) != p) return base::make_error("cgroup `" + p + "` is not clean");
    if (p != path && p.rfind(path + "/", 0) != 0)
      return base::make_error("cgroup `" + p + "` is outside the container's `" + path + "`");
    return unified_dir + p.substr(path.size());
  }
  return base::make_error("no cgroup v2 line");
}

Result<base::UniqueFd> open_process_cgroup(const Cgroup& cg, pid_t pid) {
  std::string ctx = "cgroup of pid " + std::to_string(pid);
  if (cg.unified_dir().empty()) return base::make_error(ctx + ": no cgroup v2 hierarchy");
  auto text = ZRUN_TRY_CTX(base::read_file("/proc/" + std::to_string(pid) + "/cgroup"), ctx);
  auto dir = ZRUN_TRY_CTX(process_cgroup_dir(cg.path(), cg.unified_dir(), text), ctx);
  return ZRUN_TRY_CTX(base::open_file(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), ctx);
}

}  // namespace zrun::cg
