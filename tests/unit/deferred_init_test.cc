// Tests for deferred struct page init (memmap.h DeferredSectionRun, KernelConfig::
// deferred_struct_page_init): descriptors read as the eager boot writes them, and a 32 TiB machine.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "sparsemem/kpageflags.h"
#include "sparsemem/machine.h"
#include "sparsemem/map_view.h"
#include "sparsemem/pagemap.h"
#include "support/machines.h"

namespace sparsemem {
namespace {
using testing::boot_or_die;
using testing::expect_clean;

constexpr uint64_t GiB = uint64_t{1} << 30, MiB = uint64_t{1} << 20;

// Two nodes. Node 0 ends in one memblock range [4G, 8.5G+4M) holding a wholly reserved pair of
// sections (48, 49), a partly reserved section (52) and a partial last section (68); node 1 is
// [9G, 10G). Worked out by hand from plan_deferred_init(): every section wholly inside one zone's
// part of a memblock range and reserved wholly or not at all is pending: DMA32's 1-22 (section 0
// holds the DMA/DMA32 boundary, 23 the end of low RAM), node 0's 32-67 but 52, node 1's 72-79.
MachineConfig two_node_config(bool deferred) {
  MachineConfig c;
  c.memory.regions = {
      {PhysAddr(0x1000), 0x9e000, 0, BootMemKind::Usable},
      {PhysAddr(0x100000), 0xbffdf000 - 0x100000, 0, BootMemKind::Usable},
      {PhysAddr(4 * GiB), 2 * GiB, 0, BootMemKind::Usable},
      {PhysAddr(6 * GiB), 256 * MiB, 0, BootMemKind::Reserved},
      {PhysAddr(0x190000000), 256 * MiB, 0, BootMemKind::Usable},
      {PhysAddr(0x1a0000000), 1 * MiB, 0, BootMemKind::Reserved},
      {PhysAddr(0x1a0100000), 0x220400000 - 0x1a0100000, 0, BootMemKind::Usable},
      {PhysAddr(9 * GiB), 1 * GiB, 1, BootMemKind::Usable},
  };
  c.kernel.deferred_struct_page_init = deferred;
  return c;
}

Pfn sec_pfn(uint64_t nr) { return kX86_64.section_nr_to_pfn(SectionNr(nr)); }

// Everything a reader can see of one pfn, compared byte for byte.
void expect_same_pfn(const Machine& eager, const Machine& lazy, Pfn pfn) {
  ASSERT_EQ(eager.pfn_valid(pfn), lazy.pfn_valid(pfn)) << std::hex << pfn.value();
  ASSERT_EQ(eager.pfn_is_online(pfn), lazy.pfn_is_online(pfn)) << std::hex << pfn.value();
  ASSERT_EQ(kpageflags(eager, pfn).value_or(~0ull), kpageflags(lazy, pfn).value_or(~0ull)) << std::hex << pfn.value();
  ASSERT_EQ(kpagecount(eager, pfn).value_or(~0ull), kpagecount(lazy, pfn).value_or(~0ull)) << std::hex << pfn.value();
  if (!eager.pfn_valid(pfn) || !eager.vmemmap().descriptor_mapped(pfn)) return;
  const Result<Page> a = eager.vmemmap().read_page(pfn), b = lazy.vmemmap().read_page(pfn);
  ASSERT_TRUE(a && b) << std::hex << pfn.value();
  ASSERT_EQ(std::memcmp(&*a, &*b, sizeof(Page)), 0) << "descriptor of pfn " << std::hex << pfn.value();
}

void expect_same_counters(const Machine& eager, const Machine& lazy) {
  ASSERT_EQ(eager.nodes().size(), lazy.nodes().size());
  for (size_t n = 0; n < eager.nodes().size(); ++n)
    for (size_t z = 0; z < MAX_NR_ZONES; ++z) {
      const Zone& a = eager.nodes()[n].zones[z];
      const Zone& b = lazy.nodes()[n].zones[z];
      EXPECT_EQ(a.zone_start_pfn, b.zone_start_pfn) << n << "/" << z;
      EXPECT_EQ(a.spanned_pages, b.spanned_pages) << n << "/" << z;
      EXPECT_EQ(a.present_pages, b.present_pages) << n << "/" << z;
      EXPECT_EQ(a.present_early_pages, b.present_early_pages) << n << "/" << z;
      EXPECT_EQ(a.managed_pages, b.managed_pages) << n << "/" << z;
    }
  EXPECT_EQ(eager.totalram_pages(), lazy.totalram_pages());
  const auto la = eager.log().lines(), lb = lazy.log().lines();
  ASSERT_EQ(la.size(), lb.size());
  for (size_t i = 0; i < la.size(); ++i) EXPECT_EQ(la[i].text, lb[i].text);
}

// Scenario: the two-node map booted without deferral (the reference) and with it.
// Expect: exactly the sections worked out above are pending; zone counters, MemTotal and the log are
// the same; the checker is clean without materialising anything.
TEST(DeferredInit, pending_sections_are_the_ones_defer_init_leaves) {
  auto eager = boot_or_die(two_node_config(false));
  auto lazy = boot_or_die(two_node_config(true));
  ASSERT_TRUE(eager && lazy);
  EXPECT_EQ(eager->vmemmap().deferred_pending_sections(), 0u);
  std::vector<uint64_t> want;
  for (uint64_t s = 1; s <= 22; ++s) want.push_back(s);
  for (uint64_t s = 32; s <= 51; ++s) want.push_back(s);  // 48, 49 wholly reserved
  for (uint64_t s = 53; s <= 67; ++s) want.push_back(s);
  for (uint64_t s = 72; s <= 79; ++s) want.push_back(s);
  EXPECT_EQ(lazy->vmemmap().deferred_pending_sections(), want.size());
  for (uint64_t s = 0; s < 80; ++s) {
    const std::optional<DeferredSectionRun> run = lazy->vmemmap().deferred_run(sec_pfn(s));
    const bool pending = std::find(want.begin(), want.end(), s) != want.end();
    ASSERT_EQ(run.has_value(), pending) << "section " << s;
    if (!run) continue;
    EXPECT_EQ(run->zone, s < 32 ? ZoneType::DMA32 : ZoneType::Normal);
    EXPECT_EQ(run->nid, s >= 72 ? 1u : 0u) << s;
    EXPECT_EQ(run->reserved, s == 48 || s == 49) << s;
  }
  expect_same_counters(*eager, *lazy);
  expect_clean(*eager);
  expect_clean(*lazy);
  EXPECT_EQ(lazy->vmemmap().deferred_pending_sections(), want.size()) << "the checker materialised sections";
}

// Scenario: the map view and the pfn-query summary of the deferred machine, against the eager one.
// Expect: the same text; no pending section is written (they ask pfn_is_online, not for a Page*).
TEST(DeferredInit, map_view_reads_no_pending_descriptor) {
  auto eager = boot_or_die(two_node_config(false));
  auto lazy = boot_or_die(two_node_config(true));
  ASSERT_TRUE(eager && lazy);
  const uint64_t pending = lazy->vmemmap().deferred_pending_sections();
  EXPECT_EQ(render_map_text(*eager, MapOptions{}), render_map_text(*lazy, MapOptions{}));
  EXPECT_EQ(render_pfn_summary(*eager, summarize_pfn_queries(*eager)),
            render_pfn_summary(*lazy, summarize_pfn_queries(*lazy)));
  EXPECT_EQ(lazy->vmemmap().deferred_pending_sections(), pending);
}

// Scenario: both machines take the same allocations, offline and online a block in a pending
// section, fail to offline one holding an unmovable page, hot-add and online a block, and free.
// Expect: identical results, descriptors, kpageflags and counters at every sampled pfn; the
// deferred machine's pending count drops only by the sections those steps touched.
TEST(DeferredInit, reads_as_the_eager_boot_through_allocation_and_an_offline_online_cycle) {
  auto eager = boot_or_die(two_node_config(false));
  auto lazy = boot_or_die(two_node_config(true));
  ASSERT_TRUE(eager && lazy);
  const uint64_t pending0 = lazy->vmemmap().deferred_pending_sections();
  // Reading a pfn of a pending section writes nothing: read_page answers from the run.
  expect_same_pfn(*eager, *lazy, sec_pfn(35) + NrPages(77));
  EXPECT_EQ(lazy->vmemmap().deferred_pending_sections(), pending0);

  for (Machine* m : {eager.get(), lazy.get()}) {
    ASSERT_EQ(m->alloc_page_at(sec_pfn(40) + NrPages(5), Migratability::Movable, 1).value_or(Pfn(0)),
              sec_pfn(40) + NrPages(5));
    ASSERT_EQ(m->alloc_page_at(sec_pfn(60) + NrPages(1025), Migratability::Unmovable, 2).value_or(Pfn(0)),
              sec_pfn(60) + NrPages(1025));
    ASSERT_TRUE(m->alloc_page(1, ZoneType::Normal, Migratability::Movable, 3));
    const BlockId b40 = m->memory_blocks().block_id_of(sec_pfn(40));
    const BlockId b60 = m->memory_blocks().block_id_of(sec_pfn(60));
    ASSERT_TRUE(m->device_offline(b40));
    const Result<void> busy = m->device_offline(b60);
    ASSERT_FALSE(busy);
    EXPECT_EQ(busy.error().code, Errno::Busy);
    ASSERT_TRUE(m->device_online(b40));
    ASSERT_TRUE(m->add_memory(0, PhysAddr(12 * GiB), 128 * MiB));
    ASSERT_TRUE(m->device_online(m->memory_blocks().block_id_of(Pfn((12 * GiB) >> 12))));
    ASSERT_TRUE(m->free_page(2));
    expect_clean(*m);
  }
  EXPECT_EQ(eager->page_of_tag(1), lazy->page_of_tag(1));
  EXPECT_EQ(eager->page_of_tag(3), lazy->page_of_tag(3));
  expect_same_counters(*eager, *lazy);
  // Allocating in sections 40, 60 and one of node 1 wrote them; onlining 40 again and the new
  // block left one pending section each.
  const uint64_t pending1 = lazy->vmemmap().deferred_pending_sections();
  EXPECT_EQ(pending1, pending0 - 1);
  ASSERT_TRUE(lazy->vmemmap().deferred_run(sec_pfn(40)));
  ASSERT_TRUE(lazy->vmemmap().deferred_run(Pfn((12 * GiB) >> 12)));
  // Sections the steps touched, compared pfn by pfn.
  for (uint64_t s : {35, 40, 60, 73, 96})
    for (Pfn p = sec_pfn(s); p < sec_pfn(s + 1); ++p) expect_same_pfn(*eager, *lazy, p);
  // Every pfn of both machines at a stride co-prime with the buddy orders, read from the runs of
  // the pending sections, then again once every section is written.
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) lazy->vmemmap().deferred_init_range(Pfn(0), NrPages((13 * GiB) >> 12));
    for (uint64_t p = 0; p < (13 * GiB) >> 12; p += 7) expect_same_pfn(*eager, *lazy, Pfn(p));
    for (uint64_t s : {1, 22, 48, 49, 52, 67, 68, 79})
      for (Pfn p = sec_pfn(s); p < sec_pfn(s + 1); ++p) expect_same_pfn(*eager, *lazy, p);
  }
  EXPECT_EQ(lazy->vmemmap().deferred_pending_sections(), 0u);
  expect_same_counters(*eager, *lazy);
  expect_clean(*lazy);
}

