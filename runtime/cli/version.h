#pragma once
#include <string>

namespace zrun::cli {
// "zrun version X", the OCI spec version, and the compiled-in features.
std::string version_text();
}  // namespace zrun::cli
