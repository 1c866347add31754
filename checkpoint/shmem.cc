// Memory objects and fd objects: memfd, shared anonymous memory, unlinked files, eventfd
// (see shmem.h).
#include "checkpoint/shmem.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "base/sys.h"
#include "checkpoint/pages.h"

namespace zrun::ckpt {

using base::Result;

namespace {

constexpr std::string_view kDeleted = " (deleted)";
constexpr const char* kReadOnly = "#ro";  // tmp_ key suffix of a read-only fd

std::string proc(pid_t pid, const std::string& rest) {
  return "/proc/" + std::to_string(pid) + "/" + rest;
}

bool ends_with(std::string_view s, std::string_view e) {
  return s.size() >= e.size() && s.substr(s.size() - e.size()) == e;
}

Result<std::string> link_of(const std::string& magic) {
  char buf[4096];
  ssize_t n = ::readlink(magic.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return base::sys_error("readlink `" + magic + "`");
  return std::string(buf, static_cast<size_t>(n));
}

std::string hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%lx", static_cast<unsigned long>(v));
  return b;
}

// A value of a "key: value" fdinfo line ("" when absent).
std::string fdinfo_value(const std::string& info, const std::string& key) {
  for (auto& line : base::split(info, '\n'))
    if (base::starts_with(line, key + ":"))
      return std::string(base::trim(line.substr(key.size() + 1)));
  return "";
}

}  // namespace

// --- dump -----------------------------------------------------------------------------

// The object behind `magic` (an fd or map_files link of `pid`): its key, registered on
// first sight. "" when it is not an object of ours (SysV shm, a file inside the root ...).
Result<std::string> ObjectDump::classify(const std::string& who, const std::string& what,
                                         const std::string& magic, pid_t pid) {
  auto link = ZRUN_TRY(link_of(magic));
  struct stat st {};
  if (::stat(magic.c_str(), &st) < 0) return base::sys_error("stat `" + magic + "`");
  if (!S_ISREG(st.st_mode) || !ends_with(link, kDeleted) || link.empty() || link[0] != '/' ||
      base::starts_with(link, "/SYSV"))
    return std::string();
  std::string key = hex(st.st_dev) + ":" + hex(st.st_ino);
  if (objs_.count(key)) return key;
  ObjectImage o;
  o.key = key;
  std::string base = link.substr(0, link.size() - kDeleted.size());
  struct statfs fs {};
  if (::statfs(magic.c_str(), &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC)
    return base::make_error(who + " " + what + ": `" + link +
                            "` on hugetlbfs is not supported yet");
  if (base::starts_with(base, "/memfd:")) {
    o.kind = "memfd";
    o.name = base.substr(7);
  } else if (base == "/dev/zero") {
    o.kind = "shmem";
  } else {
    if (st.st_nlink != 0) return std::string();  // renamed over, not deleted: not ours
    o.kind = "deleted";
    o.name = base;
    std::string dir = base::dirname(base);
    struct stat ds {};
    if (::stat((proc(pid, "root") + dir).c_str(), &ds) < 0 || !S_ISDIR(ds.st_mode))
      return base::make_error(who + " " + what + ": deleted file `" + base +
                              "` whose directory is not in the container is not supported");
  }
  o.size = static_cast<uint64_t>(st.st_size);
  o.mode = st.st_mode & 07777;
  o.uid = st.st_uid;
  o.gid = st.st_gid;
  objs_[key] = Obj{std::move(o), magic};
  return key;
}

Result<bool> ObjectDump::fd(pid_t pid, const std::string& who, FdImage& f,
                            const std::string& fdinfo) {
  std::string magic = proc(pid, "fd/" + std::to_string(f.fd));
  std::string what = "fd " + std::to_string(f.fd);
  auto link = ZRUN_TRY(link_of(magic));
  if (link == "anon_inode:[eventfd]") {
    std::string id = fdinfo_value(fdinfo, "eventfd-id");
    std::string count = fdinfo_value(fdinfo, "eventfd-count");
    std::string sem = fdinfo_value(fdinfo, "eventfd-semaphore");
    if (id.empty() || count.empty() || sem.empty())
      return base::make_error(who + " " + what +
                              ": eventfd without eventfd-id and eventfd-semaphore in fdinfo " +
                              "(kernel before 6.6) is not supported");
    std::string key = "eventfd:" + id;
    if (!objs_.count(key)) {
      ObjectImage o;
      o.key = key;
      o.kind = "eventfd";
      o.count = std::stoull(count, nullptr, 16);
      o.semaphore = sem == "1";
      objs_[key] = Obj{std::move(o), ""};
    }
    f.kind = "eventfd";
    f.path = key;
    return true;
  }
  auto key = ZRUN_TRY(classify(who, what, magic, pid));
  if (key.empty()) return false;
  f.kind = objs_[key].img.kind;
  f.path = key;
  if (f.flags & O_PATH)
    return base::make_error(who + " " + what + ": an O_PATH fd of `" + link +
                            "` is not supported yet");
  return true;
}

Result<bool> ObjectDump::mapping(pid_t pid, const std::string& who, const Vma& v,
                                 const std::string& magic, std::string* key) {
  char range[64];
  std::snprintf(range, sizeof(range), "mapping %lx-%lx", static_cast<unsigned long>(v.start),
                static_cast<unsigned long>(v.end));
  *key = ZRUN_TRY(classify(who, range, magic, pid));
  return !key->empty();
}

Result<bool> ObjectDump::exe(pid_t pid, const std::string& who, std::string* key) {
  *key = ZRUN_TRY(classify(who, "executable", proc(pid, "exe"), pid));
  if (!key->empty() && objs_[*key].img.kind == "shmem") key->clear();
  return !key->empty();
}

Result<void> ObjectDump::save(const std::string& dir) {
  int n = 0;
  std::vector<char> buf(kHashChunk);
  for (auto& [key, o] : objs_) {
    if (o.img.kind == "eventfd") continue;
    auto in = ZRUN_TRY_CTX(base::open_file(o.source, O_RDONLY | O_CLOEXEC), "save " + key);
    struct stat st {};
    if (::fstat(in.get(), &st) < 0) return base::sys_error("fstat `" + o.source + "`");
    o.img.size = static_cast<uint64_t>(st.st_size);
    if (o.img.kind != "deleted") {
      int seals = ::fcntl(in.get(), F_GET_SEALS);
      o.img.seals = seals > 0 ? static_cast<uint32_t>(seals) : 0;
    }
    // Data extents (holes are not saved; a file system without SEEK_DATA: one extent).
    off_t at = 0, size = st.st_size;
    while (at < size) {
      off_t d = ::lseek(in.get(), at, SEEK_DATA);
      if (d < 0 && errno == ENXIO) break;
      if (d < 0) {
        o.img.extents = {{0, static_cast<uint64_t>(size)}};
        break;
      }
      off_t h = ::lseek(in.get(), d, SEEK_HOLE);
      if (h < 0 || h > size) h = size;
      o.img.extents.emplace_back(d, h - d);
      at = h;
    }
    if (o.img.extents.empty()) continue;
    o.img.file = "object-" + std::to_string(n++) + ".img";
    auto out = ZRUN_TRY(
        base::open_file(dir + "/" + o.img.file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    uint64_t h = 0;
    for (auto [off, len] : o.img.extents)
      for (uint64_t done = 0; done < len;) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(len - done, buf.size()));
        ssize_t got = ::pread(in.get(), buf.data(), want, static_cast<off_t>(off + done));
        if (got < 0) return base::sys_error("read `" + o.source + "`");
        if (got == 0) return base::make_error("`" + o.source + "` shrank while saving it");
        h = hash64(buf.data(), static_cast<size_t>(got), h);
        ZRUN_TRY(
            base::write_all(out.get(), std::string_view(buf.data(), static_cast<size_t>(got))));
        done += static_cast<uint64_t>(got);
      }
    o.img.hash = h;
  }
  return base::ok();
}

void ObjectDump::attach(TaskImage& img) {
  auto take = [&](const std::string& key) {
    auto it = objs_.find(key);
    if (it != objs_.end() && attached_.insert(key).second) img.objects.push_back(it->second.img);
  };
  for (auto& v : img.vmas)
    if (!v.object.empty()) take(v.object);
  for (auto& f : img.fds)
    if (ObjectRestore::handles(f.kind)) take(f.path);
  if (!img.exe_object.empty()) take(img.exe_object);
}

// --- restore --------------------------------------------------------------------------

ObjectRestore::ObjectRestore(const Image& img) : dir_(img.dir) {
  for (auto& t : img.tasks)
    for (auto& o : t.objects) objs_[o.key].img = &o;
}

bool ObjectRestore::handles(const std::string& kind) {
  return kind == "memfd" || kind == "shmem" || kind == "deleted" || kind == "eventfd";
}

void ObjectRestore::begin_task(const TaskImage& img, pid_t host) {
  task_ = &img;
  host_ = host;
  int top = 2;
  for (auto& f : img.fds) top = std::max(top, f.fd);
  base_fd_ = top + 16;
  tmp_.clear();
}

namespace {

Result<uint64_t> put(Tracee& tr, const std::string& s) {
  if (s.size() + 1 > kPageSize) return base::make_error("path too long: `" + s + "`");
  ZRUN_TRY(tr.write_mem(tr.scratch(), s.c_str(), s.size() + 1));
  return tr.scratch();
}

// Move a fd of the task above `base` (out of the way of the saved fd numbers).
Result<long> lift(Tracee& tr, long fd, int base) {
  long hi = ZRUN_TRY(tr.syscall_ok("fcntl F_DUPFD_CLOEXEC", SYS_fcntl, fd, F_DUPFD_CLOEXEC, base));
  ZRUN_TRY(tr.syscall(SYS_close, fd));
  return hi;
}

}  // namespace

Result<long> ObjectRestore::create(Tracee& tr, Obj& o) {
  const auto& img = *o.img;
  long fd = -1;
  if (img.kind == "memfd") {
    fd = ZRUN_TRY(tr.syscall_ok("memfd_create", SYS_memfd_create, ZRUN_TRY(put(tr, img.name)),
                                MFD_CLOEXEC | MFD_ALLOW_SEALING));
  } else if (img.kind == "shmem") {
    // A fresh shared anonymous object, kept through its map_files entry.
    if (!img.size) return base::make_error("empty shared anonymous object");
    long at = ZRUN_TRY(tr.syscall_ok("mmap shared anonymous", SYS_mmap, 0, img.size,
                                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                                     static_cast<uint64_t>(-1), 0));
    std::string mf = "/proc/self/map_files/" + hex(static_cast<uint64_t>(at)) + "-" +
                     hex(static_cast<uint64_t>(at) + img.size);
    auto r = tr.syscall_ok(("open `" + mf + "`").c_str(), SYS_openat, AT_FDCWD,
                           ZRUN_TRY(put(tr, mf)), O_RDWR | O_CLOEXEC);
    ZRUN_TRY(tr.syscall_ok("munmap", SYS_munmap, at, img.size));
    fd = ZRUN_TRY(std::move(r));
  } else if (img.kind == "deleted") {
    // Unlinked again, under its old name when that is free (so /proc/PID/fd says the
    // same), else O_TMPFILE in its old directory, else a temporary name.
    std::string dir = base::dirname(img.name);
    long r = ZRUN_TRY(tr.syscall(SYS_openat, AT_FDCWD, ZRUN_TRY(put(tr, img.name)),
                                 O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, img.mode & 07777));
    if (r >= 0) {
      ZRUN_TRY(tr.syscall_ok(("unlink `" + img.name + "`").c_str(), SYS_unlink,
                             ZRUN_TRY(put(tr, img.name))));
    } else {
      r = ZRUN_TRY(tr.syscall(SYS_openat, AT_FDCWD, ZRUN_TRY(put(tr, dir)),
                              O_TMPFILE | O_RDWR | O_CLOEXEC, img.mode & 07777));
    }
    if (r < 0 && r != -EOPNOTSUPP && r != -EISDIR && r != -EINVAL)
      return base::sys_error("open `" + dir + "` O_TMPFILE", static_cast<int>(-r));
    if (r < 0) {
      std::string tmp = base::join_path(dir, ".zrun-restore-" + std::to_string(host_) + "-" +
                                                 hex(reinterpret_cast<uintptr_t>(&o)));
      r = ZRUN_TRY(tr.syscall_ok(("create `" + tmp + "`").c_str(), SYS_openat, AT_FDCWD,
                                 ZRUN_TRY(put(tr, tmp)), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
                                 img.mode & 07777));
      ZRUN_TRY(tr.syscall_ok(("unlink `" + tmp + "`").c_str(), SYS_unlink, ZRUN_TRY(put(tr, tmp))));
    }
    fd = r;
  } else {
    return base::make_error("unknown object kind `" + img.kind + "`");
  }
  fd = ZRUN_TRY(lift(tr, fd, base_fd_));
  ZRUN_TRY_CTX(fill(o, static_cast<int>(fd)), img.kind + " `" + img.name + "`");
  return fd;
}

// The restorer's own fd on the object just created as `tmp_fd` in the task: size,
// contents (checksum verified), owner and mode.
Result<void> ObjectRestore::fill(Obj& o, int tmp_fd) {
  const auto& img = *o.img;
  o.ours =
      ZRUN_TRY(base::open_file(proc(host_, "fd/" + std::to_string(tmp_fd)), O_RDWR | O_CLOEXEC));
  int fd = o.ours.get();
  if (::ftruncate(fd, static_cast<off_t>(img.size)) < 0) return base::sys_error("ftruncate");
  if (!img.file.empty()) {
    auto in = ZRUN_TRY_CTX(base::open_file(dir_ + "/" + img.file, O_RDONLY | O_CLOEXEC), "image");
    std::vector<char> buf(kHashChunk);
    uint64_t h = 0;
    for (auto [off, len] : img.extents)
      for (uint64_t done = 0; done < len;) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(len - done, buf.size()));
        ssize_t got = ::read(in.get(), buf.data(), want);
        if (got <= 0) return base::make_error("image file `" + img.file + "` is truncated");
        h = hash64(buf.data(), static_cast<size_t>(got), h);
        if (::pwrite(fd, buf.data(), static_cast<size_t>(got), static_cast<off_t>(off + done)) !=
            got)
          return base::sys_error("write");
        done += static_cast<uint64_t>(got);
      }
    if (h != img.hash) return base::make_error("image file `" + img.file + "` is corrupted");
  }
  if (::fchown(fd, img.uid, img.gid) < 0) return base::sys_error("fchown");
  if (::fchmod(fd, img.mode) < 0) return base::sys_error("fchmod");
  return base::ok();
}

