// Tests for include/sparsemem/page.h: the 64-byte descriptor's layout and its initialisation
// (spec §2.4). Expected words are worked out by hand from the flag layout in page.h.
#include "sparsemem/page.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace sparsemem {
namespace {

// The descriptor as the eight 64-bit words the kernel would see in memory.
struct Words {
  uint64_t w[8];
};
Words words_of(const Page& p) {
  Words out;
  std::memcpy(out.w, &p, sizeof(Page));
  return out;
}
Page filled_with(uint8_t byte) {
  Page p;
  std::memset(static_cast<void*>(&p), byte, sizeof(Page));
  return p;
}

constexpr VmemmapAddr kSelf{0xffffea0005100000ULL};  // struct page of pfn 0x144000 (spec §10 A)

// Scenario: struct page layout. Expect: 64 bytes with the kernel's field offsets (spec §2.4).
TEST(Page, layout_is_the_kernels) {
  EXPECT_EQ(sizeof(Page), 64u);
  EXPECT_EQ(offsetof(Page, compound_head), 0x08u);
  EXPECT_EQ(offsetof(Page, mapcount), 0x30u);
  EXPECT_EQ(offsetof(Page, refcount), 0x34u);
  EXPECT_EQ(offsetof(Page, memcg_data), 0x38u);
}

// Scenario: __init_single_page over garbage bytes for a Normal page on node 1.
// Expect: flags = 1 << 54 | 2 << 51 = 0x0050000000000000; lru.next (= compound_head) and lru.prev
// both hold the list_head's own address, self + 8 = 0xffffea0005100008 (bit0 clear: no tail);
// _mapcount -1 and _refcount 1 share word 6 = 0x00000001ffffffff; every other word is zero.
TEST(Page, init_single_page_writes_exact_words) {
  Page p = filled_with(0xAB);
  init_single_page(p, ZoneType::Normal, 1, kSelf);
  const Words w = words_of(p);
  EXPECT_EQ(w.w[0], 0x0050000000000000ULL);
  EXPECT_EQ(w.w[1], 0xffffea0005100008ULL);
  EXPECT_EQ(w.w[2], 0xffffea0005100008ULL);
  EXPECT_EQ(w.w[3], 0u);
  EXPECT_EQ(w.w[4], 0u);
  EXPECT_EQ(w.w[5], 0u);
  EXPECT_EQ(w.w[6], 0x00000001ffffffffULL);
  EXPECT_EQ(w.w[7], 0u);
  EXPECT_EQ(p.zone(), ZoneType::Normal);
  EXPECT_EQ(p.nid(), 1u);
  EXPECT_EQ(p.refcount, 1);
  EXPECT_EQ(p.mapcount, -1);
  EXPECT_FALSE(p.is_tail());
  EXPECT_FALSE(p.test(PG::reserved));
  EXPECT_FALSE(p.is_buddy());
  EXPECT_FALSE(p.poisoned());
}

// Scenario: the reserved variant used by hotplug memmap init and for holes.
// Expect: the same words plus PG_reserved (bit 12, 0x1000) in flags.
TEST(Page, init_reserved_page_adds_pg_reserved) {
  Page p = filled_with(0xFD);
  init_reserved_page(p, ZoneType::Normal, 1, kSelf);
  EXPECT_EQ(words_of(p).w[0], 0x0050000000001000ULL);
  EXPECT_TRUE(p.test(PG::reserved));
  EXPECT_EQ(p.refcount, 1);
  EXPECT_EQ(p.compound_head, 0xffffea0005100008ULL);
}

// Scenario: extreme zone/node values. Expect: Device on node 1023 = 1023 << 54 | 4 << 51 =
// 0xffe0000000000000; node 1024 does not fit NODES_SHIFT = 10 and is masked to 0 (set_page_node).
TEST(Page, zone_and_node_bits) {
  Page p = filled_with(0);
  init_single_page(p, ZoneType::Device, 1023, kSelf);
  EXPECT_EQ(p.flags, 0xffe0000000000000ULL);
  EXPECT_EQ(p.zone(), ZoneType::Device);
  EXPECT_EQ(p.nid(), 1023u);
  init_single_page(p, ZoneType::Device, 1024, kSelf);
  EXPECT_EQ(p.flags, 0x0020000000000000ULL);
  EXPECT_EQ(p.nid(), 0u);
}

// Scenario: re-zoning a page that already carries PG_reserved and PG_head.
// Expect: Movable (3 << 51) on node 3 (3 << 54) = 0x00d8000000000000, flag bits 0x11000 kept.
TEST(Page, set_zone_nid_keeps_page_flags) {
  Page p = filled_with(0);
  init_single_page(p, ZoneType::Normal, 1, kSelf);
  p.set(PG::reserved);
  p.set(PG::head);
  p.set_zone_nid(ZoneType::Movable, 3);
  EXPECT_EQ(p.flags, 0x00d8000000011000ULL);
  p.clear(PG::head);
  EXPECT_EQ(p.flags, 0x00d8000000001000ULL);
}

// Scenario: page types live inverted in _mapcount. Expect: after init (-1) no type; setting
// PG_buddy clears bit 7 (0xffffff7f) and is_buddy() holds; clearing it gives -1 back.
TEST(Page, page_type_in_mapcount) {
  Page p = filled_with(0);
  init_single_page(p, ZoneType::Normal, 0, kSelf);
  p.set_type(PG_buddy);
  EXPECT_EQ(static_cast<uint32_t>(p.mapcount), 0xffffff7fu);
  EXPECT_TRUE(p.is_buddy());
  EXPECT_FALSE(p.has_type(PG_offline));
  p.clear_type(PG_buddy);
  EXPECT_EQ(p.mapcount, -1);
  EXPECT_FALSE(p.is_buddy());
}

// Scenario: descriptors holding x86's PAGE_UNUSED (0xFD) and DEBUG_VM poison (0xFF) bytes.
// Expect (seed 004): 0xFD reads as a tail page whose head would be 0xfdfdfdfdfdfdfdfc; only
// all-ones flags count as poisoned.
TEST(Page, unused_and_poison_patterns) {
  const Page fd = filled_with(0xFD);
  EXPECT_TRUE(fd.is_tail());
  EXPECT_EQ(fd.compound_head & ~uint64_t{1}, 0xfdfdfdfdfdfdfdfcULL);
  EXPECT_FALSE(fd.poisoned());
  EXPECT_TRUE(filled_with(0xFF).poisoned());
}

// Scenario: zone names as /proc/zoneinfo prints them. Expect: the five 6.1 names.
TEST(Page, zone_names) {
  EXPECT_STREQ(zone_name(ZoneType::DMA), "DMA");
  EXPECT_STREQ(zone_name(ZoneType::DMA32), "DMA32");
  EXPECT_STREQ(zone_name(ZoneType::Normal), "Normal");
  EXPECT_STREQ(zone_name(ZoneType::Movable), "Movable");
  EXPECT_STREQ(zone_name(ZoneType::Device), "Device");
}

}  // namespace
}  // namespace sparsemem

