#include "checkpoint/pages.h"

#include <fcntl.h>
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

constexpr size_t kBuffer = 16 * kHashChunk;

bool read_remote(pid_t pid, uint64_t addr, char* buf, size_t len) {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  return n == static_cast<ssize_t>(len);
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
    for (size_t c = 0; c < n; c += kHashChunk)
      run.hash = hash64(buf_.data() + c, std::min(kHashChunk, n - c), run.hash);
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
  static thread_local std::vector<char> buf(kBuffer);
  static const std::vector<char> zero(4096, 0);
  uint64_t h = 0;
  for (uint64_t done = 0; done < len;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kBuffer, len - done));
    size_t got = 0;
    while (got < n) {
      ssize_t r =
          ::pread(page_fd, buf.data() + got, n - got, static_cast<off_t>(offset + done + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return base::sys_error("read `" + file + "`");
      if (r == 0) return base::make_error("`" + file + "` is truncated");
      got += static_cast<size_t>(r);
    }
    for (size_t c = 0; c < n; c += kHashChunk)
      h = hash64(buf.data() + c, std::min(kHashChunk, n - c), h);
    if (!skip_zero) {
      ZRUN_TRY(t.write_mem(addr + done, buf.data(), n));
    } else {
      // Write runs of non-zero pages only.
      size_t run_start = 0;
      bool in_run = false;
      for (size_t p = 0; p <= n; p += 4096) {
        bool nz = p < n && std::memcmp(buf.data() + p, zero.data(), std::min<size_t>(4096, n - p));
        if (nz && !in_run) {
          run_start = p;
          in_run = true;
        } else if (!nz && in_run) {
          ZRUN_TRY(t.write_mem(addr + done + run_start, buf.data() + run_start, p - run_start));
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
