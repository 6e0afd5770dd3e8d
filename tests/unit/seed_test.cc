// One test per seed thread (seed000..seed004): the legacy or proposed behaviour's symptom next to Linux 6.1's
// answer, each on its own Machine. Expected values come from the threads and the spec, worked out by hand.
#include <gtest/gtest.h>

#include "sparsemem/machine.h"
#include "sparsemem/pagemap.h"
#include "support/devmem.h"
#include "support/machines.h"

namespace sparsemem {
namespace {
using testing::boot_or_die;
using testing::devmem_snapshot;
using testing::expect_clean;
using testing::log_lines_with;
using testing::make_seed004_devdax;
using testing::pc_4160m_map;

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t GiB = uint64_t{1} << 30;

const Behaviour& behaviour(const char* name) {
  const Behaviour* b = find_behaviour(name);
  SPM_CHECK(b != nullptr, "unknown behaviour in a test");
  return *b;
}

MachineConfig pc_config(const Behaviour& b, bool pse = true) {
  MachineConfig c;
  c.memory = pc_4160m_map();
  c.behaviour = b;
  c.cpu_has_pse = pse;
  return c;
}

struct PrivateDriver {
  DevPagemapOps ops;
  PrivateDriver() {
    ops.page_free = [](Pfn, Page&) {};
    ops.migrate_to_ram = [](Pfn) { return 0; };
  }
  void make(DevPagemap& pgmap, PhysRange range) {
    pgmap.type = MemoryType::DevicePrivate;
    pgmap.ops = &ops;
    pgmap.owner = this;
    pgmap.ranges = {range};
  }
};

// Seed 000 (arm64 pfn_valid() vs ZONE_DEVICE, Feb 2021).
// Scenario: arm64 4K/48, RAM 0x40000000-0x7fffffff, a 128 MiB GENERIC pgmap at 0x100000000.
// Expect: under the pre-5.12 memblock rule pfn_valid is false for the ZONE_DEVICE pfns (no
// memblock entry) though their struct pages exist, and the checker reports it (INV-PGMAP-3);
// 6.1's generic pfn_valid answers true from the subsection map. RAM is valid under both.
TEST(Seeds, seed000_memblock_pfn_valid_misses_zone_device) {
  for (const char* name : {"seed000-memblock-pfn-valid", "linux-6.1"}) {
    const bool legacy = std::string(name) != "linux-6.1";
    MachineConfig c;
    c.arch = &kArm64_4K_48;
    c.behaviour = behaviour(name);
    c.memory.regions = {{PhysAddr(0x40000000), GiB, 0, BootMemKind::Usable}};
    auto m = boot_or_die(c);
    ASSERT_TRUE(m);
    DevPagemap pgmap;
    pgmap.type = MemoryType::Generic;
    pgmap.ranges = {PhysRange{PhysAddr(0x100000000), PhysAddr(0x107ffffff)}};
    ASSERT_TRUE(m->memremap_pages(pgmap, 0));
    EXPECT_TRUE(m->pfn_valid(Pfn(0x40000))) << name;
    EXPECT_EQ(m->pfn_valid(Pfn(0x100000)), !legacy) << name;
    EXPECT_EQ(m->pfn_valid(Pfn(0x107fff)), !legacy) << name;
    EXPECT_TRUE(m->vmemmap().descriptor_mapped(Pfn(0x100000))) << name;
    const InvariantReport r = m->check();
    if (legacy) {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.violations().front().id, "INV-PGMAP-3") << r.to_string();
    } else {
      EXPECT_TRUE(r.ok()) << r.to_string();
    }
    m->memunmap_pages(pgmap);
  }
}

// Seed 001 (don't mark hotplugged/ZONE_DEVICE pages PG_reserved; a ZONE_DEVICE map by pfn, Oct 2019).
// Scenario: the §10 A devdax pgmap in early section 40, mapped and unmapped, under 6.1 and the
// two proposals. Expect: 6.1 marks the data and altmap pages PG_reserved, the proposals do not;
// with the per-subsection map "is this ZONE_DEVICE?" is answered by pfn and turns false after
// memunmap, while 6.1 can only read the descriptor, whose zone still says Device (stale).
TEST(Seeds, seed001_pg_reserved_and_zone_device_by_pfn) {
  for (const char* name : {"linux-6.1", "seed001-no-reserved", "seed001-zone-device-map"}) {
    const std::string n = name;
    auto m = boot_or_die(pc_config(behaviour(name)));
    ASSERT_TRUE(m);
    DevPagemap pgmap;
    make_seed004_devdax(pgmap);
    ASSERT_TRUE(m->memremap_pages(pgmap, 0));
    auto data = m->vmemmap().read_page(Pfn(0x144200));
    auto altmap_page = m->vmemmap().read_page(Pfn(0x144002));
    ASSERT_TRUE(data && altmap_page);
    EXPECT_EQ(data->test(PG::reserved), n == "linux-6.1") << n;
    EXPECT_EQ(altmap_page->test(PG::reserved), n == "linux-6.1") << n;
    EXPECT_EQ(data->zone(), ZoneType::Device);
    EXPECT_TRUE(m->pfn_is_zone_device(Pfn(0x144200))) << n;
    EXPECT_FALSE(m->pfn_is_zone_device(Pfn(0x143000))) << n;
    EXPECT_EQ(m->pfn_to_online_page(Pfn(0x144200)), nullptr) << n;
    expect_clean(*m);
    m->memunmap_pages(pgmap);
    // Only the map knows the pfn is no longer ZONE_DEVICE.
    EXPECT_EQ(m->pfn_is_zone_device(Pfn(0x144200)), n != "seed001-zone-device-map") << n;
    EXPECT_EQ(m->pfn_to_online_page(Pfn(0x144200)), nullptr) << n;
    expect_clean(*m);
  }
}

// Seed 002 (HMM v13: reject an altmap for un-addressable memory, Nov 2016).
// Scenario: x86 with DEVICE_PRIVATE, 256 MiB device-private at 0x3ffff0000000 with an altmap
// (base = start, free 1024). Expect: 6.1 accepts it, backs both section memmaps from the
// device's own (unaddressable) pfns, and memunmap tears it down without the altmap: "failed to
// free all reserved pages" and the altmap still counts 1024 pages. Under the proposal the call is
// refused -EINVAL before anything changes.
TEST(Seeds, seed002_private_altmap_accepted_by_6_1_refused_by_proposal) {
  for (const char* name : {"linux-6.1", "seed002-reject-private-altmap"}) {
    const bool proposal = std::string(name) != "linux-6.1";
    MachineConfig c = pc_config(behaviour(name));
    c.kernel.device_private = true;
    c.cpu_phys_bits = 46;
    auto m = boot_or_die(c);
    ASSERT_TRUE(m);
    auto region = m->request_free_mem_region(256 * MiB, "hmm_dmirror");
    ASSERT_TRUE(region);
    PrivateDriver drv;
    DevPagemap pgmap;
    drv.make(pgmap, *region);
    pgmap.flags = PGMAP_ALTMAP_VALID;
    pgmap.altmap.base_pfn = Pfn(0x3ffff0000);
    pgmap.altmap.free = NrPages(1024);
    const std::string before = devmem_snapshot(*m);
    auto r = m->memremap_pages(pgmap, 0);
    if (proposal) {
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, Errno::Inval);
      EXPECT_EQ(r.error().message, "Device private memory cannot use an altmap");
      EXPECT_EQ(devmem_snapshot(*m), before);
      expect_clean(*m);
      continue;
    }
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(pgmap.altmap.alloc.value(), 1024u);
    EXPECT_EQ(m->vmemmap().origin_of(Pfn(0x3ffff0000)), VmemmapOrigin::Altmap);
    expect_clean(*m);
    m->memunmap_pages(pgmap);
    EXPECT_EQ(log_lines_with(*m, "failed to free all reserved pages"), 1u);
    EXPECT_EQ(pgmap.altmap.alloc.value(), 1024u);
    expect_clean(*m);
  }
}

