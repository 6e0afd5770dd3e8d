// Tests for the devmem section of include/sparsemem/machine.h: memremap_pages / memunmap_pages (spec §4.12-4.16),
// the worked examples §10 A, C and D, refusals that leave the machine unchanged, compound de-duplication, concurrency.
#include <gtest/gtest.h>

#include <cstring>

#include <atomic>
#include <chrono>
#include <thread>

#include "sparsemem/kpageflags.h"
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

MachineConfig pc_config(const Behaviour& b = kLinux61) {
  MachineConfig c;
  c.memory = pc_4160m_map();
  c.behaviour = b;
  return c;
}

void make_generic(DevPagemap& pgmap, uint64_t start, uint64_t size, unsigned shift = 0) {
  pgmap.type = MemoryType::Generic;
  pgmap.ranges = {PhysRange{PhysAddr(start), PhysAddr(start + size - 1)}};
  pgmap.vmemmap_shift = shift;
}

// A device-private driver's callbacks (lib/test_hmm's shape): page_free counts its calls.
struct HmmDriver {
  std::atomic<int> freed{0};
  DevPagemapOps ops;
  HmmDriver() {
    ops.page_free = [this](Pfn, Page&) { freed.fetch_add(1); };
    ops.migrate_to_ram = [](Pfn) { return 0; };
  }
  void make_private(DevPagemap& pgmap, PhysRange range) {
    pgmap.type = MemoryType::DevicePrivate;
    pgmap.ops = &ops;
    pgmap.owner = this;
    pgmap.ranges = {range};
  }
};

// -------------------------------------------------------------------------------------------------
// Spec §10 A.

class SpecExampleADevdax : public ::testing::TestWithParam<unsigned> {};

