// The OCI features document (runtime-spec features.md) that `zrun features` prints.
#pragma once

#include <string>

namespace zrun::spec {

// Facts about the host that change what the document says.
struct HostFacts {
  bool apparmor = false;  // /sys/module/apparmor/parameters/enabled == "Y"
  bool selinux = false;   // /sys/fs/selinux/enforce exists
};

HostFacts detect_host_facts();

// Pretty-printed JSON (4-space indent, like runc), no trailing newline.
std::string features_json(const HostFacts& facts);
inline std::string features_json() { return features_json(detect_host_facts()); }

}  // namespace zrun::spec
