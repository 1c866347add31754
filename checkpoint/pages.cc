#include "checkpoint/pages.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/scope_exit.h"
#include "base/sys.h"
#include "checkpoint/image.h"
#include "checkpoint/proc.h"

namespace zrun::ckpt {

using base::Result;

namespace {

// One hash chunk at a time: the bytes are still in the cache when they are hashed and
// written (a 16 MiB buffer made the hash and the write read them from RAM again).
constexpr size_t kBuffer = kHashChunk;

bool read_remote(pid_t pid, uint64_t addr, char* buf, size_t len) {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  return n == static_cast<ssize_t>(len);
}

// process_vm_writev copies straight into the task's pages; /proc/PID/mem (write_mem) goes
// through a bounce page and is needed only where the area is not writable.
Result<void> write_remote(Tracee& t, uint64_t addr, const char* buf, size_t len) {
  iovec local{const_cast<char*>(buf), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = ::process_vm_writev(t.pid(), &local, 1, &remote, 1, 0);
  if (n == static_cast<ssize_t>(len)) return base::ok();
  size_t done = n > 0 ? static_cast<size_t>(n) : 0;
  return t.write_mem(addr + done, buf + done, len - done);
}

}  // namespace

PageWriter::~PageWriter() { stop(); }

void PageWriter::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Result<void> PageWriter::open(const std::string& path) {
  stop();
  path_ = path;
  fd_ = ZRUN_TRY(base::open_file(path, O_WRONLY | O_CREAT | O_TRUNC, 0600));
  offset_ = 0;
  cur_ = -1;
  free_.clear();
  full_.clear();
  for (int i = 0; i < kSlots; i++) {
    // Not zeroed: only the part a small dump fills gets its pages faulted in.
    if (!bufs_[i]) bufs_[i].reset(new char[kBuffer]);
    len_[i] = 0;
    free_.push_back(i);
  }
  busy_ = stop_ = false;
  err_.reset();
  thread_ = std::thread(&PageWriter::writer_loop, this);
  return base::ok();
}

void PageWriter::writer_loop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || !full_.empty(); });
    if (full_.empty()) return;
    int s = full_.front();
    full_.pop_front();
    busy_ = true;
    bool failed = err_.has_value();
    l.unlock();
    Result<void> r = base::ok();
    if (!failed) r = base::write_all(fd_.get(), std::string_view(bufs_[s].get(), len_[s]));
    l.lock();
    if (!r && !err_) err_ = base::context(std::move(r).error(), "write `" + path_ + "`");
    len_[s] = 0;
    free_.push_back(s);
    busy_ = false;
    cv_.notify_all();
  }
}

Result<int> PageWriter::take_slot() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !free_.empty() || err_.has_value(); });
  if (err_) return *err_;
  int s = free_.front();
  free_.pop_front();
  return s;
}

void PageWriter::submit() {
  if (cur_ < 0) return;
  if (len_[cur_] == 0) return;  // keep filling it
  {
    std::lock_guard<std::mutex> l(mu_);
    full_.push_back(cur_);
  }
  cur_ = -1;
  cv_.notify_all();
}

namespace {

Result<void> read_proc_mem(pid_t pid, uint64_t addr, char* buf, size_t n) {
  auto fd = ZRUN_TRY(base::open_file("/proc/" + std::to_string(pid) + "/mem", O_RDONLY));
  ssize_t got = ::pread(fd.get(), buf, n, static_cast<off_t>(addr));
  if (got != static_cast<ssize_t>(n))
    return base::sys_error("read /proc/" + std::to_string(pid) + "/mem");
  return base::ok();
}

}  // namespace

