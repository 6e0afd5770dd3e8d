// Tests for include/sparsemem/memblock.h: region lists, merging, NOMAP and boot-input refusals (spec §4.1, §8).
// Expected values come from the a_baseline trace's boot log or are worked out by hand.
#include "sparsemem/memblock.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

namespace sparsemem {
namespace {

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t GiB = uint64_t{1} << 30;

std::vector<MemblockRegion> copy(std::span<const MemblockRegion> s) { return {s.begin(), s.end()}; }

void expect_invariants_ok(const Memblock& m) {
  InvariantReport r;
  m.check_invariants(r);
  EXPECT_TRUE(r.ok()) << r.to_string();
}

MemblockRegion region(uint64_t base, uint64_t size, int nid = MAX_NUMNODES, MemblockFlags flags = MEMBLOCK_NONE) {
  return MemblockRegion{PhysAddr(base), size, flags, nid};
}

// Scenario: memblock.memory built from a_baseline's BIOS-e820 usable entries (after the log's
// "e820: update [mem 0x00000000-0x00000fff] usable ==> reserved"), trimmed to whole pages as
// e820__memblock_setup() leaves them. Expect: the three ranges of spec §4.1 item 5 (0x1000-0x9efff,
// 0x100000-0xbffdefff, 4G-0x143ffffff) and a total equal to the log's "Memory: .../4259316K".
TEST(Memblock, a_baseline_memory_matches_boot_log_total) {
  std::ifstream in(std::string(SPM_TEST_DATA) + "/oracle/a_baseline.json");
  const nlohmann::json trace = nlohmann::json::parse(in);
  const auto dmesg = trace.at("steps").at(0).at("snapshot").at("dmesg").get<std::vector<std::string>>();
  const std::regex usable(R"(BIOS-e820: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] usable)");
  const std::regex update(R"(e820: update \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] usable ==> reserved)");
  const std::regex total(R"(Memory: \d+K/(\d+)K available)");
  std::vector<std::pair<uint64_t, uint64_t>> ram;  // inclusive
  uint64_t total_kib = 0;
  for (const std::string& line : dmesg) {
    std::smatch m;
    if (std::regex_search(line, m, usable)) {
      ram.emplace_back(std::stoull(m[1], nullptr, 16), std::stoull(m[2], nullptr, 16));
    } else if (std::regex_search(line, m, update)) {
      const uint64_t ue = std::stoull(m[2], nullptr, 16);
      for (auto& r : ram)  // the update takes the head of the first usable entry
        if (r.first <= ue && r.second > ue) r.first = ue + 1;
    } else if (std::regex_search(line, m, total)) {
      total_kib = std::stoull(m[1]);
    }
  }
  ASSERT_EQ(ram.size(), 3u);
  ASSERT_NE(total_kib, 0u);

  Memblock mb(kX86_64);
  for (auto [s, e] : ram) {
    const uint64_t base = (s + 0xfff) & ~uint64_t{0xfff};
    const uint64_t end = (e + 1) & ~uint64_t{0xfff};
    ASSERT_TRUE(mb.add(PhysAddr(base), end - base).has_value());
  }
  const std::vector<MemblockRegion> want = {region(0x1000, 0x9e000), region(0x100000, 0xbffdf000 - 0x100000),
                                            region(0x100000000, 0x44000000)};
  EXPECT_EQ(copy(mb.memory()), want);
  EXPECT_EQ(mb.phys_mem_size(), total_kib * 1024);
  EXPECT_EQ(mb.end_of_dram().value(), 0x144000000ull);
  expect_invariants_ok(mb);
}

// Scenario: adds that touch, in any order, with equal or different nid and flags.
// Expect (memblock_merge_regions): touching regions with equal nid and flags become one; a
// different nid or flag keeps them apart; the list stays sorted by base.
TEST(Memblock, add_merges_touching_regions_with_same_nid_and_flags) {
  Memblock mb(kX86_64);
  ASSERT_TRUE(mb.add(PhysAddr(2 * GiB), GiB).has_value());
  ASSERT_TRUE(mb.add(PhysAddr(0), GiB).has_value());
  EXPECT_EQ(copy(mb.memory()), (std::vector{region(0, GiB), region(2 * GiB, GiB)}));
  ASSERT_TRUE(mb.add(PhysAddr(GiB), GiB).has_value());
  EXPECT_EQ(copy(mb.memory()), (std::vector{region(0, 3 * GiB)}));

  ASSERT_TRUE(mb.add_node(PhysAddr(4 * GiB), GiB, 1, MEMBLOCK_NONE).has_value());
  ASSERT_TRUE(mb.add_node(PhysAddr(5 * GiB), GiB, 0, MEMBLOCK_NONE).has_value());
  ASSERT_TRUE(mb.add_node(PhysAddr(6 * GiB), GiB, 0, MEMBLOCK_DRIVER_MANAGED).has_value());
  ASSERT_TRUE(mb.add_node(PhysAddr(7 * GiB), GiB, 0, MEMBLOCK_DRIVER_MANAGED).has_value());
  EXPECT_EQ(copy(mb.memory()), (std::vector{region(0, 3 * GiB), region(4 * GiB, GiB, 1), region(5 * GiB, GiB, 0),
                                            region(6 * GiB, 2 * GiB, 0, MEMBLOCK_DRIVER_MANAGED)}));
  EXPECT_EQ(mb.phys_mem_size(), 8 * GiB - GiB);

  // Assigning node 0 to everything below 4 GiB merges nothing new (the 3 GiB region does not
  // touch); assigning node 0 to [4G, 5G) joins it with its node-0 neighbour.
  ASSERT_TRUE(mb.set_node(PhysAddr(0), 4 * GiB, 0).has_value());
  ASSERT_TRUE(mb.set_node(PhysAddr(4 * GiB), GiB, 0).has_value());
  EXPECT_EQ(copy(mb.memory()), (std::vector{region(0, 3 * GiB, 0), region(4 * GiB, 2 * GiB, 0),
                                            region(6 * GiB, 2 * GiB, 0, MEMBLOCK_DRIVER_MANAGED)}));
  expect_invariants_ok(mb);
}

// Scenario: remove a range in the middle of one region and a range spanning two regions' edges;
// reserve and free in memblock.reserved. Expect: regions split around the removed range, parts
// outside memory ignored, the reserved list changed independently.
TEST(Memblock, remove_splits_and_reserved_is_separate) {
  Memblock mb(kX86_64);
  ASSERT_TRUE(mb.add(PhysAddr(0), 4 * GiB).has_value());
  ASSERT_TRUE(mb.add(PhysAddr(8 * GiB), GiB).has_value());
  ASSERT_TRUE(mb.remove(PhysAddr(GiB), 128 * MiB).has_value());
  EXPECT_EQ(copy(mb.memory()),
            (std::vector{region(0, GiB), region(GiB + 128 * MiB, 3 * GiB - 128 * MiB), region(8 * GiB, GiB)}));
  ASSERT_TRUE(mb.remove(PhysAddr(3 * GiB), 6 * GiB - 128 * MiB).has_value());
  EXPECT_EQ(copy(mb.memory()), (std::vector{region(0, GiB), region(GiB + 128 * MiB, 2 * GiB - 128 * MiB),
                                            region(9 * GiB - 128 * MiB, 128 * MiB)}));
  EXPECT_EQ(mb.phys_mem_size(), 3 * GiB);

  ASSERT_TRUE(mb.reserve(PhysAddr(0x1000000), 0x2000000).has_value());
  ASSERT_TRUE(mb.reserve(PhysAddr(0), 0x1000).has_value());
  EXPECT_EQ(copy(mb.reserved()), (std::vector{region(0, 0x1000), region(0x1000000, 0x2000000)}));
  EXPECT_TRUE(mb.is_reserved(PhysAddr(0x2fff000)));
  EXPECT_FALSE(mb.is_reserved(PhysAddr(0x3000000)));
  ASSERT_TRUE(mb.phys_free(PhysAddr(0x1000000), 0x1000000).has_value());
  EXPECT_EQ(copy(mb.reserved()), (std::vector{region(0, 0x1000), region(0x2000000, 0x1000000)}));
  EXPECT_EQ(mb.reserved_size(), 0x1001000u);
  EXPECT_EQ(mb.phys_mem_size(), 3 * GiB);  // reserved memory is still memory
  expect_invariants_ok(mb);
}

// Scenario: arm64 firmware marks 64 KiB in the middle of RAM NOMAP, later clears it.
// Expect (spec §8 seed 000): the region splits in three with NOMAP in the middle; those pfns are
// memory but not map memory; pfns outside memory or with bits lost in pfn->phys are not map
// memory; clearing NOMAP merges the region back into one.
TEST(Memblock, nomap_splits_and_clear_merges_back) {
  Memblock mb(kArm64_4K_48);
  const uint64_t base = 0x40000000;
  ASSERT_TRUE(mb.add_node(PhysAddr(base), 2 * GiB, 0, MEMBLOCK_NONE).has_value());
  ASSERT_TRUE(mb.mark_nomap(PhysAddr(base + 0x100000), 0x10000).has_value());
  EXPECT_EQ(copy(mb.memory()),
            (std::vector{region(base, 0x100000, 0), region(base + 0x100000, 0x10000, 0, MEMBLOCK_NOMAP),
                         region(base + 0x110000, 2 * GiB - 0x110000, 0)}));
  EXPECT_TRUE(mb.is_map_memory(Pfn((base >> 12) + 0xff)));
  EXPECT_FALSE(mb.is_map_memory(Pfn((base >> 12) + 0x100)));
  EXPECT_FALSE(mb.is_map_memory(Pfn((base >> 12) + 0x10f)));
  EXPECT_TRUE(mb.is_map_memory(Pfn((base >> 12) + 0x110)));
  EXPECT_TRUE(mb.is_memory(PhysAddr(base + 0x100000)));
  EXPECT_FALSE(mb.is_map_memory(Pfn((base >> 12) - 1)));
  EXPECT_FALSE(mb.is_map_memory(Pfn(((base + 2 * GiB) >> 12))));
  EXPECT_FALSE(mb.is_map_memory(Pfn((uint64_t{1} << 52) + (base >> 12))));  // upper bits lost in PFN_PHYS
  EXPECT_EQ(mb.phys_mem_size(), 2 * GiB);
  expect_invariants_ok(mb);

  // NOMAP over a range only partly in memory marks just the memory part.
  ASSERT_TRUE(mb.mark_nomap(PhysAddr(base + 2 * GiB - 0x1000), 0x2000).has_value());
  EXPECT_EQ(mb.memory().back(), region(base + 2 * GiB - 0x1000, 0x1000, 0, MEMBLOCK_NOMAP));
  ASSERT_TRUE(mb.clear_nomap(PhysAddr(base), 2 * GiB).has_value());
  EXPECT_EQ(copy(mb.memory()), (std::vector{region(base, 2 * GiB, 0)}));
  expect_invariants_ok(mb);
}

// Scenario: malformed boot input: unaligned base or size, an empty range, overlap with memory or
// with a reservation, a range ending above 2^max_physmem_bits or wrapping, a bad node.
// Expect: -EINVAL for alignment, emptiness, overlap and node; -ERANGE for the physical limit; both
// lists unchanged after every refusal. A range ending exactly at 2^46 is accepted.
TEST(Memblock, boot_input_refusals_change_nothing) {
  Memblock mb(kX86_64);
  ASSERT_TRUE(mb.add(PhysAddr(0x100000), 0xbfedf000).has_value());
  ASSERT_TRUE(mb.reserve(PhysAddr(0x1000000), 0x1000000).has_value());
  const auto mem = copy(mb.memory());
  const auto res = copy(mb.reserved());
  auto expect_err = [&](Result<void> r, Errno e) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, e) << r.error().message;
    EXPECT_EQ(copy(mb.memory()), mem);
    EXPECT_EQ(copy(mb.reserved()), res);
  };
  expect_err(mb.add(PhysAddr(0x9fc00), 0x1000), Errno::Inval);
  expect_err(mb.add(PhysAddr(0x1000), 0x9ec00), Errno::Inval);
  expect_err(mb.add(PhysAddr(0x1000), 0), Errno::Inval);
  expect_err(mb.add(PhysAddr(0xbffde000), 0x2000), Errno::Inval);  // overlaps the last page of RAM
  expect_err(mb.add(PhysAddr(0), 2 * GiB), Errno::Inval);          // covers it entirely
  expect_err(mb.reserve(PhysAddr(0x1fff000), 0x2000), Errno::Inval);
  expect_err(mb.add(PhysAddr(0x3ffff0000000), 0x20000000), Errno::Range);  // ends above 2^46
  expect_err(mb.add(PhysAddr(0x400000000000), 0x1000), Errno::Range);
  expect_err(mb.add(PhysAddr(0xfffffffffffff000), 0x2000), Errno::Range);  // wraps
  expect_err(mb.add_node(PhysAddr(0x200000000), 0x1000, -1, MEMBLOCK_NONE), Errno::Inval);
  expect_err(mb.add_node(PhysAddr(0x200000000), 0x1000, MAX_NUMNODES + 1, MEMBLOCK_NONE), Errno::Inval);
  expect_err(mb.remove(PhysAddr(0x100800), 0x1000), Errno::Inval);
  expect_err(mb.mark_nomap(PhysAddr(0x100000), 0x800), Errno::Inval);
  expect_err(mb.mark_nomap(PhysAddr(0x3ffffffff000), 0x2000), Errno::Range);
  expect_err(mb.set_node(PhysAddr(0x100000), 0x1000, -3), Errno::Inval);
  expect_err(mb.phys_free(PhysAddr(0x1000000), 0), Errno::Inval);
  expect_invariants_ok(mb);

  ASSERT_TRUE(mb.add(PhysAddr(0x3ffff0000000), 0x10000000).has_value());  // ends exactly at 2^46
  EXPECT_EQ(mb.end_of_dram().value(), uint64_t{1} << 46);
  expect_invariants_ok(mb);
}

// Scenario: an empty memblock. Expect: no regions, zero sizes, end of DRAM 0, no map memory.
TEST(Memblock, empty_lists) {
  Memblock mb(kX86_64);
  EXPECT_TRUE(mb.memory().empty());
  EXPECT_TRUE(mb.regions(MemblockType::Reserved).empty());
  EXPECT_EQ(mb.phys_mem_size(), 0u);
  EXPECT_EQ(mb.end_of_dram().value(), 0u);
  EXPECT_FALSE(mb.is_map_memory(Pfn(0)));
  expect_invariants_ok(mb);
}

}  // namespace
}  // namespace sparsemem
