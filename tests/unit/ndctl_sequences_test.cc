// The command sequences of ndctl's own tests (pmem/ndctl v76.1 test/sub-section.sh, test/align.sh,
// test/daxctl-devices.sh) run as scenarios on the simulator, adapted to the oracle's QEMU NVDIMM
// machine, with the tools' exit codes, stderr and sizes of ndctl-daxctl.md §4-§10.
#include <gtest/gtest.h>

#include <tuple>

#include <nlohmann/json.hpp>

#include "sparsemem/run.h"
#include "sparsemem/scenario.h"

namespace sparsemem {
namespace {

using json = nlohmann::ordered_json;  // keeps the tools' key order

// 8G NVDIMM with a 128k label area at 0x180000000 (region0 = 8G - 2M), the default modules.
constexpr std::string_view kNvdimmMachine =
    "qemu: -machine pc,nvdimm=on -m 4160M,maxmem=20G,slots=1\n"
    "qemu: -object memory-backend-ram,id=mem0,size=8G\n"
    "qemu: -device nvdimm,id=vm0,memdev=mem0,node=0,label-size=128k\n";

struct Out {
  int64_t rc = -1;
  std::string out, err;
  json j() const { return json::parse(out); }
};

// A guest shell on the simulated NVDIMM machine: every sh() is one scenario step.
class Guest {
 public:
  Guest() {
    auto sc = parse_scenario(kNvdimmMachine, "seq.scn");
    EXPECT_TRUE(sc) << (sc ? "" : sc.error().message);
    if (!sc) return;
    auto s = ScenarioSession::start(std::move(*sc));
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    if (s) m_session = std::move(*s);
  }
  explicit operator bool() const { return m_session && m_session->booted(); }

  Out sh(const std::string& line) {
    ScenarioStep step;
    step.name = fmt::format("s{}", ++m_steps);
    step.commands = {StepLine{line, 0}};
    step.lines = step.commands;
    const TraceStep& t = m_session->run_step(std::move(step));
    EXPECT_EQ(t.commands.size(), 1u) << line;
    if (t.commands.empty()) return {};
    const CommandRecord& c = t.commands[0];
    return Out{c.rc.value_or(-1), c.out.value_or(""), c.err.value_or("")};
  }
  // Runs `line` and expects exit 0.
  Out ok(const std::string& line) {
    Out o = sh(line);
    EXPECT_EQ(o.rc, 0) << line << "\n" << o.err;
    return o;
  }
  // ndctl disable-region all; init-labels all; enable-region all (every sequence's start).
  void init_labels() {
    EXPECT_EQ(ok("ndctl disable-region all").err, "disabled 1 region");
    EXPECT_EQ(ok("ndctl init-labels all").err, "initialized 1 nmem");
    EXPECT_EQ(ok("ndctl enable-region all").err, "enabled 1 region");
  }
  // Nothing unsupported, no checker finding in any step so far.
  void expect_clean() const {
    const RunResult& r = m_session->result();
    EXPECT_TRUE(r.unsupported.empty()) << r.unsupported.front();
    EXPECT_TRUE(r.violations.empty()) << r.violations.front();
  }
  const Machine& machine() const { return *m_session->machine(); }

