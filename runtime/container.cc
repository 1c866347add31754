#include "runtime/container.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>

#include "base/log.h"
#include "base/sys.h"
#include "runtime/accounting.h"
#include "runtime/hooks.h"
#include "spec/state.h"

namespace zrun::rt {

using base::Result;
using base::UniqueFd;

const char* status_name(Status s) {
  switch (s) {
    case Status::kCreating:
      return "creating";
    case Status::kCreated:
      return "created";
    case Status::kRunning:
      return "running";
    case Status::kPaused:
      return "paused";
    case Status::kStopped:
      return "stopped";
  }
  return "unknown";
}

namespace {

// State letter of /proc/PID/stat; 'Z'/'X' mean the init has exited (not yet reaped).
char proc_state(pid_t pid) {
  auto stat = base::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  auto rp = stat->rfind(')');
  if (rp == std::string::npos || rp + 2 >= stat->size()) return 0;
  return (*stat)[rp + 2];
}

}  // namespace

Result<UniqueFd> open_init_pidfd(const ContainerRecord& rec) {
  if (rec.pid <= 0) return base::make_error("container `" + rec.id + "` is not running");
  long fd = ::syscall(SYS_pidfd_open, rec.pid, 0);
  if (fd < 0) {
    if (errno == ESRCH) return base::make_error("container `" + rec.id + "` is not running");
    return base::sys_error("pidfd_open " + std::to_string(rec.pid));
  }
  UniqueFd pidfd(static_cast<int>(fd));
  // Holding the pidfd, re-check identity: the PID may have been reused before we opened it.
  if (!init_alive(rec)) return base::make_error("container `" + rec.id + "` is not running");
  return pidfd;
}

namespace {

// Wait until the process behind `pidfd` has exited, up to `ms`.
bool wait_exit(int pidfd, int ms) {
  struct pollfd p {
    pidfd, POLLIN, 0
  };
  int r;
  do {
    r = ::poll(&p, 1, ms);
  } while (r < 0 && errno == EINTR);
  return r > 0;
}

}  // namespace

bool init_alive(const ContainerRecord& rec) {
  if (rec.pid <= 0) return false;
  auto st = base::proc_start_time(rec.pid);
  if (!st || *st != rec.pid_start_time) return false;
  char c = proc_state(rec.pid);
  return c != 0 && c != 'Z' && c != 'X';
}

namespace {

std::string pid_ns_of(pid_t pid) {
  char buf[64];
  std::string link = "/proc/" + std::to_string(pid) + "/ns/pid";
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// Every process whose PID namespace is the init's (readable for the caller's own
// processes, which a rootless container's are).
Result<std::vector<pid_t>> pids_in_ns_of(const ContainerRecord& rec) {
  std::string ns = pid_ns_of(rec.pid);
  if (ns.empty()) return base::sys_error("read pid namespace of " + std::to_string(rec.pid));
  if (ns == pid_ns_of(::getpid())) return std::vector<pid_t>{rec.pid};
  std::vector<pid_t> out;
  for (auto& name : ZRUN_TRY(base::list_dir("/proc"))) {
    auto pid = base::parse_int(name);
    if (pid && pid_ns_of(static_cast<pid_t>(*pid)) == ns) out.push_back(static_cast<pid_t>(*pid));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Result<void> signal_init(const ContainerRecord& rec, int sig) {
  auto pidfd = ZRUN_TRY(open_init_pidfd(rec));
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) < 0) {
    if (errno == ESRCH) return base::make_error("container `" + rec.id + "` is not running");
    return base::sys_error("kill `" + rec.id + "`");
  }
  return base::ok();
}

bool rootless_mode(const std::string& flag) {
  if (flag == "true") return true;
  if (flag == "false") return false;
  if (::geteuid() != 0) return true;
  auto map = base::read_file("/proc/self/uid_map");
  if (!map) return false;
  auto f = base::split(base::trim(*map), ' ');
  std::vector<std::string> fields;
  for (auto& x : f)
    if (!x.empty()) fields.push_back(x);
  return !(fields.size() == 3 && fields[0] == "0" && fields[1] == "0" && fields[2] == "4294967295");
}

Result<Container> Container::open(const StateStore& store, const std::string& id, bool exclusive) {
  Container c;
  c.store_ = &store;
  c.lock_ = ZRUN_TRY(store.lock(id, exclusive));
  c.rec_ = ZRUN_TRY(store.read(id));
  c.dir_ = store.dir(id);
  return c;
}

Status Container::status() const {
  if (!init_alive(rec_)) return Status::kStopped;
  if (base::path_exists(dir_ + "/exec.fifo")) return Status::kCreated;
  if (!rec_.cgroup.empty()) {
    auto cg = cg::Cgroup::load(rec_.cgroup);
    if (cg) {
      auto frozen = (*cg)->frozen();
      if (frozen && *frozen) return Status::kPaused;
    }
  }
  return Status::kRunning;
}

std::string state_document(const ContainerRecord& rec, const char* status) {
  spec::State st;
  st.oci_version = rec.oci_version;
  st.id = rec.id;
  st.status = status;
  st.pid = rec.pid;
  st.bundle = rec.bundle;
  st.annotations = rec.annotations;
  return spec::state_to_json(st);
}

std::string Container::state_json() const {
  Status s = status();
  if (s != Status::kStopped) return state_document(rec_, status_name(s));
  ContainerRecord stopped = rec_;
  stopped.pid = 0;  // as runc prints it
  return state_document(stopped, status_name(s));
}

Result<spec::Spec> Container::spec() const {
  auto text = ZRUN_TRY(base::read_file(dir_ + "/config.json"));
  return spec::parse_config(text, rec_.bundle);
}

Result<cg::Cgroup*> Container::cgroup() {
  if (!cg_ && !rec_.cgroup.empty()) cg_ = ZRUN_TRY(cg::Cgroup::load(rec_.cgroup));
  return cg_.get();
}

Result<std::vector<pid_t>> Container::pids() {
  auto* cg = ZRUN_TRY(cgroup());
  if (cg) return cg->pids();
  if (!init_alive(rec_)) return std::vector<pid_t>{};
  return pids_in_ns_of(rec_);
}

Result<void> Container::start() {
  Status st = status();
  if (st != Status::kCreated)
    return base::make_error("cannot start a container in the " + std::string(status_name(st)) +
                            " state");
  std::string fifo_path = dir_ + "/exec.fifo";
  // Non-blocking open never waits for a writer; then poll for the init's byte while also
  // watching the init itself, so a dead init cannot hang `start`.
  // The pidfd first: once the fifo is open the init may exec and exit at any moment.
  auto pidfd = ZRUN_TRY(open_init_pidfd(rec_));
  auto fifo = ZRUN_TRY(base::open_file(fifo_path, O_RDONLY | O_NONBLOCK));
  for (;;) {
    struct pollfd p[2] = {{fifo.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return base::sys_error("poll exec fifo");
    if (p[0].revents & POLLIN) {
      char c;
      ssize_t n = ::read(fifo.get(), &c, 1);
      if (n == 1) break;
    }
    if (p[1].revents & POLLIN) return base::make_error("container init exited before start");
  }
  // Then EOF: the init's end closes at execve (or if it dies first).
  for (;;) {
    struct pollfd p {
      fifo.get(), POLLIN, 0
    };
    int r = ::poll(&p, 1, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return base::sys_error("poll exec fifo");
    char c;
    ssize_t n = ::read(fifo.get(), &c, 1);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
  }
  ::unlink(fifo_path.c_str());
  auto s = rec_.poststart_hooks ? spec() : Result<spec::Spec>(base::make_error("no hooks"));
  if (s && !s->hooks.poststart.empty()) {
    std::string state = state_json();
    // poststart failures only warn (runtime.md).
    if (auto r = run_hooks(s->hooks.poststart, state, "poststart"); !r)
      base::log_warn(r.error().text());
  }
  return base::ok();
}

Result<void> Container::kill(int sig, bool all) {
  Status st = status();
  if (st == Status::kStopped) return base::make_error("container `" + rec_.id + "` is not running");
  if (all) {
    auto* cg = ZRUN_TRY(cgroup());
    if (cg) return cg->kill_all(sig);
    // No cgroup (rootless): the processes of the init's PID namespace, each through a
    // pidfd re-checked to be in that namespace (no PID-reuse race), the init last.
    std::string ns = pid_ns_of(rec_.pid);
    bool any = false;
    for (pid_t p : ZRUN_TRY(pids())) {
      if (p == rec_.pid) continue;
      long fd = ::syscall(SYS_pidfd_open, p, 0);
      if (fd < 0) continue;
      UniqueFd pidfd(static_cast<int>(fd));
      if (pid_ns_of(p) == ns)
        any |= ::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) == 0;
    }
    // The init may have exited meanwhile because its children did: not an error.
    auto r = signal_init(rec_, sig);
    if (!r && any && !init_alive(rec_)) return base::ok();
    return r;
  }
  return signal_init(rec_, sig);
}

Result<void> Container::write_report(const std::string& path, cg::Cgroup& cg) {
  auto stats = ZRUN_TRY_CTX(container_stats(store_->root(), rec_, cg), "--report");
  return base::write_file_atomic(path, stats.dump(2) + "\n", 0644, /*durable=*/false);
}

Result<void> Container::remove(bool force, const std::string& report) {
  Status st = status();
  if (st != Status::kStopped) {
    if (!force)
      return base::make_error("cannot delete container `" + rec_.id + "` in the " +
                              status_name(st) + " state: stop it first or use --force");
    auto* cg = ZRUN_TRY(cgroup());
    if (cg) {
      if (st == Status::kPaused) (void)cg->thaw();
      (void)cg->kill_all(SIGKILL);
    }
    auto pidfd = open_init_pidfd(rec_);
    if (pidfd) {
      ::syscall(SYS_pidfd_send_signal, pidfd->get(), SIGKILL, nullptr, 0);
      if (!wait_exit(pidfd->get(), 10000))
        return base::make_error("delete `" + rec_.id + "`: init did not exit after SIGKILL");
    }
  }
  auto* cg = ZRUN_TRY(cgroup());
  if (!cg && !report.empty())
    return base::make_error("delete `" + rec_.id + "`: --report: container has no cgroup");
  if (cg) {
    if (!report.empty()) ZRUN_TRY_CTX(write_report(report, *cg), "delete `" + rec_.id + "`");
    stop_accounting(store_->root(), *cg);
    ZRUN_TRY_CTX(cg->destroy(), "delete `" + rec_.id + "`: remove cgroup");
  }
  auto s = rec_.poststop_hooks ? spec() : Result<spec::Spec>(base::make_error("no hooks"));
  if (s && !s->hooks.poststop.empty()) {
    std::string state = state_json();
    if (auto r = run_hooks(s->hooks.poststop, state, "poststop"); !r)
      base::log_warn(r.error().text());
  }
  return store_->remove(rec_.id);
}

}  // namespace zrun::rt
