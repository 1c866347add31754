#include "checkpoint/image.h"

#include <sys/utsname.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/sys.h"
#include "checkpoint/ptrace.h"

namespace zrun::ckpt {

using base::Result;
using Json = nlohmann::ordered_json;

namespace {

// 64x64 -> 128-bit multiply, halves folded (as in wyhash/mum).
inline uint64_t mum(uint64_t a, uint64_t b) {
  unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

}  // namespace

// The macro is written for nlohmann::json; the image uses ordered_json (converted).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TtyImage, slave, termios, winsize, sid, fg_pgrp)

uint64_t hash64(const void* data, size_t len, uint64_t seed) {
  // Four independent lanes, each folding 16 bytes per 128-bit multiply (a 64-bit FNV lane
  // took one multiply per 8 bytes: ~7 GB/s here against ~10 GB/s now).
  constexpr uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL;
  uint64_t base = 0xcbf29ce484222325ULL ^ seed ^ (len * 0x9e3779b97f4a7c15ULL);
  uint64_t h[4] = {base, base ^ k0, base ^ k1, base ^ (k0 + k1)};
  auto* p = static_cast<const unsigned char*>(data);
  size_t blocks = len / 64;
  for (size_t i = 0; i < blocks; i++) {
    uint64_t w[8];
    std::memcpy(w, p + i * 64, 64);
    for (int l = 0; l < 4; l++) h[l] = mum(w[2 * l] ^ k0 ^ h[l], w[2 * l + 1] ^ k1);
  }
  size_t done = blocks * 64;
  while (done < len) {
    uint64_t w = 0;
    size_t n = std::min<size_t>(8, len - done);
    std::memcpy(&w, p + done, n);
    h[0] = mum(h[0] ^ w ^ k0, k1);
    done += n;
  }
  uint64_t out = h[0];
  for (uint64_t l = 1; l < 4; l++) out = mum(out ^ h[l], k1 ^ l);
  return out;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string to_hex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

Result<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2) return base::make_error("bad hex string");
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); i++) {
    int a = nib(hex[2 * i]), b = nib(hex[2 * i + 1]);
    if (a < 0 || b < 0) return base::make_error("bad hex string");
    out[i] = static_cast<char>(a * 16 + b);
  }
  return out;
}

// ObjectImage <-> JSON (ordered_json: nlohmann 3.11.2's DEFINE_TYPE macros are for plain
// json only); missing fields keep their defaults.
void to_json(Json& j, const ObjectImage& o) {
  j = Json{{"key", o.key},         {"kind", o.kind},
           {"name", o.name},       {"size", o.size},
           {"mode", o.mode},       {"uid", o.uid},
           {"gid", o.gid},         {"seals", o.seals},
           {"count", o.count},     {"semaphore", o.semaphore},
           {"extents", o.extents}, {"file", o.file},
           {"hash", hex64(o.hash)}};
}

void from_json(const Json& j, ObjectImage& o) {
  o = ObjectImage{};
  o.key = j.value("key", o.key);
  o.kind = j.value("kind", o.kind);
  o.name = j.value("name", o.name);
  o.size = j.value("size", o.size);
  o.mode = j.value("mode", o.mode);
  o.uid = j.value("uid", o.uid);
  o.gid = j.value("gid", o.gid);
  o.seals = j.value("seals", o.seals);
  o.count = j.value("count", o.count);
  o.semaphore = j.value("semaphore", o.semaphore);
  o.extents = j.value("extents", o.extents);
  o.file = j.value("file", o.file);
  o.hash = std::stoull(j.value("hash", std::string("0")), nullptr, 16);
}

namespace {

Result<uint64_t> parse_hex64(const std::string& s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty())
    return base::make_error("invalid hex number \"" + s + "\"");
  return v;
}

// A failed check while reading: thrown inside the readers, turned into an Error by
// task_from_json/manifest_from_json (nlohmann reports its own errors the same way).
[[noreturn]] void bad(const std::string& what) { throw std::runtime_error(what); }

template <class T>
T must(Result<T> r) {
  if (!r) bad(r.error().text());
  return std::move(*r);
}

