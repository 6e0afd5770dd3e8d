// Tests for include/sparsemem/arch.h: the profile table against spec §1.2 and §1.4, by hand.
#include "sparsemem/arch.h"

#include <gtest/gtest.h>

namespace sparsemem {
namespace {

struct Row {
  const char* name;
  uint64_t page_size, section_bytes, pages_per_section, pages_per_subsection, subsections, nr_sections;
  uint64_t vmemmap_start, vmemmap_size, section_memmap, pageblock_pages;
};

// Scenario: every profile's geometry. Expect: the values of spec §1.2 (worked out by hand there).
TEST(ArchProfile, geometry_matches_spec_table) {
  const Row rows[] = {
      {"x86-64", 4096, 128 << 20, 32768, 512, 64, 1ull << 19, 0xffffea0000000000, 1ull << 40, 2 << 20, 512},
      {"x86-64-la57", 4096, 128 << 20, 32768, 512, 64, 1ull << 25, 0xffd4000000000000, 1ull << 49, 2 << 20, 512},
      {"arm64-4k-39", 4096, 128 << 20, 32768, 512, 64, 1ull << 21, 0xfffffffe00000000, 1ull << 32, 2 << 20, 512},
      {"arm64-4k-48", 4096, 128 << 20, 32768, 512, 64, 1ull << 21, 0xfffffc0000000000, 1ull << 41, 2 << 20, 512},
      {"arm64-16k-47", 16384, 128 << 20, 8192, 128, 64, 1ull << 21, 0xffffff8000000000, 1ull << 38, 512 << 10,
       2048},
      {"arm64-64k-42", 65536, 512 << 20, 8192, 32, 256, 1ull << 19, 0xffffffff00000000, 1ull << 31, 512 << 10,
       8192},
      {"arm64-64k-52", 65536, 512 << 20, 8192, 32, 256, 1ull << 23, 0xfffffc0000000000,
       ((1ull << 52) - (1ull << 47)) >> 10, 512 << 10, 8192},
  };
  ASSERT_EQ(all_arch_profiles().size(), std::size(rows));
  for (const Row& r : rows) {
    SCOPED_TRACE(r.name);
    const ArchProfile* a = find_arch_profile(r.name);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->page_size(), r.page_size);
    EXPECT_EQ(a->section_size(), r.section_bytes);
    EXPECT_EQ(a->pages_per_section().value(), r.pages_per_section);
    EXPECT_EQ(a->pages_per_subsection().value(), r.pages_per_subsection);
    EXPECT_EQ(a->subsections_per_section(), r.subsections);
    EXPECT_EQ(a->nr_mem_sections(), r.nr_sections);
    EXPECT_EQ(a->vmemmap_start, r.vmemmap_start);
    EXPECT_EQ(a->vmemmap_size, r.vmemmap_size);
    EXPECT_EQ(a->section_memmap_bytes(), r.section_memmap);
    EXPECT_EQ(a->pageblock_nr_pages().value(), r.pageblock_pages);
  }
  EXPECT_EQ(find_arch_profile("riscv"), nullptr);
}

// Scenario: the worked example in arch.h. Expect: section 40, subsection 32.
TEST(ArchProfile, pfn_to_section_and_subsection) {
  EXPECT_EQ(kX86_64.pfn_to_section_nr(Pfn(0x144000)), SectionNr(40));
  EXPECT_EQ(kX86_64.subsection_map_index(Pfn(0x144000)), SubsectionIdx(32));
  EXPECT_EQ(kX86_64.section_nr_to_pfn(SectionNr(40)), Pfn(0x140000));
  EXPECT_EQ(kX86_64.phys_to_pfn(PhysAddr(0x143ffffff)), Pfn(0x143fff));
  EXPECT_TRUE(kX86_64.pfn_survives_phys(Pfn(0x000fffffffffffffULL)));
  EXPECT_FALSE(kX86_64.pfn_survives_phys(Pfn(0x0010000000000000ULL)));
}

}  // namespace
}  // namespace sparsemem
