#include "cgroups/accounting.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "base/log.h"
#include "base/sys.h"
#include "base/unique_fd.h"

#ifdef ZRUN_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/btf.h>

#include "accounting.skel.h"
#ifdef ZRUN_HAVE_MIN_BTF
#include "accounting_min_btf.h"
#endif
#include "cgroups/bpf/accounting_shared.h"
#include "cgroups/btf_scan.h"
#endif

namespace zrun::cg::acct {

using base::Result;
using base::UniqueFd;

std::string bpffs_dir(const std::string& state_root) { return state_root + "/.bpf"; }

namespace {

// A cgroup's file handle is its 8-byte kernfs node id (FILEID_KERNFS), which is also the
// id bpf_get_current_cgroup_id() returns.
constexpr int kFileidKernfs = 0xfe;
struct CgroupHandle {
  struct file_handle fh;
  uint64_t id;
};

}  // namespace

Result<uint64_t> cgroup_id(const std::string& dir) {
  CgroupHandle h{};
  h.fh.handle_bytes = sizeof(uint64_t);
  int mount_id = 0;
  if (::name_to_handle_at(AT_FDCWD, dir.c_str(), &h.fh, &mount_id, 0) < 0)
    return base::sys_error("name_to_handle_at `" + dir + "`");
  if (h.fh.handle_bytes != sizeof(uint64_t))
    return base::make_error("cgroup id of `" + dir + "`: unexpected file handle size");
  uint64_t id;
  std::memcpy(&id, h.fh.f_handle, sizeof(id));
  return id;
}

uint64_t runq_percentile(const std::vector<uint64_t>& hist, double p) {
  uint64_t total = 0;
  for (auto n : hist) total += n;
  if (total == 0) return 0;
  double want = static_cast<double>(total) * p / 100.0;
  uint64_t seen = 0;
  for (size_t b = 0; b < hist.size(); ++b) {
    seen += hist[b];
    if (static_cast<double>(seen) >= want) return b + 1 >= 64 ? UINT64_MAX : 1ull << (b + 1);
  }
  return 1ull << hist.size();
}

#ifndef ZRUN_HAVE_BPF

bool compiled_in() { return false; }

namespace {
base::Error unavailable() {
  return base::make_error("eBPF accounting is unavailable: zrun was built without it");
}
}  // namespace

Result<void> track(const std::string&, const std::string&, const TrackOptions&) {
  return unavailable();
}
Result<void> untrack(const std::string& state_root, uint64_t) {
  (void)state_root;
  return base::ok();
}
Result<std::optional<Counters>> read(const std::string&, uint64_t, size_t) { return unavailable(); }

#else

bool compiled_in() { return true; }

namespace {

// libbpf's messages go to the debug log (a failed load is reported by our own error).
int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string_view msg(buf, n > 0 ? std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1) : 0);
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  base::log_debug("libbpf: " + std::string(msg));
  return 0;
}

void quiet_libbpf() {
  static bool done = false;
  if (!done) libbpf_set_print(libbpf_log);
  done = true;
}

