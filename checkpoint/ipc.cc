// The container's IPC namespace: dump and restore (see ipc.h).
#include "checkpoint/ipc.h"

#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/sys.h"
#include "checkpoint/proc.h"

namespace zrun::ckpt {

using base::Result;

namespace {

// Missing from older headers.
constexpr int kShmStatAny = 15, kSemStatAny = 20, kMsgStatAny = 13;
constexpr int kMsgCopy = 040000;
constexpr long kMqueueMagic = 0x19800202, kHugetlbfsMagic = 0x958458f6;
constexpr unsigned kShmDest = 01000, kShmLocked = 02000;

struct ShmSeg {
  int id = 0;
  int64_t key = 0;
  uint32_t uid = 0, gid = 0, mode = 0;
  uint64_t size = 0;
  bool destroyed = false, locked = false;
  std::string file;  // shm-<id>.img in the image: the bytes of the extents, concatenated
  std::string hash;  // hex64 of that file
  std::vector<std::pair<uint64_t, uint64_t>> extents;  // {offset, length}: the rest is zero
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ShmSeg, id, key, uid, gid, mode, size, destroyed,
                                                locked, file, hash, extents)

struct SemSet {
  int id = 0;
  int64_t key = 0;
  uint32_t uid = 0, gid = 0, mode = 0;
  std::vector<uint16_t> values;
  bool operated = false;  // sem_otime != 0 (programs wait for it after creating a set)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SemSet, id, key, uid, gid, mode, values, operated)

struct Msg {
  int64_t type = 0;
  std::string data;  // hex
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Msg, type, data)

struct MsgQueue {
  int id = 0;
  int64_t key = 0;
  uint32_t uid = 0, gid = 0, mode = 0;
  uint64_t qbytes = 0;
  std::vector<Msg> msgs;  // in queue order
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MsgQueue, id, key, uid, gid, mode, qbytes, msgs)

struct MqMsg {
  uint32_t prio = 0;
  std::string data;  // hex
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MqMsg, prio, data)

struct Mqueue {
  std::string name;  // without the leading '/'
  uint32_t uid = 0, gid = 0, mode = 0;
  int64_t maxmsg = 0, msgsize = 0;
  std::vector<MqMsg> msgs;  // in receive order (priority, then age)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Mqueue, name, uid, gid, mode, maxmsg, msgsize, msgs)

struct Ipc {
  std::map<std::string, std::string> sysctl;  // kIpcSysctls of the namespace
  std::vector<ShmSeg> shm;
  std::vector<SemSet> sem;
  std::vector<MsgQueue> msg;
  std::vector<Mqueue> mqueue;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Ipc, sysctl, shm, sem, msg, mqueue)

// The IPC namespace's own sysctls (under /proc/sys; read and written by a process inside
// it). kernel.shm_rmid_forced is set last (finish_ipc): with it, the restorer's own
// detach and exit would destroy the segments it just made.
constexpr const char* kIpcSysctls[] = {"kernel/shmmax",
                                       "kernel/shmall",
                                       "kernel/shmmni",
                                       "kernel/msgmax",
                                       "kernel/msgmnb",
                                       "kernel/msgmni",
                                       "kernel/sem",
                                       "kernel/shm_rmid_forced",
                                       "fs/mqueue/msg_default",
                                       "fs/mqueue/msg_max",
                                       "fs/mqueue/msgsize_default",
                                       "fs/mqueue/msgsize_max",
                                       "fs/mqueue/queues_max"};
constexpr const char* kRmidForced = "kernel/shm_rmid_forced";

Result<void> read_sysctls(Ipc& ipc) {
  for (const char* k : kIpcSysctls) {
    auto v = base::read_file(std::string("/proc/sys/") + k);
    if (v) ipc.sysctl[k] = base::trim(*v);  // one the kernel lacks is left out
  }
  return base::ok();
}

Result<void> write_sysctl(const std::string& key, const std::string& value) {
  if (std::find_if(std::begin(kIpcSysctls), std::end(kIpcSysctls),
                   [&](const char* k) { return key == k; }) == std::end(kIpcSysctls))
    return base::make_error("IPC sysctl `" + key + "` is not one zrun saves");
  return base::write_file("/proc/sys/" + key, value);
}

Result<Ipc> parse_ipc(const std::string& text) {
  try {
    return nlohmann::json::parse(text).get<Ipc>();
  } catch (const std::exception& e) {
    return base::make_error(std::string("parse the IPC image: ") + e.what());
  }
}

std::string ns_link(pid_t pid) {
  char buf[64];
  ssize_t n =
      ::readlink(("/proc/" + std::to_string(pid) + "/ns/ipc").c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// Run `fn` in a child of zrun that joined the IPC namespace of `pid`.
Result<std::string> in_ipc_ns(pid_t pid, const std::function<Result<std::string>()>& fn) {
  return in_namespace_of(pid, "ipc", CLONE_NEWIPC, fn);
}

// ---- dump (in the child) ----

// The segment's file, opened through our attachment at `p` (/proc/self/map_files: a
// plain shmem file then, with pread and SEEK_DATA/SEEK_HOLE).
Result<base::UniqueFd> open_attached(const void* p) {
  char prefix[32];
  std::snprintf(prefix, sizeof(prefix), "%lx-", reinterpret_cast<unsigned long>(p));
  for (auto& n : ZRUN_TRY(base::list_dir("/proc/self/map_files")))
    if (base::starts_with(n, prefix))
      return base::open_file("/proc/self/map_files/" + n, O_RDONLY | O_CLOEXEC);
  return base::make_error("no map_files entry for the attachment");
}

// Only the pages that hold data are saved (SEEK_DATA/SEEK_HOLE: reading the holes of a
// big, mostly untouched segment would allocate them), as extents of the segment, their
// bytes concatenated in shm-<id>.img.
Result<void> read_shm_bytes(int fd, ShmSeg& s, const std::string& dir) {
  std::string data;
  uint64_t off = 0;
  while (off < s.size) {
    off_t d = ::lseek(fd, static_cast<off_t>(off), SEEK_DATA);
    if (d < 0 && errno == ENXIO) break;
    if (d < 0) return base::sys_error("SEEK_DATA");
    off_t h = ::lseek(fd, d, SEEK_HOLE);
    if (h < 0) return base::sys_error("SEEK_HOLE");
    uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(h), s.size);
    if (end <= static_cast<uint64_t>(d)) break;
    size_t at = data.size();
    data.resize(at + (end - static_cast<uint64_t>(d)));
    for (size_t got = 0; got < end - static_cast<uint64_t>(d);) {
      ssize_t n = ::pread(fd, data.data() + at + got, end - static_cast<uint64_t>(d) - got,
                          d + static_cast<off_t>(got));
      if (n <= 0) return base::sys_error("read");
      got += static_cast<size_t>(n);
    }
    s.extents.emplace_back(static_cast<uint64_t>(d), end - static_cast<uint64_t>(d));
    off = end;
  }
  s.file = "shm-" + std::to_string(s.id) + ".img";
  s.hash = hex64(hash64(data.data(), data.size()));
  return base::write_file(dir + "/" + s.file, data, 0, 0600);
}

Result<void> read_shm(const std::string& dir, Ipc& ipc) {
  struct shm_info info {};
  int max = ::shmctl(0, SHM_INFO, reinterpret_cast<shmid_ds*>(&info));
  if (max < 0) return base::sys_error("shmctl SHM_INFO");
  for (int idx = 0; idx <= max; idx++) {
    struct shmid_ds ds {};
    int id = ::shmctl(idx, kShmStatAny, &ds);
    if (id < 0) continue;
    std::string what = "SysV shared memory " + std::to_string(id);
    ShmSeg s;
    s.id = id;
    s.key = ds.shm_perm.__key;
    s.uid = ds.shm_perm.uid;
    s.gid = ds.shm_perm.gid;
    s.mode = ds.shm_perm.mode & 0777;
    s.destroyed = ds.shm_perm.mode & kShmDest;
    s.locked = ds.shm_perm.mode & kShmLocked;
    s.size = ds.shm_segsz;
    auto forced = ipc.sysctl.find(kRmidForced);
    if (ds.shm_nattch == 0 && forced != ipc.sysctl.end() && forced->second != "0")
      return base::make_error(what + ": not attached while kernel.shm_rmid_forced is set " +
                              "(reading it would destroy it) is not supported");
    // Attached only to find its file (no page is touched). Linux lets a segment marked for
    // destruction be attached while it still exists.
    void* p = ::shmat(id, nullptr, SHM_RDONLY);
    if (p == reinterpret_cast<void*>(-1)) return base::sys_error(what + ": shmat");
    auto fd = open_attached(p);
    ::shmdt(p);
    if (!fd) return base::context(std::move(fd).error(), what);
    struct statfs sf {};
    if (::fstatfs(fd->get(), &sf) == 0 && static_cast<long>(sf.f_type) == kHugetlbfsMagic)
      return base::make_error(what + ": SHM_HUGETLB is not supported yet");
    ZRUN_TRY_CTX(read_shm_bytes(fd->get(), s, dir), what);
    ipc.shm.push_back(std::move(s));
  }
  return base::ok();
}

union SemArg {
  int val;
  semid_ds* buf;
  unsigned short* array;
  seminfo* info;
};

Result<void> read_sem(Ipc& ipc) {
  struct seminfo info {};
  SemArg a{};
  a.info = &info;
  int max = ::semctl(0, 0, SEM_INFO, a);
  if (max < 0) return base::sys_error("semctl SEM_INFO");
  for (int idx = 0; idx <= max; idx++) {
    struct semid_ds ds {};
    a.buf = &ds;
    int id = ::semctl(idx, 0, kSemStatAny, a);
    if (id < 0) continue;
    SemSet s;
    s.id = id;
    s.key = ds.sem_perm.__key;
    s.uid = ds.sem_perm.uid;
    s.gid = ds.sem_perm.gid;
    s.mode = ds.sem_perm.mode & 0777;
    s.operated = ds.sem_otime != 0;
    s.values.resize(ds.sem_nsems);
    a.array = s.values.data();
    if (::semctl(id, 0, GETALL, a) < 0)
      return base::sys_error("SysV semaphore set " + std::to_string(id) + ": GETALL");
    ipc.sem.push_back(std::move(s));
  }
  return base::ok();
}

// Messages are copied out with msgrcv(MSG_COPY): the queue does not change.
Result<void> read_msg(Ipc& ipc) {
  struct msginfo info {};
  int max = ::msgctl(0, MSG_INFO, reinterpret_cast<msqid_ds*>(&info));
  if (max < 0) return base::sys_error("msgctl MSG_INFO");
  for (int idx = 0; idx <= max; idx++) {
    struct msqid_ds ds {};
    int id = ::msgctl(idx, kMsgStatAny, &ds);
    if (id < 0) continue;
    MsgQueue q;
    q.id = id;
    q.key = ds.msg_perm.__key;
    q.uid = ds.msg_perm.uid;
    q.gid = ds.msg_perm.gid;
    q.mode = ds.msg_perm.mode & 0777;
    q.qbytes = ds.msg_qbytes;
    std::string buf(sizeof(long) + std::max<size_t>(ds.__msg_cbytes, 1), '\0');
    for (msgqnum_t i = 0; i < ds.msg_qnum; i++) {
      ssize_t n = ::msgrcv(id, buf.data(), buf.size() - sizeof(long), static_cast<long>(i),
                           IPC_NOWAIT | kMsgCopy);
      if (n < 0)
        return base::sys_error("SysV message queue " + std::to_string(id) + ": msgrcv MSG_COPY " +
                               std::to_string(i));
      Msg m;
      long type = 0;
      std::memcpy(&type, buf.data(), sizeof(type));
      m.type = type;
      m.data = to_hex(std::string_view(buf.data() + sizeof(long), static_cast<size_t>(n)));
      q.msgs.push_back(std::move(m));
    }
    ipc.msg.push_back(std::move(q));
  }
  return base::ok();
}

// POSIX queues cannot be read without receiving: every message is received, then all
// are sent back in the same order with their priorities (the tasks are stopped, so nobody
// sees the queue meanwhile). A queue with an mq_notify registration is refused (sending
// into the emptied queue would fire it).
Result<void> read_one_mqueue(const std::string& mnt, const std::string& name, Ipc& ipc) {
  std::string what = "POSIX message queue `/" + name + "`";
  auto status = ZRUN_TRY(base::read_file(mnt + "/" + name));
  auto pos = status.find("NOTIFY_PID:");
  if (pos != std::string::npos && std::atol(status.c_str() + pos + 11) != 0)
    return base::make_error(what + ": an mq_notify registration is not supported yet");
  struct stat st {};
  if (::stat((mnt + "/" + name).c_str(), &st) < 0) return base::sys_error("stat " + what);
  Mqueue q;
  q.name = name;
  q.uid = st.st_uid;
  q.gid = st.st_gid;
  q.mode = st.st_mode & 07777;
  long fd = ::syscall(SYS_mq_open, name.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0, nullptr);
  if (fd < 0) return base::sys_error(what + ": mq_open");
  base::UniqueFd guard(static_cast<int>(fd));
  struct mq_attr attr {};
  if (::syscall(SYS_mq_getsetattr, fd, nullptr, &attr) < 0)
    return base::sys_error(what + ": mq_getattr");
  q.maxmsg = attr.mq_maxmsg;
  q.msgsize = attr.mq_msgsize;
  std::vector<std::pair<std::string, unsigned>> got;
  std::string buf(static_cast<size_t>(attr.mq_msgsize), '\0');
  Result<void> r = base::ok();
  for (long i = 0; i < attr.mq_curmsgs; i++) {
    unsigned prio = 0;
    long n = ::syscall(SYS_mq_timedreceive, fd, buf.data(), buf.size(), &prio, nullptr);
    if (n < 0) {
      r = base::sys_error(what + ": mq_receive");
      break;
    }
    got.emplace_back(buf.substr(0, static_cast<size_t>(n)), prio);
  }
  // Back in, in receive order: the same order comes out again.
  for (auto& [data, prio] : got)
    if (::syscall(SYS_mq_timedsend, fd, data.data(), data.size(), prio, nullptr) < 0 && r)
      r = base::sys_error(what + ": mq_send (putting a message back)");
  ZRUN_TRY(std::move(r));
  for (auto& [data, prio] : got) q.msgs.push_back({prio, to_hex(data)});
  ipc.mqueue.push_back(std::move(q));
  return base::ok();
}

// The namespace's mqueue fs as a detached mount (fsopen + fsmount: the instance of our
// IPC namespace, attached nowhere, gone with the fd), read through /proc/self/fd/N.
Result<void> read_mqueues(Ipc& ipc) {
  constexpr unsigned kFsopenCloexec = 1, kFsmountCloexec = 1, kFsconfigCmdCreate = 6;
  long fs = ::syscall(SYS_fsopen, "mqueue", kFsopenCloexec);
  if (fs < 0) return base::sys_error("fsopen mqueue");
  base::UniqueFd fs_fd(static_cast<int>(fs));
  if (::syscall(SYS_fsconfig, fs, kFsconfigCmdCreate, nullptr, nullptr, 0) < 0)
    return base::sys_error("create an mqueue fs instance");
  long mnt = ::syscall(SYS_fsmount, fs, kFsmountCloexec, 0);
  if (mnt < 0) return base::sys_error("fsmount mqueue");
  base::UniqueFd mnt_fd(static_cast<int>(mnt));
  std::string dir = "/proc/self/fd/" + std::to_string(mnt);
  auto names = ZRUN_TRY(base::list_dir(dir));
  std::sort(names.begin(), names.end());
  for (auto& n : names) ZRUN_TRY(read_one_mqueue(dir, n, ipc));
  return base::ok();
}

// ---- restore (in the child) ----

Result<void> set_next_id(const char* kind, int id) {
  std::string path = std::string("/proc/sys/kernel/") + kind + "_next_id";
  return base::write_file(path, std::to_string(id));
}

Result<void> check_id(const std::string& what, int got, int want) {
  if (got < 0) return base::sys_error("create " + what);
  if (got != want)
    return base::make_error("create " + what + ": got id " + std::to_string(got) + " instead");
  return base::ok();
}

Result<void> create_shm(const std::string& dir, const ShmSeg& s) {
  std::string what = "SysV shared memory " + std::to_string(s.id);
  ZRUN_TRY(set_next_id("shm", s.id));
  int id = ::shmget(static_cast<key_t>(s.key), s.size, IPC_CREAT | IPC_EXCL | 0600);
  ZRUN_TRY(check_id(what, id, s.id));
  if (s.file.find('/') != std::string::npos) return base::make_error(what + ": bad file name");
  auto bytes = ZRUN_TRY_CTX(base::read_file(dir + "/" + s.file), "read image");
  uint64_t total = 0;
  for (auto& [off, len] : s.extents) {
    if (off > s.size || len > s.size - off) return base::make_error(what + ": bad extent");
    total += len;
  }
  if (bytes.size() != total || hex64(hash64(bytes.data(), bytes.size())) != s.hash)
    return base::make_error("image: `" + s.file + "` is corrupted (checksum)");
  void* p = ::shmat(id, nullptr, 0);
  if (p == reinterpret_cast<void*>(-1)) return base::sys_error(what + ": shmat");
  size_t at = 0;
  for (auto& [off, len] : s.extents) {  // the new segment is all zero elsewhere
    std::memcpy(static_cast<char*>(p) + off, bytes.data() + at, len);
    at += len;
  }
  ::shmdt(p);
  struct shmid_ds ds {};
  if (::shmctl(id, IPC_STAT, &ds) < 0) return base::sys_error(what + ": IPC_STAT");
  ds.shm_perm.uid = s.uid;
  ds.shm_perm.gid = s.gid;
  ds.shm_perm.mode = static_cast<unsigned short>(s.mode);
  if (::shmctl(id, IPC_SET, &ds) < 0) return base::sys_error(what + ": IPC_SET");
  if (s.locked && ::shmctl(id, SHM_LOCK, nullptr) < 0) return base::sys_error(what + ": SHM_LOCK");
  return base::ok();
}

Result<void> create_sem(const SemSet& s) {
  std::string what = "SysV semaphore set " + std::to_string(s.id);
  ZRUN_TRY(set_next_id("sem", s.id));
  int id = ::semget(static_cast<key_t>(s.key), static_cast<int>(s.values.size()),
                    IPC_CREAT | IPC_EXCL | 0600);
  ZRUN_TRY(check_id(what, id, s.id));
  SemArg a{};
  std::vector<uint16_t> v = s.values;
  a.array = v.data();
  if (!v.empty() && ::semctl(id, 0, SETALL, a) < 0) return base::sys_error(what + ": SETALL");
  // A semop that changes nothing sets sem_otime (SETALL does not): +1 and -1 at once,
  // or -1 and +1 when the value is at its maximum.
  if (s.operated && !v.empty()) {
    bool top = v[0] >= 32767;
    struct sembuf ops[2] = {{0, static_cast<short>(top ? -1 : 1), IPC_NOWAIT},
                            {0, static_cast<short>(top ? 1 : -1), IPC_NOWAIT}};
    if (::semop(id, ops, 2) < 0) return base::sys_error(what + ": semop");
  }
  struct semid_ds ds {};
  a.buf = &ds;
  if (::semctl(id, 0, IPC_STAT, a) < 0) return base::sys_error(what + ": IPC_STAT");
  ds.sem_perm.uid = s.uid;
  ds.sem_perm.gid = s.gid;
  ds.sem_perm.mode = static_cast<unsigned short>(s.mode);
  if (::semctl(id, 0, IPC_SET, a) < 0) return base::sys_error(what + ": IPC_SET");
  return base::ok();
}

Result<void> create_msg(const MsgQueue& q) {
  std::string what = "SysV message queue " + std::to_string(q.id);
  ZRUN_TRY(set_next_id("msg", q.id));
  int id = ::msgget(static_cast<key_t>(q.key), IPC_CREAT | IPC_EXCL | 0600);
  ZRUN_TRY(check_id(what, id, q.id));
  struct msqid_ds ds {};
  if (::msgctl(id, IPC_STAT, &ds) < 0) return base::sys_error(what + ": IPC_STAT");
  ds.msg_qbytes = q.qbytes;  // first: the messages must fit
  if (::msgctl(id, IPC_SET, &ds) < 0) return base::sys_error(what + ": IPC_SET");
  for (auto& m : q.msgs) {
    auto data = ZRUN_TRY(from_hex(m.data));
    std::string buf(sizeof(long), '\0');
    long type = static_cast<long>(m.type);
    std::memcpy(buf.data(), &type, sizeof(type));
    buf += data;
    if (::msgsnd(id, buf.data(), data.size(), IPC_NOWAIT) < 0)
      return base::sys_error(what + ": msgsnd");
  }
  ds.msg_perm.uid = q.uid;
  ds.msg_perm.gid = q.gid;
  ds.msg_perm.mode = static_cast<unsigned short>(q.mode);
  if (::msgctl(id, IPC_SET, &ds) < 0) return base::sys_error(what + ": IPC_SET");
  return base::ok();
}

Result<void> create_mqueue(const Mqueue& q) {
  std::string what = "POSIX message queue `/" + q.name + "`";
  if (q.name.empty() || q.name.find('/') != std::string::npos)
    return base::make_error(what + ": bad name");
  struct mq_attr attr {};
  attr.mq_maxmsg = q.maxmsg;
  attr.mq_msgsize = q.msgsize;
  long fd = ::syscall(SYS_mq_open, q.name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                      q.mode & 07777, &attr);
  if (fd < 0) return base::sys_error("create " + what);
  base::UniqueFd guard(static_cast<int>(fd));
  for (auto& m : q.msgs) {
    auto data = ZRUN_TRY(from_hex(m.data));
    if (::syscall(SYS_mq_timedsend, fd, data.data(), data.size(), m.prio, nullptr) < 0)
      return base::sys_error(what + ": mq_send");
  }
  if (::fchown(static_cast<int>(fd), q.uid, q.gid) < 0) return base::sys_error(what + ": chown");
  return base::ok();
}

Result<uint64_t> put_name(Tracee& tr, const std::string& s) {
  if (s.size() + 1 > 1024) return base::make_error("name too long: `" + s + "`");
  ZRUN_TRY(tr.write_mem(tr.scratch(), s.c_str(), s.size() + 1));
  return tr.scratch();
}

}  // namespace

bool is_sysv_shm(const std::string& name) {
  return base::starts_with(name, "/SYSV") && name.size() == 23 &&
         name.compare(13, std::string::npos, " (deleted)") == 0;
}

bool is_mqueue_fd(const std::string& magic, std::string* name) {
  struct statfs sf {};
  struct stat st {};
  if (::statfs(magic.c_str(), &sf) < 0 || static_cast<long>(sf.f_type) != kMqueueMagic ||
      ::stat(magic.c_str(), &st) < 0 || !S_ISREG(st.st_mode))
    return false;
  char buf[512];
  ssize_t n = ::readlink(magic.c_str(), buf, sizeof(buf) - 1);
  if (n <= 1 || buf[0] != '/') return false;
  std::string link(buf, static_cast<size_t>(n));
  // An mq_open()ed queue reads "/name"; "/dev/mqueue/name" is the file opened by path.
  if (link.find('/', 1) != std::string::npos) return false;
  *name = link;
  return true;
}

Result<std::string> dump_ipc(pid_t init_pid, const std::vector<IpcUser>& users,
                             const std::string& dir) {
  std::string ns = ns_link(init_pid);
  if (ns.empty()) return base::make_error("read the container's IPC namespace");
  bool shared = ns == ns_link(::getpid());
  for (auto& u : users) {
    if (ns_link(u.pid) != ns)
      return base::make_error(u.who + ": an IPC namespace other than the container's is not " +
                              "supported");
    for (auto& q : u.mqueues)
      if (auto d = q.find(" (deleted)"); d != std::string::npos)
        return base::make_error(u.who + ": POSIX message queue `" + q.substr(0, d) +
                                "`, unlinked while open, is not supported yet");
    if (shared && !u.shm_ids.empty())
      return base::make_error(u.who + ": SysV shared memory of the host's IPC namespace " +
                              "(the container has no IPC namespace) is not supported");
    if (shared && !u.mqueues.empty())
      return base::make_error(u.who + ": POSIX message queue `" + u.mqueues[0] +
                              "` of the host's IPC namespace (the container has no IPC " +
                              "namespace) is not supported");
  }
  if (shared) return std::string();  // the host's objects are not the container's
  auto text = ZRUN_TRY_CTX(in_ipc_ns(init_pid,
                                     [&]() -> Result<std::string> {
                                       Ipc ipc;
                                       ZRUN_TRY(read_sysctls(ipc));
                                       ZRUN_TRY(read_sem(ipc));
                                       ZRUN_TRY(read_msg(ipc));
                                       ZRUN_TRY(read_mqueues(ipc));
                                       ZRUN_TRY(read_shm(dir, ipc));
                                       return nlohmann::json(ipc).dump();
                                     }),
                           "IPC namespace");
  auto ipc = ZRUN_TRY(parse_ipc(text));
  std::set<uint64_t> shm;
  for (auto& s : ipc.shm) shm.insert(static_cast<uint64_t>(s.id));
  std::set<std::string> mq;
  for (auto& q : ipc.mqueue) mq.insert("/" + q.name);
  for (auto& u : users) {
    for (auto id : u.shm_ids)
      if (!shm.count(id))
        return base::make_error(u.who + ": SysV shared memory " + std::to_string(id) +
                                " is not in the container's IPC namespace");
    for (auto& q : u.mqueues)
      if (!mq.count(q))
        return base::make_error(u.who + ": POSIX message queue `" + q +
                                "` is not in the container's IPC namespace");
  }
  return text;
}

Result<void> restore_ipc(pid_t init_pid, const Image& img) {
  if (img.manifest.ipc.empty()) return base::ok();
  auto ipc = ZRUN_TRY(parse_ipc(img.manifest.ipc));
  if (ns_link(init_pid) == ns_link(::getpid()))
    return base::make_error(
        "the image has IPC objects but the bundle gives the container no IPC namespace");
  ZRUN_TRY(in_ipc_ns(init_pid, [&]() -> Result<std::string> {
    ::umask(0);
    for (auto& [k, v] : ipc.sysctl)
      if (k != kRmidForced) ZRUN_TRY_CTX(write_sysctl(k, v), "sysctl");
    for (auto& s : ipc.shm) ZRUN_TRY(create_shm(img.dir, s));
    for (auto& s : ipc.sem) ZRUN_TRY(create_sem(s));
    for (auto& q : ipc.msg) ZRUN_TRY(create_msg(q));
    for (auto& q : ipc.mqueue) ZRUN_TRY(create_mqueue(q));
    return std::string();
  }));
  return base::ok();
}

Result<void> finish_ipc(pid_t init_pid, const Image& img) {
  if (img.manifest.ipc.empty()) return base::ok();
  auto ipc = ZRUN_TRY(parse_ipc(img.manifest.ipc));
  bool any = std::any_of(ipc.shm.begin(), ipc.shm.end(), [](auto& s) { return s.destroyed; });
  auto forced = ipc.sysctl.find(kRmidForced);
  bool rmid_forced = forced != ipc.sysctl.end() && forced->second != "0";
  if (!any && !rmid_forced) return base::ok();
  ZRUN_TRY(in_ipc_ns(init_pid, [&]() -> Result<std::string> {
    if (rmid_forced) ZRUN_TRY_CTX(write_sysctl(forced->first, forced->second), "sysctl");
    for (auto& s : ipc.shm)
      if (s.destroyed && ::shmctl(s.id, IPC_RMID, nullptr) < 0)
        return base::sys_error("SysV shared memory " + std::to_string(s.id) + ": IPC_RMID");
    return std::string();
  }));
  return base::ok();
}

// shmat at a free place (in no saved mapping, so the move cannot overlap), then mremap
// the saved part to its saved address, drop the rest, and set the saved protection (a
// partly unmapped or mprotect'ed attachment is several vmas; each comes back the same way).
Result<void> attach_shm(Tracee& tr, const VmaImage& v,
                        const std::function<uint64_t(uint64_t)>& gap) {
  std::string what = "SysV shared memory " + std::to_string(v.shmid);
  int flags = (v.perms[1] == 'w' ? 0 : SHM_RDONLY) | (v.perms[2] == 'x' ? SHM_EXEC : 0);
  ZRUN_TRY(tr.syscall_ok(("shmctl IPC_STAT " + what).c_str(), SYS_shmctl, v.shmid, IPC_STAT,
                         tr.scratch()));
  struct shmid_ds ds {};
  ZRUN_TRY(tr.read_mem(tr.scratch(), &ds, sizeof(ds)));
  uint64_t seg = (ds.shm_segsz + kPageSize - 1) / kPageSize * kPageSize;
  uint64_t len = v.end - v.start;
  if (v.offset + len > seg) return base::make_error(what + ": the saved mapping is larger");
  uint64_t tmp = gap(seg);
  if (!tmp) return base::make_error(what + ": no free address range to attach it at");
  auto at = static_cast<uint64_t>(
      ZRUN_TRY(tr.syscall_ok(("shmat " + what).c_str(), SYS_shmat, v.shmid, tmp, flags)));
  uint64_t part = at + v.offset;
  if (part != v.start)
    ZRUN_TRY(tr.syscall_ok(("mremap " + what).c_str(), SYS_mremap, part, len, len,
                           MREMAP_MAYMOVE | MREMAP_FIXED, v.start));
  if (v.offset) ZRUN_TRY(tr.syscall_ok("munmap", SYS_munmap, at, v.offset));
  if (v.offset + len < seg)
    ZRUN_TRY(tr.syscall_ok("munmap", SYS_munmap, part + len, seg - v.offset - len));
  int prot = (v.perms[0] == 'r' ? PROT_READ : 0) | (v.perms[1] == 'w' ? PROT_WRITE : 0) |
             (v.perms[2] == 'x' ? PROT_EXEC : 0);
  int attached =
      PROT_READ | (flags & SHM_RDONLY ? 0 : PROT_WRITE) | (flags & SHM_EXEC ? PROT_EXEC : 0);
  if (prot != attached)
    ZRUN_TRY(tr.syscall_ok(("mprotect " + what).c_str(), SYS_mprotect, v.start, len, prot));
  return base::ok();
}

Result<void> open_mqueue_fd(Tracee& tr, const FdImage& f) {
  if (f.path.size() < 2 || f.path[0] != '/') return base::make_error("bad queue name");
  std::string what = "POSIX message queue `" + f.path + "`";
  long fd = ZRUN_TRY(tr.syscall_ok(("mq_open " + what).c_str(), SYS_mq_open,
                                   ZRUN_TRY(put_name(tr, f.path.substr(1))),
                                   f.flags & (O_ACCMODE | O_NONBLOCK)));
  if (fd != f.fd) {
    ZRUN_TRY(tr.syscall_ok("dup3", SYS_dup3, fd, f.fd, f.cloexec ? O_CLOEXEC : 0));
    ZRUN_TRY(tr.syscall(SYS_close, fd));
  } else if (!f.cloexec) {
    ZRUN_TRY(tr.syscall_ok("fcntl F_SETFD", SYS_fcntl, f.fd, F_SETFD, 0));
  }
  return base::ok();
}

}  // namespace zrun::ckpt
