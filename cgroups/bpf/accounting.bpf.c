// Per-container resource accounting, in the kernel. One set of global programs per zrun
// state root; the `tracked` map (unified cgroup id -> slot) filters to zrun's containers,
// so a task of any other cgroup costs one hash lookup and leaves. Counters live in a
// per-CPU array (no atomics); user space sums the CPUs. No per-event string work.
//
// Only tracepoint/raw_tracepoint and cgroup_skb programs: our kernels have no fentry,
// tp_btf or LSM programs (docs/accounting.md). Task fields are read with CO-RE
// (BPF_CORE_READ) because raw_tracepoint arguments are untrusted pointers.
// vmlinux.h first: it defines the kernel types the libbpf headers use.
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "accounting_shared.h"
// clang-format on

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ZRUN_ACCT_SLOTS);
  __type(key, __u64);
  __type(value, struct zrun_acct_tracked);
} tracked SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, ZRUN_ACCT_SLOTS);
  __type(key, __u32);
  __type(value, struct zrun_acct_counters);
} counters SEC(".maps");

// Tracked task (tid) -> what of its own kernel counters was already counted. Only touched
// in the task's own context (switch-out), so there is no race between CPUs. LRU: a task
// whose last switch-out we miss cannot leak an entry.
struct task_seen {
  __u64 exec_ns, run_delay, pcount, min_flt, maj_flt;
};
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, struct task_seen);
} tasks SEC(".maps");

// sys_slot -> per-syscall-nr counts, for containers that opted in.
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, ZRUN_ACCT_SYS_SLOTS);
  __type(key, __u32);
  __type(value, struct zrun_acct_sys_row);
} syscalls SEC(".maps");

