// `zrun spec` template: parses with our own parser and matches runc's shape.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "spec/config.h"
#include "spec/default_spec.h"

namespace zrun::spec {
namespace {

using nlohmann::json;

std::vector<NsType> ns_types(const Spec& s) {
  std::vector<NsType> out;
  for (auto& n : s.linux_->namespaces) out.push_back(n.type);
  return out;
}

const Mount* find_mount(const Spec& s, const std::string& dest) {
  for (auto& m : s.mounts)
    if (m.destination == dest) return &m;
  return nullptr;
}

TEST(SpecDefault, ParsesAndMatchesRunc) {
  std::string text = default_spec_json(false);
  EXPECT_NE(text.find("\n\t\"ociVersion\": \"1.2.0\""), std::string::npos) << text;
  auto r = parse_config(text, "/b");
  ASSERT_TRUE(r.ok()) << r.error().text();
  const Spec& s = *r;
  EXPECT_EQ(s.oci_version, "1.2.0");
  EXPECT_EQ(s.root.path, "/b/rootfs");
  EXPECT_TRUE(s.root.readonly);
  EXPECT_EQ(s.hostname, "zrun");
  ASSERT_TRUE(s.process);
  EXPECT_TRUE(s.process->terminal);
  EXPECT_EQ(s.process->args, std::vector<std::string>{"sh"});
  EXPECT_EQ(s.process->cwd, "/");
  EXPECT_TRUE(s.process->no_new_privileges);
  ASSERT_EQ(s.process->env.size(), 2u);
  EXPECT_EQ(s.process->env[1], "TERM=xterm");
  ASSERT_TRUE(s.process->capabilities);
  EXPECT_EQ(s.process->capabilities->bounding, (std::vector<int>{29, 5, 10}));
  EXPECT_EQ(s.process->capabilities->effective, (std::vector<int>{29, 5, 10}));
  EXPECT_EQ(s.process->capabilities->permitted, (std::vector<int>{29, 5, 10}));
  EXPECT_TRUE(s.process->capabilities->ambient.empty());
  ASSERT_EQ(s.process->rlimits.size(), 1u);
  EXPECT_EQ(s.process->rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(s.process->rlimits[0].soft, 1024u);

  EXPECT_EQ(ns_types(s), (std::vector<NsType>{NsType::kPid, NsType::kNetwork, NsType::kIpc,
                                              NsType::kUts, NsType::kMount, NsType::kCgroup}));
  ASSERT_EQ(s.mounts.size(), 7u);
  EXPECT_EQ(s.mounts[0].destination, "/proc");
  const Mount* sys = find_mount(s, "/sys");
  ASSERT_TRUE(sys);
  EXPECT_EQ(sys->type, "sysfs");
  const Mount* pts = find_mount(s, "/dev/pts");
  ASSERT_TRUE(pts);
  EXPECT_EQ(pts->options.back(), "gid=5");
  ASSERT_TRUE(find_mount(s, "/sys/fs/cgroup"));
  ASSERT_TRUE(s.linux_->resources);
  ASSERT_EQ(s.linux_->resources->devices.size(), 1u);
  EXPECT_FALSE(s.linux_->resources->devices[0].allow);
  EXPECT_EQ(s.linux_->resources->devices[0].access, "rwm");
  EXPECT_EQ(s.linux_->masked_paths.front(), "/proc/acpi");
  EXPECT_EQ(s.linux_->readonly_paths.size(), 5u);
  EXPECT_TRUE(s.linux_->uid_mappings.empty());
}

// Issue 3: /proc and /sys are nosuid,nodev,noexec in the default spec.
TEST(SpecDefault, ProcAndSysAreNosuidNodevNoexec) {
  auto r = parse_config(default_spec_json(false), "/b");
  ASSERT_TRUE(r.ok()) << r.error().text();
  for (const char* dest : {"/proc", "/sys"}) {
    const Mount* m = nullptr;
    for (auto& x : r->mounts)
      if (x.destination == dest) m = &x;
    ASSERT_NE(m, nullptr) << dest;
    for (const char* o : {"nosuid", "nodev", "noexec"})
      EXPECT_NE(std::find(m->options.begin(), m->options.end(), o), m->options.end())
          << dest << " " << o;
  }
}

TEST(SpecDefault, SeccompProfile) {
  for (bool rootless : {false, true}) {
    auto r = parse_config(default_spec_json(rootless), "/b");
    ASSERT_TRUE(r.ok()) << r.error().text();
    ASSERT_TRUE(r->linux_->seccomp);
    const Seccomp& sc = *r->linux_->seccomp;
    EXPECT_EQ(sc.default_action, "SCMP_ACT_ALLOW");
#if defined(__x86_64__)
    EXPECT_EQ(sc.architectures,
              (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
#endif
    auto rule_for = [&](const std::string& name) -> const SeccompSyscall* {
      for (auto& s : sc.syscalls)
        for (auto& n : s.names)
          if (n == name) return &s;
      return nullptr;
    };
    for (const char* denied :
         {"keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "kexec_load",
          "init_module", "finit_module", "mount", "umount2", "pivot_root", "open_by_handle_at",
          "setns", "io_uring_setup", "reboot", "swapon"}) {
      const SeccompSyscall* s = rule_for(denied);
      ASSERT_TRUE(s) << denied;
      EXPECT_EQ(s->action, "SCMP_ACT_ERRNO") << denied;
      EXPECT_EQ(s->errno_ret, 1u) << denied;
      EXPECT_TRUE(s->args.empty()) << denied;
    }
    for (const char* ns : {"unshare", "clone"}) {
      const SeccompSyscall* s = rule_for(ns);
      ASSERT_TRUE(s) << ns;
      ASSERT_EQ(s->args.size(), 1u);
      EXPECT_EQ(s->args[0].op, "SCMP_CMP_MASKED_EQ");
      EXPECT_EQ(s->args[0].value, 0x10000000u);  // CLONE_NEWUSER
      EXPECT_EQ(s->args[0].value_two, 0x10000000u);
    }
    ASSERT_TRUE(rule_for("clone3"));
    EXPECT_EQ(rule_for("clone3")->errno_ret, 38u);  // ENOSYS: libc falls back to clone
    EXPECT_FALSE(rule_for("read"));
    EXPECT_FALSE(rule_for("ptrace"));
  }
}

TEST(SpecDefault, Rootless) {
  auto r = parse_config(default_spec_json(true), "/b");
  ASSERT_TRUE(r.ok()) << r.error().text();
  const Spec& s = *r;
  EXPECT_EQ(ns_types(s), (std::vector<NsType>{NsType::kPid, NsType::kIpc, NsType::kUts,
                                              NsType::kMount, NsType::kCgroup, NsType::kUser}));
  ASSERT_EQ(s.linux_->uid_mappings.size(), 1u);
  EXPECT_EQ(s.linux_->uid_mappings[0].container_id, 0u);
  EXPECT_EQ(s.linux_->uid_mappings[0].host_id, ::geteuid());
  EXPECT_EQ(s.linux_->uid_mappings[0].size, 1u);
  ASSERT_EQ(s.linux_->gid_mappings.size(), 1u);
  EXPECT_EQ(s.linux_->gid_mappings[0].host_id, ::getegid());
  EXPECT_FALSE(s.linux_->resources);
  const Mount* sys = find_mount(s, "/sys");
  ASSERT_TRUE(sys);
  EXPECT_EQ(sys->type, "none");
  EXPECT_EQ(sys->source, "/sys");
  EXPECT_EQ(sys->options.front(), "rbind");
  const Mount* pts = find_mount(s, "/dev/pts");
  ASSERT_TRUE(pts);
  for (auto& o : pts->options) EXPECT_NE(o, "gid=5");
  // No cgroup mount (the hierarchies are not the user's); the rootful spec has one.
  EXPECT_FALSE(find_mount(s, "/sys/fs/cgroup"));
  auto rootful = parse_config(default_spec_json(false), "/b");
  ASSERT_TRUE(rootful.ok());
  EXPECT_TRUE(find_mount(*rootful, "/sys/fs/cgroup"));
}

}  // namespace
}  // namespace zrun::spec
