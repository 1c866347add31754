// linux.resources.devices on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program generated
// from the OCI device rules (cgroup v2 has no devices.allow/deny files; since Linux 4.15
// the device controller of the unified hierarchy is this program type).
//
// Semantics (OCI runtime-spec config-linux.md, as the v1 controller and runc): the rules
// are evaluated in order and the last one that matches decides; nothing matching = deny.
// A rule matches a request (type, major, minor, access) when its type is `a` or equal,
// its major/minor are wildcards (absent or -1) or equal, and for the access:
//  - an allow rule: every requested bit is in the rule's access (requested ⊆ rule), so
//    "c 1:3 r" does not allow opening /dev/null read-write;
//  - a deny rule: any requested bit is in the rule's access (requested ∩ rule ≠ ∅), so
//    "deny c 1:3 w" refuses an O_RDWR open, as the v1 controller does (runc's program
//    uses ⊆ for deny rules too and would let that O_RDWR open through).
//
// The generator is pure (unit-tested without root); attach_device_filter() loads and
// attaches it with the raw bpf(2) syscall.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "spec/config.h"

namespace zrun::cg {

// The name the program is loaded with (BPF_OBJ_NAME_LEN = 16 with the NUL): how zrun
// recognises its own program among those attached to a cgroup when it replaces it.
inline constexpr char kDeviceFilterName[] = "zrun_devices";

// BPF_DEVCG_ACC_* bits of an OCI access string ("rwm" subset; "" means "rwm").
base::Result<uint32_t> device_access_bits(const std::string& access);

// The program for `rules` (in spec order; the caller appends the default allow-list, see
// device_rules_with_defaults()). Layout: 6 instructions load the context into r2 (type),
// r3 (access), r4 (major), r5 (minor); then one block per rule, *last rule first*, each
// ending in `r0 = allow; exit` and jumping to the next block on a mismatch; then
// `r0 = 0; exit` (default deny). A rule matching everything (type a, wildcards, rwm) ends
// the program early: the rules before it can never decide (and the verifier rejects
// unreachable instructions). Errors: a type other than a/b/c, an access character other
// than r/w/m, a major/minor above INT32_MAX.
base::Result<std::vector<bpf_insn>> device_filter_program(
    const std::vector<spec::DeviceRule>& rules);

// The same decision evaluated directly on the rules (the reference the program is tested
// against). `type` is 'c' or 'b'; `access` BPF_DEVCG_ACC_* bits.
bool device_rules_allow(const std::vector<spec::DeviceRule>& rules, char type, uint32_t major,
                        uint32_t minor, uint32_t access);

// True when the rules allow every request (each type, device number and access): a
// program for them would refuse nothing, so failing to load it loses nothing. Exact: it
// evaluates every major/minor the rules name plus one they do not.
bool device_rules_deny_nothing(const std::vector<spec::DeviceRule>& rules);

// A readable listing, one instruction per line in bpftool's style ("r2 = *(u32 *)(r1 +0)",
// "if r4 != 0x1 goto +2", "r0 = 1", "exit"); for tests and debug logs.
std::string device_filter_listing(const std::vector<bpf_insn>& prog);

// Load the program for `rules` and attach it to the cgroup2 directory `cgroup_dir`
// (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI). A zrun device filter already attached there is
// replaced atomically (BPF_F_REPLACE, Linux 5.6; attach-then-detach before that), so
// `update` never leaves the cgroup unfiltered. No pinning: the attachment holds the
// program, and removing the cgroup frees it. Errors name what the kernel lacks:
// "linux.resources.devices: cgroup v2 device rules need eBPF (BPF_PROG_TYPE_CGROUP_DEVICE):
// load program: Invalid argument".
base::Result<void> attach_device_filter(const std::string& cgroup_dir,
                                        const std::vector<spec::DeviceRule>& rules);

struct AttachedProgram {
  uint32_t id = 0;
  std::string name;  // as loaded (kernel truncates to 15 characters)
};
// The BPF_CGROUP_DEVICE programs attached directly to `cgroup_dir` (BPF_PROG_QUERY, not
// the effective set inherited from parents).
base::Result<std::vector<AttachedProgram>> attached_device_programs(const std::string& cgroup_dir);
// Detach every zrun device filter from `cgroup_dir` (rmdir frees them anyway; for
// callers that keep the cgroup).
base::Result<void> detach_device_filter(const std::string& cgroup_dir);

}  // namespace zrun::cg
