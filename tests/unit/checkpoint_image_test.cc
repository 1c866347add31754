// The checkpoint image format: checksums, task/manifest JSON round trips, and the
// refusals of a damaged or foreign image (docs/checkpoint.md "Image format").
#include <gtest/gtest.h>

#include <string>

#include "base/sys.h"
#include "checkpoint/image.h"
#include "checkpoint/ipc.h"
#include "checkpoint/pages.h"
#include "checkpoint/proc.h"

namespace zrun::ckpt {
namespace {

TEST(CheckpointImage, HashCatchesChangesAndLength) {
  std::string a(4096, 'x');
  uint64_t h = hash64(a.data(), a.size());
  EXPECT_EQ(h, hash64(a.data(), a.size()));
  std::string b = a;
  b[1234] ^= 1;
  EXPECT_NE(h, hash64(b.data(), b.size()));
  EXPECT_NE(h, hash64(a.data(), a.size() - 1));
  std::string zeros(16, '\0');
  EXPECT_NE(hash64(zeros.data(), 8), hash64(zeros.data(), 16));
  EXPECT_NE(hash64(a.data(), 10, 1), hash64(a.data(), 10, 2));
}

TEST(CheckpointImage, TaskRoundTrip) {
  TaskImage t;
  t.vpid = 7;
  t.ppid = 1;
  t.pgid = 1;
  t.sid = 1;
  t.comm = "nginx";
  t.regs.rip = 0x401000;
  t.regs.orig_rax = static_cast<uint64_t>(-1);
  t.fpu = std::string(512, '\x11');
  t.sigactions.resize(64);
  t.sigactions[16] = {0x402000, 0x04000000, 0x403000, 0x10000};
  t.brk = 0x5000000;
  t.auxv = std::string("\x21\0\0\0\0\0\0\0", 8);
  t.uids = {0, 0, 0, 0};
  t.gids = {0, 0, 0, 0};
  t.cwd = "/srv";
  t.exe = "/bin/busybox";
  t.rlimits = {{1, 2}, {~0ULL, ~0ULL}};
  VmaImage v;
  v.start = 0x1000;
  v.end = 0x3000;
  v.perms = "rw-p";
  v.name = "[heap]";
  v.pages = true;
  v.page_offset = 8192;
  v.hash = 0xfedcba9876543210ULL;
  t.vmas.push_back(v);
  t.fds.push_back({3, "file", "/tmp/log", 02101, 42, true});
  t.fds.push_back({4, "pipe", "pipe:[9]", 0, 0, false, 65536, std::string("ab\0c", 4)});
  t.pending.push_back({true, std::string(128, '\x05')});
  ThreadImage th;
  th.vtid = 8;
  th.regs.rax = 60;
  th.fpu = "xs";
  th.robust_list = 0x7000;
  th.robust_len = 24;
  th.pending.push_back({false, std::string(128, '\x06')});
  t.threads.push_back(th);
  auto back = task_from_json(task_to_json(t));
  ASSERT_TRUE(back.ok()) << back.error().text();
  EXPECT_EQ(back->vpid, 7);
  EXPECT_EQ(back->comm, "nginx");
  EXPECT_EQ(back->regs.rip, 0x401000u);
  EXPECT_EQ(back->regs.orig_rax, static_cast<uint64_t>(-1));
  EXPECT_EQ(back->fpu, t.fpu);
  EXPECT_EQ(back->sigactions[16].restorer, 0x403000u);
  EXPECT_EQ(back->auxv, t.auxv);
  EXPECT_EQ(back->rlimits[1].first, ~0ULL);
  ASSERT_EQ(back->vmas.size(), 1u);
  EXPECT_TRUE(back->vmas[0].pages);
  EXPECT_EQ(back->vmas[0].hash, v.hash);
  ASSERT_EQ(back->fds.size(), 2u);
  EXPECT_EQ(back->fds[0].pos, 42);
  EXPECT_TRUE(back->fds[0].cloexec);
  EXPECT_EQ(back->fds[0].pipe_size, 0);
  EXPECT_EQ(back->fds[1].pipe_size, 65536);
  EXPECT_EQ(back->fds[1].data, std::string("ab\0c", 4));
  ASSERT_EQ(back->pending.size(), 1u);
  EXPECT_TRUE(back->pending[0].shared);
  ASSERT_EQ(back->threads.size(), 1u);
  EXPECT_EQ(back->threads[0].vtid, 8);
  EXPECT_EQ(back->threads[0].regs.rax, 60u);
  EXPECT_EQ(back->threads[0].robust_len, 24u);
  EXPECT_EQ(back->threads[0].pending[0].info, std::string(128, '\x06'));
  // The text is stable: writing what was read gives the same document.
  EXPECT_EQ(task_to_json(*back), task_to_json(t));
}

TEST(CheckpointImage, TaskRefusesDamagedFields) {
  TaskImage t;
  t.uids = {0, 0, 0, 0};
  t.gids = {0, 0, 0, 0};
  t.pending.push_back({false, std::string(128, '\x01')});
  std::string good = task_to_json(t);
  ASSERT_TRUE(task_from_json(good).ok());
  auto damaged = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    auto pos = text.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    return task_from_json(text.replace(pos, from.size(), to));
  };
  std::string siginfo;
  for (int i = 0; i < 128; i++) siginfo += "01";
  auto r = damaged(siginfo, "0101");  // siginfo cut short
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().text().find("siginfo"), std::string::npos) << r.error().text();
  r = damaged("\"regs\": \"", "\"regs\": \"zz");  // not hex
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().text().find("hex"), std::string::npos) << r.error().text();
  r = damaged("\"uids\"", "\"uids_gone\"");  // a field missing
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().text().find("uids"), std::string::npos) << r.error().text();
}

