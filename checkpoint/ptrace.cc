#include "checkpoint/ptrace.h"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "base/log.h"
#include "base/sys.h"

namespace zrun::ckpt {

using base::Result;

namespace {

constexpr uint64_t kTrapFlag = 0x100, kDirFlag = 0x400;

std::string pid_str(pid_t pid) { return "pid " + std::to_string(pid); }

std::string hex(int v) {
  char b[16];
  std::snprintf(b, sizeof(b), "%x", static_cast<unsigned>(v));
  return b;
}

}  // namespace

Tracee::Tracee(Tracee&& o) noexcept
    : pid_(std::exchange(o.pid_, 0)),
      regs_(o.regs_),
      sigmask_(o.sigmask_),
      code_(o.code_),
      area_(o.area_),
      borrowed_(o.borrowed_),
      mem_(std::move(o.mem_)) {}

Tracee& Tracee::operator=(Tracee&& o) noexcept {
  if (this != &o) {
    if (pid_) (void)detach();
    pid_ = std::exchange(o.pid_, 0);
    regs_ = o.regs_;
    sigmask_ = o.sigmask_;
    code_ = o.code_;
    area_ = o.area_;
    borrowed_ = o.borrowed_;
    mem_ = std::move(o.mem_);
  }
  return *this;
}

Tracee::~Tracee() {
  if (pid_) (void)detach();
}

Result<Tracee> Tracee::seize(pid_t pid, bool exit_kill) {
  long opts = exit_kill ? PTRACE_O_EXITKILL : 0;
  if (::ptrace(PTRACE_SEIZE, pid, nullptr, opts) < 0)
    return base::sys_error("ptrace seize " + pid_str(pid));
  Tracee t;
  t.pid_ = pid;
  if (::ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) < 0) {
    int e = errno;
    ::ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
    t.pid_ = 0;
    return base::sys_error("ptrace interrupt " + pid_str(pid), e);
  }
  return t;
}

// The next wait status of the tracee (EINTR retried); its death is an error `dying`.
Result<int> Tracee::wait_status(const char* dying) {
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return base::sys_error("wait for " + pid_str(pid_));
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      pid_ = 0;
      return base::make_error(pid_str(r) + " " + dying);
    }
    return st;
  }
}

Result<void> Tracee::wait_stop() {
  for (;;) {
    int st = ZRUN_TRY(wait_status("exited while being stopped"));
    if (WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_STOP) break;
    // A signal-delivery stop before the interrupt: leave the signal pending for later.
    int sig = WSTOPSIG(st);
    if (::ptrace(PTRACE_CONT, pid_, nullptr, sig) < 0)
      return base::sys_error("ptrace cont " + pid_str(pid_));
  }
  regs_ = ZRUN_TRY(get_regs(pid_));
  if (::ptrace(PTRACE_GETSIGMASK, pid_, sizeof(sigmask_), &sigmask_) < 0)
    return base::sys_error("ptrace getsigmask " + pid_str(pid_));
  auto mem = base::open_file("/proc/" + std::to_string(pid_) + "/mem", O_RDWR);
  if (!mem) return std::move(mem).error();
  mem_ = std::move(*mem);
  return base::ok();
}

Result<void> Tracee::set_regs(const user_regs_struct& r) {
  iovec iov{const_cast<user_regs_struct*>(&r), sizeof(r)};
  if (::ptrace(PTRACE_SETREGSET, pid_, NT_PRSTATUS, &iov) < 0)
    return base::sys_error("ptrace setregs " + pid_str(pid_));
  return base::ok();
}

Result<void> Tracee::run_until_trap(bool fault_ok) {
  if (::ptrace(PTRACE_CONT, pid_, nullptr, 0) < 0)
    return base::sys_error("ptrace cont " + pid_str(pid_));
  for (;;) {
    int st = ZRUN_TRY(wait_status("died during an injected syscall"));
    int sig = WSTOPSIG(st);
    base::log_debug("ckpt: pid " + std::to_string(pid_) + " stop status 0x" + hex(st));
    if ((st >> 16) == 0 && sig == SIGTRAP) return base::ok();
    if ((st >> 16) == 0 && fault_ok && (sig == SIGSEGV || sig == SIGBUS)) return base::ok();
    if ((st >> 16) == PTRACE_EVENT_STOP || (st >> 16) == 0) {
      // Group stop or a signal we keep blocked anyway: carry on without delivering it.
      if ((st >> 16) == 0 && sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU &&
          sig != SIGCONT)
        return base::make_error(pid_str(pid_) + ": unexpected signal " + std::to_string(sig) +
                                " during an injected syscall");
      if (::ptrace(PTRACE_CONT, pid_, nullptr, 0) < 0)
        return base::sys_error("ptrace cont " + pid_str(pid_));
      continue;
    }
    return base::make_error(pid_str(pid_) + ": unexpected ptrace stop " + std::to_string(st));
  }
}

