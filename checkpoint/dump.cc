// Checkpoint: freeze, seize, check, save, write the image (see checkpoint.h).
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "base/log.h"
#include "base/scope_exit.h"
#include "base/sys.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/ipc.h"
#include "checkpoint/pages.h"
#include "checkpoint/proc.h"
#include "checkpoint/ptrace.h"
#include "checkpoint/shmem.h"
#include "checkpoint/tty.h"

namespace zrun::ckpt {

using base::Result;

namespace {

constexpr int kTransient = EAGAIN;  // errno marking "retry the whole dump"
constexpr long kPrGetTidAddress = 40;
constexpr long kPtraceGetRseqConfiguration = 0x420f;

struct RseqConfig {
  uint64_t ptr;
  uint32_t size, signature, flags, pad;
};

// Facts read without touching the task (checked before anything is changed).
struct ThreadInfo {
  pid_t tid = 0;
  Tracee tracee;
  ThreadImage img;
};

struct TaskInfo {
  pid_t pid = 0;
  TaskImage img;
  std::vector<Vma> maps;
  Tracee tracee;
  std::vector<ThreadInfo> threads;  // besides the leader
  bool redirected = false;          // a fd 0-2 is a file inside the container
  // Incremental dumps: this process in the parent image (same process: start time), and
  // the tracking userfaultfds of a pre-dump found among its fds.
  const TaskImage* parent = nullptr;
  std::vector<int> tracking;
  std::map<uint64_t, std::string> vma_objects;  // start -> ObjectImage key (shmem.h)
};

std::string proc(pid_t pid, const std::string& rest) {
  return "/proc/" + std::to_string(pid) + "/" + rest;
}

std::string who(const TaskInfo& t) {
  return "pid " + std::to_string(t.img.vpid) + " (" + t.img.comm + ")";
}

// Same inode as the file behind `magic` (a /proc/PID/fd/N or map_files link)?
bool same_file(const std::string& magic, const std::string& other) {
  struct stat a {
  }, b{};
  return ::stat(magic.c_str(), &a) == 0 && ::stat(other.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

// The path of `magic` as the task sees it inside its root, verified by inode.
Result<std::string> path_in_root(pid_t pid, const std::string& magic) {
  char buf[4096];
  ssize_t n = ::readlink(magic.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return base::sys_error("readlink `" + magic + "`");
  std::string path(buf, static_cast<size_t>(n));
  if (path.empty() || path[0] != '/' || base::starts_with(path, "/memfd:") ||
      path.find(" (deleted)") != std::string::npos)
    return base::make_error(path);
  if (!same_file(magic, proc(pid, "root") + path)) return base::make_error(path);
  return path;
}

// Names the kind of an fd we cannot save yet, from its /proc/PID/fd link.
std::string fd_kind(const std::string& link) {
  if (base::starts_with(link, "socket:")) return "socket";
  if (base::starts_with(link, "pipe:")) return "pipe";
  if (link == "anon_inode:[eventpoll]") return "epoll";
  if (link == "anon_inode:[signalfd]") return "signalfd";
  if (link == "anon_inode:[timerfd]") return "timerfd";
  if (link == "anon_inode:inotify") return "inotify";
  if (link == "anon_inode:[eventfd]") return "eventfd";
  if (link == "anon_inode:[io_uring]") return "io_uring";
  if (link == "anon_inode:[pidfd]") return "pidfd";
  if (base::starts_with(link, "anon_inode:")) return link.substr(11);
  if (base::starts_with(link, "/memfd:")) return "memfd";
  if (link.find(" (deleted)") != std::string::npos) return "deleted file `" + link + "`";
  return "file `" + link + "` (outside the container)";
}

Result<void> collect_fds(TaskInfo& t, std::map<std::pair<dev_t, ino_t>, int>& stdio,
                         ObjectDump& objects, const ConsoleId& console) {
  auto names = ZRUN_TRY(base::list_dir(proc(t.pid, "fd")));
  std::vector<int> fds;
  for (auto& n : names) fds.push_back(static_cast<int>(ZRUN_TRY(base::parse_int(n))));
  std::sort(fds.begin(), fds.end());
  // A shell running `cmd > file` redirects in itself (busybox sh even for a forked cmd):
  // fd 1 is the file and the engine's stdout waits on a high fd (F_DUPFD_CLOEXEC, 10+)
  // until cmd exits. Caught in that moment, the saved stdout is not on any 0-2: retry.
  bool& redirected = t.redirected;
  for (int fd : fds) {
    if (is_tracking_uffd(t.pid, fd)) {
      t.tracking.push_back(fd);  // ours, from a pre-dump: closed after the memory is saved
      continue;
    }
    std::string magic = proc(t.pid, "fd/" + std::to_string(fd));
    auto info = ZRUN_TRY(base::read_file(proc(t.pid, "fdinfo/" + std::to_string(fd))));
    FdImage f;
    f.fd = fd;
    auto flags = ZRUN_TRY(status_field(info, "flags"));
    f.flags = static_cast<int>(std::stol(flags, nullptr, 8));
    f.cloexec = f.flags & O_CLOEXEC;
    f.pos = ZRUN_TRY(base::parse_int(ZRUN_TRY(status_field(info, "pos"))));
    struct stat st {};
    if (::stat(magic.c_str(), &st) < 0) return base::sys_error("stat `" + magic + "`");
    auto path = path_in_root(t.pid, magic);
    bool plain = S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISCHR(st.st_mode);
    char lbuf[64];
    ssize_t ln = S_ISFIFO(st.st_mode) ? ::readlink(magic.c_str(), lbuf, sizeof(lbuf)) : -1;
    std::string mq;
    if (is_mqueue_fd(magic, &mq)) {
      f.kind = "mqueue";  // checked and saved with the IPC namespace (ipc.h)
      f.path = mq;
    } else if (ln > 6 && std::string_view(lbuf, 6) == "pipe:[") {
      // Decided once every task's fds are known (resolve_pipes): in the pod or stdio.
      auto key = std::make_pair(st.st_dev, st.st_ino);
      if (fd <= 2 && !stdio.count(key)) stdio[key] = fd;
      f.kind = "pipe";
      f.path = std::string(lbuf, static_cast<size_t>(ln));
    } else if (path && S_ISCHR(st.st_mode) && is_pty_device(st.st_rdev)) {
      // The console is reopened on the new pty at restore (checkpoint/tty.h); other ptys
      // in the container (a pty pair the pod made itself) cannot be recreated yet. A pty
      // outside it (the caller's terminal as stdio) is the engine's stdio, below.
      if (!console.is(st))
        return base::make_error(who(t) + " fd " + std::to_string(fd) + ": pty `" + *path +
                                "` other than the container's console is not supported yet");
      f.kind = "tty";
      f.path = *path;
    } else if (path && plain) {
      f.kind = "file";
      f.path = *path;
      if (fd <= 2) redirected = true;
    } else {
      // The container's stdio as the engine passed it: whatever a task has on 0-2 from
      // outside the container. Elsewhere (a shell saving fd 1 around a redirect) it is the
      // same object, or a moment to retry.
      auto key = std::make_pair(st.st_dev, st.st_ino);
      // A memfd, shared anonymous memory, an unlinked file or an eventfd of the pod's own
      // (not the init's stdio nor a copy of it).
      if (!(fd <= 2 && t.img.vpid == 1) && !stdio.count(key) &&
          ZRUN_TRY(objects.fd(t.pid, who(t), f, info))) {
        t.img.fds.push_back(std::move(f));
        continue;
      }
      if (fd <= 2 && !stdio.count(key)) stdio[key] = fd;
      auto it = stdio.find(key);
      if (it == stdio.end()) {
        char buf[4096];
        ssize_t n = ::readlink(magic.c_str(), buf, sizeof(buf) - 1);
        std::string link = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
        auto e = base::make_error(who(t) + " fd " + std::to_string(fd) + ": " + fd_kind(link) +
                                  " is not supported yet");
        // The init between `start` and its exec still holds the state directory's
        // exec.fifo (close-on-exec, unlinked by start): a moment later it is gone.
        bool starting = t.img.vpid == 1 && std::string_view(link).ends_with("/exec.fifo (deleted)");
        if (redirected || starting) e.err = kTransient;
        return e;
      }
      f.kind = "inherit";
      f.path = std::to_string(it->second);
    }
    t.img.fds.push_back(std::move(f));
  }
  return base::ok();
}

// The unread bytes of a pipe, left in it: tee(2) from a second open of it (through
// /proc) into a scratch pipe of the same size.
Result<std::string> pipe_contents(const std::string& magic, int64_t* size) {
  auto in = ZRUN_TRY(base::open_file(magic, O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  int sz = ::fcntl(in.get(), F_GETPIPE_SZ);
  if (sz < 0) return base::sys_error("F_GETPIPE_SZ");
  *size = sz;
  int n = 0;
  if (::ioctl(in.get(), FIONREAD, &n) < 0) return base::sys_error("FIONREAD");
  if (n == 0) return std::string();
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) return base::sys_error("pipe");
  base::UniqueFd rd(p[0]), wr(p[1]);
  if (::fcntl(wr.get(), F_SETPIPE_SZ, sz) < 0) return base::sys_error("F_SETPIPE_SZ");
  ssize_t got = ::tee(in.get(), wr.get(), static_cast<size_t>(n), SPLICE_F_NONBLOCK);
  if (got != n) return base::sys_error("tee " + std::to_string(got) + " of " + std::to_string(n));
  std::string data(static_cast<size_t>(n), '\0');
  if (::read(rd.get(), data.data(), data.size()) != n) return base::sys_error("read");
  return data;
}

// A pipe with a read and a write end in the pod is saved with its buffered data (on its
// first end); one with an end outside is the container's stdio (on some task's 0-2) or
// refused.
Result<void> resolve_pipes(std::vector<TaskInfo>& tasks,
                           const std::map<std::pair<dev_t, ino_t>, int>& stdio) {
  std::map<std::string, std::pair<bool, bool>> ends;  // read, write
  for (auto& t : tasks)
    for (auto& f : t.img.fds)
      if (f.kind == "pipe") {
        int acc = f.flags & O_ACCMODE;
        if (acc != O_WRONLY) ends[f.path].first = true;
        if (acc != O_RDONLY) ends[f.path].second = true;
      }
  std::set<std::string> saved;
  for (auto& t : tasks)
    for (auto& f : t.img.fds) {
      if (f.kind != "pipe") continue;
      std::string magic = proc(t.pid, "fd/" + std::to_string(f.fd));
      auto e = ends[f.path];
      if (e.first && e.second) {
        if (f.flags & O_DIRECT)
          return base::make_error(who(t) + " fd " + std::to_string(f.fd) + ": packet-mode " +
                                  f.path + " is not supported yet");
        if (saved.insert(f.path).second)
          f.data = ZRUN_TRY_CTX(pipe_contents(magic, &f.pipe_size),
                                who(t) + " fd " + std::to_string(f.fd) + ": read " + f.path);
        continue;
      }
      struct stat st {};
      if (::stat(magic.c_str(), &st) < 0) return base::sys_error("stat `" + magic + "`");
      auto it = stdio.find({st.st_dev, st.st_ino});
      if (it != stdio.end()) {
        f.kind = "inherit";
        f.path = std::to_string(it->second);
        continue;
      }
      auto err = base::make_error(who(t) + " fd " + std::to_string(f.fd) + ": " + f.path +
                                  " with its " + (e.first ? "write" : "read") +
                                  " end outside the container (or closed) is not supported");
      if (t.redirected) err.err = kTransient;
      return err;
    }
  return base::ok();
}

std::vector<uint32_t> id_list(const std::string& text) {
  std::vector<uint32_t> out;
  for (auto& f : base::split(text, ' '))
    for (auto& x : base::split(f, '\t'))
      if (!x.empty()) out.push_back(static_cast<uint32_t>(std::stoul(x)));
  return out;
}

Result<void> collect_creds(TaskInfo& t, const std::string& status, ObjectDump& objects) {
  t.img.uids = id_list(ZRUN_TRY(status_field(status, "Uid")));
  t.img.gids = id_list(ZRUN_TRY(status_field(status, "Gid")));
  t.img.groups = id_list(ZRUN_TRY(status_field(status, "Groups")));
  auto cap = [&](const char* k) -> Result<uint64_t> {
    return std::stoull(ZRUN_TRY(status_field(status, k)), nullptr, 16);
  };
  t.img.cap_inh = ZRUN_TRY(cap("CapInh"));
  t.img.cap_prm = ZRUN_TRY(cap("CapPrm"));
  t.img.cap_eff = ZRUN_TRY(cap("CapEff"));
  t.img.cap_bnd = ZRUN_TRY(cap("CapBnd"));
  t.img.cap_amb = ZRUN_TRY(cap("CapAmb"));
  t.img.no_new_privs = ZRUN_TRY(status_field(status, "NoNewPrivs")) == "1";
  // The restored container gets the filter of the bundle's spec again (a filter a process
  // installed itself is not saved).
  t.img.seccomp = ZRUN_TRY(status_field(status, "Seccomp")) != "0";
  if (t.img.uids.size() != 4 || t.img.gids.size() != 4)
    return base::make_error(who(t) + ": cannot parse credentials");
  auto exe = path_in_root(t.pid, proc(t.pid, "exe"));
  if (!exe && ZRUN_TRY(objects.exe(t.pid, who(t), &t.img.exe_object))) return base::ok();
  if (!exe)
    return base::make_error(who(t) + ": executable " + fd_kind(exe.error().msg) +
                            " is not supported yet");
  t.img.exe = *exe;
  return base::ok();
}

// Everything /proc tells without stopping the task for injection.
Result<void> collect_info(TaskInfo& t, std::map<pid_t, pid_t>& host_to_v, ObjectDump& objects) {
  auto status = ZRUN_TRY(base::read_file(proc(t.pid, "status")));
  t.img.comm = ZRUN_TRY(status_field(status, "Name"));
  t.img.vpid = static_cast<pid_t>(ZRUN_TRY(status_last_int(status, "NSpid")));
  t.img.pgid = static_cast<pid_t>(ZRUN_TRY(status_last_int(status, "NSpgid")));
  t.img.sid = static_cast<pid_t>(ZRUN_TRY(status_last_int(status, "NSsid")));
  auto ppid = static_cast<pid_t>(ZRUN_TRY(status_last_int(status, "PPid")));
  t.img.ppid = host_to_v.count(ppid) ? host_to_v[ppid] : 0;
  auto threads = ZRUN_TRY(base::parse_int(ZRUN_TRY(status_field(status, "Threads"))));
  if (threads != static_cast<int64_t>(t.threads.size()) + 1)
    return base::sys_error(who(t) + ": threads changed while stopping", kTransient);
  for (auto& th : t.threads) {
    auto ts = ZRUN_TRY(base::read_file(proc(t.pid, "task/" + std::to_string(th.tid) + "/status")));
    th.img.vtid = static_cast<pid_t>(ZRUN_TRY(status_last_int(ts, "NSpid")));
    th.img.comm = ZRUN_TRY(status_field(ts, "Name"));
  }
  t.img.umask =
      static_cast<uint32_t>(std::stoul(ZRUN_TRY(status_field(status, "Umask")), nullptr, 8));
  ZRUN_TRY(collect_creds(t, status, objects));
  auto st = ZRUN_TRY(stat_fields(t.pid));
  if (st.size() < 52) return base::make_error(who(t) + ": short /proc/PID/stat");
  if (st[3] == "Z") return base::sys_error(who(t) + " is a zombie", kTransient);
  auto u = [&](int i) { return std::stoull(st[static_cast<size_t>(i)]); };
  t.img.start_code = u(26);
  t.img.end_code = u(27);
  t.img.start_stack = u(28);
  t.img.start_data = u(45);
  t.img.end_data = u(46);
  t.img.start_brk = u(47);
  t.img.arg_start = u(48);
  t.img.arg_end = u(49);
  t.img.env_start = u(50);
  t.img.env_end = u(51);
  t.img.auxv = ZRUN_TRY(base::read_file(proc(t.pid, "auxv")));
  auto cwd = path_in_root(t.pid, proc(t.pid, "cwd"));
  if (!cwd) return base::make_error(who(t) + ": cwd `" + cwd.error().msg + "` is outside the root");
  t.img.cwd = *cwd;
  auto root = ZRUN_TRY(path_in_root(t.pid, proc(t.pid, "root")));
  if (root != "/")
    return base::make_error(who(t) + ": a chroot (`" + root + "`) is not supported yet");
  for (int r = 0; r < RLIM_NLIMITS; r++) {
    struct rlimit64 old {};
    if (::prlimit64(t.pid, static_cast<__rlimit_resource>(r), nullptr, &old) < 0)
      return base::sys_error(who(t) + ": prlimit");
    t.img.rlimits.emplace_back(old.rlim_cur, old.rlim_max);
  }
  // Children (zombies included) must all be in the cgroup we dump.
  auto children = base::read_file(proc(t.pid, "task/" + std::to_string(t.pid) + "/children"));
  if (children)
    for (auto& c : base::split(base::trim(*children), ' '))
      if (!c.empty() && !host_to_v.count(static_cast<pid_t>(std::stol(c))))
        return base::sys_error(who(t) + ": child " + c + " is not in the container", kTransient);
  t.maps = ZRUN_TRY(read_maps_with_copies(t.pid));
  for (auto& v : t.maps) {
    if (v.special() || is_sysv_shm(v.name)) continue;  // SysV shm: with the IPC namespace
    if (v.shared() && !v.file_backed())
      return base::make_error(who(t) + ": shared anonymous memory is not supported yet");
    if (v.file_backed()) {
      char range[64];
      std::snprintf(range, sizeof(range), "%lx-%lx", static_cast<unsigned long>(v.start),
                    static_cast<unsigned long>(v.end));
      std::string mf = proc(t.pid, std::string("map_files/") + range);
      auto p = path_in_root(t.pid, mf);
      std::string key;
      if (!p && ZRUN_TRY(objects.mapping(t.pid, who(t), v, mf, &key))) {
        t.vma_objects[v.start] = key;
        v.name.clear();
        continue;
      }
      if (!p)
        return base::make_error(who(t) + ": mapping of " + fd_kind(p.error().msg) +
                                " is not supported yet");
      v.name = *p;
    }
  }
  return base::ok();
}

Result<void> collect_thread(TaskInfo& t, ThreadInfo& th, uint64_t exec);
Result<std::vector<PendingSignal>> collect_pending(pid_t tid, bool with_shared);

// Injected queries: signal handlers, brk, the clear-child-tid address.
Result<void> collect_injected(TaskInfo& t) {
  uint64_t exec = 0;
  for (auto& v : t.maps)
    if (v.executable() && !v.special()) {
      exec = v.start;
      break;
    }
  if (!exec) return base::make_error(who(t) + ": no executable mapping");
  auto& tr = t.tracee;
  // Handlers are asked for (one injected call each) only where /proc says they are not
  // SIG_DFL; the others are saved as all zero (SIG_DFL, no flags).
  uint64_t asked = ZRUN_TRY(non_default_signals(t.pid));
  ZRUN_TRY(tr.start_injection(exec, 0));
  for (int sig = 1; sig <= 64; sig++) {
    SigactionImage a;
    if (sig != SIGKILL && sig != SIGSTOP && (asked >> (sig - 1) & 1)) {
      ZRUN_TRY(tr.syscall_ok("rt_sigaction", SYS_rt_sigaction, sig, 0, tr.scratch(), 8));
      ZRUN_TRY(tr.read_mem(tr.scratch(), &a, sizeof(a)));
    }
    t.img.sigactions.push_back(a);
  }
  t.img.brk = static_cast<uint64_t>(ZRUN_TRY(tr.syscall(SYS_brk, 0)));
  uint64_t tid_addr = 0;
  ZRUN_TRY(tr.syscall_ok("prctl PR_GET_TID_ADDRESS", SYS_prctl, kPrGetTidAddress, tr.scratch()));
  ZRUN_TRY(tr.read_mem(tr.scratch(), &tid_addr, sizeof(tid_addr)));
  t.img.clear_tid = tid_addr;
  ZRUN_TRY(tr.end_injection());
  for (auto& th : t.threads) {
    ZRUN_TRY(collect_thread(t, th, exec));
    t.img.threads.push_back(th.img);
  }
  return base::ok();
}

// rseq registration and robust futex list of one thread (TaskImage and ThreadImage share
// these fields); a kernel without PTRACE_GET_RSEQ_CONFIGURATION leaves rseq unset.
template <class Image>
void collect_rseq_and_robust_list(pid_t tid, Image& img) {
  RseqConfig rc{};
  if (::ptrace(static_cast<__ptrace_request>(kPtraceGetRseqConfiguration), tid, sizeof(rc), &rc) >
          0 &&
      rc.ptr) {
    img.rseq_ptr = rc.ptr;
    img.rseq_len = rc.size;
    img.rseq_sig = rc.signature;
  }
  void* head = nullptr;
  size_t len = 0;
  if (::syscall(SYS_get_robust_list, tid, &head, &len) == 0) {
    img.robust_list = reinterpret_cast<uint64_t>(head);
    img.robust_len = len;
  }
}

// The per-thread state a leader (TaskImage) and its other threads (ThreadImage) share:
// pending signals (the process-wide queue with the leader), registers, mask, FPU, rseq.
template <class Image>
Result<void> collect_thread_state(pid_t tid, Tracee& tr, bool with_shared, Image& img) {
  img.pending = ZRUN_TRY(collect_pending(tid, with_shared));
  img.regs = tr.saved_regs();
  img.sigmask = tr.saved_sigmask();
  bool xstate = false;
  img.fpu = ZRUN_TRY(get_fpu(tid, &xstate));
  collect_rseq_and_robust_list(tid, img);
  return base::ok();
}

Result<void> collect_thread(TaskInfo& t, ThreadInfo& th, uint64_t exec) {
  ZRUN_TRY(collect_thread_state(th.tid, th.tracee, false, th.img));
  auto& tr = th.tracee;
  ZRUN_TRY_CTX(tr.start_injection(exec, 0), who(t) + " thread " + std::to_string(th.img.vtid));
  ZRUN_TRY(tr.syscall_ok("prctl PR_GET_TID_ADDRESS", SYS_prctl, kPrGetTidAddress, tr.scratch()));
  ZRUN_TRY(tr.read_mem(tr.scratch(), &th.img.clear_tid, sizeof(th.img.clear_tid)));
  ZRUN_TRY(tr.end_injection());
  return base::ok();
}

Result<std::vector<PendingSignal>> collect_pending(pid_t tid, bool with_shared) {
  std::vector<PendingSignal> out;
  for (auto& i : ZRUN_TRY(peek_siginfo(tid, false))) out.push_back({false, i});
  if (with_shared)
    for (auto& i : ZRUN_TRY(peek_siginfo(tid, true))) out.push_back({true, i});
  return out;
}

Result<void> collect_regs(TaskInfo& t) {
  return collect_thread_state(t.pid, t.tracee, true, t.img);
}

// Mappings and which need their bytes saved: anonymous ones and private file ones that
// are writable or were written (static binaries relocate their RELRO, then make it
// read-only: smaps shows those pages as Anonymous). Other file mappings are mapped from the file
// again; PROT_NONE anonymous areas are reservations (no bytes).
// Which bytes to save (decided while the tasks are stopped): t.img.vmas, with runs and
// whole-mapping `pages` whose offsets and hashes save_memory fills in.
Result<void> plan_memory(TaskInfo& t) {
  auto scan = ZRUN_TRY_CTX(MemoryScan::open(t.pid, t.parent), who(t));
  for (auto& v : t.maps) {
    VmaImage vi;
    vi.start = v.start;
    vi.end = v.end;
    vi.perms = v.perms;
    vi.offset = v.offset;
    if (v.special()) {
      vi.name = v.name;
    } else if (auto o = t.vma_objects.find(v.start); o != t.vma_objects.end()) {
      vi.object = o->second;  // memfd, shared anonymous, unlinked file: bytes in the object
    } else if (is_sysv_shm(v.name)) {
      vi.name = v.name;  // the segment's bytes are saved with the IPC namespace
      vi.shmid = static_cast<int64_t>(v.inode);
    } else if (v.file_backed()) {
      vi.path = v.name;
    } else {
      vi.name = v.name;
    }
    bool none = v.perms.substr(0, 3) == "---";
    bool want = !v.special() &&
                (v.file_backed() ? (!v.shared() && (v.writable() || v.anon_kb > 0)) : !none);
    if (want && !v.file_backed() && !v.shared() && scan.supported()) {
      // Private anonymous: only the pages that hold something (and, after a pre-dump, only
      // those written since).
      auto r = scan.plan(v.start, v.end);
      if (!r) return base::context(std::move(r).error(), who(t));
      vi.runs = std::move(*r);
    } else if (want) {
      vi.pages = true;
    }
    t.img.vmas.push_back(std::move(vi));
  }
  return base::ok();
}

Result<void> save_memory(TaskInfo& t, PageWriter& pw) {
  Tracee* tr = t.tracee.pid() ? &t.tracee : nullptr;  // detached: a live pre-dump
  for (auto& vi : t.img.vmas) {
    if (vi.pages) {
      auto r = pw.dump_range(t.pid, tr, vi.start, vi.end - vi.start);
      if (!r) return base::context(std::move(r).error(), who(t));
      vi.page_offset = r->offset;
      vi.hash = r->hash;
    }
    for (auto& run : vi.runs) {
      if (run.parent) continue;
      auto r = pw.dump_range(t.pid, tr, run.start, run.len);
      if (!r) return base::context(std::move(r).error(), who(t));
      run.offset = r->offset;
      run.hash = r->hash;
    }
  }
  return base::ok();
}

std::vector<std::pair<std::string, uint64_t>> vdso_layout(const std::vector<Vma>& maps) {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (auto& v : maps)
    if (v.special() && v.name != "[vsyscall]") out.emplace_back(v.name, v.end - v.start);
  return out;
}

// Host and domain name of `pid`'s UTS namespace: read by a child that joins it.
Result<std::pair<std::string, std::string>> uts_names(pid_t pid) {
  auto text = ZRUN_TRY_CTX(in_namespace_of(pid, "uts", CLONE_NEWUTS,
                                           []() -> Result<std::string> {
                                             struct utsname u {};
                                             if (::uname(&u) < 0) return base::sys_error("uname");
                                             return std::string(u.nodename) + '\n' + u.domainname;
                                           }),
                           "read the container's hostname");
  auto nl = text.find('\n');
  return std::make_pair(text.substr(0, nl), nl == std::string::npos ? "" : text.substr(nl + 1));
}

// Parents before children, siblings by vpid.
std::vector<TaskInfo*> creation_order(std::vector<TaskInfo>& tasks) {
  std::vector<TaskInfo*> out;
  std::vector<TaskInfo*> all;
  for (auto& t : tasks) all.push_back(&t);
  std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->img.vpid < b->img.vpid; });
  std::set<pid_t> placed;
  while (out.size() < all.size()) {
    size_t before = out.size();
    for (auto* t : all)
      if (!placed.count(t->img.vpid) && (t->img.ppid == 0 || placed.count(t->img.ppid))) {
        out.push_back(t);
        placed.insert(t->img.vpid);
      }
    if (out.size() == before) break;
  }
  return out;
}

// After its memory was saved: close the tracking userfaultfd of a pre-dump, and for a
// pre-dump arm a new one over the private anonymous mappings. A container killed after
// the dump keeps it (closing it un-protects every page: time the container would spend
// frozen for nothing).
Result<void> retrack(TaskInfo& t, bool pre_dump, bool keeps_running) {
  if (!pre_dump && (t.tracking.empty() || !keeps_running)) return base::ok();
  uint64_t exec = 0;
  Ranges areas;
  for (auto& v : t.maps) {
    if (!exec && v.executable() && !v.special()) exec = v.start;
    if (!v.special() && !v.file_backed() && !v.shared() && v.perms.substr(0, 3) != "---")
      areas.emplace_back(v.start, v.end);
  }
  auto& tr = t.tracee;
  ZRUN_TRY(tr.start_injection(exec, 0));
  for (int fd : t.tracking) ZRUN_TRY(disarm_tracking(tr, fd));
  if (pre_dump) {
    t.img.track_fd = ZRUN_TRY_CTX(arm_tracking(tr, areas), who(t));
    t.img.track_start = ZRUN_TRY(base::proc_start_time(t.pid));
  }
  return tr.end_injection();
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

Result<void> dump_once(cg::Cgroup& cg, pid_t init_pid, const DumpOptions& opts,
                       const Image* parent) {
  auto frozen = std::chrono::steady_clock::now();
  double memory_ms = 0, frozen_ms = -1;
  uint64_t memory_bytes = 0;
  ZRUN_TRY_CTX(cg.freeze(), "freeze");
  base::ScopeExit thaw([&] { (void)cg.thaw(); });
  std::vector<TaskInfo> tasks;
  std::set<pid_t> seen;
  // Frozen tasks cannot fork, but re-read until no new pid shows up anyway.
  for (;;) {
    auto pids = ZRUN_TRY(cg.pids());
    bool added = false;
    for (pid_t p : pids) {
      if (seen.count(p)) continue;
      seen.insert(p);
      added = true;
      TaskInfo t;
      t.pid = p;
      t.tracee = ZRUN_TRY(Tracee::seize(p, false));
      auto names = ZRUN_TRY(base::list_dir(proc(p, "task")));
      std::vector<pid_t> tids;
      for (auto& n : names) tids.push_back(static_cast<pid_t>(ZRUN_TRY(base::parse_int(n))));
      std::sort(tids.begin(), tids.end());
      for (pid_t tid : tids) {
        if (tid == p) continue;
        ThreadInfo th;
        th.tid = tid;
        th.tracee = ZRUN_TRY(Tracee::seize(tid, false));
        t.threads.push_back(std::move(th));
      }
      tasks.push_back(std::move(t));
    }
    if (!added) break;
  }
  if (!seen.count(init_pid)) return base::make_error("the container's init is not in its cgroup");
  ZRUN_TRY_CTX(cg.thaw(), "thaw");  // with v2 the tasks stay ptrace-stopped
  thaw.dismiss();
  for (auto& t : tasks) {
    ZRUN_TRY(t.tracee.wait_stop());
    for (auto& th : t.threads) ZRUN_TRY(th.tracee.wait_stop());
  }
  std::map<pid_t, pid_t> host_to_v;
  for (auto& t : tasks) {
    auto status = ZRUN_TRY(base::read_file(proc(t.pid, "status")));
    host_to_v[t.pid] = static_cast<pid_t>(ZRUN_TRY(status_last_int(status, "NSpid")));
  }
  if (host_to_v[init_pid] != 1)
    return base::make_error("the container has no pid namespace of its own");
  std::map<std::pair<dev_t, ino_t>, int> stdio;
  // Init first: its fds 0-2 name the container's stdio.
  std::sort(tasks.begin(), tasks.end(),
            [&](auto& a, auto& b) { return host_to_v[a.pid] < host_to_v[b.pid]; });
  ObjectDump objects;
  ConsoleId console = find_console(init_pid);
  for (auto& t : tasks) {
    ZRUN_TRY(collect_info(t, host_to_v, objects));
    if (const TaskImage* pt = parent ? parent->task(t.img.vpid) : nullptr)
      if (pt->track_start && pt->track_start == ZRUN_TRY(base::proc_start_time(t.pid)))
        t.parent = pt;
    ZRUN_TRY(collect_fds(t, stdio, objects, console));
  }
  ZRUN_TRY(resolve_pipes(tasks, stdio));
  ZRUN_TRY(objects.save(opts.image_path));
  std::vector<ConsoleTask> console_tasks;
  for (auto& t : tasks) console_tasks.push_back({t.pid, &t.img});
  TtyImage tty = console.ino ? ZRUN_TRY(dump_console(console, console_tasks)) : TtyImage{};
  // The IPC namespace's objects (read only, by a child of ours in that namespace).
  std::vector<IpcUser> ipc_users;
  for (auto& t : tasks) {
    IpcUser u{t.pid, who(t), {}, {}};
    for (auto& v : t.maps)
      if (is_sysv_shm(v.name)) u.shm_ids.push_back(v.inode);
    for (auto& f : t.img.fds)
      if (f.kind == "mqueue") u.mqueues.push_back(f.path);
    ipc_users.push_back(std::move(u));
  }
  std::string ipc = ZRUN_TRY(dump_ipc(init_pid, ipc_users, opts.image_path));
  // Checked: from here on the tasks are changed (injection), and put back on any error.
  Manifest m;
  struct utsname u {};
  ::uname(&u);
  m.kernel = u.release;
  m.xcr0 = host_xcr0();
  m.id = opts.id;
  m.config = opts.config;
  m.cgroup = opts.cgroup;
  m.ipc = std::move(ipc);
  m.cgroup_mode = opts.cgroup_mode;
  m.tty = std::move(tty);
  m.pre_dump = opts.pre_dump;
  m.init_start = ZRUN_TRY(base::proc_start_time(init_pid));
  if (parent) {
    m.parent = opts.parent_path;
    m.parent_hash = parent->manifest_hash;
  }
  std::tie(m.hostname, m.domainname) = ZRUN_TRY(uts_names(init_pid));
  PageWriter pw;
  auto order = creation_order(tasks);
  auto save = [&](TaskInfo* t) -> Result<void> {
    ZRUN_TRY(pw.open(opts.image_path + "/pages-" + std::to_string(t->img.vpid) + ".img"));
    auto m0 = std::chrono::steady_clock::now();
    ZRUN_TRY(save_memory(*t, pw));
    ZRUN_TRY(pw.close());
    memory_ms += ms_since(m0);
    memory_bytes += pw.bytes();
    return base::ok();
  };
  for (auto* t : order) {
    if (t->img.vpid == 1) m.vdso = vdso_layout(t->maps);
    ZRUN_TRY(collect_regs(*t));
    ZRUN_TRY(collect_injected(*t));
    ZRUN_TRY(plan_memory(*t));
    // A pre-dump arms tracking before its memory is read (below, once the tasks run
    // again): every page written from here on is in the next image.
    if (!opts.pre_dump) ZRUN_TRY(save(t));
    ZRUN_TRY(retrack(*t, opts.pre_dump, opts.leave_running));
  }
  if (opts.pre_dump) {
    // Live: the container runs while its memory is copied (the image is not consistent on
    // its own and is refused by restore; the final dump re-saves what changed).
    frozen_ms = ms_since(frozen);
    for (auto& t : tasks) {
      for (auto& th : t.threads) ZRUN_TRY(th.tracee.detach());
      ZRUN_TRY(t.tracee.detach());
    }
    pw.set_live(true);
    for (auto* t : order) ZRUN_TRY(save(t));
  }
  for (auto* t : order) {
    objects.attach(t->img);
    std::string text = task_to_json(t->img);
    TaskRef ref{t->img.vpid,
                t->img.ppid,
                t->img.pgid,
                t->img.sid,
                "task-" + std::to_string(t->img.vpid) + ".json",
                hash64(text.data(), text.size())};
    ZRUN_TRY(base::write_file(opts.image_path + "/" + ref.file, text, 0, 0600));
    m.tasks.push_back(std::move(ref));
  }
  if (m.tasks.size() != tasks.size()) return base::make_error("the process tree is not connected");
  ZRUN_TRY(base::write_file_atomic(opts.image_path + "/manifest.json", manifest_to_json(m), 0600,
                                   /*durable=*/true));
  // The tasks stay stopped until killed or detached right after this (a pre-dump's run
  // since their memory copy began). bench/checkpoint.sh reads this line with --debug.
  char timing[160];
  std::snprintf(timing, sizeof(timing),
                "checkpoint timing: frozen %.1f ms, memory %.1f ms, %llu bytes of pages",
                frozen_ms >= 0 ? frozen_ms : ms_since(frozen), memory_ms,
                static_cast<unsigned long long>(memory_bytes));
  base::log_debug(timing);
  if (!opts.leave_running && !opts.pre_dump) {
    // Killed while still stopped: nothing runs after the image was taken.
    ZRUN_TRY_CTX(cg.kill_all(SIGKILL), "kill the checkpointed container");
    // As their tracer we must reap them (the namespace init's exit waits for the rest).
    std::vector<Tracee*> all;
    for (auto& t : tasks) {
      all.push_back(&t.tracee);
      for (auto& th : t.threads) all.push_back(&th.tracee);
    }
    reap_killed(std::move(all));
  }
  return base::ok();  // leave_running: ~Tracee detaches, registers as saved
}

// `to` as a path relative to the directory `from` (both absolute and clean).
std::string relative_path(const std::string& from, const std::string& to) {
  auto parts = [](const std::string& p) {
    std::vector<std::string> out;
    for (auto& x : base::split(p, '/'))
      if (!x.empty()) out.push_back(x);
    return out;
  };
  auto a = parts(from), b = parts(to);
  size_t common = 0;
  while (common < a.size() && common < b.size() && a[common] == b[common]) common++;
  std::string out;
  for (size_t i = common; i < a.size(); i++) out += "../";
  for (size_t i = common; i < b.size(); i++) out += b[i] + "/";
  if (out.empty()) return ".";
  out.pop_back();
  return out;
}

}  // namespace

Result<void> dump(cg::Cgroup& cg, pid_t init_pid, const DumpOptions& opts) {
  if (base::path_exists(opts.image_path)) {
    auto entries = ZRUN_TRY(base::list_dir(opts.image_path));
    if (!entries.empty())
      return base::make_error("image path `" + opts.image_path + "` is not empty");
  }
  // The parent is checked before anything is created.
  std::optional<Image> parent;
  if (!opts.parent_path.empty()) {
    std::string pdir = base::clean_path(opts.parent_path[0] == '/'
                                            ? opts.parent_path
                                            : base::join_path(opts.image_path, opts.parent_path));
    parent = ZRUN_TRY_CTX(load_image(pdir), "parent image");
    if (!parent->manifest.pre_dump)
      return base::make_error("parent image `" + pdir + "` is not a pre-dump");
    auto start = ZRUN_TRY(base::proc_start_time(init_pid));
    if (parent->manifest.id != opts.id || parent->manifest.init_start != start)
      return base::make_error("parent image `" + pdir + "` is of another container");
  }
  bool made = !base::path_exists(opts.image_path);
  ZRUN_TRY(base::mkdir_p(opts.image_path, 0700));
  auto clean = [&] {
    auto entries = base::list_dir(opts.image_path);
    if (entries)
      for (auto& e : *entries) ::unlink((opts.image_path + "/" + e).c_str());
    if (made) ::rmdir(opts.image_path.c_str());
  };
  DumpOptions o = opts;
  if (parent) o.parent_path = relative_path(opts.image_path, parent->dir);
  for (int attempt = 0;; attempt++) {
    auto r = dump_once(cg, init_pid, o, parent ? &*parent : nullptr);
    if (r) return r;
    clean();
    if (r.error().err != kTransient) return r;
    if (attempt >= 20) {
      r.error().err = 0;  // the message says what was found; "try again" does not help
      return r;
    }
    base::log_debug("checkpoint: retrying: " + r.error().text());
    base::sleep_ms(10);
    ZRUN_TRY(base::mkdir_p(opts.image_path, 0700));
  }
}

}  // namespace zrun::ckpt