TEST(CheckpointImage, ObjectsRoundTripAndAreOptional) {
  TaskImage t;
  t.uids = {0, 0, 0, 0};
  t.gids = {0, 0, 0, 0};
  VmaImage v;
  v.start = 0x1000;
  v.end = 0x3000;
  v.perms = "rw-s";
  v.object = "1:3f46";
  t.vmas.push_back(v);
  ObjectImage o;
  o.key = "1:3f46";
  o.kind = "memfd";
  o.name = "cache";
  o.size = 1 << 20;
  o.mode = 0777;
  o.seals = 0x6;
  o.extents = {{0, 4096}, {65536, 8192}};
  o.file = "object-0.img";
  o.hash = 0xfedcba9876543210ULL;
  t.objects.push_back(o);
  ObjectImage e;
  e.key = "eventfd:3";
  e.kind = "eventfd";
  e.count = 0x100000007ULL;
  e.semaphore = true;
  t.objects.push_back(e);
  t.exe_object = "1:3f46";
  auto back = task_from_json(task_to_json(t));
  ASSERT_TRUE(back.ok()) << back.error().text();
  ASSERT_EQ(back->objects.size(), 2u);
  EXPECT_EQ(back->vmas[0].object, "1:3f46");
  EXPECT_EQ(back->objects[0].name, "cache");
  EXPECT_EQ(back->objects[0].seals, 0x6u);
  EXPECT_EQ(back->objects[0].extents, o.extents);
  EXPECT_EQ(back->objects[0].hash, o.hash);
  EXPECT_EQ(back->objects[1].count, 0x100000007ULL);
  EXPECT_TRUE(back->objects[1].semaphore);
  EXPECT_EQ(back->exe_object, "1:3f46");
  // A task without objects has neither field (older images load as before).
  TaskImage plain;
  plain.uids = plain.gids = {0, 0, 0, 0};
  std::string text = task_to_json(plain);
  EXPECT_EQ(text.find("\"objects\""), std::string::npos);
  auto p = task_from_json(text);
  ASSERT_TRUE(p.ok()) << p.error().text();
  EXPECT_TRUE(p->objects.empty());
  EXPECT_TRUE(p->exe_object.empty());
}

