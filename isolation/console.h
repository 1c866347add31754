// Container console (process.terminal): the init allocates a pty inside the container
// (devpts newinstance at /dev/pts, /dev/ptmx -> pts/ptmx), makes the slave its
// controlling terminal and stdio, and passes the master to the --console-socket peer
// with SCM_RIGHTS, as runc does. The socket helpers are shared with the CLI side.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "spec/config.h"

namespace zrun::iso {

// Child side, after the pivot: pty + setsid + TIOCSCTTY + dup2 to 0/1/2, then send the
// master over `console_sock_fd` (payload: the slave's name) and close it.
base::Result<void> setup_console(int console_sock_fd, const std::optional<spec::ConsoleSize>& size);

// Connect a SOCK_STREAM unix socket (--console-socket PATH).
base::Result<base::UniqueFd> connect_unix(const std::string& path);
// Send one fd with SCM_RIGHTS; `name` is the message payload (non-empty).
base::Result<void> send_fd(int sock, int fd, std::string_view name);
// Receive one fd sent with send_fd (the payload is discarded; see recv_fd_named).
base::Result<base::UniqueFd> recv_fd(int sock);
// Same, also returning the payload.
base::Result<base::UniqueFd> recv_fd_named(int sock, std::string* name);

}  // namespace zrun::iso
