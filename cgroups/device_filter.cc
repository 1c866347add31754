// The cgroup v2 device filter: OCI device rules -> eBPF instructions (see device_filter.h).
#include "cgroups/device_filter.h"

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <optional>

namespace zrun::cg {

using base::Result;

namespace {

// Registers after the prologue. r1 (the context pointer) is free once it has been read
// and serves as the scratch register of the access checks.
constexpr uint8_t kCtx = 1, kTmp = 1, kType = 2, kAccess = 3, kMajor = 4, kMinor = 5, kRet = 0;

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}
// dst = *(u32 *)(src + off): 32-bit loads zero-extend, so the 64-bit compares below see
// the plain u32 value.
bpf_insn load_u32(uint8_t dst, uint8_t src, int16_t off) {
  return insn(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0);
}
bpf_insn alu32_imm(uint8_t op, uint8_t dst, int32_t imm) {
  return insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
}
bpf_insn mov32_reg(uint8_t dst, uint8_t src) {
  return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0);
}
bpf_insn mov64_imm(uint8_t dst, int32_t imm) {
  return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
// Jumps are emitted with off = 0 and patched to "the next block" once its size is known.
bpf_insn jmp_imm(uint8_t op, uint8_t dst, int32_t imm) {
  return insn(BPF_JMP | op | BPF_K, dst, 0, 0, imm);
}
bpf_insn jmp_reg(uint8_t op, uint8_t dst, uint8_t src) {
  return insn(BPF_JMP | op | BPF_X, dst, src, 0, 0);
}
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

constexpr uint32_t kAllAccess = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

// A rule's wildcard-or-number, checked to fit a jump immediate (s32).
Result<std::optional<int32_t>> dev_number(const std::optional<int64_t>& v, const char* what) {
  if (!v || *v < 0) return std::optional<int32_t>();
  if (*v > INT32_MAX)
    return base::make_error(std::string(what) + " " + std::to_string(*v) + " is out of range");
  return std::optional<int32_t>(static_cast<int32_t>(*v));
}

Result<uint32_t> type_bits(const std::string& type) {
  if (type.empty() || type == "a") return 0u;  // 0 = any type
  if (type == "c") return static_cast<uint32_t>(BPF_DEVCG_DEV_CHAR);
  if (type == "b") return static_cast<uint32_t>(BPF_DEVCG_DEV_BLOCK);
  return base::make_error("type \"" + type + "\" is not a, b or c");
}

std::string rule_text(const spec::DeviceRule& r) {
  auto num = [](const std::optional<int64_t>& v) {
    return v && *v >= 0 ? std::to_string(*v) : std::string("*");
  };
  return std::string(r.allow ? "allow " : "deny ") + (r.type.empty() ? "a" : r.type) + " " +
         num(r.major) + ":" + num(r.minor) + " " + (r.access.empty() ? "rwm" : r.access);
}

// One rule's block; `catch_all` tells the caller that nothing after it can run.
Result<std::vector<bpf_insn>> rule_block(const spec::DeviceRule& r, bool& catch_all) {
  uint32_t type = ZRUN_TRY(type_bits(r.type));
  uint32_t access = ZRUN_TRY(device_access_bits(r.access));
  auto major = ZRUN_TRY(dev_number(r.major, "major"));
  auto minor = ZRUN_TRY(dev_number(r.minor, "minor"));
  std::vector<bpf_insn> b;
  if (type) b.push_back(jmp_imm(BPF_JNE, kType, static_cast<int32_t>(type)));
  if (access != kAllAccess) {
    b.push_back(mov32_reg(kTmp, kAccess));
    b.push_back(alu32_imm(BPF_AND, kTmp, static_cast<int32_t>(access)));
    // allow: requested ⊆ rule, i.e. (req & rule) == req. deny: (req & rule) != 0.
    b.push_back(r.allow ? jmp_reg(BPF_JNE, kTmp, kAccess) : jmp_imm(BPF_JEQ, kTmp, 0));
  }
  if (major) b.push_back(jmp_imm(BPF_JNE, kMajor, *major));
  if (minor) b.push_back(jmp_imm(BPF_JNE, kMinor, *minor));
  b.push_back(mov64_imm(kRet, r.allow ? 1 : 0));
  b.push_back(exit_insn());
  // Every jump goes to the instruction after this block's exit.
  for (size_t i = 0; i + 2 < b.size(); ++i)
    if (BPF_CLASS(b[i].code) == BPF_JMP) b[i].off = static_cast<int16_t>(b.size() - i - 1);
  catch_all = b.size() == 2;
  return b;
}

}  // namespace

Result<uint32_t> device_access_bits(const std::string& access) {
  if (access.empty()) return kAllAccess;
  uint32_t bits = 0;
  for (char c : access) {
    switch (c) {
      case 'r':
        bits |= BPF_DEVCG_ACC_READ;
        break;
      case 'w':
        bits |= BPF_DEVCG_ACC_WRITE;
        break;
      case 'm':
        bits |= BPF_DEVCG_ACC_MKNOD;
        break;
      default:
        return base::make_error("access \"" + access + "\" is not a subset of \"rwm\"");
    }
  }
  return bits;
}

