// Parent side of `create`: prepare everything, one clone3(), drive the init handshake,
// persist the state. Every step registers its rollback, so a failure leaves nothing.
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <optional>
#include <vector>

#include "base/log.h"
#include "base/sys.h"
#include "isolation/console.h"
#include "isolation/lsm.h"
#include "isolation/namespaces.h"
#include "isolation/process.h"
#include "isolation/seccomp.h"
#include "runtime/accounting.h"
#include "runtime/container.h"
#include "runtime/hooks.h"
#include "runtime/init.h"
#include "runtime/sync_protocol.h"
#include "spec/state.h"

namespace zrun::rt {

namespace {

using base::Result;
using base::UniqueFd;

// Namespaces that clone3() can create in one go. Time is excluded (offsets must be set
// before any task enters it) and so is cgroup unless the child is born in its cgroup
// (CLONE_INTO_CGROUP): the cgroup ns root is fixed at creation.
struct NsPlan {
  uint64_t clone_flags = 0;
  std::vector<UniqueFd> join_fds;  // owned here; raw copies go into InitContext
  UniqueFd pid_join_fd;            // joined by the parent: affects its next child
};

Result<NsPlan> plan_namespaces(const spec::Spec& s, InitContext& ctx, bool into_cgroup) {
  NsPlan plan;
  if (!s.linux_) return base::make_error("config.json: .linux is required");
  const auto& nss = s.linux_->namespaces;
  if (!s.linux_->has_ns(spec::NsType::kMount))
    return base::make_error("config.json: .linux.namespaces: a mount namespace is required");
  bool any_join = false;
  for (auto& n : nss) any_join |= !n.path.empty();
  // Joined user namespace first: everything else is then owned by it.
  std::vector<const spec::Namespace*> ordered;
  for (auto& n : nss)
    if (n.type == spec::NsType::kUser) ordered.push_back(&n);
  for (auto& n : nss)
    if (n.type != spec::NsType::kUser) ordered.push_back(&n);
  for (auto* n : ordered) {
    int flag = spec::ns_clone_flag(n->type);
    if (!n->path.empty()) {
      auto fd = ZRUN_TRY(iso::open_namespace(n->path, n->type));
      if (n->type == spec::NsType::kPid) {
        plan.pid_join_fd = std::move(fd);
      } else {
        ctx.join_fds.emplace_back(n->type, fd.get());
        plan.join_fds.push_back(std::move(fd));
      }
      continue;
    }
    switch (n->type) {
      case spec::NsType::kTime:
        ctx.new_time_ns = true;
        break;
      case spec::NsType::kPid:
        plan.clone_flags |= CLONE_NEWPID;
        break;
      case spec::NsType::kCgroup:
        // Born in its cgroup: clone3 can create it. Otherwise the child unshares it after
        // the parent moved it into its v1 cgroups (kGo), so the ns root is that cgroup.
        if (into_cgroup && !any_join)
          plan.clone_flags |= CLONE_NEWCGROUP;
        else
          ctx.new_cgroup_ns_late = true;
        break;
      default:
        // With joins, the child joins first and unshares after (ownership order).
        if (any_join)
          ctx.unshare_flags |= flag;
        else
          plan.clone_flags |= static_cast<uint64_t>(flag);
    }
    if (n->type == spec::NsType::kUser) ctx.new_user_ns = true;
    if (n->type == spec::NsType::kNetwork) ctx.new_net_ns = true;
  }
  ctx.set_uts = s.linux_->has_ns(spec::NsType::kUts);
  if (!ctx.set_uts && (!s.hostname.empty() || !s.domainname.empty()))
    return base::make_error("config.json: .hostname: requires a uts namespace");
  return plan;
}

// A sysctl is allowed only where the container has its own kernel namespace for it (as
// runc): otherwise writing it would change the host.
Result<void> check_sysctls(const spec::Linux& lx) {
  auto own = [&](spec::NsType t) {
    auto* n = lx.ns(t);
    return n && n->path.empty();
  };
  static const char* kIpc[] = {"kernel.msgmax", "kernel.msgmnb",         "kernel.msgmni",
                               "kernel.sem",    "kernel.shmall",         "kernel.shmmax",
                               "kernel.shmmni", "kernel.shm_rmid_forced"};
  for (auto& [key, value] : lx.sysctl) {
    bool ok = false;
    if (base::starts_with(key, "net."))
      ok = lx.has_ns(spec::NsType::kNetwork);
    else if (base::starts_with(key, "fs.mqueue."))
      ok = own(spec::NsType::kIpc) || lx.has_ns(spec::NsType::kIpc);
    else if (key == "kernel.hostname" || key == "kernel.domainname")
      ok = lx.has_ns(spec::NsType::kUts);
    else
      for (auto* k : kIpc) ok |= key == k && lx.has_ns(spec::NsType::kIpc);
    if (!ok)
      return base::make_error("config.json: .linux.sysctl: \"" + key +
                              "\" is not in a namespace of the container: refusing to change "
                              "the host");
  }
  return base::ok();
}

std::vector<std::string> container_env(const spec::Process& p, int* preserve_fds) {
  std::vector<std::string> env = p.env;
  // Socket activation: fds 3.. passed to *us* (LISTEN_PID is our pid, sd_listen_fds(3))
  // go on to the container, as runc does.
  const char* lp = std::getenv("LISTEN_PID");
  const char* lf = std::getenv("LISTEN_FDS");
  auto pid = base::parse_int(lp ? lp : "");
  if (lf && pid && *pid == ::getpid()) {
    auto n = base::parse_int(lf);
    if (n && *n > 0) {
      *preserve_fds += static_cast<int>(*n);
      env.push_back("LISTEN_FDS=" + std::to_string(*n));
      env.push_back("LISTEN_PID=1");
    }
  }
  return env;
}

class Rollback {
 public:
  void add(std::function<void()> f) { steps_.push_back(std::move(f)); }
  void dismiss() { steps_.clear(); }
  ~Rollback() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
  }

