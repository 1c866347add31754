// The OCI features document (runtime-spec features.md) that `zrun features` prints.
#pragma once

#include <string>
#include <vector>

namespace zrun::spec {

// Facts about the host that change what the document says.
struct HostFacts {
  bool apparmor = false;  // /sys/module/apparmor/parameters/enabled == "Y"
  bool selinux = false;   // /sys/fs/selinux/enforce exists
  // SECCOMP_FILTER_FLAG_* names seccomp(2) accepts here (probed; zrun calls seccomp(2)
  // itself, so libseccomp's version does not limit them). Default: the 4.17+ set.
  std::vector<std::string> seccomp_flags = {
      "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"};
};

HostFacts detect_host_facts();

// Pretty-printed JSON (4-space indent, like runc), no trailing newline.
std::string features_json(const HostFacts& facts);
inline std::string features_json() { return features_json(detect_host_facts()); }

}  // namespace zrun::spec