Result<UniqueFd> lock_root(const std::string& root) {
  auto fd = ZRUN_TRY(base::open_file(root, O_RDONLY | O_DIRECTORY));
  int r;
  do {
    r = ::flock(fd.get(), LOCK_EX);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return base::sys_error("lock `" + root + "`");
  return fd;
}

bool is_bpffs(const std::string& dir) {
  struct statfs st {};
  return ::statfs(dir.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

Result<void> ensure_bpffs(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST)
    return base::sys_error("mkdir `" + dir + "`");
  if (is_bpffs(dir)) return base::ok();
  if (::mount("bpf", dir.c_str(), "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0) {
    int err = errno;
    ::rmdir(dir.c_str());
    return base::sys_error("mount bpffs on `" + dir + "`", err);
  }
  return base::ok();
}

// Names zrun pins (see the header); a fresh bpffs may also hold the kernel's preloaded
// iterators (maps.debug, progs.debug with CONFIG_BPF_PRELOAD), which are not ours.
bool ours(const std::string& name) {
  for (const char* p : {"map_", "prog_", "link_", "net_"})
    if (base::starts_with(name, p)) return true;
  return false;
}

// Our pins gone: unmount the bpffs (only if nothing else of ours or anyone's is pinned
// there) and remove the mount point.
void teardown(const std::string& dir) {
  if (is_bpffs(dir)) {
    auto names = base::list_dir(dir);
    if (!names) return;
    for (auto& n : *names)
      if (n != "maps.debug" && n != "progs.debug") return;
    if (::umount2(dir.c_str(), 0) < 0 && ::umount2(dir.c_str(), MNT_DETACH) < 0) {
      base::log_warn(base::sys_error("unmount `" + dir + "`").text());
      return;
    }
  }
  ::rmdir(dir.c_str());
}

void unpin_all(const std::string& dir) {
  auto names = base::list_dir(dir);
  if (!names) return;
  for (auto& n : *names)
    if (ours(n)) ::unlink((dir + "/" + n).c_str());
}

Result<UniqueFd> pinned(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return base::sys_error("open pinned `" + path + "`");
  return UniqueFd(fd);
}

Result<void> pin_fd(int fd, const std::string& path) {
  if (bpf_obj_pin(fd, path.c_str()) < 0) return base::sys_error("pin `" + path + "`");
  return base::ok();
}

struct SkelDeleter {
  void operator()(accounting* s) const { accounting__destroy(s); }
};

// The build host's BTF reduced to what the programs use, in a memfd, when we run on the
// kernel it was made from (same /proc/version); else an invalid fd: libbpf then uses the
// kernel's own BTF (slower to relocate against, always right).
// ZRUN_ACCOUNTING_BTF (tests, debugging): `kernel` takes the path of other kernels
// (relocate against the kernel's BTF, ids by scanning it); a file path uses that BTF for
// both (it must describe the running kernel). Null when unset.
const char* btf_override() {
  const char* e = std::getenv("ZRUN_ACCOUNTING_BTF");
  return e && *e ? e : nullptr;
}

UniqueFd min_btf() {
#ifdef ZRUN_HAVE_MIN_BTF
  if (btf_override()) return UniqueFd();
  auto v = base::read_file("/proc/version");
  if (!v || base::trim(*v) != kZrunMinBtfKernel) return UniqueFd();
  UniqueFd fd(static_cast<int>(::memfd_create("zrun-btf", MFD_CLOEXEC)));
  if (!fd || !base::write_all(fd.get(), std::string_view(reinterpret_cast<const char*>(kZrunMinBtf),
                                                         sizeof(kZrunMinBtf))))
    return UniqueFd();
  return fd;
#else
  return UniqueFd();
#endif
}

// The kernel's BTF ids the programs need: the structs they cast pointers to and the
// bpf_rdonly_cast() kfunc they call. The build host's when running on its kernel (with its
// reduced BTF), else found by one quick scan of the kernel's BTF (btf_scan.h) — not
// btf__load_vmlinux_btf(), which parses and indexes all ~6 MB of it (~25 ms).
struct KernelIds {
  uint32_t task_struct, sock, bio, rdonly_cast;
};

Result<KernelIds> kernel_ids(bool build_host_kernel, const std::string& kernel_btf) {
#ifdef ZRUN_HAVE_MIN_BTF
  if (build_host_kernel)
    return KernelIds{kZrunBtfId_task_struct, kZrunBtfId_sock, kZrunBtfId_bio,
                     kZrunBtfId_bpf_rdonly_cast};
#else
  (void)build_host_kernel;
#endif
  const btf::Wanted wanted[] = {{"task_struct", BTF_KIND_STRUCT},
                                {"sock", BTF_KIND_STRUCT},
                                {"bio", BTF_KIND_STRUCT},
                                {"bpf_rdonly_cast", BTF_KIND_FUNC}};
  auto ids = ZRUN_TRY(btf::find_ids_in_file(kernel_btf, wanted));
  return KernelIds{ids[0], ids[1], ids[2], ids[3]};
}

// The programs call bpf_rdonly_cast() as a helper with a placeholder id (accounting.bpf.c):
// turn each such call into a call of the kfunc (BTF id `id` in vmlinux: off 0). Before the
// load, on the programs' own instructions (libbpf relocates after this; the instruction
// count is unchanged).
Result<void> patch_kfunc_calls(bpf_object* obj, uint32_t id) {
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    const bpf_insn* insns = bpf_program__insns(prog);
    size_t n = bpf_program__insn_cnt(prog);
    std::vector<bpf_insn> patched(insns, insns + n);
    bool changed = false;
    for (auto& insn : patched) {
      if (insn.code == (BPF_JMP | BPF_CALL) && insn.src_reg == 0 &&
          insn.imm == ZRUN_ACCT_KFUNC_RDONLY_CAST) {
        insn.src_reg = BPF_PSEUDO_KFUNC_CALL;
        insn.off = 0;
        insn.imm = static_cast<int32_t>(id);
        changed = true;
      }
    }
    if (changed && bpf_program__set_insns(prog, patched.data(), n) != 0)
      return base::sys_error(std::string("patch the kfunc calls of `") + bpf_program__name(prog) +
                             "`");
  }
  return base::ok();
}

// After every change of `tracked`: the programs' cached cgroup statuses are stale
// (accounting.bpf.c). Callers hold the state root's lock, so user space is the only writer
// of this element.
Result<void> bump_user_gen(int gens_fd) {
  uint32_t key = ZRUN_ACCT_GEN_USER;
  uint64_t gen = 0;
  if (bpf_map_lookup_elem(gens_fd, &key, &gen) < 0)
    return base::sys_error("read the accounting generation");
  ++gen;
  if (bpf_map_update_elem(gens_fd, &key, &gen, BPF_ANY) < 0)
    return base::sys_error("bump the accounting generation");
  return base::ok();
}

// First container of this state root: load the object, attach the global tracepoint
// programs and pin what later invocations need. On error the caller unpins everything.
Result<void> load_and_pin(const std::string& dir) {
  quiet_libbpf();
  UniqueFd btf = min_btf();
  std::string btf_path = btf ? "/proc/self/fd/" + std::to_string(btf.get()) : "";
  std::string kernel_btf = "/sys/kernel/btf/vmlinux";
  if (const char* o = btf_override(); o && std::string_view(o) != "kernel")
    btf_path = kernel_btf = o;
  LIBBPF_OPTS(bpf_object_open_opts, open_opts,
              .btf_custom_path = btf_path.empty() ? nullptr : btf_path.c_str());
  std::unique_ptr<accounting, SkelDeleter> skel(accounting__open_opts(&open_opts));
  if (!skel) return base::sys_error("open the accounting BPF object");
  KernelIds ids =
      ZRUN_TRY_CTX(kernel_ids(static_cast<bool>(btf), kernel_btf), "find the kernel's BTF ids");
  skel->rodata->task_struct_btf_id = ids.task_struct;
  skel->rodata->sock_btf_id = ids.sock;
  skel->rodata->bio_btf_id = ids.bio;
  ZRUN_TRY(patch_kfunc_calls(skel->obj, ids.rdonly_cast));
  // Only what default accounting needs is auto-attached below; sys_enter is opt-in.
  if (int err = accounting__load(skel.get()); err)
    return base::sys_error("load the accounting BPF programs", -err);
  auto& m = skel->maps;
  std::pair<bpf_map*, const char*> maps[] = {{m.tracked, "map_tracked"},
                                             {m.counters, "map_counters"},
                                             {m.syscalls, "map_syscalls"},
                                             {m.gens, "map_gens"}};
  for (auto [map, name] : maps) ZRUN_TRY(pin_fd(bpf_map__fd(map), dir + "/" + name));
  // Cached statuses start zeroed: generation 0 must never be current.
  ZRUN_TRY(bump_user_gen(bpf_map__fd(m.gens)));
  auto& p = skel->progs;
  std::pair<bpf_program*, const char*> progs[] = {{p.zrun_sys_enter, "prog_sys_enter"},
                                                  {p.zrun_skb_in, "prog_skb_in"},
                                                  {p.zrun_skb_out, "prog_skb_out"}};
  for (auto [prog, name] : progs) ZRUN_TRY(pin_fd(bpf_program__fd(prog), dir + "/" + name));
  std::pair<bpf_program*, const char*> links[] = {
      {p.zrun_switch, "link_sched_switch"},
      {p.zrun_fork, "link_sched_process_fork"},
      {p.zrun_exec, "link_sched_process_exec"},
      {p.zrun_exit, "link_sched_process_exit"},
      {p.zrun_oom_victim, "link_mark_victim"},
      {p.zrun_bio_queue, "link_block_bio_queue"},
      {p.zrun_cgroup_attach, "link_cgroup_attach_task"}};
  for (auto [prog, name] : links) {
    bpf_link* link = bpf_program__attach(prog);
    if (!link) return base::sys_error(std::string("attach `") + bpf_program__name(prog) + "`");
    int err = bpf_link__pin(link, (dir + "/" + name).c_str());
    bpf_link__destroy(link);  // the pin holds the attachment
    if (err) return base::sys_error("pin `" + dir + "/" + name + "`", -err);
  }
  return base::ok();
}

struct Maps {
  UniqueFd tracked, counters, syscalls, gens;
};

// A pinned map whose value layout is not this binary's: loaded by another zrun version
// while its containers still run. Reading it would misinterpret every counter.
Result<UniqueFd> pinned_map(const std::string& path, uint32_t value_size) {
  // Older versions had no generation map (their programs cache nothing).
  if (!base::path_exists(path))
    return base::make_error("pinned `" + path +
                            "` is missing: the programs were loaded by another zrun version; "
                            "delete its accounted containers (the last delete unloads them) to "
                            "use this one");
  UniqueFd fd = ZRUN_TRY(pinned(path));
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
    return base::sys_error("inspect pinned `" + path + "`");
  if (info.value_size != value_size)
    return base::make_error("pinned `" + path + "` has " + std::to_string(info.value_size) +
                            "-byte values, this zrun expects " + std::to_string(value_size) +
                            ": it was loaded by another zrun version; delete its accounted "
                            "containers (the last delete unloads it) to use this one");
  return fd;
}

Result<Maps> open_maps(const std::string& dir) {
  Maps m;
  m.tracked = ZRUN_TRY(pinned_map(dir + "/map_tracked", sizeof(zrun_acct_tracked)));
  m.counters = ZRUN_TRY(pinned_map(dir + "/map_counters", sizeof(zrun_acct_counters)));
  m.syscalls = ZRUN_TRY(pinned_map(dir + "/map_syscalls", sizeof(zrun_acct_sys_row)));
  m.gens = ZRUN_TRY(pinned_map(dir + "/map_gens", sizeof(uint64_t)));
  return m;
}

std::vector<std::pair<uint64_t, zrun_acct_tracked>> tracked_entries(int fd) {
  std::vector<std::pair<uint64_t, zrun_acct_tracked>> out;
  uint64_t key = 0, next = 0;
  uint64_t* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    zrun_acct_tracked v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) out.emplace_back(next, v);
    key = next;
    prev = &key;
  }
  return out;
}

