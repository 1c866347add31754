// The container's console (process.terminal) across checkpoint/restore
// (docs/checkpoint.md "Console"). At dump the pty slave the container's tasks have as
// controlling tty (made by `create`, its master held by the --console-socket peer) is
// recognised: fds on it become "tty" fds and its termios, window size, session and
// foreground process group are saved (TtyImage). At restore the runtime creates a fresh
// pty exactly as `create` does (its master goes to the new --console-socket); the
// restorer sets the saved termios and size on it, reopens the slave at the saved fd
// numbers (injected open) and, in the session leader, makes it the controlling tty
// again (injected TIOCSCTTY) with the saved foreground group (injected TIOCSPGRP).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.h"
#include "checkpoint/image.h"
#include "checkpoint/ptrace.h"

namespace zrun::ckpt {

// A pty device: a Unix98 slave (majors 136-143) or the multiplexer /dev/ptmx (5:2).
bool is_pty_device(dev_t rdev);

// Dump: the container's console, the pty slave inode in the container's devpts (device
// numbers alone are ambiguous: every devpts instance has its own pts/0). It is the pty
// on one of the init's fds 0-2 that is the init's controlling tty (or, when the init has
// none, any pty there) and is reachable inside the container; a terminal of the engine's
// caller (a non-terminal container run from a shell) is not. Zero `ino`: no console.
struct ConsoleId {
  dev_t dev = 0, rdev = 0;
  ino_t ino = 0;
  bool is(const struct stat& st) const;
};
ConsoleId find_console(pid_t init_pid);

struct ConsoleTask {
  pid_t host = 0;
  const TaskImage* img = nullptr;
};
// Dump: the console's state, read through a task's "tty" fd (termios, window size) and
// /proc/PID/stat (which session has it as controlling tty, its foreground group), with
// host pgrps mapped to the pod's. Empty result (no slave) when no task has it open.
base::Result<TtyImage> dump_console(const ConsoleId& console,
                                    const std::vector<ConsoleTask>& tasks);

// Restore, before the placeholders are seized: the new console is the pty slave on the
// init placeholder's fd 0 (setup_console); set the saved termios and window size on it
// (the placeholders ignore the SIGWINCH). Returns its path inside the container.
base::Result<std::string> prepare_console(pid_t init_pid, const TtyImage& tty);

// Restore, injected into the task with vpid `img.vpid` while it is still privileged: if
// it leads the session that had the console as controlling tty, make the console that
// (stealing it from the init's session when that is another one) and set the saved
// foreground process group.
base::Result<void> restore_console_task(Tracee& tr, const TaskImage& img, const TtyImage& tty,
                                        const std::string& slave);

}  // namespace zrun::ckpt