// Scenario: spec §10 A — the 16 MiB devdax pgmap with altmap (base 0x144000, reserve 2, free 510)
// inside early section 40, as base pages (shift 0) and as 2 MiB compound pages (shift 9).
// Expect: the boot memmap is reused (no vmemmap change, altmap untouched); the Device zone spans
// 0x144000-0x144fff; section 40 is tainted; pfn_to_online_page is null for the whole range but
// not for RAM below it; the altmap area 0x144002-0x1441ff is reserved ZONE_DEVICE pages; 3584
// data pages from 0x144200 carry the pgmap; references 3584 (shift 0) or 7 (shift 9) plus the
// initial one. After memunmap: subsection bits 32-39 clear, pfn_valid still true, taint and
// Device span stay, the registry is empty, the checker is clean.
TEST_P(SpecExampleADevdax, memremap_then_memunmap_in_early_section_40) {
  const unsigned shift = GetParam();
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  const VmemmapStats before = m->vmemmap().stats();
  DevPagemap pgmap;
  make_seed004_devdax(pgmap, shift);
  ASSERT_TRUE(m->memremap_pages(pgmap, 0));

  const VmemmapStats after = m->vmemmap().stats();
  EXPECT_EQ(after.base_pages, before.base_pages);
  EXPECT_EQ(after.huge_pmds, before.huge_pmds);
  EXPECT_EQ(pgmap.altmap.alloc.value(), 0u);
  // The data pages are pending (section 40's part of them); everything below reads through the run.
  EXPECT_EQ(m->vmemmap().device_pending_sections(), 1u);
  const Result<Page> live_tail = m->vmemmap().read_page(Pfn(0x144a07));
  ASSERT_TRUE(live_tail);
  const Zone& dev = m->nodes()[0].zone(ZoneType::Device);
  EXPECT_EQ(dev.zone_start_pfn.value(), 0x144000u);
  EXPECT_EQ(dev.spanned_pages.value(), 4096u);
  EXPECT_EQ(dev.present_pages.value(), 0u);
  EXPECT_EQ(m->nodes()[0].node_start_pfn.value() + m->nodes()[0].node_spanned_pages.value(), 0x145000u);
  const SectionFlags f = m->sections().find(SectionNr(40))->flags();
  EXPECT_TRUE(f.has(SectionFlag::TaintZoneDevice) && f.has(SectionFlag::Early) && f.has(SectionFlag::Online));
  {
    RcuReadGuard g;
    const MemSectionUsage* u = m->sections().find(SectionNr(40))->usage();
    for (unsigned i = 0; i < 64; ++i) EXPECT_EQ(u->test(SubsectionIdx(i)), i < 40) << "subsection " << i;
  }
  EXPECT_NE(m->pfn_to_online_page(Pfn(0x143fff)), nullptr);
  for (uint64_t pfn = 0x144000; pfn < 0x145000; ++pfn) {
    ASSERT_EQ(m->pfn_to_online_page(Pfn(pfn)), nullptr) << std::hex << pfn;
    ASSERT_TRUE(m->pfn_valid(Pfn(pfn)));
  }
  // /proc/kpageflags (trace d1): NOPAGE through the TAINT slow path.
  for (uint64_t pfn : {0x144000u, 0x144200u, 0x144fffu}) {
    auto kpf = kpageflags(*m, Pfn(pfn));
    ASSERT_TRUE(kpf);
    EXPECT_EQ(*kpf, KPF_NOPAGE_VALUE) << std::hex << pfn;
  }
  // The info-block pfns keep their boot descriptors (init_unavailable_range: Normal, reserved).
  for (uint64_t pfn : {0x144000u, 0x144001u}) {
    auto p = m->vmemmap().read_page(Pfn(pfn));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->zone(), ZoneType::Normal);
    EXPECT_TRUE(p->test(PG::reserved));
  }
  // The altmap area: reserved ZONE_DEVICE pages without a pgmap.
  for (uint64_t pfn = 0x144002; pfn < 0x144200; ++pfn) {
    auto p = m->vmemmap().read_page(Pfn(pfn));
    ASSERT_TRUE(p);
    ASSERT_EQ(p->zone(), ZoneType::Device) << std::hex << pfn;
    ASSERT_TRUE(p->test(PG::reserved));
    ASSERT_NE(page_pgmap(*p), &pgmap);
  }
  uint64_t data_pages = 0;
  for (uint64_t pfn = 0x144200; pfn < 0x145000; ++pfn) {
    auto p = m->vmemmap().read_page(Pfn(pfn));
    ASSERT_TRUE(p);
    ASSERT_EQ(p->zone(), ZoneType::Device);
    ASSERT_TRUE(p->test(PG::reserved));
    const bool head = shift == 0 || (pfn - 0x144200) % 512 == 0;
    if (head) {
      EXPECT_EQ(page_pgmap(*p), &pgmap);
      EXPECT_EQ(p->refcount, 1);
      EXPECT_EQ(p->test(PG::head), shift != 0);
    } else {
      const uint64_t head_pfn = pfn & ~uint64_t{511};
      EXPECT_EQ(p->compound_head, m->vmemmap().page_addr(Pfn(head_pfn)).value() | 1);
      EXPECT_EQ(p->refcount, 0);
    }
    ++data_pages;
  }
  EXPECT_EQ(data_pages, 3584u);
  if (shift) {
    auto first_tail = m->vmemmap().read_page(Pfn(0x144201));
    ASSERT_TRUE(first_tail);
    EXPECT_EQ(compound_order_of(*first_tail), 9u);
    EXPECT_EQ(compound_nr_of(*first_tail), 512u);
  }
  EXPECT_EQ(m->sections().pageblock_migratetype(Pfn(0x144200)), Migratetype::Movable);
  EXPECT_EQ(m->sections().pageblock_migratetype(Pfn(0x144e00)), Migratetype::Movable);
  const uint64_t units = shift ? 7 : 3584;
  EXPECT_EQ(pgmap.bulk_refs(), units);
  EXPECT_EQ(pgmap.ref_count(), units + 1);
  DevPagemap* got = m->get_dev_pagemap(Pfn(0x144800));
  EXPECT_EQ(got, &pgmap);
  EXPECT_EQ(pgmap.ref_count(), units + 2);
  put_dev_pagemap(got);
  expect_clean(*m);

  m->memunmap_pages(pgmap);
  EXPECT_FALSE(pgmap.mapped());
  EXPECT_EQ(pgmap.ref_count(), 0u);
  // The boot memmap stays (6.1's early-section rule), so the run was written on removal: the
  // stale ZONE_DEVICE bytes a pfn walker finds are the ones the live range read as.
  EXPECT_EQ(m->vmemmap().device_pending_sections(), 0u);
  const Result<Page> stale_tail = m->vmemmap().read_page(Pfn(0x144a07));
  ASSERT_TRUE(stale_tail);
  EXPECT_EQ(std::memcmp(&*stale_tail, &*live_tail, sizeof(Page)), 0);
  {
    RcuReadGuard g;
    const MemSectionUsage* u = m->sections().find(SectionNr(40))->usage();
    for (unsigned i = 0; i < 64; ++i) EXPECT_EQ(u->test(SubsectionIdx(i)), i < 32) << "subsection " << i;
  }
  EXPECT_TRUE(m->sections().find(SectionNr(40))->flags().has(SectionFlag::TaintZoneDevice));
  for (uint64_t pfn = 0x144000; pfn < 0x145000; pfn += 0x80) {
    EXPECT_TRUE(m->pfn_valid(Pfn(pfn)));
    EXPECT_EQ(m->pfn_to_online_page(Pfn(pfn)), nullptr);
    auto kpf = kpageflags(*m, Pfn(pfn));
    ASSERT_TRUE(kpf);
    EXPECT_EQ(*kpf, KPF_NOPAGE_VALUE);  // the subsection bit is clear now
  }
  EXPECT_EQ(m->nodes()[0].zone(ZoneType::Device).spanned_pages.value(), 4096u);
  EXPECT_TRUE(m->pgmap_registry().entries().empty());
  EXPECT_EQ(m->get_dev_pagemap(Pfn(0x144800)), nullptr);
  EXPECT_EQ(log_lines_with(*m, "failed to free all reserved pages"), 0u);
  expect_clean(*m);

  // The reconfigure of trace d1: the same range again; the Device span stays at 4096.
  ASSERT_TRUE(m->memremap_pages(pgmap, 0));
  EXPECT_EQ(m->nodes()[0].zone(ZoneType::Device).spanned_pages.value(), 4096u);
  expect_clean(*m);
  m->memunmap_pages(pgmap);
  expect_clean(*m);
}
INSTANTIATE_TEST_SUITE_P(Shifts, SpecExampleADevdax, ::testing::Values(0u, 9u));