Result<long> Tracee::syscall(long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                             uint64_t a5, uint64_t a6) {
  user_regs_struct r = regs_;
  r.rip = code_;
  r.rax = static_cast<uint64_t>(nr);
  r.orig_rax = static_cast<uint64_t>(-1);
  r.rdi = a1;
  r.rsi = a2;
  r.rdx = a3;
  r.r10 = a4;
  r.r8 = a5;
  r.r9 = a6;
  r.eflags &= ~(kTrapFlag | kDirFlag);
  ZRUN_TRY(set_regs(r));
  ZRUN_TRY(run_until_trap(false));
  auto out = ZRUN_TRY(get_regs(pid_));
  base::log_debug("ckpt: pid " + std::to_string(pid_) + " syscall " + std::to_string(nr) + " = " +
                  std::to_string(static_cast<long>(out.rax)));
  return static_cast<long>(out.rax);
}

Result<long> Tracee::syscall_ok(const char* what, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
                                uint64_t a4, uint64_t a5, uint64_t a6) {
  long r = ZRUN_TRY(syscall(nr, a1, a2, a3, a4, a5, a6));
  if (r < 0 && r > -4096)
    return base::sys_error(pid_str(pid_) + ": injected " + what, static_cast<int>(-r));
  return r;
}

Result<void> Tracee::start_injection(uint64_t exec_addr, uint64_t at) {
  // Block everything while we inject: pending signals stay pending (the int3 trap is
  // forced through the mask by the kernel).
  uint64_t all = ~0ULL;
  if (::ptrace(PTRACE_SETSIGMASK, pid_, sizeof(all), &all) < 0)
    return base::sys_error("ptrace setsigmask " + pid_str(pid_));
  errno = 0;
  long orig = ::ptrace(PTRACE_PEEKDATA, pid_, exec_addr, nullptr);
  if (errno) return base::sys_error("ptrace peek " + pid_str(pid_));
  long poked = orig;
  const unsigned char code[] = {0x0f, 0x05, 0xcc};  // syscall; int3
  std::memcpy(&poked, code, sizeof(code));
  if (::ptrace(PTRACE_POKEDATA, pid_, exec_addr, poked) < 0)
    return base::sys_error("ptrace poke " + pid_str(pid_));
  code_ = exec_addr;
  uint64_t flags = MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED_NOREPLACE : 0);
  auto addr = syscall(SYS_mmap, at, kAreaSize, PROT_READ | PROT_WRITE | PROT_EXEC, flags,
                      static_cast<uint64_t>(-1), 0);
  // Put the original bytes back before anything else can fail.
  bool restored = ::ptrace(PTRACE_POKEDATA, pid_, exec_addr, orig) == 0;
  if (!addr) return std::move(addr).error();
  if (!restored) return base::sys_error("ptrace poke back " + pid_str(pid_));
  if (*addr < 0 && *addr > -4096)
    return base::sys_error(pid_str(pid_) + ": injected mmap", static_cast<int>(-*addr));
  area_ = static_cast<uint64_t>(*addr);
  ZRUN_TRY(write_mem(area_, code, sizeof(code)));
  code_ = area_;
  return base::ok();
}

Result<void> Tracee::borrow_injection(const Tracee& owner) {
  uint64_t all = ~0ULL;
  if (::ptrace(PTRACE_SETSIGMASK, pid_, sizeof(all), &all) < 0)
    return base::sys_error("ptrace setsigmask " + pid_str(pid_));
  code_ = owner.code_;
  area_ = owner.area_;
  borrowed_ = true;
  return base::ok();
}

Result<void> Tracee::end_injection() {
  if (borrowed_) {
    area_ = 0;
    borrowed_ = false;
  }
  if (!area_) return base::ok();
  user_regs_struct r = regs_;
  r.rip = code_;
  r.rax = SYS_munmap;
  r.orig_rax = static_cast<uint64_t>(-1);
  r.rdi = area_;
  r.rsi = kAreaSize;
  r.eflags &= ~(kTrapFlag | kDirFlag);
  ZRUN_TRY(set_regs(r));
  ZRUN_TRY(run_until_trap(true));
  area_ = 0;
  return base::ok();
}