// Mappings that cannot write to the object are made from a read-only fd: a mapping keeps
// its file open, and a writable one would count as a writer (an executable must have none).
Result<long> ObjectRestore::get_for_map(Tracee& tr, const std::string& key, bool write) {
  long rw = ZRUN_TRY(get(tr, key));
  if (write) return rw;
  std::string ro_key = key + kReadOnly;
  if (auto it = tmp_.find(ro_key); it != tmp_.end()) return it->second;
  std::string self = "/proc/self/fd/" + std::to_string(rw);
  long r = ZRUN_TRY(tr.syscall_ok(("open `" + self + "`").c_str(), SYS_openat, AT_FDCWD,
                                  ZRUN_TRY(put(tr, self)), O_RDONLY | O_CLOEXEC));
  long fd = ZRUN_TRY(lift(tr, r, base_fd_));
  tmp_[ro_key] = fd;
  return fd;
}

Result<long> ObjectRestore::get(Tracee& tr, const std::string& key) {
  if (auto it = tmp_.find(key); it != tmp_.end()) return it->second;
  auto it = objs_.find(key);
  if (it == objs_.end() || !it->second.img)
    return base::make_error("object `" + key + "` is not in the image");
  auto& o = it->second;
  long fd;
  if (o.holder.empty()) {
    fd = ZRUN_TRY(create(tr, o));
  } else {
    long r =
        ZRUN_TRY(tr.syscall(SYS_openat, AT_FDCWD, ZRUN_TRY(put(tr, o.holder)), O_RDWR | O_CLOEXEC));
    if (r == -ETXTBSY)  // an executable: no writer allowed
      r = ZRUN_TRY(
          tr.syscall(SYS_openat, AT_FDCWD, ZRUN_TRY(put(tr, o.holder)), O_RDONLY | O_CLOEXEC));
    if (r < 0) return base::sys_error("open `" + o.holder + "`", static_cast<int>(-r));
    fd = ZRUN_TRY(lift(tr, r, base_fd_));
  }
  tmp_[key] = fd;
  return fd;
}