// Scenario: every descriptor of a pending free section, a pending reserved one and a block that
// was onlined (pending), then offlined (pending as offlined), read before and after the section is
// written. Expect: byte-identical descriptors; reading wrote nothing.
TEST(DeferredInit, a_pending_section_reads_as_its_materialised_bytes) {
  auto m = boot_or_die(two_node_config(true));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(12 * GiB), 128 * MiB));
  const BlockId hot = m->memory_blocks().block_id_of(Pfn((12 * GiB) >> 12));
  ASSERT_TRUE(m->device_online(hot));
  ASSERT_TRUE(m->device_offline(hot));
  ASSERT_TRUE(m->vmemmap().deferred_run(sec_pfn(96)).value_or(DeferredSectionRun{}).offlined);
  for (uint64_t s : {33, 48, 96}) {
    ASSERT_TRUE(m->vmemmap().deferred_run(sec_pfn(s))) << s;
    std::vector<Page> before;
    for (Pfn p = sec_pfn(s); p < sec_pfn(s + 1); ++p) before.push_back(m->vmemmap().read_page(p).value());
    ASSERT_TRUE(m->vmemmap().deferred_run(sec_pfn(s))) << "reading wrote section " << s;
    m->vmemmap().deferred_init_range(sec_pfn(s), NrPages(1));
    ASSERT_FALSE(m->vmemmap().deferred_run(sec_pfn(s)));
    for (Pfn p = sec_pfn(s); p < sec_pfn(s + 1); ++p) {
      const Page after = m->vmemmap().read_page(p).value();
      ASSERT_EQ(std::memcmp(&before[(p - sec_pfn(s)).value()], &after, sizeof(Page)), 0)
          << "section " << s << " pfn " << std::hex << p.value();
    }
  }
  expect_clean(*m);
}

