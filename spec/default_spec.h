// The config.json that `zrun spec` writes: the same template as `runc spec`.
#pragma once

#include <string>

namespace zrun::spec {

// Pretty-printed (tab-indented, like runc) JSON without a trailing newline.
// `rootless` gives the `runc spec --rootless` variant: a user namespace mapping the
// caller's euid/egid to 0, no network namespace, /sys bind-mounted, no resources.
std::string default_spec_json(bool rootless);

}  // namespace zrun::spec