Result<std::vector<bpf_insn>> device_filter_program(const std::vector<spec::DeviceRule>& rules) {
  std::vector<bpf_insn> p = {
      load_u32(kType, kCtx, offsetof(bpf_cgroup_dev_ctx, access_type)),
      alu32_imm(BPF_AND, kType, 0xffff),
      load_u32(kAccess, kCtx, offsetof(bpf_cgroup_dev_ctx, access_type)),
      alu32_imm(BPF_RSH, kAccess, 16),
      load_u32(kMajor, kCtx, offsetof(bpf_cgroup_dev_ctx, major)),
      load_u32(kMinor, kCtx, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  bool ended = false;  // a catch-all rule was emitted: the rest is validated, not emitted
  for (size_t i = rules.size(); i-- > 0;) {
    bool catch_all = false;
    auto block = rule_block(rules[i], catch_all);
    if (!block)
      return base::context(std::move(block).error(),
                           "device rule " + std::to_string(i) + " (" + rule_text(rules[i]) + ")");
    if (ended) continue;
    p.insert(p.end(), block->begin(), block->end());
    ended = catch_all;
  }
  if (!ended) {
    p.push_back(mov64_imm(kRet, 0));
    p.push_back(exit_insn());
  }
  return p;
}

bool device_rules_allow(const std::vector<spec::DeviceRule>& rules, char type, uint32_t major,
                        uint32_t minor, uint32_t access) {
  bool allowed = false;
  for (auto& r : rules) {
    std::string t = r.type.empty() ? "a" : r.type;
    if (t != "a" && t != std::string(1, type)) continue;
    if (r.major && *r.major >= 0 && static_cast<uint64_t>(*r.major) != major) continue;
    if (r.minor && *r.minor >= 0 && static_cast<uint64_t>(*r.minor) != minor) continue;
    auto bits = device_access_bits(r.access);
    if (!bits) continue;
    bool match = r.allow ? (access & *bits) == access : (access & *bits) != 0;
    if (match) allowed = r.allow;
  }
  return allowed;
}

bool device_rules_deny_nothing(const std::vector<spec::DeviceRule>& rules) {
  // Matching depends on a number only through equality with the rules' numbers: the
  // numbers they name and one more ("any other") cover every case.
  std::vector<uint32_t> majors = {0}, minors = {0};
  uint32_t other_major = 0, other_minor = 0;
  for (auto& r : rules) {
    if (r.major && *r.major >= 0 && *r.major <= INT32_MAX) {
      majors.push_back(static_cast<uint32_t>(*r.major));
      other_major = std::max(other_major, static_cast<uint32_t>(*r.major) + 1);
    }
    if (r.minor && *r.minor >= 0 && *r.minor <= INT32_MAX) {
      minors.push_back(static_cast<uint32_t>(*r.minor));
      other_minor = std::max(other_minor, static_cast<uint32_t>(*r.minor) + 1);
    }
  }
  majors.push_back(other_major);
  minors.push_back(other_minor);
  for (char type : {'c', 'b'})
    for (uint32_t maj : majors)
      for (uint32_t min : minors)
        for (uint32_t acc = 1; acc <= kAllAccess; ++acc)
          if (!device_rules_allow(rules, type, maj, min, acc)) return false;
  return true;
}

std::string device_filter_listing(const std::vector<bpf_insn>& prog) {
  std::string out;
  char line[96];
  for (auto& i : prog) {
    int dst = i.dst_reg, src = i.src_reg;
    uint8_t cls = BPF_CLASS(i.code), op = BPF_OP(i.code);
    bool k = BPF_SRC(i.code) == BPF_K;
    auto alu_op = [](uint8_t o) {
      switch (o) {
        case BPF_AND:
          return "&=";
        case BPF_RSH:
          return ">>=";
        case BPF_MOV:
          return "=";
        default:
          return "?=";
      }
    };
    auto jmp_op = [](uint8_t o) {
      switch (o) {
        case BPF_JNE:
          return "!=";
        case BPF_JEQ:
          return "==";
        default:
          return "?";
      }
    };
    if (cls == BPF_LDX && BPF_MODE(i.code) == BPF_MEM && BPF_SIZE(i.code) == BPF_W) {
      std::snprintf(line, sizeof line, "r%d = *(u32 *)(r%d %+d)", dst, src, i.off);
    } else if (cls == BPF_ALU || cls == BPF_ALU64) {
      const char* reg = cls == BPF_ALU ? "w" : "r";
      if (k)
        std::snprintf(line, sizeof line, "%s%d %s %d", reg, dst, alu_op(op), i.imm);
      else
        std::snprintf(line, sizeof line, "%s%d %s %s%d", reg, dst, alu_op(op), reg, src);
    } else if (cls == BPF_JMP && op == BPF_EXIT) {
      std::snprintf(line, sizeof line, "exit");
    } else if (cls == BPF_JMP && k) {
      std::snprintf(line, sizeof line, "if r%d %s %d goto %+d", dst, jmp_op(op), i.imm, i.off);
    } else if (cls == BPF_JMP) {
      std::snprintf(line, sizeof line, "if r%d %s r%d goto %+d", dst, jmp_op(op), src, i.off);
    } else {
      std::snprintf(line, sizeof line, "(code 0x%02x)", i.code);
    }
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace zrun::cg
