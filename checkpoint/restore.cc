// Restore: rebuild each placeholder task by syscall injection (see checkpoint.h).
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>

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

constexpr long kPtraceGetRseqConfiguration = 0x420f;
constexpr int kRseqUnregister = 1;
constexpr long kErestartSys = 512, kErestartNoIntr = 513, kErestartNoHand = 514,
               kErestartRestartBlock = 516;

struct RseqConfig {
  uint64_t ptr;
  uint32_t size, signature, flags, pad;
};

// struct prctl_mm_map (linux/prctl.h), 104 bytes.
struct MmMap {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start,
      arg_end, env_start, env_end;
  uint64_t auxv;
  uint32_t auxv_size, exe_fd;
};
static_assert(sizeof(MmMap) == 104);

struct Thread {
  pid_t host = 0;
  const ThreadImage* img = nullptr;
  Tracee tracee;
};

struct Task {
  pid_t host = 0;
  const TaskImage* img = nullptr;
  Tracee tracee;
  std::vector<Thread> threads;
};

std::string who(const TaskImage& t) {
  return "pid " + std::to_string(t.vpid) + " (" + t.comm + ")";
}

// Host pids of the tree under `pid`, keyed by their pid in the container's namespace.
Result<void> find_tree(pid_t pid, std::map<pid_t, pid_t>& v_to_host) {
  auto status = ZRUN_TRY(base::read_file("/proc/" + std::to_string(pid) + "/status"));
  v_to_host[static_cast<pid_t>(ZRUN_TRY(status_last_int(status, "NSpid")))] = pid;
  auto children = ZRUN_TRY(base::read_file("/proc/" + std::to_string(pid) + "/task/" +
                                           std::to_string(pid) + "/children"));
  for (auto& c : base::split(base::trim(children), ' '))
    if (!c.empty())
      ZRUN_TRY(find_tree(static_cast<pid_t>(ZRUN_TRY(base::parse_int(c))), v_to_host));
  return base::ok();
}

bool overlaps(uint64_t s, uint64_t e, uint64_t s2, uint64_t e2) { return s < e2 && s2 < e; }

// A free range of `len` bytes in both layouts (below the usual mmap area).
uint64_t find_gap(const std::vector<Vma>& cur, const TaskImage& img, uint64_t len,
                  uint64_t avoid = 0, uint64_t avoid_len = 0) {
  for (uint64_t c = 0x100000000ULL; c < 0x700000000000ULL; c += 0x40000000ULL) {
    bool ok = !overlaps(c, c + len, avoid, avoid + avoid_len);
    for (auto& v : cur) ok = ok && !overlaps(c, c + len, v.start, v.end);
    for (auto& v : img.vmas) ok = ok && !overlaps(c, c + len, v.start, v.end);
    if (ok) return c;
  }
  return 0;
}

Result<uint64_t> put_string(Tracee& tr, const std::string& s, uint64_t off = 0) {
  if (s.size() + 1 > kPageSize - off) return base::make_error("path too long: `" + s + "`");
  ZRUN_TRY(tr.write_mem(tr.scratch() + off, s.c_str(), s.size() + 1));
  return tr.scratch() + off;
}

// Per-thread kernel state a task and each of its threads carry alike (TaskImage and
// ThreadImage have the same fields for it): name, robust futex list, clear-tid, rseq.
template <class Image>
Result<void> restore_thread_attrs(Tracee& tr, const Image& img) {
  ZRUN_TRY(tr.syscall_ok("prctl PR_SET_NAME", SYS_prctl, PR_SET_NAME,
                         ZRUN_TRY(put_string(tr, img.comm.substr(0, 15)))));
  if (img.robust_list)
    ZRUN_TRY(
        tr.syscall_ok("set_robust_list", SYS_set_robust_list, img.robust_list, img.robust_len));
  ZRUN_TRY(tr.syscall(SYS_set_tid_address, img.clear_tid));
  if (img.rseq_ptr)
    ZRUN_TRY(tr.syscall_ok("rseq", SYS_rseq, img.rseq_ptr, img.rseq_len, 0, img.rseq_sig));
  return base::ok();
}

