// Per-container resource accounting, in the kernel. One set of global programs per zrun
// state root; the `tracked` map (unified cgroup id -> slot) filters to zrun's containers,
// behind per-CPU caches so that a task of any other cgroup costs no helper call (see the
// maps below). Counters live in a per-CPU array (no atomics); user space sums the CPUs.
// No per-event string work.
//
// Only tracepoint/raw_tracepoint and cgroup_skb programs: our kernels have no fentry,
// tp_btf or LSM programs (docs/accounting.md). Task fields are read through
// bpf_rdonly_cast() (CO-RE field offsets, plain loads) because raw_tracepoint arguments
// are untrusted pointers.
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

// The cgroup filter, kept off helper calls: on our VM (SRSO "safe RET") every call into
// the kernel — a helper, a hash-map lookup — costs ~50 ns, while array and per-CPU array
// lookups, bpf_get_smp_processor_id() and the bpf_rdonly_cast() kfunc are inlined by the
// verifier and loads through a cast pointer are plain (fault-safe) loads. So:
// - `tracked` (cgroup id -> slot, a hash) is only consulted on a miss of `cg_cache`, a
//   small per-CPU direct-mapped cache of it;
// - `cpu_cur` holds, per CPU, the task sched_switch switched in, its status (tracked or
//   not, slot) and its own counters at switch-in, so sched_switch settles the outgoing
//   task from it (sched_switch runs with interrupts off: the slot is its own);
// - `gens` invalidates both: [0] is bumped by the kernel on every cgroup migration
//   (cgroup_attach_task: a running task may have changed cgroup), [1] by user space after
//   every change of `tracked`. A cached status is used only with the generations it was
//   computed at. Cgroup ids are never reused, so a cg_cache entry can only go stale
//   through `tracked`.
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

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, ZRUN_ACCT_GENS);
  __type(key, __u32);
  __type(value, __u64);
} gens SEC(".maps");

// A status: tracked (ZRUN_ACCT_F_TRACKED in flags) or not, with the tracked map's value.
struct status {
  __u32 slot, flags, sys_slot, pad;
};

// One entry is one 64-bit word, written and read with single stores and loads: programs
// of other events can interrupt a program between two stores on the same CPU (cgroup_skb
// in softirq; sys_enter runs preemptible), so a multi-word entry could be read half old,
// half new. Bits 0-8 slot, 9-14 sys_slot, 15 F_SYSCALLS, 16 F_TRACKED, 17-31 the user
// generation (low 15 bits), 32-63 the cgroup id's low 32 bits (the kernfs inode number).
#define CG_CACHE_WAYS 64
struct cg_cache {
  __u64 e[CG_CACHE_WAYS];
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct cg_cache);
} cg_cache SEC(".maps");

// The task running on this CPU, as sched_switch switched it in.
struct cpu_cur {
  __u64 task;        // its task_struct (0: not known yet)
  __u64 kgen, ugen;  // generations `st` was computed at
  struct status st;
  // Its own counters at switch-in.
  __u64 exec_ns, run_delay, pcount, min_flt, maj_flt;
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct cpu_cur);
} cpu_cur SEC(".maps");

// sys_slot -> per-syscall-nr counts, for containers that opted in.
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, ZRUN_ACCT_SYS_SLOTS);
  __type(key, __u32);
  __type(value, struct zrun_acct_sys_row);
} syscalls SEC(".maps");

// The bpf_rdonly_cast() kfunc: inlined by the verifier into a register move; loads through
// the result are plain loads with an exception-table entry (BPF_PROBE_MEM), instead of one
// bpf_probe_read_kernel() call per field (raw_tracepoint arguments are untrusted pointers).
// Not declared as a libbpf `__ksym` extern: libbpf would load and index the kernel's whole
// BTF (~6 MB, ~28 ms) at every load to resolve it. Called as a "helper" with an id no
// kernel has (clang emits `call ZRUN_ACCT_KFUNC_RDONLY_CAST`); before the load the loader
// rewrites these calls into kfunc calls (src_reg BPF_PSEUDO_KFUNC_CALL, imm = the kfunc's
// BTF id in the running kernel: the build host's, or found by a quick scan of the kernel's
// BTF, cgroups/btf_scan.cc). An unpatched call fails the load (no such helper). The loader
// patches the programs' own instructions only: keep every function that calls it
// __always_inline (a .text subprogram's calls would stay unpatched).
static void* (*const bpf_rdonly_cast)(const void* obj,
                                      __u32 btf_id) = (void*)ZRUN_ACCT_KFUNC_RDONLY_CAST;