static __always_inline __u64 task_cgroup_id(struct task_struct* t) {
  return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

static __always_inline struct zrun_acct_counters* slot_counters(__u32 slot) {
  return bpf_map_lookup_elem(&counters, &slot);
}

// Counters of a tracked cgroup id, or NULL.
static __always_inline struct zrun_acct_counters* counters_of(__u64 cgid, __u32* slot_out) {
  struct zrun_acct_tracked* t = bpf_map_lookup_elem(&tracked, &cgid);
  if (!t) return 0;
  if (slot_out) *slot_out = t->slot;
  return slot_counters(t->slot);
}

static __always_inline __u32 log2_bucket(__u64 v) {
  __u32 b = 0;
#pragma unroll
  for (int shift = 32; shift > 0; shift >>= 1) {
    if (v >= (1ull << shift)) {
      v >>= shift;
      b += shift;
    }
  }
  return b < ZRUN_ACCT_RUNQ_BUCKETS ? b : ZRUN_ACCT_RUNQ_BUCKETS - 1;
}

#define TASK_DEAD_ 0x80

// The current (tracked) task is switching out: add what its own counters grew by since
// its last switch-out — CPU time (se.sum_exec_runtime, what the cgroup's cpu usage sums),
// run-queue waits (sched_info.run_delay/pcount: the kernel's schedstat, the wait before
// each arrival on a CPU), page faults (min_flt/maj_flt). Tasks are born tracked (the
// container's cgroup is tracked before its init is cloned), so counting from zero is exact.
static __always_inline void settle(struct zrun_acct_counters* c, struct task_struct* t, __u32 tid,
                                   bool dead) {
  struct task_seen now = {};
  // `t` is the BTF-typed current task: plain loads (checked by the verifier, inlined by the
  // JIT) instead of one bpf_probe_read_kernel call per field.
  now.exec_ns = t->se.sum_exec_runtime;
  if (bpf_core_field_exists(t->sched_info)) {
    now.run_delay = t->sched_info.run_delay;
    now.pcount = t->sched_info.pcount;
  }
  now.min_flt = t->min_flt;
  now.maj_flt = t->maj_flt;
  struct task_seen zero = {};
  struct task_seen* seen = bpf_map_lookup_elem(&tasks, &tid);
  struct task_seen* base = seen ? seen : &zero;
  if (now.exec_ns > base->exec_ns) c->oncpu_ns += now.exec_ns - base->exec_ns;
  if (now.pcount > base->pcount && now.run_delay >= base->run_delay) {
    __u64 waits = now.pcount - base->pcount, d = now.run_delay - base->run_delay;
    c->runq_count += waits;
    c->runq_total_ns += d;
    __u32 b = log2_bucket(waits ? d / waits : d);
    if (b < ZRUN_ACCT_RUNQ_BUCKETS) c->runq_hist[b] += waits;
  }
  if (now.min_flt > base->min_flt) c->min_faults += now.min_flt - base->min_flt;
  if (now.maj_flt > base->maj_flt) c->maj_faults += now.maj_flt - base->maj_flt;
  if (dead)
    bpf_map_delete_elem(&tasks, &tid);
  else if (seen)
    *seen = now;
  else
    bpf_map_update_elem(&tasks, &tid, &now, BPF_ANY);
}

// sched_switch(preempt, prev, next, prev_state) runs in prev's context (current == prev).
// Only the task switching out is looked at: a task of any other cgroup costs the cgroup id
// helper and one hash lookup, and there is no wakeup hook at all.
SEC("raw_tracepoint/sched_switch")
int BPF_PROG(zrun_switch, bool preempt, struct task_struct* prev, struct task_struct* next,
             unsigned int prev_state) {
  struct zrun_acct_counters* c = counters_of(bpf_get_current_cgroup_id(), 0);
  if (!c) return 0;
  // As the scheduler's own nvcsw/nivcsw: voluntary when it blocks, not when preempted.
  if (!preempt && prev_state != 0)
    c->vol_switches++;
  else
    c->invol_switches++;
  settle(c, bpf_get_current_task_btf(), (__u32)bpf_get_current_pid_tgid(),
         (prev_state & TASK_DEAD_) != 0);
  return 0;
}

// Counted in the child's cgroup: with CLONE_INTO_CGROUP it differs from the parent's.
SEC("raw_tracepoint/sched_process_fork")
int BPF_PROG(zrun_fork, struct task_struct* parent, struct task_struct* child) {
  struct zrun_acct_counters* c = counters_of(task_cgroup_id(child), 0);
  if (!c) return 0;
  if (BPF_CORE_READ(child, pid) == BPF_CORE_READ(child, tgid))
    c->forks++;
  else
    c->threads++;
  return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int BPF_PROG(zrun_exec, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  struct zrun_acct_counters* c = counters_of(bpf_get_current_cgroup_id(), 0);
  if (c) c->execs++;
  return 0;
}

// A process counts as one exit, when its thread-group leader exits (its counters are
// settled at its last switch-out, which follows).
SEC("raw_tracepoint/sched_process_exit")
int BPF_PROG(zrun_exit, struct task_struct* p) {
  struct zrun_acct_counters* c = counters_of(bpf_get_current_cgroup_id(), 0);
  if (c && BPF_CORE_READ(p, pid) == BPF_CORE_READ(p, tgid)) c->exits++;
  return 0;
}

// The OOM killer chose `task` (memcg or global OOM); runs in the allocating task's
// context, so the victim's cgroup is read from the victim.
SEC("raw_tracepoint/mark_victim")
int BPF_PROG(zrun_oom_victim, struct task_struct* task) {
  struct zrun_acct_counters* c = counters_of(task_cgroup_id(task), 0);
  if (c) c->oom_kills++;
  return 0;
}

// Block I/O, where attributable: block_bio_queue runs in the context of the task that
// submits the bio (direct I/O, reads and readahead, synchronous writes and fsync from the
// container's own tasks); page-cache writeback is submitted by kworkers and is not counted
// here (the cgroup's own io.stat/blkio counters see it). The operation is the low byte of
// bi_opf (REQ_OP_READ 0, REQ_OP_WRITE 1); flushes, discards etc. are not counted.
#define REQ_OP_MASK_ 0xffu
SEC("raw_tracepoint/block_bio_queue")
int BPF_PROG(zrun_bio_queue, struct bio* bio) {
  struct zrun_acct_counters* c = counters_of(bpf_get_current_cgroup_id(), 0);
  if (!c) return 0;
  __u32 op = BPF_CORE_READ(bio, bi_opf) & REQ_OP_MASK_;
  __u32 size = BPF_CORE_READ(bio, bi_iter.bi_size);
  if (op == 0) {
    c->io_reads++;
    c->io_read_bytes += size;
  } else if (op == 1) {
    c->io_writes++;
    c->io_write_bytes += size;
  }
  return 0;
}

// Opt-in (org.zrun.accounting.syscalls=true): attached only while a tracked container
// asked for it, so default accounting adds nothing to the syscall path.
SEC("raw_tracepoint/sys_enter")
int BPF_PROG(zrun_sys_enter, struct pt_regs* regs, long id) {
  __u64 cgid = bpf_get_current_cgroup_id();
  struct zrun_acct_tracked* t = bpf_map_lookup_elem(&tracked, &cgid);
  if (!t || !(t->flags & ZRUN_ACCT_F_SYSCALLS)) return 0;
  struct zrun_acct_counters* c = slot_counters(t->slot);
  if (!c) return 0;
  c->syscalls++;
  if (id < 0 || id >= ZRUN_ACCT_MAX_SYSCALL) return 0;
  __u32 key = t->sys_slot;
  struct zrun_acct_sys_row* row = bpf_map_lookup_elem(&syscalls, &key);
  if (row) row->n[id & (ZRUN_ACCT_MAX_SYSCALL - 1)]++;
  return 0;
}

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

// cgroup_skb: attached to each container's unified cgroup; the packet's socket cgroup
// picks the slot. Always lets the packet pass.
static __always_inline void count_skb(struct __sk_buff* skb, int egress) {
  struct zrun_acct_counters* c = counters_of(bpf_skb_cgroup_id(skb), 0);
  if (!c) return;
  struct zrun_acct_net* n = egress ? &c->net_out : &c->net_in;
  __u8 proto = 0;
  // cgroup_skb data starts at the network header.
  if (skb->protocol == bpf_htons(ETH_P_IP))
    bpf_skb_load_bytes(skb, 9, &proto, 1);
  else if (skb->protocol == bpf_htons(ETH_P_IPV6))
    bpf_skb_load_bytes(skb, 6, &proto, 1);
  n->bytes += skb->len;
  n->packets++;
  if (proto == IPPROTO_TCP_)
    n->tcp_bytes += skb->len;
  else if (proto == IPPROTO_UDP_)
    n->udp_bytes += skb->len;
  else
    n->other_bytes += skb->len;
}

SEC("cgroup_skb/ingress")
int zrun_skb_in(struct __sk_buff* skb) {
  count_skb(skb, 0);
  return 1;
}

SEC("cgroup_skb/egress")
int zrun_skb_out(struct __sk_buff* skb) {
  count_skb(skb, 1);
  return 1;
}
