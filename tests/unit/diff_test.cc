// Tests for include/sparsemem/diff.h: a trace compared with itself matches every observation (the
// count worked out independently here), deliberate edits are found exactly, noise is not counted.
#include "sparsemem/diff.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace sparsemem {
namespace {

namespace fs = std::filesystem;

const fs::path kOracle = fs::path(SPM_TEST_DATA) / "oracle";
const fs::path kDocs = fs::path(SPM_TEST_DATA).parent_path().parent_path() / "docs";

Trace load(const std::string& name) {
  auto t = load_trace((kOracle / (name + ".json")).string());
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  return t ? *t : Trace{};
}

std::vector<std::string> trace_names() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kOracle))
    if (e.path().extension() == ".json") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The observations docs/conformance.md defines, counted straight from the data: what a trace
// compared with itself must report as matched.
uint64_t count_observations(const Trace& t) {
  // KPF bits that say who uses a page (docs/conformance.md, kpageflags): a page showing any of them
  // has its map count left out.
  const std::set<std::string> allocation = {"LOCKED", "ERROR", "REFERENCED", "UPTODATE", "DIRTY", "LRU", "ACTIVE",
                                            "SLAB", "WRITEBACK", "RECLAIM", "BUDDY", "MMAP", "ANON", "SWAPCACHE",
                                            "SWAPBACKED", "COMPOUND_HEAD", "COMPOUND_TAIL", "HUGE", "UNEVICTABLE",
                                            "KSM", "THP", "IDLE", "PGTABLE", "MLOCKED", "MAPPEDTODISK", "SOFTDIRTY"};
  uint64_t n = 2;  // qemu_cmdline, completed
  n += t.guest_cmdline.has_value() + t.final_memory_devices.has_value() + t.trailing_qmp_events.has_value() +
       t.qemu_exit.has_value() + t.qemu_output.has_value() + t.console_alerts.has_value();
  n += t.errors.size();
  for (size_t i = 0; i < t.steps.size(); ++i) {
    const TraceStep& st = t.steps[i];
    const Snapshot* prev = i > 0 ? &t.steps[i - 1].snapshot : nullptr;
    for (const auto& c : st.commands) n += c.rc.has_value() + c.out.has_value() + c.err.has_value();
    if (st.host_actions)
      for (const auto& h : *st.host_actions)
        n += h.response.has_value() + h.error.has_value() + (h.events ? h.events->size() : 0);
    const Snapshot& s = st.snapshot;
    n += s.iomem->size() + 7 * s.memory_blocks->size() + s.memory_global->size() + 4 * s.acpi_memory_devices->size();
    for (const auto& z : *s.zones) {
      n += 1 + z.end_pfn.has_value() + z.spanned.has_value() + z.present.has_value() + z.cma.has_value();
      if (prev != nullptr)
        for (const auto& p : *prev->zones)
          if (p.node == z.node && p.zone == z.zone && p.managed && z.managed) ++n;
    }
    // Across a step that loads modules the DirectMap fields' change is one observation, their sum.
    bool loads_modules = false;
    for (const auto& c : st.commands)
      loads_modules |= c.cmd && c.cmd->starts_with("modprobe ") && c.cmd->find(" -r") == std::string::npos;
    bool direct_map_counted = false;
    for (const auto& [k, v] : *s.meminfo) {
      const DiffRuleKind kind = find_diff_rule("meminfo." + k)->kind;
      if (loads_modules && k.starts_with("DirectMap")) {
        if (prev != nullptr && !direct_map_counted)
          for (const auto& [pk, pv] : *prev->meminfo) direct_map_counted |= pk == k;
        continue;
      }
      if (kind == DiffRuleKind::Exact) ++n;
      if (kind == DiffRuleKind::Delta && prev != nullptr)
        for (const auto& [pk, pv] : *prev->meminfo) n += pk == k;
    }
    n += direct_map_counted;
    for (const auto& e : *s.kpageflags) {
      if (e.note) {
        ++n;
        continue;
      }
      ++n;  // flags
      bool in_use = false;
      if (e.flag_names)
        for (const auto& f : *e.flag_names) in_use |= allocation.contains(f);
      n += !in_use;  // count
    }
    for (const auto& d : *s.nd_dax) n += d.attrs.size();
    for (const auto& l : *s.dmesg) n += dmesg_comparable(l).has_value();
  }
  return n;
}