// Scenario: two 16 MiB devdax pgmaps side by side at 0x180000000 (trace d1, steps 2 and 7).
// Expect: the Device zone spans both (8192 pages) and keeps spanning them after both are gone.
TEST(Memremap, device_zone_grows_over_two_pgmaps_and_never_shrinks) {
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  DevPagemap a, b;
  make_generic(a, 0x180000000, 16 * MiB);
  make_generic(b, 0x181000000, 16 * MiB);
  ASSERT_TRUE(m->memremap_pages(a, 0));
  EXPECT_EQ(m->nodes()[0].zone(ZoneType::Device).spanned_pages.value(), 4096u);
  ASSERT_TRUE(m->memremap_pages(b, 0));
  const Zone& dev = m->nodes()[0].zone(ZoneType::Device);
  EXPECT_EQ(dev.zone_start_pfn.value(), 0x180000u);
  EXPECT_EQ(dev.spanned_pages.value(), 8192u);
  // ZONE_DEVICE in its own section: present but never online; x86 6.1.y keeps max_pfn.
  const SectionFlags f = m->sections().find(SectionNr(48))->flags();
  EXPECT_TRUE(f.has(SectionFlag::Present) && f.has(SectionFlag::HasMemMap));
  EXPECT_FALSE(f.has(SectionFlag::Online) || f.has(SectionFlag::Early));
  EXPECT_TRUE(f.has(SectionFlag::TaintZoneDevice));  // both ranges end mid-section
  EXPECT_EQ(m->max_pfn().value(), 0x144000u);
  expect_clean(*m);
  m->memunmap_pages(a);
  m->memunmap_pages(b);
  EXPECT_EQ(m->nodes()[0].zone(ZoneType::Device).spanned_pages.value(), 8192u);
  EXPECT_EQ(m->sections().find(SectionNr(48))->flags().bits(), 0u);  // a non-early section empties to 0
  expect_clean(*m);
}

// Scenario: the same devdax pgmap under "linux-6.1.0" (spec §9.7).
// Expect: max_pfn is raised to the end of the range; 6.1.y does not raise it.
TEST(Memremap, max_pfn_raised_only_by_6_1_0) {
  for (const char* name : {"linux-6.1", "linux-6.1.0"}) {
    auto m = boot_or_die(pc_config(*find_behaviour(name)));
    ASSERT_TRUE(m);
    DevPagemap pgmap;
    make_generic(pgmap, 0x180000000, 128 * MiB);
    ASSERT_TRUE(m->memremap_pages(pgmap, 0));
    EXPECT_EQ(m->max_pfn().value(), std::string(name) == "linux-6.1" ? 0x144000u : 0x188000u) << name;
    m->memunmap_pages(pgmap);
  }
}