Result<PageRun> PageWriter::dump_range(pid_t pid, Tracee* t, uint64_t addr, uint64_t len) {
  PageRun run{offset_, 0};
  for (uint64_t done = 0; done < len;) {
    // Pieces of kHashChunk from the run's start (the restore hashes the same pieces); small
    // runs share one slot.
    size_t n = static_cast<size_t>(std::min<uint64_t>(kBuffer, len - done));
    if (cur_ >= 0 && len_[cur_] + n > kBuffer) submit();
    if (cur_ < 0) cur_ = ZRUN_TRY(take_slot());
    char* at = bufs_[cur_].get() + len_[cur_];
    if (!read_remote(pid, addr + done, at, n)) {
      // PROT_NONE / exec-only areas: /proc/PID/mem.
      auto r = t ? t->read_mem(addr + done, at, n) : read_proc_mem(pid, addr + done, at, n);
      // A running task may have unmapped it since (live pre-dump): whatever is mapped there
      // later is a new, untracked mapping, saved whole by the next dump.
      if (!r && !live_) return std::move(r).error();
      if (!r) std::memset(at, 0, n);
    }
    run.hash = hash64(at, n, run.hash);
    len_[cur_] += n;
    done += n;
  }
  offset_ += len;
  return run;
}

Result<void> PageWriter::close() {
  submit();
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return (full_.empty() && !busy_) || err_.has_value(); });
  }
  stop();
  if (err_) return *err_;
  if (::fsync(fd_.get()) < 0 && errno != EINVAL) return base::sys_error("fsync `" + path_ + "`");
  fd_.reset();
  return base::ok();
}

namespace {

// Calls `write(offset, len)` for the runs of non-zero pages of [buf, buf+n) (all of it
// without `skip_zero`: fresh anonymous memory is zero already).
template <class F>
Result<void> for_nonzero(const char* buf, size_t n, bool skip_zero, F&& write) {
  static const std::vector<char> zero(4096, 0);
  if (!skip_zero) return write(size_t{0}, n);
  size_t run_start = 0;
  bool in_run = false;
  for (size_t p = 0; p <= n; p += 4096) {
    bool nz = p < n && std::memcmp(buf + p, zero.data(), std::min<size_t>(4096, n - p));
    if (nz && !in_run) {
      run_start = p;
      in_run = true;
    } else if (!nz && in_run) {
      ZRUN_TRY(write(run_start, p - run_start));
      in_run = false;
    }
  }
  return base::ok();
}

// Runs of at least this size are written by two threads: a helper writes the second half
// (the task's page faults, allocation and zeroing of its fresh pages, are most of the
// restore's cost) while this thread hashes the whole run and writes the first half.
constexpr uint64_t kSplitRun = 8 << 20;

// Verify the run at `src` (its checksum chained over kHashChunk pieces, as dumped) and copy
// it into the task at `addr` — only the parts in `only` when given. With `skip_zero`,
// all-zero pages are not written.
Result<void> copy_run(const char* src, uint64_t len, uint64_t hash, const std::string& file,
                      Tracee& t, uint64_t addr, bool skip_zero, const Ranges* only) {
  auto write = [&](uint64_t at, const char* buf, size_t n) -> Result<void> {
    if (!only) return write_remote(t, at, buf, n);
    for (auto& [a, b] : intersect(*only, Ranges{{at, at + n}}))
      ZRUN_TRY(write_remote(t, a, buf + (a - at), b - a));
    return base::ok();
  };
  uint64_t split = len;
  if (!only && len >= kSplitRun) split = (len / kBuffer / 2) * kBuffer;
  // The helper only uses process_vm_writev; what it could not write (areas that are not
  // writable) is left for this thread (Tracee is not shared between threads).
  Ranges left;
  std::thread helper;
  if (split < len)
    helper = std::thread([&, pid = t.pid()] {
      for (uint64_t done = split; done < len; done += kBuffer) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(kBuffer, len - done));
        (void)for_nonzero(src + done, n, skip_zero, [&](size_t off, size_t m) -> Result<void> {
          iovec local{const_cast<char*>(src + done + off), m};
          iovec remote{reinterpret_cast<void*>(addr + done + off), m};
          ssize_t w = ::process_vm_writev(pid, &local, 1, &remote, 1, 0);
          size_t ok = w > 0 ? static_cast<size_t>(w) : 0;
          if (ok < m) left.emplace_back(addr + done + off + ok, addr + done + off + m);
          return base::ok();
        });
      }
    });
  base::ScopeExit join([&] {
    if (helper.joinable()) helper.join();
  });
  uint64_t h = 0;
  for (uint64_t done = 0; done < len;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kBuffer, len - done));
    const char* buf = src + done;
    h = hash64(buf, n, h);
    if (done < split)
      ZRUN_TRY(for_nonzero(buf, n, skip_zero, [&](size_t off, size_t m) {
        return write(addr + done + off, buf + off, m);
      }));
    done += n;
  }
  if (helper.joinable()) helper.join();
  for (auto [a, b] : left) ZRUN_TRY(write_remote(t, a, src + (a - addr), b - a));
  if (h != hash)
    return base::make_error("`" + file + "` is corrupted (checksum of the pages at " + hex64(addr) +
                            ")");
  return base::ok();
}

}  // namespace