int ncpus() {
  int n = libbpf_num_possible_cpus();
  return n > 0 ? n : 1;
}

// A reused slot starts from zero (and so does a reused syscall row).
Result<void> reset_slot(const Maps& m, uint32_t slot, std::optional<uint32_t> sys_slot) {
  std::vector<zrun_acct_counters> zero(static_cast<size_t>(ncpus()));
  std::memset(zero.data(), 0, zero.size() * sizeof(zrun_acct_counters));
  if (bpf_map_update_elem(m.counters.get(), &slot, zero.data(), BPF_ANY) < 0)
    return base::sys_error("reset accounting counters");
  if (!sys_slot) return base::ok();
  std::vector<zrun_acct_sys_row> rows(static_cast<size_t>(ncpus()));
  std::memset(rows.data(), 0, rows.size() * sizeof(zrun_acct_sys_row));
  uint32_t key = *sys_slot;
  if (bpf_map_update_elem(m.syscalls.get(), &key, rows.data(), BPF_ANY) < 0)
    return base::sys_error("reset syscall counters");
  return base::ok();
}

std::string net_pin(const std::string& dir, uint64_t cgid, const char* dirn) {
  return dir + "/net_" + std::to_string(cgid) + "_" + dirn;
}

Result<void> attach_net(const std::string& dir, const std::string& cg_dir, uint64_t cgid) {
  auto cgfd = ZRUN_TRY(base::open_file(cg_dir, O_RDONLY | O_DIRECTORY));
  std::pair<const char*, bpf_attach_type> dirs[] = {{"in", BPF_CGROUP_INET_INGRESS},
                                                    {"out", BPF_CGROUP_INET_EGRESS}};
  for (auto [name, type] : dirs) {
    auto prog = ZRUN_TRY(pinned(dir + "/prog_skb_" + name));
    int link = bpf_link_create(prog.get(), cgfd.get(), type, nullptr);
    if (link < 0) return base::sys_error(std::string("attach cgroup_skb/") + name, -link);
    UniqueFd lfd(link);
    ZRUN_TRY(pin_fd(lfd.get(), net_pin(dir, cgid, name)));
  }
  return base::ok();
}

