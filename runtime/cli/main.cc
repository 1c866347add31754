// zrun's entry point: global flags (runc's), logging set-up, dispatch to the registered
// subcommands (runtime/cli/cmd_*.cc). Errors print as "zrun: <msg>" and exit 1; with
// --log/--log-format json they are also logged as runc-style JSON lines for engines.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "base/log.h"
#include "base/sys.h"
#include "runtime/cli/command.h"
#include "runtime/cli/version.h"

namespace zrun::cli {

std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> r;
  return r;
}

namespace {

void report_error(const base::Error& e) {
  std::string text = e.text();
  const auto& cfg = base::log_config();
  base::log_error(text);
  // Engines read the log file; people read stderr: say it in both places.
  if (cfg.fd != 2) {
    std::string line = "zrun: " + text + "\n";
    ssize_t r = ::write(2, line.data(), line.size());
    (void)r;
  }
}

int run_main(int argc, char** argv) {
  CLI::App app{"zrun: an OCI container runtime (runc/crun compatible command line)", "zrun"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("-v,--version", version_text());
  GlobalOptions g;
  if (::geteuid() != 0) {
    // Rootless: the user's runtime dir, as runc and crun (/run/zrun is root's).
    const char* xdg = ::getenv("XDG_RUNTIME_DIR");
    g.root = (xdg && *xdg) ? std::string(xdg) + "/zrun"
                           : "/run/user/" + std::to_string(::geteuid()) + "/zrun";
  }
  app.add_option("--root", g.root, "directory for container state (tmpfs)")->capture_default_str();
  app.add_option("--log", g.log, "log file (default: stderr)");
  app.add_option("--log-format", g.log_format, "log format: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_flag("--debug", g.debug, "enable debug logging");
  app.add_flag("--systemd-cgroup", g.systemd_cgroup,
               "use systemd for cgroups (needs a running systemd)");
  app.add_option("--rootless", g.rootless,
                 "true, false or auto (auto: rootless unless euid 0 with the full id range); "
                 "rootless uses cgroups only where delegated")
      ->check(CLI::IsMember({"true", "false", "auto"}));

  auto& reg = command_registry();
  std::sort(reg.begin(), reg.end(), [](auto& a, auto& b) { return a.order < b.order; });
  std::vector<std::pair<CLI::App*, Action>> actions;
  for (auto& c : reg) {
    Action a = c.setup(app, g);
    CLI::App* sub = app.get_subcommand(c.name);
    actions.emplace_back(sub, std::move(a));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::string msg = e.what();
    std::fprintf(stderr, "zrun: %s\n", msg.c_str());
    std::fprintf(stderr, "Run 'zrun --help' for usage.\n");
    return 1;
  }

  // Commands may chdir (create works from the bundle): pin --root to an absolute path.
  if (!g.root.empty() && g.root[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof(cwd))) g.root = base::join_path(cwd, g.root);
  }

  base::LogConfig lc;
  lc.format = g.log_format == "json" ? base::LogFormat::kJson : base::LogFormat::kText;
  lc.min_level = g.debug ? base::LogLevel::kDebug : base::LogLevel::kWarn;
  if (!g.log.empty()) {
    auto fd = base::open_file(g.log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (!fd) {
      std::fprintf(stderr, "zrun: --log: %s\n", fd.error().text().c_str());
      return 1;
    }
    lc.fd = fd->release();  // lives for the process
  }
  base::log_configure(lc);

  for (auto& [sub, action] : actions) {
    if (sub && sub->parsed()) {
      auto r = action();
      if (!r) {
        report_error(r.error());
        return g_error_exit_code;
      }
      return *r;
    }
  }
  return 1;
}

}  // namespace
}  // namespace zrun::cli

int main(int argc, char** argv) {
  try {
    return zrun::cli::run_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zrun: internal error: %s\n", e.what());
    return 1;
  }
}