// Scenario: a block hot-added at 12 GiB, onlined (pending), offlined (pending as offlined) and
// removed; then added again. Expect: removal forgets the pending section without writing it (the
// pending count drops by one, the checker stays clean, INV-DEFER-1 counts pending sections against
// present ones); the re-added, still offline section is not pending.
TEST(DeferredInit, removal_forgets_a_pending_section) {
  auto m = boot_or_die(two_node_config(true));
  ASSERT_TRUE(m);
  const uint64_t pending0 = m->vmemmap().deferred_pending_sections();
  ASSERT_TRUE(m->add_memory(0, PhysAddr(12 * GiB), 128 * MiB));
  const BlockId hot = m->memory_blocks().block_id_of(Pfn((12 * GiB) >> 12));
  ASSERT_TRUE(m->device_online(hot));
  ASSERT_TRUE(m->device_offline(hot));
  ASSERT_TRUE(m->vmemmap().deferred_run(sec_pfn(96)));
  EXPECT_EQ(m->vmemmap().deferred_pending_sections(), pending0 + 1);
  expect_clean(*m);
  ASSERT_TRUE(m->remove_memory(PhysAddr(12 * GiB), 128 * MiB));
  EXPECT_FALSE(m->vmemmap().deferred_run(sec_pfn(96)));
  EXPECT_EQ(m->vmemmap().deferred_pending_sections(), pending0);
  expect_clean(*m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(12 * GiB), 128 * MiB));
  EXPECT_FALSE(m->vmemmap().deferred_run(sec_pfn(96)));
  expect_clean(*m);
}

