// The quick BTF scan the accounting loader uses to find kernel type ids (kfunc, structs)
// without libbpf's full parse of /sys/kernel/btf/vmlinux.
#include <gtest/gtest.h>
#include <linux/btf.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cgroups/btf_scan.h"

namespace zrun::cg::btf {
namespace {

// A small BTF blob: [1] INT 'int', [2] STRUCT 'foo' { int a; }, [3] FUNC_PROTO (int),
// [4] FUNC 'bar', [5] STRUCT 'bar' (same name, other kind).
std::string tiny_btf() {
  std::string strs("\0int\0foo\0a\0bar\0", 15);
  auto str = [&](const char* s) { return static_cast<uint32_t>(strs.find(std::string(s) + '\0')); };
  std::vector<uint32_t> t;
  auto type = [&](uint32_t name, uint32_t kind, uint32_t vlen, uint32_t size_or_type) {
    t.insert(t.end(), {name, (kind << 24) | vlen, size_or_type});
  };
  type(str("int"), BTF_KIND_INT, 0, 4);
  t.push_back(32);  // encoding/offset/bits
  type(str("foo"), BTF_KIND_STRUCT, 1, 4);
  t.insert(t.end(), {str("a"), 1, 0});  // member: name, type, offset
  type(0, BTF_KIND_FUNC_PROTO, 1, 1);
  t.insert(t.end(), {0, 1});  // param: name, type
  type(str("bar"), BTF_KIND_FUNC, 0, 3);
  type(str("bar"), BTF_KIND_STRUCT, 0, 0);
  btf_header h{};
  h.magic = BTF_MAGIC;
  h.version = BTF_VERSION;
  h.hdr_len = sizeof(h);
  h.type_off = 0;
  h.type_len = static_cast<uint32_t>(t.size() * 4);
  h.str_off = h.type_len;
  h.str_len = static_cast<uint32_t>(strs.size());
  std::string blob(reinterpret_cast<const char*>(&h), sizeof(h));
  blob.append(reinterpret_cast<const char*>(t.data()), t.size() * 4);
  return blob + strs;
}

TEST(BtfScan, FindsIdsByNameAndKind) {
  const Wanted w[] = {{"bar", BTF_KIND_FUNC}, {"foo", BTF_KIND_STRUCT}, {"bar", BTF_KIND_STRUCT}};
  auto ids = find_ids(tiny_btf(), w);
  ASSERT_TRUE(ids) << ids.error().text();
  EXPECT_EQ(*ids, (std::vector<uint32_t>{4, 2, 5}));
}

TEST(BtfScan, MissingNameIsAnError) {
  const Wanted w[] = {{"ba", BTF_KIND_FUNC}};  // a prefix of "bar" does not match
  auto ids = find_ids(tiny_btf(), w, "tiny");
  ASSERT_FALSE(ids);
  EXPECT_NE(ids.error().text().find("no type `ba`"), std::string::npos) << ids.error().text();
  EXPECT_NE(ids.error().text().find("`tiny`"), std::string::npos) << ids.error().text();
}

TEST(BtfScan, TruncatedBlobIsAClearError) {
  std::string blob = tiny_btf();
  const Wanted w[] = {{"bar", BTF_KIND_FUNC}};
  for (size_t len : {size_t{0}, size_t{10}, sizeof(btf_header) + 20, blob.size() - 1}) {
    auto ids = find_ids(std::string_view(blob).substr(0, len), w);
    ASSERT_FALSE(ids) << "length " << len;
    EXPECT_NE(ids.error().text().find("truncated"), std::string::npos) << ids.error().text();
  }
}

TEST(BtfScan, GarbageIsNotBtf) {
  std::string garbage(4096, 'x');
  const Wanted w[] = {{"bar", BTF_KIND_FUNC}};
  auto ids = find_ids(garbage, w);
  ASSERT_FALSE(ids);
  EXPECT_NE(ids.error().text().find("not BTF"), std::string::npos) << ids.error().text();
}

TEST(BtfScan, UnknownKindStopsTheWalk) {
  std::string blob = tiny_btf();
  // Type [1]'s info word: kind 31 does not exist.
  uint32_t info = 31u << 24;
  std::memcpy(blob.data() + sizeof(btf_header) + 4, &info, 4);
  const Wanted w[] = {{"bar", BTF_KIND_FUNC}};
  auto ids = find_ids(blob, w);
  ASSERT_FALSE(ids);
  EXPECT_NE(ids.error().text().find("unknown type kind 31"), std::string::npos)
      << ids.error().text();
}

TEST(BtfScan, MissingFileIsAnError) {
  const Wanted w[] = {{"bar", BTF_KIND_FUNC}};
  auto ids = find_ids_in_file("/nonexistent/zrun-btf", w);
  ASSERT_FALSE(ids);
  EXPECT_NE(ids.error().text().find("/nonexistent/zrun-btf"), std::string::npos);
}

// The id bpftool prints for `[ID] KIND 'name' ...` in the running kernel's BTF; 0 if none.
uint32_t bpftool_id(const std::string& kind, const std::string& name) {
  std::string cmd = "bpftool btf dump file /sys/kernel/btf/vmlinux 2>/dev/null | grep -m1 \"" +
                    kind + " '" + name + "' \"";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return 0;
  char line[512] = {};
  uint32_t id = 0;
  if (std::fgets(line, sizeof(line), p)) std::sscanf(line, "[%u]", &id);
  ::pclose(p);
  return id;
}

TEST(BtfScan, AgreesWithBpftoolOnTheRunningKernel) {
  if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0)
    GTEST_SKIP() << "kernel has no BTF (/sys/kernel/btf/vmlinux)";
  uint32_t func = bpftool_id("FUNC", "bpf_rdonly_cast");
  uint32_t task = bpftool_id("STRUCT", "task_struct");
  if (func == 0 || task == 0)
    GTEST_SKIP() << "bpftool missing or kernel without bpf_rdonly_cast (< 6.2)";
  const Wanted w[] = {{"bpf_rdonly_cast", BTF_KIND_FUNC}, {"task_struct", BTF_KIND_STRUCT}};
  auto ids = find_ids_in_file("/sys/kernel/btf/vmlinux", w);
  ASSERT_TRUE(ids) << ids.error().text();
  EXPECT_EQ((*ids)[0], func);
  EXPECT_EQ((*ids)[1], task);
}

}  // namespace
}  // namespace zrun::cg::btf