void detach_net(const std::string& dir, uint64_t cgid) {
  ::unlink(net_pin(dir, cgid, "in").c_str());
  ::unlink(net_pin(dir, cgid, "out").c_str());
}

Result<void> ensure_sys_enter(const std::string& dir) {
  std::string path = dir + "/link_sys_enter";
  if (base::path_exists(path)) return base::ok();
  auto prog = ZRUN_TRY(pinned(dir + "/prog_sys_enter"));
  int link = bpf_raw_tracepoint_open("sys_enter", prog.get());
  if (link < 0) return base::sys_error("attach raw_tracepoint/sys_enter", -link);
  UniqueFd lfd(link);
  return pin_fd(lfd.get(), path);
}

// Whether the cgroup with id `cgid` still exists (open_by_handle_at on the cgroup2 mount
// answers ESTALE for a removed cgroup).
bool cgroup_exists(int mount_fd, uint64_t cgid) {
  CgroupHandle h{};
  h.fh.handle_bytes = sizeof(uint64_t);
  h.fh.handle_type = kFileidKernfs;
  std::memcpy(h.fh.f_handle, &cgid, sizeof(cgid));
  int fd = ::open_by_handle_at(mount_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return true;
  }
  return errno != ESTALE && errno != ENOENT;
}

Result<void> untrack_locked(const std::string& dir, uint64_t cgid, int mount_fd) {
  if (!base::path_exists(dir + "/map_tracked")) {
    teardown(dir);
    return base::ok();
  }
  auto tracked = ZRUN_TRY(pinned(dir + "/map_tracked"));
  bpf_map_delete_elem(tracked.get(), &cgid);
  detach_net(dir, cgid);

  bool syscalls = false;
  size_t left = 0;
  for (auto& [id, v] : tracked_entries(tracked.get())) {
    // A container whose cgroup vanished without `delete` must not keep the programs
    // loaded forever.
    if (mount_fd >= 0 && !cgroup_exists(mount_fd, id)) {
      bpf_map_delete_elem(tracked.get(), &id);
      detach_net(dir, id);
      continue;
    }
    ++left;
    syscalls |= (v.flags & ZRUN_ACCT_F_SYSCALLS) != 0;
  }
  // The programs must stop using cached statuses of the removed ids (maps of an older
  // version have no generations and their programs cache nothing).
  if (auto gens = pinned(dir + "/map_gens"); gens) (void)bump_user_gen(gens->get());
  if (!syscalls) ::unlink((dir + "/link_sys_enter").c_str());
  if (left == 0) {
    tracked.reset();
    unpin_all(dir);
    teardown(dir);
  }
  return base::ok();
}