// Field wrappers for the encodings that are not plain JSON values. S is const when
// writing, mutable when reading.
template <class S>
struct Hex {  // a byte string as hex
  S& s;
};
template <class S>
Hex(S&) -> Hex<S>;
template <class S>
struct HexWord {  // a 64-bit word as 16 hex digits
  S& v;
};
template <class S>
HexWord(S&) -> HexWord<S>;
template <class S>
struct Blob {  // the raw bytes of a fixed-size struct (user_regs_struct) as hex
  S& v;
};
template <class S>
Blob(S&) -> Blob<S>;

// Each image structure lists its fields once, in `fields(io, x)`; the Writer stores them
// into a JSON object and the Reader loads them back, so the two directions cannot drift.
class Writer {
 public:
  explicit Writer(Json& j) : j_(j) {}
  template <class T>
  void operator()(const char* name, const T& v) {
    j_[name] = v;
  }
  template <class S>
  void operator()(const char* name, Hex<S> h) {
    j_[name] = to_hex(h.s);
  }
  template <class S>
  void operator()(const char* name, HexWord<S> h) {
    j_[name] = hex64(h.v);
  }
  template <class S>
  void operator()(const char* name, Blob<S> b) {
    j_[name] = to_hex(std::string_view(reinterpret_cast<const char*>(&b.v), sizeof(b.v)));
  }
  // Two words as a JSON pair [a, b].
  template <class A, class B>
  void pair(const char* name, const A& a, const B& b) {
    j_[name] = {a, b};
  }
  // A list of (text, word) pairs as objects {k1: text, k2: word}.
  void pairs(const char* name, const std::vector<std::pair<std::string, uint64_t>>& v,
             const char* k1, const char* k2) {
    Json a = Json::array();
    for (auto& [s, n] : v) a.push_back({{k1, s}, {k2, n}});
    j_[name] = a;
  }
  // A nested object.
  template <class F>
  void object(const char* name, F&& f) {
    Writer w(j_[name]);
    f(w);
  }
  // Fields written only when `present` (optional parts; a reader sees them by `key` and
  // sets `present` when it is a bool of the structure).
  template <class F>
  void optional(const char* key, bool present, F&& f) {
    (void)key;
    if (present) f(*this);
  }
  // A value with its own nlohmann (plain json) conversion.
  template <class T>
  void plain(const char* name, const T& v) {
    j_[name] = Json(nlohmann::json(v));
  }
  // A JSON document kept as text in the structure ("" is null).
  void document(const char* name, const std::string& text) {
    j_[name] = text.empty() ? Json() : Json::parse(text);
  }

 private:
  Json& j_;
};

class Reader {
 public:
  explicit Reader(const Json& j) : j_(j) {}
  template <class T>
  void operator()(const char* name, T& v) {
    v = j_.at(name).template get<T>();
  }
  void operator()(const char* name, Hex<std::string> h) {
    h.s = must(from_hex(j_.at(name).get<std::string>()));
  }
  void operator()(const char* name, HexWord<uint64_t> h) {
    h.v = must(parse_hex64(j_.at(name).get<std::string>()));
  }
  template <class S>
  void operator()(const char* name, Blob<S> b) {
    auto bytes = must(from_hex(j_.at(name).get<std::string>()));
    if (bytes.size() != sizeof(b.v)) bad(std::string("bad size of `") + name + "`");
    std::memcpy(&b.v, bytes.data(), sizeof(b.v));
  }
  template <class A, class B>
  void pair(const char* name, A& a, B& b) {
    a = j_.at(name).at(0).template get<A>();
    b = j_.at(name).at(1).template get<B>();
  }
  void pairs(const char* name, std::vector<std::pair<std::string, uint64_t>>& v, const char* k1,
             const char* k2) {
    for (auto& e : j_.at(name)) v.emplace_back(e.at(k1), e.at(k2));
  }
  template <class F>
  void object(const char* name, F&& f) {
    Reader r(j_.at(name));
    f(r);
  }
  template <class B, class F>
  void optional(const char* key, B&& present, F&& f) {
    bool has = j_.contains(key);
    if constexpr (std::is_same_v<B, bool&>) present = has;
    if (has) f(*this);
  }
  template <class T>
  void plain(const char* name, T& v) {
    v = nlohmann::json(j_.at(name)).get<T>();
  }
  void document(const char* name, std::string& text) {
    auto& v = j_.at(name);
    text = v.is_null() ? "" : v.dump();
  }

 private:
  const Json& j_;
};

