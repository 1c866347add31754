// The checkpoint image (docs/checkpoint.md "Image format"): a directory with
//   manifest.json        format version, host facts needed (kernel, XCR0, vDSO layout),
//                        the container (spec, cgroup, namespaces), the process tree
//   task-<vpid>.json     one per process: registers, mm fields, mappings, signals, fds
//   pages-<vpid>.img     raw contents of the dumped mappings, indexed by task-<vpid>.json
// Every file and every page run carries a 64-bit checksum (hash64) verified on restore.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace zrun::ckpt {

constexpr int kFormatVersion = 2;  // 2: hash64 with 128-bit multiply lanes

// A fast 64-bit checksum: four interleaved lanes, each folding a 16-byte block (two
// little-endian words) per 64x64->128-bit multiply; the tail in 8-byte words (zero-padded)
// into lane 0; length and seed mixed in. Not cryptographic:
// it catches corruption and truncation.
uint64_t hash64(const void* data, size_t len, uint64_t seed = 0);
std::string hex64(uint64_t v);
std::string to_hex(std::string_view bytes);
base::Result<std::string> from_hex(std::string_view hex);

// A run of pages of a mapping saved sparsely: [start, start+len). `file` "self": the bytes
// are at `offset` in this image's page file, checksummed by `hash`; "parent": they did not
// change since the parent image (pre-dump), which has them (looked up by address, through
// its own parents).
struct PageRunImage {
  uint64_t start = 0, len = 0;
  bool parent = false;
  uint64_t offset = 0, hash = 0;
};

// One mapping of a task. With `pages` set the whole mapping's bytes live in the task's page
// file at `page_offset`; otherwise the pages in `runs` were saved (the others were never
// touched, or map the zero page: zero on restore).
struct VmaImage {
  uint64_t start = 0, end = 0;
  std::string perms;    // "rw-p"
  std::string path;     // inside the container root; "" for anonymous
  uint64_t offset = 0;  // file offset
  std::string name;     // [heap], [stack], [vdso], ... as /proc/PID/maps says
  bool pages = false;   // contents dumped
  uint64_t page_offset = 0;
  uint64_t hash = 0;
  std::string object;              // mapped from a saved object (ObjectImage::key); path is then ""
  int64_t shmid = -1;              // a SysV shm attachment (ipc.h): the segment's id; no bytes here
  std::vector<PageRunImage> runs;  // when !pages
};

struct FdImage {
  int fd = 0;
  // "file", "inherit" (container stdio from the engine), "pipe", "tty" (the container's
  // console), "mqueue" (an mqd_t: path is the queue's name, "/q"), or an object's kind
  // ("memfd", "shmem", "deleted", "eventfd": path is then the ObjectImage key)
  std::string kind;
  std::string path;  // pipe: "pipe:[ino]", the same for both ends of one pipe
  int flags = 0;
  int64_t pos = 0;
  bool cloexec = false;
  // pipe, on the first end found in creation order only: F_GETPIPE_SZ and the unread bytes.
  int64_t pipe_size = 0;
  std::string data;
};

// A memory object or fd object shared by fds and mappings of one or more tasks
// (checkpoint/shmem.h): a memfd, shared anonymous memory ("/dev/zero (deleted)"), an
// unlinked-but-open regular file, an eventfd. Listed in the first task (creation order)
// that refers to it; the contents (data extents, holes skipped) are in `file`.
struct ObjectImage {
  std::string key;   // "<dev>:<ino>" (hex), "eventfd:<id>"
  std::string kind;  // "memfd", "shmem", "deleted", "eventfd"
  std::string name;  // memfd: its name; deleted: the path it had (inside the root)
  uint64_t size = 0;
  uint32_t mode = 0, uid = 0, gid = 0;
  uint32_t seals = 0;  // memfd, shmem: F_GET_SEALS
  uint64_t count = 0;  // eventfd
  bool semaphore = false;
  std::vector<std::pair<uint64_t, uint64_t>> extents;  // {offset, length} with data
  std::string file;                                    // "object-<n>.img" or ""
  uint64_t hash = 0;                                   // of the file's bytes (chained)
};

struct SigactionImage {
  uint64_t handler = 0, flags = 0, restorer = 0, mask = 0;
};

// A thread besides the leader: its own registers and per-thread kernel state (credentials
// are taken to be the process's).
// A queued signal: the raw 128-byte siginfo, on the thread's own queue or the process's.
struct PendingSignal {
  bool shared = false;
  std::string info;
};

struct ThreadImage {
  pid_t vtid = 0;
  std::vector<PendingSignal> pending;
  std::string comm;
  user_regs_struct regs{};
  std::string fpu;
  uint64_t sigmask = 0;
  uint64_t rseq_ptr = 0, rseq_len = 0, rseq_sig = 0;
  uint64_t robust_list = 0, robust_len = 0, clear_tid = 0;
};