// Seed 003 (arm64 WARN flood for device-private pages, Apr 2023).
// Scenario: arm64 4K/39, RAM at 0x80_0000_0000, DEVICE_PRIVATE, 256 MiB from
// request_free_mem_region. Expect: 6.1 places it at 0xfffff0000000, WARNs once per section and
// maps descriptors outside the window (wrapped into the user half); Ard's hard error refuses the
// mapping -ERANGE without a WARN and without any change; the placement proposal puts the chunk
// at 0xbff0000000, the top of what the window covers, with no WARN.
TEST(Seeds, seed003_out_of_window_warn_per_section_vs_hard_error_vs_placement) {
  const std::string warn = "WARNING: at arch/arm64/mm/mmu.c vmemmap_populate";
  for (const char* name : {"linux-6.1", "seed003-hard-error", "seed003-window-placement"}) {
    const std::string n = name;
    MachineConfig c;
    c.arch = &kArm64_4K_39;
    c.behaviour = behaviour(name);
    c.kernel.device_private = true;
    c.memory.regions = {{PhysAddr(0x8000000000), GiB, 0, BootMemKind::Usable}};
    auto m = boot_or_die(c);
    ASSERT_TRUE(m);
    auto region = m->request_free_mem_region(256 * MiB, "hmm_dmirror");
    ASSERT_TRUE(region) << n;
    EXPECT_EQ(region->start.value(), n == "seed003-window-placement" ? 0xbff0000000u : 0xfffff0000000u) << n;
    PrivateDriver drv;
    DevPagemap pgmap;
    drv.make(pgmap, *region);
    const Pfn first = m->arch().phys_to_pfn(region->start);
    const std::string before = devmem_snapshot(*m);
    auto r = m->memremap_pages(pgmap, 0);
    if (n == "seed003-hard-error") {
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, Errno::Range);
      EXPECT_NE(r.error().message.find("outside the vmemmap window"), std::string::npos) << r.error().message;
      EXPECT_EQ(log_lines_with(*m, warn), 0u);
      EXPECT_EQ(devmem_snapshot(*m), before);
      expect_clean(*m);
      continue;
    }
    ASSERT_TRUE(r) << n << ": " << r.error().message;
    const bool in_window = n == "seed003-window-placement";
    EXPECT_EQ(log_lines_with(*m, warn), in_window ? 0u : 2u) << n;
    EXPECT_EQ(m->vmemmap().in_window(first, NrPages(65536)), in_window) << n;
    if (!in_window) EXPECT_LT(m->vmemmap().page_addr(first).value(), uint64_t{1} << 63) << "user half";
    auto p = m->vmemmap().read_page(first);
    ASSERT_TRUE(p) << n;
    EXPECT_EQ(p->zone(), ZoneType::Device);
    expect_clean(*m);
    m->memunmap_pages(pgmap);
    expect_clean(*m);
  }
}