namespace sparsemem {
namespace {

// Scenario: init_page_range over descriptors full of 0xFF poison, reserved and not.
// Expect: byte-for-byte what init_single_page / init_reserved_page write for each descriptor.
TEST(PageInitRange, equals_per_page_init) {
  for (bool reserved : {false, true}) {
    std::vector<Page> a(37), b(37);
    std::memset(static_cast<void*>(a.data()), 0xff, a.size() * sizeof(Page));
    std::memset(static_cast<void*>(b.data()), 0xff, b.size() * sizeof(Page));
    const uint64_t self0 = 0xffffea0005100000ULL;
    init_page_range(a.data(), a.size(), ZoneType::Movable, 3, VmemmapAddr(self0), reserved);
    for (size_t i = 0; i < b.size(); ++i) {
      if (reserved)
        init_reserved_page(b[i], ZoneType::Movable, 3, VmemmapAddr(self0 + i * 64));
      else
        init_single_page(b[i], ZoneType::Movable, 3, VmemmapAddr(self0 + i * 64));
    }
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(Page)), 0) << reserved;
    EXPECT_EQ(a[5].compound_head, self0 + 5 * 64 + 8);
  }
}

// Scenario: init_free_page_range over poisoned descriptors, against init_reserved_page followed by
// generic_online_page's per-page part (PG_reserved cleared, refcount 0).
// Expect: the same bytes.
TEST(PageInitRange, free_range_equals_reserved_init_then_online) {
  std::vector<Page> a(37), b(37);
  std::memset(static_cast<void*>(a.data()), 0xff, a.size() * sizeof(Page));
  std::memset(static_cast<void*>(b.data()), 0xff, b.size() * sizeof(Page));
  const uint64_t self0 = 0xffffea0005100000ULL;
  init_free_page_range(a.data(), a.size(), ZoneType::Normal, 1, VmemmapAddr(self0));
  for (size_t i = 0; i < b.size(); ++i) {
    init_reserved_page(b[i], ZoneType::Normal, 1, VmemmapAddr(self0 + i * 64));
    b[i].clear(PG::reserved);
    b[i].refcount = 0;
  }
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(Page)), 0);
}

}  // namespace
}  // namespace sparsemem
