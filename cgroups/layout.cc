// Mode detection from mountinfo and linux.cgroupsPath resolution.
#include <set>

#include "base/sys.h"
#include "cgroups/cgroup.h"

namespace zrun::cg {

namespace {

// v1 controllers zrun places the container in when mounted. Anything else in a v1 mount's
// super options (rw, name=..., clone_children, ...) is not a controller.
const std::set<std::string>& known_v1_controllers() {
  static const std::set<std::string> k = {"cpu",      "cpuacct",    "cpuset", "memory",  "devices",
                                          "freezer",  "blkio",      "pids",   "hugetlb", "net_cls",
                                          "net_prio", "perf_event", "rdma",   "misc"};
  return k;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct MountLine {
  std::string root, mount_point, fstype;
  std::vector<std::string> super_opts;
};

std::optional<MountLine> parse_mount_line(std::string_view line) {
  auto sep = line.find(" - ");
  if (sep == std::string_view::npos) return std::nullopt;
  auto pre = base::split(line.substr(0, sep), ' ');
  auto post = base::split(line.substr(sep + 3), ' ');
  if (pre.size() < 5 || post.size() < 3) return std::nullopt;
  MountLine m;
  m.root = unescape_mountinfo(pre[3]);
  m.mount_point = unescape_mountinfo(pre[4]);
  m.fstype = post[0];
  m.super_opts = base::split(post[2], ',');
  return m;
}

}  // namespace

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kUnified:
      return "unified";
    case Mode::kHybrid:
      return "hybrid";
    case Mode::kLegacy:
      return "legacy";
  }
  return "?";
}

base::Result<Mode> mode_from_name(std::string_view name) {
  if (name == "unified") return Mode::kUnified;
  if (name == "hybrid") return Mode::kHybrid;
  if (name == "legacy") return Mode::kLegacy;
  return base::make_error("unknown cgroup mode \"" + std::string(name) + "\"");
}

base::Result<Layout> detect_layout_from(std::string_view mountinfo, const std::string& fs_root) {
  Layout l;
  std::string root = base::clean_path(fs_root);
  bool unified_at_root = false;
  // Prefer mounts of a hierarchy's root ("/"): a bind mount of a subtree would shift
  // every path.
  std::map<std::string, bool> v1_is_root;
  std::vector<MountLine> mounts;
  for (auto& line : base::split(mountinfo, '\n'))
    if (auto m = parse_mount_line(line)) mounts.push_back(std::move(*m));
  // A later mount at the same place or above hides a cgroup mount (e.g. a tmpfs over
  // /sys/fs/cgroup/unified in a private mount namespace): mountinfo is in mount order.
  auto hidden = [&](size_t i) {
    const std::string& mp = mounts[i].mount_point;
    for (size_t j = i + 1; j < mounts.size(); ++j) {
      const std::string& up = mounts[j].mount_point;
      if (mp == up || (mp.size() > up.size() && mp.compare(0, up.size(), up) == 0 &&
                       (up == "/" || mp[up.size()] == '/')))
        return true;
    }
    return false;
  };
  for (size_t i = 0; i < mounts.size(); ++i) {
    if (hidden(i)) continue;
    const MountLine* m = &mounts[i];
    if (m->fstype == "cgroup2") {
      if (base::clean_path(m->mount_point) == root) {
        unified_at_root = true;
        l.unified = m->mount_point;
      } else if (l.unified.empty() && !unified_at_root) {
        l.unified = m->mount_point;
      }
      continue;
    }
    if (m->fstype != "cgroup") continue;
    for (auto& opt : m->super_opts) {
      if (!known_v1_controllers().count(opt)) continue;
      auto it = v1_is_root.find(opt);
      if (it != v1_is_root.end() && (it->second || m->root != "/")) continue;
      l.v1[opt] = m->mount_point;
      v1_is_root[opt] = m->root == "/";
    }
  }
  if (unified_at_root) {
    l.mode = Mode::kUnified;
    l.v1.clear();
  } else if (!l.v1.empty()) {
    l.mode = l.unified.empty() ? Mode::kLegacy : Mode::kHybrid;
  } else if (!l.unified.empty()) {
    // cgroup2 mounted somewhere other than fs_root and no v1: still unified.
    l.mode = Mode::kUnified;
  } else {
    return base::make_error("detect cgroup mode: no cgroup filesystem mounted");
  }
  return l;
}

