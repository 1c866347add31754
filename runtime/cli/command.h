// Subcommand registry: each runtime/cli/cmd_*.cc registers itself with ZRUN_COMMAND, so
// commands live in their own files and main.cc never lists them.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"

namespace zrun::cli {

// Flags every command sees (runc's global flags).
struct GlobalOptions {
  std::string root = "/run/zrun";
  std::string log;  // --log PATH
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;
  std::string rootless = "auto";
};

// A command's setup adds its subcommand to `app` and returns the action to run when that
// subcommand was chosen. The action returns the process exit code; an Error is printed as
// "zrun: <msg>" (or logged as JSON) and exits 1.
using Action = std::function<base::Result<int>()>;
using Setup = std::function<Action(CLI::App& app, const GlobalOptions& g)>;

// Exit code used when an Action returns an error (exec uses 255, as runc does, so callers
// can tell zrun's failure from the process's own exit code).
inline int g_error_exit_code = 1;

struct CommandEntry {
  const char* name;
  int order;  // position in --help
  Setup setup;
};

std::vector<CommandEntry>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(const char* name, int order, Setup s) {
    command_registry().push_back({name, order, std::move(s)});
  }
};

}  // namespace zrun::cli

#define ZRUN_COMMAND_CAT2(a, b) a##b
#define ZRUN_COMMAND_CAT(a, b) ZRUN_COMMAND_CAT2(a, b)
// ZRUN_COMMAND("name", order, [](CLI::App& app, const GlobalOptions& g) -> Action {...});
#define ZRUN_COMMAND(name, order, ...)                                                        \
  static ::zrun::cli::CommandRegistrar ZRUN_COMMAND_CAT(zrun_cmd_reg_, __LINE__)(name, order, \
                                                                                 __VA_ARGS__)