// Scenario: a pgmap with two ranges and no altmap (dynamic device-dax).
// Expect: both ranges in the registry, references = pages of both + 1, the registry's
// get_dev_pagemap cache answers range 0 from the cache and range 1 by a new lookup (spec §9.12).
TEST(Memremap, two_ranges_and_the_range0_only_cache) {
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  DevPagemap pgmap;
  make_generic(pgmap, 0x180000000, 2 * MiB);
  pgmap.ranges.push_back(PhysRange{PhysAddr(0x190000000), PhysAddr(0x1901fffff)});
  ASSERT_TRUE(m->memremap_pages(pgmap, 0));
  EXPECT_EQ(pgmap.nr_mapped(), 2u);
  EXPECT_EQ(pgmap.ref_count(), 1024u + 1);
  ASSERT_EQ(m->pgmap_registry().entries().size(), 2u);
  DevPagemap* c = m->get_dev_pagemap(Pfn(0x180000));
  ASSERT_EQ(c, &pgmap);
  EXPECT_EQ(m->get_dev_pagemap(Pfn(0x180100), c), c);  // same reference kept
  EXPECT_EQ(pgmap.ref_count(), 1024u + 2);
  DevPagemap* d = m->get_dev_pagemap(Pfn(0x190000), c);  // cache miss: c dropped, new reference
  EXPECT_EQ(d, &pgmap);
  EXPECT_EQ(pgmap.ref_count(), 1024u + 2);
  put_dev_pagemap(d);
  expect_clean(*m);
  m->memunmap_pages(pgmap);
  EXPECT_TRUE(m->pgmap_registry().entries().empty());
  expect_clean(*m);
}

// -------------------------------------------------------------------------------------------------
// Refusals: every one leaves the machine as it was.

struct Refusal {
  const char* name;
  Errno code;
  const char* message;  // substring of the error text
};

void expect_refused(Machine& m, DevPagemap& pgmap, const Refusal& want) {
  const std::string before = devmem_snapshot(m);
  auto r = m.memremap_pages(pgmap, 0);
  ASSERT_FALSE(r) << want.name;
  EXPECT_EQ(r.error().code, want.code) << want.name << ": " << r.error().message;
  EXPECT_NE(r.error().message.find(want.message), std::string::npos) << want.name << ": " << r.error().message;
  EXPECT_EQ(devmem_snapshot(m), before) << want.name;
  EXPECT_FALSE(pgmap.mapped()) << want.name;
  expect_clean(m);
}

// Scenario: each validation refusal of memremap_pages on the pc machine with one GENERIC pgmap
// already at 0x180000000-0x181ffffff. Expect: the kernel's errno and message, and no change.
TEST(MemremapRefusals, each_errno_leaves_the_machine_unchanged) {
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  DevPagemap existing;
  make_generic(existing, 0x180000000, 32 * MiB);
  ASSERT_TRUE(m->memremap_pages(existing, 0));

  {
    DevPagemap p;
    p.type = MemoryType::Generic;
    expect_refused(*m, p, {"nr_range 0", Errno::Inval, "nr_range must be specified"});
  }
  {
    DevPagemap p;
    make_generic(p, 0x143e00000, 4 * MiB);
    expect_refused(*m, p, {"System RAM", Errno::NxIO, "attempted on ram region 0x143e00000-0x1441fffff"});
  }
  {
    DevPagemap p;
    make_generic(p, 0x181000000, 32 * MiB);  // starts inside `existing`
    expect_refused(*m, p, {"endpoint conflict", Errno::NoMem, "Conflicting mapping in same section"});
  }
  {
    DevPagemap p;
    make_generic(p, 0x17fe00000, 36 * MiB);  // strictly contains `existing`: endpoints outside it
    expect_refused(*m, p, {"containment", Errno::Exist, "already present"});
    EXPECT_EQ(m->get_dev_pagemap(Pfn(0x180800)), &existing);  // 6.1 would have erased its entries
    put_dev_pagemap(&existing);
  }
  {
    DevPagemap p;
    make_seed004_devdax(p);
    p.ranges.push_back(PhysRange{PhysAddr(0x190000000), PhysAddr(0x1901fffff)});
    expect_refused(*m, p, {"altmap, 2 ranges", Errno::Inval, "altmap not supported for multiple ranges"});
  }
  {
    DevPagemap p;
    make_seed004_devdax(p);
    p.ranges = {PhysRange{PhysAddr(0x190000000), PhysAddr(0x190ffffff)}};  // altmap base still 0x144000
    expect_refused(*m, p, {"altmap base", Errno::Inval, "memory add fail, invalid altmap"});
  }
  {
    DevPagemap p;
    make_generic(p, 0x190100000, 1 * MiB);
    expect_refused(*m, p, {"misaligned", Errno::Inval, "Misaligned __add_pages start: 0x190100 end: #1901ff"});
  }
  {
    DevPagemap p;
    make_generic(p, uint64_t{1} << 46, 2 * MiB);
    expect_refused(*m, p,
                   {"beyond PHYSMEM_END", Errno::Inval,
                    "Hotplug memory [0x400000000000-0x400000200000] exceeds maximum addressable range "
                    "[0x0-0x3fffffffffff]"});
  }
  {
    HmmDriver drv;
    DevPagemap p;
    drv.make_private(p, PhysRange{PhysAddr(0x190000000), PhysAddr(0x19fffffff)});
    expect_refused(*m, p, {"private on Debian", Errno::Inval, "Device private memory not supported"});
  }
  {
    DevPagemap p;
    make_generic(p, 0x190000000, 2 * MiB, 10);  // 512 data pages are not a 1024-page unit
    expect_refused(*m, p, {"partial unit", Errno::Inval, "compound units"});
  }
  // Already mapped: -EBUSY, nothing changes.
  const std::string before = devmem_snapshot(*m);
  auto again = m->memremap_pages(existing, 0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errno::Busy);
  EXPECT_EQ(devmem_snapshot(*m), before);
  m->memunmap_pages(existing);
  expect_clean(*m);
}