// Scenario: readers on four threads race to the first access of the same pending sections while
// the hotplug lock holder allocates in other pages of them. Expect: every reader sees an initialised descriptor
// (zone Normal, node 0, refcount 0 or 1, never the zeroes of an unwritten memmap); TSan clean.
TEST(DeferredInit, concurrent_first_access_never_sees_an_unwritten_descriptor) {
  auto m = boot_or_die(two_node_config(true));
  ASSERT_TRUE(m);
  std::vector<std::thread> readers;
  std::atomic<unsigned> bad{0};
  for (unsigned t = 0; t < 4; ++t)
    readers.emplace_back([&, t] {
      for (uint64_t i = 0; i < 15; ++i) {
        const uint64_t s = 53 + (i * 7 + t * 3) % 15;
        for (uint64_t off = t; off < 32768; off += 4099) {
          const Result<Page> p = m->vmemmap().read_page(sec_pfn(s) + NrPages(off));
          if (!p || p->zone() != ZoneType::Normal || p->nid() != 0 || p->refcount > 1 || p->mapcount == 0) ++bad;
        }
      }
    });
  // The writer allocates in each section's last MAX_ORDER-1 block (pages 31744..32767), which the
  // readers never read: a read_page racing a descriptor writer is racy by design (memmap.h), and
  // the race under test is the first access, not that one.
  for (uint64_t s = 53; s <= 67; ++s)
    ASSERT_TRUE(m->alloc_page_at(sec_pfn(s) + NrPages(32768 - 1024 + 3), Migratability::Movable, 100 + s));
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0u);
  expect_clean(*m);
}

