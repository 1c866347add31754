// zrun update on the runtime side: apply new linux.resources to a live container's cgroup
// and keep them in its saved config.json, so a later update (its device rules need the
// saved linux.devices), a checkpoint/restore that re-creates the cgroup, or anything else
// reading the saved spec sees the values in force, not the ones of create.
#pragma once

#include <string>

#include "base/result.h"
#include "runtime/container.h"
#include "spec/config.h"

namespace zrun::rt {

// `config_text` (a config.json) with `patch_json` (a linux.resources object holding what
// an update changed) merged into .linux.resources: objects are merged key by key (so
// `--cpu-period` keeps an earlier `--cpu-quota`), any other value, arrays included,
// replaces the saved one, a null leaves it alone. Errors: text that is not JSON, a patch
// that is not an object, .linux that is not an object.
base::Result<std::string> merge_resources_patch(const std::string& config_text,
                                                const std::string& patch_json);

// Apply `r` to `ct`'s cgroup (device rules, when given, with the saved spec's
// linux.devices and the defaults appended), then merge `patch_json` into
// <state dir>/config.json, written atomically. `ct` must be open exclusively.
base::Result<void> update_resources(Container& ct, const spec::Resources& r,
                                    const std::string& patch_json);

}  // namespace zrun::rt
