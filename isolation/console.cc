// Console pty and fd passing. See console.h.
#include "isolation/console.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

namespace zrun::iso {

base::Result<base::UniqueFd> connect_unix(const std::string& path) {
  struct sockaddr_un addr {};
  if (path.size() >= sizeof(addr.sun_path))
    return base::make_error("connect `" + path + "`: socket path too long");
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return base::sys_error("socket");
  base::UniqueFd fd(s);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return base::sys_error("connect `" + path + "`");
  return fd;
}

base::Result<void> send_fd(int sock, int fd, std::string_view name) {
  std::string payload = name.empty() ? std::string("fd") : std::string(name);
  struct iovec iov {};
  iov.iov_base = payload.data();
  iov.iov_len = payload.size();
  alignas(struct cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl;
  msg.msg_controllen = sizeof(ctl);
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return base::sys_error("send fd over console socket");
  return base::ok();
}

base::Result<base::UniqueFd> recv_fd_named(int sock, std::string* name) {
  char buf[4096];
  struct iovec iov {};
  iov.iov_base = buf;
  iov.iov_len = sizeof(buf);
  alignas(struct cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl;
  msg.msg_controllen = sizeof(ctl);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return base::sys_error("receive fd");
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
    if (name) name->assign(buf, static_cast<size_t>(n));
    return base::UniqueFd(fd);
  }
  return base::make_error(n == 0 ? "receive fd: peer closed the socket"
                                 : "receive fd: message carried no fd");
}

base::Result<base::UniqueFd> recv_fd(int sock) { return recv_fd_named(sock, nullptr); }

base::Result<void> setup_console(int console_sock_fd,
                                 const std::optional<spec::ConsoleSize>& size) {
  int m = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) return base::sys_error("open `/dev/ptmx`");
  base::UniqueFd master(m);
  if (::grantpt(master.get()) < 0) return base::sys_error("grantpt");
  if (::unlockpt(master.get()) < 0) return base::sys_error("unlockpt");
  char name[128];
  if (::ptsname_r(master.get(), name, sizeof(name)) != 0) return base::sys_error("ptsname");
  if (size) {
    struct winsize ws {};
    ws.ws_row = static_cast<unsigned short>(size->height);
    ws.ws_col = static_cast<unsigned short>(size->width);
    if (::ioctl(master.get(), TIOCSWINSZ, &ws) < 0) return base::sys_error("set console size");
  }
  // A session leader cannot setsid again (EPERM); that is fine if we already lead one.
  if (::setsid() < 0 && ::getsid(0) != ::getpid()) return base::sys_error("setsid");
  int s = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) return base::sys_error(std::string("open `") + name + "`");
  base::UniqueFd slave(s);
  if (::ioctl(slave.get(), TIOCSCTTY, 0) < 0) return base::sys_error("set controlling terminal");
  for (int i = 0; i < 3; ++i)
    if (::dup2(slave.get(), i) < 0) return base::sys_error("dup2 console to stdio");
  if (slave.get() <= 2) {
    // dup2(fd, fd) keeps O_CLOEXEC; the stdio copy must survive execve.
    if (::fcntl(slave.get(), F_SETFD, 0) < 0) return base::sys_error("fcntl console");
    slave.release();
  }
  ZRUN_TRY(send_fd(console_sock_fd, master.get(), name));
  return base::ok();
}

}  // namespace zrun::iso
