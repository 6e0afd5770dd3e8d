// Tests for the zone span functions of include/sparsemem/zone.h (move_pfn_range_to_zone,
// remove_pfn_range_from_zone, update_pgdat_span, present accounting), spec §4.11 and §5.14.
#include "sparsemem/zone.h"

#include <gtest/gtest.h>

#include <set>

namespace sparsemem {
namespace {

constexpr NrPages kStep(512);  // PAGES_PER_SUBSECTION on x86
constexpr uint64_t kBlock = 0x8000;

struct Span {
  uint64_t start, spanned;
  bool operator==(const Span&) const = default;
};
Span span(const Zone& z) { return {z.zone_start_pfn.value(), z.spanned_pages.value()}; }
Span span(const Node& n) { return {n.node_start_pfn.value(), n.node_spanned_pages.value()}; }
std::ostream& operator<<(std::ostream& o, const Span& s) { return o << std::hex << "[" << s.start << "+" << s.spanned << ")"; }

// Online pfns of one zone: whole 128 MiB blocks, as the probe of remove_pfn_range_from_zone sees them.
struct OnlineBlocks {
  std::set<uint64_t> blocks;  // block start pfns
  bool operator()(Pfn pfn) const { return blocks.count(pfn.value() & ~(kBlock - 1)) != 0; }
};

// Scenario: onlining blocks 48, 49 then 54 into an empty Movable zone of a node spanning
// [0x1, 0x144000) (trace b steps 1 and 4). Expect: the zone starts at the first block and grows to
// [0x180000, 0x1b8000) (spanned 229376, as recorded); the node span becomes the hull [0x1, 0x1b8000).
TEST(ZoneSpan, move_grows_zone_and_node) {
  Node n = make_empty_node(0);
  n.node_start_pfn = Pfn(1);
  n.node_spanned_pages = NrPages(0x144000 - 1);
  n.zone(ZoneType::Normal).zone_start_pfn = Pfn(0x100000);
  n.zone(ZoneType::Normal).spanned_pages = NrPages(0x44000);
  n.zone(ZoneType::DMA).zone_start_pfn = Pfn(1);
  n.zone(ZoneType::DMA).spanned_pages = NrPages(0xfff);
  move_pfn_range_to_zone(n, ZoneType::Movable, Pfn(0x180000), NrPages(2 * kBlock));
  EXPECT_EQ(span(n.zone(ZoneType::Movable)), (Span{0x180000, 65536}));
  move_pfn_range_to_zone(n, ZoneType::Movable, Pfn(0x1b0000), NrPages(kBlock));
  EXPECT_EQ(span(n.zone(ZoneType::Movable)), (Span{0x180000, 229376}));
  EXPECT_EQ(span(n), (Span{0x1, 0x1b8000 - 1}));
  // Growing below the start moves the start.
  move_pfn_range_to_zone(n, ZoneType::Movable, Pfn(0x110000), NrPages(kBlock));
  EXPECT_EQ(span(n.zone(ZoneType::Movable)), (Span{0x110000, 0x1b8000 - 0x110000}));
}

// Scenario: the shrink rule on trace b's zones. Expect: removing the first block moves the start to
// the next online pfn (Movable [0x180000,0x1b8000) minus 48 with 49 offline too -> [0x1b0000,
// 0x1b8000), spanned 32768 as in step 6); removing the last block moves the end behind the last
// online pfn, scanning down by subsection (Normal [0x100000,0x1a8000) -> [0x100000,0x144000) in step
// 9, where the boot RAM ends mid-section); a middle block changes nothing; the last online block
// empties the zone to start 0; the node span follows as the hull.
TEST(ZoneSpan, remove_shrinks_only_at_the_ends) {
  Node n = make_empty_node(0);
  OnlineBlocks movable{{0x1b0000}};
  move_pfn_range_to_zone(n, ZoneType::Movable, Pfn(0x180000), NrPages(0x38000));
  remove_pfn_range_from_zone(n, ZoneType::Movable, Pfn(0x180000), NrPages(kBlock), kStep, movable);
  EXPECT_EQ(span(n.zone(ZoneType::Movable)), (Span{0x1b0000, 32768}));
  EXPECT_EQ(span(n), (Span{0x1b0000, 32768}));

  // Normal: boot RAM up to 0x144000 (online), blocks 0x198000 and 0x1a0000 removed in turn.
  OnlineBlocks normal;
  for (uint64_t b = 0x100000; b < 0x140000; b += kBlock) normal.blocks.insert(b);
  auto probe = [&](Pfn pfn) { return normal(pfn) || (pfn.value() >= 0x140000 && pfn.value() < 0x144000); };
  move_pfn_range_to_zone(n, ZoneType::Normal, Pfn(0x100000), NrPages(0x1a8000 - 0x100000));
  remove_pfn_range_from_zone(n, ZoneType::Normal, Pfn(0x180000), NrPages(kBlock), kStep, probe);
  EXPECT_EQ(span(n.zone(ZoneType::Normal)), (Span{0x100000, 0xa8000}));
  remove_pfn_range_from_zone(n, ZoneType::Normal, Pfn(0x1a0000), NrPages(kBlock), kStep, probe);
  EXPECT_EQ(span(n.zone(ZoneType::Normal)), (Span{0x100000, 278528}));
  EXPECT_EQ(span(n), (Span{0x100000, 0x1b8000 - 0x100000}));

  remove_pfn_range_from_zone(n, ZoneType::Movable, Pfn(0x1b0000), NrPages(kBlock), kStep, OnlineBlocks{});
  EXPECT_EQ(span(n.zone(ZoneType::Movable)), (Span{0, 0}));
  EXPECT_TRUE(n.zone(ZoneType::Movable).is_empty());
  EXPECT_EQ(span(n), (Span{0x100000, 278528}));
}

// Scenario: a Device zone span and a failed online's rollback. Expect: ZONE_DEVICE never shrinks;
// growing an empty Normal zone and taking the range back (nothing else online) restores start 0,
// spanned 0 and the node's previous hull.
TEST(ZoneSpan, device_never_shrinks_and_empty_rollback) {
  Node n = make_empty_node(0);
  move_pfn_range_to_zone(n, ZoneType::Device, Pfn(0x144000), NrPages(0x1000));
  remove_pfn_range_from_zone(n, ZoneType::Device, Pfn(0x144000), NrPages(0x1000), kStep, OnlineBlocks{});
  EXPECT_EQ(span(n.zone(ZoneType::Device)), (Span{0x144000, 0x1000}));
  const Span node_before = span(n);
  move_pfn_range_to_zone(n, ZoneType::Normal, Pfn(0x108000), NrPages(kBlock));
  EXPECT_EQ(span(n), (Span{0x108000, 0x145000 - 0x108000}));
  remove_pfn_range_from_zone(n, ZoneType::Normal, Pfn(0x108000), NrPages(kBlock), kStep, OnlineBlocks{});
  EXPECT_EQ(span(n.zone(ZoneType::Normal)), (Span{0, 0}));
  EXPECT_EQ(span(n), node_before);
  InvariantReport r;
  n.check_invariants(r);
  EXPECT_TRUE(r.ok()) << r.to_string();
}

// Scenario: present accounting of an early (boot) block and a hot-added one. Expect: present and
// node present move together; present_early only for the early range; INV-ZONE-3 holds throughout.
TEST(ZoneSpan, present_accounting) {
  Node n = make_empty_node(0);
  move_pfn_range_to_zone(n, ZoneType::Normal, Pfn(0x100000), NrPages(2 * kBlock));
  zone_present_add(n, ZoneType::Normal, NrPages(kBlock), true);
  zone_present_add(n, ZoneType::Normal, NrPages(kBlock), false);
  EXPECT_EQ(n.zone(ZoneType::Normal).present_pages.value(), 2 * kBlock);
  EXPECT_EQ(n.zone(ZoneType::Normal).present_early_pages.value(), kBlock);
  EXPECT_EQ(n.node_present_pages.value(), 2 * kBlock);
  zone_present_sub(n, ZoneType::Normal, NrPages(kBlock), true);
  EXPECT_EQ(n.zone(ZoneType::Normal).present_early_pages.value(), 0u);
  EXPECT_EQ(n.node_present_pages.value(), kBlock);
  InvariantReport r;
  n.check_invariants(r);
  EXPECT_TRUE(r.ok()) << r.to_string();
}

}  // namespace
}  // namespace sparsemem