// Scenario: a 32 TiB x86-64 machine (QEMU-like low RAM, then [4G, 32T+1G) on node 0), bare metal
// so probe_memory_block_size() picks 2 GiB blocks. Boot, check, hot-add one block at 33 TiB, online,
// offline and remove it, then offline and online a boot block and allocate in it.
// Expect: success and a clean checker throughout; MemTotal is every usable page (worked out from
// the map); almost every boot section is still pending at the end (only the touched ones written).
TEST(DeferredInit, machine_of_32_tib_boots_and_hotplugs) {
  MachineConfig c;
  c.hypervisor = false;
  const uint64_t high_end = (uint64_t{32} << 40) + GiB;
  c.memory.regions = {
      {PhysAddr(0x1000), 0x9e000, 0, BootMemKind::Usable},
      {PhysAddr(0x100000), 0xbffdf000 - 0x100000, 0, BootMemKind::Usable},
      {PhysAddr(4 * GiB), high_end - 4 * GiB, 0, BootMemKind::Usable},
  };
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->memory_block_size(), 2 * GiB);
  const uint64_t usable_pages = (0x9e000 + (0xbffdf000 - 0x100000) + (high_end - 4 * GiB)) >> 12;
  EXPECT_EQ(m->totalram_pages().value(), usable_pages);
  // [4G, 32T+1G) is sections 32 .. 262151, all pending, as are DMA32's whole sections 1-22.
  const uint64_t last_section = (high_end >> 27) - 1;
  EXPECT_EQ(m->vmemmap().deferred_pending_sections(), last_section - 32 + 1 + 22);
  expect_clean(*m);

  const PhysAddr hot(uint64_t{33} << 40);
  ASSERT_TRUE(m->add_memory(0, hot, 2 * GiB));
  const BlockId hot_block = m->memory_blocks().block_id_of(Pfn(hot.value() >> 12));
  ASSERT_TRUE(m->device_online(hot_block, OnlineType::OnlineMovable));
  expect_clean(*m);
  EXPECT_EQ(m->totalram_pages().value(), usable_pages + ((2 * GiB) >> 12));
  ASSERT_TRUE(m->device_offline(hot_block));
  ASSERT_TRUE(m->remove_memory(hot, 2 * GiB));
  expect_clean(*m);

  const Pfn mid(((uint64_t{16} << 40)) >> 12);
  const BlockId boot_block = m->memory_blocks().block_id_of(mid);
  ASSERT_TRUE(m->alloc_page_at(mid + NrPages(12345), Migratability::Movable, 7));
  ASSERT_TRUE(m->device_offline(boot_block));
  ASSERT_TRUE(m->device_online(boot_block));
  EXPECT_EQ(kpageflags(*m, mid).value_or(0) & kpf_bit(KPF::Buddy), kpf_bit(KPF::Buddy));
  expect_clean(*m);
  EXPECT_EQ(m->totalram_pages().value(), usable_pages);
  // One 2 GiB block is 16 sections: at most those were written, besides boot's eager ones (the
  // block onlined again is pending again).
  EXPECT_GE(m->vmemmap().deferred_pending_sections(), last_section - 32 + 1 + 22 - 16);
}

// -- pending ZONE_DEVICE memmaps (memmap.h, DeviceMemmapRun) --

struct DeviceCase {
  unsigned shift;
  uint64_t offset;  // of the range from 16 GiB: a range starting inside a section
};

void make_generic(DevPagemap& pgmap, const DeviceCase& c) {
  pgmap.type = MemoryType::Generic;
  pgmap.ranges = {PhysRange{PhysAddr(16 * GiB + c.offset), PhysAddr(17 * GiB - 1)}};
  pgmap.vmemmap_shift = c.shift;
}

class DevicePendingShapes : public ::testing::TestWithParam<DeviceCase> {};