 private:
  std::unique_ptr<ScenarioSession> m_session;
  int m_steps = 0;
};

json region0(Guest& g) {
  const json regions = g.ok("ndctl list -Ri").j();
  EXPECT_TRUE(regions.is_array());
  for (const json& r : regions)
    if (r["dev"] == "region0") return r;
  ADD_FAILURE() << regions.dump();
  return {};
}

// ---------------------------------------------------------------------------------------------
// test/sub-section.sh

// Scenario: sub-section.sh on the NVDIMM machine. The region is found with `ndctl list -R -b
// ACPI.NFIT` (available_size >= 4 x 16M); then MAX_NS = 10 times `create-namespace -s 16M
// --no-autorecover -r region0 -n subsection-test` (default mode fsdax), `ndctl list -N` finds them
// by name, and each is disabled, enabled and destroyed with -f.
// Expect (§3, §5, §6, §7): each create exits 0 with namespace0.k (k = 0..9), fsdax map=dev, data
// size 14680064 (16M less the 2 MiB info-block reservation), align 2097152, sector_size 512, block
// device pmem0 / pmem0.k, and the name last; ten 16M namespaces share sections 48-49; each
// disable/enable/destroy prints "disabled 1 namespace" / "enabled 1 namespace" / "destroyed 1
// namespace"; afterwards the region's capacity is whole again; no checker finding.
TEST(NdctlSubSection, TenSixteenMegNamespacesCycle) {
  Guest g;
  ASSERT_TRUE(g);
  g.init_labels();
  const json regions = g.ok("ndctl list -R -b ACPI.NFIT").j();
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_EQ(regions[0]["dev"], "region0");
  EXPECT_EQ(regions[0]["available_size"], 8573157376u);
  EXPECT_GE(regions[0]["available_size"].get<uint64_t>(), 4u * 16 * 1024 * 1024);

  for (unsigned k = 0; k < 10; ++k) {
    const Out o = g.ok("ndctl create-namespace -s 16777216 --no-autorecover -r region0 -n subsection-test");
    EXPECT_EQ(o.err, "");
    const json ns = o.j();
    const std::string dev = fmt::format("namespace0.{}", k);
    EXPECT_EQ(ns["dev"], dev);
    EXPECT_EQ(ns["mode"], "fsdax");
    EXPECT_EQ(ns["map"], "dev");
    EXPECT_EQ(ns["size"], 14680064);
    EXPECT_EQ(ns["sector_size"], 512);
    EXPECT_EQ(ns["align"], 2097152);
    EXPECT_EQ(ns["blockdev"], k == 0 ? std::string("pmem0") : fmt::format("pmem0.{}", k));
    EXPECT_EQ(ns["name"], "subsection-test");
    std::vector<std::string> keys;
    for (auto it = ns.begin(); it != ns.end(); ++it) keys.push_back(it.key());
    EXPECT_EQ(keys.back(), "name") << o.out;
  }
  const json listed = g.ok("ndctl list -N").j();
  ASSERT_EQ(listed.size(), 10u);
  for (const json& ns : listed) EXPECT_EQ(ns["name"], "subsection-test");

  for (unsigned k = 0; k < 10; ++k) {
    const std::string dev = fmt::format("namespace0.{}", k);
    EXPECT_EQ(g.ok("ndctl disable-namespace " + dev).err, "disabled 1 namespace");
    EXPECT_EQ(g.ok("ndctl enable-namespace " + dev).err, "enabled 1 namespace");
    EXPECT_EQ(g.ok("ndctl destroy-namespace " + dev + " -f").err, "destroyed 1 namespace");
  }
  EXPECT_EQ(g.sh("ndctl list -N").out, "");
  EXPECT_EQ(region0(g)["available_size"], 8573157376u);
  g.expect_clean();
}

// ---------------------------------------------------------------------------------------------
// test/align.sh

// Scenario: align.sh on the NVDIMM machine, region align left at its 16M default (the script's
// `echo 4096 > .../align` and write-infoblock steps are not ndctl/daxctl sequences the model
// runs): the 1G+8K fsdax -a 4K namespace, then 1G fsdax -a 4K cycled, then 2G fsdax with -a 1G,
// 2M and 4K each created, disabled, enabled and destroyed.
// Expect (§4.4 step 6, §5): 1G+8K -> "region0: align setting is 0x1000000 size 0x40002000 is
// misaligned", exit 234, nothing created; 1G -a 4K -> namespace0.0 at 0x180000000, 1054867456
// bytes, align 4096; the 2G namespaces (namespace0.1 at 0x1c0000000, 1 GiB-aligned) give
// 1073741824 with -a 1G (off = 1 GiB) and 2111832064 with -a 2M and -a 4K (off 34 MiB).
TEST(NdctlAlign, CreateCycleAndAlignments) {
  Guest g;
  ASSERT_TRUE(g);
  g.init_labels();
  const Out mis = g.sh("ndctl create-namespace -r region0 -s 1073750016 -m fsdax -a 4K");
  EXPECT_EQ(mis.rc, 234);
  EXPECT_EQ(mis.out, "");
  EXPECT_EQ(mis.err, "  Error: create namespace: region0: align setting is 0x1000000 size 0x40002000 is misaligned\n");
  EXPECT_EQ(region0(g)["available_size"], 8573157376u);

  const json ns1 = g.ok("ndctl create-namespace -r region0 -s 1G -m fsdax -a 4K").j();
  EXPECT_EQ(ns1["dev"], "namespace0.0");
  EXPECT_EQ(ns1["size"], 1054867456);
  EXPECT_EQ(ns1["align"], 4096);
  EXPECT_EQ(g.ok("ndctl disable-namespace namespace0.0").err, "disabled 1 namespace");
  EXPECT_EQ(g.ok("ndctl enable-namespace namespace0.0").err, "enabled 1 namespace");

  // The script takes each namespace's name from the create's JSON. A destroyed namespace other
  // than 0 and the seed is unregistered (its id is free again) and the seed stays, so the names
  // go namespace0.1, 0.2 (the seed), 0.1 (the new seed, lowest free id) (trace n2).
  const std::tuple<const char*, uint64_t, const char*> aligns[] = {
      {"1G", 1073741824, "1"}, {"2M", 2111832064, "2"}, {"4K", 2111832064, "1"}};
  for (const auto& [align, data, id] : aligns) {
    const json ns2 = g.ok(std::string("ndctl create-namespace -r region0 -s 2G -m fsdax -a ") + align).j();
    const std::string dev = std::string("namespace0.") + id;
    EXPECT_EQ(ns2["dev"], dev) << align;
    EXPECT_EQ(ns2["size"], data) << align;
    EXPECT_EQ(ns2["blockdev"], std::string("pmem0.") + id) << align;
    EXPECT_EQ(g.ok("ndctl disable-namespace " + dev).err, "disabled 1 namespace");
    EXPECT_EQ(g.ok("ndctl enable-namespace " + dev).err, "enabled 1 namespace");
    EXPECT_EQ(g.ok("ndctl destroy-namespace " + dev + " -f").err, "destroyed 1 namespace");
  }
  EXPECT_EQ(g.ok("ndctl destroy-namespace namespace0.0 -f").err, "destroyed 1 namespace");
  EXPECT_EQ(region0(g)["available_size"], 8573157376u);
  g.expect_clean();
}

// Scenario: create-namespace's refusals for bad sizes and alignments on the labelled region with a
// 1G fsdax namespace at its start: a size off the 16M region align, a size off a 1G align, an
// unsupported power-of-two align, raw with --align, more than the free capacity, destroy of the
// active namespace without --force.
// Expect (§4.4, §4.5, §6): "region0: align setting is 0x1000000 size 0x1800000 is misaligned"
// (234); "'--size=' must align to interleave-width: 1 and alignment: 1073741824" + "did you intend
// --size=2048M?" (234); "unsupported align: 8M" + "failed to create namespace: No such device or
// address" (237); "raw mode does not support setting an alignment" (237); "failed to create
// namespace: No space left on device" (237); "namespace0.0 is active, specify --force for
// re-configuration" + "error destroying namespaces: Device or resource busy" + "destroyed 0
// namespaces" (240, trace n2); nothing changed by any of them.
TEST(NdctlAlign, BadSizesAndAlignsAreRefused) {
  Guest g;
  ASSERT_TRUE(g);
  g.init_labels();
  g.ok("ndctl create-namespace -r region0 -s 1G -m fsdax -a 4K");
  const json before = region0(g);
  EXPECT_EQ(before["available_size"], 8573157376u - (1u << 30));

  Out o = g.sh("ndctl create-namespace -r region0 -s 24M -m fsdax");
  EXPECT_EQ(o.rc, 234);
  EXPECT_EQ(o.err, "  Error: create namespace: region0: align setting is 0x1000000 size 0x1800000 is misaligned\n");

  o = g.sh("ndctl create-namespace -r region0 -s 1040M -m fsdax -a 1G");
  EXPECT_EQ(o.rc, 234);
  EXPECT_EQ(o.err,
            "  Error: create namespace: '--size=' must align to interleave-width: 1 and alignment: 1073741824\n"
            "did you intend --size=2048M?\n");

  o = g.sh("ndctl create-namespace -r region0 -s 64M -m devdax -a 8M");
  EXPECT_EQ(o.rc, 237);
  EXPECT_EQ(o.err, "  Error: unsupported align: 8M\n\nfailed to create namespace: No such device or address");

  o = g.sh("ndctl create-namespace -r region0 -s 64M -m raw -a 2M");
  EXPECT_EQ(o.rc, 237);
  EXPECT_EQ(o.err,
            "  Error: raw mode does not support setting an alignment\n\nfailed to create namespace: No such device or "
            "address");

  o = g.sh("ndctl create-namespace -r region0 -s 8G -m fsdax");
  EXPECT_EQ(o.rc, 237);
  EXPECT_EQ(o.err, "failed to create namespace: No space left on device");

  o = g.sh("ndctl destroy-namespace namespace0.0");
  EXPECT_EQ(o.rc, 240);
  EXPECT_EQ(o.err,
            "  Error: namespace0.0 is active, specify --force for re-configuration\n\n"
            "error destroying namespaces: Device or resource busy\ndestroyed 0 namespaces");

  EXPECT_EQ(region0(g), before);
  const json nss = g.ok("ndctl list -N").j();
  ASSERT_EQ(nss.size(), 1u);
  EXPECT_EQ(nss[0]["dev"], "namespace0.0");
  EXPECT_EQ(nss[0]["size"], 1054867456);
  g.expect_clean();
}

// Scenario: a 1G devdax namespace with --align=1G at 0x1c0000000 (1 GiB-aligned, after the 1G
// fsdax namespace), where the info block's reservation is the whole namespace.
// Expect (§4.5, §5): the dax personality does not bind: "libndctl: ndctl_dax_enable: dax0.0:
// failed to enable", "  Error: namespace0.1: failed to enable", "failed to create namespace: No
// such device or address", exit 237; autorecover deletes the namespace again (capacity back, no
// new namespace listed) while the dax seed keeps the 1G align.
TEST(NdctlAlign, DevdaxWithoutRoomForDataFailsToEnable) {
  Guest g;
  ASSERT_TRUE(g);
  g.init_labels();
  g.ok("ndctl create-namespace -r region0 -s 1G -m fsdax -a 4K");
  const json before = region0(g);
  const Out o = g.sh("ndctl create-namespace -r region0 -s 1G -m devdax -a 1G");
  EXPECT_EQ(o.rc, 237);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err,
            "libndctl: ndctl_dax_enable: dax0.0: failed to enable\n"
            "  Error: namespace0.1: failed to enable\n\n"
            "failed to create namespace: No such device or address");
  EXPECT_EQ(region0(g), before);
  EXPECT_EQ(g.ok("ndctl list -N").j().size(), 1u);
  g.expect_clean();
}

// Scenario: the idle seed namespace (size 0) enabled, disabled and destroyed by name — what align.sh
// does when a script keeps using a name whose namespace was destroyed and is the seed again.
// Expect (trace n2): disable succeeds ("disabled 1 namespace"); enable fails with "libndctl:
// ndctl_namespace_enable: namespace0.1: failed to enable", "error enabling namespaces: No such
// device or address", "enabled 0 namespaces", exit 250; destroy -f cannot zero the info block
// (err(), so no error summary) and still counts it: "destroyed 1 namespace", exit 0.
TEST(NdctlAlign, IdleSeedByName) {
  Guest g;
  ASSERT_TRUE(g);
  g.init_labels();
  g.ok("ndctl create-namespace -r region0 -s 1G -m fsdax -a 4K");
  EXPECT_EQ(g.ok("ndctl disable-namespace namespace0.1").err, "disabled 1 namespace");
  Out o = g.sh("ndctl enable-namespace namespace0.1");
  EXPECT_EQ(o.rc, 250);
  EXPECT_EQ(o.err,
            "libndctl: ndctl_namespace_enable: namespace0.1: failed to enable\n"
            "error enabling namespaces: No such device or address\n"
            "enabled 0 namespaces");
  o = g.sh("ndctl destroy-namespace namespace0.1 -f");
  EXPECT_EQ(o.rc, 0);
  EXPECT_EQ(o.err,
            "libndctl: ndctl_namespace_enable: namespace0.1: failed to enable\n"
            "  Error: destroy namespace: namespace0.1 failed to enable for zeroing, continuing\n\n"
            "destroyed 1 namespace");
  EXPECT_EQ(region0(g)["available_size"], 8573157376u - (1u << 30));
  g.expect_clean();
}

// ---------------------------------------------------------------------------------------------
// test/daxctl-devices.sh

// Scenario: daxctl-devices.sh on the NVDIMM machine: the victim is the first namespace of `ndctl
// list -b ACPI.NFIT -Ni` (the idle seed namespace0.0), destroyed with -f and reconfigured with
// `create-namespace -b ACPI.NFIT -m devdax -fe namespace0.0 -s 256M`; its dax device goes to
// system-ram with -N (auto-online policy offline), online-memory, offline-memory, back to devdax,
// to system-ram (onlined movable by daxctl), back with -f, to system-ram again; disable-namespace,
// disable-region and destroy-namespace -f are refused while kmem holds the memory; back with -f;
// then with the policy online, reconfigure -N to system-ram is refused.
// Expect (oracle-recorded texts, §6, §8-§10): see each assertion; 256M at 0x180000000 map=dev
// gives a 262144000-byte dax0.0 (off 6 MiB) and exactly one memory block (49) in system-ram mode.
TEST(DaxctlDevices, ReconfigureSequence) {
  Guest g;
  ASSERT_TRUE(g);
  g.init_labels();
  const json idle = g.ok("ndctl list -b ACPI.NFIT -Ni").j();
  ASSERT_EQ(idle.size(), 1u);
  EXPECT_EQ(idle[0]["dev"], "namespace0.0");
  EXPECT_EQ(idle[0]["size"], 0);
  EXPECT_EQ(idle[0]["state"], "disabled");

  EXPECT_EQ(g.ok("ndctl destroy-namespace -f -b ACPI.NFIT namespace0.0").err,
            "libndctl: ndctl_namespace_enable: namespace0.0: failed to enable\n"
            "  Error: destroy namespace: namespace0.0 failed to enable for zeroing, continuing\n\n"
            "destroyed 1 namespace");
  const Out created = g.ok("ndctl create-namespace -b ACPI.NFIT -m devdax -fe namespace0.0 -s 256M");
  EXPECT_EQ(created.err,
            "libndctl: ndctl_namespace_enable: namespace0.0: failed to enable\n"
            "  Error: create namespace: namespace0.0 failed to enable for zeroing, continuing\n");
  const json ns = created.j();
  EXPECT_EQ(ns["dev"], "namespace0.0");
  EXPECT_EQ(ns["mode"], "devdax");
  EXPECT_EQ(ns["size"], 262144000);
  EXPECT_EQ(ns["daxregion"]["devices"][0]["chardev"], "dax0.0");
  const json listed = g.ok("ndctl list -n namespace0.0 -X").j();
  EXPECT_EQ(listed[0]["daxregion"]["devices"][0]["chardev"], "dax0.0");
  auto mode = [&] { return g.ok("daxctl list -d dax0.0").j()[0]["mode"].get<std::string>(); };
  EXPECT_EQ(mode(), "devdax");

  g.ok("echo offline > /sys/devices/system/memory/auto_online_blocks");
  Out o = g.ok("daxctl reconfigure-device -N -m system-ram dax0.0");
  EXPECT_EQ(o.err, "reconfigured 1 device");
  json d = o.j()[0];
  EXPECT_EQ(d["mode"], "system-ram");
  EXPECT_EQ(d["online_memblocks"], 0);
  EXPECT_EQ(d["total_memblocks"], 1);
  EXPECT_FALSE(d.contains("movable"));
  EXPECT_EQ(mode(), "system-ram");
  EXPECT_EQ(g.ok("daxctl online-memory dax0.0").err, "onlined memory for 1 device");
  EXPECT_EQ(g.ok("daxctl offline-memory dax0.0").err, "offlined memory for 1 device");
  EXPECT_EQ(g.ok("daxctl reconfigure-device -m devdax dax0.0").err, "reconfigured 1 device");
  EXPECT_EQ(mode(), "devdax");
  d = g.ok("daxctl reconfigure-device -m system-ram dax0.0").j()[0];
  EXPECT_EQ(d["online_memblocks"], 1);
  EXPECT_EQ(d["total_memblocks"], 1);
  EXPECT_EQ(d["movable"], true);
  EXPECT_EQ(g.ok("daxctl reconfigure-device -f -m devdax dax0.0").err, "reconfigured 1 device");
  EXPECT_EQ(mode(), "devdax");

  g.ok("daxctl reconfigure-device -m system-ram dax0.0");
  o = g.sh("ndctl disable-namespace namespace0.0");
  EXPECT_EQ(o.rc, 240);
  EXPECT_EQ(o.err, "error disabling namespaces: Device or resource busy\ndisabled 0 namespaces");
  o = g.sh("ndctl disable-region all");
  EXPECT_EQ(o.rc, 0);
  EXPECT_EQ(o.err, "disabled 0 regions");
  o = g.sh("ndctl destroy-namespace -f namespace0.0");
  EXPECT_EQ(o.rc, 240);
  EXPECT_EQ(o.err, "error destroying namespaces: Device or resource busy\ndestroyed 0 namespaces");
  EXPECT_EQ(mode(), "system-ram");
  EXPECT_EQ(g.ok("daxctl reconfigure-device -f -m devdax dax0.0").err, "reconfigured 1 device");
  EXPECT_EQ(mode(), "devdax");

  g.ok("echo online > /sys/devices/system/memory/auto_online_blocks");
  o = g.sh("daxctl reconfigure-device -N -m system-ram dax0.0");
  EXPECT_EQ(o.rc, 240);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err,
            "dax0.0: error: kernel policy will auto-online memory, aborting\n"
            "error reconfiguring devices: Device or resource busy\n"
            "reconfigured 0 devices");
  o = g.sh("daxctl reconfigure-device -N -m devdax dax0.0");
  EXPECT_EQ(o.rc, 129);
  EXPECT_TRUE(o.err.starts_with("--no-online is incompatible with --mode=devdax\n\n usage: daxctl reconfigure-device "))
      << o.err;
  g.ok("echo offline > /sys/devices/system/memory/auto_online_blocks");
  EXPECT_EQ(mode(), "devdax");

  EXPECT_EQ(g.ok("ndctl destroy-namespace -f -b ACPI.NFIT namespace0.0").err, "destroyed 1 namespace");
  EXPECT_EQ(region0(g)["available_size"], 8573157376u);
  g.expect_clean();
}

}  // namespace
}  // namespace sparsemem
