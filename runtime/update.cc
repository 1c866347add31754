#include "runtime/update.h"

#include <nlohmann/json.hpp>

#include "base/sys.h"

namespace zrun::rt {

using base::Result;
using Json = nlohmann::json;

namespace {

// RFC 7396 merge patch, except that null keeps the saved value (OCI's "unset").
void merge_into(Json& dst, const Json& patch) {
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) continue;
    if (it.value().is_object() && dst.contains(it.key()) && dst[it.key()].is_object())
      merge_into(dst[it.key()], it.value());
    else
      dst[it.key()] = it.value();
  }
}

}  // namespace

Result<std::string> merge_resources_patch(const std::string& config_text,
                                          const std::string& patch_json) {
  Json config, patch;
  try {
    config = Json::parse(config_text);
  } catch (const Json::exception& e) {
    return base::make_error(std::string("parse saved config.json: ") + e.what());
  }
  try {
    patch = Json::parse(patch_json);
  } catch (const Json::exception& e) {
    return base::make_error(std::string("parse resources: ") + e.what());
  }
  if (!patch.is_object()) return base::make_error("resources: not a JSON object");
  if (!config.is_object()) return base::make_error("saved config.json: not a JSON object");
  Json& lx = config["linux"];
  if (lx.is_null()) lx = Json::object();
  if (!lx.is_object()) return base::make_error("saved config.json: .linux is not an object");
  Json& res = lx["resources"];
  if (!res.is_object()) res = Json::object();
  merge_into(res, patch);
  return config.dump(2) + "\n";
}

Result<void> update_resources(Container& ct, const spec::Resources& r,
                              const std::string& patch_json) {
  auto* cg = ZRUN_TRY(ct.cgroup());
  if (!cg) return base::make_error("container has no cgroup");
  std::string path = ct.dir() + "/config.json";
  std::string saved = ZRUN_TRY_CTX(base::read_file(path), "read saved config");
  std::string merged = ZRUN_TRY_CTX(merge_resources_patch(saved, patch_json), "save resources");
  if (r.devices.empty()) {
    ZRUN_TRY(cg->update(r));
  } else {
    // The nodes of linux.devices stay usable whatever the new rules say (as on create).
    auto s = ZRUN_TRY_CTX(ct.spec(), "read saved config");
    ZRUN_TRY(cg->update(r, s.linux_ ? &s.linux_->devices : nullptr));
  }
  ZRUN_TRY_CTX(base::write_file_atomic(path, merged, 0600), "save resources");
  return base::ok();
}

}  // namespace zrun::rt
