#include "runtime/sync_protocol.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace zrun::rt {

using base::Result;

Result<void> sync_send(int fd, SyncType type, uint32_t flags, int err, const std::string& text) {
  char buf[kSyncMaxMessage];
  SyncHeader h{type, err, flags, 0};
  size_t tlen = std::min(text.size(), sizeof(buf) - sizeof(h));
  std::memcpy(buf, &h, sizeof(h));
  std::memcpy(buf + sizeof(h), text.data(), tlen);
  ssize_t n;
  do {
    n = ::send(fd, buf, sizeof(h) + tlen, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int e = errno;
    // The peer failed and exited first: its kError says why, not our EPIPE.
    if (e == EPIPE || e == ECONNRESET)
      return prefer_peer_error(fd, base::make_error("container init exited unexpectedly"));
    return base::sys_error("sync: send", e);
  }
  return base::ok();
}

base::Error prefer_peer_error(int fd, base::Error ours) {
  char buf[kSyncMaxMessage];
  ssize_t r;
  do {
    r = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  SyncHeader peer{};
  if (r < static_cast<ssize_t>(sizeof(peer))) return ours;
  std::memcpy(&peer, buf, sizeof(peer));
  if (peer.type != SyncType::kError) return ours;
  return base::Error{std::string(buf + sizeof(peer), static_cast<size_t>(r) - sizeof(peer)),
                     peer.err};
}

Result<SyncMessage> sync_recv(int fd) {
  char buf[kSyncMaxMessage];
  ssize_t n;
  do {
    n = ::recv(fd, buf, sizeof(buf), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return base::sys_error("sync: recv");
  if (n == 0) return base::make_error("container init exited unexpectedly");
  if (static_cast<size_t>(n) < sizeof(SyncHeader)) return base::make_error("sync: short message");
  SyncMessage m;
  std::memcpy(&m.hdr, buf, sizeof(SyncHeader));
  m.text.assign(buf + sizeof(SyncHeader), static_cast<size_t>(n) - sizeof(SyncHeader));
  return m;
}

Result<SyncMessage> sync_expect(int fd, SyncType want) {
  auto m = ZRUN_TRY(sync_recv(fd));
  if (m.hdr.type == SyncType::kError) return base::Error{m.text, m.hdr.err};
  if (m.hdr.type != want)
    return base::make_error("sync: unexpected message " +
                            std::to_string(static_cast<uint32_t>(m.hdr.type)) + ", want " +
                            std::to_string(static_cast<uint32_t>(want)));
  return m;
}

}  // namespace zrun::rt