// Assigns when reading (the structure is mutable), nothing when writing.
template <class T, class V>
void set(T& field, V value) {
  if constexpr (!std::is_const_v<T>) field = value;
}

// Per-thread state, shared by a process's leader (TaskImage) and its other threads.
template <class Io, class T>
void thread_fields(Io& io, T& x) {
  io("comm", x.comm);
  io("regs", Blob{x.regs});
  io("fpu", Hex{x.fpu});
  io("sigmask", x.sigmask);
  io("pending", x.pending);
  io.object("rseq", [&](Io& o) {
    o("ptr", x.rseq_ptr);
    o("len", x.rseq_len);
    o("sig", x.rseq_sig);
  });
  io.pair("robust_list", x.robust_list, x.robust_len);
  io("clear_tid", x.clear_tid);
}

template <class Io, class T>
void fields(Io& io, T& x) {
  using V = std::remove_const_t<T>;
  if constexpr (std::is_same_v<V, PendingSignal>) {
    io("shared", x.shared);
    io("siginfo", Hex{x.info});
  } else if constexpr (std::is_same_v<V, VmaImage>) {
    io("start", x.start);
    io("end", x.end);
    io("perms", x.perms);
    io("path", x.path);
    io("offset", x.offset);
    io("name", x.name);
    io.optional("shmid", x.shmid >= 0, [&](Io& o) { o("shmid", x.shmid); });
    io.optional("object", !x.object.empty(), [&](Io& o) { o("object", x.object); });
    // All the bytes in this image ("self"), or page runs ("runs": an older reader stops at
    // this "file" with an error instead of restoring zeros).
    io.optional("pages", x.pages || !x.runs.empty(), [&](Io& o) {
      o.object("pages", [&](Io& p) {
        std::string file = x.pages ? "self" : "runs";
        p("file", file);
        if (file == "self") {
          set(x.pages, true);
          p("offset", x.page_offset);
          p("hash", HexWord{x.hash});
        } else if (file != "runs") {
          bad("bad pages entry");
        }
      });
    });
    io.optional("runs", !x.pages && !x.runs.empty(), [&](Io& o) { o("runs", x.runs); });
  } else if constexpr (std::is_same_v<V, PageRunImage>) {
    io("start", x.start);
    io("len", x.len);
    std::string file = x.parent ? "parent" : "self";  // "parent": bytes in the parent image
    io("file", file);
    if (file != "self" && file != "parent") bad("bad page run file");
    set(x.parent, file == "parent");
    if (file == "self") {
      io("offset", x.offset);
      io("hash", HexWord{x.hash});
    }
  } else if constexpr (std::is_same_v<V, FdImage>) {
    io("fd", x.fd);
    io("kind", x.kind);
    io("path", x.path);
    io("flags", x.flags);
    io("pos", x.pos);
    io("cloexec", x.cloexec);
    bool pipe = x.pipe_size != 0;
    io.optional("pipe_size", pipe, [&](Io& o) {
      o("pipe_size", x.pipe_size);
      o("data", Hex{x.data});
    });
  } else if constexpr (std::is_same_v<V, ThreadImage>) {
    io("vtid", x.vtid);
    thread_fields(io, x);
  } else if constexpr (std::is_same_v<V, TaskImage>) {
    io("vpid", x.vpid);
    io("ppid", x.ppid);
    io("pgid", x.pgid);
    io("sid", x.sid);
    thread_fields(io, x);
    io("sigactions", x.sigactions);
    io.object("mm", [&](Io& o) {
      o("start_code", x.start_code);
      o("end_code", x.end_code);
      o("start_data", x.start_data);
      o("end_data", x.end_data);
      o("start_brk", x.start_brk);
      o("brk", x.brk);
      o("start_stack", x.start_stack);
      o("arg_start", x.arg_start);
      o("arg_end", x.arg_end);
      o("env_start", x.env_start);
      o("env_end", x.env_end);
      o("auxv", Hex{x.auxv});
    });
    io("umask", x.umask);
    io("cwd", x.cwd);
    io("exe", x.exe);
    io.object("creds", [&](Io& o) {
      o("uids", x.uids);
      o("gids", x.gids);
      o("groups", x.groups);
      o("cap_inh", x.cap_inh);
      o("cap_prm", x.cap_prm);
      o("cap_eff", x.cap_eff);
      o("cap_bnd", x.cap_bnd);
      o("cap_amb", x.cap_amb);
      o("no_new_privs", x.no_new_privs);
      o("seccomp", x.seccomp);
    });
    io("rlimits", x.rlimits);
    io("vmas", x.vmas);
    io("fds", x.fds);
    io("threads", x.threads);
    io.optional("objects", !x.objects.empty(), [&](Io& o) { o("objects", x.objects); });
    io.optional("exe_object", !x.exe_object.empty(), [&](Io& o) { o("exe_object", x.exe_object); });
    io.optional("track", x.track_fd >= 0, [&](Io& o) {
      o.object("track", [&](Io& p) {
        p("fd", x.track_fd);
        p("start_time", x.track_start);
      });
    });
  } else if constexpr (std::is_same_v<V, TaskRef>) {
    io("vpid", x.vpid);
    io("ppid", x.ppid);
    io("pgid", x.pgid);
    io("sid", x.sid);
    io("file", x.file);
    io("hash", HexWord{x.hash});
  } else if constexpr (std::is_same_v<V, Manifest>) {
    io("format", x.format);
    std::string arch = "x86_64";
    io("arch", arch);
    if (arch != "x86_64") bad("image is not for x86_64");
    io("kernel", x.kernel);
    io("xcr0", HexWord{x.xcr0});
    io.pairs("vdso", x.vdso, "name", "size");
    io("id", x.id);
    io.document("config", x.config);
    io.document("cgroup", x.cgroup);
    io.object("uts", [&](Io& o) {
      o("hostname", x.hostname);
      o("domainname", x.domainname);
    });
    io("tasks", x.tasks);
    io.optional("ipc", !x.ipc.empty(), [&](Io& o) { o.document("ipc", x.ipc); });
    io.optional("cgroup_mode", !x.cgroup_mode.empty(),
                [&](Io& o) { o("cgroup_mode", x.cgroup_mode); });
    io.optional("tty", !x.tty.slave.empty(), [&](Io& o) { o.plain("tty", x.tty); });
    io.optional("pre_dump", x.pre_dump, [&](Io& o) { o("pre_dump", x.pre_dump); });
    io.optional("init_start_time", x.init_start != 0,
                [&](Io& o) { o("init_start_time", x.init_start); });
    io.optional("parent", !x.parent.empty(), [&](Io& o) {
      o.object("parent", [&](Io& p) {
        p("path", x.parent);
        p("hash", HexWord{x.parent_hash});
      });
    });
  } else {
    static_assert(sizeof(V) == 0, "no field list for this type");
  }
}

