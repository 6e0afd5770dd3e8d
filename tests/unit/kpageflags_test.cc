// Tests for include/sparsemem/kpageflags.h: stable_page_flags() per page kind, the pfn_to_online_page()
// gate, max_dump_pfn EOF and the read(2) rules of /proc/kpageflags and kpagecount (spec §6.4, §12.2).
#include "sparsemem/kpageflags.h"

#include <gtest/gtest.h>

#include "support/machines.h"

namespace sparsemem {
namespace {
using testing::boot_or_die;

// Scenario: one descriptor per page kind of spec §6.4. Expect: memmap_on_memory vmemmap page
// RESERVED|OWNER_PRIVATE = 0x2100000000 (trace b3); buddy head BUDDY = 0x400; a free tail page
// BUDDY only when it lies in a free block; an LRU page LRU; PageOffline OFFLINE; a mapped anonymous
// page MMAP|ANON; a slab page SLAB without MMAP; hwpoison HWPOISON.
TEST(Kpageflags, stable_page_flags_per_kind) {
  Page p{};
  init_reserved_page(p, ZoneType::Movable, 0, VmemmapAddr(0xffffea0006000000));
  p.set(PG::vmemmap_self_hosted);
  EXPECT_EQ(stable_page_flags(p, false), 0x2100000000ULL);

  Page head{};
  init_single_page(head, ZoneType::Normal, 0, VmemmapAddr(0));
  head.refcount = 0;
  head.set_type(PG_buddy);
  head.private_ = 10;
  EXPECT_EQ(stable_page_flags(head, false), 0x400u);

  Page tail{};
  init_single_page(tail, ZoneType::Normal, 0, VmemmapAddr(0));
  tail.refcount = 0;
  EXPECT_EQ(stable_page_flags(tail, true), 0x400u);
  EXPECT_EQ(stable_page_flags(tail, false), 0u);

  Page lru{};
  init_single_page(lru, ZoneType::Normal, 0, VmemmapAddr(0));
  lru.set(PG::lru);
  EXPECT_EQ(stable_page_flags(lru, false), kpf_bit(KPF::Lru));

  Page off{};
  init_single_page(off, ZoneType::Normal, 0, VmemmapAddr(0));
  off.set_type(PG_offline);
  EXPECT_EQ(stable_page_flags(off, false), kpf_bit(KPF::Offline));

  Page anon{};
  init_single_page(anon, ZoneType::Normal, 0, VmemmapAddr(0));
  anon.mapcount = 0;
  anon.mapping = 0xffff888100000001ULL;
  anon.set(PG::uptodate);
  EXPECT_EQ(stable_page_flags(anon, false), kpf_bit(KPF::Mmap) | kpf_bit(KPF::Anon) | kpf_bit(KPF::Uptodate));

  Page slab{};
  init_single_page(slab, ZoneType::Normal, 0, VmemmapAddr(0));
  slab.set(PG::slab);
  slab.mapcount = 0;
  EXPECT_EQ(stable_page_flags(slab, false), kpf_bit(KPF::Slab));

  Page poison{};
  init_single_page(poison, ZoneType::Normal, 0, VmemmapAddr(0));
  poison.set(PG::hwpoison);
  EXPECT_EQ(stable_page_flags(poison, false), kpf_bit(KPF::Hwpoison));
}

// Scenario: the a_baseline pc machine (RAM up to 0x143ffffff). Expect, as trace f_errors step 0
// shows: pfn 0 (hole in a populated subsection of an early section) RESERVED, 0xbffdf RESERVED,
// 0x8000 BUDDY; 0x144000 (a hole subsection of early section 40) NOPAGE; the file ends at
// max_dump_pfn = 0x148000: a read there is EOF, a read straddling it is cut, misaligned reads
// are -EINVAL; kpagecount is 0 for free, reserved and missing pages.
TEST(Kpageflags, boot_machine_kinds_and_eof) {
  MachineConfig c;
  c.memory = testing::pc_4160m_map();
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  EXPECT_EQ(*kpageflags(*m, Pfn(0)), kpf_bit(KPF::Reserved));
  EXPECT_EQ(*kpageflags(*m, Pfn(0xbffdf)), kpf_bit(KPF::Reserved));
  EXPECT_EQ(*kpageflags(*m, Pfn(0x8000)), kpf_bit(KPF::Buddy));
  EXPECT_EQ(*kpageflags(*m, Pfn(0x8001)), kpf_bit(KPF::Buddy));
  EXPECT_EQ(*kpageflags(*m, Pfn(0x144000)), KPF_NOPAGE_VALUE);
  EXPECT_EQ(*kpageflags(*m, Pfn(0xc0000)), KPF_NOPAGE_VALUE);
  EXPECT_EQ(max_dump_pfn(*m).value(), 0x148000u);
  EXPECT_TRUE(read_kpage_file(*m, KpageFile::Flags, 0x148000 * 8, 8)->empty());
  auto straddle = read_kpage_file(*m, KpageFile::Flags, 0x147fff * 8, 16);
  ASSERT_TRUE(straddle);
  EXPECT_EQ(*straddle, std::vector<uint64_t>{KPF_NOPAGE_VALUE});
  EXPECT_EQ(read_kpage_file(*m, KpageFile::Flags, 4, 8).error().code, Errno::Inval);
  EXPECT_EQ(read_kpage_file(*m, KpageFile::Count, 8, 12).error().code, Errno::Inval);
  EXPECT_EQ(*read_kpage_file(*m, KpageFile::Count, 0, 8 * 3), (std::vector<uint64_t>{0, 0, 0}));
  EXPECT_EQ(*kpagecount(*m, Pfn(0x8000)), 0u);
  EXPECT_EQ(*kpagecount(*m, Pfn(0x144000)), 0u);
}

// Scenario: the lifetime of a hot-added block seen through /proc/kpageflags (spec §12.2): before
// the add, after it, online, with an allocated page, offline again, removed. Expect: EOF beyond
// max_pfn before the add; NOPAGE while offline; BUDDY once online and LRU for an allocated movable
// page (kpagecount 0: not mapped); NOPAGE after offlining and after removal (max_pfn never shrinks).
TEST(Kpageflags, hot_added_block_lifetime) {
  MachineConfig c;
  c.memory = testing::pc_4160m_map();
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  const Pfn pfn(0x180010);
  EXPECT_TRUE(read_kpage_file(*m, KpageFile::Flags, pfn.value() * 8, 8)->empty());
  ASSERT_TRUE(m->add_memory(0, PhysAddr(0x180000000), 0x8000000));
  EXPECT_EQ(max_dump_pfn(*m).value(), 0x188000u);
  EXPECT_EQ(*read_kpage_file(*m, KpageFile::Flags, pfn.value() * 8, 8), std::vector<uint64_t>{KPF_NOPAGE_VALUE});
  ASSERT_TRUE(m->device_online(BlockId(48), OnlineType::OnlineMovable));
  EXPECT_EQ(*kpageflags(*m, pfn), kpf_bit(KPF::Buddy));
  ASSERT_TRUE(m->alloc_page_at(pfn, Migratability::Movable, 1));
  EXPECT_EQ(*kpageflags(*m, pfn), kpf_bit(KPF::Lru));
  EXPECT_EQ(*kpagecount(*m, pfn), 0u);
  EXPECT_EQ(*kpageflags(*m, pfn + NrPages(1)), kpf_bit(KPF::Buddy));
  ASSERT_TRUE(m->free_page(1));
  ASSERT_TRUE(m->device_offline(BlockId(48)));
  EXPECT_EQ(*kpageflags(*m, pfn), KPF_NOPAGE_VALUE);
  ASSERT_TRUE(m->remove_memory(PhysAddr(0x180000000), 0x8000000));
  EXPECT_EQ(*read_kpage_file(*m, KpageFile::Flags, pfn.value() * 8, 8), std::vector<uint64_t>{KPF_NOPAGE_VALUE});
}

}  // namespace
}  // namespace sparsemem
