// The bpf(2) syscall, thin: zrun generates its few eBPF programs itself (no libbpf), so all
// it needs is the raw command with a zeroed `union bpf_attr`.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <string_view>

#include "base/result.h"

namespace zrun::base {

// bpf(cmd, &attr, sizeof attr), retrying EINTR (and EAGAIN, which BPF_PROG_LOAD returns
// when the verifier was interrupted, as libbpf does). Returns the syscall's value (an fd
// for the *_LOAD / *_GET_FD_BY_ID commands); errors read "<what>: <strerror>".
Result<long> bpf(int cmd, union bpf_attr& attr, std::string_view what);

// Whether the kernel still holds program `id` (BPF_PROG_GET_FD_BY_ID succeeds): a
// detached, unpinned program is freed, so tests use it to prove nothing was leaked.
bool bpf_program_exists(uint32_t id);

// attr.<ptr field> = p (the kernel takes user pointers as __u64).
template <class T>
inline __u64 bpf_ptr(T* p) {
  return static_cast<__u64>(reinterpret_cast<uintptr_t>(p));
}

}  // namespace zrun::base
