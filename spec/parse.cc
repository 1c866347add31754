// config.json -> spec::Spec: the top level, process, root, mounts and hooks, plus the
// checks that span sections. The .linux object is in parse_linux.cc.
#include <unistd.h>

#include <cctype>
#include <climits>
#include <set>

#include "base/sys.h"
#include "spec/config.h"
#include "spec/json_reader.h"

namespace zrun::spec {

namespace {

using detail::child;
using detail::get;
using detail::index;
using detail::Json;
using detail::json_error;
using detail::require;

bool is_abs(const std::string& p) { return !p.empty() && p[0] == '/'; }

// runtime-spec 1.x only: "1.0.0", "1.2.0", "1.0.2-dev", ...
bool supported_version(const std::string& v) {
  if (v.size() < 3 || v.compare(0, 2, "1.") != 0) return false;
  return std::isdigit(static_cast<unsigned char>(v[2])) != 0;
}

base::Result<void> parse_caps(const Json& j, const std::string& path, Capabilities& out) {
  struct Set {
    const char* key;
    std::vector<int>* dst;
  } sets[] = {{"bounding", &out.bounding},
              {"effective", &out.effective},
              {"inheritable", &out.inheritable},
              {"permitted", &out.permitted},
              {"ambient", &out.ambient}};
  for (auto& s : sets) {
    std::vector<std::string> names;
    ZRUN_TRY(get(j, s.key, path, names));
    for (size_t i = 0; i < names.size(); ++i) {
      auto cap = parse_capability(names[i]);
      if (!cap) return json_error(index(child(path, s.key), i), cap.error().msg);
      s.dst->push_back(*cap);
    }
  }
  return base::ok();
}

base::Result<void> parse_rlimits(const Json& j, const std::string& path, std::vector<Rlimit>& out) {
  ZRUN_TRY(detail::get_objects(
      j, "rlimits", path, out,
      [](const Json& e, const std::string& p, Rlimit& r) -> base::Result<void> {
        ZRUN_TRY(require(e, "type", p, r.type));
        auto res = parse_rlimit(r.type);
        if (!res) return json_error(child(p, "type"), res.error().msg);
        r.resource = *res;
        ZRUN_TRY(require(e, "hard", p, r.hard));
        ZRUN_TRY(require(e, "soft", p, r.soft));
        if (r.soft > r.hard)
          return base::Result<void>(json_error(p, "soft limit " + std::to_string(r.soft) +
                                                      " exceeds hard limit " +
                                                      std::to_string(r.hard)));
        return base::ok();
      }));
  std::set<int> seen;
  for (size_t i = 0; i < out.size(); ++i)
    if (!seen.insert(out[i].resource).second)
      return json_error(child(index(child(path, "rlimits"), i), "type"),
                        "duplicate rlimit \"" + out[i].type + "\"");
  return base::ok();
}

base::Result<void> parse_user(const Json& j, const std::string& path, User& out) {
  ZRUN_TRY(get(j, "uid", path, out.uid));
  ZRUN_TRY(get(j, "gid", path, out.gid));
  ZRUN_TRY(get(j, "umask", path, out.umask));
  ZRUN_TRY(get(j, "additionalGids", path, out.additional_gids));
  ZRUN_TRY(get(j, "username", path, out.username));
  return base::ok();
}

base::Result<void> parse_process(const Json& j, const std::string& path, Process& out) {
  ZRUN_TRY(get(j, "terminal", path, out.terminal));
  if (auto cs = ZRUN_TRY(detail::object_at(j, "consoleSize", path))) {
    ConsoleSize size;
    ZRUN_TRY(require(*cs, "height", child(path, "consoleSize"), size.height));
    ZRUN_TRY(require(*cs, "width", child(path, "consoleSize"), size.width));
    out.console_size = size;
  }
  if (auto u = ZRUN_TRY(detail::object_at(j, "user", path)))
    ZRUN_TRY(parse_user(*u, child(path, "user"), out.user));
  ZRUN_TRY(get(j, "args", path, out.args));
  ZRUN_TRY(get(j, "commandLine", path, out.command_line));
  if (out.args.empty() && out.command_line.empty())
    return json_error(child(path, "args"), "must not be empty");
  ZRUN_TRY(get(j, "env", path, out.env));
  ZRUN_TRY(get(j, "cwd", path, out.cwd));
  if (!is_abs(out.cwd)) return json_error(child(path, "cwd"), "must be an absolute path");
  if (auto c = ZRUN_TRY(detail::object_at(j, "capabilities", path))) {
    Capabilities caps;
    ZRUN_TRY(parse_caps(*c, child(path, "capabilities"), caps));
    out.capabilities = std::move(caps);
  }
  ZRUN_TRY(parse_rlimits(j, path, out.rlimits));
  ZRUN_TRY(get(j, "noNewPrivileges", path, out.no_new_privileges));
  ZRUN_TRY(get(j, "apparmorProfile", path, out.apparmor_profile));
  ZRUN_TRY(get(j, "oomScoreAdj", path, out.oom_score_adj));
  if (out.oom_score_adj && (*out.oom_score_adj < -1000 || *out.oom_score_adj > 1000))
    return json_error(child(path, "oomScoreAdj"), "must be between -1000 and 1000");
  ZRUN_TRY(get(j, "selinuxLabel", path, out.selinux_label));
  return base::ok();
}

base::Result<void> parse_mount_idmaps(const Json& j, const std::string& path, const char* key,
                                      std::vector<Mount::IdMap>& out) {
  return detail::get_objects(
      j, key, path, out,
      [](const Json& e, const std::string& p, Mount::IdMap& m) -> base::Result<void> {
        ZRUN_TRY(require(e, "containerID", p, m.container_id));
        ZRUN_TRY(require(e, "hostID", p, m.host_id));
        ZRUN_TRY(require(e, "size", p, m.size));
        if (m.size == 0)
          return base::Result<void>(json_error(child(p, "size"), "must be greater than 0"));
        return base::ok();
      });
}

base::Result<void> parse_mount(const Json& j, const std::string& path, Mount& m) {
  ZRUN_TRY(require(j, "destination", path, m.destination));
  if (m.destination.empty()) return json_error(child(path, "destination"), "must not be empty");
  // runc resolves a relative destination against "/" (filepath.Join), so do we.
  m.destination = base::clean_path(is_abs(m.destination) ? m.destination : "/" + m.destination);
  ZRUN_TRY(get(j, "source", path, m.source));
  ZRUN_TRY(get(j, "type", path, m.type));
  ZRUN_TRY(get(j, "options", path, m.options));
  ZRUN_TRY(parse_mount_idmaps(j, path, "uidMappings", m.uid_mappings));
  ZRUN_TRY(parse_mount_idmaps(j, path, "gidMappings", m.gid_mappings));
  return base::ok();
}

base::Result<void> parse_hook(const Json& j, const std::string& path, Hook& h) {
  ZRUN_TRY(require(j, "path", path, h.path));
  if (!is_abs(h.path)) return json_error(child(path, "path"), "must be an absolute path");
  ZRUN_TRY(get(j, "args", path, h.args));
  ZRUN_TRY(get(j, "env", path, h.env));
  ZRUN_TRY(get(j, "timeout", path, h.timeout));
  if (h.timeout && *h.timeout <= 0)
    return json_error(child(path, "timeout"), "must be greater than 0");
  return base::ok();
}

base::Result<void> parse_hooks(const Json& j, const std::string& path, Hooks& out) {
  struct Phase {
    const char* key;
    std::vector<Hook>* dst;
  } phases[] = {{"prestart", &out.prestart},
                {"createRuntime", &out.create_runtime},
                {"createContainer", &out.create_container},
                {"startContainer", &out.start_container},
                {"poststart", &out.poststart},
                {"poststop", &out.poststop}};
  for (auto& ph : phases) ZRUN_TRY(detail::get_objects(j, ph.key, path, *ph.dst, parse_hook));
  return base::ok();
}

// Checks that need more than one section (runc's libcontainer/configs/validate).
base::Result<void> validate(const Spec& s) {
  const Linux* lx = s.linux_ ? &*s.linux_ : nullptr;
  bool uts = lx && lx->has_ns(NsType::kUts);
  if (!s.hostname.empty() && !uts)
    return json_error(".hostname", "setting the hostname requires a UTS namespace");
  if (!s.domainname.empty() && !uts)
    return json_error(".domainname", "setting the domainname requires a UTS namespace");
  return base::ok();
}

std::string absolute_bundle(const std::string& bundle) {
  if (is_abs(bundle)) return base::clean_path(bundle);
  char buf[PATH_MAX];
  std::string cwd = ::getcwd(buf, sizeof(buf)) ? buf : "/";
  return base::clean_path(base::join_path(cwd, bundle.empty() ? "." : bundle));
}

base::Result<Spec> parse_spec(const Json& j, const std::string& bundle) {
  if (!j.is_object()) return base::make_error("config.json: expected a JSON object");
  Spec s;
  ZRUN_TRY(require(j, "ociVersion", "", s.oci_version));
  if (!supported_version(s.oci_version))
    return json_error(".ociVersion", "unsupported version \"" + s.oci_version + "\" (want 1.x)");
  auto root = ZRUN_TRY(detail::object_at(j, "root", ""));
  if (!root) return json_error(".root", "missing required field");
  ZRUN_TRY(require(*root, "path", ".root", s.root.path));
  if (s.root.path.empty()) return json_error(".root.path", "must not be empty");
  ZRUN_TRY(get(*root, "readonly", ".root", s.root.readonly));
  s.root.path = is_abs(s.root.path)
                    ? base::clean_path(s.root.path)
                    : base::clean_path(base::join_path(absolute_bundle(bundle), s.root.path));
  if (auto p = ZRUN_TRY(detail::object_at(j, "process", ""))) {
    Process proc;
    ZRUN_TRY(parse_process(*p, ".process", proc));
    s.process = std::move(proc);
  }
  ZRUN_TRY(get(j, "hostname", "", s.hostname));
  ZRUN_TRY(get(j, "domainname", "", s.domainname));
  ZRUN_TRY(detail::get_objects(j, "mounts", "", s.mounts, parse_mount));
  if (auto h = ZRUN_TRY(detail::object_at(j, "hooks", "")))
    ZRUN_TRY(parse_hooks(*h, ".hooks", s.hooks));
  ZRUN_TRY(get(j, "annotations", "", s.annotations));
  if (auto l = ZRUN_TRY(detail::object_at(j, "linux", ""))) {
    Linux lx;
    ZRUN_TRY(detail::parse_linux(*l, ".linux", lx));
    s.linux_ = std::move(lx);
  }
  ZRUN_TRY(validate(s));
  return s;
}

}  // namespace

namespace detail {
base::Result<void> parse_process_object(const Json& j, const std::string& path, Process& out) {
  return parse_process(j, path, out);
}
}  // namespace detail

namespace {

// Parse a JSON document that is not config.json itself; errors say `what` instead.
template <class T, class F>
base::Result<T> parse_fragment(const std::string& text, const std::string& what, F parse) {
  auto rename = [&](base::Error e) {
    if (e.msg.rfind("config.json: ", 0) == 0) e.msg = what + ": " + e.msg.substr(13);
    return e;
  };
  try {
    Json j = Json::parse(text);
    if (!j.is_object()) return base::make_error(what + ": expected a JSON object");
    T out{};
    auto r = parse(j, "", out);
    if (!r) return rename(std::move(r).error());
    return out;
  } catch (const std::exception& e) {
    return base::make_error(what + ": " + e.what());
  }
}

}  // namespace

base::Result<Process> parse_process(const std::string& json_text) {
  return parse_fragment<Process>(json_text, "process.json", detail::parse_process_object);
}

base::Result<Resources> parse_resources(const std::string& json_text) {
  return parse_fragment<Resources>(json_text, "resources", detail::parse_resources_object);
}

base::Result<Spec> parse_config(const std::string& json_text, const std::string& bundle) {
  try {
    Json j = Json::parse(json_text);
    return parse_spec(j, bundle);
  } catch (const Json::exception& e) {
    // "[json.exception.parse_error.101] parse error at line 1, ..." -> drop the tag.
    std::string what = e.what();
    if (auto p = what.find("] "); what.rfind("[json.exception", 0) == 0 && p != std::string::npos)
      what.erase(0, p + 2);
    return base::make_error("config.json: " + what);
  } catch (const std::exception& e) {
    return base::make_error(std::string("config.json: ") + e.what());
  }
}

base::Result<Spec> load_bundle(const std::string& bundle) {
  std::string dir = absolute_bundle(bundle);
  auto text = base::read_file(base::join_path(dir, "config.json"));
  if (!text) return base::context(std::move(text).error(), "load bundle");
  return parse_config(*text, dir);
}

}  // namespace zrun::spec