TEST(CheckpointImage, ManifestRefusesOtherFormats) {
  Manifest m;
  m.config = "{}";
  m.tasks.push_back({1, 0, 1, 1, "task-1.json", 5});
  std::string text = manifest_to_json(m);
  auto ok = manifest_from_json(text);
  ASSERT_TRUE(ok.ok()) << ok.error().text();
  EXPECT_EQ(ok->tasks[0].hash, 5u);
  std::string current = "\"format\": " + std::to_string(kFormatVersion);
  auto pos = text.find(current);
  ASSERT_NE(pos, std::string::npos) << text;
  // 9: from the future; 1: the format before hash64 changed (its checksums differ).
  for (int other : {9, 1}) {
    std::string t = text;
    t.replace(pos, current.size(), "\"format\": " + std::to_string(other));
    auto bad = manifest_from_json(t);
    ASSERT_FALSE(bad.ok()) << other;
    EXPECT_NE(bad.error().msg.find("image format " + std::to_string(other) + " is not supported"),
              std::string::npos)
        << bad.error().msg;
  }
}

TEST(CheckpointImage, MissingImageIsAClearError) {
  auto r = load_image("/nonexistent/zrun-image");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().text().find("read image"), std::string::npos) << r.error().text();
}

TEST(CheckpointProc, ParsesMapsLines) {
  auto v = parse_maps(
      "00400000-00401000 r--p 00000000 fe:00 10961238                           /bin/busybox\n"
      "3925c000-3927e000 rw-p 00000000 00:00 0                                  [heap]\n"
      "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n");
  ASSERT_TRUE(v.ok()) << v.error().text();
  ASSERT_EQ(v->size(), 3u);
  EXPECT_EQ((*v)[0].name, "/bin/busybox");
  EXPECT_TRUE((*v)[0].file_backed());
  EXPECT_EQ((*v)[1].name, "[heap]");
  EXPECT_FALSE((*v)[1].file_backed());
  EXPECT_EQ((*v)[2].name, "");
  EXPECT_EQ((*v)[2].start, 0x7f0000000000u);
}

// Sparse mappings (runs in this image or the parent) and the incremental fields round
// trip; a run outside its mapping or out of order is refused.
TEST(CheckpointImage, PageRunsAndIncrementalFieldsRoundTrip) {
  TaskImage t;
  t.comm = "x";
  t.uids = {0, 0, 0, 0};
  t.gids = {0, 0, 0, 0};
  t.track_fd = 1000;
  t.track_start = 12345;
  VmaImage v;
  v.start = 0x10000;
  v.end = 0x20000;
  v.perms = "rw-p";
  v.runs = {{0x10000, 0x2000, false, 0, 0xabc}, {0x13000, 0x1000, true, 0, 0}};
  t.vmas.push_back(v);
  std::string text = task_to_json(t);
  // An older reader stops at pages.file "runs" instead of restoring zeros.
  EXPECT_NE(text.find("\"runs\""), std::string::npos);
  auto back = task_from_json(text);
  ASSERT_TRUE(back.ok()) << back.error().text();
  EXPECT_EQ(back->track_fd, 1000);
  EXPECT_EQ(back->track_start, 12345u);
  ASSERT_EQ(back->vmas.size(), 1u);
  EXPECT_FALSE(back->vmas[0].pages);
  ASSERT_EQ(back->vmas[0].runs.size(), 2u);
  EXPECT_EQ(back->vmas[0].runs[0].hash, 0xabcu);
  EXPECT_FALSE(back->vmas[0].runs[0].parent);
  EXPECT_TRUE(back->vmas[0].runs[1].parent);
  EXPECT_EQ(back->vmas[0].runs[1].start, 0x13000u);
  // Without tracking, no "track" key (older images load with track_fd -1).
  TaskImage plain = t;
  plain.track_fd = -1;
  auto p = task_from_json(task_to_json(plain));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->track_fd, -1);
  for (auto bad : {std::vector<PageRunImage>{{0x1f000, 0x2000, false, 0, 0}},  // past the end
                   std::vector<PageRunImage>{{0x14000, 0x1000, false, 0, 0},
                                             {0x10000, 0x1000, false, 0, 0}},     // out of order
                   std::vector<PageRunImage>{{0x10800, 0x1000, false, 0, 0}}}) {  // unaligned
    TaskImage b = t;
    b.vmas[0].runs = bad;
    EXPECT_FALSE(task_from_json(task_to_json(b)).ok());
  }
  Manifest m;
  m.config = "{}";
  m.tasks.push_back({1, 0, 1, 1, "task-1.json", 5});
  m.pre_dump = true;
  m.parent = "../p1";
  m.parent_hash = 77;
  m.init_start = 999;
  auto mb = manifest_from_json(manifest_to_json(m));
  ASSERT_TRUE(mb.ok()) << mb.error().text();
  EXPECT_TRUE(mb->pre_dump);
  EXPECT_EQ(mb->parent, "../p1");
  EXPECT_EQ(mb->parent_hash, 77u);
  EXPECT_EQ(mb->init_start, 999u);
}

