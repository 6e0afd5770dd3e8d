// Tests for include/sparsemem/machine.h: boot of a memory map (spec §4.1), the pfn queries after
// boot, the refusal of bad maps, and boot on every architecture profile.
#include "sparsemem/machine.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "sparsemem/platform.h"
#include "support/machines.h"

namespace sparsemem {
namespace {
using testing::boot_or_die;
using testing::expect_clean;
using testing::pc_4160m_map;

MachineConfig pc_config() {
  MachineConfig c;
  c.memory = pc_4160m_map();
  return c;
}

// Scenario: spec §10 example A, boot part — RAM up to 0x143ffffff on x86-64.
// Expect: section 40 is Present|HasMemMap|Online|Early with subsections 0-31 set and 32-63 clear;
// pfn_valid is true for the whole section; pfn_to_online_page is null from pfn 0x144000.
TEST(SpecExampleA, boot_section_40_is_early_with_half_its_subsections) {
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  const MemSection* ms = m->sections().find(SectionNr(40));
  ASSERT_NE(ms, nullptr);
  const SectionFlags f = ms->flags();
  EXPECT_TRUE(f.has(SectionFlag::Present) && f.has(SectionFlag::HasMemMap) && f.has(SectionFlag::Online) &&
              f.has(SectionFlag::Early));
  EXPECT_FALSE(f.has(SectionFlag::TaintZoneDevice));
  RcuReadGuard g;
  for (unsigned i = 0; i < 64; ++i) EXPECT_EQ(ms->usage()->test(SubsectionIdx(i)), i < 32) << "subsection " << i;
  for (uint64_t pfn = 0x140000; pfn < 0x148000; ++pfn) ASSERT_TRUE(m->pfn_valid(Pfn(pfn))) << std::hex << pfn;
  EXPECT_FALSE(m->pfn_valid(Pfn(0x148000)));
  for (uint64_t pfn = 0x140000; pfn < 0x144000; pfn += 0x100) EXPECT_NE(m->pfn_to_online_page(Pfn(pfn)), nullptr);
  EXPECT_NE(m->pfn_to_online_page(Pfn(0x143fff)), nullptr);
  for (uint64_t pfn = 0x144000; pfn < 0x148000; ++pfn)
    ASSERT_EQ(m->pfn_to_online_page(Pfn(pfn)), nullptr) << std::hex << pfn;
  // The descriptor of pfn 0x144000 exists (pfn_valid) and lives at vmemmap_base + pfn * 64.
  EXPECT_EQ(m->vmemmap().page_addr(Pfn(0x144000)).value(), 0xffffea0005100000ULL);
  // init_unavailable_range() made the tail of section 40 reserved Normal-zone pages.
  auto p = m->vmemmap().read_page(Pfn(0x144000));
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->test(PG::reserved));
  EXPECT_EQ(p->zone(), ZoneType::Normal);
  expect_clean(*m);
}

// Scenario: the a_baseline trace, recorded from Linux 6.1 on QEMU pc -m 4160M. Its System RAM
// ranges become the boot map. Expect: the same memory blocks, zone spans and present counts,
// "pages in unavailable ranges" lines and block size; kpageflags NOPAGE exactly where
// pfn_to_online_page is null.
TEST(OracleBaseline, boot_layout_matches_a_baseline_trace) {
  const nlohmann::json t = testing::load_trace("a_baseline");
  const nlohmann::json& snap = t["steps"][0]["snapshot"];
  MachineConfig cfg;
  for (const auto& r : snap["iomem"]) {
    if (r["depth"] != 0 || r["name"] != "System RAM") continue;
    const uint64_t s = std::stoull(r["start"].get<std::string>(), nullptr, 16);
    const uint64_t e = std::stoull(r["end"].get<std::string>(), nullptr, 16) + 1;
    // memblock works in whole pages: the kernel drops the partial page at the end of 0x9fbff.
    cfg.memory.regions.push_back({PhysAddr(s), (e & ~0xfffULL) - s, 0, BootMemKind::Usable});
  }
  ASSERT_EQ(cfg.memory.regions.size(), 3u);
  auto m = boot_or_die(cfg);
  ASSERT_TRUE(m);

  std::vector<uint64_t> want_ids, got_ids;
  std::vector<std::string> want_zones, got_zones;
  for (const auto& b : snap["memory_blocks"]) {
    want_ids.push_back(b["id"]);
    want_zones.push_back(b["valid_zones"]);
    EXPECT_EQ(b["state"], "online");
  }
  m->memory_blocks().for_each([&](const MemoryBlock& b) {
    got_ids.push_back(b.id.value());
    got_zones.push_back(b.zone ? zone_name(*b.zone) : "none");
  });
  EXPECT_EQ(got_ids, want_ids);
  EXPECT_EQ(got_zones, want_zones);
  EXPECT_EQ(m->memory_block_size(), std::stoull(snap["memory_global"]["block_size_bytes"].get<std::string>(),
                                                nullptr, 16));

  for (const auto& z : snap["zones"]) {
    const std::string name = z["zone"];
    const ZoneType zt = name == "DMA" ? ZoneType::DMA : name == "DMA32" ? ZoneType::DMA32
                        : name == "Normal" ? ZoneType::Normal : name == "Movable" ? ZoneType::Movable
                                                                                 : ZoneType::Device;
    const Zone& zone = m->nodes()[z["node"].get<unsigned>()].zone(zt);
    SCOPED_TRACE(name);
    EXPECT_EQ(zone.spanned_pages.value(), z["spanned"].get<uint64_t>());
    EXPECT_EQ(zone.present_pages.value(), z["present"].get<uint64_t>());
    if (!z["start_pfn"].is_null()) EXPECT_EQ(zone.zone_start_pfn.value(), z["start_pfn"].get<uint64_t>());
    // managed differs by the kernel's own boot allocations (kernel image, page tables, ...).
    EXPECT_LE(z["managed"].get<uint64_t>(), zone.managed_pages.value());
  }

  std::vector<std::string> want_lines, got_lines;
  const std::regex unavailable("On node \\d+, zone \\w+: \\d+ pages in unavailable ranges");
  for (const auto& l : snap["dmesg"]) {
    const std::string s = l;
    std::smatch mm;
    if (std::regex_search(s, mm, unavailable)) want_lines.push_back(mm.str());
    if (s.find("x86/mm: Memory block size") != std::string::npos) want_lines.push_back(s.substr(s.find("x86/mm")));
  }
  for (const LogLine& l : m->log().lines())
    if (std::regex_search(l.text, unavailable) || l.text.find("x86/mm: Memory block size") != std::string::npos)
      got_lines.push_back(l.text);
  EXPECT_EQ(got_lines, want_lines);

  for (const auto& k : snap["kpageflags"]) {
    if (!k["flags"].is_string() || k["flags"] == "EOF") continue;
    const uint64_t pfn = std::stoull(k["pfn"].get<std::string>(), nullptr, 16);
    const uint64_t flags = std::stoull(k["flags"].get<std::string>(), nullptr, 16);
    const bool nopage = flags == (uint64_t{1} << 20);
    EXPECT_EQ(m->pfn_to_online_page(Pfn(pfn)) == nullptr, nopage) << "pfn " << std::hex << pfn;
  }
  expect_clean(*m);
}

// Scenario: boot every recorded trace's QEMU machine through the platform layer. Expect: the boot
// /proc/iomem equals the trace's step-0 iomem_raw minus what drivers add later (NVDIMM "Persistent
// Memory" containers and cold DIMMs' hot-added "System RAM"), the boot memory blocks equal the
// trace's online blocks, and the checker is clean.
TEST(OracleBaseline, every_trace_machine_boots_to_its_step0_layout) {
  for (const char* name : {"a_baseline", "b_dimm_coldplug", "b2_autoonline_policies", "b3_memmap_on_memory",
                           "c_dimm_hotremove", "c2_qmp_hotplug", "d1_nvdimm_devdax", "d2_nvdimm_labelless",
                           "d3_pmem_in_early_section", "e_kmem", "f_errors"}) {
    SCOPED_TRACE(name);
    const nlohmann::json t = testing::load_trace(name);
    std::vector<std::string> argv = t["qemu_cmdline"];
    auto platform = platform_from_qemu(argv, t["guest_cmdline"].get<std::string>());
    ASSERT_TRUE(platform) << platform.error().message;
    auto m = Machine::boot(*platform, kLinux61);
    ASSERT_TRUE(m) << m.error().message;
    const nlohmann::json& snap = t["steps"][0]["snapshot"];
    // Lines owned by drivers loaded later (nfit, nd_pmem, ACPI memory hotplug) are not boot resources.
    std::string want;
    bool skipping = false;
    std::string got = (*m)->iomem().render();
    for (const auto& line : snap["iomem_raw"]) {
      const std::string l = line;
      if (l.empty()) continue;
      if (l[0] != ' ') {
        const uint64_t start = std::stoull(l.substr(0, l.find('-')), nullptr, 16);
        const std::string n = l.substr(l.find(" : ") + 3);
        skipping = n == "Persistent Memory" || (n == "System RAM" && start >= 0x180000000ULL);
      }
      const std::string child = l.substr(l.find(" : ") + 3);
      const bool driver_child = l[0] == ' ' && (child.rfind("namespace", 0) == 0 || child.rfind("dax", 0) == 0 ||
                                                child.rfind("pfn", 0) == 0 || child.rfind("btt", 0) == 0);
      if (!skipping && !driver_child) want += l + "\n";
    }
    EXPECT_EQ(got, want);
    std::vector<uint64_t> want_ids, got_ids;
    for (const auto& b : snap["memory_blocks"])
      // Blocks of cold-plugged DIMMs (device memory from 0x180000000) are hot-added, not boot blocks.
      if (b["id"].get<uint64_t>() * 0x8000000ULL < 0x180000000ULL) want_ids.push_back(b["id"]);
    (*m)->memory_blocks().for_each([&](const MemoryBlock& b) { got_ids.push_back(b.id.value()); });
    EXPECT_EQ(got_ids, want_ids);
    testing::expect_clean(**m);
  }
}

// Scenario: maps the kernel refuses to build. Expect: EINVAL for overlap, misalignment, zero size,
// an impossible node and an empty map; ERANGE beyond the physical limit; no machine is built.
TEST(MachineBoot, bad_maps_are_refused) {
  struct Case {
    const char* what;
    std::vector<BootRegion> regions;
    Errno err;
  };
  const Case cases[] = {
      {"empty", {}, Errno::Inval},
      {"overlap", {{PhysAddr(0), 1 << 30, 0}, {PhysAddr(512 << 20), 1 << 30, 0}}, Errno::Inval},
      {"unaligned start", {{PhysAddr(0x1800), 1 << 20, 0}}, Errno::Inval},
      {"unaligned size", {{PhysAddr(0), (1 << 20) + 12, 0}}, Errno::Inval},
      {"zero size", {{PhysAddr(0x100000), 0, 0}}, Errno::Inval},
      {"bad node", {{PhysAddr(0), 1 << 20, 4096}}, Errno::Inval},
      {"beyond 46 bits", {{PhysAddr(uint64_t{1} << 46), 1 << 20, 0}}, Errno::Range},
      {"straddles 46 bits", {{PhysAddr((uint64_t{1} << 46) - (1 << 20)), 2 << 20, 0}}, Errno::Range},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    MachineConfig cfg;
    cfg.memory.regions = c.regions;
    auto m = Machine::boot(cfg);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, c.err) << m.error().message;
    EXPECT_FALSE(m.error().message.empty());
  }
}