Result<void> restore_range(int page_fd, const std::string& file, uint64_t offset, uint64_t hash,
                           Tracee& t, uint64_t addr, uint64_t len, bool skip_zero) {
  if (len == 0) return hash == 0 ? base::ok() : base::make_error("`" + file + "` is corrupted");
  // The page file is mapped, not read: the bytes go from its page cache straight into the
  // task (one copy instead of two).
  uint64_t map_off = offset & ~uint64_t{4095};
  size_t lead = static_cast<size_t>(offset - map_off);
  struct stat st {};
  if (::fstat(page_fd, &st) < 0) return base::sys_error("stat `" + file + "`");
  if (offset + len > static_cast<uint64_t>(st.st_size))
    return base::make_error("`" + file + "` is truncated");
  size_t map_len = static_cast<size_t>(len) + lead;
  void* m = ::mmap(nullptr, map_len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, page_fd,
                   static_cast<off_t>(map_off));
  if (m == MAP_FAILED) return base::sys_error("map `" + file + "`");
  struct Unmap {
    void* p;
    size_t n;
    ~Unmap() { ::munmap(p, n); }
  } unmap{m, map_len};
  return copy_run(static_cast<const char*>(m) + lead, len, hash, file, t, addr, skip_zero, nullptr);
}

// ---- Ranges ----

Ranges intersect(const Ranges& a, const Ranges& b) {
  Ranges out;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    uint64_t s = std::max(a[i].first, b[j].first), e = std::min(a[i].second, b[j].second);
    if (s < e) out.emplace_back(s, e);
    if (a[i].second < b[j].second)
      i++;
    else
      j++;
  }
  return out;
}

Ranges subtract(const Ranges& a, const Ranges& b) {
  Ranges out;
  size_t j = 0;
  for (auto [s, e] : a) {
    while (j < b.size() && b[j].second <= s) j++;
    size_t k = j;
    while (s < e && k < b.size() && b[k].first < e) {
      if (b[k].first > s) out.emplace_back(s, b[k].first);
      s = std::max(s, b[k].second);
      k++;
    }
    if (s < e) out.emplace_back(s, e);
  }
  return out;
}

namespace {

void add_range(Ranges& r, uint64_t s, uint64_t e) {
  if (!r.empty() && r.back().second == s)
    r.back().second = e;
  else
    r.emplace_back(s, e);
}

Ranges unite(const Ranges& a, const Ranges& b) {
  Ranges all = a;
  all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  Ranges out;
  for (auto [s, e] : all) {
    if (!out.empty() && s <= out.back().second)
      out.back().second = std::max(out.back().second, e);
    else
      out.emplace_back(s, e);
  }
  return out;
}

// PAGEMAP_SCAN (linux/fs.h of 6.7+; bookworm's headers lack it).
constexpr unsigned long kPagemapScan = 0xC0606610;
constexpr uint64_t kScanWpMatching = 1, kScanCheckWpAsync = 2;
constexpr uint64_t kPageWritten = 1 << 1, kPageFile = 1 << 2, kPagePresent = 1 << 3,
                   kPageSwapped = 1 << 4, kPagePfnZero = 1 << 5;
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
      category_mask, category_anyof_mask, return_mask;
};
struct PageRegion {
  uint64_t start, end, categories;
};
constexpr uint64_t kUffdFeatureWpUnpopulated = 1 << 13, kUffdFeatureWpAsync = 1 << 15;
constexpr int kTrackFdMin = 1000;  // out of the way of the task's own low fds

