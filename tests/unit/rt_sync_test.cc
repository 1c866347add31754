// The parent/init sync protocol: typed messages, and a peer's error winning over our EPIPE.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/sync_protocol.h"

namespace zrun::rt {
namespace {

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    a = sv[0];
    b = sv[1];
  }
  ~Pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

TEST(SyncProtocol, RoundTripAndUnexpected) {
  Pair p;
  ASSERT_TRUE(sync_send(p.a, SyncType::kGo, kGoRunHooks, 0, "state").ok());
  auto m = sync_expect(p.b, SyncType::kGo);
  ASSERT_TRUE(m.ok()) << m.error().text();
  EXPECT_EQ(m->hdr.flags, kGoRunHooks);
  EXPECT_EQ(m->text, "state");
  ASSERT_TRUE(sync_send(p.a, SyncType::kReady).ok());
  EXPECT_FALSE(sync_expect(p.b, SyncType::kGo).ok());
}

TEST(SyncProtocol, PeerErrorBecomesOurs) {
  Pair p;
  ASSERT_TRUE(sync_send(p.b, SyncType::kError, 0, ENOENT, "exec: \"x\": not found").ok());
  auto r = sync_expect(p.a, SyncType::kReady);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().msg, "exec: \"x\": not found");
  EXPECT_EQ(r.error().err, ENOENT);
}

// The init failed and exited while the parent was busy (e.g. joining cgroups): the
// parent's next send hits EPIPE, but the error reported is the init's queued one.
TEST(SyncProtocol, SendToADeadPeerReportsItsError) {
  Pair p;
  ASSERT_TRUE(
      sync_send(p.b, SyncType::kError, 0, 0, "exec: \"x\": executable file not found").ok());
  ::close(p.b);
  p.b = -1;
  auto r = sync_send(p.a, SyncType::kCgroupJoined);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().msg, "exec: \"x\": executable file not found");
}

TEST(SyncProtocol, DeadPeerWithoutMessage) {
  Pair p;
  ::close(p.b);
  p.b = -1;
  EXPECT_EQ(sync_recv(p.a).error().msg, "container init exited unexpectedly");
  EXPECT_EQ(sync_send(p.a, SyncType::kGo).error().msg, "container init exited unexpectedly");
}

}  // namespace
}  // namespace zrun::rt
