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

Json pending_json(const std::vector<PendingSignal>& v) {
  Json a = Json::array();
  for (auto& p : v) a.push_back({{"shared", p.shared}, {"siginfo", to_hex(p.info)}});
  return a;
}

Result<std::vector<PendingSignal>> pending_from(const Json& a) {
  std::vector<PendingSignal> out;
  for (auto& e : a) {
    PendingSignal p;
    p.shared = e.at("shared");
    p.info = ZRUN_TRY(from_hex(e.at("siginfo").get<std::string>()));
    if (p.info.size() != 128) return base::make_error("bad siginfo size");
    out.push_back(std::move(p));
  }
  return out;
}

Result<uint64_t> parse_hex64(const std::string& s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty())
    return base::make_error("invalid hex number \"" + s + "\"");
  return v;
}

// A page run: {"start", "len", "file": "self", "offset", "hash"} or {"start", "len",
// "file": "parent"}.
Json run_json(const PageRunImage& r) {
  Json e = {{"start", r.start}, {"len", r.len}, {"file", r.parent ? "parent" : "self"}};
  if (!r.parent) {
    e["offset"] = r.offset;
    e["hash"] = hex64(r.hash);
  }
  return e;
}

Result<PageRunImage> run_from(const Json& e) {
  PageRunImage r;
  r.start = e.at("start");
  r.len = e.at("len");
  std::string file = e.at("file");
  if (file != "self" && file != "parent") return base::make_error("bad page run file");
  r.parent = file == "parent";
  if (!r.parent) {
    r.offset = e.at("offset");
    r.hash = ZRUN_TRY(parse_hex64(e.at("hash").get<std::string>()));
  }
  if (r.len == 0 || r.start % kPageSize || r.len % kPageSize || r.start + r.len < r.start)
    return base::make_error("bad page run");
  return r;
}

Json regs_json(const user_regs_struct& r) {
  return to_hex(std::string_view(reinterpret_cast<const char*>(&r), sizeof(r)));
}

}  // namespace