// Checks a Reader cannot express as a field.
void validate(const PageRunImage& r) {
  if (r.len == 0 || r.start % kPageSize || r.len % kPageSize || r.start + r.len < r.start)
    bad("bad page run");
}
void validate(const PendingSignal& p) {
  if (p.info.size() != 128) bad("bad siginfo size");
}
void validate(const VmaImage& v) {
  if (v.perms.size() != 4 || v.end <= v.start) bad("bad mapping entry");
  for (size_t i = 0; i < v.runs.size(); i++) {
    auto& r = v.runs[i];
    if (r.start < v.start || r.start + r.len > v.end ||
        (i && r.start < v.runs[i - 1].start + v.runs[i - 1].len))
      bad("bad page run");
  }
}
void validate(const TaskImage& t) {
  if (t.uids.size() != 4 || t.gids.size() != 4) bad("bad credentials");
}
void validate(const TaskRef& r) {
  if (r.file.find('/') != std::string::npos) bad("bad task file name");
}
template <class T>
void validate(const T&) {}

template <class T>
void store(Json& j, const T& x) {
  Writer w(j);
  fields(w, x);
}
template <class T>
void load(const Json& j, T& x) {
  Reader r(j);
  fields(r, x);
  validate(x);
}

}  // namespace

// nlohmann's hooks (found by ADL) for the image structures.
void to_json(Json& j, const PendingSignal& x) { store(j, x); }
void from_json(const Json& j, PendingSignal& x) { load(j, x); }
void to_json(Json& j, const VmaImage& x) { store(j, x); }
void from_json(const Json& j, VmaImage& x) { load(j, x); }
void to_json(Json& j, const FdImage& x) { store(j, x); }
void from_json(const Json& j, FdImage& x) { load(j, x); }
void to_json(Json& j, const ThreadImage& x) { store(j, x); }
void from_json(const Json& j, ThreadImage& x) { load(j, x); }
void to_json(Json& j, const PageRunImage& x) { store(j, x); }
void from_json(const Json& j, PageRunImage& x) { load(j, x); }
void to_json(Json& j, const TaskRef& x) { store(j, x); }
void from_json(const Json& j, TaskRef& x) { load(j, x); }
// A signal action is the kernel's four words, [handler, flags, restorer, mask].
void to_json(Json& j, const SigactionImage& a) { j = {a.handler, a.flags, a.restorer, a.mask}; }
void from_json(const Json& j, SigactionImage& a) { a = {j.at(0), j.at(1), j.at(2), j.at(3)}; }

