// A seized task and syscall injection without a parasite (docs/checkpoint.md "Engine";
// KERNEL-NOTES "Checkpoint/restore building blocks"): poke `syscall; int3` into an
// executable mapping, use it once to mmap a private code + scratch area, put the bytes
// back, then run every further syscall from the private page. All signals stay blocked
// while injecting, so pending signals are neither delivered nor lost.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace zrun::ckpt {

constexpr uint64_t kPageSize = 4096;

class Tracee {
 public:
  Tracee() = default;
  Tracee(Tracee&& o) noexcept;
  Tracee& operator=(Tracee&& o) noexcept;
  Tracee(const Tracee&) = delete;
  Tracee& operator=(const Tracee&) = delete;
  ~Tracee();  // detaches (registers and signal mask as saved) if still attached

  // PTRACE_SEIZE + PTRACE_INTERRUPT (not waited for: see wait_stop). `exit_kill`: the task
  // dies if we do (restore placeholders).
  static base::Result<Tracee> seize(pid_t pid, bool exit_kill);
  // Wait for the interrupt stop, then save registers and signal mask.
  base::Result<void> wait_stop();

  pid_t pid() const { return pid_; }
  const user_regs_struct& saved_regs() const { return regs_; }
  uint64_t saved_sigmask() const { return sigmask_; }

  // Map a private code + scratch area (at `at`, or anywhere when 0) by poking `syscall;
  // int3` over the first bytes of the executable mapping at `exec_addr`.
  base::Result<void> start_injection(uint64_t exec_addr, uint64_t at);
  uint64_t scratch() const { return area_ + kPageSize; }  // one RW page
  uint64_t area() const { return area_; }
  static constexpr uint64_t kAreaSize = 2 * kPageSize;
  // Run one syscall in the task; returns the raw result (-errno on failure).
  base::Result<long> syscall(long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                             uint64_t a4 = 0, uint64_t a5 = 0, uint64_t a6 = 0);
  // Same, but an error result becomes an Error naming `what`.
  base::Result<long> syscall_ok(const char* what, long nr, uint64_t a1 = 0, uint64_t a2 = 0,
                                uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0, uint64_t a6 = 0);
  // Use the injection area another thread of the same process mapped (not unmapped by us).
  base::Result<void> borrow_injection(const Tracee& owner);
  // munmap the injection area (the task faults on the int3 that is gone: expected).
  base::Result<void> end_injection();

  // Memory of the task (/proc/PID/mem: works on PROT_NONE and read-only private areas).
  base::Result<void> read_mem(uint64_t addr, void* buf, size_t len);
  base::Result<void> write_mem(uint64_t addr, const void* buf, size_t len);

  // Registers as the task will resume with them on detach.
  void set_final_regs(const user_regs_struct& r) { regs_ = r; }
  void set_final_sigmask(uint64_t m) { sigmask_ = m; }
  base::Result<void> set_xstate(const std::string& xstate);
  // Restore registers + mask and PTRACE_DETACH.
  base::Result<void> detach();
  // Forget the task without detaching (it was killed).
  void abandon() { pid_ = 0; }

 private:
  base::Result<int> wait_status(const char* dying);
  base::Result<void> mem_io(bool write, uint64_t addr, char* p, size_t len);
  base::Result<void> set_regs(const user_regs_struct& r);
  base::Result<void> run_until_trap(bool fault_ok);
  pid_t pid_ = 0;
  user_regs_struct regs_{};
  uint64_t sigmask_ = 0;
  uint64_t code_ = 0;  // address of `syscall; int3`
  uint64_t area_ = 0;
  bool borrowed_ = false;
  base::UniqueFd mem_;
};

// After SIGKILL: reap these tracees (as their tracer, in whatever order the kernel lets
// them go; a namespace init waits for the rest), SIGKILLing stragglers again, for at most
// ~5 s; then forget them (our exit releases what is left).
void reap_killed(std::vector<Tracee*> tracees);

// Queued signals of thread `tid` (PTRACE_PEEKSIGINFO): its own, or with `shared` the
// process's; each a raw 128-byte siginfo.
base::Result<std::vector<std::string>> peek_siginfo(pid_t tid, bool shared);

// Raw register sets.
base::Result<user_regs_struct> get_regs(pid_t pid);
// NT_X86_XSTATE (falls back to the 512-byte NT_PRFPREG; `*is_xstate` says which).
base::Result<std::string> get_fpu(pid_t pid, bool* is_xstate);
// XCR0 of this CPU (xgetbv 0).
uint64_t host_xcr0();

}  // namespace zrun::ckpt
