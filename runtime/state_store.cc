#include "runtime/state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <nlohmann/json.hpp>

#include "base/sys.h"

namespace zrun::rt {

using base::Result;
using nlohmann::json;

Result<void> validate_id(const std::string& id) {
  if (id.empty()) return base::make_error("container id must not be empty");
  if (id.size() > 1024) return base::make_error("container id is longer than 1024 bytes");
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(id[0]))
    return base::make_error("invalid container id \"" + id +
                            "\": must start with a letter or digit");
  for (char c : id)
    if (!alnum(c) && c != '_' && c != '.' && c != '-')
      return base::make_error("invalid container id \"" + id +
                              "\": only [A-Za-z0-9_.-] are allowed");
  return base::ok();
}

namespace {

Result<base::UniqueFd> lock_dir(const std::string& path, const std::string& id, bool exclusive) {
  auto fd = base::open_file(path, O_RDONLY | O_DIRECTORY);
  if (!fd) {
    if (fd.error().err == ENOENT) return base::make_error("container `" + id + "` does not exist");
    return std::move(fd).error();
  }
  int r;
  do {
    r = ::flock(fd->get(), exclusive ? LOCK_EX : LOCK_SH);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return base::sys_error("lock `" + path + "`");
  // The directory may have been removed while we waited for the lock.
  struct stat st {};
  if (::fstat(fd->get(), &st) < 0 || st.st_nlink == 0)
    return base::make_error("container `" + id + "` does not exist");
  return std::move(*fd);
}

}  // namespace

Result<base::UniqueFd> StateStore::create_dir(const std::string& id) const {
  ZRUN_TRY(validate_id(id));
  ZRUN_TRY_CTX(base::mkdir_p(root_, 0700), "create state root");
  std::string d = dir(id);
  if (::mkdir(d.c_str(), 0700) < 0) {
    if (errno == EEXIST) return base::make_error("container `" + id + "` already exists");
    return base::sys_error("mkdir `" + d + "`");
  }
  return lock_dir(d, id, true);
}

Result<base::UniqueFd> StateStore::lock(const std::string& id, bool exclusive) const {
  ZRUN_TRY(validate_id(id));
  return lock_dir(dir(id), id, exclusive);
}

Result<ContainerRecord> StateStore::read(const std::string& id) const {
  std::string path = dir(id) + "/state.json";
  auto text = base::read_file(path);
  if (!text) {
    if (text.error().err == ENOENT)
      return base::make_error("container `" + id + "` does not exist");
    return std::move(text).error();
  }
  try {
    auto j = json::parse(*text);
    ContainerRecord r;
    r.id = j.at("id").get<std::string>();
    r.bundle = j.value("bundle", "");
    r.oci_version = j.value("ociVersion", "");
    r.rootfs = j.value("rootfs", "");
    r.created = j.value("created", "");
    r.owner_uid = j.value("owner", 0u);
    r.pid = j.value("pid", 0);
    r.pid_start_time = j.value("pidStartTime", uint64_t{0});
    r.annotations = j.value("annotations", std::map<std::string, std::string>{});
    r.cgroup = j.contains("cgroup") ? j["cgroup"].dump() : "";
    r.poststart_hooks = j.value("poststartHooks", false);
    r.poststop_hooks = j.value("poststopHooks", false);
    return r;
  } catch (const std::exception& e) {
    return base::make_error("read `" + path + "`: " + e.what());
  }
}

Result<void> StateStore::write(const ContainerRecord& r) const {
  json j = {{"id", r.id},
            {"bundle", r.bundle},
            {"ociVersion", r.oci_version},
            {"rootfs", r.rootfs},
            {"created", r.created},
            {"owner", r.owner_uid},
            {"pid", r.pid},
            {"pidStartTime", r.pid_start_time},
            {"annotations", r.annotations},
            {"poststartHooks", r.poststart_hooks},
            {"poststopHooks", r.poststop_hooks}};
  if (!r.cgroup.empty()) j["cgroup"] = json::parse(r.cgroup, nullptr, false);
  // Atomic (rename) but not fsync'd: the state of running containers cannot outlive a
  // reboot, the root is normally a tmpfs (/run), and on disk the two fsyncs cost ~0.6 ms
  // per create (docs/benchmarks.md).
  return base::write_file_atomic(dir(r.id) + "/state.json", j.dump(), 0600, /*durable=*/false);
}

Result<std::vector<std::string>> StateStore::list_ids() const {
  if (!base::is_dir(root_)) return std::vector<std::string>{};
  auto names = ZRUN_TRY(base::list_dir(root_));
  std::vector<std::string> ids;
  for (auto& n : names)
    if (validate_id(n).ok() && base::is_dir(dir(n))) ids.push_back(n);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<void> StateStore::remove(const std::string& id) const { return base::remove_tree(dir(id)); }

std::string rfc3339_now() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

}  // namespace zrun::rt