std::string task_to_json(const TaskImage& t) {
  Json j;
  store(j, t);
  return j.dump(1);
}

Result<TaskImage> task_from_json(const std::string& text) {
  try {
    TaskImage t;
    load(Json::parse(text), t);
    return t;
  } catch (const std::exception& e) {
    return base::make_error(std::string("parse task image: ") + e.what());
  }
}

std::string manifest_to_json(const Manifest& m) {
  Json j;
  store(j, m);
  return j.dump(1);
}

Result<Manifest> manifest_from_json(const std::string& text) {
  try {
    auto j = Json::parse(text);
    int format = j.at("format");
    if (format != kFormatVersion)
      return base::make_error("image format " + std::to_string(format) +
                              " is not supported (this zrun reads format " +
                              std::to_string(kFormatVersion) + ")");
    Manifest m;
    load(j, m);
    if (m.tasks.empty() || m.tasks[0].vpid != 1)
      return base::make_error("image has no init process (pid 1)");
    if (j.contains("parent") && m.parent.empty()) return base::make_error("bad parent path");
    return m;
  } catch (const std::exception& e) {
    return base::make_error(std::string("parse manifest: ") + e.what());
  }
}

const TaskImage* Image::task(pid_t vpid) const {
  for (auto& t : tasks)
    if (t.vpid == vpid) return &t;
  return nullptr;
}

namespace {

Result<Image> load_one(const std::string& dir, int depth);

// The parent an image refers to: there, unchanged (its manifest's checksum), loaded.
Result<void> load_parent(Image& img, int depth) {
  const auto& m = img.manifest;
  if (m.parent.empty()) return base::ok();
  if (depth >= kMaxParents) return base::make_error("too many parent images");
  std::string pdir =
      base::clean_path(m.parent[0] == '/' ? m.parent : base::join_path(img.dir, m.parent));
  auto parent = ZRUN_TRY_CTX(load_one(pdir, depth + 1), "parent image");
  if (parent.manifest_hash != m.parent_hash)
    return base::make_error("parent image `" + pdir + "` is not the one this image was made from " +
                            "(manifest checksum)");
  if (!parent.manifest.pre_dump)
    return base::make_error("parent image `" + pdir + "` is not a pre-dump");
  img.parent = std::make_shared<const Image>(std::move(parent));
  return base::ok();
}

Result<Image> load_one(const std::string& dir, int depth) {
  Image img;
  img.dir = dir;
  auto text = ZRUN_TRY_CTX(base::read_file(dir + "/manifest.json"), "read image");
  img.manifest_hash = hash64(text.data(), text.size());
  img.manifest = ZRUN_TRY_CTX(manifest_from_json(text), "image `" + dir + "`");
  uint64_t missing = img.manifest.xcr0 & ~host_xcr0();
  if (missing)
    return base::make_error("image `" + dir + "`: this CPU lacks saved XCR0 features 0x" +
                            hex64(missing));
  for (auto& ref : img.manifest.tasks) {
    auto t = ZRUN_TRY_CTX(base::read_file(dir + "/" + ref.file), "read image");
    if (hash64(t.data(), t.size()) != ref.hash)
      return base::make_error("image `" + dir + "`: `" + ref.file + "` is corrupted (checksum)");
    img.tasks.push_back(ZRUN_TRY_CTX(task_from_json(t), "image `" + ref.file + "`"));
  }
  ZRUN_TRY(load_parent(img, depth));
  return img;
}

}  // namespace

Result<Image> load_image(const std::string& dir) { return load_one(dir, 0); }

}  // namespace zrun::ckpt
