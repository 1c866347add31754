// Layout shared by the accounting BPF programs (accounting.bpf.c) and their user-space
// reader (cgroups/accounting.cc). Plain C, fixed-width types only: the same header is
// compiled for -target bpf (types from vmlinux.h) and for the host (linux/types.h).
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

// Containers tracked at once per state root (slots of the per-CPU counter array).
#define ZRUN_ACCT_SLOTS 512
// Run-queue delay histogram: bucket b counts delays in [2^b, 2^(b+1)) ns (b = 0 also
// holds 0 ns); the last bucket is open-ended.
#define ZRUN_ACCT_RUNQ_BUCKETS 40
// Syscall numbers counted one by one (x86_64 has < 512; larger numbers land in the total
// only), for at most ZRUN_ACCT_SYS_SLOTS containers with syscall counting at once: a
// per-CPU array with one row of counters per container (an array lookup is inlined by the
// JIT; a hash lookup on every syscall is not; one element per row keeps map creation cheap:
// a per-CPU array allocates per element).
#define ZRUN_ACCT_MAX_SYSCALL 512
#define ZRUN_ACCT_SYS_SLOTS 64

// The placeholder helper id the programs call bpf_rdonly_cast() by; the loader patches
// each such call into a call of the kfunc before the load (accounting.bpf.c). No kernel
// helper has this id: an unpatched program fails to load.
#define ZRUN_ACCT_KFUNC_RDONLY_CAST 0x7a520001

// Value of the `tracked` map (key: cgroup id in the unified hierarchy).
struct zrun_acct_tracked {
  __u32 slot;
  __u32 flags;     // ZRUN_ACCT_F_*
  __u32 sys_slot;  // with ZRUN_ACCT_F_SYSCALLS: the row in the `syscalls` array
  __u32 pad;
};
#define ZRUN_ACCT_F_SYSCALLS 1u
// The programs' per-CPU cgroup cache packs slot and sys_slot into 9 and 6 bits
// (accounting.bpf.c).
#if ZRUN_ACCT_SLOTS > 512 || ZRUN_ACCT_SYS_SLOTS > 64
#error "cg_cache entries hold 9-bit slots and 6-bit syscall slots"
#endif
// Only in the programs' caches: the cgroup is tracked (never set in the `tracked` map).
#define ZRUN_ACCT_F_TRACKED 0x80000000u

// The `gens` array (u64 values): cached task/cgroup statuses are valid only with the
// generations they were computed at. The kernel bumps GEN_KERNEL on every cgroup
// migration; user space bumps GEN_USER after every change of `tracked` (and sets it to 1
// at load: cache entries start zeroed, so 0 never matches).
#define ZRUN_ACCT_GENS 2
#define ZRUN_ACCT_GEN_KERNEL 0
#define ZRUN_ACCT_GEN_USER 1

// One row of the per-CPU `syscalls` array.
struct zrun_acct_sys_row {
  __u64 n[ZRUN_ACCT_MAX_SYSCALL];
};

// Network counters of one direction. tcp/udp/other split the bytes by IP protocol.
struct zrun_acct_net {
  __u64 bytes, packets;
  __u64 tcp_bytes, udp_bytes, other_bytes;
};

// One slot of the per-CPU `counters` array; user space sums the CPUs.
struct zrun_acct_counters {
  __u64 oncpu_ns;
  __u64 vol_switches, invol_switches;
  __u64 runq_count, runq_total_ns;
  __u64 runq_hist[ZRUN_ACCT_RUNQ_BUCKETS];
  __u64 forks, threads, execs, exits;
  __u64 min_faults, maj_faults, oom_kills;
  __u64 syscalls;
  struct zrun_acct_net net_in, net_out;
  // Block I/O submitted by the container's own tasks (block_bio_queue): bios and bytes.
  __u64 io_reads, io_read_bytes, io_writes, io_write_bytes;
};
