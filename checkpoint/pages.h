// Page files: raw bytes of dumped mappings, appended; each run is checksummed in
// kHashChunk pieces chained through hash64's seed (the same cut on both sides).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "checkpoint/image.h"
#include "checkpoint/proc.h"
#include "checkpoint/ptrace.h"

namespace zrun::ckpt {

constexpr size_t kHashChunk = 1 << 20;

struct PageRun {
  uint64_t offset = 0;
  uint64_t hash = 0;
};

// Reading + hashing (the caller's thread) overlaps with writing (a writer thread, through a
// few kHashChunk slots): on tmpfs the write (page allocation + copy) costs more than the
// read, so with a second core free the dump goes at the write's pace.
class PageWriter {
 public:
  PageWriter() = default;
  PageWriter(const PageWriter&) = delete;
  PageWriter& operator=(const PageWriter&) = delete;
  ~PageWriter();
  base::Result<void> open(const std::string& path);
  // Append [addr, addr+len) of task `pid` (process_vm_readv; /proc/PID/mem where it fails,
  // through `t` when the task is seized).
  base::Result<PageRun> dump_range(pid_t pid, Tracee* t, uint64_t addr, uint64_t len);
  // Waits for the writer, then fsync.
  base::Result<void> close();
  // The task runs while it is read (live pre-dump): what can no longer be read is zero.
  void set_live(bool live) { live_ = live; }
  uint64_t bytes() const { return offset_; }  // appended so far

 private:
  static constexpr int kSlots = 4;
  base::Result<int> take_slot();
  void submit();  // hand the slot being filled to the writer
  void writer_loop();
  void stop();
  std::string path_;
  base::UniqueFd fd_;
  uint64_t offset_ = 0;
  bool live_ = false;
  std::unique_ptr<char[]> bufs_[kSlots];
  size_t len_[kSlots] = {};
  int cur_ = -1;  // slot being filled
  std::deque<int> free_, full_;
  bool busy_ = false, stop_ = false;
  std::optional<base::Error> err_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

// Address ranges [first, second), sorted, disjoint.
using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;
Ranges intersect(const Ranges& a, const Ranges& b);
Ranges subtract(const Ranges& a, const Ranges& b);

// Which pages of a task's private anonymous mappings to save (PAGEMAP_SCAN on
// /proc/PID/pagemap, KERNEL-NOTES "Dirty tracking"), and which can stay in the parent
// image: present or swapped pages not mapping the zero page; with a parent whose tracking
// is still armed in this task, only those written since (the others become "parent" runs).
class MemoryScan {
 public:
  // `parent`: the task in the parent image (nullptr: none, or another process now).
  static base::Result<MemoryScan> open(pid_t pid, const TaskImage* parent);
  // The runs to save [start, end) sparsely: "self" ones (their offset and hash are set
  // when they are written) and "parent" ones.
  base::Result<std::vector<PageRunImage>> plan(uint64_t start, uint64_t end);
  // PAGEMAP_SCAN is missing (kernel < 6.7): callers save whole mappings.
  bool supported() const { return supported_; }

 private:
  // The present pages of [start, end) and, with `written`, those written since tracking
  // was armed, in one walk. tracked_range_ says whether the range was tracked: if it was
  // never registered or lost its registration (mremap, fork, the uffd closed), it is not,
  // and counts as all written.
  base::Result<Ranges> present(uint64_t start, uint64_t end, Ranges* written);
  base::UniqueFd pagemap_;
  bool supported_ = true;
  bool tracked_ = false;
  bool tracked_range_ = false;
  Ranges parent_cover_;  // pages the parent chain has for this task
};

// /proc/PID/maps with `anon_kb` (pages copied on write) of private file mappings, as
// read_smaps gives it, but without walking every page of the anonymous mappings (smaps
// costs ~0.1 s per GiB of them): one PAGEMAP_SCAN per private file mapping.
base::Result<std::vector<Vma>> read_maps_with_copies(pid_t pid);

// Dirty tracking (in a task being injected into): a userfaultfd with WP_ASYNC created in
// the task, left open there at the returned fd number, every range in `areas` registered
// for write-protect and protected. Ranges the kernel refuses stay untracked (all written
// next time).
base::Result<int> arm_tracking(Tracee& tr, const Ranges& areas);
// Close the tracking userfaultfd at `fd` in the task (injected), if it is one.
base::Result<void> disarm_tracking(Tracee& tr, int fd);
bool is_userfaultfd(pid_t pid, int fd);
// A userfaultfd set up by arm_tracking (its fdinfo shows WP_ASYNC | WP_UNPOPULATED).
bool is_tracking_uffd(pid_t pid, int fd);

// Restore the saved bytes of one mapping from an image (and its parents for "parent" runs;
// each run's checksum verified); pages in no run are left as they are (zero).
class PageSource {
 public:
  PageSource(const Image& img, pid_t vpid) : img_(img), vpid_(vpid) {}
  base::Result<void> restore(const VmaImage& v, Tracee& t);

 private:
  struct Layer {
    const Image* img = nullptr;
    std::string file;
    const char* data = nullptr;
    size_t size = 0;
    std::vector<PageRunImage> runs;  // all runs of the task, by address
    ~Layer();
  };
  base::Result<Layer*> layer(size_t depth);
  const Image& img_;
  pid_t vpid_;
  std::vector<std::unique_ptr<Layer>> layers_;
};

// Copy a run from `page_fd` into the task at `addr`, verifying its checksum. With
// `skip_zero`, all-zero pages are not written (fresh anonymous memory is zero already).
base::Result<void> restore_range(int page_fd, const std::string& file, uint64_t offset,
                                 uint64_t hash, Tracee& t, uint64_t addr, uint64_t len,
                                 bool skip_zero);

}  // namespace zrun::ckpt
