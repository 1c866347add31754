// config.json parsing: every section round-trips into the model, and every validation
// error names the JSON path of the bad value.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/sys.h"
#include "spec/config.h"

namespace zrun::spec {
namespace {

using nlohmann::json;

json minimal() {
  return json::parse(R"({
    "ociVersion": "1.2.0",
    "root": {"path": "rootfs"},
    "hostname": "h",
    "process": {"args": ["sh"], "cwd": "/"},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
  })");
}

// Parse `j` and return the error text ("" on success).
std::string error_of(const json& j) {
  auto r = parse_config(j.dump(), "/bundle");
  return r.ok() ? "" : r.error().text();
}

TEST(SpecParse, Minimal) {
  auto r = parse_config(minimal().dump(), "/bundle");
  ASSERT_TRUE(r.ok()) << r.error().text();
  EXPECT_EQ(r->oci_version, "1.2.0");
  EXPECT_EQ(r->root.path, "/bundle/rootfs");
  EXPECT_FALSE(r->root.readonly);
  ASSERT_TRUE(r->process);
  EXPECT_EQ(r->process->args, std::vector<std::string>{"sh"});
  ASSERT_TRUE(r->linux_);
  EXPECT_TRUE(r->linux_->has_ns(NsType::kPid));
  EXPECT_FALSE(r->linux_->has_ns(NsType::kNetwork));
}

TEST(SpecParse, Full) {
  auto j = json::parse(R"({
    "ociVersion": "1.0.2-dev",
    "root": {"path": "/abs/root/", "readonly": true},
    "hostname": "h1", "domainname": "d1",
    "annotations": {"a": "b"},
    "unknownTopLevel": {"x": 1},
    "process": {
      "terminal": true, "consoleSize": {"height": 24, "width": 80},
      "user": {"uid": 1000, "gid": 100, "umask": 18, "additionalGids": [5, 6], "username": "u"},
      "args": ["/bin/app", "-x"], "env": ["A=1"], "cwd": "/work",
      "capabilities": {"bounding": ["CAP_KILL", "cap_chown"], "effective": ["CAP_NET_ADMIN"],
                       "inheritable": [], "permitted": ["CAP_SYS_ADMIN"], "ambient": ["CAP_BPF"]},
      "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024}],
      "noNewPrivileges": true, "apparmorProfile": "ap", "oomScoreAdj": -500,
      "selinuxLabel": "sl"
    },
    "mounts": [
      {"destination": "/proc", "type": "proc", "source": "proc"},
      {"destination": "data/../x", "type": "bind", "source": "/src", "options": ["rbind", "ro"],
       "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}]}
    ],
    "hooks": {
      "prestart": [{"path": "/bin/p"}],
      "createRuntime": [{"path": "/bin/cr", "args": ["cr", "1"], "env": ["E=1"], "timeout": 5}],
      "createContainer": [{"path": "/bin/cc"}], "startContainer": [{"path": "/bin/sc"}],
      "poststart": [{"path": "/bin/ps"}], "poststop": [{"path": "/bin/pst"}, {"path": "/bin/p2"}]
    },
    "linux": {
      "namespaces": [{"type": "pid"}, {"type": "network", "path": "/run/netns/x"},
                     {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "user"},
                     {"type": "cgroup"}, {"type": "time"}],
      "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
      "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
      "timeOffsets": {"monotonic": {"secs": -10, "nanosecs": 5}, "boottime": {"secs": 7}},
      "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                   "fileMode": 438, "uid": 0, "gid": 0},
                  {"path": "/dev/fifo", "type": "p"}],
      "cgroupsPath": "/zrun/c1",
      "resources": {
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
        "memory": {"limit": 1048576, "reservation": 1024, "swap": -1, "kernel": 1,
                   "kernelTCP": 2, "swappiness": 60, "disableOOMKiller": true,
                   "useHierarchy": false, "checkBeforeUpdate": true},
        "cpu": {"shares": 512, "quota": 50000, "burst": 10, "period": 100000,
                "realtimeRuntime": 1, "realtimePeriod": 2, "cpus": "0-1", "mems": "0",
                "idle": 1},
        "pids": {"limit": 100},
        "blockIO": {"weight": 500, "leafWeight": 300,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2000}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 3}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 4}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
        "unified": {"memory.high": "max"},
        "network": {"classID": 1}
      },
      "rootfsPropagation": "rslave",
      "seccomp": {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/run/l.sock", "listenerMetadata": "m",
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                      "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]
      },
      "sysctl": {"net.ipv4.ip_forward": "1"},
      "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
      "mountLabel": "ml", "intelRdt": {"closID": "c"}
    }
  })");
  auto r = parse_config(j.dump(), "/bundle");
  ASSERT_TRUE(r.ok()) << r.error().text();
  const Spec& s = *r;
  EXPECT_EQ(s.root.path, "/abs/root");
  EXPECT_TRUE(s.root.readonly);
  EXPECT_EQ(s.hostname, "h1");
  EXPECT_EQ(s.domainname, "d1");
  EXPECT_EQ(s.annotations.at("a"), "b");

  const Process& p = *s.process;
  EXPECT_TRUE(p.terminal);
  ASSERT_TRUE(p.console_size);
  EXPECT_EQ(p.console_size->height, 24u);
  EXPECT_EQ(p.console_size->width, 80u);
  EXPECT_EQ(p.user.uid, 1000u);
  EXPECT_EQ(p.user.gid, 100u);
  EXPECT_EQ(p.user.umask, 18u);
  EXPECT_EQ(p.user.additional_gids, (std::vector<uint32_t>{5, 6}));
  EXPECT_EQ(p.user.username, "u");
  EXPECT_EQ(p.args, (std::vector<std::string>{"/bin/app", "-x"}));
  EXPECT_EQ(p.env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(p.cwd, "/work");
  ASSERT_TRUE(p.capabilities);
  EXPECT_EQ(p.capabilities->bounding, (std::vector<int>{5, 0}));
  EXPECT_EQ(p.capabilities->effective, std::vector<int>{12});
  EXPECT_TRUE(p.capabilities->inheritable.empty());
  EXPECT_EQ(p.capabilities->permitted, std::vector<int>{21});
  EXPECT_EQ(p.capabilities->ambient, std::vector<int>{39});
  ASSERT_EQ(p.rlimits.size(), 1u);
  EXPECT_EQ(p.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(p.rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(p.rlimits[0].hard, 2048u);
  EXPECT_EQ(p.rlimits[0].soft, 1024u);
  EXPECT_TRUE(p.no_new_privileges);
  EXPECT_EQ(p.apparmor_profile, "ap");
  EXPECT_EQ(p.oom_score_adj, -500);
  EXPECT_EQ(p.selinux_label, "sl");

  ASSERT_EQ(s.mounts.size(), 2u);
  EXPECT_EQ(s.mounts[0].destination, "/proc");
  EXPECT_TRUE(s.mounts[0].options.empty());
  EXPECT_EQ(s.mounts[1].destination, "/x");
  EXPECT_EQ(s.mounts[1].source, "/src");
  EXPECT_EQ(s.mounts[1].type, "bind");
  EXPECT_EQ(s.mounts[1].options, (std::vector<std::string>{"rbind", "ro"}));
  ASSERT_EQ(s.mounts[1].uid_mappings.size(), 1u);
  EXPECT_EQ(s.mounts[1].uid_mappings[0].host_id, 1000u);
  EXPECT_EQ(s.mounts[1].uid_mappings[0].size, 10u);

  ASSERT_EQ(s.hooks.prestart.size(), 1u);
  ASSERT_EQ(s.hooks.create_runtime.size(), 1u);
  EXPECT_EQ(s.hooks.create_runtime[0].path, "/bin/cr");
  EXPECT_EQ(s.hooks.create_runtime[0].args, (std::vector<std::string>{"cr", "1"}));
  EXPECT_EQ(s.hooks.create_runtime[0].env, std::vector<std::string>{"E=1"});
  EXPECT_EQ(s.hooks.create_runtime[0].timeout, 5);
  EXPECT_FALSE(s.hooks.prestart[0].timeout);
  EXPECT_EQ(s.hooks.create_container.size(), 1u);
  EXPECT_EQ(s.hooks.start_container.size(), 1u);
  EXPECT_EQ(s.hooks.poststart.size(), 1u);
  EXPECT_EQ(s.hooks.poststop.size(), 2u);
  EXPECT_FALSE(s.hooks.empty());

  const Linux& lx = *s.linux_;
  ASSERT_EQ(lx.namespaces.size(), 8u);
  EXPECT_EQ(lx.ns(NsType::kNetwork)->path, "/run/netns/x");
  EXPECT_TRUE(lx.ns(NsType::kPid)->path.empty());
  EXPECT_TRUE(lx.has_ns(NsType::kTime));
  ASSERT_EQ(lx.uid_mappings.size(), 1u);
  EXPECT_EQ(lx.uid_mappings[0].host_id, 100000u);
  EXPECT_EQ(lx.gid_mappings[0].size, 65536u);
  EXPECT_EQ(lx.time_offsets.at("monotonic").secs, -10);
  EXPECT_EQ(lx.time_offsets.at("monotonic").nanosecs, 5u);
  EXPECT_EQ(lx.time_offsets.at("boottime").secs, 7);
  ASSERT_EQ(lx.devices.size(), 2u);
  EXPECT_EQ(lx.devices[0].type, 'c');
  EXPECT_EQ(lx.devices[0].major, 10);
  EXPECT_EQ(lx.devices[0].minor, 229);
  EXPECT_EQ(lx.devices[0].file_mode, 438u);
  EXPECT_EQ(lx.devices[0].uid, 0u);
  EXPECT_EQ(lx.devices[1].type, 'p');
  EXPECT_EQ(lx.cgroups_path, "/zrun/c1");

  ASSERT_TRUE(lx.resources);
  const Resources& res = *lx.resources;
  ASSERT_EQ(res.devices.size(), 2u);
  EXPECT_FALSE(res.devices[0].allow);
  EXPECT_EQ(res.devices[0].type, "a");
  EXPECT_FALSE(res.devices[0].major);
  EXPECT_EQ(res.devices[1].type, "c");
  EXPECT_EQ(res.devices[1].major, 1);
  EXPECT_EQ(res.devices[1].access, "rw");
  ASSERT_TRUE(res.memory);
  EXPECT_EQ(res.memory->limit, 1048576);
  EXPECT_EQ(res.memory->reservation, 1024);
  EXPECT_EQ(res.memory->swap, -1);
  EXPECT_EQ(res.memory->kernel, 1);
  EXPECT_EQ(res.memory->kernel_tcp, 2);
  EXPECT_EQ(res.memory->swappiness, 60u);
  EXPECT_EQ(res.memory->disable_oom_killer, true);
  EXPECT_EQ(res.memory->use_hierarchy, false);
  EXPECT_EQ(res.memory->check_before_update, true);
  ASSERT_TRUE(res.cpu);
  EXPECT_EQ(res.cpu->shares, 512u);
  EXPECT_EQ(res.cpu->quota, 50000);
  EXPECT_EQ(res.cpu->burst, 10u);
  EXPECT_EQ(res.cpu->period, 100000u);
  EXPECT_EQ(res.cpu->realtime_runtime, 1);
  EXPECT_EQ(res.cpu->realtime_period, 2u);
  EXPECT_EQ(res.cpu->cpus, "0-1");
  EXPECT_EQ(res.cpu->mems, "0");
  EXPECT_EQ(res.cpu->idle, 1);
  EXPECT_EQ(res.pids_limit, 100);
  ASSERT_TRUE(res.block_io);
  EXPECT_EQ(res.block_io->weight, 500);
  EXPECT_EQ(res.block_io->leaf_weight, 300);
  ASSERT_EQ(res.block_io->weight_device.size(), 1u);
  EXPECT_EQ(res.block_io->weight_device[0].weight, 100);
  EXPECT_FALSE(res.block_io->weight_device[0].leaf_weight);
  EXPECT_EQ(res.block_io->throttle_read_bps_device.at(0).rate, 1000u);
  EXPECT_EQ(res.block_io->throttle_write_bps_device.at(0).rate, 2000u);
  EXPECT_EQ(res.block_io->throttle_read_iops_device.at(0).rate, 3u);
  EXPECT_EQ(res.block_io->throttle_write_iops_device.at(0).rate, 4u);
  ASSERT_EQ(res.hugepage_limits.size(), 1u);
  EXPECT_EQ(res.hugepage_limits[0].page_size, "2MB");
  EXPECT_EQ(res.hugepage_limits[0].limit, 4194304u);
  EXPECT_EQ(res.rdma.at("mlx5_1").hca_handles, 3u);
  EXPECT_EQ(res.rdma.at("mlx5_1").hca_objects, 10000u);
  EXPECT_EQ(res.unified.at("memory.high"), "max");

  EXPECT_EQ(lx.rootfs_propagation, "rslave");
  ASSERT_TRUE(lx.seccomp);
  const Seccomp& sc = *lx.seccomp;
  EXPECT_EQ(sc.default_action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(sc.default_errno_ret, 1u);
  EXPECT_EQ(sc.architectures, (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}));
  EXPECT_EQ(sc.flags, std::vector<std::string>{"SECCOMP_FILTER_FLAG_LOG"});
  EXPECT_EQ(sc.listener_path, "/run/l.sock");
  EXPECT_EQ(sc.listener_metadata, "m");
  ASSERT_EQ(sc.syscalls.size(), 2u);
  EXPECT_EQ(sc.syscalls[0].names, (std::vector<std::string>{"read", "write"}));
  EXPECT_FALSE(sc.syscalls[0].errno_ret);
  EXPECT_EQ(sc.syscalls[1].errno_ret, 38u);
  ASSERT_EQ(sc.syscalls[1].args.size(), 1u);
  EXPECT_EQ(sc.syscalls[1].args[0].index, 0u);
  EXPECT_EQ(sc.syscalls[1].args[0].value, 8u);
  EXPECT_EQ(sc.syscalls[1].args[0].op, "SCMP_CMP_EQ");
  EXPECT_EQ(lx.sysctl.at("net.ipv4.ip_forward"), "1");
  EXPECT_EQ(lx.masked_paths, std::vector<std::string>{"/proc/kcore"});
  EXPECT_EQ(lx.readonly_paths, std::vector<std::string>{"/proc/sys"});
  EXPECT_EQ(lx.mount_label, "ml");
  EXPECT_EQ(lx.intel_rdt_closid, "c");
}

TEST(SpecParse, NullMeansAbsent) {
  auto j = minimal();
  j["hostname"] = nullptr;
  j["process"]["env"] = nullptr;
  j["mounts"] = nullptr;
  EXPECT_EQ(error_of(j), "");
}

TEST(SpecParse, NoProcessIsAllowed) {
  auto j = minimal();
  j.erase("process");
  auto r = parse_config(j.dump(), "/b");
  ASSERT_TRUE(r.ok()) << r.error().text();
  EXPECT_FALSE(r->process);
}

TEST(SpecParse, RelativeBundleIsMadeAbsolute) {
  auto r = parse_config(minimal().dump(), "some/bundle");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->root.path.front(), '/');
  EXPECT_TRUE(r->root.path.ends_with("/some/bundle/rootfs")) << r->root.path;
}

TEST(SpecParse, SyntaxError) {
  auto r = parse_config("{\"ociVersion\": ", "/b");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().text().rfind("config.json: parse error at line 1", 0), 0u)
      << r.error().text();
  EXPECT_EQ(parse_config("[]", "/b").error().text(), "config.json: expected a JSON object");
}

