// bench/bpf_floor.sh's loader: attach a minimal raw_tracepoint program to the given
// tracepoints, run a command, detach (the links are file descriptors of this process:
// nothing is pinned or mounted, everything goes when it exits). No libbpf, no clang: the
// programs are a few hand-written instructions.
//
//   bpf_floor_loader empty|cgid|lookup|cache TP[,TP...] -- CMD [ARG...]
//   bpf_floor_loader empty cgroup_skb -- CMD [ARG...]
//     the empty program (`r0 = 1; exit`: pass) as cgroup_skb ingress and egress of a new
//     cgroup (zrun-bpf-floor.PID under the unified hierarchy) that CMD runs in; the
//     cgroup is removed after CMD exits
//   empty:  r0 = 0; exit                                   (the cost of any program)
//   cgid:   bpf_get_current_cgroup_id(), then exit
//   lookup: bpf_get_current_cgroup_id() + one miss in an empty hash map, then exit
//           (what zrun's programs did for a task of an untracked cgroup)
//   cache:  one per-CPU array and one array lookup (both inlined by the verifier) and a
//           compare of their values: a status lookup with no call (docs/accounting.md)
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int sys_bpf(int cmd, union bpf_attr* a) { return (int)syscall(SYS_bpf, cmd, a, sizeof(*a)); }

#define INSN(c, d, s, o, i) \
  ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

int main(int argc, char** argv) {
  if (argc < 5 || strcmp(argv[3], "--") != 0) {
    fprintf(stderr, "usage: bpf_floor_loader empty|cgid|lookup|cache TP[,TP...] -- CMD [ARG...]\n");
    return 2;
  }
  int lookup = strcmp(argv[1], "lookup") == 0;
  int map = -1;
  if (lookup) {
    union bpf_attr m = {
        .map_type = BPF_MAP_TYPE_HASH, .key_size = 8, .value_size = 16, .max_entries = 512};
    map = sys_bpf(BPF_MAP_CREATE, &m);
    if (map < 0) return perror("bpf_floor_loader: map create"), 1;
  }
  int cache = strcmp(argv[1], "cache") == 0;
  int pcpu = -1, arr = -1;
  if (cache) {
    union bpf_attr m = {
        .map_type = BPF_MAP_TYPE_PERCPU_ARRAY, .key_size = 4, .value_size = 72, .max_entries = 1};
    union bpf_attr a = {
        .map_type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 2};
    pcpu = sys_bpf(BPF_MAP_CREATE, &m);
    arr = sys_bpf(BPF_MAP_CREATE, &a);
    if (pcpu < 0 || arr < 0) return perror("bpf_floor_loader: map create"), 1;
  }
  struct bpf_insn cached[] = {
      INSN(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, 0),                   // *(u32*)(fp-4) = 0
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),         // r2 = fp
      INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),                 // r2 -= 4
      INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, arr),  // r1 = gens
      INSN(0, 0, 0, 0, 0),
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),             // inlined
      INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 8, 0),                     // !r0: exit
      INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_6, BPF_REG_0, 0, 0),            // r6 = gen
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),          // r2 = fp
      INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),                  // r2 -= 4
      INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, pcpu),  // r1 = cpu_cur
      INSN(0, 0, 0, 0, 0),
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),   // inlined
      INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 1, 0),           // !r0: exit
      INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_1, BPF_REG_0, 8, 0),  // r1 = its gen
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  struct bpf_insn empty[] = {
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  struct bpf_insn cgid[] = {
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_current_cgroup_id),
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  struct bpf_insn look[] = {
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_current_cgroup_id),
      INSN(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_0, -8, 0),         // *(u64*)(fp-8) = r0
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),         // r2 = fp
      INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -8),                 // r2 -= 8
      INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map),  // r1 = map
      INSN(0, 0, 0, 0, 0),
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  int skb = strcmp(argv[2], "cgroup_skb") == 0;
  if (skb) empty[0].imm = 1;  // cgroup_skb: 1 lets the packet pass
  static char log[65536];
  union bpf_attr p = {.prog_type = skb ? BPF_PROG_TYPE_CGROUP_SKB : BPF_PROG_TYPE_RAW_TRACEPOINT,
                      .insns = (uintptr_t)(lookup                     ? look
                                           : cache                    ? cached
                                           : !strcmp(argv[1], "cgid") ? cgid
                                                                      : empty),
                      .insn_cnt = lookup                     ? sizeof(look) / sizeof(look[0])
                                  : cache                    ? sizeof(cached) / sizeof(cached[0])
                                  : !strcmp(argv[1], "cgid") ? 3
                                                             : 2,
                      .license = (uintptr_t) "GPL",
                      .log_buf = (uintptr_t)log,
                      .log_size = sizeof(log),
                      .log_level = 1};
  int prog = sys_bpf(BPF_PROG_LOAD, &p);
  if (prog < 0) {
    perror("bpf_floor_loader: prog load");
    fprintf(stderr, "%s\n", log);
    return 1;
  }
  char cg[256] = "";
  if (skb) {
    struct stat st;
    const char* base =
        stat("/sys/fs/cgroup/unified", &st) == 0 ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup";
    snprintf(cg, sizeof(cg), "%s/zrun-bpf-floor.%d", base, (int)getpid());
    if (mkdir(cg, 0755) < 0) return perror("bpf_floor_loader: mkdir cgroup"), 1;
    int cgfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (int t = 0; cgfd >= 0 && t < 2; t++) {
      union bpf_attr l = {
          .link_create = {.prog_fd = (uint32_t)prog,
                          .target_fd = (uint32_t)cgfd,
                          .attach_type = t ? BPF_CGROUP_INET_EGRESS : BPF_CGROUP_INET_INGRESS}};
      if (sys_bpf(BPF_LINK_CREATE, &l) < 0) {
        perror("bpf_floor_loader: attach cgroup_skb");
        rmdir(cg);
        return 1;
      }
    }
  }
  char* tps = strdup(skb ? "" : argv[2]);
  for (char* tp = strtok(tps, ","); tp; tp = strtok(NULL, ",")) {
    union bpf_attr r = {.raw_tracepoint = {.name = (uintptr_t)tp, .prog_fd = (uint32_t)prog}};
    if (sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &r) < 0) {
      fprintf(stderr, "bpf_floor_loader: attach %s: ", tp);
      perror("");
      return 1;
    }
  }
  pid_t pid = fork();
  if (pid < 0) return perror("bpf_floor_loader: fork"), 1;
  if (pid == 0) {
    if (skb) {
      char procs[300];
      snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
      int fd = open(procs, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, "0", 1) != 1) {
        perror("bpf_floor_loader: join cgroup");
        _exit(127);
      }
      close(fd);
    }
    execvp(argv[4], argv + 4);
    perror("bpf_floor_loader: exec");
    _exit(127);
  }
  int st = 0;
  int w = waitpid(pid, &st, 0);
  if (skb && rmdir(cg) < 0) perror("bpf_floor_loader: rmdir cgroup");
  if (w < 0) return perror("bpf_floor_loader: wait"), 1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
