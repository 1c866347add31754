// Restore, container side: the container init (vpid 1, still privileged) forks the saved
// process tree as placeholder tasks with clone3(set_tid) so every task gets its saved
// virtual PID, parent, session and process group. Each task then finishes the init steps
// (identity) and parks in pause() until the restorer rebuilds it by ptrace injection.
#pragma once

#include <sys/types.h>

#include <vector>

#include "base/result.h"

namespace zrun::ckpt {

struct PlaceholderTask {
  pid_t vpid = 0, ppid = 0, pgid = 0, sid = 0;
  std::vector<pid_t> threads;  // thread ids besides the leader
};

struct PlaceholderPlan {
  std::vector<PlaceholderTask> tasks;  // creation order; tasks[0] is vpid 1
  bool console = false;                // the image has a console: the spec must ask for a terminal
};

struct PlaceholderRole {
  pid_t vpid = 1;
  int ready_fd = -1;  // init: read end; others: write end
};

// In the init (vpid 1): fork the tree. Returns in every task, with its role.
base::Result<PlaceholderRole> spawn_placeholders(const PlaceholderPlan& plan);
// Non-init tasks: say "ready" (after the identity step). The init: wait until every other
// task did (or died: an error).
base::Result<void> placeholder_ready(const PlaceholderPlan& plan, const PlaceholderRole& role);
// Close every fd above stderr and wait for the restorer, forever.
[[noreturn]] void park_placeholder() noexcept;

}  // namespace zrun::ckpt