// Scenario: each oracle trace compared with itself.
// Expect: no mismatch, no difference line, and exactly the observations docs/conformance.md
// defines (counted independently above); a_baseline's total also worked out by hand below.
TEST(DiffSelf, EveryTraceMatchesItselfWithTheExactCount) {
  for (const auto& name : trace_names()) {
    SCOPED_TRACE(name);
    const Trace t = load(name);
    const DiffResult r = diff_traces(t, t);
    EXPECT_EQ(r.mismatched, 0u);
    EXPECT_TRUE(r.lines.empty()) << r.lines.front();
    EXPECT_EQ(r.matched, count_observations(t));
  }
  // a_baseline by hand. Trace level 7: qemu_cmdline, guest_cmdline, completed,
  // final_memory_devices, qemu_exit, qemu_output, console_alerts (no driver errors).
  //   step 0: 6 modprobes x 3 = 18; iomem 22 lines; 33 blocks x 7 = 231; memory_global 10;
  //           zones: 3 populated x 5 (start_pfn end_pfn spanned present cma) + 2 empty x 4 = 23;
  //           meminfo: 18 exact rows; kpageflags: 14 flags + 13 counts (0xbffde is BUDDY) = 27;
  //           ACPI 4 slots x 4 = 16; dmesg: 31 of 369 boot lines match a pattern
  //   step 1: 5 commands x 3 = 15; the same snapshot parts, no dmesg, plus deltas of 5 zones'
  //           managed and of MemTotal, DirectMap4k, DirectMap2M = 8.
  const Trace base = load("a_baseline");
  const uint64_t step0 = 18 + 22 + 231 + 10 + 23 + 18 + 27 + 16 + 31;
  const uint64_t step1 = 15 + 22 + 231 + 10 + 23 + 18 + 27 + 16 + 8;
  EXPECT_EQ(diff_traces(base, base).matched, 7 + step0 + step1);
}

// Scenario: b_dimm_coldplug with one block's state changed in step 1 of the actual trace.
// Expect: exactly one mismatch, printed in sysfs terms with the step, and one fewer match.
TEST(DiffEdits, ChangedBlockState) {
  const Trace e = load("b_dimm_coldplug");
  Trace a = e;
  auto& blocks = *a.steps[1].snapshot.memory_blocks;
  const auto it = std::find_if(blocks.begin(), blocks.end(), [](const auto& b) { return b.id == 49; });
  ASSERT_NE(it, blocks.end());
  it->valid_zones = "Normal";
  const DiffResult r = diff_traces(e, a);
  EXPECT_EQ(r.mismatched, 1u);
  EXPECT_EQ(r.matched, count_observations(e) - 1);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "step 1 online_movable_48_49: memory49/valid_zones: expected 'Movable' got 'Normal'");
  EXPECT_EQ(format_diff(r), r.lines[0] + "\nobservations: " + std::to_string(r.matched) + " matched, 1 mismatched\n");
}

// Scenario: the actual trace lacks the hot-plugged System RAM line of /proc/iomem in step 1.
// Expect: exactly that line reported missing, everything else matched.
TEST(DiffEdits, DroppedIomemLine) {
  const Trace e = load("b_dimm_coldplug");
  Trace a = e;
  auto& iomem = *a.steps[1].snapshot.iomem;
  const auto it = std::find_if(iomem.begin(), iomem.end(), [](const auto& x) { return x.start == "0x180000000"; });
  ASSERT_NE(it, iomem.end());
  iomem.erase(it);
  a.steps[1].snapshot.iomem_raw.reset();  // a simulator writing both would drop it from both
  const DiffResult r = diff_traces(e, a);
  EXPECT_EQ(r.mismatched, 1u);
  EXPECT_EQ(r.matched, count_observations(e) - 1);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "step 1 online_movable_48_49: /proc/iomem: expected line '180000000-1bfffffff : System RAM' missing");
}