// Scenario: boot an x86 machine with a reserved range and a hole inside a subsection.
// Expect: reserved pages and the hole are PG_reserved; free pages are in the buddy with
// refcount 0; managed counts exactly the free pages.
TEST(MachineBoot, reserved_ranges_and_holes_are_pg_reserved) {
  MachineConfig cfg;
  cfg.memory.regions = {{PhysAddr(0x1000000), 0x100000, 0, BootMemKind::Usable},
                        {PhysAddr(0x1100000), 0x10000, 0, BootMemKind::Reserved},
                        {PhysAddr(0x1120000), 0x6ee0000, 0, BootMemKind::Usable}};
  auto m = boot_or_die(cfg);
  ASSERT_TRUE(m);
  auto reserved = [&](uint64_t pfn) { return m->vmemmap().read_page(Pfn(pfn))->test(PG::reserved); };
  EXPECT_FALSE(reserved(0x1000));
  EXPECT_TRUE(reserved(0x1100));  // memblock.reserved
  EXPECT_TRUE(reserved(0x110f));
  EXPECT_TRUE(reserved(0x1110));  // hole 0x1110000-0x111ffff inside a populated subsection
  EXPECT_FALSE(reserved(0x1120));
  EXPECT_TRUE(reserved(0x0));     // below RAM in the same early section
  EXPECT_EQ(m->vmemmap().read_page(Pfn(0x1000))->refcount, 0);
  EXPECT_TRUE(m->vmemmap().read_page(Pfn(0x1000))->is_buddy());
  const uint64_t free_pages = 0x100 + 0x6ee0;
  EXPECT_EQ(m->nodes()[0].zone(ZoneType::DMA32).managed_pages.value(), free_pages);
  EXPECT_EQ(m->nodes()[0].zone(ZoneType::DMA32).present_pages.value(), free_pages + 0x10);
  expect_clean(*m);
}