Result<void> ObjectRestore::install_fd(Tracee& tr, const FdImage& f, int keep_flags) {
  int cloexec = f.cloexec ? O_CLOEXEC : 0;
  long fd = -1;
  if (f.kind == "eventfd") {
    auto it = objs_.find(f.path);
    if (it == objs_.end() || !it->second.img)
      return base::make_error("object `" + f.path + "` is not in the image");
    auto& o = it->second;
    if (o.holder_fd < 0) {
      int flags = (o.img->semaphore ? EFD_SEMAPHORE : 0) | (f.flags & O_NONBLOCK) |
                  (f.cloexec ? EFD_CLOEXEC : 0);
      fd = ZRUN_TRY(tr.syscall_ok("eventfd2", SYS_eventfd2, 0, flags));
      if (o.img->count) {
        ZRUN_TRY(tr.write_mem(tr.scratch(), &o.img->count, sizeof(o.img->count)));
        long w = ZRUN_TRY(tr.syscall_ok("write eventfd", SYS_write, fd, tr.scratch(), 8));
        if (w != 8) return base::make_error("eventfd: short write");
      }
    } else if (o.holder_vpid == task_->vpid) {
      fd = ZRUN_TRY(tr.syscall_ok("fcntl F_DUPFD", SYS_fcntl, o.holder_fd,
                                  f.cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0));
    } else {
      long pfd = ZRUN_TRY(tr.syscall_ok("pidfd_open", SYS_pidfd_open, o.holder_vpid, 0));
      auto r = tr.syscall_ok("pidfd_getfd", SYS_pidfd_getfd, pfd, o.holder_fd, 0);
      ZRUN_TRY(tr.syscall(SYS_close, pfd));
      fd = ZRUN_TRY(std::move(r));
      ZRUN_TRY(tr.syscall_ok("fcntl F_SETFD", SYS_fcntl, fd, F_SETFD, f.cloexec ? FD_CLOEXEC : 0));
    }
    if (o.holder_fd < 0) {
      o.holder_vpid = task_->vpid;
      o.holder_fd = f.fd;
    }
  } else {
    long tmp = ZRUN_TRY(get(tr, f.path));
    std::string self = "/proc/self/fd/" + std::to_string(tmp);
    fd = ZRUN_TRY(tr.syscall_ok(("open `" + self + "`").c_str(), SYS_openat, AT_FDCWD,
                                ZRUN_TRY(put(tr, self)), (f.flags & keep_flags) | cloexec));
  }
  if (fd != f.fd) {
    ZRUN_TRY(tr.syscall_ok("dup3", SYS_dup3, fd, f.fd, cloexec));
    ZRUN_TRY(tr.syscall(SYS_close, fd));
  }
  if (f.pos && f.kind != "eventfd")
    ZRUN_TRY(tr.syscall_ok("lseek", SYS_lseek, f.fd, f.pos, SEEK_SET));
  return base::ok();
}