// Seed 004 (mm/sparse: never partially remove memmap for early section, Jun 2020).
// Scenario: the §10 A devdax range in early section 40, unmapped and mapped again (ndctl
// create-namespace --reconfig), under 6.1 and under the pre-fix behaviour, with and without PSE.
// Expect: 6.1 keeps the boot memmap and the re-add works either way. Pre-fix with PSE: the
// removed descriptors read 0xFD (PAGE_UNUSED), the re-add rewrites only the altmap area and the
// data pages, so the info-block pfn 0x144000 keeps a compound_head of 0xfdfdfdfdfdfdfdfd — a
// "tail" whose head 0xfdfdfdfdfdfdfdfc is non-canonical — and the old pfn_to_online_page hands it
// to walkers. Pre-fix without PSE: the PTEs are gone and the re-add faults at the first write,
// pfn 0x144002's descriptor.
TEST(Seeds, seed004_remove_and_readd_in_early_section) {
  for (const char* name : {"linux-6.1", "seed004-legacy"}) {
    for (bool pse : {true, false}) {
      const bool legacy = std::string(name) != "linux-6.1";
      SCOPED_TRACE(std::string(name) + (pse ? " PSE" : " no PSE"));
      auto m = boot_or_die(pc_config(behaviour(name), pse));
      ASSERT_TRUE(m);
      DevPagemap pgmap;
      make_seed004_devdax(pgmap);
      ASSERT_TRUE(m->memremap_pages(pgmap, 0));
      m->memunmap_pages(pgmap);
      EXPECT_TRUE(m->pfn_valid(Pfn(0x144000)));  // the early rule: whole section valid

      if (!legacy) {
        ASSERT_TRUE(m->memremap_pages(pgmap, 0));
        auto info = m->vmemmap().read_page(Pfn(0x144000));
        ASSERT_TRUE(info);
        EXPECT_EQ(info->zone(), ZoneType::Normal);  // still the boot descriptor
        EXPECT_FALSE(info->is_tail());
        EXPECT_EQ(m->pfn_to_online_page(Pfn(0x144000)), nullptr);
        expect_clean(*m);
        m->memunmap_pages(pgmap);
        expect_clean(*m);
        continue;
      }
      if (pse) {
        auto info = m->vmemmap().read_page(Pfn(0x144000));
        ASSERT_TRUE(info);
        EXPECT_EQ(info->flags, 0xfdfdfdfdfdfdfdfdu);
        ASSERT_TRUE(m->memremap_pages(pgmap, 0));
        info = m->vmemmap().read_page(Pfn(0x144000));
        ASSERT_TRUE(info);
        EXPECT_EQ(info->compound_head, 0xfdfdfdfdfdfdfdfdu);
        EXPECT_TRUE(info->is_tail());
        EXPECT_EQ(info->compound_head - 1, 0xfdfdfdfdfdfdfdfcu);
        EXPECT_NE(m->pfn_to_online_page(Pfn(0x144000)), nullptr);  // the old gate lets walkers in
        auto data = m->vmemmap().read_page(Pfn(0x144200));
        ASSERT_TRUE(data);
        EXPECT_EQ(page_pgmap(*data), &pgmap);
        EXPECT_FALSE(m->check().ok());  // ZONE_DEVICE pfns online, a valid pfn with garbage
        m->memunmap_pages(pgmap);
      } else {
        EXPECT_FALSE(m->vmemmap().descriptor_mapped(Pfn(0x144000)));
        auto r = m->memremap_pages(pgmap, 0);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errno::Fault);
        EXPECT_EQ(r.error().message, "BUG: unable to handle page fault for address: ffffea0005100080");
        EXPECT_FALSE(pgmap.mapped());
      }
    }
  }
}

}  // namespace
}  // namespace sparsemem