int prot_of(const std::string& perms) {
  return (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
         (perms[2] == 'x' ? PROT_EXEC : 0);
}

// [vvar], [vvar_vclock], [vdso] move only together and must keep their layout (glibc
// caches vDSO pointers): same names and sizes in the same order, then one mremap each,
// through a free area when the saved and the current places overlap.
Result<void> move_vdso(Tracee& tr, const std::vector<Vma>& cur, const TaskImage& img) {
  std::vector<const Vma*> now;
  std::vector<const VmaImage*> want;
  for (auto& v : cur)
    if (v.special() && v.name != "[vsyscall]") now.push_back(&v);
  for (auto& v : img.vmas)
    if ((v.name == "[vvar]" || v.name == "[vvar_vclock]" || v.name == "[vdso]")) want.push_back(&v);
  bool same = now.size() == want.size();
  for (size_t i = 0; same && i < now.size(); i++)
    same = now[i]->name == want[i]->name &&
           now[i]->end - now[i]->start == want[i]->end - want[i]->start &&
           (i == 0 || now[i]->start - now[0]->start == want[i]->start - want[0]->start);
  if (!same) return base::make_error("the vDSO layout of this kernel differs from the image's");
  if (now.empty() || now[0]->start == want[0]->start) return base::ok();
  uint64_t span = now.back()->end - now[0]->start;
  uint64_t tmp = find_gap(cur, img, span, tr.area(), Tracee::kAreaSize);
  if (!tmp) return base::make_error("no free address range to move the vDSO through");
  for (int phase = 0; phase < 2; phase++)
    for (size_t i = 0; i < now.size(); i++) {
      uint64_t len = now[i]->end - now[i]->start;
      uint64_t from = phase == 0 ? now[i]->start : tmp + (now[i]->start - now[0]->start);
      uint64_t to = phase == 0 ? tmp + (now[i]->start - now[0]->start) : want[i]->start;
      ZRUN_TRY(tr.syscall_ok("mremap vdso", SYS_mremap, from, len, len,
                             MREMAP_MAYMOVE | MREMAP_FIXED, to));
    }
  return base::ok();
}

Result<void> rebuild_memory(Task& t, const std::vector<Vma>& cur, const std::string& dir,
                            ObjectRestore& objs, const Image& image) {
  auto& tr = t.tracee;
  const auto& img = *t.img;
  for (auto& v : cur) {
    if (v.special() || overlaps(v.start, v.end, tr.area(), tr.area() + Tracee::kAreaSize)) continue;
    ZRUN_TRY(tr.syscall_ok("munmap", SYS_munmap, v.start, v.end - v.start));
  }
  ZRUN_TRY(move_vdso(tr, cur, img));
  std::string file = "pages-" + std::to_string(img.vpid) + ".img";
  auto pages = ZRUN_TRY_CTX(base::open_file(dir + "/" + file, O_RDONLY), "image");
  PageSource runs(image, img.vpid);
  for (auto& v : img.vmas) {
    if (v.name == "[vvar]" || v.name == "[vvar_vclock]" || v.name == "[vdso]" ||
        v.name == "[vsyscall]")
      continue;
    uint64_t len = v.end - v.start;
    int prot = prot_of(v.perms);
    bool shared = v.perms[3] == 's';
    if (v.shmid >= 0) {
      ZRUN_TRY(attach_shm(tr, v, [&](uint64_t n) {  // the segment: created by restore_ipc
        return find_gap(cur, img, n, tr.area(), Tracee::kAreaSize);
      }));
      continue;
    }
    if (!v.object.empty()) {
      long fd = ZRUN_TRY(objs.get_for_map(tr, v.object, shared && (prot & PROT_WRITE)));
      ZRUN_TRY(tr.syscall_ok(("mmap object " + v.object).c_str(), SYS_mmap, v.start, len, prot,
                             (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, fd, v.offset));
    } else if (!v.path.empty()) {
      auto path = ZRUN_TRY(put_string(tr, v.path));
      int oflags = (shared && (prot & PROT_WRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC;
      long fd = ZRUN_TRY(
          tr.syscall_ok(("open `" + v.path + "`").c_str(), SYS_openat, AT_FDCWD, path, oflags));
      auto m = tr.syscall_ok(("mmap `" + v.path + "`").c_str(), SYS_mmap, v.start, len, prot,
                             (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, fd, v.offset);
      ZRUN_TRY(tr.syscall(SYS_close, fd));
      if (!m) return std::move(m).error();
    } else {
      int flags =
          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (v.name == "[stack]" ? MAP_GROWSDOWN : 0);
      ZRUN_TRY(
          tr.syscall_ok("mmap", SYS_mmap, v.start, len, prot, flags, static_cast<uint64_t>(-1), 0));
    }
    if (!v.runs.empty()) ZRUN_TRY(runs.restore(v, tr));
    if (v.pages)
      ZRUN_TRY(restore_range(pages.get(), file, v.page_offset, v.hash, tr, v.start, len,
                             /*skip_zero=*/v.path.empty() && v.object.empty()));
  }
  return base::ok();
}

Result<void> restore_mm(Task& t, ObjectRestore& objs) {
  auto& tr = t.tracee;
  const auto& img = *t.img;
  MmMap m{img.start_code,
          img.end_code,
          img.start_data,
          img.end_data,
          img.start_brk,
          img.brk,
          img.start_stack,
          img.arg_start,
          img.arg_end,
          img.env_start,
          img.env_end,
          tr.scratch() + 1024,
          static_cast<uint32_t>(img.auxv.size()),
          static_cast<uint32_t>(-1)};
  if (img.auxv.size() > 2048) return base::make_error("auxv too large");
  long exe =
      !img.exe_object.empty()
          ? ZRUN_TRY(objs.open_exe(tr, img.exe_object))
          : ZRUN_TRY(tr.syscall_ok(("open `" + img.exe + "`").c_str(), SYS_openat, AT_FDCWD,
                                   ZRUN_TRY(put_string(tr, img.exe, 3072)), O_RDONLY | O_CLOEXEC));
  ZRUN_TRY(tr.write_mem(tr.scratch() + 1024, img.auxv.data(), img.auxv.size()));
  m.exe_fd = static_cast<uint32_t>(exe);
  ZRUN_TRY(tr.write_mem(tr.scratch(), &m, sizeof(m)));
  auto r = tr.syscall_ok("prctl PR_SET_MM_MAP", SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, tr.scratch(),
                         sizeof(m));
  ZRUN_TRY(tr.syscall(SYS_close, exe));
  if (!r) return std::move(r).error();
  ZRUN_TRY(restore_thread_attrs(tr, img));
  return base::ok();
}

// Queue the saved signals again, from the task itself (a process may queue any siginfo
// to itself); they stay pending under the injection's all-blocked mask.
Result<void> requeue(Tracee& tr, pid_t tgid, pid_t tid, const std::vector<PendingSignal>& v) {
  for (auto& p : v) {
    int sig = 0;
    std::memcpy(&sig, p.info.data(), sizeof(sig));  // si_signo comes first
    ZRUN_TRY(tr.write_mem(tr.scratch() + 2048, p.info.data(), p.info.size()));
    if (p.shared)
      ZRUN_TRY(
          tr.syscall_ok("rt_sigqueueinfo", SYS_rt_sigqueueinfo, tgid, sig, tr.scratch() + 2048));
    else
      ZRUN_TRY(tr.syscall_ok("rt_tgsigqueueinfo", SYS_rt_tgsigqueueinfo, tgid, tid, sig,
                             tr.scratch() + 2048));
  }
  return base::ok();
}

Result<void> restore_signals(Task& t) {
  auto& tr = t.tracee;
  const auto& img = *t.img;
  // Set only the handlers that differ from what the placeholder has: non-default in the
  // image, or non-default in the placeholder now (reset to SIG_DFL).
  uint64_t placeholder = ZRUN_TRY(non_default_signals(tr.pid()));
  for (int sig = 1; sig <= 64 && static_cast<size_t>(sig) <= img.sigactions.size(); sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    const auto& a = img.sigactions[static_cast<size_t>(sig - 1)];
    bool dfl = a.handler == 0 && a.flags == 0 && a.mask == 0 && a.restorer == 0;
    if (dfl && !(placeholder >> (sig - 1) & 1)) continue;
    ZRUN_TRY(tr.write_mem(tr.scratch(), &a, sizeof(a)));
    ZRUN_TRY(tr.syscall_ok("rt_sigaction", SYS_rt_sigaction, sig, tr.scratch(), 0, 8));
  }
  ZRUN_TRY(requeue(tr, img.vpid, img.vpid, img.pending));
  t.tracee.set_final_sigmask(img.sigmask);
  return base::ok();
}

// The placeholder has the container's stdio on 0-2 (from the engine, through `restore`):
// "inherit" fds are copies of those; files are opened again inside the root.
// Pipes of the pod: "pipe:[ino]" -> (vpid, fd) of the end installed first.
using PipeTable = std::map<std::string, std::pair<pid_t, int>>;

// A pipe end at f.fd: the first end creates the pipe (injected pipe2), every further end
// opens the first through the pod's /proc (an anonymous pipe opened there is the same
// pipe, and never waits for a partner). The end carrying the saved size and data gets
// them from here, through our own open of it.
Result<void> restore_pipe(Task& t, const FdImage& f, PipeTable& pipes, int keep_flags) {
  auto& tr = t.tracee;
  int cloexec = f.cloexec ? O_CLOEXEC : 0;
  int made[2] = {-1, -1};
  auto it = pipes.find(f.path);
  std::pair<pid_t, int> from;
  if (it == pipes.end()) {
    ZRUN_TRY(tr.syscall_ok("pipe2", SYS_pipe2, tr.scratch(), O_CLOEXEC));
    ZRUN_TRY(tr.read_mem(tr.scratch(), made, sizeof(made)));
    from = {t.img->vpid, made[0]};
  } else {
    from = it->second;
  }
  std::string src = "/proc/" + std::to_string(from.first) + "/fd/" + std::to_string(from.second);
  long fd =
      ZRUN_TRY(tr.syscall_ok(("open `" + src + "`").c_str(), SYS_openat, AT_FDCWD,
                             ZRUN_TRY(put_string(tr, src)), (f.flags & keep_flags) | cloexec));
  if (fd != f.fd) {
    ZRUN_TRY(tr.syscall_ok("dup3", SYS_dup3, fd, f.fd, cloexec));
    ZRUN_TRY(tr.syscall(SYS_close, fd));
  }
  for (int m : made)
    if (m >= 0 && m != f.fd && m != fd) ZRUN_TRY(tr.syscall(SYS_close, m));
  pipes[f.path] = {t.img->vpid, f.fd};
  if (!f.pipe_size) return base::ok();
  auto ours = ZRUN_TRY(base::open_file(
      "/proc/" + std::to_string(t.host) + "/fd/" + std::to_string(f.fd),
      O_RDWR | O_NONBLOCK | O_CLOEXEC));  // a reader too: the pod's may not be there yet
  if (::fcntl(ours.get(), F_SETPIPE_SZ, static_cast<int>(f.pipe_size)) < 0)
    return base::sys_error(f.path + ": F_SETPIPE_SZ " + std::to_string(f.pipe_size));
  if (!f.data.empty()) ZRUN_TRY_CTX(base::write_all(ours.get(), f.data), f.path + ": refill");
  return base::ok();
}

Result<void> restore_fds(Task& t, PipeTable& pipes, ObjectRestore& objs,
                         const std::string& console) {
  auto& tr = t.tracee;
  const auto& img = *t.img;
  int top = 2;
  for (auto& f : img.fds) top = std::max(top, f.fd);
  uint64_t stdio[3];
  for (int i = 0; i < 3; i++)
    stdio[i] = static_cast<uint64_t>(
        ZRUN_TRY(tr.syscall_ok("fcntl F_DUPFD", SYS_fcntl, i, F_DUPFD_CLOEXEC, top + 1)));
  for (int i = 0; i < 3; i++) ZRUN_TRY(tr.syscall(SYS_close, i));
  constexpr int kKeep = O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECTORY | O_NOATIME | O_DSYNC |
                        O_SYNC | O_DIRECT | O_PATH | O_LARGEFILE;
  for (auto& f : img.fds) {
    int cloexec = f.cloexec ? O_CLOEXEC : 0;
    if (f.kind == "inherit") {
      auto from = ZRUN_TRY(base::parse_int(f.path));
      if (from < 0 || from > 2) return base::make_error("bad inherited fd");
      ZRUN_TRY(tr.syscall_ok("dup3", SYS_dup3, stdio[from], f.fd, cloexec));
      continue;
    }
    if (f.kind == "pipe") {
      ZRUN_TRY_CTX(restore_pipe(t, f, pipes, kKeep), "fd " + std::to_string(f.fd));
      continue;
    }
    if (ObjectRestore::handles(f.kind)) {
      ZRUN_TRY_CTX(objs.install_fd(tr, f, kKeep), "fd " + std::to_string(f.fd));
      continue;
    }
    if (f.kind == "mqueue") {
      ZRUN_TRY_CTX(open_mqueue_fd(tr, f), "fd " + std::to_string(f.fd));
      continue;
    }
    // A console fd is the new console's slave (the init's session has it already, so the
    // open does not make it a controlling tty; restore_console_task does that).
    const std::string& name = f.kind == "tty" ? console : f.path;
    auto path = ZRUN_TRY(put_string(tr, name));
    long fd = ZRUN_TRY(tr.syscall_ok(("open `" + name + "`").c_str(), SYS_openat, AT_FDCWD, path,
                                     (f.flags & kKeep) | cloexec));
    if (fd != f.fd) {
      ZRUN_TRY(tr.syscall_ok("dup3", SYS_dup3, fd, f.fd, cloexec));
      ZRUN_TRY(tr.syscall(SYS_close, fd));
    }
    if (f.pos) ZRUN_TRY(tr.syscall_ok("lseek", SYS_lseek, f.fd, f.pos, SEEK_SET));
  }
  for (auto s : stdio) ZRUN_TRY(tr.syscall(SYS_close, s));
  return base::ok();
}

Result<void> restore_fs(Task& t) {
  auto& tr = t.tracee;
  ZRUN_TRY(tr.syscall_ok(("chdir `" + t.img->cwd + "`").c_str(), SYS_chdir,
                         ZRUN_TRY(put_string(tr, t.img->cwd))));
  ZRUN_TRY(tr.syscall(SYS_umask, t.img->umask));
  for (size_t r = 0; r < t.img->rlimits.size() && r < RLIM_NLIMITS; r++) {
    struct rlimit64 lim {
      t.img->rlimits[r].first, t.img->rlimits[r].second
    };
    if (::prlimit64(t.host, static_cast<__rlimit_resource>(r), &lim, nullptr) < 0)
      return base::sys_error("prlimit " + std::to_string(r));
  }
  return base::ok();
}

// Last: the placeholder is still fully privileged; drop to the saved credentials.
Result<void> restore_creds(Tracee& tr, const TaskImage& img) {
  if (img.groups.size() > 1000) return base::make_error("too many supplementary groups");
  ZRUN_TRY(tr.write_mem(tr.scratch(), img.groups.data(), img.groups.size() * 4));
  ZRUN_TRY(tr.syscall_ok("setgroups", SYS_setgroups, img.groups.size(), tr.scratch()));
  for (int cap = 0; cap <= 63; cap++)
    if (!(img.cap_bnd & (1ULL << cap))) {
      long r = ZRUN_TRY(tr.syscall(SYS_prctl, PR_CAPBSET_DROP, cap));
      if (r < 0 && r != -EINVAL)
        return base::sys_error("prctl PR_CAPBSET_DROP", static_cast<int>(-r));
    }
  ZRUN_TRY(tr.syscall_ok("prctl PR_SET_KEEPCAPS", SYS_prctl, PR_SET_KEEPCAPS, 1));
  ZRUN_TRY(tr.syscall_ok("setresgid", SYS_setresgid, img.gids[0], img.gids[1], img.gids[2]));
  ZRUN_TRY(tr.syscall(SYS_setfsgid, img.gids[3]));
  ZRUN_TRY(tr.syscall_ok("setresuid", SYS_setresuid, img.uids[0], img.uids[1], img.uids[2]));
  ZRUN_TRY(tr.syscall(SYS_setfsuid, img.uids[3]));
  ZRUN_TRY(tr.syscall_ok("prctl PR_SET_KEEPCAPS", SYS_prctl, PR_SET_KEEPCAPS, 0));
  struct {
    __user_cap_header_struct hdr;
    __user_cap_data_struct data[2];
  } caps{};
  caps.hdr.version = _LINUX_CAPABILITY_VERSION_3;
  caps.data[0] = {static_cast<uint32_t>(img.cap_eff), static_cast<uint32_t>(img.cap_prm),
                  static_cast<uint32_t>(img.cap_inh)};
  caps.data[1] = {static_cast<uint32_t>(img.cap_eff >> 32),
                  static_cast<uint32_t>(img.cap_prm >> 32),
                  static_cast<uint32_t>(img.cap_inh >> 32)};
  ZRUN_TRY(tr.write_mem(tr.scratch(), &caps, sizeof(caps)));
  ZRUN_TRY(tr.syscall_ok("capset", SYS_capset, tr.scratch(), tr.scratch() + sizeof(caps.hdr)));
  for (int cap = 0; cap <= 63; cap++)
    if (img.cap_amb & (1ULL << cap))
      ZRUN_TRY(tr.syscall_ok("prctl PR_CAP_AMBIENT", SYS_prctl, PR_CAP_AMBIENT,
                             PR_CAP_AMBIENT_RAISE, cap));
  if (img.no_new_privs)
    ZRUN_TRY(tr.syscall_ok("prctl PR_SET_NO_NEW_PRIVS", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1));
  return base::ok();
}

// Registers as saved; a task stopped inside a syscall re-issues it (or, after
// ERESTART_RESTARTBLOCK, whose restart state did not survive, sees EINTR).
user_regs_struct final_regs(const TaskImage& img) {
  user_regs_struct r = img.regs;
  if (static_cast<long>(r.orig_rax) >= 0) {
    long rax = -static_cast<long>(r.rax);
    if (rax == kErestartSys || rax == kErestartNoIntr || rax == kErestartNoHand) {
      r.rax = r.orig_rax;
      r.rip -= 2;
    } else if (rax == kErestartRestartBlock) {
      r.rax = static_cast<uint64_t>(-EINTR);
    }
    r.orig_rax = static_cast<uint64_t>(-1);
  }
  return r;
}

// Per-thread state, injected through the leader's area (the memory is shared).
Result<void> restore_thread(Thread& th, const Tracee& leader, const TaskImage& proc) {
  auto& tr = th.tracee;
  const auto& img = *th.img;
  ZRUN_TRY(tr.borrow_injection(leader));
  // The scratch page is shared too: threads run one at a time, so that is fine.
  ZRUN_TRY(restore_thread_attrs(tr, img));
  ZRUN_TRY(requeue(tr, proc.vpid, img.vtid, img.pending));
  ZRUN_TRY(restore_creds(tr, proc));
  ZRUN_TRY(tr.end_injection());
  ZRUN_TRY(tr.set_xstate(img.fpu));
  TaskImage as_task;  // final_regs works on the saved registers only
  as_task.regs = img.regs;
  tr.set_final_regs(final_regs(as_task));
  tr.set_final_sigmask(img.sigmask);
  return base::ok();
}

// The UTS namespace is the pod's: set once, from the init, while it is privileged.
Result<void> restore_uts(Tracee& tr, const Manifest& m) {
  // Only what differs from what create set: the spec's seccomp profile, already on the
  // placeholder, may forbid sethostname (podman's does without CAP_SYS_ADMIN).
  struct utsname now {};
  ZRUN_TRY(tr.syscall_ok("uname", SYS_uname, tr.scratch()));
  ZRUN_TRY(tr.read_mem(tr.scratch(), &now, sizeof(now)));
  if (!m.hostname.empty() && m.hostname != now.nodename)
    ZRUN_TRY(tr.syscall_ok("sethostname", SYS_sethostname, ZRUN_TRY(put_string(tr, m.hostname)),
                           m.hostname.size()));
  if (!m.domainname.empty() && m.domainname != "(none)" && m.domainname != now.domainname)
    ZRUN_TRY(tr.syscall_ok("setdomainname", SYS_setdomainname,
                           ZRUN_TRY(put_string(tr, m.domainname)), m.domainname.size()));
  return base::ok();
}

Result<void> restore_task(Task& t, const Image& image, const std::string& dir, const Manifest& m,
                          PipeTable& pipes, ObjectRestore& objs, const std::string& console) {
  auto& tr = t.tracee;
  auto cur = ZRUN_TRY(read_maps(t.host));
  uint64_t exec = 0;
  for (auto& v : cur)
    if (v.executable() && !v.special()) {
      exec = v.start;
      break;
    }
  uint64_t at = find_gap(cur, *t.img, Tracee::kAreaSize);
  if (!exec || !at) return base::make_error("no room for the injected code");
  ZRUN_TRY(tr.start_injection(exec, at));
  // The placeholder's own rseq area is about to vanish: unregister it first.
  RseqConfig rc{};
  if (::ptrace(static_cast<__ptrace_request>(kPtraceGetRseqConfiguration), t.host, sizeof(rc),
               &rc) > 0 &&
      rc.ptr)
    ZRUN_TRY(
        tr.syscall_ok("rseq unregister", SYS_rseq, rc.ptr, rc.size, kRseqUnregister, rc.signature));
  objs.begin_task(*t.img, t.host);
  ZRUN_TRY(rebuild_memory(t, cur, dir, objs, image));
  ZRUN_TRY(restore_mm(t, objs));
  ZRUN_TRY(restore_signals(t));
  ZRUN_TRY(restore_fds(t, pipes, objs, console));
  ZRUN_TRY(objs.end_task(tr));
  ZRUN_TRY(restore_console_task(tr, *t.img, m.tty, console));
  ZRUN_TRY(restore_fs(t));
  if (t.img->vpid == 1) ZRUN_TRY(restore_uts(tr, m));
  ZRUN_TRY(restore_creds(tr, *t.img));
  for (auto& th : t.threads) ZRUN_TRY(restore_thread(th, tr, *t.img));
  ZRUN_TRY(tr.end_injection());
  ZRUN_TRY(tr.set_xstate(t.img->fpu));
  tr.set_final_regs(final_regs(*t.img));
  return base::ok();
}

}  // namespace

PlaceholderPlan placeholder_plan(const Image& img) {
  PlaceholderPlan p;
  for (size_t i = 0; i < img.manifest.tasks.size(); i++) {
    auto& r = img.manifest.tasks[i];
    PlaceholderTask pt{r.vpid, r.ppid, r.pgid, r.sid, {}};
    for (auto& th : img.tasks[i].threads) pt.threads.push_back(th.vtid);
    p.tasks.push_back(std::move(pt));
  }
  p.console = !img.manifest.tty.slave.empty();
  return p;
}

Result<void> restore_tasks(pid_t init_pid, const Image& img) {
  std::map<pid_t, pid_t> v_to_host;
  ZRUN_TRY(find_tree(init_pid, v_to_host));
  // Before the seize: the placeholders (not traced yet) ignore the SIGWINCH of the resize.
  std::string console;
  if (!img.manifest.tty.slave.empty())
    console = ZRUN_TRY(prepare_console(init_pid, img.manifest.tty));
  std::vector<Task> tasks;
  // On any error the placeholders die here, never half-rebuilt and running.
  auto kill_all = [&] {
    for (auto& t : tasks) ::kill(t.host, SIGKILL);
    // As their tracer we must reap them (the namespace init's exit waits for the rest).
    std::vector<Tracee*> all;
    for (auto& t : tasks) {
      all.push_back(&t.tracee);
      for (auto& th : t.threads) all.push_back(&th.tracee);
    }
    reap_killed(std::move(all));
  };
  base::ScopeExit cleanup(kill_all);
  for (auto& ti : img.tasks) {
    auto it = v_to_host.find(ti.vpid);
    if (it == v_to_host.end())
      return base::make_error("placeholder for pid " + std::to_string(ti.vpid) + " is missing");
    Task t;
    t.host = it->second;
    t.img = &ti;
    t.tracee = ZRUN_TRY(Tracee::seize(t.host, /*exit_kill=*/true));
    // Its placeholder threads, by their pid in the container's namespace.
    std::map<pid_t, pid_t> tids;
    auto names = ZRUN_TRY(base::list_dir("/proc/" + std::to_string(t.host) + "/task"));
    for (auto& n : names) {
      auto tid = static_cast<pid_t>(ZRUN_TRY(base::parse_int(n)));
      if (tid == t.host) continue;
      auto st =
          ZRUN_TRY(base::read_file("/proc/" + std::to_string(t.host) + "/task/" + n + "/status"));
      tids[static_cast<pid_t>(ZRUN_TRY(status_last_int(st, "NSpid")))] = tid;
    }
    if (tids.size() != ti.threads.size())
      return base::make_error("placeholder threads of pid " + std::to_string(ti.vpid) +
                              " are missing");
    for (auto& x : ti.threads) {
      auto h = tids.find(x.vtid);
      if (h == tids.end())
        return base::make_error("placeholder thread " + std::to_string(x.vtid) + " is missing");
      Thread th;
      th.host = h->second;
      th.img = &x;
      th.tracee = ZRUN_TRY(Tracee::seize(th.host, /*exit_kill=*/true));
      t.threads.push_back(std::move(th));
    }
    tasks.push_back(std::move(t));
  }
  if (v_to_host.size() != tasks.size())
    return base::make_error("unexpected tasks in the restored container");
  for (auto& t : tasks) {
    ZRUN_TRY(t.tracee.wait_stop());
    for (auto& th : t.threads) ZRUN_TRY(th.tracee.wait_stop());
  }
  ZRUN_TRY_CTX(restore_ipc(init_pid, img), "restore the IPC namespace");
  PipeTable pipes;
  ObjectRestore objs(img);
  for (auto& t : tasks)
    ZRUN_TRY_CTX(restore_task(t, img, img.dir, img.manifest, pipes, objs, console),
                 "restore " + who(*t.img));
  ZRUN_TRY_CTX(objs.finish(), "restore");
  ZRUN_TRY_CTX(finish_ipc(init_pid, img), "restore the IPC namespace");
  cleanup.dismiss();
  for (auto& t : tasks) {
    for (auto& th : t.threads) ZRUN_TRY_CTX(th.tracee.detach(), "restore " + who(*t.img));
    ZRUN_TRY_CTX(t.tracee.detach(), "restore " + who(*t.img));
  }
  return base::ok();
}

}  // namespace zrun::ckpt
