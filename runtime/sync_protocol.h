// Parent <-> container-init messages over one SOCK_SEQPACKET socketpair. Each message is
// one datagram: a fixed header plus an optional text (errors). The sequence for `create`:
//
//   parent                                   child (container init, PID 1 of the new ns)
//   clone3(flags) ------------------------->  [namespaces created by clone3]
//                                             join/unshare the rest; new user ns ->
//                  <------------------------  kUserNsReady (only with a new user ns)
//   write uid_map/gid_map
//   join v1 cgroups*, oom_score_adj
//   kGo{run_hooks, join_later} ------------>  hostname, prepare_rootfs (mounts, /dev)
//   (join v1 cgroups, if join_later)
//                  <------------------------  kMountsDone (only when run_hooks)
//   prestart + createRuntime hooks
//   kHooksDone ---------------------------->  createContainer hooks, pivot_root, masked
//                                             paths, sysctl, rlimits, console, identity
//   kCgroupJoined (only with join_later) -->  (waited for here)
//                  <------------------------  kReady   (or kError{step, errno, text})
//   write state.json + pid file, exit         block on exec.fifo until `start`
//
// Any failure in the child sends kError and _exit(1)s; the parent prints it and rolls back.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace zrun::rt {

enum class SyncType : uint32_t {
  kUserNsReady = 1,
  kGo = 2,
  kMountsDone = 3,
  kHooksDone = 4,
  kReady = 5,
  kError = 6,
  kCgroupJoined = 7,
};

struct SyncHeader {
  SyncType type;
  int32_t err;     // errno for kError
  uint32_t flags;  // kGo: kGoRunHooks
  uint32_t reserved;
};

constexpr uint32_t kGoRunHooks = 1;
// The parent joins the v1 cgroups after kGo, while the child sets up its rootfs; it
// sends kCgroupJoined (after kHooksDone, if any) and the child waits for it before kReady.
constexpr uint32_t kGoJoinLater = 2;
constexpr size_t kSyncMaxMessage = 4096;

struct SyncMessage {
  SyncHeader hdr{};
  std::string text;
};

base::Result<void> sync_send(int fd, SyncType type, uint32_t flags = 0, int err = 0,
                             const std::string& text = {});
// When our side of a step failed because the peer is gone, the peer's queued kError (if
// any) is the real cause: return it, else `ours`. Never blocks.
base::Error prefer_peer_error(int fd, base::Error ours);
// Receive one message; EOF (peer closed/died) is an error "container init exited".
base::Result<SyncMessage> sync_recv(int fd);
// Receive and insist on `want`; a kError from the peer becomes this side's error.
base::Result<SyncMessage> sync_expect(int fd, SyncType want);

}  // namespace zrun::rt