// The kernel's BTF type ids of the structs cast to, set by the loader before the load
// (constants for the verifier: .rodata is frozen). Not bpf_core_type_id_kernel(): the
// loader relocates against a reduced copy of the kernel BTF when it can, whose type ids
// are its own (cgroups/accounting.cc).
const volatile __u32 task_struct_btf_id = 0;
const volatile __u32 sock_btf_id = 0;
const volatile __u32 bio_btf_id = 0;

static __always_inline struct task_struct* task_of(const void* p) {
  return bpf_rdonly_cast(p, task_struct_btf_id);
}

static __always_inline __u64 task_cgroup_id(struct task_struct* t) {
  return t->cgroups->dfl_cgrp->kn->id;
}

static __always_inline struct zrun_acct_counters* slot_counters(__u32 slot) {
  return bpf_map_lookup_elem(&counters, &slot);
}

struct gen_pair {
  __u64 k, u;
};

static __always_inline struct gen_pair read_gens(void) {
  struct gen_pair g = {};
  __u32 k = ZRUN_ACCT_GEN_KERNEL;
  __u64* v = bpf_map_lookup_elem(&gens, &k);
  if (v) g.k = *(volatile __u64*)v;
  k = ZRUN_ACCT_GEN_USER;
  v = bpf_map_lookup_elem(&gens, &k);
  if (v) g.u = *(volatile __u64*)v;
  return g;
}

// The status of cgroup `cgid`: from this CPU's cache, else from `tracked` (one hash
// lookup, then cached). `ugen` must have been read before.
static __always_inline struct status status_of(__u64 cgid, __u64 ugen) {
  struct status st = {};
  __u32 zero = 0;
  struct cg_cache* cache = bpf_map_lookup_elem(&cg_cache, &zero);
  if (!cache) return st;
  volatile __u64* e = &cache->e[(cgid ^ (cgid >> 6)) & (CG_CACHE_WAYS - 1)];
  __u64 tag = (cgid << 32) | ((ugen & 0x7fff) << 17);
  __u64 v = *e;
  if ((v & ~0x1ffffull) == tag) {
    st.slot = v & 0x1ff;
    st.sys_slot = (v >> 9) & 0x3f;
    st.flags =
        ((v >> 15) & 1 ? ZRUN_ACCT_F_SYSCALLS : 0) | ((v >> 16) & 1 ? ZRUN_ACCT_F_TRACKED : 0);
    return st;
  }
  struct zrun_acct_tracked* t = bpf_map_lookup_elem(&tracked, &cgid);
  if (t) {
    st.slot = t->slot & 0x1ff;
    st.flags = (t->flags & ZRUN_ACCT_F_SYSCALLS) | ZRUN_ACCT_F_TRACKED;
    st.sys_slot = t->sys_slot & 0x3f;
    v = tag | st.slot | (st.sys_slot << 9) | ((st.flags & ZRUN_ACCT_F_SYSCALLS) ? 1ull << 15 : 0) |
        (1ull << 16);
  } else {
    v = tag;
  }
  *e = v;
  return st;
}

static __always_inline struct cpu_cur* this_cpu_cur(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&cpu_cur, &zero);
}

