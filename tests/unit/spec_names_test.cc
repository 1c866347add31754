// Name tables: namespaces, signals, capabilities, rlimits.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>

#include <csignal>

#include "spec/config.h"

namespace zrun::spec {
namespace {

TEST(SpecNames, Namespaces) {
  struct {
    NsType t;
    const char* name;
    const char* proc;
    int flag;
  } cases[] = {{NsType::kPid, "pid", "pid", CLONE_NEWPID},
               {NsType::kNetwork, "network", "net", CLONE_NEWNET},
               {NsType::kMount, "mount", "mnt", CLONE_NEWNS},
               {NsType::kIpc, "ipc", "ipc", CLONE_NEWIPC},
               {NsType::kUts, "uts", "uts", CLONE_NEWUTS},
               {NsType::kUser, "user", "user", CLONE_NEWUSER},
               {NsType::kCgroup, "cgroup", "cgroup", CLONE_NEWCGROUP},
               {NsType::kTime, "time", "time", 0x80}};
  for (auto& c : cases) {
    EXPECT_STREQ(ns_type_name(c.t), c.name);
    EXPECT_STREQ(ns_proc_name(c.t), c.proc);
    EXPECT_EQ(ns_clone_flag(c.t), c.flag) << c.name;
    auto back = ns_type_from_name(c.name);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, c.t);
  }
  auto bad = ns_type_from_name("net");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().text(), "unknown namespace \"net\"");
}

TEST(SpecNames, Signals) {
  EXPECT_EQ(*parse_signal("KILL"), SIGKILL);
  EXPECT_EQ(*parse_signal("SIGKILL"), SIGKILL);
  EXPECT_EQ(*parse_signal("sigkill"), SIGKILL);
  EXPECT_EQ(*parse_signal("term"), SIGTERM);
  EXPECT_EQ(*parse_signal("9"), 9);
  EXPECT_EQ(*parse_signal("15"), 15);
  EXPECT_EQ(*parse_signal("SIGWINCH"), SIGWINCH);
  EXPECT_EQ(*parse_signal("CHLD"), SIGCHLD);
  EXPECT_EQ(*parse_signal("SIGRTMIN"), SIGRTMIN);
  EXPECT_EQ(*parse_signal("RTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(*parse_signal("SIGRTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(*parse_signal("rtmax-1"), SIGRTMAX - 1);
  EXPECT_EQ(*parse_signal("RTMAX"), SIGRTMAX);
  EXPECT_EQ(*parse_signal("64"), 64);
  EXPECT_EQ(parse_signal("0").error().text(), "invalid signal \"0\": out of range 1-64");
  EXPECT_EQ(parse_signal("65").error().text(), "invalid signal \"65\": out of range 1-64");
  EXPECT_EQ(parse_signal("FOO").error().text(), "invalid signal \"FOO\"");
  EXPECT_EQ(parse_signal("RTMIN+99").error().text(), "invalid signal \"RTMIN+99\"");
  EXPECT_EQ(parse_signal("RTMIN-1").error().text(), "invalid signal \"RTMIN-1\"");
  EXPECT_EQ(parse_signal("9x").error().text(), "invalid signal \"9x\"");
  EXPECT_EQ(parse_signal("").error().text(), "invalid signal \"\": empty");
  EXPECT_EQ(parse_signal("-9").error().text(), "invalid signal \"-9\"");
}

TEST(SpecNames, Capabilities) {
  EXPECT_EQ(*parse_capability("CAP_CHOWN"), 0);
  EXPECT_EQ(*parse_capability("CAP_NET_ADMIN"), 12);
  EXPECT_EQ(*parse_capability("cap_sys_admin"), 21);
  EXPECT_EQ(*parse_capability("CAP_CHECKPOINT_RESTORE"), 40);
  EXPECT_EQ(parse_capability("NET_ADMIN").error().text(), "unknown capability \"NET_ADMIN\"");
  EXPECT_EQ(parse_capability("CAP_FOO").error().text(), "unknown capability \"CAP_FOO\"");
  EXPECT_EQ(parse_capability("3").error().text(), "unknown capability \"3\"");
  EXPECT_EQ(capability_name(0), "CAP_CHOWN");
  EXPECT_EQ(capability_name(39), "CAP_BPF");
  EXPECT_EQ(capability_name(1000), "CAP_1000");
  auto all = all_capability_names();
  ASSERT_GE(all.size(), 41u);
  for (size_t i = 0; i < all.size(); ++i) {
    auto n = parse_capability(all[i]);
    ASSERT_TRUE(n.ok()) << all[i];
    EXPECT_EQ(*n, static_cast<int>(i)) << all[i];
    EXPECT_EQ(capability_name(*n), all[i]);
  }
}

TEST(SpecNames, Rlimits) {
  EXPECT_EQ(*parse_rlimit("RLIMIT_NOFILE"), RLIMIT_NOFILE);
  EXPECT_EQ(*parse_rlimit("RLIMIT_CORE"), RLIMIT_CORE);
  EXPECT_EQ(*parse_rlimit("RLIMIT_RTTIME"), RLIMIT_RTTIME);
  EXPECT_EQ(parse_rlimit("NOFILE").error().text(), "unknown rlimit \"NOFILE\"");
  EXPECT_EQ(parse_rlimit("RLIMIT_FOO").error().text(), "unknown rlimit \"RLIMIT_FOO\"");
}

}  // namespace
}  // namespace zrun::spec