// Scenario: a zone's present count changed in one step; then an extra, unexpected iomem line.
// Expect: one mismatch each, named by /proc/zoneinfo's own text.
TEST(DiffEdits, ChangedZonePresentAndExtraLine) {
  const Trace e = load("b_dimm_coldplug");
  Trace a = e;
  (*a.steps[2].snapshot.zones)[2].present = 311296;
  a.steps[2].snapshot.zones_raw.reset();  // edited without its raw copy, which must agree with it
  DiffResult r = diff_traces(e, a);
  EXPECT_EQ(r.mismatched, 1u);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "step 2 online_kernel_50_51: /proc/zoneinfo: Node 0, zone Normal: present: expected 344064 got 311296");

  a = e;
  a.steps[3].snapshot.iomem->push_back(TraceIomemLine{0, "0x1c0000000", "0x1c7ffffff", "System RAM", OrderedJson::object()});
  a.steps[3].snapshot.iomem_raw->push_back("1c0000000-1c7ffffff : System RAM");
  r = diff_traces(e, a);
  EXPECT_EQ(r.mismatched, 1u);
  EXPECT_EQ(r.matched, count_observations(e));
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "step 3 online_plain_52: /proc/iomem: unexpected line '1c0000000-1c7ffffff : System RAM'");
}

// Scenario: the actual trace moves every boot-time managed count and MemTotal by the same amount
// (another boot reserved a few pages more), and changes every timing, MemFree, watermarks,
// pages_free, dmesg timestamps, QMP event timestamps and the host kernel version.
// Expect: nothing differs and nothing more or less is counted.
TEST(DiffNoise, ExcludedAndDeltaFieldsDoNotCount) {
  const Trace e = load("c2_qmp_hotplug");
  Trace a = e;
  a.kernel = "6.1.0-99-amd64";
  a.guest_kernel = "6.1.0-99-amd64";
  for (auto& arg : a.qemu_cmdline)
    if (arg.starts_with("/boot/vmlinuz-")) arg = "/boot/vmlinuz-6.1.0-99-amd64";
  a.boot_to_init_s = 1.0;
  a.timing = OrderedJson{{"total_s", 1.0}, {"qemu_s", 1.0}};
  for (auto& st : a.steps) {
    st.t_start += 3;
    st.t_end = 99.0;
    for (auto& c : st.commands) c.t0 = c.t1 = 7.0;
    if (st.host_actions)
      for (auto& h : *st.host_actions) {
        h.elapsed_s = 0.0;
        if (h.events)
          for (auto& ev : *h.events) ev["timestamp"]["seconds"] = 1;
        if (h.response && h.response->contains("timestamp")) (*h.response)["timestamp"]["microseconds"] = 2;
      }
    st.snapshot.zones_raw.reset();  // zones is rewritten below without its raw copy
    for (auto& z : *st.snapshot.zones) {
      if (z.managed && z.zone == "Normal") *z.managed -= 7;
      z.pages_free = 1;
      z.min = z.low = z.high = 2;
    }
    for (auto& [k, v] : *st.snapshot.meminfo) {
      if (k == "MemTotal") v -= 28;
      if (k == "MemFree" || k == "Slab" || k == "VmallocUsed" || k == "CommitLimit") v = 5;
      if (k == "DirectMap4k") v += 2048;
    }
    for (auto& l : *st.snapshot.dmesg)
      if (l.starts_with("[")) l = "[    9.999999]" + l.substr(l.find(']') + 1);
  }
  const DiffResult r = diff_traces(e, a);
  EXPECT_EQ(r.mismatched, 0u) << (r.lines.empty() ? "" : r.lines.front());
  EXPECT_EQ(r.matched, count_observations(e));
}