// Scenario: the same shapes (small, holes, NOMAP, RAM ending mid-section, two nodes) on every
// architecture profile, placed where that architecture's RAM lives. Expect: the checker reports
// nothing; pfn_valid covers the whole boot sections; pfn_to_online_page only RAM subsections.
TEST(MachineBoot, every_profile_boots_every_shape) {
  for (const ArchProfile& arch : all_arch_profiles()) {
    const uint64_t base = arch.family == ArchFamily::Arm64 ? 0x40000000 : 0;
    const uint64_t sec = arch.section_size();
    // Highest section boot RAM can use: the physical limit on x86; on arm64 the end of what the
    // vmemmap window covers (the kernel drops memblock memory beyond the linear map).
    uint64_t top = uint64_t{1} << arch.max_physmem_bits;
    if (arch.family == ArchFamily::Arm64)
      top = std::min(top, base + (arch.vmemmap_size / STRUCT_PAGE_SIZE) * arch.page_size());
    const std::vector<std::pair<const char*, std::vector<BootRegion>>> shapes = {
        {"small", {{PhysAddr(base), 256 << 20, 0}}},
        {"holes", {{PhysAddr(base), 64 << 20, 0}, {PhysAddr(base + 3 * sec), sec, 0}}},
        {"nomap", {{PhysAddr(base), 32 << 20, 0},
                   {PhysAddr(base + (32 << 20)), 2 << 20, 0, BootMemKind::NoMap},
                   {PhysAddr(base + (34 << 20)), 222 << 20, 0}}},
        {"mid-section end", {{PhysAddr(base), sec + sec / 2, 0}}},
        {"two nodes", {{PhysAddr(base), sec, 0}, {PhysAddr(base + 2 * sec), sec, 1}}},
        {"high", {{PhysAddr(base), sec, 0},
                  {PhysAddr(top - sec), sec, 0}}},
    };
    for (const auto& [what, regions] : shapes) {
      SCOPED_TRACE(std::string(arch.name) + " " + what);
      MachineConfig cfg;
      cfg.arch = &arch;
      cfg.memory.regions = regions;
      auto m = boot_or_die(cfg);
      ASSERT_TRUE(m);
      expect_clean(*m);
      for (const BootRegion& r : regions) {
        const Pfn first = arch.phys_to_pfn(r.start);
        const Pfn last = arch.phys_to_pfn(r.start + (r.size - 1));
        EXPECT_TRUE(m->pfn_valid(first));
        EXPECT_TRUE(m->pfn_valid(last));
        EXPECT_NE(m->pfn_to_online_page(first), nullptr);
        EXPECT_NE(m->pfn_to_online_page(last), nullptr);
        // The whole boot section is valid, even beyond RAM (early-section rule).
        const Pfn sec_first = arch.section_nr_to_pfn(arch.pfn_to_section_nr(first));
        EXPECT_TRUE(m->pfn_valid(sec_first));
      }
    }
  }
}

}  // namespace
}  // namespace sparsemem
