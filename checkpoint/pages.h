// Page files: raw bytes of dumped mappings, appended; each run is checksummed in
// kHashChunk pieces chained through hash64's seed (the same cut on both sides).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "checkpoint/ptrace.h"

namespace zrun::ckpt {

constexpr size_t kHashChunk = 1 << 20;

struct PageRun {
  uint64_t offset = 0;
  uint64_t hash = 0;
};

class PageWriter {
 public:
  base::Result<void> open(const std::string& path);
  // Append [addr, addr+len) of the task (process_vm_readv; /proc/PID/mem where it fails).
  base::Result<PageRun> dump_range(Tracee& t, uint64_t addr, uint64_t len);
  base::Result<void> close();

 private:
  std::string path_;
  base::UniqueFd fd_;
  uint64_t offset_ = 0;
  std::vector<char> buf_;
};

// Copy a run from `page_fd` into the task at `addr`, verifying its checksum. With
// `skip_zero`, all-zero pages are not written (fresh anonymous memory is zero already).
base::Result<void> restore_range(int page_fd, const std::string& file, uint64_t offset,
                                 uint64_t hash, Tracee& t, uint64_t addr, uint64_t len,
                                 bool skip_zero);

}  // namespace zrun::ckpt
