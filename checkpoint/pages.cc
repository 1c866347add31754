#include "checkpoint/pages.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/sys.h"
#include "checkpoint/image.h"

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

Result<void> PageWriter::open(const std::string& path) {
  path_ = path;
  fd_ = ZRUN_TRY(base::open_file(path, O_WRONLY | O_CREAT | O_TRUNC, 0600));
  offset_ = 0;
  if (buf_.empty()) buf_.resize(kBuffer);
  return base::ok();
}

Result<PageRun> PageWriter::dump_range(Tracee& t, uint64_t addr, uint64_t len) {
  PageRun run{offset_, 0};
  for (uint64_t done = 0; done < len;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kBuffer, len - done));
    if (!read_remote(t.pid(), addr + done, buf_.data(), n))
      ZRUN_TRY(t.read_mem(addr + done, buf_.data(), n));  // PROT_NONE / exec-only areas
    run.hash = hash64(buf_.data(), n, run.hash);
    ZRUN_TRY_CTX(base::write_all(fd_.get(), std::string_view(buf_.data(), n)),
                 "write `" + path_ + "`");
    done += n;
  }
  offset_ += len;
  return run;
}

Result<void> PageWriter::close() {
  if (::fsync(fd_.get()) < 0 && errno != EINVAL) return base::sys_error("fsync `" + path_ + "`");
  fd_.reset();
  return base::ok();
}

Result<void> restore_range(int page_fd, const std::string& file, uint64_t offset, uint64_t hash,
                           Tracee& t, uint64_t addr, uint64_t len, bool skip_zero) {
  static const std::vector<char> zero(4096, 0);
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
  const char* src = static_cast<const char*>(m) + lead;
  uint64_t h = 0;
  for (uint64_t done = 0; done < len;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kBuffer, len - done));
    const char* buf = src + done;
    h = hash64(buf, n, h);
    if (!skip_zero) {
      ZRUN_TRY(write_remote(t, addr + done, buf, n));
    } else {
      // Write runs of non-zero pages only.
      size_t run_start = 0;
      bool in_run = false;
      for (size_t p = 0; p <= n; p += 4096) {
        bool nz = p < n && std::memcmp(buf + p, zero.data(), std::min<size_t>(4096, n - p));
        if (nz && !in_run) {
          run_start = p;
          in_run = true;
        } else if (!nz && in_run) {
          ZRUN_TRY(write_remote(t, addr + done + run_start, buf + run_start, p - run_start));
          in_run = false;
        }
      }
    }
    done += n;
  }
  if (h != hash)
    return base::make_error("`" + file + "` is corrupted (checksum of the pages at " + hex64(addr) +
                            ")");
  return base::ok();
}

}  // namespace zrun::ckpt
