// Tests for test_hmm in scenarios: RunOptions::kernel / parse_kconfig (`--kconfig`), and
// `modprobe test_hmm` / `rmmod test_hmm` in the simulator's shell driving the TestHmm driver.
#include <algorithm>

#include <gtest/gtest.h>

#include "sparsemem/run.h"

namespace sparsemem {
namespace {

RunResult run_text(std::string_view text, const RunOptions& opts) {
  auto sc = parse_scenario(text, "t.scn");
  EXPECT_TRUE(sc) << (sc ? "" : sc.error().message);
  auto r = run_scenario(*sc, opts);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? std::move(*r) : RunResult{};
}

const CommandRecord& cmd(const RunResult& r, size_t step, size_t i) { return r.trace.steps.at(step).commands.at(i); }

size_t count_of(const std::string& text, std::string_view word) {
  size_t n = 0;
  for (size_t i = text.find(word); i != std::string::npos; i = text.find(word, i + 1)) ++n;
  return n;
}

// The Device zone of node 0 in a step's snapshot: spanned pages (0 when empty or absent).
int64_t device_spanned(const RunResult& r, size_t step) {
  const auto& zones = r.trace.steps.at(step).snapshot.zones;
  if (!zones) return -1;
  for (const ZoneEntry& z : *zones)
    if (z.node == 0 && z.zone == "Device") return z.spanned.value_or(0);
  return 0;
}

bool dmesg_has(const RunResult& r, size_t step, std::string_view text) {
  const auto& d = r.trace.steps.at(step).snapshot.dmesg;
  return d && std::any_of(d->begin(), d->end(), [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

RunOptions with_test_hmm() {
  RunOptions o;
  auto k = parse_kconfig("CONFIG_DEVICE_PRIVATE=y,CONFIG_TEST_HMM=m");
  EXPECT_TRUE(k) << (k ? "" : k.error().message);
  if (k) o.kernel = *k;
  return o;
}

// Scenario: --kconfig texts, good and bad.
// Expect: options applied in order over Debian's config; unknown names, bad values and TEST_HMM
// without DEVICE_PRIVATE refused; kconfig_text names only what differs from Debian's.
TEST(Kconfig, ParseAndPrint) {
  auto k = parse_kconfig("CONFIG_DEVICE_PRIVATE=y, CONFIG_TEST_HMM=y CONFIG_DEFERRED_STRUCT_PAGE_INIT=n");
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_TRUE(k->device_private);
  EXPECT_TRUE(k->test_hmm);
  EXPECT_FALSE(k->pci_p2pdma);
  EXPECT_FALSE(k->deferred_struct_page_init);
  EXPECT_EQ(kconfig_text(*k), "CONFIG_DEVICE_PRIVATE=y,CONFIG_TEST_HMM=y,CONFIG_DEFERRED_STRUCT_PAGE_INIT=n");
  EXPECT_EQ(kconfig_text(kDebianAmd64Config), "");
  auto empty = parse_kconfig("");
  ASSERT_TRUE(empty);
  EXPECT_EQ(kconfig_text(*empty), "");

  auto unknown = parse_kconfig("CONFIG_ZONE_DEVICE=y");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errno::Inval);
  EXPECT_NE(unknown.error().message.find("unknown option CONFIG_ZONE_DEVICE"), std::string::npos);
  EXPECT_FALSE(parse_kconfig("CONFIG_PCI_P2PDMA=m"));  // bool, not tristate
  EXPECT_FALSE(parse_kconfig("CONFIG_PCI_P2PDMA"));
  auto dep = parse_kconfig("CONFIG_TEST_HMM=m");
  ASSERT_FALSE(dep);
  EXPECT_NE(dep.error().message.find("depends on CONFIG_DEVICE_PRIVATE"), std::string::npos);
  EXPECT_FALSE(parse_kconfig("CONFIG_DEVICE_PRIVATE=y,CONFIG_TEST_HMM=m,CONFIG_DEVICE_PRIVATE=n"));
}

constexpr std::string_view kLoadUnload =
    "modules: none\n"
    "step load\n"
    "    modprobe test_hmm\n"
    "    grep hmm_dmirror /proc/iomem\n"
    "step unload\n"
    "    rmmod test_hmm\n"
    "    grep -q hmm_dmirror /proc/iomem\n"
    "    rmmod test_hmm\n"
    "step reload\n"
    "    modprobe test_hmm\n"
    "    modprobe test_hmm\n"
    "    modprobe -r test_hmm\n";

// Scenario: modprobe/rmmod test_hmm on Debian's kernel config.
// Expect: kmod's "not found" (rc 1) for modprobe and "not currently loaded" for rmmod; nothing changes.
TEST(TestHmmScenario, WithoutConfigModuleNotFound) {
  const RunResult r = run_text(kLoadUnload, RunOptions{});
  ASSERT_EQ(r.trace.steps.size(), 4u);
  EXPECT_TRUE(r.unsupported.empty());
  EXPECT_EQ(cmd(r, 1, 0).rc, 1);
  EXPECT_EQ(cmd(r, 1, 0).err, "modprobe: FATAL: Module test_hmm not found in directory /lib/modules/6.1.0-56-amd64");
  EXPECT_EQ(cmd(r, 1, 1).rc, 1);  // grep finds nothing
  EXPECT_EQ(cmd(r, 2, 0).rc, 1);
  EXPECT_EQ(cmd(r, 2, 0).err, "rmmod: ERROR: Module test_hmm is not currently loaded");
  EXPECT_EQ(device_spanned(r, 1), device_spanned(r, 0));
  EXPECT_FALSE(dmesg_has(r, 1, "HMM test module loaded"));
  EXPECT_TRUE(r.violations.empty());
}

// Scenario: the same steps with CONFIG_DEVICE_PRIVATE=y, CONFIG_TEST_HMM=m.
// Expect: modprobe loads two device-private dmirror devices, each one 256 MiB chunk: two busy
// "hmm_dmirror" iomem regions, the Device zone spans 2 x 65536 pages, the module's banner in
// dmesg; rmmod releases the regions (the span stays: 6.1's remove_pfn_range_from_zone does not
// shrink ZONE_DEVICE); a second modprobe is a no-op; the checker (TestHmm's INV-HMM-* included)
// is clean after every step; the trace's qemu_version names the config.
TEST(TestHmmScenario, ModprobeRmmodDriveTheDriver) {
  const RunResult r = run_text(kLoadUnload, with_test_hmm());
  ASSERT_EQ(r.trace.steps.size(), 4u);
  EXPECT_TRUE(r.unsupported.empty()) << r.unsupported.front();
  EXPECT_EQ(cmd(r, 1, 0).rc, 0);
  EXPECT_EQ(cmd(r, 1, 0).err, "");
  EXPECT_EQ(cmd(r, 1, 1).rc, 0);
  EXPECT_EQ(count_of(cmd(r, 1, 1).out.value_or(""), "hmm_dmirror"), 2u) << cmd(r, 1, 1).out.value_or("");
  EXPECT_TRUE(dmesg_has(r, 1, "HMM test module loaded. This is only for testing HMM."));
  EXPECT_TRUE(dmesg_has(r, 1, "added new 256 MB chunk"));
  EXPECT_EQ(device_spanned(r, 0), 0);
  EXPECT_EQ(device_spanned(r, 1), 2 * 65536);

  EXPECT_EQ(cmd(r, 2, 0).rc, 0);
  EXPECT_EQ(cmd(r, 2, 1).rc, 1);  // no hmm_dmirror region left
  EXPECT_EQ(cmd(r, 2, 2).rc, 1);
  EXPECT_EQ(cmd(r, 2, 2).err, "rmmod: ERROR: Module test_hmm is not currently loaded");
  EXPECT_EQ(device_spanned(r, 2), 2 * 65536);
  EXPECT_FALSE(dmesg_has(r, 2, "HMM test module loaded"));

  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(cmd(r, 3, i).rc, 0) << i;
  EXPECT_TRUE(dmesg_has(r, 3, "HMM test module loaded"));
  EXPECT_EQ(device_spanned(r, 3), 2 * 65536);
  EXPECT_TRUE(r.violations.empty()) << r.violations.front();
  EXPECT_NE(r.trace.qemu_version.find("kconfig CONFIG_DEVICE_PRIVATE=y,CONFIG_TEST_HMM=y"), std::string::npos)
      << r.trace.qemu_version;
}

// Scenario: a session left with test_hmm loaded (no rmmod).
// Expect: finishing the run unloads the driver before the machine goes (no crash, no leak), and
// every snapshot's checker key is empty.
TEST(TestHmmScenario, LoadedAtTheEnd) {
  const RunResult r = run_text("modules: none\nstep load\n    modprobe test_hmm\n", with_test_hmm());
  ASSERT_EQ(r.trace.steps.size(), 2u);
  EXPECT_EQ(cmd(r, 1, 0).rc, 0);
  EXPECT_TRUE(r.violations.empty());
  const auto& checker = r.trace.steps.at(1).snapshot.extra.at(std::string(kCheckerTraceKey));
  EXPECT_TRUE(checker.empty());
}

}  // namespace
}  // namespace sparsemem