// The runs of all mappings of a task, by address; whole-mapping `pages` as one run.
std::vector<PageRunImage> all_runs(const TaskImage& t) {
  std::vector<PageRunImage> out;
  for (auto& v : t.vmas) {
    if (v.pages) out.push_back({v.start, v.end - v.start, false, v.page_offset, v.hash});
    out.insert(out.end(), v.runs.begin(), v.runs.end());
  }
  std::sort(out.begin(), out.end(),
            [](const PageRunImage& a, const PageRunImage& b) { return a.start < b.start; });
  return out;
}

}  // namespace

// ---- Dump ----

Result<MemoryScan> MemoryScan::open(pid_t pid, const TaskImage* parent) {
  MemoryScan m;
  m.pagemap_ = ZRUN_TRY(base::open_file("/proc/" + std::to_string(pid) + "/pagemap", O_RDONLY));
  if (parent && parent->track_fd >= 0 && is_userfaultfd(pid, parent->track_fd)) {
    m.tracked_ = true;
    for (auto& r : all_runs(*parent)) add_range(m.parent_cover_, r.start, r.start + r.len);
    m.parent_cover_ = unite(m.parent_cover_, {});
  }
  return m;
}

namespace {

// One PAGEMAP_SCAN walk of [start, end): the ranges whose pages match `a`'s categories.
// With `categories`, one entry per returned region (not merged), its categories.
Result<Ranges> pagemap_scan(int pagemap, uint64_t start, uint64_t end, PmScanArg a,
                            std::vector<uint64_t>* categories = nullptr) {
  std::vector<PageRegion> vec(4096);
  a.size = sizeof(a);
  a.vec = reinterpret_cast<uint64_t>(vec.data());
  a.vec_len = vec.size();
  Ranges out;
  for (uint64_t at = start; at < end;) {
    a.start = at;
    a.end = end;
    a.walk_end = 0;
    int n = ::ioctl(pagemap, kPagemapScan, &a);
    if (n < 0) return base::sys_error("PAGEMAP_SCAN");
    for (size_t i = 0; i < static_cast<size_t>(n); i++) {
      if (categories) {
        out.emplace_back(vec[i].start, vec[i].end);
        categories->push_back(vec[i].categories);
      } else {
        add_range(out, vec[i].start, vec[i].end);
      }
    }
    // Only a full vector means there may be more (walk_end is not reliable otherwise).
    if (static_cast<size_t>(n) < vec.size() || a.walk_end <= at) break;
    at = a.walk_end;
  }
  return out;
}

}  // namespace

Result<Ranges> MemoryScan::present(uint64_t start, uint64_t end, Ranges* written) {
  PmScanArg a{};
  // Present or swapped, not the zero page.
  a.category_inverted = kPagePfnZero;
  a.category_mask = kPagePfnZero;
  a.category_anyof_mask = kPagePresent | kPageSwapped;
  a.return_mask = kPagePresent | kPageSwapped;
  if (written) {
    // The same walk tells which of them were written since tracking was armed.
    a.flags = kScanCheckWpAsync;
    a.return_mask = kPageWritten;
    std::vector<uint64_t> categories;
    auto r = pagemap_scan(pagemap_.get(), start, end, a, &categories);
    if (!r && r.error().err == EPERM) return present(start, end, nullptr);  // not tracked
    Ranges all = ZRUN_TRY(std::move(r)), out;
    *written = {};
    for (size_t i = 0; i < all.size(); i++) {
      add_range(out, all[i].first, all[i].second);
      if (categories[i] & kPageWritten) add_range(*written, all[i].first, all[i].second);
    }
    tracked_range_ = true;
    return out;
  }
  tracked_range_ = false;
  return pagemap_scan(pagemap_.get(), start, end, a);
}

Result<std::vector<Vma>> read_maps_with_copies(pid_t pid) {
  auto maps = ZRUN_TRY(read_maps(pid));
  auto pm = ZRUN_TRY(base::open_file("/proc/" + std::to_string(pid) + "/pagemap", O_RDONLY));
  PmScanArg a{};
  // Present or swapped, and not a page of the file: copied on write.
  a.category_inverted = kPageFile;
  a.category_mask = kPageFile;
  a.category_anyof_mask = kPagePresent | kPageSwapped;
  a.return_mask = kPagePresent | kPageSwapped;
  for (auto& v : maps) {
    if (!v.file_backed() || v.shared() || v.special()) continue;
    auto r = pagemap_scan(pm.get(), v.start, v.end, a);
    if (!r && r.error().err == ENOTTY) return read_smaps(pid);  // kernel < 6.7
    for (auto [s, e] : ZRUN_TRY(std::move(r))) v.anon_kb += (e - s) / 1024;
  }
  return maps;
}

