// The cgroup v2 device filter generator (no root): the instruction shape and jump offsets,
// rule order (last match wins, default deny), access subset/intersection semantics, the
// early end at a catch-all rule, and errors. The generated programs are run by a small
// interpreter of the instructions the generator emits and compared with
// device_rules_allow() over many requests, including zrun's default allow-list.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "cgroups/device_filter.h"
#include "cgroups/resources.h"

namespace zrun::cg {
namespace {

using spec::DeviceRule;

constexpr uint32_t M = BPF_DEVCG_ACC_MKNOD, R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE;

DeviceRule rule(bool allow, const char* type, std::optional<int64_t> major,
                std::optional<int64_t> minor, const char* access) {
  return DeviceRule{allow, type, major, minor, access};
}

// Runs `prog` on a bpf_cgroup_dev_ctx like the kernel would (for the opcodes the
// generator emits; anything else fails the test). Returns r0.
int64_t run(const std::vector<bpf_insn>& prog, char type, uint32_t major, uint32_t minor,
            uint32_t access) {
  bpf_cgroup_dev_ctx ctx{};
  ctx.access_type = (access << 16) | (type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
  ctx.major = major;
  ctx.minor = minor;
  uint64_t reg[11] = {};
  reg[1] = reinterpret_cast<uintptr_t>(&ctx);
  for (size_t pc = 0, steps = 0; pc < prog.size() && steps < 100000; ++pc, ++steps) {
    const bpf_insn& i = prog[pc];
    uint64_t src = BPF_SRC(i.code) == BPF_K ? static_cast<uint64_t>(static_cast<int64_t>(i.imm))
                                            : reg[i.src_reg];
    switch (BPF_CLASS(i.code)) {
      case BPF_LDX: {
        EXPECT_EQ(i.code, BPF_LDX | BPF_W | BPF_MEM);
        EXPECT_EQ(i.src_reg, 1);
        EXPECT_TRUE(i.off >= 0 && i.off + 4 <= static_cast<int>(sizeof ctx) && i.off % 4 == 0);
        uint32_t v;
        std::memcpy(&v, reinterpret_cast<const char*>(&ctx) + i.off, 4);
        reg[i.dst_reg] = v;
        break;
      }
      case BPF_ALU: {
        uint32_t d = static_cast<uint32_t>(reg[i.dst_reg]), s = static_cast<uint32_t>(src);
        switch (BPF_OP(i.code)) {
          case BPF_AND:
            d &= s;
            break;
          case BPF_RSH:
            d >>= s;
            break;
          case BPF_MOV:
            d = s;
            break;
          default:
            ADD_FAILURE() << "alu op " << int(i.code);
            return -1;
        }
        reg[i.dst_reg] = d;  // 32-bit ops zero the upper half
        break;
      }
      case BPF_ALU64:
        EXPECT_EQ(BPF_OP(i.code), BPF_MOV);
        reg[i.dst_reg] = src;
        break;
      case BPF_JMP: {
        uint8_t op = BPF_OP(i.code);
        if (op == BPF_EXIT) return static_cast<int64_t>(reg[0]);
        bool take = op == BPF_JNE   ? reg[i.dst_reg] != src
                    : op == BPF_JEQ ? reg[i.dst_reg] == src
                                    : (ADD_FAILURE() << "jmp op " << int(op), false);
        EXPECT_GE(i.off, 0) << "backward jump";
        if (take) pc += i.off;
        break;
      }
      default:
        ADD_FAILURE() << "opcode " << int(i.code);
        return -1;
    }
  }
  ADD_FAILURE() << "program ran off its end";
  return -1;
}

std::vector<bpf_insn> program(const std::vector<DeviceRule>& rules) {
  auto p = device_filter_program(rules);
  EXPECT_TRUE(p.ok()) << p.error().text();
  return p.ok() ? *p : std::vector<bpf_insn>{};
}

const char* kPrologue =
    "r2 = *(u32 *)(r1 +0)\n"
    "w2 &= 65535\n"
    "r3 = *(u32 *)(r1 +0)\n"
    "w3 >>= 16\n"
    "r4 = *(u32 *)(r1 +4)\n"
    "r5 = *(u32 *)(r1 +8)\n";

TEST(DeviceFilter, InstructionShapeLastRuleFirst) {
  // The spec's order: deny all, allow c 1:3 rwm, allow b 8:* r.
  auto p = program({rule(false, "a", std::nullopt, std::nullopt, "rwm"),
                    rule(true, "c", 1, 3, "rwm"), rule(true, "b", 8, std::nullopt, "r")});
  EXPECT_EQ(device_filter_listing(p),
            std::string(kPrologue) +
                // b 8:* r (the last rule) first: type, access ⊆ r, major.
                "if r2 != 1 goto +6\n"
                "w1 = w3\n"
                "w1 &= 2\n"
                "if r1 != r3 goto +3\n"
                "if r4 != 8 goto +2\n"
                "r0 = 1\n"
                "exit\n"
                // c 1:3 rwm: no access check needed.
                "if r2 != 2 goto +4\n"
                "if r4 != 1 goto +3\n"
                "if r5 != 3 goto +2\n"
                "r0 = 1\n"
                "exit\n"
                // deny a *:* rwm matches everything: the program ends here, without the
                // default-deny tail (unreachable code fails verification).
                "r0 = 0\n"
                "exit\n");
}

TEST(DeviceFilter, NoCatchAllEndsInDefaultDeny) {
  auto p = program({rule(false, "c", 1, 3, "w")});
  EXPECT_EQ(device_filter_listing(p), std::string(kPrologue) +
                                          "if r2 != 2 goto +7\n"
                                          "w1 = w3\n"
                                          "w1 &= 4\n"
                                          "if r1 == 0 goto +4\n"  // deny: any requested bit
                                          "if r4 != 1 goto +3\n"
                                          "if r5 != 3 goto +2\n"
                                          "r0 = 0\n"
                                          "exit\n"
                                          "r0 = 0\n"
                                          "exit\n");
  EXPECT_EQ(device_filter_listing(program({})), std::string(kPrologue) + "r0 = 0\nexit\n");
}

TEST(DeviceFilter, RulesBeforeACatchAllAreDropped) {
  auto p = program(
      {rule(true, "c", 1, 3, "rwm"), rule(true, "a", -1, -1, ""), rule(false, "c", 1, 5, "r")});
  // Prologue, the deny block (8), the allow-all block (2), nothing else.
  EXPECT_EQ(p.size(), 6u + 8u + 2u);
  EXPECT_EQ(run(p, 'c', 1, 3, R), 1);
  EXPECT_EQ(run(p, 'c', 1, 5, R | W), 0);
  EXPECT_EQ(run(p, 'c', 1, 5, W), 1);
}

TEST(DeviceFilter, LastMatchingRuleWins) {
  std::vector<DeviceRule> rules = {rule(true, "a", std::nullopt, std::nullopt, "rwm"),
                                   rule(false, "c", 1, 3, "rwm"), rule(true, "c", 1, 3, "r")};
  auto p = program(rules);
  EXPECT_EQ(run(p, 'c', 1, 3, R), 1);      // the last rule allows reading
  EXPECT_EQ(run(p, 'c', 1, 3, W), 0);      // the deny before it decides writes
  EXPECT_EQ(run(p, 'c', 1, 3, R | W), 0);  // r ⊉ rw: not the allow; the deny matches
  EXPECT_EQ(run(p, 'c', 1, 5, R | W), 1);  // the first rule
  EXPECT_EQ(run(p, 'b', 1, 3, W), 1);      // the c rules do not match a block device
  // Reversed: the deny is last and wins for every access.
  std::vector<DeviceRule> rev = {rules[0], rules[2], rules[1]};
  EXPECT_EQ(run(program(rev), 'c', 1, 3, R), 0);
}

TEST(DeviceFilter, PartialAccess) {
  // Default deny; allow /dev/zero read-only; deny writing /dev/null in an allowed range.
  std::vector<DeviceRule> rules = {
      rule(false, "a", std::nullopt, std::nullopt, "rwm"), rule(true, "c", 1, 5, "r"),
      rule(true, "c", 1, std::nullopt, "rw"), rule(false, "c", 1, 3, "w")};
  auto p = program(rules);
  EXPECT_EQ(run(p, 'c', 1, 5, R), 1);
  EXPECT_EQ(run(p, 'c', 1, 5, M), 0);      // not in any allow rule's access
  EXPECT_EQ(run(p, 'c', 1, 3, R), 1);      // c 1:* rw allows; the w deny does not touch r
  EXPECT_EQ(run(p, 'c', 1, 3, W), 0);      // denied by the last rule
  EXPECT_EQ(run(p, 'c', 1, 3, R | W), 0);  // O_RDWR: the deny takes its w bit
  EXPECT_EQ(run(p, 'c', 1, 9, R | W), 1);
  EXPECT_EQ(run(p, 'c', 1, 9, R | W | M), 0);
}

TEST(DeviceFilter, DefaultAllowListAfterDenyAll) {
  // What create attaches for the usual spec (deny all) plus one linux.devices node.
  std::vector<spec::Device> devs = {{"/dev/fuse", 'c', 10, 229}};
  auto rules =
      device_rules_with_defaults({rule(false, "a", std::nullopt, std::nullopt, "rwm")}, &devs);
  auto p = program(rules);
  for (auto [maj, min] : std::vector<std::pair<uint32_t, uint32_t>>{{1, 3},
                                                                    {1, 5},
                                                                    {1, 7},
                                                                    {1, 8},
                                                                    {1, 9},
                                                                    {5, 0},
                                                                    {5, 1},
                                                                    {5, 2},
                                                                    {136, 0},
                                                                    {136, 7},
                                                                    {10, 229}})
    EXPECT_EQ(run(p, 'c', maj, min, R | W), 1) << maj << ":" << min;
  EXPECT_EQ(run(p, 'c', 10, 200, R), 0);  // /dev/tun: not listed
  EXPECT_EQ(run(p, 'b', 8, 0, R), 0);     // a disk
  EXPECT_EQ(run(p, 'b', 8, 0, M), 1);     // mknod of any node is allowed (runc's list)
  EXPECT_EQ(run(p, 'c', 4, 1, M), 1);
  EXPECT_EQ(run(p, 'c', 4, 1, M | R), 0);
}

// The program agrees with the reference evaluation on random rule sets and requests.
TEST(DeviceFilter, MatchesReferenceOnRandomRules) {
  std::mt19937 rng(42);
  const char* types[] = {"a", "c", "b"};
  const char* accesses[] = {"r", "w", "m", "rw", "rm", "wm", "rwm", ""};
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (int round = 0; round < 300; ++round) {
    std::vector<DeviceRule> rules;
    int n = pick(8);
    for (int i = 0; i < n; ++i) {
      std::optional<int64_t> maj = pick(3) ? std::optional<int64_t>(pick(3)) : std::nullopt;
      std::optional<int64_t> min = pick(3) ? std::optional<int64_t>(pick(3)) : std::nullopt;
      if (pick(6) == 0) maj = -1;
      rules.push_back(rule(pick(2), types[pick(3)], maj, min, accesses[pick(8)]));
    }
    auto p = program(rules);
    for (char type : {'c', 'b'})
      for (uint32_t maj = 0; maj < 3; ++maj)
        for (uint32_t min = 0; min < 3; ++min)
          for (uint32_t acc = 1; acc < 8; ++acc)
            ASSERT_EQ(run(p, type, maj, min, acc) == 1,
                      device_rules_allow(rules, type, maj, min, acc))
                << "round " << round << " " << type << " " << maj << ":" << min << " acc " << acc
                << "\n"
                << device_filter_listing(p);
  }
}

TEST(DeviceFilter, DenyNothing) {
  auto all = rule(true, "a", std::nullopt, std::nullopt, "rwm");
  EXPECT_TRUE(device_rules_deny_nothing({all}));
  EXPECT_TRUE(device_rules_deny_nothing(device_rules_with_defaults({all}, nullptr)));
  EXPECT_TRUE(
      device_rules_deny_nothing({rule(false, "c", 1, 3, "r"), all, rule(true, "c", 1, 3, "r")}));
  EXPECT_FALSE(device_rules_deny_nothing({}));
  EXPECT_FALSE(device_rules_deny_nothing({all, rule(false, "c", 1, 3, "w")}));
  EXPECT_FALSE(device_rules_deny_nothing({all, rule(false, "b", 7, std::nullopt, "m")}));
  // Allowing c and b separately covers everything; leaving one number out does not.
  EXPECT_TRUE(
      device_rules_deny_nothing({rule(true, "c", -1, -1, "rwm"), rule(true, "b", -1, -1, "")}));
  EXPECT_FALSE(
      device_rules_deny_nothing({rule(true, "c", -1, -1, "rwm"), rule(true, "b", 8, -1, "")}));
  EXPECT_FALSE(device_rules_deny_nothing(
      device_rules_with_defaults({rule(false, "a", std::nullopt, std::nullopt, "rwm")}, nullptr)));
}

TEST(DeviceFilter, Errors) {
  auto bad = [](DeviceRule r) {
    auto p = device_filter_program({rule(true, "a", std::nullopt, std::nullopt, "rwm"), r});
    return p.ok() ? std::string("ok") : p.error().text();
  };
  EXPECT_EQ(bad(rule(true, "u", 1, 3, "r")),
            "device rule 1 (allow u 1:3 r): type \"u\" is not a, b or c");
  EXPECT_EQ(bad(rule(false, "c", 1, 3, "rx")),
            "device rule 1 (deny c 1:3 rx): access \"rx\" is not a subset of \"rwm\"");
  EXPECT_EQ(bad(rule(true, "c", int64_t{1} << 32, 3, "r")),
            "device rule 1 (allow c 4294967296:3 r): major 4294967296 is out of range");
  // Rules hidden by a later catch-all are still checked.
  auto hidden = device_filter_program(
      {rule(true, "x", std::nullopt, std::nullopt, ""), rule(true, "a", -1, -1, "rwm")});
  ASSERT_FALSE(hidden.ok());
  EXPECT_NE(hidden.error().msg.find("device rule 0"), std::string::npos) << hidden.error().msg;
  EXPECT_EQ(*device_access_bits(""), M | R | W);
  EXPECT_EQ(*device_access_bits("mr"), M | R);
}

}  // namespace
}  // namespace zrun::cg