struct TaskImage {
  pid_t vpid = 0, ppid = 0, pgid = 0, sid = 0;
  std::string comm;
  user_regs_struct regs{};
  std::string fpu;  // NT_X86_XSTATE (or 512-byte NT_PRFPREG)
  uint64_t sigmask = 0;
  std::vector<PendingSignal> pending;      // the leader's queue and the shared one
  std::vector<SigactionImage> sigactions;  // index = signal - 1, 64 entries
  // mm (prctl PR_SET_MM_MAP)
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0, start_brk = 0, brk = 0,
           start_stack = 0, arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  std::string auxv;
  uint64_t rseq_ptr = 0, rseq_len = 0, rseq_sig = 0;
  uint64_t robust_list = 0, robust_len = 0, clear_tid = 0;
  uint32_t umask = 022;
  std::string cwd;
  std::string exe;         // /proc/PID/exe inside the root
  std::string exe_object;  // or: the exe is this object (a memfd, an unlinked file)
  // Credentials: real, effective, saved, fs ids; capability sets; no_new_privs.
  std::vector<uint32_t> uids, gids, groups;
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  bool no_new_privs = false;
  bool seccomp = false;                                // under a seccomp filter
  std::vector<std::pair<uint64_t, uint64_t>> rlimits;  // RLIMIT_* index -> {cur, max}
  std::vector<VmaImage> vmas;
  std::vector<FdImage> fds;
  std::vector<ThreadImage> threads;  // besides the leader, by vtid
  std::vector<ObjectImage> objects;  // objects this task is the first to refer to
  // Dirty-page tracking armed by a pre-dump (docs/checkpoint.md "Incremental images"): the
  // userfaultfd left open in the task at fd `track_fd` (-1: none), and the start time of
  // the process it was armed in (/proc/PID/stat field 22).
  int track_fd = -1;
  uint64_t track_start = 0;
};

// The container's console (process.terminal) as its tasks saw it: fds on the console pty
// slave are "tty" FdImages; this is the terminal's own state. Empty `slave`: no console.
struct TtyImage {
  std::string slave;    // the slave's path in the container at dump time (/dev/pts/0)
  std::string termios;  // hex of struct termios2 (TCGETS2)
  std::string winsize;  // hex of struct winsize (TIOCGWINSZ)
  pid_t sid = 0;        // vpid of the session whose controlling tty it is (0: none)
  pid_t fg_pgrp = 0;    // its foreground process group (vpid; 0: none in the pod)
};

struct TaskRef {
  pid_t vpid = 0, ppid = 0, pgid = 0, sid = 0;
  std::string file;
  uint64_t hash = 0;
};

struct Manifest {
  int format = kFormatVersion;
  std::string kernel;
  uint64_t xcr0 = 0;
  std::vector<std::pair<std::string, uint64_t>> vdso;  // special mappings in order, sizes
  std::string id;
  std::string config;                // config.json text
  std::string cgroup;                // the cgroup record
  std::string hostname, domainname;  // of the container's UTS namespace at dump time
  std::vector<TaskRef> tasks;        // creation order: a parent before its children
  std::string ipc;  // JSON text of the IPC namespace (objects, sysctls: ipc.h); "" if shared
  // --manage-cgroups-mode at checkpoint ("" = soft); "ignore": restore takes the bundle's
  // linux.resources instead of the saved config's.
  std::string cgroup_mode;
  TtyImage tty;
  // Incremental images: a pre-dump (the container kept running, dirty tracking armed), and
  // the parent image this one refers to for unchanged pages (a path relative to this
  // image's directory, and the checksum of its manifest.json).
  bool pre_dump = false;
  std::string parent;
  uint64_t parent_hash = 0;
  uint64_t init_start = 0;  // start time of the container's init (same container check)
};

// Writers: task JSON returned as text (hashed into the manifest by the caller).
std::string task_to_json(const TaskImage& t);
base::Result<TaskImage> task_from_json(const std::string& text);
std::string manifest_to_json(const Manifest& m);
base::Result<Manifest> manifest_from_json(const std::string& text);

// A loaded image: manifest checked (format, host facts) and task files verified.
struct Image {
  std::string dir;
  Manifest manifest;
  std::vector<TaskImage> tasks;  // same order as manifest.tasks
  uint64_t manifest_hash = 0;    // hash64 of manifest.json
  // The parent chain (manifest.parent), loaded and checked the same way.
  std::shared_ptr<const Image> parent;
  const TaskImage* task(pid_t vpid) const;
};
// Loads the parent chain too (at most kMaxParents deep); a missing or changed parent is an
// error.
constexpr int kMaxParents = 64;
base::Result<Image> load_image(const std::string& dir);

}  // namespace zrun::ckpt
