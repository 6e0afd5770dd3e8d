// Conformance: every oracle trace's scenario (tests/scenarios/NAME.scn) run on the simulator and
// compared with the trace; matched observations may not fall below a recorded floor.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "sparsemem/diff.h"
#include "sparsemem/run.h"

namespace sparsemem {
namespace {

namespace fs = std::filesystem;

const fs::path kData = fs::path(SPM_TEST_DATA);
const fs::path kScenarios = kData.parent_path() / "scenarios";

// The matched observations of each trace when the floor was last raised (docs/conformance.md has
// the table with the mismatches and why each is accepted). Raise a floor when the model improves;
// a lower count is a regression.
struct Floor {
  std::string_view name;
  uint64_t matched;
  friend void PrintTo(const Floor& f, std::ostream* os) { *os << f.name << " (floor " << f.matched << ")"; }
};
constexpr Floor kFloors[] = {
    {"a2_boot_reservations", 2264},
    {"a3_boot_reservations_8g", 1749},
    {"a_baseline", 773},
    {"b2_autoonline_policies", 4437},
    {"b3_memmap_on_memory", 2100},
    {"b_dimm_coldplug", 4088},
    {"c2_qmp_hotplug", 4111},
    {"c_dimm_hotremove", 2909},
    {"d0_nvdimm_unaligned_addr", 7},
    {"d1_nvdimm_devdax", 4667},
    {"d2_nvdimm_labelless", 3123},
    {"d3_pmem_in_early_section", 4328},
    {"e_kmem", 4729},
    {"f_errors", 7846},
    {"n1_ndctl_sub_section", 2299},
    {"n2_ndctl_align", 3973},
    {"n3_daxctl_devices", 3223},
    {"x1_dax_disabled_state", 4728},
    {"y1_module_load_directmap", 1000},
};

struct Ran {
  DiffResult diff;
  RunResult run;
};

Ran run_and_diff(std::string_view name) {
  Ran out;
  auto expected = load_trace((kData / "oracle" / (std::string(name) + ".json")).string());
  EXPECT_TRUE(expected) << (expected ? "" : expected.error().message);
  auto sc = load_scenario((kScenarios / (std::string(name) + ".scn")).string());
  EXPECT_TRUE(sc) << (sc ? "" : sc.error().message);
  if (!expected || !sc) return out;
  auto r = run_scenario(*sc);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  if (!r) return out;
  out.diff = diff_traces(*expected, r->trace);
  out.run = std::move(*r);
  return out;
}

class Conformance : public ::testing::TestWithParam<Floor> {};

// Scenario: run the trace's scenario on the simulator and diff the result against the oracle trace.
// Expect: at least the recorded number of matched observations, and a clean invariant checker.
TEST_P(Conformance, MatchedAtLeastFloor) {
  const Floor f = GetParam();
  const Ran r = run_and_diff(f.name);
  EXPECT_GE(r.diff.matched, f.matched) << format_diff(r.diff);
  std::string violations;
  for (const std::string& v : r.run.violations) violations += v + "\n";
  EXPECT_TRUE(r.run.violations.empty()) << violations;
}

INSTANTIATE_TEST_SUITE_P(Oracle, Conformance, ::testing::ValuesIn(kFloors),
                         [](const ::testing::TestParamInfo<Floor>& i) { return std::string(i.param.name); });

// Scenario: every trace in tests/data/oracle has a floor here, so a new trace cannot go unchecked.
// Expect: the floor table names exactly the recorded traces.
TEST(ConformanceTable, CoversEveryTrace) {
  std::vector<std::string> traces;
  for (const auto& e : fs::directory_iterator(kData / "oracle"))
    if (e.path().extension() == ".json") traces.push_back(e.path().stem().string());
  std::sort(traces.begin(), traces.end());
  std::vector<std::string> floors;
  for (const Floor& f : kFloors) floors.emplace_back(f.name);
  std::sort(floors.begin(), floors.end());
  EXPECT_EQ(traces, floors);
}

// Scenario: a_baseline (boot and a listing step) and f_errors (error cases, hwpoison) on the simulator.
// Expect: no mismatch at all — the boot reservations (first 1 MiB, kernel image, top of RAM) read
// RESERVED, blocks 32 and 39 refuse offlining with the recorded page dumps, soft and hard offlining
// poison their pages — and every command ran (completed).
TEST(ConformanceBaseline, BaselineAndErrorsMatchExactly) {
  for (const std::string_view name : {"a_baseline", "f_errors"}) {
    const Ran r = run_and_diff(name);
    EXPECT_TRUE(r.run.unsupported.empty()) << name;
    EXPECT_TRUE(r.run.trace.completed) << name;
    EXPECT_EQ(r.diff.mismatched, 0u) << name << "\n" << format_diff(r.diff);
  }
}

// Scenario: the traces of DIMM cold-plug, memmap_on_memory, hot-remove and QMP hot-plug/unplug (b, b2, b3,
// c, c2).
// Expect: no mismatch at all — blocks, zones, iomem, ACPI devices, events and messages agree.
TEST(ConformanceHotplug, DimmScenariosMatchExactly) {
  for (const std::string_view name : {"b_dimm_coldplug", "b2_autoonline_policies", "b3_memmap_on_memory", "c_dimm_hotremove",
                                      "c2_qmp_hotplug"}) {
    const Ran r = run_and_diff(name);
    EXPECT_EQ(r.diff.mismatched, 0u) << name << "\n" << format_diff(r.diff);
    EXPECT_TRUE(r.run.unsupported.empty()) << name;
  }
}

// Scenario: the NVDIMM traces — labels, devdax/fsdax/raw namespaces and their reconfiguration (d1),
// a label-less region that refuses every reconfigure (d2), e820 legacy pmem in early section 40
// (d3), d3 plus `daxctl list` of the device kmem failed to bind ("state":"disabled", x1),
// devdax -> system-ram (kmem) and back (e_kmem), and d3's machine loading the same modules without
// any pmem (y1: the direct map splits around the modules' pages all the same).
// Expect: every command ran and nothing differs; d3 and x1 only because the direct map's 4k/2M
// split is compared as one sum across their module-loading step (docs/conformance.md).
TEST(ConformanceNvdimm, NvdimmScenariosMatch) {
  for (const std::string_view name : {"d1_nvdimm_devdax", "d2_nvdimm_labelless", "e_kmem", "d3_pmem_in_early_section",
                                      "x1_dax_disabled_state", "y1_module_load_directmap"}) {
    const Ran r = run_and_diff(name);
    EXPECT_TRUE(r.run.unsupported.empty()) << name;
    EXPECT_TRUE(r.run.trace.completed) << name;
    EXPECT_EQ(r.diff.mismatched, 0u) << name << "\n" << format_diff(r.diff);
  }
}

// Scenario: the sequences of ndctl's own tests on the QEMU NVDIMM (n1 sub-section.sh, n2 align.sh,
// n3 daxctl-devices.sh): sub-section fsdax namespaces, alignments and their refusals, kmem.
// Expect: every command ran and nothing differs from the oracle.
TEST(ConformanceNvdimm, NdctlTestSequencesMatchExactly) {
  for (const std::string_view name : {"n1_ndctl_sub_section", "n2_ndctl_align", "n3_daxctl_devices"}) {
    const Ran r = run_and_diff(name);
    EXPECT_TRUE(r.run.unsupported.empty()) << name;
    EXPECT_TRUE(r.run.trace.completed) << name;
    EXPECT_EQ(r.diff.mismatched, 0u) << name << "\n" << format_diff(r.diff);
  }
}

// Scenario: an ndctl subcommand outside the modelled set (check-namespace).
// Expect: the command is reported with its scenario line and the trace says not completed.
TEST(ConformanceUnsupported, NamedWithTheirLines) {
  auto sc = parse_scenario(
      "qemu: -machine pc,nvdimm=on -m 4160M,maxmem=20G,slots=1\n"
      "qemu: -object memory-backend-ram,id=mem0,size=8G\n"
      "qemu: -device nvdimm,id=vm0,memdev=mem0,node=0,label-size=128k\n"
      "step check\n"
      "    ndctl check-namespace namespace0.0\n",
      "check.scn");
  ASSERT_TRUE(sc) << sc.error().message;
  auto r = run_scenario(*sc);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->trace.completed);
  ASSERT_FALSE(r->unsupported.empty());
  EXPECT_NE(r->unsupported[0].find("ndctl check-namespace namespace0.0' at check.scn:5"), std::string::npos)
      << r->unsupported[0];
}

}  // namespace
}  // namespace sparsemem
