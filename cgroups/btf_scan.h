// A purpose-built lookup of type ids in a raw BTF blob (the kernel's
// /sys/kernel/btf/vmlinux): one walk over the type records, names compared in the string
// section. No parse into an index, no dedup, and the file is mapped rather than read where
// the kernel allows it (>= 6.16): ~0.5 ms for the kernel's ~6 MB where libbpf's
// btf__load_vmlinux_btf() takes ~25 ms (docs/accounting.md "Start-up").
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace zrun::cg::btf {

// What to look for: a type of `kind` (BTF_KIND_FUNC, BTF_KIND_STRUCT, ... from
// <linux/btf.h>) named `name`.
struct Wanted {
  std::string_view name;
  uint32_t kind;
};

// The type ids of `wanted`, in order (the first match of each). An error names the first
// one missing, or what is wrong with the blob (bad magic, truncated, unknown kind).
// `what` names the blob in messages (a path).
base::Result<std::vector<uint32_t>> find_ids(std::string_view blob, std::span<const Wanted> wanted,
                                             const std::string& what = "BTF");

// find_ids() on the contents of the file at `path`.
base::Result<std::vector<uint32_t>> find_ids_in_file(const std::string& path,
                                                     std::span<const Wanted> wanted);

}  // namespace zrun::cg::btf
