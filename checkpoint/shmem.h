// Memory objects and fd objects that are not files inside the container root
// (docs/checkpoint.md "Memory objects"): memfds, shared anonymous memory
// ("/dev/zero (deleted)"), unlinked-but-open regular files, eventfds. One object may be
// behind several fds and mappings of several tasks; it is saved once (contents by data
// extent, holes skipped) and comes back as one object.
//
// Dump: ObjectDump classifies fds and mappings while nothing is changed (refusing what it
// cannot save), writes the contents once every check passed, and attaches each object to
// the first task in creation order that refers to it.
// Restore: ObjectRestore creates an object in that first task (injected memfd_create, a
// shared anonymous mmap reopened through /proc/self/map_files, O_TMPFILE in the file's
// old directory, eventfd2) and fills it from the restorer's own fd; later tasks open it
// through the creator's fd or mapping in the pod's /proc (eventfds: pidfd_getfd). Seals
// are added after every task was rebuilt.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "checkpoint/image.h"
#include "checkpoint/proc.h"
#include "checkpoint/ptrace.h"

namespace zrun::ckpt {

class ObjectDump {
 public:
  // An fd that is neither a file inside the root nor a pipe (f.fd, f.flags, f.pos are
  // set): true and f.kind/f.path set when it is an object; false when it is not one of
  // ours (the caller refuses it or takes it for stdio); an error names what is refused.
  base::Result<bool> fd(pid_t pid, const std::string& who, FdImage& f, const std::string& fdinfo);
  // A file-backed mapping whose map_files link `magic` is not a file inside the root:
  // true and *key set when it is mapped from an object.
  base::Result<bool> mapping(pid_t pid, const std::string& who, const Vma& v,
                             const std::string& magic, std::string* key);
  // /proc/PID/exe when it is not a file inside the root: true and *key set when it is an
  // object (a memfd, an unlinked file).
  base::Result<bool> exe(pid_t pid, const std::string& who, std::string* key);
  // Once every check passed: write each object's contents into `dir`.
  base::Result<void> save(const std::string& dir);
  // In creation order: the objects `img` is the first to refer to go into img.objects.
  void attach(TaskImage& img);

 private:
  struct Obj {
    ObjectImage img;
    std::string source;  // a /proc magic link to read it through
  };
  base::Result<std::string> classify(const std::string& who, const std::string& what,
                                     const std::string& magic, pid_t pid);
  std::map<std::string, Obj> objs_;
  std::set<std::string> attached_;
};

class ObjectRestore {
 public:
  explicit ObjectRestore(const Image& img);
  static bool handles(const std::string& fd_kind);
  // Before rebuilding a task (host pid `host`): its temporary object fds go above its
  // highest saved fd.
  void begin_task(const TaskImage& img, pid_t host);
  // An fd of object `key` in the task (O_RDWR, close-on-exec, temporary): created in
  // the first task that refers to it, opened through that task elsewhere.
  base::Result<long> get(Tracee& tr, const std::string& key);
  // The fd to mmap the object from: read-only unless the mapping is shared and writable.
  base::Result<long> get_for_map(Tracee& tr, const std::string& key, bool write);
  // Install a saved fd of an object kind.
  base::Result<void> install_fd(Tracee& tr, const FdImage& f, int keep_flags);
  // A read-only fd of object `key` for PR_SET_MM_MAP's exe_fd (the caller closes it).
  base::Result<long> open_exe(Tracee& tr, const std::string& key);
  // Close the task's temporary fds; later tasks find its objects through its saved
  // fds and mappings.
  base::Result<void> end_task(Tracee& tr);
  // After every task: add the saved seals.
  base::Result<void> finish();

 private:
  struct Obj {
    const ObjectImage* img = nullptr;
    std::string holder;     // "/proc/<vpid>/fd/<n>" or ".../map_files/<range>" once created
    pid_t holder_vpid = 0;  // eventfd: the task and fd that has it
    int holder_fd = -1;
    base::UniqueFd ours;  // the restorer's own fd (contents, seals)
  };
  base::Result<long> create(Tracee& tr, Obj& o);
  base::Result<void> fill(Obj& o, int tmp_fd);
  base::Result<void> seal(Obj& o);
  std::string dir_;
  std::map<std::string, Obj> objs_;
  const TaskImage* task_ = nullptr;
  pid_t host_ = 0;
  int base_fd_ = 0;
  std::map<std::string, long> tmp_;  // this task's temporary fds
};

}  // namespace zrun::ckpt
