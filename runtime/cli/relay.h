// Foreground relay shared by `run` and `exec`: forward signals to the container process,
// proxy a pty when the process has a terminal, and collect its exit status.
#pragma once

#include <optional>

#include "base/result.h"
#include "base/unique_fd.h"
#include "runtime/container.h"

namespace zrun::cli {

// A socketpair standing in for --console-socket: we keep `ours` and receive the pty
// master on it; `theirs` goes to the launcher as CreateOptions::console_fd.
struct ConsolePair {
  base::UniqueFd ours, theirs;
};
base::Result<ConsolePair> make_console_pair();

// Relay until the process exits; `console` is the pair made before the process was
// created, or null when the caller passed --console-socket. Returns the wait status.
base::Result<int> relay_until_exit(const rt::Created& c, ConsolePair* console);

}  // namespace zrun::cli
