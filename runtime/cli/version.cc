#include "runtime/cli/version.h"

#include <seccomp.h>

#include "cgroups/accounting.h"

namespace zrun::cli {

std::string version_text() {
  const scmp_version* v = seccomp_version();
  std::string s = "zrun version " ZRUN_VERSION "\nspec: 1.2.0\n";
  s += "+CAP +SECCOMP";
  if (v)
    s += " (libseccomp " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->micro) + ")";
  s += " +CGROUPV1 +CGROUPV2 +HYBRID";
  s += cg::acct::compiled_in() ? " +EBPF-ACCOUNTING" : " -EBPF-ACCOUNTING";
  return s;
}

}  // namespace zrun::cli
