// What /proc says about a task, parsed for the dump: mappings, status fields, the mm
// fields of /proc/PID/stat, auxv, fds.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"

namespace zrun::ckpt {

struct Vma {
  uint64_t start = 0, end = 0;
  std::string perms;  // "rwxp" / "r--s"
  uint64_t offset = 0;
  uint64_t inode = 0;
  std::string dev;       // "fd:01"
  std::string name;      // path, [heap], [stack], [vdso], ... or ""
  uint64_t anon_kb = 0;  // smaps "Anonymous:" (copied-on-write pages of a file mapping)
  bool readable() const { return perms[0] == 'r'; }
  bool writable() const { return perms[1] == 'w'; }
  bool executable() const { return perms[2] == 'x'; }
  bool shared() const { return perms[3] == 's'; }
  bool special() const;  // [vvar], [vvar_vclock], [vdso], [vsyscall]
  bool file_backed() const { return inode != 0; }
};

base::Result<std::vector<Vma>> parse_maps(const std::string& text);
base::Result<std::vector<Vma>> read_maps(pid_t pid);
// With smaps' Anonymous: per mapping.
base::Result<std::vector<Vma>> read_smaps(pid_t pid);

// "Key:\tvalue" lines of /proc/PID/status.
base::Result<std::string> status_field(const std::string& status, const std::string& key);
// Last number of a status line (NSpid, NSpgid, NSsid: the innermost namespace's view).
// Signals whose handler is not SIG_DFL (SigCgt | SigIgn of /proc/PID/status), bit sig-1,
// plus SIGCHLD (its SA_NOCLDWAIT flag matters even with SIG_DFL).
base::Result<uint64_t> non_default_signals(pid_t pid);
base::Result<int64_t> status_last_int(const std::string& status, const std::string& key);

// Fields of /proc/PID/stat after "(comm)", 1-based as in proc(5) (3 = state).
base::Result<std::vector<std::string>> stat_fields(pid_t pid);

// Run `fn` in a forked child of zrun that joined `pid`'s namespace `ns` ("ipc", "uts"; of
// type `nstype`, CLONE_NEW*) — never zrun itself; the text it returns, or its error, comes
// back.
base::Result<std::string> in_namespace_of(pid_t pid, const std::string& ns, int nstype,
                                          const std::function<base::Result<std::string>()>& fn);

}  // namespace zrun::ckpt