// Scenario: the two-node machine without and with deferral; memremap_pages of a GENERIC range
// ending at 17 GiB, from 16 GiB + offset, with base pages, 2 MiB and 1 GiB compound pages.
// Expect: with deferral the range's 8 sections are device-pending and nothing is written or, for
// de-duplicated units, even mapped on the host (every vmemmap page of the range host-pending); every
// pfn of the sections reads byte for byte as the eager initialisation wrote it, as do kpageflags
// and the vmemmap stats; the checker is clean without materialising anything.
TEST_P(DevicePendingShapes, reads_as_memmap_init_zone_device_writes) {
  const DeviceCase c = GetParam();
  auto eager = boot_or_die(two_node_config(false));
  auto lazy = boot_or_die(two_node_config(true));
  ASSERT_TRUE(eager && lazy);
  DevPagemap pe, pl;
  make_generic(pe, c);
  make_generic(pl, c);
  ASSERT_TRUE(eager->memremap_pages(pe, 0));
  ASSERT_TRUE(lazy->memremap_pages(pl, 0));
  EXPECT_EQ(eager->vmemmap().device_pending_sections(), 0u);
  EXPECT_EQ(lazy->vmemmap().device_pending_sections(), 8u);
  const VmemmapStats se = eager->vmemmap().stats(), sl = lazy->vmemmap().stats();
  EXPECT_EQ(se.base_pages, sl.base_pages);
  EXPECT_EQ(se.huge_pmds, sl.huge_pmds);
  for (unsigned o = 0; o < 4; ++o) EXPECT_EQ(se.bytes_by_origin[o], sl.bytes_by_origin[o]) << o;
  EXPECT_EQ(se.host_pending_pages, 0u);
  // 1 GiB of 2 MiB or 1 GiB units: 16 MiB of memmap in 4096 de-duplicated vmemmap pages.
  EXPECT_EQ(sl.host_pending_pages, c.shift >= 8 ? (GiB - c.offset) / 4096 * 64 / 4096 : 0u);
  expect_clean(*lazy);
  EXPECT_EQ(lazy->vmemmap().device_pending_sections(), 8u) << "the checker materialised sections";
  // The pfns' descriptors carry the pgmap's address, which differs between the machines: compare
  // with it swapped in.
  const uint64_t first = (16 * GiB) >> 12, last = (17 * GiB) >> 12;
  for (uint64_t pfn = first; pfn < last; ++pfn) {
    const Result<Page> a = eager->vmemmap().read_page(Pfn(pfn)), b = lazy->vmemmap().read_page(Pfn(pfn));
    ASSERT_EQ(a.has_value(), b.has_value()) << std::hex << pfn;
    if (!a) continue;
    Page want = *a;
    if (page_pgmap(want) == &pe) want.compound_head = reinterpret_cast<uint64_t>(&pl);
    ASSERT_EQ(std::memcmp(&want, &*b, sizeof(Page)), 0) << "descriptor of pfn " << std::hex << pfn;
    if ((pfn & 1023) == 0)
      ASSERT_EQ(kpageflags(*eager, Pfn(pfn)).value_or(~0ull), kpageflags(*lazy, Pfn(pfn)).value_or(~0ull)) << pfn;
  }
  EXPECT_EQ(lazy->vmemmap().device_pending_sections(), 8u);
  eager->memunmap_pages(pe);
  lazy->memunmap_pages(pl);
}
INSTANTIATE_TEST_SUITE_P(Shapes, DevicePendingShapes,
                         ::testing::Values(DeviceCase{0, 2 * MiB}, DeviceCase{9, 2 * MiB}, DeviceCase{9, 0},
                                           DeviceCase{18, 0}),
                         [](const auto& info) {
                           return "shift" + std::to_string(info.param.shift) +
                                  (info.param.offset ? "_from_2M" : "_aligned");
                         });

