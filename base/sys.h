// The thin syscall layer. Every wrapper retries EINTR, captures errno at once and
// names the object involved in its error message. Only base/ calls libc for these.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace zrun::base {

// open(2)/openat(2) with O_CLOEXEC always added.
Result<UniqueFd> open_file(const std::string& path, int flags, mode_t mode = 0);
Result<UniqueFd> open_at(int dirfd, const std::string& path, int flags, mode_t mode = 0);
// openat2(2) with RESOLVE_IN_ROOT: `path` is resolved as if `rootfd` were "/", so
// symlinks and ".." cannot leave the root (the classic runtime CVE).
Result<UniqueFd> open_in_root(int rootfd, const std::string& path, int flags, mode_t mode = 0);

// Whole-file helpers.
Result<std::string> read_file(const std::string& path);
Result<std::string> read_fd(int fd);
Result<void> write_file(const std::string& path, std::string_view data, int flags = 0,
                        mode_t mode = 0644);
Result<void> write_all(int fd, std::string_view data);
// Write to a temp file, rename over `path`: readers see the old or the new content, never
// a torn one. With `durable`, also fsync the file before and the directory after.
Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0600,
                               bool durable = true);

Result<void> mkdir_p(const std::string& path, mode_t mode = 0755);
// Remove a directory tree (does not cross mount points: refuses to recurse into them).
Result<void> remove_tree(const std::string& path);
bool path_exists(const std::string& path);
bool is_dir(const std::string& path);
Result<std::vector<std::string>> list_dir(const std::string& path);
// Names of the subdirectories only, from readdir's d_type (no stat per entry; lstat only
// where the filesystem reports DT_UNKNOWN).
Result<std::vector<std::string>> list_subdirs(const std::string& path);

// Absolute, lexically cleaned path ("a/../b" -> "b"; "//x/" -> "/x").
std::string clean_path(std::string_view path);
std::string join_path(std::string_view a, std::string_view b);
std::string dirname(std::string_view path);
std::string basename(std::string_view path);

// Process helpers.
// clone3(2) without CLONE_VM (fork semantics: returns 0 in the child) with CLONE_PIDFD, and
// CLONE_INTO_CGROUP when `cgroup_fd` >= 0. Returns the child's pid, or -1 with errno set.
long clone3_fork(uint64_t flags, int cgroup_fd, int* pidfd);
// argv/envp for execve: pointers into `v`, null-terminated.
std::vector<char*> c_strings(const std::vector<std::string>& v);
Result<int> pidfd_open(pid_t pid);
// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat);
// error if the process does not exist.
Result<uint64_t> proc_start_time(pid_t pid);
bool pid_alive(pid_t pid);
// waitpid retrying EINTR; returns the raw status.
Result<int> wait_pid(pid_t pid, int options = 0);
// Convert a wait status to a shell-style exit code (128+signal for a signal).
int exit_code_from_status(int status);

// The name of `uid` in the host's /etc/passwd, or the number. Not getpwuid(3): zrun is
// linked statically, and glibc's NSS needs shared libraries at run time.
std::string user_name(uint32_t uid);

// Sleep helpers.
void sleep_ms(unsigned ms);

// Trim whitespace from both ends.
std::string_view trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
bool starts_with(std::string_view s, std::string_view p);

// Strict integer parsing.
Result<int64_t> parse_int(std::string_view s);
Result<uint64_t> parse_uint(std::string_view s);

}  // namespace zrun::base
