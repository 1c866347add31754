#include "cgroups/cgfs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cerrno>

#include "base/sys.h"

namespace zrun::cg {

namespace {
std::vector<std::pair<std::string, std::string>>* g_trace = nullptr;
}  // namespace

void set_write_trace(std::vector<std::pair<std::string, std::string>>* trace) { g_trace = trace; }

void trace_action(const std::string& path, std::string_view value) {
  if (g_trace) g_trace->emplace_back(path, std::string(value));
}

base::Result<void> write_cg(const std::string& dir, std::string_view file, std::string_view value) {
  std::string path = base::join_path(dir, file);
  std::string what = "write `" + std::string(file) + "`";
  // No O_CREAT: cgroupfs files exist or the feature is absent (and on a fake tree a
  // missing file must fail the same way).
  auto fd = base::open_file(path, O_WRONLY | O_TRUNC);
  if (!fd) {
    if (fd.error().err == ENOENT)
      return base::make_error(what + ": not available on this host (no `" + path + "`)");
    return base::sys_error(what, fd.error().err);
  }
  auto r = base::write_all(fd->get(), value);
  if (!r) return base::sys_error(what, r.error().err);
  if (g_trace) g_trace->emplace_back(path, std::string(value));
  return base::ok();
}

base::Result<std::string> read_cg(const std::string& dir, std::string_view file) {
  auto r = base::read_file(base::join_path(dir, file));
  if (!r) return std::move(r).error();
  return std::string(base::trim(*r));
}

bool cg_file_exists(const std::string& dir, std::string_view file) {
  return base::path_exists(base::join_path(dir, file));
}

std::optional<std::string> keyed_value(std::string_view text, std::string_view key) {
  for (auto& line : base::split(text, '\n')) {
    auto t = base::trim(line);
    if (t.size() > key.size() && t.substr(0, key.size()) == key && t[key.size()] == ' ')
      return std::string(base::trim(t.substr(key.size() + 1)));
  }
  return std::nullopt;
}

namespace {

base::Result<void> collect_procs(const std::string& dir, std::vector<pid_t>& out, int depth) {
  if (depth > 64) return base::make_error("read `" + dir + "`: cgroup tree too deep");
  auto text = base::read_file(base::join_path(dir, "cgroup.procs"));
  if (!text) {
    // A child cgroup may vanish while we walk the tree.
    if (depth > 0 && text.error().err == ENOENT) return base::ok();
    return std::move(text).error();
  }
  for (auto& line : base::split(*text, '\n')) {
    if (base::trim(line).empty()) continue;
    auto v = base::parse_int(line);
    if (v) out.push_back(static_cast<pid_t>(*v));
  }
  auto names = base::list_subdirs(dir);
  if (!names) return depth > 0 ? base::ok() : base::Result<void>(std::move(names).error());
  for (auto& n : *names) ZRUN_TRY(collect_procs(base::join_path(dir, n), out, depth + 1));
  return base::ok();
}

}  // namespace

base::Result<std::vector<pid_t>> read_procs_recursive(const std::string& dir) {
  std::vector<pid_t> out;
  ZRUN_TRY(collect_procs(dir, out, 0));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool on_cgroupfs(const std::string& dir) {
  struct statfs st {};
  if (::statfs(dir.c_str(), &st) < 0) return false;
  return st.f_type == CGROUP_SUPER_MAGIC || st.f_type == CGROUP2_SUPER_MAGIC;
}

}  // namespace zrun::cg