// The kernel refuses an exe file that anyone has open for writing (EACCES): the task's
// temporary fd and the restorer's own go first (memfd seals are added now, while we still
// can); later opens of the object find it through this task, read-only where writing is
// refused (ETXTBSY).
Result<long> ObjectRestore::open_exe(Tracee& tr, const std::string& key) {
  long tmp = ZRUN_TRY(get(tr, key));
  std::string self = "/proc/self/fd/" + std::to_string(tmp);
  long fd = ZRUN_TRY(tr.syscall_ok(("open `" + self + "`").c_str(), SYS_openat, AT_FDCWD,
                                   ZRUN_TRY(put(tr, self)), O_RDONLY | O_CLOEXEC));
  auto& o = objs_[key];
  if (o.holder.empty()) {
    for (auto& v : task_->vmas)
      if (o.holder.empty() && v.object == key)
        o.holder = "/proc/" + std::to_string(task_->vpid) + "/map_files/" + hex(v.start) + "-" +
                   hex(v.end);
    if (o.holder.empty()) o.holder = "/proc/" + std::to_string(task_->vpid) + "/exe";
  }
  ZRUN_TRY(tr.syscall(SYS_close, tmp));
  tmp_.erase(key);
  if (o.ours) {
    ZRUN_TRY(seal(o));
    o.ours.reset();
  }
  return fd;
}