// Scenario: a 256 MiB GENERIC range whose altmap (free 600) backs the first section's 2 MiB
// memmap PMD but not the second's. Expect: -ENOMEM from the populate, and — unlike 6.1, which
// keeps the first section (spec §9.10) — the first section removed again: nothing changed, the
// altmap's pages all given back.
TEST(MemremapRefusals, populate_failure_undoes_the_sections_already_added) {
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  DevPagemap p;
  make_generic(p, 0x200000000, 256 * MiB);
  p.flags = PGMAP_ALTMAP_VALID;
  p.altmap.base_pfn = Pfn(0x200000);
  p.altmap.free = NrPages(600);
  expect_refused(*m, p, {"altmap exhausted", Errno::NoMem, "do not fit"});
  EXPECT_EQ(p.altmap.alloc.value(), 0u);
  EXPECT_EQ(m->sections().find(SectionNr(64))->flags().bits(), 0u);
}

// Scenario: x86 without PSE, a full-section devdax range with an altmap.
// Expect: -ENOMEM "vmemmap_populate: no cpu support for altmap allocations" and no change.
TEST(MemremapRefusals, no_pse_with_altmap) {
  MachineConfig c = pc_config();
  c.cpu_has_pse = false;
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  DevPagemap p;
  make_generic(p, 0x200000000, 128 * MiB);
  p.flags = PGMAP_ALTMAP_VALID;
  p.altmap.base_pfn = Pfn(0x200000);
  p.altmap.free = NrPages(1024);
  expect_refused(*m, p, {"no PSE", Errno::NoMem, "no cpu support for altmap allocations"});
}

// -------------------------------------------------------------------------------------------------
// Compound vmemmap de-duplication (spec §4.14).

struct DedupCase {
  unsigned shift;
  uint64_t unique_pages;  // vmemmap pages with memory of their own, per 1 GiB of device memory
  bool pending;           // KernelConfig::deferred_struct_page_init (host mappings on first access)
};

class CompoundDedup : public ::testing::TestWithParam<DedupCase> {};

