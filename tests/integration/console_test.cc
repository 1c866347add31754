// process.terminal with --console-socket: the runtime sends the pty master over
// SCM_RIGHTS; the container's stdio is the pty slave.
#include <unistd.h>

#include "tests/integration/support/harness.h"

namespace zrun::test {
namespace {

class ConsoleTest : public ContainerTest {};

TEST_F(ConsoleTest, StdioIsPtyAndMasterIsSent) {
  ConsoleSocket cs;
  Bundle b(rt);
  b.terminal(true).probe({"tty"});
  std::string id = rt.new_id();
  RunResult r = rt.create(b, id, {"--console-socket", cs.path()});
  ASSERT_EQ(r.code, 0) << r;
  int master = cs.receive_fd();
  ASSERT_GE(master, 0) << "no fd received on the console socket";
  ASSERT_EQ(rt.start(id).code, 0);
  std::string out = read_until(master, "ttyname.2=/dev/pts/");
  out += read_until(master, "\n", 1s);
  ::close(master);
  auto kv = parse_kv(out);
  EXPECT_EQ(kv["isatty.0"], "1") << out;
  EXPECT_EQ(kv["isatty.1"], "1") << out;
  EXPECT_EQ(kv["isatty.2"], "1") << out;
  EXPECT_TRUE(kv["ttyname.0"].starts_with("/dev/pts/")) << out;
  EXPECT_EQ(rt.wait_status(id, "stopped"), "stopped");
  EXPECT_EQ(rt.del(id).code, 0);
}

TEST_F(ConsoleTest, InteractiveShellThroughMaster) {
  ConsoleSocket cs;
  Bundle b(rt);
  b.terminal(true).args({"/bin/sh"});
  std::string id = rt.new_id();
  ASSERT_EQ(rt.run(b, id, {"-d", "--console-socket", cs.path()}).code, 0);
  int master = cs.receive_fd();
  ASSERT_GE(master, 0);
  std::string cmd = "echo hi-$((40+2))\n";
  ASSERT_EQ(::write(master, cmd.data(), cmd.size()), static_cast<ssize_t>(cmd.size()));
  std::string out = read_until(master, "hi-42");
  EXPECT_NE(out.find("hi-42"), std::string::npos) << out;
  std::string bye = "exit 0\n";
  ASSERT_EQ(::write(master, bye.data(), bye.size()), static_cast<ssize_t>(bye.size()));
  EXPECT_EQ(rt.wait_status(id, "stopped"), "stopped");
  ::close(master);
  EXPECT_EQ(rt.del(id).code, 0);
  EXPECT_EQ(leftovers(rt, b, id), "");
}

TEST_F(ConsoleTest, TerminalWithoutConsoleSocketFailsWhenDetached) {
  Bundle b(rt);
  b.terminal(true).probe({"tty"});
  std::string id = rt.new_id();
  expect_error(rt.create(b, id), "console");
  EXPECT_EQ(leftovers(rt, b, id), "");
}

TEST_F(ConsoleTest, BadConsoleSocketFailsCreateAndLeavesNothing) {
  Bundle b(rt);
  b.terminal(true).probe({"tty"});
  std::string id = rt.new_id();
  TempDir dir;
  expect_error(rt.create(b, id, {"--console-socket", dir / "missing.sock"}));
  EXPECT_EQ(leftovers(rt, b, id), "");
}

}  // namespace
}  // namespace zrun::test
