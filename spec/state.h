// The runtime-spec state document (runtime.md#state): what `zrun state` prints and what
// hooks read on stdin.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

#include "base/result.h"

namespace zrun::spec {

struct State {
  std::string oci_version = "1.2.0";
  std::string id;
  std::string status;  // creating, created, running, stopped (+ paused, as runc)
  int pid = 0;         // 0 when stopped (as runc prints it)
  std::string bundle;
  std::map<std::string, std::string> annotations;
};

// Keys in spec order: ociVersion, id, status, pid, bundle, annotations (only when
// non-empty). Compact, no trailing newline; `pretty` indents with two spaces like runc.
std::string state_to_json(const State& s, bool pretty = false);
base::Result<State> state_from_json(const std::string& text);

}  // namespace zrun::spec
