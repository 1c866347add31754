// fd passing over unix sockets and the console pty handed to a --console-socket peer.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "base/sys.h"
#include "isolation/console.h"

namespace zrun::iso {
namespace {

TEST(SendFd, RoundTripOverSocketpair) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  base::UniqueFd a(sv[0]), b(sv[1]);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  base::UniqueFd rd(p[0]), wr(p[1]);
  ASSERT_TRUE(send_fd(a.get(), wr.get(), "/dev/pts/7").ok());
  wr.reset();
  std::string name;
  auto got = recv_fd_named(b.get(), &name);
  ASSERT_TRUE(got.ok()) << got.error().text();
  EXPECT_EQ(name, "/dev/pts/7");
  EXPECT_NE(got->get(), rd.get());
  EXPECT_TRUE(fcntl(got->get(), F_GETFD) & FD_CLOEXEC);
  ASSERT_EQ(write(got->get(), "hi", 2), 2);
  char buf[4] = {};
  ASSERT_EQ(read(rd.get(), buf, sizeof(buf)), 2);
  EXPECT_STREQ(buf, "hi");
}

TEST(SendFd, RecvWithoutFdFails) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  base::UniqueFd a(sv[0]), b(sv[1]);
  ASSERT_EQ(write(a.get(), "x", 1), 1);
  auto r = recv_fd(b.get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().msg, "receive fd: message carried no fd");
  a.reset();
  r = recv_fd(b.get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().msg, "receive fd: peer closed the socket");
}

TEST(ConnectUnix, ConnectsAndReportsErrors) {
  char tmpl[] = "/tmp/zrun-iso-sock-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/console.sock";
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  base::UniqueFd listener(l);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(l, 1), 0);
  auto c = connect_unix(path);
  EXPECT_TRUE(c.ok());
  auto bad = connect_unix(std::string(tmpl) + "/nope.sock");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().err, ENOENT);
  EXPECT_FALSE(connect_unix(std::string(200, 'x')).ok());
  unlink(path.c_str());
  rmdir(tmpl);
}

// The child (like a container init) sets up the console and writes to its stdout; the
// parent (like a --console-socket peer) receives the master and reads the output.
TEST(SetupConsole, HandsMasterToPeer) {
  if (access("/dev/ptmx", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/ptmx";
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    auto r = setup_console(sv[1], spec::ConsoleSize{25, 100});
    if (!r.ok()) _exit(1);
    struct winsize ws {};
    if (ioctl(1, TIOCGWINSZ, &ws) < 0 || ws.ws_row != 25 || ws.ws_col != 100) _exit(2);
    if (!isatty(0) || !isatty(2) || tcgetsid(0) != getpid()) _exit(3);
    if (fcntl(0, F_GETFD) & FD_CLOEXEC) _exit(4);
    if (write(1, "ready\n", 6) != 6) _exit(5);
    _exit(0);
  }
  close(sv[1]);
  base::UniqueFd sock(sv[0]);
  std::string name;
  auto master = recv_fd_named(sock.get(), &name);
  ASSERT_TRUE(master.ok()) << master.error().text();
  EXPECT_TRUE(base::starts_with(name, "/dev/pts/")) << name;
  std::string out;
  char buf[64];
  while (out.find("ready") == std::string::npos) {
    ssize_t n = read(master->get(), buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(out.find("ready"), std::string::npos) << out;
}

}  // namespace
}  // namespace zrun::iso