// Scenario: managed pages of one zone changed in a single middle step only.
// Expect: the change into that step and the change out of it both differ (2 mismatches).
TEST(DiffNoise, DeltaRuleCatchesASingleWrongStep) {
  const Trace e = load("b_dimm_coldplug");
  Trace a = e;
  *(*a.steps[4].snapshot.zones)[3].managed += 32768;
  a.steps[4].snapshot.zones_raw.reset();
  const DiffResult r = diff_traces(e, a);
  EXPECT_EQ(r.mismatched, 2u);
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[0],
            "step 4 online_movable_54_gap: /proc/zoneinfo: Node 0, zone Movable: managed: expected change +32768 got "
            "+65536 (expected 98304, got 131072)");
  EXPECT_TRUE(r.lines[1].starts_with("step 5 offline_49: /proc/zoneinfo: Node 0, zone Movable: managed: expected change -32768"));
}

// Scenario: d3, whose step 1 loads the libnvdimm modules, with the direct map's 4k/2M split moved
// by 2048 kB from step 1 on (what another boot of the same machine shows); then with the size of
// the direct map changed in step 1 only; then the split moved in step 2, which loads nothing.
// Expect: the moved split is no difference across the module load (one summed observation instead
// of two); the changed size is one difference there and one in step 2's DirectMap2M; a split moved
// where no module loads is two (docs/conformance.md, meminfo.DirectMap4k).
TEST(DiffNoise, DirectMapSplitAcrossAModuleLoadIsComparedAsOneSum) {
  const Trace e = load("d3_pmem_in_early_section");
  ASSERT_EQ(e.steps[1].name, "load_modules");
  auto field = [](Trace& t, size_t step, const std::string& k) -> int64_t& {
    for (auto& [name, v] : *t.steps[step].snapshot.meminfo)
      if (name == k) return v;
    throw std::runtime_error("no meminfo field " + k);
  };
  Trace split = e;
  for (size_t i = 1; i < split.steps.size(); ++i) {
    field(split, i, "DirectMap4k") += 2048;
    field(split, i, "DirectMap2M") -= 2048;
  }
  const DiffResult same = diff_traces(e, split);
  EXPECT_EQ(same.mismatched, 0u) << (same.lines.empty() ? "" : same.lines.front());
  EXPECT_EQ(same.matched, count_observations(e));

  Trace size = e;
  field(size, 1, "DirectMap2M") += 2048;
  const DiffResult r = diff_traces(e, size);
  ASSERT_EQ(r.mismatched, 2u);
  EXPECT_TRUE(r.lines[0].starts_with(
      "step 1 load_modules: /proc/meminfo: DirectMap4k + DirectMap2M + DirectMap1G: expected change +"))
      << r.lines[0];
  EXPECT_TRUE(r.lines[1].starts_with("step 2 devdax_16M_refused_labelless: /proc/meminfo: DirectMap2M: expected change +0 kB got -2048 kB"))
      << r.lines[1];

  Trace late = e;
  for (size_t i = 2; i < late.steps.size(); ++i) {
    field(late, i, "DirectMap4k") += 2048;
    field(late, i, "DirectMap2M") -= 2048;
  }
  EXPECT_EQ(diff_traces(e, late).mismatched, 2u);
}

// Scenario: ndctl output with a different random namespace UUID; a RAM page that the kernel had in
// use but the actual trace shows free; a reserved page shown free.
// Expect: the UUID and the allocation state are not differences, the lost RESERVED bit is.
TEST(DiffNoise, UuidsAndAllocationStateAreMasked) {
  const Trace e = load("d1_nvdimm_devdax");
  Trace a = e;
  auto& out = *a.steps[2].commands[0].out;
  const size_t u = out.find("\"uuid\":\"");
  ASSERT_NE(u, std::string::npos);
  out.replace(u + 8, 36, "00000000-1111-2222-3333-444444444444");
  EXPECT_EQ(diff_traces(e, a).mismatched, 0u);

  const Trace f = load("b2_autoonline_policies");
  Trace g = f;
  bool changed_lru = false;
  for (auto& k : *g.steps[1].snapshot.kpageflags)
    if (!changed_lru && k.flag_names && std::find(k.flag_names->begin(), k.flag_names->end(), "LRU") != k.flag_names->end()) {
      k.flags = "0x0000000000000400";
      k.flag_names = std::vector<std::string>{"BUDDY"};
      k.count = 0;
      changed_lru = true;
    }
  ASSERT_TRUE(changed_lru);
  EXPECT_EQ(diff_traces(f, g).mismatched, 0u);

  const Trace h = load("a_baseline");
  Trace i = h;
  auto& first = (*i.steps[1].snapshot.kpageflags)[0];  // pfn 0x0: RESERVED
  first.flags = "0x0000000000000400";
  first.flag_names = std::vector<std::string>{"BUDDY"};
  const DiffResult r = diff_traces(h, i);
  EXPECT_EQ(r.mismatched, 1u);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "step 1 listing: /proc/kpageflags: pfn 0x0: flags (compared bits): expected [RESERVED] got []");
}

