#include "checkpoint/proc.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdio>

#include "base/sys.h"

namespace zrun::ckpt {

using base::Result;

bool Vma::special() const {
  return name == "[vvar]" || name == "[vvar_vclock]" || name == "[vdso]" || name == "[vsyscall]";
}

Result<std::vector<Vma>> parse_maps(const std::string& text) {
  std::vector<Vma> out;
  for (auto& line : base::split(text, '\n')) {
    if (line.empty()) continue;
    Vma v;
    char perms[8] = {}, dev[16] = {};
    unsigned long long start = 0, end = 0, off = 0, ino = 0;
    int name_pos = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %15s %llu %n", &start, &end, perms, &off, dev,
                    &ino, &name_pos) < 6)
      return base::make_error("parse maps line `" + line + "`");
    v.start = start;
    v.end = end;
    v.perms = perms;
    v.offset = off;
    v.dev = dev;
    v.inode = ino;
    if (name_pos > 0 && static_cast<size_t>(name_pos) <= line.size())
      v.name = std::string(base::trim(line.substr(static_cast<size_t>(name_pos))));
    if (v.perms.size() != 4) return base::make_error("parse maps line `" + line + "`");
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<Vma>> read_maps(pid_t pid) {
  auto text = ZRUN_TRY(base::read_file("/proc/" + std::to_string(pid) + "/maps"));
  return parse_maps(text);
}

Result<std::vector<Vma>> read_smaps(pid_t pid) {
  auto text = ZRUN_TRY(base::read_file("/proc/" + std::to_string(pid) + "/smaps"));
  std::string maps;
  std::vector<uint64_t> anon;
  for (auto& line : base::split(text, '\n')) {
    if (line.empty()) continue;
    if (base::starts_with(line, "Anonymous:")) {
      if (!anon.empty())
        anon.back() = ZRUN_TRY(base::parse_uint(base::split(base::trim(line.substr(10)), ' ')[0]));
      continue;
    }
    // Header lines start with a hex range; field lines with "Name:".
    auto colon = line.find(':'), dash = line.find('-');
    if (dash != std::string::npos && (colon == std::string::npos || dash < colon)) {
      maps += line + "\n";
      anon.push_back(0);
    }
  }
  auto vmas = ZRUN_TRY(parse_maps(maps));
  for (size_t i = 0; i < vmas.size() && i < anon.size(); i++) vmas[i].anon_kb = anon[i];
  return vmas;
}

Result<std::string> status_field(const std::string& status, const std::string& key) {
  std::string k = key + ":";
  for (auto& line : base::split(status, '\n'))
    if (base::starts_with(line, k)) return std::string(base::trim(line.substr(k.size())));
  return base::make_error("status field `" + key + "` not found");
}

Result<uint64_t> non_default_signals(pid_t pid) {
  auto status = ZRUN_TRY(base::read_file("/proc/" + std::to_string(pid) + "/status"));
  uint64_t out = uint64_t{1} << (SIGCHLD - 1);
  for (const char* key : {"SigCgt", "SigIgn"}) {
    auto v = ZRUN_TRY(status_field(status, key));
    uint64_t bits = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), bits, 16);
    if (ec != std::errc() || end != v.data() + v.size())
      return base::make_error("status field `" + std::string(key) + "`: bad mask `" + v + "`");
    out |= bits;
  }
  return out;
}

Result<int64_t> status_last_int(const std::string& status, const std::string& key) {
  auto v = ZRUN_TRY(status_field(status, key));
  auto pos = v.find_last_of(" \t");
  return base::parse_int(pos == std::string::npos ? v : v.substr(pos + 1));
}

Result<std::vector<std::string>> stat_fields(pid_t pid) {
  auto text = ZRUN_TRY(base::read_file("/proc/" + std::to_string(pid) + "/stat"));
  auto rp = text.rfind(')');
  if (rp == std::string::npos)
    return base::make_error("parse /proc/" + std::to_string(pid) + "/stat");
  std::vector<std::string> f = {"", "", ""};  // 1 pid, 2 comm unused
  for (auto& x : base::split(base::trim(text.substr(rp + 1)), ' ')) f.push_back(x);
  return f;
}

Result<std::string> in_namespace_of(pid_t pid, const std::string& ns, int nstype,
                                    const std::function<Result<std::string>()>& fn) {
  auto fd = ZRUN_TRY(base::open_file("/proc/" + std::to_string(pid) + "/ns/" + ns, O_RDONLY));
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return base::sys_error("pipe");
  base::UniqueFd rd(p[0]), wr(p[1]);
  pid_t child = ::fork();
  if (child < 0) return base::sys_error("fork");
  if (child == 0) {
    rd.reset();
    Result<std::string> r = std::string();
    if (::setns(fd.get(), nstype) < 0)
      r = base::sys_error("join the container's " + ns + " namespace");
    else
      r = fn();
    std::string out = r ? "O" + *r : "E" + r.error().text();
    bool ok = static_cast<bool>(base::write_all(wr.get(), out));
    ::_exit(ok ? 0 : 1);
  }
  wr.reset();
  auto text = base::read_fd(rd.get());
  int st = ZRUN_TRY(base::wait_pid(child));
  if (!text || text->empty() || !WIFEXITED(st))
    return base::make_error("the " + ns + " namespace helper failed");
  if ((*text)[0] == 'E') return base::make_error(text->substr(1));
  return text->substr(1);
}

}  // namespace zrun::ckpt
