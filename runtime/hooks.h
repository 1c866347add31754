// OCI lifecycle hooks (runtime-spec config.md#posix-platform-hooks): run each hook with
// the container state on its stdin, in order, stopping at the first failure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "spec/config.h"

namespace zrun::rt {

// Runs `hooks` one after the other. Each gets argv = args (or {path} if args is empty),
// exactly its own env, `state_json` on stdin, and our stdout/stderr; no other fds.
// Errors: "<phase> hook `<path>`: exit status N" / "...: timed out after N s" /
// "...: killed by signal N" / "...: spawn: <strerror>".
// No threads and no signal handlers, so it is safe in a forked child (the container
// init runs createContainer/startContainer hooks).
base::Result<void> run_hooks(const std::vector<spec::Hook>& hooks, const std::string& state_json,
                             std::string_view phase);

// One hook, same contract.
base::Result<void> run_hook(const spec::Hook& hook, const std::string& state_json,
                            std::string_view phase);

}  // namespace zrun::rt
