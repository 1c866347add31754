// Small helpers for reading and writing cgroupfs files. Writes never create files: a
// cgroup file that does not exist means the host's kernel or layout lacks the feature,
// which is reported as a clear error naming the file.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace zrun::cg {

// Write `value` to `<dir>/<file>` (O_WRONLY|O_TRUNC, no O_CREAT). Errors read
// "write `memory.max`: Invalid argument" or "... not available on this host".
base::Result<void> write_cg(const std::string& dir, std::string_view file, std::string_view value);
// Read `<dir>/<file>`, trimmed.
base::Result<std::string> read_cg(const std::string& dir, std::string_view file);
bool cg_file_exists(const std::string& dir, std::string_view file);

// Value of `key` in a flat-keyed file ("frozen 1\npopulated 0\n" -> key "frozen").
std::optional<std::string> keyed_value(std::string_view text, std::string_view key);

// PIDs listed in `<dir>/cgroup.procs` and every descendant cgroup's (sorted, unique).
base::Result<std::vector<pid_t>> read_procs_recursive(const std::string& dir);

// True when `dir` is on a cgroup (v1 or v2) filesystem; false on a fake tree.
bool on_cgroupfs(const std::string& dir);

// Unit tests: record every successful write as {path, value} while set (not thread-safe;
// tests only).
void set_write_trace(std::vector<std::pair<std::string, std::string>>* trace);
// Record an action that is not a file write (e.g. attaching the device filter) in the
// trace, as {path, value}.
void trace_action(const std::string& path, std::string_view value);

}  // namespace zrun::cg
