// parse_mount_options: every documented option; mkdir_in_root's symlink resolution.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "base/sys.h"
#include "isolation/mounts.h"

namespace zrun::iso {
namespace {

unsigned long flags_of(std::vector<std::string> o) { return parse_mount_options(o).flags; }

TEST(ParseMountOptions, SetAndClearFlags) {
  struct Case {
    const char* set;
    const char* clear;
    unsigned long flag;
  };
  const Case cases[] = {
      {"ro", "rw", MS_RDONLY},
      {"nosuid", "suid", MS_NOSUID},
      {"nodev", "dev", MS_NODEV},
      {"noexec", "exec", MS_NOEXEC},
      {"sync", "async", MS_SYNCHRONOUS},
      {"mand", "nomand", MS_MANDLOCK},
      {"noatime", "atime", MS_NOATIME},
      {"nodiratime", "diratime", MS_NODIRATIME},
      {"relatime", "norelatime", MS_RELATIME},
      {"strictatime", "nostrictatime", MS_STRICTATIME},
      {"silent", "loud", MS_SILENT},
      {"iversion", "noiversion", MS_I_VERSION},
      {"lazytime", "nolazytime", MS_LAZYTIME},
      {"nosymfollow", "symfollow", MS_NOSYMFOLLOW},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(flags_of({c.set}), c.flag) << c.set;
    EXPECT_EQ(flags_of({c.set, c.clear}), 0u) << c.clear;
    EXPECT_EQ(flags_of({c.clear}), 0u) << c.clear;
    EXPECT_TRUE(parse_mount_options({c.set, c.clear}).data.empty());
  }
}

TEST(ParseMountOptions, OneWayFlags) {
  EXPECT_EQ(flags_of({"bind"}), static_cast<unsigned long>(MS_BIND));
  EXPECT_EQ(flags_of({"rbind"}), static_cast<unsigned long>(MS_BIND | MS_REC));
  EXPECT_EQ(flags_of({"remount"}), static_cast<unsigned long>(MS_REMOUNT));
  EXPECT_EQ(flags_of({"dirsync"}), static_cast<unsigned long>(MS_DIRSYNC));
  EXPECT_EQ(flags_of({"defaults"}), 0u);
  EXPECT_EQ(flags_of({"nosuid", "noexec", "nodev", "ro"}),
            static_cast<unsigned long>(MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY));
}

TEST(ParseMountOptions, Propagation) {
  const std::pair<const char*, unsigned long> cases[] = {
      {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
      {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
      {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
      {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  for (const auto& [name, want] : cases) {
    auto mf = parse_mount_options({"rbind", name});
    EXPECT_EQ(mf.propagation, want) << name;
    EXPECT_EQ(mf.flags, static_cast<unsigned long>(MS_BIND | MS_REC)) << name;
    EXPECT_EQ(propagation_flags(name), want);
  }
  EXPECT_EQ(parse_mount_options({"shared", "rprivate"}).propagation,
            static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_EQ(propagation_flags("bogus"), 0u);
}

TEST(ParseMountOptions, RecursiveAttributes) {
  struct Case {
    const char* name;
    uint64_t set, clr;
  };
  const Case cases[] = {
      {"rro", MOUNT_ATTR_RDONLY, 0},
      {"rrw", 0, MOUNT_ATTR_RDONLY},
      {"rnosuid", MOUNT_ATTR_NOSUID, 0},
      {"rsuid", 0, MOUNT_ATTR_NOSUID},
      {"rnodev", MOUNT_ATTR_NODEV, 0},
      {"rdev", 0, MOUNT_ATTR_NODEV},
      {"rnoexec", MOUNT_ATTR_NOEXEC, 0},
      {"rexec", 0, MOUNT_ATTR_NOEXEC},
      {"rnodiratime", MOUNT_ATTR_NODIRATIME, 0},
      {"rdiratime", 0, MOUNT_ATTR_NODIRATIME},
      {"rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW, 0},
      {"rsymfollow", 0, MOUNT_ATTR_NOSYMFOLLOW},
      {"rnoatime", MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME},
      {"ratime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
      {"rrelatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
      {"rnorelatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME},
      {"rstrictatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME},
      {"rnostrictatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
  };
  for (const auto& c : cases) {
    auto mf = parse_mount_options({c.name});
    EXPECT_EQ(mf.attr_set, c.set) << c.name;
    EXPECT_EQ(mf.attr_clr, c.clr) << c.name;
    EXPECT_EQ(mf.flags, 0u) << c.name;
    EXPECT_TRUE(mf.data.empty()) << c.name;
  }
  // Later options override earlier ones.
  auto mf = parse_mount_options({"rro", "rrw"});
  EXPECT_EQ(mf.attr_set, 0u);
  EXPECT_EQ(mf.attr_clr, static_cast<uint64_t>(MOUNT_ATTR_RDONLY));
  mf = parse_mount_options({"rnoatime", "rstrictatime", "rnosuid"});
  EXPECT_EQ(mf.attr_set, static_cast<uint64_t>(MOUNT_ATTR_STRICTATIME | MOUNT_ATTR_NOSUID));
  EXPECT_EQ(mf.attr_clr, static_cast<uint64_t>(MOUNT_ATTR__ATIME));
  EXPECT_TRUE(mf.has_recursive_attrs());
  EXPECT_FALSE(parse_mount_options({"ro"}).has_recursive_attrs());
}

TEST(ParseMountOptions, DataAndExtensions) {
  auto mf = parse_mount_options(
      {"nosuid", "strictatime", "mode=755", "size=65536k", "tmpcopyup", "newinstance"});
  EXPECT_EQ(mf.flags, static_cast<unsigned long>(MS_NOSUID | MS_STRICTATIME));
  EXPECT_EQ(mf.data, "mode=755,size=65536k,newinstance");
  EXPECT_TRUE(mf.tmpcopyup);
  EXPECT_FALSE(mf.idmap);
  EXPECT_FALSE(parse_mount_options({"tmpcopyup", "notmpcopyup"}).tmpcopyup);
  EXPECT_TRUE(parse_mount_options({"idmap"}).idmap);
  EXPECT_TRUE(parse_mount_options({"ridmap"}).idmap);
  EXPECT_EQ(parse_mount_options({"", "gid=5"}).data, "gid=5");
  EXPECT_EQ(parse_mount_options({}).flags, 0u);
}

TEST(FdPath, Format) { EXPECT_EQ(fd_path(7), "/proc/self/fd/7"); }

// mkdir_in_root resolves symlinks like RESOLVE_IN_ROOT and creates what is missing inside
// the root, including the target of a dangling symlink. No privileges needed.
class MkdirInRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zrun-mkdir-in-root-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/root";
    outside_ = dir_ + "/outside";
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    rootfd_ = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(rootfd_, 0);
  }
  void TearDown() override {
    if (rootfd_ >= 0) ::close(rootfd_);
    (void)base::remove_tree(dir_);
  }
  void link(const std::string& target, const std::string& at) {
    ASSERT_EQ(::symlink(target.c_str(), (root_ + at).c_str()), 0) << at;
  }
  mode_t type_of(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 ? (st.st_mode & S_IFMT) : 0;
  }

  std::string dir_, root_, outside_;
  int rootfd_ = -1;
};

TEST_F(MkdirInRoot, CreatesMissingDirectoriesAndFile) {
  ASSERT_TRUE(mkdir_in_root(rootfd_, "/a/b/c", false).ok());
  EXPECT_EQ(type_of(root_ + "/a/b/c"), S_IFDIR);
  ASSERT_TRUE(mkdir_in_root(rootfd_, "/a/./x/../f", true).ok());
  EXPECT_EQ(type_of(root_ + "/a/f"), S_IFREG);
  EXPECT_EQ(type_of(root_ + "/a/x"), S_IFDIR);  // created on the way, as mkdir -p
}

TEST_F(MkdirInRoot, DanglingAbsoluteSymlinkTargetIsCreatedInsideRoot) {
  link(outside_ + "/t", "/abs");  // names a host path that does not exist
  auto fd = mkdir_in_root(rootfd_, "/abs/sub", false);
  ASSERT_TRUE(fd.ok()) << fd.error().text();
  EXPECT_EQ(type_of(root_ + outside_ + "/t/sub"), S_IFDIR);
  EXPECT_EQ(type_of(root_ + "/abs"), S_IFLNK);
  EXPECT_EQ(type_of(outside_), 0u);  // nothing on the host
  // The returned fd is the created directory.
  struct stat a {
  }, b{};
  ASSERT_EQ(::fstat(fd->get(), &a), 0);
  ASSERT_EQ(::stat((root_ + outside_ + "/t/sub").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST_F(MkdirInRoot, DanglingFileSymlinkAndDotDotStopAtRoot) {
  ASSERT_EQ(::mkdir((root_ + "/etc").c_str(), 0755), 0);
  link("../../../../../../x/file", "/etc/f");  // climbs above the root: stops there
  ASSERT_TRUE(mkdir_in_root(rootfd_, "/etc/f", true).ok());
  EXPECT_EQ(type_of(root_ + "/x/file"), S_IFREG);
  EXPECT_EQ(type_of(dir_ + "/x"), 0u);
  // Chains of links, relative to where each one is.
  link("/etc/next", "/first");
  link("sub/dir", "/etc/next");
  ASSERT_TRUE(mkdir_in_root(rootfd_, "/first", false).ok());
  EXPECT_EQ(type_of(root_ + "/etc/sub/dir"), S_IFDIR);
}

TEST_F(MkdirInRoot, SymlinkLoopIsAnError) {
  link("/loop2", "/loop1");
  link("/loop1", "/loop2");
  auto r = mkdir_in_root(rootfd_, "/loop1/x", false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().err, ELOOP);
}

}  // namespace
}  // namespace zrun::iso