TEST(SpecParse, Version) {
  auto j = minimal();
  j.erase("ociVersion");
  EXPECT_EQ(error_of(j), "config.json: .ociVersion: missing required field");
  j["ociVersion"] = "2.0.0";
  EXPECT_EQ(error_of(j), "config.json: .ociVersion: unsupported version \"2.0.0\" (want 1.x)");
  j["ociVersion"] = "0.9.0";
  EXPECT_EQ(error_of(j), "config.json: .ociVersion: unsupported version \"0.9.0\" (want 1.x)");
  j["ociVersion"] = 1;
  EXPECT_EQ(error_of(j), "config.json: .ociVersion: expected string");
  j["ociVersion"] = "1.3.0";
  EXPECT_EQ(error_of(j), "");
}

struct Case {
  const char* json_pointer;  // where to put `value` ("" = remove the pointer's target)
  const char* value;         // JSON text
  const char* error;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.json_pointer << " = " << c.value; }

class SpecParseError : public ::testing::TestWithParam<Case> {};

TEST_P(SpecParseError, NamesThePath) {
  auto j = minimal();
  const Case& c = GetParam();
  json::json_pointer ptr(c.json_pointer);
  if (std::string(c.value) == "<remove>")
    j[ptr.parent_pointer()].erase(ptr.back());
  else
    j[ptr] = json::parse(c.value);
  EXPECT_EQ(error_of(j), c.error);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SpecParseError,
    ::testing::Values(
        Case{"/root", "<remove>", "config.json: .root: missing required field"},
        Case{"/root", "\"rootfs\"", "config.json: .root: expected object"},
        Case{"/root/path", "<remove>", "config.json: .root.path: missing required field"},
        Case{"/root/path", "\"\"", "config.json: .root.path: must not be empty"},
        Case{"/root/readonly", "\"yes\"", "config.json: .root.readonly: expected boolean"},
        Case{"/process/args", "\"sh\"", "config.json: .process.args: expected array of strings"},
        Case{"/process/args", "[\"sh\", 1]",
             "config.json: .process.args: expected array of strings"},
        Case{"/process/args", "[]", "config.json: .process.args: must not be empty"},
        Case{"/process/cwd", "\"rel\"", "config.json: .process.cwd: must be an absolute path"},
        Case{"/process/cwd", "\"\"", "config.json: .process.cwd: must be an absolute path"},
        Case{"/process/user/uid", "-1",
             "config.json: .process.user.uid: expected unsigned 32-bit integer"},
        Case{"/process/user/uid", "4294967296",
             "config.json: .process.user.uid: expected unsigned 32-bit integer"},
        Case{"/process/user/gid", "1.5",
             "config.json: .process.user.gid: expected unsigned 32-bit integer"},
        Case{"/process/user/additionalGids", "[1, \"x\"]",
             "config.json: .process.user.additionalGids[1]: expected unsigned 32-bit integer"},
        Case{"/process/terminal", "1", "config.json: .process.terminal: expected boolean"},
        Case{"/process/consoleSize", "{\"height\": 1}",
             "config.json: .process.consoleSize.width: missing required field"},
        Case{"/process/env", "{}", "config.json: .process.env: expected array of strings"},
        Case{"/process/oomScoreAdj", "1001",
             "config.json: .process.oomScoreAdj: must be between -1000 and 1000"},
        Case{"/process/capabilities/effective", "[\"CAP_KILL\", \"CAP_FOO\"]",
             "config.json: .process.capabilities.effective[1]: unknown capability \"CAP_FOO\""},
        Case{"/process/capabilities/bounding", "[\"12\"]",
             "config.json: .process.capabilities.bounding[0]: unknown capability \"12\""},
        Case{"/process/rlimits", "[{\"type\": \"RLIMIT_FOO\", \"hard\": 1, \"soft\": 1}]",
             "config.json: .process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\""},
        Case{"/process/rlimits",
             "[{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1, \"soft\": 1},"
             " {\"type\": \"RLIMIT_NOFILE\", \"hard\": 2, \"soft\": 2}]",
             "config.json: .process.rlimits[1].type: duplicate rlimit \"RLIMIT_NOFILE\""},
        Case{"/process/rlimits", "[{\"type\": \"RLIMIT_CORE\", \"hard\": 1}]",
             "config.json: .process.rlimits[0].soft: missing required field"},
        Case{"/process/rlimits", "[{\"type\": \"RLIMIT_CORE\", \"hard\": 1, \"soft\": 2}]",
             "config.json: .process.rlimits[0]: soft limit 2 exceeds hard limit 1"},
        Case{"/process/rlimits", "[1]", "config.json: .process.rlimits[0]: expected object"},
        Case{"/process/rlimits", "{}", "config.json: .process.rlimits: expected array"},
        Case{"/mounts", "[{\"type\": \"tmpfs\"}]",
             "config.json: .mounts[0].destination: missing required field"},
        Case{"/mounts", "[{\"destination\": \"/a\"}, {\"destination\": \"\"}]",
             "config.json: .mounts[1].destination: must not be empty"},
        Case{"/mounts", "[{\"destination\": \"/a\", \"options\": \"ro\"}]",
             "config.json: .mounts[0].options: expected array of strings"},
        Case{"/mounts",
             "[{\"destination\": \"/a\", \"uidMappings\": [{\"containerID\": 0, \"hostID\": 0,"
             " \"size\": 0}]}]",
             "config.json: .mounts[0].uidMappings[0].size: must be greater than 0"},
        Case{"/hooks", "{\"prestart\": [{\"path\": \"rel/hook\"}]}",
             "config.json: .hooks.prestart[0].path: must be an absolute path"},
        Case{"/hooks", "{\"poststop\": [{\"path\": \"/h\"}, {\"path\": \"/h\", \"timeout\": 0}]}",
             "config.json: .hooks.poststop[1].timeout: must be greater than 0"},
        Case{"/hooks", "{\"createRuntime\": [{\"path\": \"/h\", \"timeout\": -3}]}",
             "config.json: .hooks.createRuntime[0].timeout: must be greater than 0"},
        Case{"/hooks", "{\"startContainer\": [{\"args\": []}]}",
             "config.json: .hooks.startContainer[0].path: missing required field"},
        Case{"/annotations", "{\"a\": 1}", "config.json: .annotations: expected object of strings"},
        Case{"/hostname", "\"\"", ""},
        Case{"/linux/namespaces",
             "[{\"type\": \"pid\"}, {\"type\": \"mount\"}, {\"type\": \"netx\"}]",
             "config.json: .linux.namespaces[2].type: unknown namespace \"netx\""},
        Case{"/linux/namespaces",
             "[{\"type\": \"pid\"}, {\"type\": \"mount\"}, {\"type\": \"pid\"}]",
             "config.json: .linux.namespaces[2].type: duplicate namespace \"pid\""},
        Case{"/linux/namespaces", "[{\"type\": \"network\", \"path\": \"x\"}]",
             "config.json: .linux.namespaces[0].path: must be an absolute path"},
        Case{"/linux/namespaces", "[{}]",
             "config.json: .linux.namespaces[0].type: missing required field"},
        Case{"/linux/namespaces", "[{\"type\": \"mount\"}]",
             "config.json: .hostname: setting the hostname requires a UTS namespace"},
        Case{"/linux/uidMappings", "[{\"containerID\": 0, \"hostID\": 1000, \"size\": 0}]",
             "config.json: .linux.uidMappings[0].size: must be greater than 0"},
        Case{"/linux/uidMappings", "[{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}]",
             "config.json: .linux.uidMappings: user namespace mappings require a user namespace"},
        Case{"/linux/namespaces", "[{\"type\": \"user\"}]",
             "config.json: .linux.namespaces: a new user namespace requires uidMappings and "
             "gidMappings"},
        Case{"/linux/timeOffsets", "{\"monotonic\": {\"secs\": 1}}",
             "config.json: .linux.timeOffsets: time offsets require a time namespace"},
        Case{"/linux/timeOffsets", "{\"realtime\": {\"secs\": 1}}",
             "config.json: .linux.timeOffsets.realtime: unknown clock \"realtime\""},
        Case{"/linux/devices",
             "[{\"path\": \"/dev/x\", \"type\": \"z\", \"major\": 1, "
             "\"minor\": 1}]",
             "config.json: .linux.devices[0].type: unknown device type \"z\""},
        Case{"/linux/devices",
             "[{\"path\": \"dev/x\", \"type\": \"c\", \"major\": 1, "
             "\"minor\": 1}]",
             "config.json: .linux.devices[0].path: must be an absolute path"},
        Case{"/linux/devices", "[{\"path\": \"/dev/x\", \"type\": \"b\"}]",
             "config.json: .linux.devices[0].major: missing required field"},
        Case{"/linux/resources", "{\"devices\": [{\"allow\": true, \"access\": \"rwx\"}]}",
             "config.json: .linux.resources.devices[0].access: invalid access \"rwx\""},
        Case{"/linux/resources", "{\"devices\": [{\"access\": \"rwm\"}]}",
             "config.json: .linux.resources.devices[0].allow: missing required field"},
        Case{"/linux/resources", "{\"memory\": {\"limit\": \"1G\"}}",
             "config.json: .linux.resources.memory.limit: expected 64-bit integer"},
        Case{"/linux/resources", "{\"memory\": {\"swappiness\": 101}}",
             "config.json: .linux.resources.memory.swappiness: must be between 0 and 100"},
        Case{"/linux/resources", "{\"cpu\": {\"shares\": -2}}",
             "config.json: .linux.resources.cpu.shares: expected unsigned 64-bit integer"},
        Case{"/linux/resources", "{\"blockIO\": {\"weight\": 70000}}",
             "config.json: .linux.resources.blockIO.weight: expected unsigned 16-bit integer"},
        Case{"/linux/resources", "{\"pids\": 5}",
             "config.json: .linux.resources.pids: expected object"},
        Case{"/linux/resources", "{\"unified\": {\"memory.max\": 5}}",
             "config.json: .linux.resources.unified: expected object of strings"},
        Case{"/linux/rootfsPropagation", "\"rprivatex\"",
             "config.json: .linux.rootfsPropagation: unknown propagation \"rprivatex\""},
        Case{"/linux/seccomp", "{}",
             "config.json: .linux.seccomp.defaultAction: missing required field"},
        Case{"/linux/seccomp", "{\"defaultAction\": \"SCMP_ACT_NOPE\"}",
             "config.json: .linux.seccomp.defaultAction: unknown seccomp action "
             "\"SCMP_ACT_NOPE\""},
        Case{"/linux/seccomp",
             "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
             "\"action\": \"SCMP_ACT_ALLOW\"}, {\"names\": [\"x\"], \"action\": \"ALLOW\"}]}",
             "config.json: .linux.seccomp.syscalls[1].action: unknown seccomp action \"ALLOW\""},
        Case{"/linux/seccomp",
             "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
             "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1, "
             "\"op\": \"SCMP_CMP_XX\"}]}]}",
             "config.json: .linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator "
             "\"SCMP_CMP_XX\""},
        Case{"/linux/seccomp",
             "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [], "
             "\"action\": \"SCMP_ACT_ERRNO\"}]}",
             "config.json: .linux.seccomp.syscalls[0].names: must not be empty"},
        Case{"/linux/seccomp",
             "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_Z80\"]}",
             "config.json: .linux.seccomp.architectures[0]: unknown seccomp architecture "
             "\"SCMP_ARCH_Z80\""},
        Case{"/linux/seccomp", "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"X\"]}",
             "config.json: .linux.seccomp.flags[0]: unknown seccomp flag \"X\""},
        Case{"/linux/maskedPaths", "[\"proc/kcore\"]",
             "config.json: .linux.maskedPaths[0]: must be an absolute path"},
        Case{"/linux/sysctl", "[]", "config.json: .linux.sysctl: expected object of strings"},
        Case{"/linux", "[]", "config.json: .linux: expected object"}));

