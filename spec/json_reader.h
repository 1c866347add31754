// Internal to spec/: typed reads out of nlohmann::json that never throw and report errors
// with the JSON path of the offending value ("config.json: .process.args: expected array
// of strings"). A missing key or an explicit null leaves the target untouched, as Go's
// encoding/json does for runc.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "base/result.h"
#include "spec/config.h"

namespace zrun::spec::detail {

using Json = nlohmann::json;

inline base::Error json_error(const std::string& path, const std::string& msg) {
  return base::make_error("config.json: " + path + ": " + msg);
}

// The value at obj[key], or nullptr when absent or null.
inline const Json* field(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

inline std::string child(const std::string& path, const char* key) { return path + "." + key; }
inline std::string index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

template <class I>
const char* int_desc() {
  if constexpr (std::is_same_v<I, uint16_t>) return "expected unsigned 16-bit integer";
  if constexpr (std::is_same_v<I, uint32_t>) return "expected unsigned 32-bit integer";
  if constexpr (std::is_same_v<I, uint64_t>) return "expected unsigned 64-bit integer";
  if constexpr (std::is_same_v<I, int32_t>) return "expected 32-bit integer";
  return "expected 64-bit integer";
}

inline base::Result<void> convert(const Json& v, const std::string& path, std::string& out) {
  if (!v.is_string()) return json_error(path, "expected string");
  out = v.get_ref<const std::string&>();
  return base::ok();
}

inline base::Result<void> convert(const Json& v, const std::string& path, bool& out) {
  if (!v.is_boolean()) return json_error(path, "expected boolean");
  out = v.get<bool>();
  return base::ok();
}

template <class I>
requires std::is_integral_v<I> base::Result<void> convert(const Json& v, const std::string& path,
                                                          I& out) {
  if (!v.is_number_integer()) return json_error(path, int_desc<I>());
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<I>::max()))
      return json_error(path, int_desc<I>());
    out = static_cast<I>(u);
    return base::ok();
  }
  auto s = v.get<int64_t>();
  if constexpr (std::is_unsigned_v<I>) {
    if (s < 0) return json_error(path, int_desc<I>());
  } else {
    if (s < std::numeric_limits<I>::min() || s > std::numeric_limits<I>::max())
      return json_error(path, int_desc<I>());
  }
  out = static_cast<I>(s);
  return base::ok();
}

template <class T>
base::Result<void> convert(const Json& v, const std::string& path, std::optional<T>& out) {
  T t{};
  auto r = convert(v, path, t);
  if (!r) return r;
  out = std::move(t);
  return base::ok();
}

inline base::Result<void> convert(const Json& v, const std::string& path,
                                  std::vector<std::string>& out) {
  if (!v.is_array()) return json_error(path, "expected array of strings");
  out.clear();
  for (const auto& e : v) {
    if (!e.is_string()) return json_error(path, "expected array of strings");
    out.push_back(e.get<std::string>());
  }
  return base::ok();
}

inline base::Result<void> convert(const Json& v, const std::string& path,
                                  std::vector<uint32_t>& out) {
  if (!v.is_array()) return json_error(path, "expected array of unsigned 32-bit integers");
  out.clear();
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t x = 0;
    auto r = convert(v[i], index(path, i), x);
    if (!r) return r;
    out.push_back(x);
  }
  return base::ok();
}

inline base::Result<void> convert(const Json& v, const std::string& path,
                                  std::map<std::string, std::string>& out) {
  if (!v.is_object()) return json_error(path, "expected object of strings");
  out.clear();
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_string()) return json_error(path, "expected object of strings");
    out[it.key()] = it.value().get<std::string>();
  }
  return base::ok();
}

// obj[key] -> out, if present.
template <class T>
base::Result<void> get(const Json& obj, const char* key, const std::string& path, T& out) {
  const Json* v = field(obj, key);
  if (!v) return base::ok();
  return convert(*v, child(path, key), out);
}

// obj[key] -> out, which must be present.
template <class T>
base::Result<void> require(const Json& obj, const char* key, const std::string& path, T& out) {
  if (!field(obj, key)) return json_error(child(path, key), "missing required field");
  return get(obj, key, path, out);
}

// obj[key] as an object (nullptr when absent); error when of another type.
inline base::Result<const Json*> object_at(const Json& obj, const char* key,
                                           const std::string& path) {
  const Json* v = field(obj, key);
  if (v && !v->is_object()) return json_error(child(path, key), "expected object");
  return v;
}

// obj[key] as an array (nullptr when absent); error when of another type.
inline base::Result<const Json*> array_at(const Json& obj, const char* key,
                                          const std::string& path) {
  const Json* v = field(obj, key);
  if (v && !v->is_array()) return json_error(child(path, key), "expected array");
  return v;
}

// Parse each element of the array obj[key] (if present) with `fn(elem, elem_path, out)`,
// requiring every element to be an object.
template <class T, class Fn>
base::Result<void> get_objects(const Json& obj, const char* key, const std::string& path,
                               std::vector<T>& out, Fn fn) {
  auto arr = array_at(obj, key, path);
  if (!arr) return std::move(arr).error();
  if (!*arr) return base::ok();
  std::string p = child(path, key);
  for (size_t i = 0; i < (*arr)->size(); ++i) {
    const Json& e = (**arr)[i];
    std::string ep = index(p, i);
    if (!e.is_object()) return json_error(ep, "expected object");
    T t{};
    auto r = fn(e, ep, t);
    if (!r) return r;
    out.push_back(std::move(t));
  }
  return base::ok();
}

// .linux (spec/parse_linux.cc).
base::Result<void> parse_linux(const Json& j, const std::string& path, Linux& out);
// A linux.resources object on its own (zrun update -r).
base::Result<void> parse_resources_object(const Json& j, const std::string& path, Resources& out);
// A process object on its own (zrun exec --process); spec/parse.cc.
base::Result<void> parse_process_object(const Json& j, const std::string& path, Process& out);

}  // namespace zrun::spec::detail