// The status of the current task (contexts where current is the subject: sys_enter, exec,
// exit, block I/O submission): the cgroup-id helper, then cg_cache. Not this CPU's
// `cpu_cur`: measured, ~0.1-5% of syscalls on a loaded machine found it naming another
// task, mostly the one the other CPU had switched in (likely a preempted and migrated
// sys_enter program: syscall tracepoints may fault on 6.18). cg_cache entries name their
// cgroup and are single words, so reading another CPU's is still right.
static __always_inline struct status current_status(void) {
  struct gen_pair g = read_gens();
  return status_of(bpf_get_current_cgroup_id(), g.u);
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

// sched_switch(preempt, prev, next, prev_state) runs in prev's context. prev is the task
// this CPU's `cpu_cur` switched in, so its status is known (unless the generations moved)
// and its slice is settled from the counters recorded at its switch-in: CPU time
// (se.sum_exec_runtime, what the cgroup's cpu usage sums), the run-queue wait of this
// arrival (schedstat sched_info.run_delay/pcount; the kernel adds the arrival's wait right
// after this tracepoint, so it falls in the slice that follows), page faults
// (min_flt/maj_flt). None of them moves while the task is not running, so the slices add
// up to the task's totals. Then next is switched in: its status (cgroup id by plain loads,
// cg_cache) and its counters. No helper call unless a cache misses.
SEC("raw_tracepoint/sched_switch")
int BPF_PROG(zrun_switch, bool preempt, struct task_struct* prev_raw, struct task_struct* next_raw,
             unsigned int prev_state) {
  struct cpu_cur* cur = this_cpu_cur();
  if (!cur) return 0;
  struct gen_pair g = read_gens();
  struct task_struct* prev = task_of(prev_raw);
  bool known = cur->task == (__u64)prev_raw;
  struct status st;
  if (known && cur->kgen == g.k && cur->ugen == g.u)
    st = cur->st;
  else
    st = status_of(task_cgroup_id(prev), g.u);
  if (st.flags & ZRUN_ACCT_F_TRACKED) {
    struct zrun_acct_counters* c = slot_counters(st.slot);
    if (c) {
      // As the scheduler's own nvcsw/nivcsw: voluntary when it blocks, not when preempted.
      if (!preempt && prev_state != 0)
        c->vol_switches++;
      else
        c->invol_switches++;
      if (known) {
        __u64 v = prev->se.sum_exec_runtime;
        if (v > cur->exec_ns) c->oncpu_ns += v - cur->exec_ns;
        if (bpf_core_field_exists(prev->sched_info)) {
          __u64 pcount = prev->sched_info.pcount, delay = prev->sched_info.run_delay;
          if (pcount > cur->pcount && delay >= cur->run_delay) {
            __u64 waits = pcount - cur->pcount, d = delay - cur->run_delay;
            c->runq_count += waits;
            c->runq_total_ns += d;
            __u32 b = log2_bucket(waits ? d / waits : d);
            if (b < ZRUN_ACCT_RUNQ_BUCKETS) c->runq_hist[b] += waits;
          }
        }
        v = prev->min_flt;
        if (v > cur->min_flt) c->min_faults += v - cur->min_flt;
        v = prev->maj_flt;
        if (v > cur->maj_flt) c->maj_faults += v - cur->maj_flt;
      } else {
        // This CPU's switch-in of prev was not seen: a probe program found that for ~0.5%
        // of switches on a loaded VM (cause not identified). The scheduler's own start of
        // the slice still gives its CPU time (fair class: prev_sum_exec_runtime is
        // sum_exec_runtime when the task was picked); its faults and run-queue wait are
        // lost.
        __u64 v = prev->se.sum_exec_runtime, p0 = prev->se.prev_sum_exec_runtime;
        if (v > p0) c->oncpu_ns += v - p0;
      }
    }
  }
  struct task_struct* next = task_of(next_raw);
  cur->task = (__u64)next_raw;
  cur->kgen = g.k;
  cur->ugen = g.u;
  cur->st = status_of(task_cgroup_id(next), g.u);
  cur->exec_ns = next->se.sum_exec_runtime;
  if (bpf_core_field_exists(next->sched_info)) {
    cur->run_delay = next->sched_info.run_delay;
    cur->pcount = next->sched_info.pcount;
  }
  cur->min_flt = next->min_flt;
  cur->maj_flt = next->maj_flt;
  return 0;
}

// A task may have changed cgroup (cgroup.procs write, `zrun exec` joining a container,
// CLONE_INTO_CGROUP is a fork instead): every cached task status is stale. Rare.
SEC("raw_tracepoint/cgroup_attach_task")
int BPF_PROG(zrun_cgroup_attach) {
  __u32 k = ZRUN_ACCT_GEN_KERNEL;
  __u64* v = bpf_map_lookup_elem(&gens, &k);
  if (v) __sync_fetch_and_add(v, 1);
  return 0;
}

static __always_inline struct zrun_acct_counters* counters_of_status(struct status st) {
  if (!(st.flags & ZRUN_ACCT_F_TRACKED)) return 0;
  return slot_counters(st.slot);
}

static __always_inline struct zrun_acct_counters* counters_of_task(struct task_struct* t) {
  struct gen_pair g = read_gens();
  return counters_of_status(status_of(task_cgroup_id(t), g.u));
}

// Counted in the child's cgroup: with CLONE_INTO_CGROUP it differs from the parent's.
SEC("raw_tracepoint/sched_process_fork")
int BPF_PROG(zrun_fork, struct task_struct* parent, struct task_struct* child_raw) {
  struct task_struct* child = task_of(child_raw);
  struct zrun_acct_counters* c = counters_of_task(child);
  if (!c) return 0;
  if (child->pid == child->tgid)
    c->forks++;
  else
    c->threads++;
  return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int BPF_PROG(zrun_exec, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  struct zrun_acct_counters* c = counters_of_status(current_status());
  if (c) c->execs++;
  return 0;
}

// A process counts as one exit, when its thread-group leader exits (its counters are
// settled at its last switch-out, which follows).
SEC("raw_tracepoint/sched_process_exit")
int BPF_PROG(zrun_exit, struct task_struct* p_raw) {
  struct zrun_acct_counters* c = counters_of_status(current_status());
  struct task_struct* p = task_of(p_raw);
  if (c && p->pid == p->tgid) c->exits++;
  return 0;
}

// The OOM killer chose `task` (memcg or global OOM); runs in the allocating task's
// context, so the victim's cgroup is read from the victim.
SEC("raw_tracepoint/mark_victim")
int BPF_PROG(zrun_oom_victim, struct task_struct* task) {
  struct zrun_acct_counters* c = counters_of_task(task_of(task));
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
int BPF_PROG(zrun_bio_queue, struct bio* bio_raw) {
  struct zrun_acct_counters* c = counters_of_status(current_status());
  if (!c) return 0;
  struct bio* bio = bpf_rdonly_cast(bio_raw, bio_btf_id);
  __u32 op = bio->bi_opf & REQ_OP_MASK_;
  __u32 size = bio->bi_iter.bi_size;
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
// asked for it, so default accounting adds nothing to the syscall path. An untracked task
// costs two inlined array lookups and a compare.
SEC("raw_tracepoint/sys_enter")
int BPF_PROG(zrun_sys_enter, struct pt_regs* regs, long id) {
  struct status st = current_status();
  if (!(st.flags & ZRUN_ACCT_F_SYSCALLS)) return 0;
  struct zrun_acct_counters* c = slot_counters(st.slot);
  if (!c) return 0;
  c->syscalls++;
  if (id < 0 || id >= ZRUN_ACCT_MAX_SYSCALL) return 0;
  __u32 key = st.sys_slot;
  struct zrun_acct_sys_row* row = bpf_map_lookup_elem(&syscalls, &key);
  if (row) row->n[id & (ZRUN_ACCT_MAX_SYSCALL - 1)]++;
  return 0;
}

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

// cgroup_skb: attached to each container's unified cgroup; the packet's socket cgroup
// picks the slot (nested cgroups inherit the program and are not counted). Always lets
// the packet pass. The kernel runs these programs with skb->sk set to the full socket
// whose cgroup selected them, so its cgroup id is three plain loads through the cast
// socket (what bpf_skb_cgroup_id() reads, without the call). The protocol byte is read by
// direct packet access (the data starts at the network header); bpf_skb_load_bytes() only
// when the header is not in the linear part.
static __always_inline void count_skb(struct __sk_buff* skb, int egress) {
  struct bpf_sock* bsk = skb->sk;
  if (!bsk) return;
  struct sock* sk = bpf_rdonly_cast(bsk, sock_btf_id);
  struct gen_pair g = read_gens();
  struct zrun_acct_counters* c =
      counters_of_status(status_of(sk->sk_cgrp_data.cgroup->kn->id, g.u));
  if (!c) return;
  struct zrun_acct_net* n = egress ? &c->net_out : &c->net_in;
  __u8 proto = 0;
  __u32 off = 0;
  if (skb->protocol == bpf_htons(ETH_P_IP))
    off = 9;
  else if (skb->protocol == bpf_htons(ETH_P_IPV6))
    off = 6;
  if (off) {
    void* data = (void*)(long)skb->data;
    void* end = (void*)(long)skb->data_end;
    if (data + 10 <= end)
      proto = ((__u8*)data)[off];
    else
      bpf_skb_load_bytes(skb, off, &proto, 1);
  }
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