base::Result<Layout> detect_layout(const std::string& fs_root) {
  auto text = ZRUN_TRY_CTX(base::read_file("/proc/self/mountinfo"), "detect cgroup mode");
  return detect_layout_from(text, fs_root);
}

base::Result<Mode> detect_mode() {
  auto l = ZRUN_TRY(detect_layout());
  return l.mode;
}

namespace {

// zrun's own cgroup: the "0::" line on unified hosts; on v1 hosts the memory controller's
// line (where limits are inherited from), else pids, else the "0::" line.
base::Result<std::string> own_cgroup(std::string_view proc_self_cgroup, Mode mode) {
  std::map<std::string, std::string> by_ctrl;
  for (auto& line : base::split(proc_self_cgroup, '\n')) {
    auto c1 = line.find(':');
    if (c1 == std::string::npos) continue;
    auto c2 = line.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path = std::string(base::trim(line.substr(c2 + 1)));
    if (ctrls.empty()) {
      by_ctrl[""] = path;
      continue;
    }
    for (auto& c : base::split(ctrls, ',')) by_ctrl[c] = path;
  }
  std::vector<std::string> order = {""};
  if (mode != Mode::kUnified) order = {"memory", "pids", ""};
  for (auto& c : order) {
    auto it = by_ctrl.find(c);
    if (it != by_ctrl.end()) return it->second;
  }
  return base::make_error("find own cgroup in /proc/self/cgroup: no usable line");
}

// Join and clean, refusing ".." that would climb above `base`.
base::Result<std::string> join_inside(const std::string& base, const std::string& rel) {
  int depth = 0;
  for (auto& part : base::split(rel, '/')) {
    if (part.empty() || part == ".") continue;
    depth += part == ".." ? -1 : 1;
    if (depth < 0)
      return base::make_error("cgroupsPath `" + rel + "`: \"..\" escapes its parent cgroup");
  }
  return base::clean_path(base::join_path(base, rel));
}

}  // namespace

base::Result<std::string> resolve_path_from(const std::string& cgroups_path, const std::string& id,
                                            std::string_view proc_self_cgroup, Mode mode) {
  if (cgroups_path.empty()) {
    if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..")
      return base::make_error("cgroup path for container id `" + id + "`: invalid id");
    return "/zrun/" + id;
  }
  if (cgroups_path.find(':') != std::string::npos) {
    if (base::split(cgroups_path, ':').size() != 3)
      return base::make_error("cgroupsPath `" + cgroups_path +
                              "`: contains ':' but is not the systemd slice:prefix:name form");
    if (base::path_exists("/run/systemd/system"))
      return base::make_error("cgroupsPath `" + cgroups_path +
                              "`: systemd cgroup driver not supported");
    return base::make_error("cgroupsPath `" + cgroups_path +
                            "`: systemd cgroup driver not supported: no systemd");
  }
  std::string out;
  if (cgroups_path.front() == '/') {
    out = ZRUN_TRY(join_inside("/", cgroups_path));
  } else {
    auto own = ZRUN_TRY(own_cgroup(proc_self_cgroup, mode));
    if (own.empty()) own = "/";
    // v2's "no internal processes" rule: zrun's own cgroup holds zrun (and usually the
    // shell that started it), so controllers cannot be enabled for a child of it (EBUSY)
    // and every limit would fail. Like runc (fs2 defaultDirPath), go below its parent.
    // v1 hierarchies (and hybrid's controller-less unified one) have no such rule.
    if (mode == Mode::kUnified) own = base::dirname(own);
    out = ZRUN_TRY(join_inside(own, cgroups_path));
  }
  if (out == "/") return base::make_error("cgroupsPath `" + cgroups_path + "`: is the root cgroup");
  return out;
}

base::Result<std::string> resolve_path(const std::string& cgroups_path, const std::string& id) {
  if (cgroups_path.empty() || cgroups_path.front() == '/' ||
      cgroups_path.find(':') != std::string::npos)
    return resolve_path_from(cgroups_path, id, "", Mode::kUnified);
  auto mode = ZRUN_TRY(detect_mode());
  auto text = ZRUN_TRY_CTX(base::read_file("/proc/self/cgroup"), "resolve cgroupsPath");
  return resolve_path_from(cgroups_path, id, text, mode);
}

}  // namespace zrun::cg
