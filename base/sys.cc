#include "base/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <ctime>

namespace zrun::base {

namespace {

template <class F>
auto retry_eintr(F f) {
  decltype(f()) r;
  do {
    r = f();
  } while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace

Result<UniqueFd> open_file(const std::string& path, int flags, mode_t mode) {
  int fd = retry_eintr([&] { return ::open(path.c_str(), flags | O_CLOEXEC, mode); });
  if (fd < 0) return sys_error("open `" + path + "`");
  return UniqueFd(fd);
}

Result<UniqueFd> open_at(int dirfd, const std::string& path, int flags, mode_t mode) {
  int fd = retry_eintr([&] { return ::openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode); });
  if (fd < 0) return sys_error("open `" + path + "`");
  return UniqueFd(fd);
}

Result<UniqueFd> open_in_root(int rootfd, const std::string& path, int flags, mode_t mode) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path;
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  if (rel.empty()) rel = ".";
  long fd =
      retry_eintr([&] { return ::syscall(SYS_openat2, rootfd, rel.c_str(), &how, sizeof(how)); });
  if (fd < 0) return sys_error("open `" + path + "` in root");
  return UniqueFd(static_cast<int>(fd));
}

Result<std::string> read_fd(int fd) {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = retry_eintr([&] { return ::read(fd, buf, sizeof(buf)); });
    if (n < 0) return sys_error("read");
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> read_file(const std::string& path) {
  auto fd = ZRUN_TRY(open_file(path, O_RDONLY));
  auto r = read_fd(fd.get());
  if (!r) return sys_error("read `" + path + "`", r.error().err);
  return r;
}

Result<void> write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = retry_eintr([&] { return ::write(fd, data.data(), data.size()); });
    if (n < 0) return sys_error("write");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

Result<void> write_file(const std::string& path, std::string_view data, int flags, mode_t mode) {
  if (flags == 0) flags = O_WRONLY | O_CREAT | O_TRUNC;
  auto fd = ZRUN_TRY(open_file(path, flags, mode));
  auto r = write_all(fd.get(), data);
  if (!r) return sys_error("write `" + path + "`", r.error().err);
  return ok();
}

Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode,
                               bool durable) {
  std::string tmp = path + ".tmp";
  {
    auto fd = ZRUN_TRY(open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
    auto r = write_all(fd.get(), data);
    if (!r) {
      ::unlink(tmp.c_str());
      return sys_error("write `" + tmp + "`", r.error().err);
    }
    if (durable && ::fsync(fd.get()) < 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return sys_error("fsync `" + tmp + "`", e);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return sys_error("rename `" + tmp + "`", e);
  }
  if (durable) {
    auto dfd = open_file(dirname(path), O_RDONLY | O_DIRECTORY);
    if (dfd) ::fsync(dfd->get());
  }
  return ok();
}

Result<void> mkdir_p(const std::string& path, mode_t mode) {
  std::string cur;
  for (auto& part : split(path, '/')) {
    if (part.empty()) {
      if (cur.empty()) cur = "/";
      continue;
    }
    if (!cur.empty() && cur.back() != '/') cur += '/';
    cur += part;
    if (::mkdir(cur.c_str(), mode) < 0 && errno != EEXIST) return sys_error("mkdir `" + cur + "`");
  }
  return ok();
}

namespace {

Result<void> remove_tree_at(int parent, const std::string& name, const std::string& display,
                            dev_t dev) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return ok();
    return sys_error("stat `" + display + "`");
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(parent, name.c_str(), 0) < 0 && errno != ENOENT)
      return sys_error("unlink `" + display + "`");
    return ok();
  }
  if (st.st_dev != dev) return make_error("remove `" + display + "`: is a mount point");
  {
    auto fd = ZRUN_TRY(open_at(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    int dupfd = ::dup(fd.get());
    if (dupfd < 0) return sys_error("dup");
    DIR* d = ::fdopendir(dupfd);
    if (!d) {
      ::close(dupfd);
      return sys_error("opendir `" + display + "`");
    }
    std::vector<std::string> names;
    while (auto* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n == "." || n == "..") continue;
      names.emplace_back(n);
    }
    ::closedir(d);
    for (auto& n : names) ZRUN_TRY(remove_tree_at(fd.get(), n, display + "/" + n, dev));
  }
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT)
    return sys_error("rmdir `" + display + "`");
  return ok();
}

}  // namespace

