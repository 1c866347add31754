// spec: write a default config.json; features: the OCI features document.
#include <fcntl.h>

#include <cstdio>

#include "base/sys.h"
#include "runtime/cli/command.h"
#include "spec/default_spec.h"
#include "spec/features.h"

namespace zrun::cli {
namespace {

using base::Result;

ZRUN_COMMAND("spec", 100, [](CLI::App& app, const GlobalOptions&) -> Action {
  auto* c = app.add_subcommand("spec", "write a default config.json into the bundle");
  auto bundle = std::make_shared<std::string>(".");
  auto rootless = std::make_shared<bool>(false);
  c->add_option("-b,--bundle", *bundle, "bundle directory")->capture_default_str();
  c->add_flag("--rootless", *rootless, "a config for a rootless container");
  return [bundle, rootless]() -> Result<int> {
    std::string path = *bundle + "/config.json";
    if (base::path_exists(path)) return base::make_error("spec: `" + path + "` already exists");
    ZRUN_TRY_CTX(base::write_file(path, spec::default_spec_json(*rootless),
                                  O_WRONLY | O_CREAT | O_EXCL, 0644),
                 "spec");
    return 0;
  };
});

ZRUN_COMMAND("features", 110, [](CLI::App& app, const GlobalOptions&) -> Action {
  app.add_subcommand("features", "print the OCI features this build supports on this host");
  return []() -> Result<int> {
    std::printf("%s\n", spec::features_json().c_str());
    return 0;
  };
});

}  // namespace
}  // namespace zrun::cli