 private:
  std::vector<std::function<void()>> steps_;
};

std::string absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[4096];
  if (!::getcwd(cwd, sizeof(cwd))) return path;
  return base::join_path(cwd, path);
}

Result<void> write_pid_file(const std::string& path, pid_t pid) {
  // Written atomically: engines read it as soon as it appears.
  return base::write_file_atomic(path, std::to_string(pid), 0644, /*durable=*/false);
}

bool permission_error(const base::Error& e) {
  return e.err == EACCES || e.err == EPERM || e.err == EROFS;
}

// Rootless containers use cgroups only where they are delegated to the user (the
// directories are writable), as crun does: without write access the container runs
// without a cgroup (no limits, no freezer; kill --all signals the pid namespace) after
// a warning. With access to the directories but not to a controller's files, it runs
// in a cgroup without the limits. Rootful, any error is an error.
Result<std::unique_ptr<cg::Cgroup>> create_cgroup(const spec::Spec& s, const CreateOptions& opts) {
  cg::CgroupConfig cgc;
  std::string path = s.linux_ ? s.linux_->cgroups_path : "";
  // A user's delegated subtree is where its own processes are, not at the root: default
  // to a cgroup below our own.
  if (opts.rootless && path.empty()) path = "zrun/" + opts.id;
  cgc.path = ZRUN_TRY(cg::resolve_path(path, opts.id));
  cgc.resources = (s.linux_ && s.linux_->resources) ? &*s.linux_->resources : nullptr;
  if (opts.resources) cgc.resources = opts.resources;
  cgc.devices = s.linux_ ? &s.linux_->devices : nullptr;
  auto cg = cg::Cgroup::create(cgc);
  if (cg) return std::move(*cg);
  if (!opts.rootless || !permission_error(cg.error()))
    return base::context(std::move(cg).error(), "create cgroup");
  if (cgc.resources) {
    base::log_warn("rootless: linux.resources not applied: " + cg.error().text());
    cgc.resources = nullptr;
    cg = cg::Cgroup::create(cgc);
    if (cg) return std::move(*cg);
    if (!permission_error(cg.error())) return base::context(std::move(cg).error(), "create cgroup");
  }
  base::log_warn("rootless: cgroups are not delegated to uid " + std::to_string(::geteuid()) +
                 ", running without a cgroup: " + cg.error().text());
  return std::unique_ptr<cg::Cgroup>();
}

}  // namespace