// Scenario: 1 GiB of 2 MiB compound pages, pending; pfn_to_page of a tail in the third section,
// a write through it, then memunmap_pages; then a range of 1 GiB units touched in its last section.
// Expect: the first access writes only that section (7 stay pending) and maps only its PMD's
// vmemmap pages (512 of 4096 stay host-pending); the descriptor reads as before and the write shows
// through the unit's other aliases; memunmap drops the rest unwritten and unmapped. A 1 GiB unit's
// later section aliases the first's tail page: touching the last section first maps that one too.
TEST(DevicePending, first_access_writes_one_section) {
  auto m = boot_or_die(two_node_config(true));
  ASSERT_TRUE(m);
  const VmemmapStats before = m->vmemmap().stats();
  DevPagemap pgmap;
  make_generic(pgmap, {9, 0});
  ASSERT_TRUE(m->memremap_pages(pgmap, 0));
  const Pfn unit = Pfn(((16 * GiB) >> 12) + 2 * 32768 + 512 * 7);  // a unit of the third section
  const Result<Page> pending = m->vmemmap().read_page(unit + NrPages(300));
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->compound_head, m->vmemmap().page_addr(unit).value() | 1);
  Page* tail = m->pfn_to_page(unit + NrPages(300));
  EXPECT_EQ(m->vmemmap().device_pending_sections(), 7u);
  EXPECT_EQ(m->vmemmap().stats().host_pending_pages, 4096u - 512u);
  EXPECT_EQ(std::memcmp(tail, &*pending, sizeof(Page)), 0);
  tail->index = 0x5eed;
  EXPECT_EQ(m->pfn_to_page(unit + NrPages(108))->index, 0x5eedu);  // the same offset in the unit's second vmemmap page
  tail->index = pending->index;
  expect_clean(*m);
  m->memunmap_pages(pgmap);
  EXPECT_EQ(m->vmemmap().device_pending_sections(), 0u);
  const VmemmapStats after = m->vmemmap().stats();
  EXPECT_EQ(after.host_pending_pages, 0u);
  EXPECT_EQ(after.base_pages, before.base_pages);
  EXPECT_EQ(after.bytes_mapped(), before.bytes_mapped());
  expect_clean(*m);

  DevPagemap huge;
  make_generic(huge, {18, 0});
  ASSERT_TRUE(m->memremap_pages(huge, 0));
  const Pfn last_section(((17 * GiB) >> 12) - 32768);
  const Result<Page> want = m->vmemmap().read_page(last_section + NrPages(5));
  ASSERT_TRUE(want);
  EXPECT_EQ(std::memcmp(m->pfn_to_page(last_section + NrPages(5)), &*want, sizeof(Page)), 0);
  EXPECT_EQ(m->vmemmap().device_pending_sections(), 7u);
  // Its PMD and the first section's PMD, whose tail page every later alias maps.
  EXPECT_EQ(m->vmemmap().stats().host_pending_pages, 4096u - 2 * 512u);
  const Result<Page> head = m->vmemmap().read_page(Pfn((16 * GiB) >> 12));
  ASSERT_TRUE(head);
  EXPECT_TRUE(head->test(PG::head));
  expect_clean(*m);
  m->memunmap_pages(huge);
  EXPECT_EQ(m->vmemmap().stats().host_pending_pages, 0u);
  expect_clean(*m);
}

// Scenario: 1 GiB of 2 MiB compound pages, pending; two threads call pfn_to_page and read_page on
// every 4096th pfn of the range, in opposite orders, so sections are materialised under racing
// readers. Expect: every descriptor read equals the run's (read_page before and after), every
// section is written once in the end, the checker is clean and TSan sees no race.
TEST(DevicePending, concurrent_first_accesses) {
  auto m = boot_or_die(two_node_config(true));
  ASSERT_TRUE(m);
  DevPagemap pgmap;
  make_generic(pgmap, {9, 0});
  ASSERT_TRUE(m->memremap_pages(pgmap, 0));
  const uint64_t first = (16 * GiB) >> 12, n = GiB >> 12;
  std::vector<Page> want;
  for (uint64_t i = 0; i < n; i += 4096) want.push_back(*m->vmemmap().read_page(Pfn(first + i)));
  std::atomic<uint64_t> bad{0};
  auto reader = [&](bool backwards) {
    for (uint64_t k = 0; k < want.size(); ++k) {
      const uint64_t j = backwards ? want.size() - 1 - k : k;
      const Pfn pfn(first + j * 4096);
      const Result<Page> r = m->vmemmap().read_page(pfn);
      if (!r || std::memcmp(&*r, &want[j], sizeof(Page)) != 0) bad.fetch_add(1);
      Page copy;
      std::memcpy(static_cast<void*>(&copy), m->pfn_to_page(pfn), sizeof(Page));
      if (std::memcmp(&copy, &want[j], sizeof(Page)) != 0) bad.fetch_add(1);
    }
  };
  std::thread a(reader, false), b(reader, true);
  a.join();
  b.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(m->vmemmap().device_pending_sections(), 0u);
  EXPECT_EQ(m->vmemmap().stats().host_pending_pages, 0u);
  expect_clean(*m);
  m->memunmap_pages(pgmap);
  expect_clean(*m);
}

}  // namespace
}  // namespace sparsemem
