// Seed 004 end to end: trace d3's scenario (e820 pmem sharing early section 40 with System RAM,
// devdax reconfigured through ndctl) replayed under linux-6.1 and the pre-fix kernel.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sparsemem/run.h"
#include "sparsemem/scenario.h"

namespace sparsemem {
namespace {

namespace fs = std::filesystem;

std::string d3_text(bool pse) {
  const fs::path p = fs::path(SPM_TEST_DATA).parent_path() / "scenarios" / "d3_pmem_in_early_section.scn";
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (!pse) {
    const std::string m = "-m 4224M,maxmem=20G,slots=1";
    text.replace(text.find(m), m.size(), m + " -cpu qemu64,pse=off");
  }
  return text;
}

RunResult run_d3(std::string_view behaviour, bool pse) {
  auto sc = parse_scenario(d3_text(pse), "d3.scn");
  EXPECT_TRUE(sc) << (sc ? "" : sc.error().message);
  RunOptions o;
  const Behaviour* b = find_behaviour(behaviour);
  EXPECT_NE(b, nullptr);
  o.behaviour = *b;
  auto r = run_scenario(*sc, o);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return std::move(*r);
}

const TraceStep& step(const RunResult& r, std::string_view name) {
  for (const TraceStep& s : r.trace.steps)
    if (s.name == name) return s;
  ADD_FAILURE() << "no step " << name;
  return r.trace.steps.front();
}

std::string flags_of(const TraceStep& s, std::string_view pfn) {
  for (const KpageflagsEntry& e : *s.snapshot.kpageflags) {
    if (e.pfn == pfn) return e.flags;
    if (e.note && e.note->starts_with("pfn=" + std::string(pfn) + " ")) return *e.note;
  }
  return "";
}

bool dmesg_has(const RunResult& r, std::string_view text) {
  for (const TraceStep& s : r.trace.steps)
    if (s.snapshot.dmesg)
      for (const std::string& l : *s.snapshot.dmesg)
        if (l.find(text) != std::string::npos) return true;
  return false;
}

// Scenario: d3 (devdax whole-namespace reconfigure = remove + re-add of ZONE_DEVICE sub-sections
// in early section 40) under 6.1, with and without PSE.
// Expect: every step runs, the checker stays clean, pfn 0x144000 (the info block, inside the early
// section) is not an online page for kpageflags.
TEST(Seed004Scenario, linux_6_1_keeps_the_early_memmap) {
  for (bool pse : {true, false}) {
    SCOPED_TRACE(pse ? "PSE" : "no PSE");
    const RunResult r = run_d3("linux-6.1", pse);
    EXPECT_TRUE(r.trace.completed);
    EXPECT_TRUE(r.violations.empty()) << (r.violations.empty() ? "" : r.violations.front());
    EXPECT_EQ(flags_of(step(r, "devdax_whole_again"), "0x144000"), "0x0000000000100000");  // NOPAGE
    EXPECT_FALSE(dmesg_has(r, "unable to handle page fault"));
  }
}

// Scenario: the same under seed004-legacy with PSE (the 2 MiB vmemmap page of section 40 is
// partially "freed" by filling it with PAGE_UNUSED 0xFD).
// Expect: the old pfn_to_online_page() hands the removed pfns to walkers and the checker flags
// them; after the reconfigure the kpageflags read of pfn 0x144000 oopses on its garbage
// compound_head, as the thread's page-types run did.
TEST(Seed004Scenario, legacy_with_pse_walker_reads_the_fd_pattern) {
  const RunResult r = run_d3("seed004-legacy", true);
  ASSERT_FALSE(r.violations.empty());
  EXPECT_TRUE(std::any_of(r.violations.begin(), r.violations.end(),
                          [](const std::string& v) { return v.find("INV-PGMAP-3") != std::string::npos; }));
  EXPECT_EQ(flags_of(step(r, "devdax_whole"), "0x144000"), "pfn=0x144000 flags=ERR:Bad address count=0");
}

// Scenario: seed004-legacy without PSE ("-cpu qemu64,pse=off", as the thread reproduced it): the
// removed sub-sections' vmemmap PTEs are gone and the re-add skips populating an early section.
// Expect: memmap init faults on the first descriptor write, the kernel's BUG line is logged and
// the oops kills the ndctl that wrote to sysfs (the shell's "Killed", status 137).
TEST(Seed004Scenario, legacy_without_pse_faults_in_memmap_init) {
  const RunResult r = run_d3("seed004-legacy", false);
  EXPECT_TRUE(dmesg_has(r, "BUG: unable to handle page fault for address: ffffea0005100080"));
  const CommandRecord& c = step(r, "devdax_whole").commands.at(0);
  EXPECT_EQ(c.rc.value_or(0), 137);
  EXPECT_EQ(c.err.value_or(""), "Killed");
}

}  // namespace
}  // namespace sparsemem
