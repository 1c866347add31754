// The container's IPC namespace in a checkpoint (docs/checkpoint.md "IPC namespace"):
// SysV shared memory segments (with their attachments in the tasks), semaphore sets and
// message queues, POSIX message queues (and the tasks' mqd_t fds), all restored with the
// same ids/names, and the namespace's sysctls.
//
// Dump: a child of zrun joins the container's IPC namespace and reads every object there
// (SHM_STAT_ANY, SEM_STAT_ANY, MSG_STAT_ANY, msgrcv(MSG_COPY); shm contents through a read-only
// shmat). Nothing in the namespace changes, but POSIX queues, which the kernel cannot read without
// receiving: their messages are received and sent back at once, in order.
// Restore: a child joins the new container's IPC namespace, sets
// /proc/sys/kernel/{shm,sem,msg}_next_id before each create (the namespace is fresh, so
// the saved ids are free) and fills the objects; tasks re-attach their segments by an
// injected shmat + mremap to the saved address, and open their mqd_t fds by an injected
// mq_open.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "checkpoint/image.h"
#include "checkpoint/ptrace.h"

namespace zrun::ckpt {

// "/SYSV0000abcd (deleted)": a SysV shm attachment in /proc/PID/maps (its inode is the
// segment's id).
bool is_sysv_shm(const std::string& maps_name);

// An fd of the mqueue fs (an mqd_t): its queue's name ("/q") in *name.
bool is_mqueue_fd(const std::string& proc_fd_link_path, std::string* name);

// What the dump needs to know about a task to check its IPC use.
struct IpcUser {
  pid_t pid = 0;                     // host pid
  std::string who;                   // "pid 3 (sh)"
  std::vector<uint64_t> shm_ids;     // attached segments
  std::vector<std::string> mqueues;  // open POSIX queues ("/q")
};

// Save the IPC namespace of `init_pid` (shm contents into `dir`/shm-<id>.img); returns
// the manifest's "ipc" JSON text, or "" when the container shares zrun's IPC namespace
// (then nothing of it may be in use). Refuses what cannot be saved before anything is
// changed.
base::Result<std::string> dump_ipc(pid_t init_pid, const std::vector<IpcUser>& users,
                                   const std::string& dir);

// Restore, in the new container's IPC namespace (of `init_pid`), every object of the
// image with its id, before the tasks are rebuilt.
base::Result<void> restore_ipc(pid_t init_pid, const Image& img);
// After every task re-attached: mark the segments that were marked for destruction.
base::Result<void> finish_ipc(pid_t init_pid, const Image& img);
// In a task being rebuilt: attach segment v.shmid at v.start with v's protection.
// `gap(len)`: an address with `len` bytes free in the task now and in no saved mapping,
// where the whole segment is attached first.
base::Result<void> attach_shm(Tracee& tr, const VmaImage& v,
                              const std::function<uint64_t(uint64_t)>& gap);
// In a task being rebuilt: open the POSIX queue of `f` (kind "mqueue") on f.fd.
base::Result<void> open_mqueue_fd(Tracee& tr, const FdImage& f);

}  // namespace zrun::ckpt