// Scenario: the actual trace stops one step early, and has one command's rc and stdout changed.
// Expect: one line for the missing step carrying all its observations; one line each for the rc
// and the first differing stdout line.
TEST(DiffEdits, MissingStepAndCommandOutput) {
  const Trace e = load("b_dimm_coldplug");
  Trace a = e;
  a.steps.pop_back();
  *a.steps[3].commands[0].out = "Normal";
  a.steps[3].commands[1].rc = 1;
  const DiffResult r = diff_traces(e, a);
  ASSERT_EQ(r.lines.size(), 3u);
  EXPECT_EQ(r.lines[0], "step 3 online_plain_52: $ cat /sys/devices/system/memory/memory52/valid_zones: stdout: expected 'Normal Movable' got 'Normal'");
  EXPECT_EQ(r.lines[1], "step 3 online_plain_52: $ setstate online 52: rc: expected 0 got 1");
  const uint64_t last_step_obs = diff_traces(e, e).matched - diff_traces(a, a).matched;
  EXPECT_EQ(r.lines[2], "step 9 offline_all_dimm: missing from the actual trace (" + std::to_string(last_step_obs) + " observations)");
  EXPECT_EQ(r.mismatched, 2 + last_step_obs);
  EXPECT_EQ(r.matched + r.mismatched, count_observations(e));
}

// Scenario: dmesg lines from the model's code paths and from elsewhere.
// Expect: model lines compared without their timestamp (the zonelist total masked), others dropped;
// an extra hotplug message in the actual trace is one mismatch.
TEST(DiffDmesg, PatternsSelectAndMask) {
  EXPECT_EQ(dmesg_comparable("[    1.133995] x86/mm: Memory block size: 128MB"), "x86/mm: Memory block size: 128MB");
  EXPECT_EQ(dmesg_comparable("[   17.039254] Offlined Pages 32768"), "Offlined Pages 32768");
  EXPECT_EQ(dmesg_comparable("[   16.611202] Built 1 zonelists, mobility grouping on.  Total pages: 1021039"),
            "Built 1 zonelists, mobility grouping on.  Total pages: <managed, allocator noise>");
  EXPECT_EQ(dmesg_comparable("[    0.064566]   Device   empty"), "  Device   empty");
  EXPECT_EQ(dmesg_comparable("[    8.171625] acpi PNP0C80:02: add_memory failed"), "acpi PNP0C80:02: add_memory failed");
  EXPECT_FALSE(dmesg_comparable("[    1.113713] node 0 deferred pages initialised in 28ms"));
  EXPECT_FALSE(dmesg_comparable("[    0.455256] Memory: 3151260K/4259316K available (14343K kernel code)"));
  EXPECT_FALSE(dmesg_comparable("[    2.000000] random: crng init done"));

  const Trace e = load("c2_qmp_hotplug");
  Trace a = e;
  a.steps[5].snapshot.dmesg->push_back("[   16.700000] Offlined Pages 32768");
  a.steps[5].snapshot.dmesg->push_back("[   16.700001] random: crng init done");
  const DiffResult r = diff_traces(e, a);
  EXPECT_EQ(r.mismatched, 1u);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "step 5 online_d1_movable_d2_kernel: dmesg: unexpected line 'Offlined Pages 32768'");
}