std::string task_to_json(const TaskImage& t) {
  Json j;
  j["vpid"] = t.vpid;
  j["ppid"] = t.ppid;
  j["pgid"] = t.pgid;
  j["sid"] = t.sid;
  j["comm"] = t.comm;
  j["regs"] = regs_json(t.regs);
  j["fpu"] = to_hex(t.fpu);
  j["sigmask"] = t.sigmask;
  j["pending"] = pending_json(t.pending);
  Json sa = Json::array();
  for (auto& a : t.sigactions) sa.push_back({a.handler, a.flags, a.restorer, a.mask});
  j["sigactions"] = sa;
  j["mm"] = {
      {"start_code", t.start_code},   {"end_code", t.end_code},   {"start_data", t.start_data},
      {"end_data", t.end_data},       {"start_brk", t.start_brk}, {"brk", t.brk},
      {"start_stack", t.start_stack}, {"arg_start", t.arg_start}, {"arg_end", t.arg_end},
      {"env_start", t.env_start},     {"env_end", t.env_end},     {"auxv", to_hex(t.auxv)}};
  j["rseq"] = {{"ptr", t.rseq_ptr}, {"len", t.rseq_len}, {"sig", t.rseq_sig}};
  j["robust_list"] = {t.robust_list, t.robust_len};
  j["clear_tid"] = t.clear_tid;
  j["umask"] = t.umask;
  j["cwd"] = t.cwd;
  j["exe"] = t.exe;
  j["creds"] = {{"uids", t.uids},       {"gids", t.gids},       {"groups", t.groups},
                {"cap_inh", t.cap_inh}, {"cap_prm", t.cap_prm}, {"cap_eff", t.cap_eff},
                {"cap_bnd", t.cap_bnd}, {"cap_amb", t.cap_amb}, {"no_new_privs", t.no_new_privs},
                {"seccomp", t.seccomp}};
  Json rl = Json::array();
  for (auto& [cur, max] : t.rlimits) rl.push_back({cur, max});
  j["rlimits"] = rl;
  Json vm = Json::array();
  for (auto& v : t.vmas) {
    Json e = {{"start", v.start}, {"end", v.end},       {"perms", v.perms},
              {"path", v.path},   {"offset", v.offset}, {"name", v.name}};
    if (v.shmid >= 0) e["shmid"] = v.shmid;
    if (v.pages)
      e["pages"] = {{"file", "self"}, {"offset", v.page_offset}, {"hash", hex64(v.hash)}};
    if (!v.object.empty()) e["object"] = v.object;
    if (!v.pages && !v.runs.empty()) {
      // "runs" for readers that know it; an older reader stops at this "file" with an error
      // instead of restoring zeros.
      e["pages"] = {{"file", "runs"}};
      Json runs = Json::array();
      for (auto& r : v.runs) runs.push_back(run_json(r));
      e["runs"] = runs;
    }
    vm.push_back(e);
  }
  j["vmas"] = vm;
  Json fds = Json::array();
  for (auto& f : t.fds)
    fds.push_back({{"fd", f.fd},
                   {"kind", f.kind},
                   {"path", f.path},
                   {"flags", f.flags},
                   {"pos", f.pos},
                   {"cloexec", f.cloexec}});
  for (size_t i = 0; i < t.fds.size(); i++)
    if (t.fds[i].pipe_size) {
      fds[i]["pipe_size"] = t.fds[i].pipe_size;
      fds[i]["data"] = to_hex(t.fds[i].data);
    }
  j["fds"] = fds;
  Json th = Json::array();
  for (auto& x : t.threads)
    th.push_back({{"vtid", x.vtid},
                  {"comm", x.comm},
                  {"regs", regs_json(x.regs)},
                  {"fpu", to_hex(x.fpu)},
                  {"sigmask", x.sigmask},
                  {"pending", pending_json(x.pending)},
                  {"rseq", {{"ptr", x.rseq_ptr}, {"len", x.rseq_len}, {"sig", x.rseq_sig}}},
                  {"robust_list", {x.robust_list, x.robust_len}},
                  {"clear_tid", x.clear_tid}});
  j["threads"] = th;
  if (!t.objects.empty()) j["objects"] = t.objects;
  if (!t.exe_object.empty()) j["exe_object"] = t.exe_object;
  if (t.track_fd >= 0) j["track"] = {{"fd", t.track_fd}, {"start_time", t.track_start}};
  return j.dump(1);
}