Result<void> remove_tree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0) {
    if (errno == ENOENT) return ok();
    return sys_error("stat `" + path + "`");
  }
  auto parent = ZRUN_TRY(open_file(dirname(path), O_RDONLY | O_DIRECTORY));
  return remove_tree_at(parent.get(), basename(path), path, st.st_dev);
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

namespace {

// The names in `path` except "." and "..", filtered by keep(dir, entry).
template <class Keep>
Result<std::vector<std::string>> read_names(const std::string& path, Keep keep) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return sys_error("opendir `" + path + "`");
  std::vector<std::string> out;
  while (auto* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != ".." && keep(d, e)) out.emplace_back(n);
  }
  ::closedir(d);
  return out;
}

}  // namespace

Result<std::vector<std::string>> list_dir(const std::string& path) {
  return read_names(path, [](DIR*, struct dirent*) { return true; });
}

Result<std::vector<std::string>> list_subdirs(const std::string& path) {
  return read_names(path, [](DIR* d, struct dirent* e) {
    if (e->d_type != DT_UNKNOWN) return e->d_type == DT_DIR;
    struct stat st {};
    return ::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
  });
}

std::string clean_path(std::string_view path) {
  bool abs = !path.empty() && path.front() == '/';
  std::vector<std::string> parts;
  for (auto& p : split(path, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..") {
      if (!parts.empty() && parts.back() != "..")
        parts.pop_back();
      else if (!abs)
        parts.push_back(p);
      continue;
    }
    parts.push_back(p);
  }
  std::string out = abs ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  if (out.empty()) out = ".";
  return out;
}

std::string join_path(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a);
  if (out.back() != '/') out += '/';
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  out += b;
  return out;
}

std::string dirname(std::string_view path) {
  auto p = path.find_last_of('/');
  if (p == std::string_view::npos) return ".";
  if (p == 0) return "/";
  return std::string(path.substr(0, p));
}

std::string basename(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  auto p = path.find_last_of('/');
  if (p == std::string_view::npos) return std::string(path);
  return std::string(path.substr(p + 1));
}

long clone3_fork(uint64_t flags, int cgroup_fd, int* pidfd) {
  struct clone_args args {};
  args.flags = flags | CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
  args.pidfd = reinterpret_cast<uint64_t>(pidfd);
  args.exit_signal = SIGCHLD;
  args.cgroup = cgroup_fd >= 0 ? static_cast<uint64_t>(cgroup_fd) : 0;
  return ::syscall(SYS_clone3, &args, sizeof(args));
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

Result<int> pidfd_open(pid_t pid) {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return sys_error("pidfd_open " + std::to_string(pid));
  return static_cast<int>(fd);
}

Result<uint64_t> proc_start_time(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return std::move(stat).error();
  // comm may contain spaces and parens: fields resume after the last ')'.
  auto rp = stat->rfind(')');
  if (rp == std::string::npos) return make_error("parse /proc/" + std::to_string(pid) + "/stat");
  auto fields = split(std::string_view(*stat).substr(rp + 2), ' ');
  // fields[0] is field 3 (state); starttime is field 22 -> index 19.
  if (fields.size() < 20) return make_error("parse /proc/" + std::to_string(pid) + "/stat");
  return parse_uint(fields[19]);
}

bool pid_alive(pid_t pid) {
  if (pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

Result<int> wait_pid(pid_t pid, int options) {
  int status = 0;
  pid_t r = retry_eintr([&] { return ::waitpid(pid, &status, options); });
  if (r < 0) return sys_error("waitpid " + std::to_string(pid));
  if (r == 0) return -1;  // WNOHANG and still running
  return status;
}

int exit_code_from_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

std::string user_name(uint32_t uid) {
  auto passwd = read_file("/etc/passwd");
  std::string want = std::to_string(uid);
  if (passwd)
    for (auto& line : split(*passwd, '\n')) {
      auto f = split(line, ':');
      if (f.size() > 2 && f[2] == want) return f[0];
    }
  return want;
}

void sleep_ms(unsigned ms) {
  struct timespec ts {
    static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000L
  };
  while (::nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\n' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto p = s.find(sep, start);
    if (p == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      break;
    }
    out.emplace_back(s.substr(start, p - start));
    start = p + 1;
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

Result<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  auto t = trim(s);
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size() || t.empty())
    return make_error("invalid integer \"" + std::string(s) + "\"");
  return v;
}

Result<uint64_t> parse_uint(std::string_view s) {
  uint64_t v = 0;
  auto t = trim(s);
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size() || t.empty())
    return make_error("invalid unsigned integer \"" + std::string(s) + "\"");
  return v;
}

}  // namespace zrun::base