// Scenario: 1 GiB GENERIC at 0x180000000 without altmap, compound order 8, 9 and 18.
// Expect: 2 vmemmap pages of their own per unit (1 MiB units: 2048 pages; 2 MiB: 1024; 1 GiB:
// 2); every other vmemmap page of the range maps one of them again (origin Shared), so a write
// through an alias reads back through the unit's second page; descriptors beyond the 128 unique
// ones read as tails of their head; memunmap gives every mapping back. The same with the memmap
// pending (its host pages mapped on first access) and eager.
TEST_P(CompoundDedup, two_unique_vmemmap_pages_per_unit) {
  const DedupCase c = GetParam();
  MachineConfig cfg = pc_config();
  cfg.kernel.deferred_struct_page_init = c.pending;
  auto m = boot_or_die(std::move(cfg));
  ASSERT_TRUE(m);
  const VmemmapStats before = m->vmemmap().stats();
  DevPagemap pgmap;
  make_generic(pgmap, 0x180000000, GiB, c.shift);
  ASSERT_TRUE(m->memremap_pages(pgmap, 0));
  const VmemmapStats after = m->vmemmap().stats();
  const uint64_t total_vmemmap_pages = (GiB >> 12) * 64 / 4096;  // 4096
  EXPECT_EQ(after.base_pages - before.base_pages, total_vmemmap_pages);
  EXPECT_EQ(after.bytes_by_origin[1] - before.bytes_by_origin[1], c.unique_pages * 4096);
  EXPECT_EQ(after.bytes_by_origin[3] - before.bytes_by_origin[3], (total_vmemmap_pages - c.unique_pages) * 4096);
  EXPECT_EQ(after.bytes_backed() - before.bytes_backed(), c.unique_pages * 4096);
  const Pfn head(0x180000);
  EXPECT_EQ(m->vmemmap().origin_of(head), VmemmapOrigin::Buddy);
  EXPECT_EQ(m->vmemmap().origin_of(head + NrPages(64)), VmemmapOrigin::Buddy);
  EXPECT_EQ(m->vmemmap().origin_of(head + NrPages(128)), VmemmapOrigin::Shared);

  // Descriptor 200 lives in the unit's 4th vmemmap page, an alias of its 2nd (descriptors 64-127).
  Page* alias = m->pfn_to_page(head + NrPages(200));
  const Page* twin = m->pfn_to_page(head + NrPages(72));
  ASSERT_NE(static_cast<const void*>(alias), static_cast<const void*>(twin));
  const uint64_t saved = alias->index;
  alias->index = 0x5eed;
  EXPECT_EQ(twin->index, 0x5eedu);
  alias->index = saved;

  // Descriptor 300's head: the start of its unit (256 for 1 MiB units, 0 otherwise).
  auto tail = m->vmemmap().read_page(head + NrPages(300));
  ASSERT_TRUE(tail);
  const Pfn unit_head = head + NrPages(300 & ~((uint64_t{1} << c.shift) - 1));
  EXPECT_EQ(tail->compound_head, m->vmemmap().page_addr(unit_head).value() | 1);
  auto first_tail = m->vmemmap().read_page(head + NrPages(1));
  ASSERT_TRUE(first_tail);
  EXPECT_EQ(compound_order_of(*first_tail), c.shift);
  auto h = m->vmemmap().read_page(head);
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->test(PG::head));
  EXPECT_EQ(page_pgmap(*h), &pgmap);
  EXPECT_EQ(pgmap.bulk_refs(), (GiB >> 12) >> c.shift);
  expect_clean(*m);

  m->memunmap_pages(pgmap);
  const VmemmapStats gone = m->vmemmap().stats();
  EXPECT_EQ(gone.base_pages, before.base_pages);
  EXPECT_EQ(gone.bytes_mapped(), before.bytes_mapped());
  EXPECT_FALSE(m->vmemmap().descriptor_mapped(head + NrPages(200)));
  expect_clean(*m);
  // Mapping again reuses the released shared pages.
  ASSERT_TRUE(m->memremap_pages(pgmap, 0));
  EXPECT_EQ(m->vmemmap().stats().bytes_backed() - before.bytes_backed(), c.unique_pages * 4096);
  m->memunmap_pages(pgmap);
  expect_clean(*m);
}
INSTANTIATE_TEST_SUITE_P(Orders, CompoundDedup,
                         ::testing::Values(DedupCase{8, 2048, true}, DedupCase{9, 1024, true},
                                           DedupCase{18, 2, true}, DedupCase{8, 2048, false},
                                           DedupCase{9, 1024, false}, DedupCase{18, 2, false}),
                         [](const auto& info) {
                           return "shift" + std::to_string(info.param.shift) +
                                  (info.param.pending ? "_pending" : "_eager");
                         });

