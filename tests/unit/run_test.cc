// Tests for include/sparsemem/run.h: the interpreter's shell subset with busybox's messages, host
// actions and their QMP events, step 000, QEMU refusing a command line, and unsupported commands.
#include "sparsemem/run.h"

#include <gtest/gtest.h>

#include "sparsemem/diff.h"

namespace sparsemem {
namespace {

RunResult run_text(std::string_view text) {
  auto sc = parse_scenario(text, "t.scn");
  EXPECT_TRUE(sc) << (sc ? "" : sc.error().message);
  auto r = run_scenario(*sc);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? std::move(*r) : RunResult{};
}

const CommandRecord& cmd(const RunResult& r, size_t step, size_t i) { return r.trace.steps.at(step).commands.at(i); }

// One of the public scenarios (tests/scenarios/NAME.scn).
Scenario public_scenario(const std::string& name) {
  auto sc = load_scenario(std::string(SPM_TEST_DATA) + "/../scenarios/" + name + ".scn");
  EXPECT_TRUE(sc) << (sc ? "" : sc.error().message);
  return sc ? std::move(*sc) : Scenario{};
}

// Scenario: writes that fail at open and at write, reads of missing files, ls, grep, chains.
// Expect: busybox ash's exact messages and statuses, as the oracle recorded them (trace f_errors).
TEST(RunShell, BusyboxMessages) {
  const RunResult r = run_text(
      "modules: none\n"
      "step s\n"
      "    echo 1 > /sys/devices/system/memory/memory32/phys_index\n"
      "    echo offline > /sys/devices/system/memory/memory999/state\n"
      "    echo online > /sys/devices/system/memory/memory32/state\n"
      "    cat /sys/devices/system/memory/memory999/state\n"
      "    cat /sys/devices/system/memory/block_size_bytes /sys/devices/system/memory/memory0/valid_zones\n"
      "    grep Hugepagesize /proc/meminfo\n"
      "    test -e /sys/devices/system/memory/memory32 && echo yes || echo no\n"
      "    ! test -e /sys/devices/system/memory/memory24\n"
      "    ls /sys/devices/system/node/nope\n"
      "    printf online_movable > /dev/null; echo done\n");
  ASSERT_EQ(r.trace.steps.size(), 2u);
  EXPECT_TRUE(r.unsupported.empty());
  EXPECT_EQ(cmd(r, 1, 0).rc, 1);
  EXPECT_EQ(cmd(r, 1, 0).err, "sh: can't create /sys/devices/system/memory/memory32/phys_index: Permission denied");
  EXPECT_EQ(cmd(r, 1, 1).err, "sh: can't create /sys/devices/system/memory/memory999/state: nonexistent directory");
  EXPECT_EQ(cmd(r, 1, 2).rc, 1);
  EXPECT_EQ(cmd(r, 1, 2).err, "sh: write error: Invalid argument");
  EXPECT_EQ(cmd(r, 1, 3).err, "cat: can't open '/sys/devices/system/memory/memory999/state': No such file or directory");
  EXPECT_EQ(cmd(r, 1, 4).out, "8000000\nnone");
  EXPECT_EQ(cmd(r, 1, 5).out, "Hugepagesize:       2048 kB");
  EXPECT_EQ(cmd(r, 1, 6).out, "yes");
  EXPECT_EQ(cmd(r, 1, 7).rc, 0);
  EXPECT_EQ(cmd(r, 1, 8).err, "ls: /sys/devices/system/node/nope: No such file or directory");
  EXPECT_EQ(cmd(r, 1, 9).out, "done");
}

// Scenario: the oracle's guest helpers on a cold-plugged DIMM (trace b_dimm_coldplug).
// Expect: setstate's per-block lines on stdout and stderr with rc 1 for a failure, blocks_in's ids,
// memblocks' line format, waitfor's timeout message.
TEST(RunShell, GuestHelpers) {
  const RunResult r = run_text(
      "qemu: -object memory-backend-ram,id=m1,size=1G -device pc-dimm,id=dimm1,memdev=m1\n"
      "modules: none\n"
      "step s\n"
      "    setstate online_movable 48 49\n"
      "    setstate offline 49 50\n"
      "    blocks_in 0x180000000 0x10000000\n"
      "    memblocks\n"
      "    waitfor 5 test -e /sys/devices/system/memory/memory99\n");
  EXPECT_EQ(cmd(r, 1, 0).out, "memory48: online_movable ok\nmemory49: online_movable ok");
  EXPECT_EQ(cmd(r, 1, 1).rc, 1);
  EXPECT_EQ(cmd(r, 1, 1).out, "memory49: offline ok");
  EXPECT_EQ(cmd(r, 1, 1).err, "sh: write error: Invalid argument\nmemory50: offline FAILED");
  EXPECT_EQ(cmd(r, 1, 2).out, "48\n49");
  EXPECT_NE(cmd(r, 1, 3).out->find("48|online|00000030|Movable|1|0|-|node0"), std::string::npos);
  EXPECT_EQ(cmd(r, 1, 4).rc, 1);
  EXPECT_EQ(cmd(r, 1, 4).err, "waitfor: timeout after 5s: test -e /sys/devices/system/memory/memory99");
  const auto& blocks = *r.trace.steps[1].snapshot.memory_blocks;
  EXPECT_EQ(std::count_if(blocks.begin(), blocks.end(), [](const MemoryBlockEntry& b) { return b.state == "online"; }),
            33 + 1);  // boot blocks 0-23 and 32-40, and memory48
}

// Scenario: QMP/HMP hot-add of a DIMM, device_del with wait_event, then a guest-initiated eject.
// Expect: the ACPI_DEVICE_OST insertion event on device_add, the eject events on device_del claimed
// by wait_event, the guest eject's events delivered at the next host action, the device gone from
// query-memory-devices.
TEST(RunHost, DimmHotplugEvents) {
  const RunResult r = run_text(
      "modules: none\n"
      "host add\n"
      "    hmp object_add memory-backend-ram,id=m1,size=1G\n"
      "    qmp {\"execute\":\"device_add\",\"arguments\":{\"driver\":\"pc-dimm\",\"id\":\"d1\",\"memdev\":\"m1\"}}\n"
      "    hmp object_add memory-backend-ram,id=m2,size=1G\n"
      "    hmp device_add pc-dimm,id=d2,memdev=m2\n"
      "host del\n"
      "    hmp device_del d1\n"
      "    wait_event DEVICE_DELETED 60\n"
      "step eject\n"
      "    acpi_eject_block 56\n"
      "host view\n"
      "    qmp {\"execute\":\"query-memory-devices\"}\n");
  EXPECT_TRUE(r.unsupported.empty());
  const auto& add = *r.trace.steps[1].host_actions;
  EXPECT_EQ(add[0].response, (OrderedJson{{"return", ""}}));
  EXPECT_EQ(add[1].response, (OrderedJson{{"return", OrderedJson::object()}}));
  ASSERT_EQ(add[1].events->size(), 1u);
  EXPECT_EQ((*add[1].events)[0]["event"], "ACPI_DEVICE_OST");
  EXPECT_EQ((*add[1].events)[0]["data"]["info"]["device"], "d1");
  const auto& del = *r.trace.steps[2].host_actions;
  ASSERT_EQ(del[0].events->size(), 3u);
  EXPECT_EQ((*del[0].events)[0]["data"]["info"]["status"], 132);
  EXPECT_EQ((*del[0].events)[1]["event"], "DEVICE_DELETED");
  EXPECT_FALSE((*del[0].events)[2]["data"]["info"].contains("device"));
  EXPECT_EQ((*del[1].response)["event"], "DEVICE_DELETED");
  EXPECT_TRUE(del[1].events->empty());
  EXPECT_EQ(cmd(r, 3, 0).out, "ejecting PNP0C80:01 (\\_SB_.MHPC.MP01)");
  const auto& view = *r.trace.steps[4].host_actions;
  ASSERT_EQ(view[0].events->size(), 3u);
  EXPECT_EQ((*view[0].events)[2]["data"]["info"]["source"], 259);
  EXPECT_EQ((*view[0].response)["return"], OrderedJson::array());
  EXPECT_EQ(*r.trace.final_memory_devices, (OrderedJson{{"return", OrderedJson::array()}}));
}

// Scenario: QMP lines with unexpected types and an unknown host verb.
// Expect: no exception; a non-string "execute" is an unsupported QMP command named with its line,
// a non-string id is QEMU's "not found", an unknown verb gets the oracle's own error reply.
TEST(RunHost, OddQmpLines) {
  const RunResult r = run_text(
      "modules: none\n"
      "host h\n"
      "    qmp {\"execute\":5}\n"
      "    qmp {\"execute\":\"device_del\",\"arguments\":{\"id\":7}}\n"
      "    frobnicate now\n");
  ASSERT_EQ(r.unsupported.size(), 1u);
  EXPECT_NE(r.unsupported[0].find("at t.scn:3"), std::string::npos) << r.unsupported[0];
  const auto& acts = *r.trace.steps.at(1).host_actions;
  EXPECT_EQ((*acts.at(1).response)["error"]["class"], "GenericError");
  EXPECT_EQ((*acts.at(2).response)["error"]["desc"], "unknown host action frobnicate");
}

// Scenario: step 000 with the default modules, and a scenario whose QEMU line QEMU refuses
// (trace d0_nvdimm_unaligned_addr).
// Expect: one "modprobe M" command per default module; the refused start is a trace with the
// qemu-start error, no steps and completed false.
TEST(RunBoot, ModulesAndQemuRefusal) {
  const RunResult ok = run_text("step s\n    true\n");
  EXPECT_TRUE(ok.notes.empty());  // no NVDIMM: the nvdimm modules find nothing to model
  ASSERT_EQ(ok.trace.steps[0].commands.size(), 6u);
  EXPECT_EQ(cmd(ok, 0, 0).cmd, "modprobe nfit");
  EXPECT_EQ(cmd(ok, 0, 5).cmd, "modprobe kmem");
  EXPECT_TRUE(ok.trace.completed);
  const RunResult bad = run_text(
      "qemu: -machine pc,nvdimm=on -m 4160M,maxmem=20G,slots=1\n"
      "qemu: -object memory-backend-ram,id=mem0,size=8G\n"
      "qemu: -device nvdimm,id=vm0,memdev=mem0,node=0,addr=0x144000000,label-size=128k\n");
  EXPECT_FALSE(bad.trace.completed);
  EXPECT_TRUE(bad.trace.steps.empty());
  ASSERT_EQ(bad.trace.errors.size(), 2u);
  EXPECT_EQ(bad.trace.errors[1].where, "qemu-start");
  EXPECT_NE(bad.trace.qemu_output->find("can't add memory device [0x144000000:0x1ffe00000]"), std::string::npos);
}

// Scenario: commands outside the shell subset, a module that does not exist, a model gap.
// Expect: each unsupported line is reported with FILE:LINE and recorded as rc 127 with the same
// text; modprobe of an unknown module is the real modprobe's error, not a model gap.
TEST(RunShell, UnsupportedIsNamedNeverSkipped) {
  const RunResult r = run_text(
      "modules: none\n"
      "step s\n"
      "    cat /proc/meminfo | head -1\n"
      "    modprobe nosuchmodule\n"
      "    echo 0x1000 > /sys/devices/system/memory/soft_offline_page\n"
      "    ndctl check-namespace all\n");
  ASSERT_EQ(r.unsupported.size(), 3u);
  EXPECT_NE(r.unsupported[0].find("'cat /proc/meminfo | head -1' at t.scn:3"), std::string::npos) << r.unsupported[0];
  EXPECT_NE(r.unsupported[1].find("at t.scn:5"), std::string::npos) << r.unsupported[1];
  EXPECT_NE(r.unsupported[2].find("at t.scn:6"), std::string::npos) << r.unsupported[2];
  EXPECT_EQ(cmd(r, 1, 0).rc, 127);
  EXPECT_NE(cmd(r, 1, 0).err->find("unsupported command"), std::string::npos);
  EXPECT_EQ(cmd(r, 1, 1).rc, 1);
  EXPECT_EQ(cmd(r, 1, 1).err, "modprobe: FATAL: Module nosuchmodule not found in directory /lib/modules/6.1.0-56-amd64");
  EXPECT_FALSE(r.trace.completed);
}

// Scenario: the checker's findings are kept in the trace under a key of our own.
// Expect: every step's snapshot has "sparsemem_checker" (empty for a healthy machine).
TEST(RunBoot, CheckerKeyInEverySnapshot) {
  const RunResult r = run_text("modules: none\nstep s\n    true\n");
  for (const TraceStep& s : r.trace.steps) {
    ASSERT_TRUE(s.snapshot.extra.contains(std::string(kCheckerTraceKey)));
    EXPECT_TRUE(s.snapshot.extra[std::string(kCheckerTraceKey)].empty());
  }
  EXPECT_TRUE(r.violations.empty());
}

// Scenario: b_dimm_coldplug started as a session with only its first step, the machine inspected,
// then its remaining steps run one at a time with run_step().
// Expect: after step 1 the machine has memory48 online in ZONE_MOVABLE and memory50 offline (the
// trace's step-1 block list says so); the finished session's trace equals run_scenario()'s of the
// whole file, observation for observation.
TEST(ScenarioSession, StepwiseEqualsBatch) {
  const Scenario sc = public_scenario("b_dimm_coldplug");
  ASSERT_FALSE(sc.steps.empty());
  Scenario first = sc;
  first.steps.resize(1);
  auto started = ScenarioSession::start(first);
  ASSERT_TRUE(started) << started.error().message;
  ScenarioSession& s = **started;
  ASSERT_TRUE(s.booted());
  const Machine* m = s.machine();
  ASSERT_NE(m, nullptr);
  const MemoryBlock* b48 = m->memory_blocks().find(BlockId(48));
  const MemoryBlock* b50 = m->memory_blocks().find(BlockId(50));
  ASSERT_TRUE(b48 && b50);
  EXPECT_EQ(b48->state, MemoryBlockState::Online);
  EXPECT_EQ(b48->zone, ZoneType::Movable);
  EXPECT_EQ(b50->state, MemoryBlockState::Offline);
  for (size_t i = 1; i < sc.steps.size(); ++i) {
    const TraceStep& step = s.run_step(sc.steps[i]);
    EXPECT_EQ(step.index, static_cast<int64_t>(i + 1));
    EXPECT_EQ(step.name, sc.steps[i].name);
  }
  const RunResult stepwise = s.finish();
  auto batch = run_scenario(sc);
  ASSERT_TRUE(batch);
  const DiffResult d = diff_traces(batch->trace, stepwise.trace);
  EXPECT_EQ(d.mismatched, 0u) << format_diff(d);
  EXPECT_GT(d.matched, 1000u);
}

// Scenario: b_dimm_coldplug (QEMU pc, a cold-plugged 1 GiB DIMM) replayed with --arch arm64-4k-48
// and arm64-64k-52.
// Expect: the machine becomes virt (RAM from 0x40000000, the DIMM at the 1 GiB-aligned end of RAM,
// 0x180000000, present in ACPI slot 0 because the replay boots through UEFI and so has the GED),
// with a warning saying so. With 4K pages the blocks are 128 MiB, so memory48..55 are the DIMM and
// every command runs as on x86 (the last step fails on x86 too); with 64K pages blocks are 512 MiB,
// memory48 does not exist and step 1's write fails as the guest's shell reports it.
TEST(RunArch, X86ScenarioOnArm64UsesVirtLayout) {
  const Scenario sc = public_scenario("b_dimm_coldplug");
  RunOptions opts;
  opts.arch = &kArm64_4K_48;
  auto r = run_scenario(sc, opts);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->trace.completed);
  const Snapshot& boot = r->trace.steps.at(0).snapshot;
  ASSERT_TRUE(boot.iomem_raw.has_value());
  EXPECT_EQ(boot.iomem_raw->front(), "40000000-143ffffff : System RAM");
  bool dimm = false;
  for (const std::string& l : *boot.iomem_raw) dimm |= l == "180000000-1bfffffff : System RAM";
  EXPECT_TRUE(dimm);
  ASSERT_TRUE(boot.acpi_memory_devices.has_value());
  EXPECT_EQ(boot.acpi_memory_devices->at(0).status, "15");
  for (size_t i = 1; i + 1 < r->trace.steps.size(); ++i)
    for (const CommandRecord& c : r->trace.steps[i].commands) EXPECT_EQ(c.rc, 0) << c.cmd.value_or(std::string()) << ": " << c.err.value_or(std::string());

  opts.arch = &kArm64_64K_52;
  auto r64 = run_scenario(sc, opts);
  ASSERT_TRUE(r64) << r64.error().message;
  const CommandRecord& online48 = r64->trace.steps.at(1).commands.at(0);
  EXPECT_EQ(online48.rc, 1);
  EXPECT_NE(online48.err.value_or("").find("memory48/state: nonexistent directory"), std::string::npos);
}

}  // namespace
}  // namespace sparsemem
