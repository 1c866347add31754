#include "checkpoint/tty.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>

#include "base/sys.h"

namespace zrun::ckpt {

using base::Result;

namespace {

// struct termios2 (asm/termbits.h, which clashes with <termios.h>): 4 flag words, c_line,
// 19 control chars, 2 speeds = 44 bytes. TCGETS2/TCSETS2 = _IOR/_IOW('T', 0x2A/0x2B, 44).
constexpr size_t kTermios2Size = 44;
constexpr unsigned long kTcgets2 = 0x802C542A, kTcsets2 = 0x402C542B;

// Fields 5-8 of /proc/PID/stat (pgrp, session, tty_nr, tpgid), as host pids.
struct StatTty {
  pid_t pgrp = 0, session = 0, tpgid = 0;
  dev_t tty = 0;
};

Result<StatTty> stat_tty(pid_t pid) {
  auto text = ZRUN_TRY(base::read_file("/proc/" + std::to_string(pid) + "/stat"));
  auto close = text.rfind(')');  // comm may hold spaces and parentheses
  if (close == std::string::npos) return base::make_error("parse /proc/PID/stat");
  std::vector<std::string> f;
  for (auto& x : base::split(text.substr(close + 2), ' '))
    if (!x.empty()) f.push_back(x);
  // state ppid pgrp session tty_nr tpgid
  if (f.size() < 6) return base::make_error("parse /proc/PID/stat");
  StatTty s;
  s.pgrp = static_cast<pid_t>(std::stol(f[2]));
  s.session = static_cast<pid_t>(std::stol(f[3]));
  // tty_nr is new_encode_dev(): minor low byte, major, then the minor's high bits.
  auto nr = static_cast<uint32_t>(std::stoul(f[4]));
  if (nr) s.tty = makedev((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00));
  s.tpgid = static_cast<pid_t>(std::stol(f[5]));
  return s;
}

bool is_pty_slave(dev_t rdev) { return major(rdev) >= 136 && major(rdev) <= 143; }

}  // namespace

bool is_pty_device(dev_t rdev) {
  return is_pty_slave(rdev) || (major(rdev) == 5 && minor(rdev) == 2);
}

bool ConsoleId::is(const struct stat& st) const {
  return ino != 0 && S_ISCHR(st.st_mode) && st.st_dev == dev && st.st_ino == ino;
}

ConsoleId find_console(pid_t init_pid) {
  auto ctty = stat_tty(init_pid);
  dev_t want = ctty && is_pty_slave(ctty->tty) ? ctty->tty : 0;
  std::string pid = std::to_string(init_pid);
  for (int fd = 0; fd < 3; fd++) {
    struct stat st {
    }, inside{};
    std::string magic = "/proc/" + pid + "/fd/" + std::to_string(fd);
    if (::stat(magic.c_str(), &st) < 0 || !S_ISCHR(st.st_mode) || !is_pty_slave(st.st_rdev) ||
        (want && st.st_rdev != want))
      continue;
    char buf[4096];
    ssize_t n = ::readlink(magic.c_str(), buf, sizeof(buf) - 1);
    if (n <= 0 || buf[0] != '/') continue;
    std::string in_root = "/proc/" + pid + "/root" + std::string(buf, static_cast<size_t>(n));
    if (::stat(in_root.c_str(), &inside) == 0 && inside.st_dev == st.st_dev &&
        inside.st_ino == st.st_ino)
      return ConsoleId{st.st_dev, st.st_rdev, st.st_ino};
  }
  return {};
}

Result<TtyImage> dump_console(const ConsoleId& console, const std::vector<ConsoleTask>& tasks) {
  TtyImage out;
  std::string magic;
  for (auto& t : tasks)
    for (auto& f : t.img->fds)
      if (f.kind == "tty" && magic.empty()) {
        magic = "/proc/" + std::to_string(t.host) + "/fd/" + std::to_string(f.fd);
        out.slave = f.path;
      }
  if (magic.empty()) return out;
  // Our own open of the same pty: O_NOCTTY, so it never becomes our controlling tty.
  auto fd = ZRUN_TRY(base::open_file(magic, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  char tio[kTermios2Size];
  if (::ioctl(fd.get(), kTcgets2, tio) < 0) return base::sys_error("console: TCGETS2");
  struct winsize ws {};
  if (::ioctl(fd.get(), TIOCGWINSZ, &ws) < 0) return base::sys_error("console: TIOCGWINSZ");
  out.termios = to_hex(std::string_view(tio, sizeof(tio)));
  out.winsize = to_hex(std::string_view(reinterpret_cast<char*>(&ws), sizeof(ws)));
  // Which session has it as controlling tty, and the foreground group (a host pgrp in
  // /proc/PID/stat: mapped through a task of that group).
  pid_t tpgid = 0;
  std::vector<std::pair<pid_t, pid_t>> pgrps;  // host pgrp -> vpgid
  for (auto& t : tasks) {
    auto s = ZRUN_TRY(stat_tty(t.host));
    pgrps.emplace_back(s.pgrp, t.img->pgid);
    if (s.tty != console.rdev) continue;
    out.sid = t.img->sid;
    tpgid = s.tpgid;
  }
  for (auto& [host, v] : pgrps)
    if (tpgid > 0 && host == tpgid) out.fg_pgrp = v;
  return out;
}

Result<std::string> prepare_console(pid_t init_pid, const TtyImage& tty) {
  std::string magic = "/proc/" + std::to_string(init_pid) + "/fd/0";
  struct stat st {};
  char buf[4096];
  ssize_t n = ::readlink(magic.c_str(), buf, sizeof(buf) - 1);
  if (::stat(magic.c_str(), &st) < 0 || n <= 0 || !S_ISCHR(st.st_mode) || !is_pty_slave(st.st_rdev))
    return base::make_error("the restored container has no console pty");
  std::string slave(buf, static_cast<size_t>(n));
  auto fd = ZRUN_TRY(base::open_file(magic, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!tty.termios.empty()) {
    auto tio = ZRUN_TRY(from_hex(tty.termios));
    if (tio.size() != kTermios2Size) return base::make_error("console: bad termios in the image");
    if (::ioctl(fd.get(), kTcsets2, tio.data()) < 0) return base::sys_error("console: TCSETS2");
  }
  if (!tty.winsize.empty()) {
    auto ws = ZRUN_TRY(from_hex(tty.winsize));
    if (ws.size() != sizeof(struct winsize))
      return base::make_error("console: bad window size in the image");
    if (::ioctl(fd.get(), TIOCSWINSZ, ws.data()) < 0) return base::sys_error("console: TIOCSWINSZ");
  }
  return slave;
}

namespace {

Result<void> set_ctty_and_pgrp(Tracee& tr, const TaskImage& img, const TtyImage& tty, long fd) {
  if (img.vpid != 1) ZRUN_TRY(tr.syscall_ok("ioctl TIOCSCTTY", SYS_ioctl, fd, TIOCSCTTY, 1));
  if (tty.fg_pgrp <= 0) return base::ok();
  // All signals are blocked while injecting, so TIOCSPGRP from a background group is not
  // stopped by SIGTTOU (tty_check_change treats a blocked signal as ignored).
  int32_t pgrp = tty.fg_pgrp;
  ZRUN_TRY(tr.write_mem(tr.scratch(), &pgrp, sizeof(pgrp)));
  ZRUN_TRY(tr.syscall_ok("ioctl TIOCSPGRP", SYS_ioctl, fd, TIOCSPGRP, tr.scratch()));
  return base::ok();
}

}  // namespace

Result<void> restore_console_task(Tracee& tr, const TaskImage& img, const TtyImage& tty,
                                  const std::string& slave) {
  if (tty.slave.empty() || tty.sid != img.vpid || img.sid != img.vpid) return base::ok();
  if (slave.size() + 1 > kPageSize - 8) return base::make_error("console path too long");
  ZRUN_TRY(tr.write_mem(tr.scratch() + 8, slave.c_str(), slave.size() + 1));
  long fd = ZRUN_TRY(tr.syscall_ok(("open `" + slave + "`").c_str(), SYS_openat, AT_FDCWD,
                                   tr.scratch() + 8, O_RDWR | O_NOCTTY | O_CLOEXEC));
  // The init's session got the console at create (setup_console); another session
  // leader takes it over (arg 1: steal, CAP_SYS_ADMIN, which the placeholder still has).
  auto r = set_ctty_and_pgrp(tr, img, tty, fd);
  ZRUN_TRY(tr.syscall(SYS_close, fd));
  if (!r) return base::context(std::move(r).error(), "console");
  return base::ok();
}

}  // namespace zrun::ckpt
