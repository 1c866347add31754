// iso::check_lsm: AppArmor/SELinux fields are refused on a host without that LSM, with the
// field named; empty fields always pass.
#include <gtest/gtest.h>

#include "isolation/lsm.h"

namespace zrun::iso {
namespace {

spec::HostFacts facts(bool apparmor, bool selinux) {
  spec::HostFacts f;
  f.apparmor = apparmor;
  f.selinux = selinux;
  return f;
}

TEST(IsoLsm, EmptyFieldsPass) {
  spec::Spec s;
  s.process.emplace();
  s.linux_.emplace();
  EXPECT_TRUE(check_lsm(s, facts(false, false)).ok());
  EXPECT_TRUE(check_lsm(s).ok());
}

TEST(IsoLsm, ApparmorProfileWithoutApparmor) {
  spec::Spec s;
  s.process.emplace();
  s.process->apparmor_profile = "docker-default";
  auto r = check_lsm(s, facts(false, true));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().text().find("process.apparmorProfile `docker-default`"), std::string::npos)
      << r.error().text();
  EXPECT_NE(r.error().text().find("AppArmor is not enabled"), std::string::npos);
}

TEST(IsoLsm, SelinuxFieldsWithoutSelinux) {
  spec::Spec s;
  s.process.emplace();
  s.process->selinux_label = "system_u:system_r:container_t:s0";
  auto r = check_lsm(s, facts(true, false));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().text().find("process.selinuxLabel"), std::string::npos);

  spec::Spec m;
  m.linux_.emplace();
  m.linux_->mount_label = "system_u:object_r:container_file_t:s0";
  r = check_lsm(m, facts(true, false));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().text().find("linux.mountLabel"), std::string::npos);
}

TEST(IsoLsm, EnabledButNotImplementedIsStillRefused) {
  spec::Process p;
  p.apparmor_profile = "x";
  auto r = check_lsm(p, facts(true, true), "exec");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().text().find("exec.apparmorProfile"), std::string::npos);
  EXPECT_NE(r.error().text().find("not supported yet"), std::string::npos);
}

}  // namespace
}  // namespace zrun::iso