Result<TaskImage> task_from_json(const std::string& text) {
  try {
    auto j = Json::parse(text);
    TaskImage t;
    t.vpid = j.at("vpid");
    t.ppid = j.at("ppid");
    t.pgid = j.at("pgid");
    t.sid = j.at("sid");
    t.comm = j.at("comm");
    auto regs = ZRUN_TRY(from_hex(j.at("regs").get<std::string>()));
    if (regs.size() != sizeof(t.regs)) return base::make_error("bad register set size");
    std::memcpy(&t.regs, regs.data(), sizeof(t.regs));
    t.fpu = ZRUN_TRY(from_hex(j.at("fpu").get<std::string>()));
    t.sigmask = j.at("sigmask");
    t.pending = ZRUN_TRY(pending_from(j.at("pending")));
    for (auto& a : j.at("sigactions")) t.sigactions.push_back({a.at(0), a.at(1), a.at(2), a.at(3)});
    auto& mm = j.at("mm");
    t.start_code = mm.at("start_code");
    t.end_code = mm.at("end_code");
    t.start_data = mm.at("start_data");
    t.end_data = mm.at("end_data");
    t.start_brk = mm.at("start_brk");
    t.brk = mm.at("brk");
    t.start_stack = mm.at("start_stack");
    t.arg_start = mm.at("arg_start");
    t.arg_end = mm.at("arg_end");
    t.env_start = mm.at("env_start");
    t.env_end = mm.at("env_end");
    t.auxv = ZRUN_TRY(from_hex(mm.at("auxv").get<std::string>()));
    t.rseq_ptr = j.at("rseq").at("ptr");
    t.rseq_len = j.at("rseq").at("len");
    t.rseq_sig = j.at("rseq").at("sig");
    t.robust_list = j.at("robust_list").at(0);
    t.robust_len = j.at("robust_list").at(1);
    t.clear_tid = j.at("clear_tid");
    t.umask = j.at("umask");
    t.cwd = j.at("cwd");
    t.exe = j.at("exe");
    auto& c = j.at("creds");
    t.uids = c.at("uids").get<std::vector<uint32_t>>();
    t.gids = c.at("gids").get<std::vector<uint32_t>>();
    t.groups = c.at("groups").get<std::vector<uint32_t>>();
    if (t.uids.size() != 4 || t.gids.size() != 4) return base::make_error("bad credentials");
    t.cap_inh = c.at("cap_inh");
    t.cap_prm = c.at("cap_prm");
    t.cap_eff = c.at("cap_eff");
    t.cap_bnd = c.at("cap_bnd");
    t.cap_amb = c.at("cap_amb");
    t.no_new_privs = c.at("no_new_privs");
    t.seccomp = c.at("seccomp");
    for (auto& r : j.at("rlimits")) t.rlimits.emplace_back(r.at(0), r.at(1));
    for (auto& e : j.at("vmas")) {
      VmaImage v;
      v.start = e.at("start");
      v.end = e.at("end");
      v.perms = e.at("perms");
      v.path = e.at("path");
      v.offset = e.at("offset");
      v.name = e.at("name");
      v.object = e.value("object", "");
      v.shmid = e.value("shmid", int64_t{-1});
      if (e.contains("pages") && e.at("pages").at("file") == "runs") {
        for (auto& r : e.at("runs")) {
          auto run = ZRUN_TRY(run_from(r));
          if (run.start < v.start || run.start + run.len > v.end ||
              (!v.runs.empty() && run.start < v.runs.back().start + v.runs.back().len))
            return base::make_error("bad page run");
          v.runs.push_back(run);
        }
      } else if (e.contains("pages")) {
        auto& p = e.at("pages");
        if (p.at("file") != "self") return base::make_error("bad pages entry");
        v.pages = true;
        v.page_offset = p.at("offset");
        v.hash = ZRUN_TRY(parse_hex64(p.at("hash").get<std::string>()));
      }
      if (v.perms.size() != 4 || v.end <= v.start) return base::make_error("bad mapping entry");
      t.vmas.push_back(std::move(v));
    }
    for (auto& e : j.at("fds")) {
      FdImage f{e.at("fd"),    e.at("kind"), e.at("path"),
                e.at("flags"), e.at("pos"),  e.at("cloexec")};
      if (e.contains("pipe_size")) {
        f.pipe_size = e.at("pipe_size");
        f.data = ZRUN_TRY(from_hex(e.at("data").get<std::string>()));
      }
      t.fds.push_back(std::move(f));
    }
    for (auto& e : j.at("threads")) {
      ThreadImage x;
      x.vtid = e.at("vtid");
      x.comm = e.at("comm");
      auto r = ZRUN_TRY(from_hex(e.at("regs").get<std::string>()));
      if (r.size() != sizeof(x.regs)) return base::make_error("bad register set size");
      std::memcpy(&x.regs, r.data(), sizeof(x.regs));
      x.fpu = ZRUN_TRY(from_hex(e.at("fpu").get<std::string>()));
      x.sigmask = e.at("sigmask");
      x.pending = ZRUN_TRY(pending_from(e.at("pending")));
      x.rseq_ptr = e.at("rseq").at("ptr");
      x.rseq_len = e.at("rseq").at("len");
      x.rseq_sig = e.at("rseq").at("sig");
      x.robust_list = e.at("robust_list").at(0);
      x.robust_len = e.at("robust_list").at(1);
      x.clear_tid = e.at("clear_tid");
      t.threads.push_back(std::move(x));
    }
    t.objects = j.value("objects", std::vector<ObjectImage>{});
    t.exe_object = j.value("exe_object", "");
    if (j.contains("track")) {
      t.track_fd = j.at("track").at("fd");
      t.track_start = j.at("track").at("start_time");
    }
    return t;
  } catch (const std::exception& e) {
    return base::make_error(std::string("parse task image: ") + e.what());
  }
}