// /proc/PID/mem reaches areas process_vm_readv/writev cannot (PROT_NONE, exec-only).
Result<void> Tracee::mem_io(bool write, uint64_t addr, char* p, size_t len) {
  while (len > 0) {
    ssize_t n = write ? ::pwrite(mem_.get(), p, len, static_cast<off_t>(addr))
                      : ::pread(mem_.get(), p, len, static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return base::sys_error(pid_str(pid_) + (write ? ": write" : ": read") + " memory at " +
                             std::to_string(addr));
    p += n;
    addr += static_cast<uint64_t>(n);
    len -= static_cast<size_t>(n);
  }
  return base::ok();
}

Result<void> Tracee::read_mem(uint64_t addr, void* buf, size_t len) {
  return mem_io(false, addr, static_cast<char*>(buf), len);
}

Result<void> Tracee::write_mem(uint64_t addr, const void* buf, size_t len) {
  // pwrite does not write through the pointer; the cast only shares the loop.
  return mem_io(true, addr, const_cast<char*>(static_cast<const char*>(buf)), len);
}

Result<void> Tracee::set_xstate(const std::string& xstate) {
  iovec iov{const_cast<char*>(xstate.data()), xstate.size()};
  unsigned type = xstate.size() == 512 ? NT_PRFPREG : NT_X86_XSTATE;
  if (::ptrace(PTRACE_SETREGSET, pid_, type, &iov) < 0)
    return base::sys_error("ptrace set fpu state " + pid_str(pid_));
  return base::ok();
}

Result<void> Tracee::detach() {
  if (!pid_) return base::ok();
  pid_t pid = pid_;
  // An error mid-way (a dump that refused late): take the injected area away again.
  if (area_) (void)end_injection();
  if (!pid_) return base::make_error(pid_str(pid) + " died");
  auto r = set_regs(regs_);
  bool mask_ok = ::ptrace(PTRACE_SETSIGMASK, pid_, sizeof(sigmask_), &sigmask_) == 0;
  long d = ::ptrace(PTRACE_DETACH, pid_, nullptr, nullptr);
  int e = errno;
  pid_ = 0;
  if (!r) return r;
  if (!mask_ok) return base::make_error("ptrace setsigmask " + pid_str(pid));
  if (d < 0) return base::sys_error("ptrace detach " + pid_str(pid), e);
  return base::ok();
}

void reap_killed(std::vector<Tracee*> tracees) {
  for (int round = 0; round < 500 && !tracees.empty(); round++) {
    for (auto it = tracees.begin(); it != tracees.end();) {
      int st = 0;
      pid_t r = ::waitpid((*it)->pid(), &st, __WALL | WNOHANG);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 || (r > 0 && (WIFEXITED(st) || WIFSIGNALED(st)))) {
        (*it)->abandon();
        it = tracees.erase(it);
        continue;
      }
      // Still there (or reported a stop): make sure it got the kill, let it go on.
      if (r > 0) ::ptrace(PTRACE_CONT, (*it)->pid(), nullptr, 0);
      if (round % 50 == 49) ::syscall(SYS_tgkill, (*it)->pid(), (*it)->pid(), SIGKILL);
      ++it;
    }
    // Most tasks are gone within a millisecond or two: poll fast first.
    if (!tracees.empty()) base::sleep_ms(round < 100 ? 1 : 10);
  }
  for (auto* t : tracees) t->abandon();
}

Result<std::vector<std::string>> peek_siginfo(pid_t tid, bool shared) {
  struct {
    uint64_t off;
    uint32_t flags;
    int32_t nr;
  } args{0, shared ? 1u : 0u, 32};  // PTRACE_PEEKSIGINFO_SHARED = 1
  std::vector<std::string> out;
  for (;;) {
    std::string buf(128 * 32, '\0');
    long n = ::ptrace(PTRACE_PEEKSIGINFO, tid, &args, buf.data());
    if (n < 0) return base::sys_error("ptrace peeksiginfo " + pid_str(tid));
    for (long i = 0; i < n; i++) out.push_back(buf.substr(static_cast<size_t>(i) * 128, 128));
    if (n < args.nr) break;
    args.off += static_cast<uint64_t>(n);
  }
  return out;
}

Result<user_regs_struct> get_regs(pid_t pid) {
  user_regs_struct r{};
  iovec iov{&r, sizeof(r)};
  if (::ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, &iov) < 0)
    return base::sys_error("ptrace getregs " + pid_str(pid));
  return r;
}

Result<std::string> get_fpu(pid_t pid, bool* is_xstate) {
  std::string buf(64 * 1024, '\0');
  iovec iov{buf.data(), buf.size()};
  if (::ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, &iov) == 0) {
    buf.resize(iov.iov_len);
    *is_xstate = true;
    return buf;
  }
  buf.assign(512, '\0');
  iov = {buf.data(), buf.size()};
  if (::ptrace(PTRACE_GETREGSET, pid, NT_PRFPREG, &iov) < 0)
    return base::sys_error("ptrace get fpu state " + pid_str(pid));
  *is_xstate = false;
  return buf;
}

uint64_t host_xcr0() {
  uint32_t lo = 0, hi = 0;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

}  // namespace zrun::ckpt