UniqueFd open_unified_mount(const std::string& cg_dir) {
  // The cgroup2 mount containing `cg_dir`: any directory of it serves as mount_fd.
  int fd = ::open(cg_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return UniqueFd(fd);
}

Result<void> track_locked(const std::string& dir, const std::string& cg_dir,
                          const TrackOptions& opts) {
  uint64_t cgid = ZRUN_TRY(cgroup_id(cg_dir));
  auto m = ZRUN_TRY(open_maps(dir));
  std::vector<bool> used(ZRUN_ACCT_SLOTS, false), sys_used(ZRUN_ACCT_SYS_SLOTS, false);
  for (auto& [id, v] : tracked_entries(m.tracked.get())) {
    if (id == cgid) return base::make_error("cgroup `" + cg_dir + "` is already accounted");
    if (v.slot < ZRUN_ACCT_SLOTS) used[v.slot] = true;
    if ((v.flags & ZRUN_ACCT_F_SYSCALLS) && v.sys_slot < ZRUN_ACCT_SYS_SLOTS)
      sys_used[v.sys_slot] = true;
  }
  auto it = std::find(used.begin(), used.end(), false);
  if (it == used.end())
    return base::make_error("accounting: all " + std::to_string(ZRUN_ACCT_SLOTS) +
                            " slots are in use");
  uint32_t slot = static_cast<uint32_t>(it - used.begin());
  std::optional<uint32_t> sys_slot;
  if (opts.syscalls) {
    auto st = std::find(sys_used.begin(), sys_used.end(), false);
    if (st == sys_used.end())
      return base::make_error("accounting: syscall counting is on for " +
                              std::to_string(ZRUN_ACCT_SYS_SLOTS) +
                              " containers already (the most at once)");
    sys_slot = static_cast<uint32_t>(st - sys_used.begin());
  }
  ZRUN_TRY(reset_slot(m, slot, sys_slot));
  if (opts.syscalls) ZRUN_TRY(ensure_sys_enter(dir));
  zrun_acct_tracked v{slot, opts.syscalls ? ZRUN_ACCT_F_SYSCALLS : 0u, sys_slot.value_or(0), 0};
  if (bpf_map_update_elem(m.tracked.get(), &cgid, &v, BPF_NOEXIST) < 0)
    return base::sys_error("track cgroup `" + cg_dir + "`");
  ZRUN_TRY(bump_user_gen(m.gens.get()));
  if (opts.network) {
    if (auto r = attach_net(dir, cg_dir, cgid); !r) {
      auto mfd = open_unified_mount(cg_dir);
      (void)untrack_locked(dir, cgid, mfd.get());
      return r;
    }
  }
  return base::ok();
}

}  // namespace