std::string manifest_to_json(const Manifest& m) {
  Json j;
  j["format"] = m.format;
  j["kernel"] = m.kernel;
  j["arch"] = "x86_64";
  j["xcr0"] = hex64(m.xcr0);
  Json vd = Json::array();
  for (auto& [name, size] : m.vdso) vd.push_back({{"name", name}, {"size", size}});
  j["vdso"] = vd;
  j["id"] = m.id;
  j["config"] = Json::parse(m.config);
  j["cgroup"] = m.cgroup.empty() ? Json() : Json::parse(m.cgroup);
  j["uts"] = {{"hostname", m.hostname}, {"domainname", m.domainname}};
  Json tasks = Json::array();
  for (auto& t : m.tasks)
    tasks.push_back({{"vpid", t.vpid},
                     {"ppid", t.ppid},
                     {"pgid", t.pgid},
                     {"sid", t.sid},
                     {"file", t.file},
                     {"hash", hex64(t.hash)}});
  j["tasks"] = tasks;
  if (!m.ipc.empty()) j["ipc"] = Json::parse(m.ipc);
  if (!m.cgroup_mode.empty()) j["cgroup_mode"] = m.cgroup_mode;
  if (!m.tty.slave.empty()) j["tty"] = Json(nlohmann::json(m.tty));
  if (m.pre_dump) j["pre_dump"] = true;
  if (m.init_start) j["init_start_time"] = m.init_start;
  if (!m.parent.empty()) j["parent"] = {{"path", m.parent}, {"hash", hex64(m.parent_hash)}};
  return j.dump(1);
}

Result<Manifest> manifest_from_json(const std::string& text) {
  try {
    auto j = Json::parse(text);
    Manifest m;
    m.format = j.at("format");
    if (m.format != kFormatVersion)
      return base::make_error("image format " + std::to_string(m.format) +
                              " is not supported (this zrun reads format " +
                              std::to_string(kFormatVersion) + ")");
    if (j.at("arch") != "x86_64") return base::make_error("image is not for x86_64");
    m.kernel = j.at("kernel");
    m.xcr0 = ZRUN_TRY(parse_hex64(j.at("xcr0").get<std::string>()));
    for (auto& v : j.at("vdso")) m.vdso.emplace_back(v.at("name"), v.at("size"));
    m.id = j.at("id");
    m.config = j.at("config").dump();
    if (!j.at("cgroup").is_null()) m.cgroup = j.at("cgroup").dump();
    m.hostname = j.at("uts").at("hostname");
    m.domainname = j.at("uts").at("domainname");
    for (auto& t : j.at("tasks")) {
      TaskRef r;
      r.vpid = t.at("vpid");
      r.ppid = t.at("ppid");
      r.pgid = t.at("pgid");
      r.sid = t.at("sid");
      r.file = t.at("file");
      if (r.file.find('/') != std::string::npos) return base::make_error("bad task file name");
      r.hash = ZRUN_TRY(parse_hex64(t.at("hash").get<std::string>()));
      m.tasks.push_back(std::move(r));
    }
    if (j.contains("ipc")) m.ipc = j.at("ipc").dump();
    m.cgroup_mode = j.value("cgroup_mode", "");
    if (j.contains("tty")) m.tty = nlohmann::json(j.at("tty")).get<TtyImage>();
    if (m.tasks.empty() || m.tasks[0].vpid != 1)
      return base::make_error("image has no init process (pid 1)");
    m.pre_dump = j.value("pre_dump", false);
    m.init_start = j.value("init_start_time", uint64_t{0});
    if (j.contains("parent")) {
      m.parent = j.at("parent").at("path");
      m.parent_hash = ZRUN_TRY(parse_hex64(j.at("parent").at("hash").get<std::string>()));
      if (m.parent.empty()) return base::make_error("bad parent path");
    }
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