TEST(SpecParse, UserNamespaceWithMappings) {
  auto j = minimal();
  j["linux"]["namespaces"].push_back({{"type", "user"}});
  j["linux"]["uidMappings"] = json::parse(R"([{"containerID": 0, "hostID": 1000, "size": 1}])");
  EXPECT_EQ(error_of(j),
            "config.json: .linux.namespaces: a new user namespace requires uidMappings and "
            "gidMappings");
  j["linux"]["gidMappings"] = j["linux"]["uidMappings"];
  EXPECT_EQ(error_of(j), "");
  // Joining an existing user namespace needs no mappings.
  auto k = minimal();
  k["linux"]["namespaces"].push_back({{"type", "user"}, {"path", "/proc/1/ns/user"}});
  EXPECT_EQ(error_of(k), "");
}

TEST(SpecParse, TimeNamespaceWithOffsets) {
  auto j = minimal();
  j["linux"]["namespaces"].push_back({{"type", "time"}});
  j["linux"]["timeOffsets"] = json::parse(R"({"boottime": {"secs": 1, "nanosecs": 1000000000}})");
  EXPECT_EQ(error_of(j),
            "config.json: .linux.timeOffsets.boottime.nanosecs: must be less than 1000000000");
  j["linux"]["timeOffsets"]["boottime"]["nanosecs"] = 2;
  EXPECT_EQ(error_of(j), "");
}

TEST(SpecParse, LoadBundle) {
  char tmpl[] = "/tmp/zrun-spec-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto missing = load_bundle(dir);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().msg, "load bundle: open `" + dir + "/config.json`");
  ASSERT_TRUE(base::write_file(dir + "/config.json", minimal().dump()).ok());
  auto r = load_bundle(dir);
  ASSERT_TRUE(r.ok()) << r.error().text();
  EXPECT_EQ(r->root.path, dir + "/rootfs");
  ASSERT_TRUE(base::remove_tree(dir).ok());
}

}  // namespace
}  // namespace zrun::spec