Result<Created> create_container(const StateStore& store, const CreateOptions& opts) {
  // What the rollback undoes lives outside it: destroyed after the rollback ran.
  std::unique_ptr<cg::Cgroup> cgroup;
  UniqueFd pidfd;
  Rollback rb;
  std::string bundle = opts.bundle;
  if (bundle.empty()) bundle = ".";
  char* real = ::realpath(bundle.c_str(), nullptr);
  if (!real) return base::sys_error("bundle `" + bundle + "`");
  bundle = real;
  std::free(real);
  std::string config_text = ZRUN_TRY(base::read_file(bundle + "/config.json"));
  auto s = ZRUN_TRY(spec::parse_config(config_text, bundle));
  if (!s.process) return base::make_error("config.json: .process is required to create");
  bool have_console = !opts.console_socket.empty() || opts.console_fd >= 0;
  if (s.process->terminal && !have_console)
    return base::make_error("process.terminal is true: --console-socket is required");
  if (!s.process->terminal && !opts.console_socket.empty())
    return base::make_error("--console-socket given but process.terminal is false");
  ZRUN_TRY(iso::check_lsm(s));
  if (opts.restore && opts.restore->console && !s.process->terminal)
    return base::make_error(
        "the image has a console (process.terminal) but the bundle's process.terminal is false");

  // Like runc, work from the bundle directory (hooks run there); paths the caller gave
  // relative to its cwd are made absolute first.
  std::string pid_file = absolute(opts.pid_file), console_path = absolute(opts.console_socket);
  if (::chdir(bundle.c_str()) < 0) return base::sys_error("chdir `" + bundle + "`");

  auto lock = ZRUN_TRY(store.create_dir(opts.id));
  std::string dir = store.dir(opts.id);
  rb.add([&store, id = opts.id] { (void)store.remove(id); });

  ContainerRecord rec;
  rec.id = opts.id;
  rec.bundle = bundle;
  rec.oci_version = s.oci_version;
  rec.rootfs = s.root.path;
  rec.created = rfc3339_now();
  rec.owner_uid = ::geteuid();
  rec.annotations = s.annotations;
  rec.poststart_hooks = !s.hooks.poststart.empty();
  rec.poststop_hooks = !s.hooks.poststop.empty();

  // The cgroup exists before the child so it is born (v2) or put (v1) in it. Rootless,
  // there may be none (not delegated): every use below checks.
  if (opts.systemd_cgroup)
    return base::make_error("--systemd-cgroup: systemd is not running on this host");
  cgroup = ZRUN_TRY(create_cgroup(s, opts));
  if (cgroup) {
    rb.add([&cgroup] { (void)cgroup->destroy(); });
    rec.cgroup = cgroup->to_json();
    // Tracked before the init is cloned, so every task of the container is counted.
    if (start_accounting(store.root(), *cgroup, s.annotations))
      rb.add([&store, &cgroup] { stop_accounting(store.root(), *cgroup); });
  }
  int into_cgroup_fd = cgroup ? cgroup->clone_into_fd() : -1;

  InitContext ctx;
  ctx.spec = &s;
  ctx.no_pivot = opts.no_pivot;
  ctx.new_keyring = !opts.no_new_keyring;
  ctx.preserve_fds = opts.preserve_fds;
  ctx.restore = opts.restore;
  ctx.env = container_env(*s.process, &ctx.preserve_fds);
  auto ns = ZRUN_TRY(plan_namespaces(s, ctx, into_cgroup_fd >= 0));
  if (s.linux_) ZRUN_TRY(check_sysctls(*s.linux_));

  // The init opens exec.fifo after switching to the container's user (maybe unprivileged
  // and user-namespaced): writable by all, as runc's 0622. Only the state dir's owner can
  // reach it by path; the init goes through its inherited O_PATH fd.
  std::string fifo_path = dir + "/exec.fifo";
  if (::mkfifo(fifo_path.c_str(), 0622) < 0 || ::chmod(fifo_path.c_str(), 0622) < 0)
    return base::sys_error("mkfifo `" + fifo_path + "`");
  UniqueFd fifo = ZRUN_TRY(base::open_file(fifo_path, O_PATH));
  ctx.fifo_fd = fifo.get();
  UniqueFd console;
  if (s.process->terminal && opts.console_fd >= 0) {
    ctx.console_fd = opts.console_fd;
  } else if (s.process->terminal) {
    console = ZRUN_TRY_CTX(iso::connect_unix(console_path), "--console-socket");
    ctx.console_fd = console.get();
  }
  // Compiled here: no libseccomp after clone. The listener is a host path, so it is
  // connected before the child changes its mount namespace and root.
  std::optional<iso::SeccompProgram> seccomp;
  UniqueFd seccomp_sock;
  if (s.linux_ && s.linux_->seccomp) {
    seccomp = ZRUN_TRY(iso::compile_seccomp(*s.linux_->seccomp));
    ctx.seccomp = &*seccomp;
    if (seccomp->notify && opts.restore)
      return base::make_error("restore: a seccomp listener is not supported yet");
    // restore: placeholder threads exist before the filter; TSYNC puts them under it.
    if (opts.restore) seccomp->flags |= SECCOMP_FILTER_FLAG_TSYNC;
    if (seccomp->notify) {
      seccomp_sock = ZRUN_TRY_CTX(iso::connect_unix(seccomp->listener_path), "seccomp listener");
      ctx.seccomp_listener_fd = seccomp_sock.get();
    }
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return base::sys_error("socketpair");
  UniqueFd parent_sock(sv[0]), child_sock(sv[1]);
  ctx.sync_fd = child_sock.get();
  ctx.close_fds = {lock.get(), parent_sock.get()};

  if (ns.pid_join_fd && ::setns(ns.pid_join_fd.get(), CLONE_NEWPID) < 0)
    return base::sys_error("setns pid namespace");
  int pidfd_raw = -1;
  long pid = base::clone3_fork(ns.clone_flags, into_cgroup_fd, &pidfd_raw);
  if (pid < 0) return base::sys_error("clone3");
  if (pid == 0) run_init(ctx);  // never returns
  pidfd.reset(pidfd_raw);
  child_sock.reset();
  rb.add([&pidfd, pid] {
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    (void)base::wait_pid(static_cast<pid_t>(pid));
  });
  rec.pid = static_cast<pid_t>(pid);
  rec.pid_start_time = ZRUN_TRY(base::proc_start_time(rec.pid));

  int sock = parent_sock.get();
  if (ctx.new_user_ns) {
    ZRUN_TRY(sync_expect(sock, SyncType::kUserNsReady));
    ZRUN_TRY(iso::write_id_maps(rec.pid, s.linux_->uid_mappings, s.linux_->gid_mappings));
  }
  // Born in its cgroup (CLONE_INTO_CGROUP), the child needs no join: a write to
  // cgroup.procs, even of the same cgroup, takes cgroup_threadgroup_rwsem for writing and
  // waits for an RCU grace period (~8 ms here). On v1 that wait is unavoidable, so the
  // child sets up its rootfs meanwhile — unless something it does before kReady must
  // already be in the cgroup: the cgroup namespace root, createContainer hook processes.
  bool need_join = cgroup && into_cgroup_fd < 0;
  bool join_later = need_join && !ctx.new_cgroup_ns_late && s.hooks.create_container.empty();
  if (need_join && !join_later) ZRUN_TRY_CTX(cgroup->add_pid(rec.pid), "join cgroup");
  if (s.process->oom_score_adj)
    ZRUN_TRY(iso::set_oom_score_adj(rec.pid, *s.process->oom_score_adj));
  bool parent_hooks = !s.hooks.prestart.empty() || !s.hooks.create_runtime.empty();
  std::string creating = state_document(rec, "creating");
  uint32_t go_flags = (parent_hooks ? kGoRunHooks : 0) | (join_later ? kGoJoinLater : 0);
  ZRUN_TRY(sync_send(sock, SyncType::kGo, go_flags, 0, creating));
  if (join_later) {
    // The child runs meanwhile: if it failed and exited, its error explains ours (ESRCH).
    if (auto r = cgroup->add_pid(rec.pid); !r)
      return prefer_peer_error(sock, base::context(std::move(r).error(), "join cgroup"));
  }
  ZRUN_TRY(base::write_file(dir + "/config.json", config_text, 0, 0600));
  if (parent_hooks) {
    ZRUN_TRY(sync_expect(sock, SyncType::kMountsDone));
    ZRUN_TRY(run_hooks(s.hooks.prestart, creating, "prestart"));
    ZRUN_TRY(run_hooks(s.hooks.create_runtime, creating, "createRuntime"));
    ZRUN_TRY(sync_send(sock, SyncType::kHooksDone));
  }
  if (join_later) ZRUN_TRY(sync_send(sock, SyncType::kCgroupJoined));
  ZRUN_TRY(sync_expect(sock, SyncType::kReady));

  ZRUN_TRY(store.write(rec));
  if (!pid_file.empty()) ZRUN_TRY_CTX(write_pid_file(pid_file, rec.pid), "pid file");
  rb.dismiss();
  return Created{rec.pid, std::move(pidfd), s.process->terminal};
}

}  // namespace zrun::rt