// Scenario: compound pages that do not qualify — order 7 (two vmemmap pages per unit), an altmap,
// and the early section 40 whose memmap is reused. Expect: no Shared mapping anywhere, and in
// the early section every tail descriptor written (spec §4.13, 6.1.y).
TEST(CompoundDedup, not_applied_to_small_units_altmaps_or_early_sections) {
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  DevPagemap small;
  make_generic(small, 0x180000000, 128 * MiB, 7);
  ASSERT_TRUE(m->memremap_pages(small, 0));
  EXPECT_EQ(m->vmemmap().stats().bytes_by_origin[3], 0u);
  EXPECT_EQ(m->vmemmap().mapping_of(Pfn(0x180000)), VmemmapMapKind::Huge);  // a whole-section PMD
  m->memunmap_pages(small);

  DevPagemap early;
  make_generic(early, 0x144000000, 16 * MiB, 9);
  ASSERT_TRUE(m->memremap_pages(early, 0));
  EXPECT_EQ(m->vmemmap().stats().bytes_by_origin[3], 0u);
  for (uint64_t i = 1; i < 512; ++i) {
    auto p = m->vmemmap().read_page(Pfn(0x144000 + i));
    ASSERT_TRUE(p);
    ASSERT_EQ(p->compound_head, m->vmemmap().page_addr(Pfn(0x144000)).value() | 1) << i;
  }
  expect_clean(*m);
  m->memunmap_pages(early);
  expect_clean(*m);
}

// -------------------------------------------------------------------------------------------------
// Spec §10 C and D: device-private memory.

// Scenario: spec §10 C — x86 4-level, 46 CPU physical bits, a kernel with DEVICE_PRIVATE; the
// test_hmm driver asks for 256 MiB. Expect: the region at 0x3ffff0000000-0x3fffffffffff named
// hmm_dmirror; two sections added with their memmap from the buddy inside the 1 TiB window;
// max_pfn not raised; pages free (refcount 0); a handed-out page holds a pgmap reference that
// memunmap waits for; freeing calls page_free.
TEST(SpecExampleC, device_private_256m_on_x86) {
  MachineConfig c = pc_config();
  c.kernel.device_private = true;
  c.kernel.test_hmm = true;
  c.cpu_phys_bits = 46;
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  auto region = m->request_free_mem_region(256 * MiB, "hmm_dmirror");
  ASSERT_TRUE(region) << region.error().message;
  EXPECT_EQ(region->start.value(), 0x3ffff0000000u);
  EXPECT_EQ(region->last.value(), 0x3fffffffffffu);
  EXPECT_NE(m->iomem().render().find("3ffff0000000-3fffffffffff : hmm_dmirror\n"), std::string::npos);

  HmmDriver drv;
  DevPagemap pgmap;
  drv.make_private(pgmap, *region);
  ASSERT_TRUE(m->memremap_pages(pgmap, 0));
  for (uint64_t nr : {0x7fffeu, 0x7ffffu}) {
    const SectionFlags f = m->sections().find(SectionNr(nr))->flags();
    EXPECT_TRUE(f.has(SectionFlag::Present) && f.has(SectionFlag::HasMemMap));
    EXPECT_FALSE(f.has(SectionFlag::Online) || f.has(SectionFlag::Early) || f.has(SectionFlag::TaintZoneDevice));
  }
  EXPECT_EQ(m->vmemmap().page_addr(Pfn(0x3ffff0000)).value(), 0xffffeaffffc00000u);
  EXPECT_TRUE(m->vmemmap().in_window(Pfn(0x3ffff0000), NrPages(65536)));
  EXPECT_EQ(m->vmemmap().origin_of(Pfn(0x3ffff0000)), VmemmapOrigin::Buddy);
  EXPECT_EQ(m->max_pfn().value(), 0x144000u);
  EXPECT_EQ(m->pfn_to_online_page(Pfn(0x3ffff0000)), nullptr);
  EXPECT_TRUE(m->pfn_valid(Pfn(0x3ffffffff)));
  auto p = m->vmemmap().read_page(Pfn(0x3ffff1234));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->refcount, 0);
  EXPECT_EQ(pgmap.ref_count(), 1u);  // no bulk references for PRIVATE
  expect_clean(*m);

  const Pfn page(0x3ffff0042);
  ASSERT_TRUE(m->zone_device_page_init(page));
  EXPECT_EQ(pgmap.ref_count(), 2u);
  auto busy = m->zone_device_page_init(page);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, Errno::Busy);
  expect_clean(*m);

  std::atomic<bool> done{false};
  std::thread unmapper([&] {
    m->memunmap_pages(pgmap);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(done.load());  // waiting for the page's reference
  ASSERT_TRUE(m->put_device_page(page));
  unmapper.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(drv.freed.load(), 1);
  EXPECT_EQ(m->sections().find(SectionNr(0x7fffe))->flags().bits(), 0u);
  EXPECT_TRUE(m->release_mem_region(*region));
  expect_clean(*m);
}

// Scenario: spec §10 D — arm64 4K pages, 39-bit VA, PA 48, RAM at 0x80_0000_0000 (memstart), a
// kernel with DEVICE_PRIVATE; 256 MiB device-private. Expect: the chunk at 0xfffff0000000; the
// descriptor of pfn 0xfffff0000 at the wrapped address 0x3fbffc00000 (user half); one WARN per
// section populated and per section freed; the descriptors are real memory all the same.
TEST(SpecExampleD, device_private_on_arm64_39bit_wraps_with_a_warn_per_section) {
  MachineConfig c;
  c.arch = &kArm64_4K_39;
  c.kernel.device_private = true;
  c.memory.regions = {{PhysAddr(0x8000000000), GiB, 0, BootMemKind::Usable}};
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  auto region = m->request_free_mem_region(256 * MiB, "hmm_dmirror");
  ASSERT_TRUE(region);
  EXPECT_EQ(region->start.value(), 0xfffff0000000u);
  HmmDriver drv;
  DevPagemap pgmap;
  drv.make_private(pgmap, *region);
  const std::string warn_populate = "WARNING: at arch/arm64/mm/mmu.c vmemmap_populate";
  const std::string warn_free = "WARNING: at arch/arm64/mm/mmu.c vmemmap_free";
  ASSERT_TRUE(m->memremap_pages(pgmap, 0));
  EXPECT_EQ(log_lines_with(*m, warn_populate), 2u);
  EXPECT_EQ(m->vmemmap().page_addr(Pfn(0xfffff0000)).value(), 0x3fbffc00000u);
  EXPECT_FALSE(m->vmemmap().in_window(Pfn(0xfffff0000), NrPages(1)));
  auto p = m->vmemmap().read_page(Pfn(0xfffff0000));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->zone(), ZoneType::Device);
  EXPECT_EQ(m->max_pfn().value(), 0x8040000u);  // private: no linear map, max_pfn stays
  expect_clean(*m);
  m->memunmap_pages(pgmap);
  EXPECT_EQ(log_lines_with(*m, warn_free), 2u);
  expect_clean(*m);
}

