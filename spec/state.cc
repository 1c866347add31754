#include "spec/state.h"

#include <nlohmann/json.hpp>

#include "spec/json_reader.h"

namespace zrun::spec {

std::string state_to_json(const State& s, bool pretty) {
  nlohmann::ordered_json j = {{"ociVersion", s.oci_version},
                              {"id", s.id},
                              {"status", s.status},
                              {"pid", s.pid},
                              {"bundle", s.bundle}};
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  return pretty ? j.dump(2) : j.dump();
}

base::Result<State> state_from_json(const std::string& text) {
  using detail::get;
  using detail::require;
  auto fail = [](const base::Error& e) {
    // The reader names "config.json"; this document is a state.
    std::string m = e.msg;
    if (m.rfind("config.json: ", 0) == 0) m = "state: " + m.substr(13);
    return base::make_error(m);
  };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return base::make_error("state: invalid JSON");
  State s;
  for (auto r : {require(j, "ociVersion", "", s.oci_version), require(j, "id", "", s.id),
                 require(j, "status", "", s.status), get(j, "pid", "", s.pid),
                 get(j, "bundle", "", s.bundle), get(j, "annotations", "", s.annotations)})
    if (!r) return fail(r.error());
  return s;
}

}  // namespace zrun::spec