Result<std::vector<PageRunImage>> MemoryScan::plan(uint64_t start, uint64_t end) {
  Ranges self{{start, end}}, from_parent;
  if (supported_) {
    Ranges written;
    auto present_now = present(start, end, tracked_ ? &written : nullptr);
    if (!present_now && present_now.error().err == ENOTTY) {
      supported_ = false;
    } else {
      self = ZRUN_TRY(std::move(present_now));
      if (tracked_range_) {
        // Unwritten pages the parent has stay there; new ones (not in the parent) are saved.
        Ranges keep = intersect(subtract(self, written), parent_cover_);
        self = subtract(self, keep);
        from_parent = std::move(keep);
      }
    }
  }
  std::vector<PageRunImage> runs;
  for (auto [s, e] : self) runs.push_back({s, e - s, false, 0, 0});
  for (auto [s, e] : from_parent) runs.push_back({s, e - s, true, 0, 0});
  std::sort(runs.begin(), runs.end(),
            [](const PageRunImage& a, const PageRunImage& b) { return a.start < b.start; });
  return runs;
}

bool is_userfaultfd(pid_t pid, int fd) {
  char buf[64];
  std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  return n > 0 && std::string_view(buf, static_cast<size_t>(n)) == "anon_inode:[userfaultfd]";
}

