#include "runtime/cli/relay.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "base/sys.h"
#include "isolation/console.h"

namespace zrun::cli {
namespace {

using base::Result;

// Our terminal in raw mode while a container's pty is proxied; restored on destruction.
class RawTerminal {
 public:
  RawTerminal() {
    if (::isatty(0) && ::tcgetattr(0, &saved_) == 0) {
      struct termios raw = saved_;
      ::cfmakeraw(&raw);
      active_ = ::tcsetattr(0, TCSANOW, &raw) == 0;
    }
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(0, TCSANOW, &saved_);
  }

 private:
  struct termios saved_ {};
  bool active_ = false;
};

void copy_winsize(int master) {
  struct winsize ws {};
  if (::ioctl(0, TIOCGWINSZ, &ws) == 0) ::ioctl(master, TIOCSWINSZ, &ws);
}

// Copy what is readable on `from` to `to`; false on EOF/error.
bool pump(int from, int to) {
  char buf[16384];
  ssize_t n = ::read(from, buf, sizeof(buf));
  if (n <= 0) return false;
  return base::write_all(to, std::string_view(buf, static_cast<size_t>(n))).ok();
}

// Forward every catchable signal to the container's init until it exits; returns its
// wait status. Signals are blocked and read from a signalfd, so no handler races. With a
// pty (`master` >= 0) it also relays stdin -> pty and pty -> stdout, like runc's run.
Result<int> relay_loop(const rt::Created& c, int master) {
  sigset_t all;
  sigfillset(&all);
  for (int s : {SIGCHLD, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS})
    sigdelset(&all, s);
  sigset_t old;
  ::sigprocmask(SIG_BLOCK, &all, &old);
  base::UniqueFd sfd(::signalfd(-1, &all, SFD_CLOEXEC));
  if (!sfd) return base::sys_error("signalfd");
  if (master >= 0) copy_winsize(master);
  bool stdin_open = master >= 0;
  for (;;) {
    struct pollfd p[4] = {{c.pidfd.get(), POLLIN, 0},
                          {sfd.get(), POLLIN, 0},
                          {master, POLLIN, 0},
                          {stdin_open ? 0 : -1, POLLIN, 0}};
    int r = ::poll(p, 4, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return base::sys_error("poll");
    if (p[1].revents & POLLIN) {
      struct signalfd_siginfo si {};
      if (::read(sfd.get(), &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGWINCH && master >= 0)
          copy_winsize(master);
        else
          ::syscall(SYS_pidfd_send_signal, c.pidfd.get(), si.ssi_signo, nullptr, 0);
      }
    }
    if (p[2].revents & (POLLIN | POLLHUP)) pump(master, 1);
    if (p[3].revents & (POLLIN | POLLHUP)) stdin_open = pump(0, master);
    if (p[0].revents & POLLIN) {
      // Drain what the container wrote last before reporting its exit.
      if (master >= 0)
        while (true) {
          struct pollfd d {
            master, POLLIN, 0
          };
          if (::poll(&d, 1, 0) <= 0 || !(d.revents & POLLIN) || !pump(master, 1)) break;
        }
      break;
    }
  }
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  return base::wait_pid(c.pid);
}

}  // namespace

Result<ConsolePair> make_console_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return base::sys_error("socketpair");
  return ConsolePair{base::UniqueFd(sv[0]), base::UniqueFd(sv[1])};
}

Result<int> relay_until_exit(const rt::Created& c, ConsolePair* console) {
  base::UniqueFd master;
  if (c.terminal && console)
    master = ZRUN_TRY_CTX(iso::recv_fd(console->ours.get()), "receive pty master");
  if (console) console->theirs.reset();
  std::optional<RawTerminal> raw;
  if (master) raw.emplace();
  return relay_loop(c, master ? master.get() : -1);
}

}  // namespace zrun::cli
