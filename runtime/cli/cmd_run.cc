// run: create + start, then (foreground) relay signals to the container and exit with its
// exit code; the container is deleted when it exits unless --keep.
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <optional>

#include "base/log.h"
#include "base/sys.h"
#include "isolation/console.h"
#include "runtime/cli/command.h"
#include "runtime/container.h"

namespace zrun::cli {
namespace {

using base::Result;

struct RunOptions {
  rt::CreateOptions create;
  bool detach = false;
  bool keep = false;
};

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
Result<int> relay_until_exit(const rt::Created& c, int master) {
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
          struct pollfd d {master, POLLIN, 0};
          if (::poll(&d, 1, 0) <= 0 || !(d.revents & POLLIN) || !pump(master, 1)) break;
        }
      break;
    }
  }
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  return base::wait_pid(c.pid);
}

ZRUN_COMMAND("run", 30, [](CLI::App& app, const GlobalOptions& g) -> Action {
  auto* c = app.add_subcommand("run", "create and start a container, wait for it to exit");
  auto o = std::make_shared<RunOptions>();
  c->add_option("-b,--bundle", o->create.bundle, "path to the bundle directory")
      ->capture_default_str();
  c->add_option("--console-socket", o->create.console_socket,
                "unix socket that receives the pty master (process.terminal)");
  c->add_option("--pid-file", o->create.pid_file, "write the container's init PID here");
  c->add_flag("--no-pivot", o->create.no_pivot, "use MS_MOVE + chroot instead of pivot_root");
  c->add_flag("--no-new-keyring", o->create.no_new_keyring, "no new session keyring");
  c->add_option("--preserve-fds", o->create.preserve_fds, "pass N extra fds to the container")
      ->check(CLI::NonNegativeNumber);
  c->add_flag("-d,--detach", o->detach, "return once the container has started");
  c->add_flag("--keep", o->keep, "do not delete the container after it exits");
  c->add_option("id", o->create.id, "container id")->required();
  return [o, &g]() -> Result<int> {
    o->create.systemd_cgroup = g.systemd_cgroup;
    rt::StateStore store(g.root);
    const std::string& id = o->create.id;
    // Foreground without --console-socket: if the spec asks for a terminal, we hold the
    // other end of the console socket and proxy the pty ourselves.
    base::UniqueFd console_ours, console_theirs;
    if (!o->detach && o->create.console_socket.empty()) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return base::sys_error("socketpair");
      console_ours.reset(sv[0]);
      console_theirs.reset(sv[1]);
      o->create.console_fd = sv[1];
    }
    auto created = rt::create_container(store, o->create);
    if (!created) return base::context(std::move(created).error(), "run `" + id + "`");
    {
      auto ct = ZRUN_TRY(rt::Container::open(store, id, true));
      auto r = ct.start();
      if (!r) {
        (void)ct.remove(true);
        return base::context(std::move(r).error(), "run `" + id + "`");
      }
    }
    if (o->detach) return 0;
    base::UniqueFd master;
    if (created->terminal && console_ours)
      master = ZRUN_TRY_CTX(iso::recv_fd(console_ours.get()), "receive pty master");
    console_theirs.reset();
    std::optional<RawTerminal> raw;
    if (master) raw.emplace();
    auto status_r = relay_until_exit(*created, master ? master.get() : -1);
    raw.reset();
    int status = ZRUN_TRY(std::move(status_r));
    if (!o->keep) {
      auto ct = ZRUN_TRY(rt::Container::open(store, id, true));
      if (auto r = ct.remove(true); !r) base::log_warn(r.error().text());
    }
    return base::exit_code_from_status(status);
  };
});

}  // namespace
}  // namespace zrun::cli