bool is_tracking_uffd(pid_t pid, int fd) {
  if (!is_userfaultfd(pid, fd)) return false;
  auto info = base::read_file("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
  if (!info) return false;
  // "API:\taa:<features>:<ioctls>"
  auto at = info->find("API:\taa:");
  if (at == std::string::npos) return false;
  uint64_t features = std::strtoull(info->c_str() + at + 8, nullptr, 16);
  uint64_t ours = kUffdFeatureWpAsync | kUffdFeatureWpUnpopulated;
  return (features & ours) == ours;
}

Result<int> arm_tracking(Tracee& tr, const Ranges& areas) {
  // The container's seccomp profile usually refuses userfaultfd (Docker's does): the
  // injected call runs with the task's filters suspended (as CRIU does; needs
  // CAP_SYS_ADMIN, which we have). The dump seizes with no other ptrace options.
  bool suspended = ::ptrace(PTRACE_SETOPTIONS, tr.pid(), nullptr, PTRACE_O_SUSPEND_SECCOMP) == 0;
  auto created = tr.syscall_ok("userfaultfd", SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
  if (suspended) (void)::ptrace(PTRACE_SETOPTIONS, tr.pid(), nullptr, 0);
  long fd = ZRUN_TRY(std::move(created));
  long high = ZRUN_TRY(tr.syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, kTrackFdMin));
  if (high >= 0) {
    ZRUN_TRY(tr.syscall(SYS_close, fd));
    fd = high;
  }
  auto fail = [&](base::Error e) -> base::Error {
    (void)tr.syscall(SYS_close, fd);
    return e;
  };
  // Set up from here through a copy of it (the ioctls act on the task's mm).
  long pidfd = ::syscall(SYS_pidfd_open, tr.pid(), 0);
  if (pidfd < 0) return fail(base::sys_error("pidfd_open"));
  base::UniqueFd pfd(static_cast<int>(pidfd));
  long ours = ::syscall(SYS_pidfd_getfd, pfd.get(), fd, 0);
  if (ours < 0) return fail(base::sys_error("pidfd_getfd"));
  base::UniqueFd uffd(static_cast<int>(ours));
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = kUffdFeatureWpAsync | kUffdFeatureWpUnpopulated;
  if (::ioctl(uffd.get(), UFFDIO_API, &api) < 0)
    return fail(
        base::sys_error("dirty tracking: userfaultfd write-protect (UFFD_FEATURE_WP_ASYNC)"));
  for (auto [s, e] : areas) {
    uffdio_register reg{};
    reg.range = {s, e - s};
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    if (::ioctl(uffd.get(), UFFDIO_REGISTER, &reg) < 0) continue;  // untracked: all written
    uffdio_writeprotect wp{};
    wp.range = {s, e - s};
    wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
    if (::ioctl(uffd.get(), UFFDIO_WRITEPROTECT, &wp) < 0) {
      uffdio_range r{s, e - s};
      (void)::ioctl(uffd.get(), UFFDIO_UNREGISTER, &r);
    }
  }
  return static_cast<int>(fd);
}

Result<void> disarm_tracking(Tracee& tr, int fd) {
  if (fd < 0 || !is_userfaultfd(tr.pid(), fd)) return base::ok();
  ZRUN_TRY(tr.syscall(SYS_close, fd));
  return base::ok();
}

// ---- Restore ----

PageSource::Layer::~Layer() {
  if (data) ::munmap(const_cast<char*>(data), size);
}

Result<PageSource::Layer*> PageSource::layer(size_t depth) {
  while (layers_.size() <= depth) {
    const Image* img = layers_.empty() ? &img_ : layers_.back()->img->parent.get();
    if (!img) return static_cast<Layer*>(nullptr);
    auto l = std::make_unique<Layer>();
    l->img = img;
    if (const TaskImage* t = img->task(vpid_)) l->runs = all_runs(*t);
    l->file = "pages-" + std::to_string(vpid_) + ".img";
    std::string path = img->dir + "/" + l->file;
    if (layers_.empty() || !l->runs.empty()) {
      auto fd = ZRUN_TRY_CTX(base::open_file(path, O_RDONLY), "image");
      struct stat st {};
      if (::fstat(fd.get(), &st) < 0) return base::sys_error("stat `" + path + "`");
      l->size = static_cast<size_t>(st.st_size);
      if (l->size) {
        // Populated at once (faulting the page cache in piece by piece during the copies
        // costs more); the parents' pages are mostly needed too.
        void* m = ::mmap(nullptr, l->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd.get(), 0);
        if (m == MAP_FAILED) return base::sys_error("map `" + path + "`");
        l->data = static_cast<const char*>(m);
      }
      if (!layers_.empty()) l->file = path;  // name the parent's file in errors
    }
    layers_.push_back(std::move(l));
  }
  return layers_[depth].get();
}

Result<void> PageSource::restore(const VmaImage& v, Tracee& t) {
  Ranges need;
  std::vector<PageRunImage> runs = v.runs;
  for (size_t depth = 0;; depth++) {
    Layer* l = ZRUN_TRY(layer(depth));
    if (!l) {
      if (need.empty()) return base::ok();
      return base::make_error("no parent image has the pages at " + hex64(need[0].first));
    }
    Ranges next;
    if (depth > 0) {
      // The runs of this parent that hold needed pages.
      runs.clear();
      auto it =
          std::lower_bound(l->runs.begin(), l->runs.end(), need.front().first,
                           [](const PageRunImage& r, uint64_t a) { return r.start + r.len <= a; });
      Ranges have;
      for (; it != l->runs.end() && it->start < need.back().second; ++it) {
        runs.push_back(*it);
        add_range(have, it->start, it->start + it->len);
      }
      Ranges missing = subtract(need, unite(have, {}));
      if (!missing.empty())
        return base::make_error("parent image `" + l->img->dir + "` lacks the pages at " +
                                hex64(missing[0].first));
    }
    for (auto& r : runs) {
      Ranges part{{r.start, r.start + r.len}};
      if (depth > 0) part = intersect(need, part);
      if (part.empty()) continue;
      if (r.parent) {
        next = unite(next, part);
        continue;
      }
      if (r.offset + r.len > l->size || r.offset + r.len < r.offset)
        return base::make_error("`" + l->file + "` is truncated");
      bool whole =
          part.size() == 1 && part[0].first == r.start && part[0].second == r.start + r.len;
      ZRUN_TRY(copy_run(l->data + r.offset, r.len, r.hash, l->file, t, r.start,
                        /*skip_zero=*/true, whole ? nullptr : &part));
    }
    if (next.empty()) return base::ok();
    need = std::move(next);
  }
}

}  // namespace zrun::ckpt