Result<void> ObjectRestore::end_task(Tracee& tr) {
  for (auto& [key, fd] : tmp_) {
    auto it = objs_.find(key);  // not for the read-only fds ("<key>#ro")
    if (it != objs_.end() && it->second.holder.empty()) {
      auto& o = it->second;
      for (auto& f : task_->fds)
        if (f.path == key && ObjectRestore::handles(f.kind)) {
          o.holder = "/proc/" + std::to_string(task_->vpid) + "/fd/" + std::to_string(f.fd);
          break;
        }
      for (auto& v : task_->vmas)
        if (o.holder.empty() && v.object == key)
          o.holder = "/proc/" + std::to_string(task_->vpid) + "/map_files/" + hex(v.start) + "-" +
                     hex(v.end);
    }
    ZRUN_TRY(tr.syscall(SYS_close, fd));
  }
  tmp_.clear();
  return base::ok();
}

Result<void> ObjectRestore::seal(Obj& o) {
  if (o.img->kind != "memfd" || !o.img->seals) return base::ok();
  if (::fcntl(o.ours.get(), F_ADD_SEALS, o.img->seals) < 0)
    return base::sys_error("memfd `" + o.img->name + "`: add seals " +
                           std::to_string(o.img->seals));
  return base::ok();
}

Result<void> ObjectRestore::finish() {
  for (auto& [key, o] : objs_)
    if (o.img && o.ours) ZRUN_TRY(seal(o));
  return base::ok();
}

}  // namespace zrun::ckpt