TEST(CheckpointPages, RangeArithmetic) {
  Ranges a{{0, 10}, {20, 30}, {40, 50}};
  Ranges b{{5, 25}, {45, 60}};
  EXPECT_EQ(intersect(a, b), (Ranges{{5, 10}, {20, 25}, {45, 50}}));
  EXPECT_EQ(subtract(a, b), (Ranges{{0, 5}, {25, 30}, {40, 45}}));
  EXPECT_EQ(subtract(a, {}), a);
  EXPECT_EQ(intersect(a, {}), Ranges{});
  EXPECT_EQ(subtract(Ranges{{0, 100}}, Ranges{{10, 20}, {30, 40}}),
            (Ranges{{0, 10}, {20, 30}, {40, 100}}));
}

}  // namespace
}  // namespace zrun::ckpt

namespace zrun::ckpt {
namespace {

// The IPC additions are optional fields: an image without them still loads.
TEST(CheckpointImage, IpcAndShmAttachmentRoundTrip) {
  Manifest m;
  m.config = "{}";
  m.tasks.push_back({1, 0, 1, 1, "task-1.json", 5});
  auto plain = manifest_from_json(manifest_to_json(m));
  ASSERT_TRUE(plain.ok()) << plain.error().text();
  EXPECT_EQ(plain->ipc, "");
  m.ipc = R"({"shm":[{"id":32768,"key":7}],"sem":[],"msg":[],"mqueue":[]})";
  auto with = manifest_from_json(manifest_to_json(m));
  ASSERT_TRUE(with.ok()) << with.error().text();
  EXPECT_NE(with->ipc.find("32768"), std::string::npos) << with->ipc;

  TaskImage t;
  t.uids = t.gids = {0, 0, 0, 0};
  VmaImage v;
  v.start = 0x1000;
  v.end = 0x3000;
  v.perms = "r--s";
  v.name = "/SYSV0000abcd (deleted)";
  v.shmid = 32768;
  t.vmas.push_back(v);
  v.shmid = -1;
  v.name = "";
  t.vmas.push_back(v);
  auto back = task_from_json(task_to_json(t));
  ASSERT_TRUE(back.ok()) << back.error().text();
  ASSERT_EQ(back->vmas.size(), 2u);
  EXPECT_EQ(back->vmas[0].shmid, 32768);
  EXPECT_EQ(back->vmas[1].shmid, -1);
  // Only the attachment carries the field.
  std::string text = task_to_json(t);
  size_t first = text.find("\"shmid\"");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(text.find("\"shmid\"", first + 1), std::string::npos);
}

TEST(CheckpointIpc, RecognizesSysvShmMappings) {
  EXPECT_TRUE(is_sysv_shm("/SYSV5a52554e (deleted)"));
  EXPECT_TRUE(is_sysv_shm("/SYSV00000000 (deleted)"));
  EXPECT_FALSE(is_sysv_shm("/SYSV5a52554e"));
  EXPECT_FALSE(is_sysv_shm("/tmp/SYSV5a52554e (deleted)"));
  EXPECT_FALSE(is_sysv_shm("/dev/zero (deleted)"));
}

}  // namespace
}  // namespace zrun::ckpt