Result<void> track(const std::string& state_root, const std::string& cg_dir,
                   const TrackOptions& opts) {
  auto lock = ZRUN_TRY(lock_root(state_root));
  std::string dir = bpffs_dir(state_root);
  ZRUN_TRY(ensure_bpffs(dir));
  if (!base::path_exists(dir + "/map_tracked")) {
    if (auto r = load_and_pin(dir); !r) {
      unpin_all(dir);
      teardown(dir);
      return r;
    }
  }
  auto r = track_locked(dir, cg_dir, opts);
  if (!r) {
    // Leave nothing loaded for nobody.
    auto mfd = open_unified_mount(cg_dir);
    (void)untrack_locked(dir, 0, mfd.get());
  }
  return r;
}

Result<void> untrack(const std::string& state_root, uint64_t cgid) {
  std::string dir = bpffs_dir(state_root);
  if (!base::path_exists(dir)) return base::ok();
  auto lock = ZRUN_TRY(lock_root(state_root));
  // Any directory of the cgroup2 mount identifies it for open_by_handle_at.
  UniqueFd mfd(::open("/sys/fs/cgroup/unified", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!mfd) mfd.reset(::open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct statfs st {};
  if (mfd && (::fstatfs(mfd.get(), &st) < 0 || st.f_type != CGROUP2_SUPER_MAGIC)) mfd.reset();
  return untrack_locked(dir, cgid, mfd.get());
}

Result<std::optional<Counters>> read(const std::string& state_root, uint64_t cgid,
                                     size_t top_syscalls) {
  std::string dir = bpffs_dir(state_root);
  if (!base::path_exists(dir + "/map_tracked")) return std::optional<Counters>{};
  auto m = ZRUN_TRY(open_maps(dir));
  zrun_acct_tracked t{};
  if (bpf_map_lookup_elem(m.tracked.get(), &cgid, &t) < 0) return std::optional<Counters>{};
  std::vector<zrun_acct_counters> per(static_cast<size_t>(ncpus()));
  if (bpf_map_lookup_elem(m.counters.get(), &t.slot, per.data()) < 0)
    return base::sys_error("read accounting counters");
  Counters c;
  c.cgroup_id = cgid;
  c.syscalls_enabled = (t.flags & ZRUN_ACCT_F_SYSCALLS) != 0;
  c.runq_hist.assign(ZRUN_ACCT_RUNQ_BUCKETS, 0);
  auto add_net = [](NetCounters& n, const zrun_acct_net& v) {
    n.bytes += v.bytes;
    n.packets += v.packets;
    n.tcp_bytes += v.tcp_bytes;
    n.udp_bytes += v.udp_bytes;
    n.other_bytes += v.other_bytes;
  };
  for (auto& p : per) {
    c.oncpu_ns += p.oncpu_ns;
    c.vol_switches += p.vol_switches;
    c.invol_switches += p.invol_switches;
    c.runq_count += p.runq_count;
    c.runq_total_ns += p.runq_total_ns;
    for (size_t b = 0; b < ZRUN_ACCT_RUNQ_BUCKETS; ++b) c.runq_hist[b] += p.runq_hist[b];
    c.forks += p.forks;
    c.threads += p.threads;
    c.execs += p.execs;
    c.exits += p.exits;
    c.min_faults += p.min_faults;
    c.maj_faults += p.maj_faults;
    c.oom_kills += p.oom_kills;
    c.syscalls += p.syscalls;
    add_net(c.net_in, p.net_in);
    add_net(c.net_out, p.net_out);
    c.io_reads += p.io_reads;
    c.io_read_bytes += p.io_read_bytes;
    c.io_writes += p.io_writes;
    c.io_write_bytes += p.io_write_bytes;
  }
  if (c.syscalls_enabled && top_syscalls > 0) {
    std::vector<zrun_acct_sys_row> rows(static_cast<size_t>(ncpus()));
    uint32_t key = t.sys_slot;
    if (bpf_map_lookup_elem(m.syscalls.get(), &key, rows.data()) < 0)
      return base::sys_error("read syscall counters");
    for (uint32_t nr = 0; nr < ZRUN_ACCT_MAX_SYSCALL; ++nr) {
      uint64_t n = 0;
      for (auto& r : rows) n += r.n[nr];
      if (n) c.top_syscalls.emplace_back(nr, n);
    }
    std::sort(c.top_syscalls.begin(), c.top_syscalls.end(),
              [](auto& a, auto& b) { return a.second > b.second; });
    if (c.top_syscalls.size() > top_syscalls) c.top_syscalls.resize(top_syscalls);
  }
  return std::optional<Counters>{std::move(c)};
}

#endif  // ZRUN_HAVE_BPF

}  // namespace zrun::cg::acct
