// A temp directory of files standing in for a cgroupfs tree (unit tests, no root).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <string>

#include "base/sys.h"

namespace zrun::test {

using Files = std::map<std::string, std::string>;

class FakeTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zrun-faketree-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { (void)base::remove_tree(root_); }

  // root_/name with `files` in it; returns its path.
  std::string dir(const std::string& name, const Files& files) {
    std::string d = root_ + "/" + name;
    EXPECT_TRUE(base::mkdir_p(d).ok());
    for (auto& [f, v] : files) EXPECT_TRUE(base::write_file(d + "/" + f, v).ok()) << f;
    return d;
  }
  void put(const std::string& path, const std::string& v) {
    ASSERT_TRUE(base::write_file(path, v).ok());
  }

  std::string root_;
};

}  // namespace zrun::test