// Scenario: in c2's device_del step the actual trace attaches the DEVICE_DELETED event to the
// wait_event action instead of device_del (the driver attributes events by host timing), then
// drops an event altogether.
// Expect: the move is no difference; the dropped event is one.
TEST(DiffNoise, QmpEventsComparedPerStep) {
  const Trace e = load("c2_qmp_hotplug");
  Trace a = e;
  auto& actions = *a.steps[6].host_actions;
  ASSERT_EQ(*actions[1].action, "wait_event DEVICE_DELETED 60");
  auto& from = *actions[0].events;
  ASSERT_EQ(from.size(), 3u);
  actions[1].events->push_back(from[2]);
  from.pop_back();
  EXPECT_EQ(diff_traces(e, a).mismatched, 0u);
  actions[1].events->clear();
  const DiffResult r = diff_traces(e, a);
  EXPECT_EQ(r.mismatched, 1u);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0],
            "step 6 device_del_d1_online_movable: QMP events: expected line '{\"event\":\"ACPI_DEVICE_OST\",\"data\":{\"info\":"
            "{\"source\":3,\"status\":0,\"slot\":\"0\",\"slot-type\":\"DIMM\"}}}' missing");
}

// Scenario: a pfn sampled twice (overlapping pfns: items) in both traces, then a third time in
// the actual trace only.
// Expect: the repeats pair up in order; the extra sample is one unit not in the expected trace.
TEST(DiffEdits, RepeatedKeysPairInOrder) {
  Trace e;
  e.steps.resize(1);
  e.steps[0].name = "boot";
  KpageflagsEntry k;
  k.pfn = "0x10";
  k.flags = "0x0000000100000000";
  k.flag_names = std::vector<std::string>{"RESERVED"};
  k.count = 0;
  e.steps[0].snapshot.kpageflags = std::vector<KpageflagsEntry>{k, k};
  Trace a = e;
  EXPECT_EQ(diff_traces(e, a).mismatched, 0u);
  EXPECT_EQ(diff_traces(e, a).matched, 2u + 4u);  // qemu_cmdline, completed; 2 x (flags, count)
  a.steps[0].snapshot.kpageflags->push_back(k);
  const DiffResult r = diff_traces(e, a);
  EXPECT_EQ(r.mismatched, 2u);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "step 0 boot: /proc/kpageflags: pfn 0x10: not in the expected trace (2 observations)");
}

// Scenario: the verbose report of a clean comparison.
// Expect: one total per step, and the final observations line.
TEST(DiffFormat, VerbosePrintsPerStepTotals) {
  const Trace e = load("a_baseline");
  const DiffResult r = diff_traces(e, e, DiffOptions{true});
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_TRUE(r.lines[0].starts_with("step 0 boot: ")) << r.lines[0];
  EXPECT_TRUE(r.lines[1].ends_with(" matched, 0 mismatched")) << r.lines[1];
}

// Scenario: the rule table, the dmesg pattern list and docs/conformance.md.
// Expect: every field and every pattern is documented; every Excluded row gives a reason; keyed
// families fall back to their "*" row.
TEST(DiffRules, TableIsDocumented) {
  std::ifstream in(kDocs / "conformance.md");
  ASSERT_TRUE(in) << (kDocs / "conformance.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  std::set<std::string_view> seen;
  for (const auto& r : diff_rules()) {
    EXPECT_TRUE(seen.insert(r.field).second) << "duplicate row " << r.field;
    EXPECT_NE(doc.find("`" + std::string(r.field) + "`"), std::string::npos) << r.field << " is not in conformance.md";
    EXPECT_FALSE(r.reason.empty()) << r.field;
  }
  for (const auto& p : dmesg_patterns())
    EXPECT_NE(doc.find(std::string(p.source)), std::string::npos) << p.source << " is not in conformance.md";
  EXPECT_EQ(find_diff_rule("meminfo.CmaTotal")->field, "meminfo.*");
  EXPECT_EQ(find_diff_rule("zones.managed")->kind, DiffRuleKind::Delta);
  EXPECT_EQ(find_diff_rule("nosuchfamily"), nullptr);
}

}  // namespace
}  // namespace sparsemem