// -------------------------------------------------------------------------------------------------
// Concurrency: lock-free readers while pgmaps come and go.

// Scenario: two reader threads call pfn_to_online_page and get_dev_pagemap/put_dev_pagemap on
// section 40 while the main thread maps and unmaps the §10 A devdax pgmap 20 times.
// Expect: RAM pfns always online; devdax pfns never online while the pgmap is mapped and stable
// (6.1 has two windows where they are: a first memremap between __add_pages and the taint, and
// memunmap between percpu_ref_kill and __remove_pages — readers there see the page, as in the
// kernel); a pgmap obtained is always the mapped one; no reference is leaked (memunmap returns
// every time); TSan sees no race.
TEST(MemremapConcurrency, readers_during_memremap_and_memunmap) {
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  DevPagemap pgmap;
  make_seed004_devdax(pgmap);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bad{0}, found{0};
  std::atomic<uint64_t> epoch{0};  // odd: memremap_pages has returned and memunmap_pages not begun
  auto reader = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      if (!m->pfn_to_online_page(Pfn(0x143000))) bad.fetch_add(1);
      const uint64_t e1 = epoch.load();
      const bool online = m->pfn_to_online_page(Pfn(0x144800)) != nullptr;
      if (online && (e1 & 1) && epoch.load() == e1) bad.fetch_add(1);
      if (DevPagemap* got = m->get_dev_pagemap(Pfn(0x144800))) {
        if (got != &pgmap || got->type != MemoryType::Generic) bad.fetch_add(1);
        found.fetch_add(1);
        put_dev_pagemap(got);
      }
    }
  };
  std::thread r1(reader), r2(reader);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(m->memremap_pages(pgmap, 0));
    epoch.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    epoch.fetch_add(1);
    m->memunmap_pages(pgmap);
  }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_EQ(bad.load(), 0u);
  expect_clean(*m);
}

}  // namespace
}  // namespace sparsemem
