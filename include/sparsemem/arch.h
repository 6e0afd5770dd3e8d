// ArchProfile: the architecture facts of Linux 6.1's sparse memory model as data (page size,
// section and subsection geometry, physical limit, vmemmap window). Immutable values; any layer reads them.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "sparsemem/units.h"

namespace sparsemem {

inline constexpr unsigned SUBSECTION_SHIFT = 21;  // 2 MiB on every architecture (spec §1.1)
inline constexpr unsigned STRUCT_PAGE_SIZE = 64;  // sizeof(struct page), pinned in page.h
inline constexpr unsigned STRUCT_PAGE_SHIFT = 6;

enum class ArchFamily : uint8_t { X86_64, Arm64 };

// How the memory block size is chosen (spec §1.3; arm64 uses the weak default = one section).
enum class BlockSizeRule : uint8_t { X86Probe, Section };

// Worked example (x86-64, 4 KiB pages, 128 MiB sections):
//   pfn 0x144000 -> section 0x144000 >> 15 = 40, subsection (0x144000 & 0x7fff) >> 9 = 32,
//   struct page at 0xffffea0000000000 + 0x144000 * 64 = 0xffffea0005100000.
struct ArchProfile {
  std::string_view name;
  ArchFamily family;
  unsigned page_shift;
  unsigned section_size_bits;
  unsigned max_physmem_bits;
  unsigned va_bits;       // arm64 VA_BITS; x86 4- or 5-level paging width
  unsigned pmd_shift;     // size of one huge vmemmap mapping (PMD); 2 MiB on x86 and arm64 4K
  unsigned max_order;     // MAX_ORDER (orders 0 .. MAX_ORDER-1)
  unsigned pageblock_order;
  uint64_t vmemmap_start;  // VMEMMAP_START / vmemmap_base (nokaslr)
  uint64_t vmemmap_size;   // bytes of the window
  bool vmemmap_from_memstart;   // arm64: struct page of pfn at start + (pfn - memstart_pfn) * 64
  bool vmemmap_pmd_mappable;    // huge (PMD) vmemmap mappings possible (x86: also needs PSE)
  bool vmemmap_subpmd_tracking; // x86 0xFD PAGE_UNUSED tracking of partly used huge PMDs
  bool compound_vmemmap_dedup;  // ARCH_WANT_HUGETLB_PAGE_OPTIMIZE_VMEMMAP (x86 only in 6.1)
  bool memmap_on_memory_possible;
  BlockSizeRule block_size_rule;

  // Derived geometry (spec §1.1). All constexpr so that tables of profiles are checked at compile time.
  constexpr uint64_t page_size() const { return uint64_t{1} << page_shift; }
  constexpr unsigned pfn_section_shift() const { return section_size_bits - page_shift; }
  constexpr NrPages pages_per_section() const { return NrPages(uint64_t{1} << pfn_section_shift()); }
  constexpr unsigned pfn_subsection_shift() const { return SUBSECTION_SHIFT - page_shift; }
  constexpr NrPages pages_per_subsection() const { return NrPages(uint64_t{1} << pfn_subsection_shift()); }
  constexpr unsigned subsections_per_section() const { return 1u << (section_size_bits - SUBSECTION_SHIFT); }
  constexpr uint64_t section_size() const { return uint64_t{1} << section_size_bits; }
  constexpr uint64_t nr_mem_sections() const { return uint64_t{1} << (max_physmem_bits - section_size_bits); }
  constexpr uint64_t sections_per_root() const { return page_size() / 32; }  // 32-byte mem_section
  constexpr uint64_t nr_section_roots() const {
    return (nr_mem_sections() + sections_per_root() - 1) / sections_per_root();
  }
  constexpr NrPages pageblock_nr_pages() const { return NrPages(uint64_t{1} << pageblock_order); }
  constexpr uint64_t pmd_size() const { return uint64_t{1} << pmd_shift; }
  constexpr uint64_t max_pfn_limit() const { return uint64_t{1} << (max_physmem_bits - page_shift); }
  constexpr uint64_t physmem_end() const { return (uint64_t{1} << max_physmem_bits) - 1; }
  // Bytes of memmap for one section (2 MiB on x86) and one subsection (32 KiB on x86).
  constexpr uint64_t section_memmap_bytes() const { return pages_per_section().value() * STRUCT_PAGE_SIZE; }
  constexpr uint64_t subsection_memmap_bytes() const {
    return pages_per_subsection().value() * STRUCT_PAGE_SIZE;
  }

  // Unit conversions.
  constexpr Pfn phys_to_pfn(PhysAddr a) const { return Pfn(a.value() >> page_shift); }
  constexpr PhysAddr pfn_to_phys(Pfn p) const {
    SPM_CHECK(p.value() <= (UINT64_MAX >> page_shift), "pfn_to_phys overflow");
    return PhysAddr(p.value() << page_shift);
  }
  constexpr SectionNr pfn_to_section_nr(Pfn p) const { return SectionNr(p.value() >> pfn_section_shift()); }
  constexpr Pfn section_nr_to_pfn(SectionNr s) const { return Pfn(s.value() << pfn_section_shift()); }
  constexpr SubsectionIdx subsection_map_index(Pfn p) const {
    return SubsectionIdx((p.value() & (pages_per_section().value() - 1)) >> pfn_subsection_shift());
  }
  constexpr bool section_aligned(Pfn p) const { return (p.value() & (pages_per_section().value() - 1)) == 0; }
  constexpr bool subsection_aligned(Pfn p) const {
    return (p.value() & (pages_per_subsection().value() - 1)) == 0;
  }
  constexpr bool pageblock_aligned(Pfn p) const { return (p.value() & (pageblock_nr_pages().value() - 1)) == 0; }
  // pfn_valid() step 1: a pfn whose upper PAGE_SHIFT bits are set does not survive pfn->phys->pfn.
  constexpr bool pfn_survives_phys(Pfn p) const { return (p.value() >> (64 - page_shift)) == 0; }
};

namespace detail {
constexpr ArchProfile make_x86(std::string_view name, unsigned physbits, unsigned va_bits, uint64_t vm_start,
                               uint64_t vm_size) {
  return ArchProfile{name, ArchFamily::X86_64, 12, 27, physbits, va_bits, 21, 11, 9, vm_start, vm_size,
                     false, true, true, true, true, BlockSizeRule::X86Probe};
}
// arm64 (spec §1.4): VMEMMAP_SHIFT = PAGE_SHIFT - 6; the window covers the linear map only.
constexpr ArchProfile make_arm64(std::string_view name, unsigned page_shift, unsigned va_bits, unsigned pa_bits) {
  const unsigned section_bits = page_shift == 16 ? 29 : 27;
  const unsigned va_min = va_bits < 48 ? va_bits : 48;
  const uint64_t page_offset = ~uint64_t{0} - ((uint64_t{1} << va_bits) - 1);      // -2^VA_BITS
  const uint64_t page_end = ~uint64_t{0} - ((uint64_t{1} << (va_min - 1)) - 1);    // -2^(VA_BITS_MIN-1)
  const unsigned vmemmap_shift = page_shift - STRUCT_PAGE_SHIFT;
  const uint64_t size = (page_end - page_offset) >> vmemmap_shift;
  const uint64_t start = ~uint64_t{0} - ((uint64_t{1} << (va_bits - vmemmap_shift)) - 1);
  const unsigned pmd_shift = page_shift == 12 ? 21 : page_shift == 14 ? 25 : 29;
  const unsigned max_order = page_shift == 12 ? 11 : page_shift == 14 ? 12 : 14;
  const unsigned pageblock_order = page_shift == 12 ? 9 : page_shift == 14 ? 11 : 13;
  return ArchProfile{name, ArchFamily::Arm64, page_shift, section_bits, pa_bits, va_bits, pmd_shift, max_order,
                     pageblock_order, start, size, true, page_shift == 12, false, false, page_shift == 12,
                     BlockSizeRule::Section};
}
}  // namespace detail

inline constexpr ArchProfile kX86_64 =
    detail::make_x86("x86-64", 46, 48, 0xffffea0000000000ULL, uint64_t{1} << 40);
inline constexpr ArchProfile kX86_64_LA57 =
    detail::make_x86("x86-64-la57", 52, 57, 0xffd4000000000000ULL, uint64_t{1} << 49);
inline constexpr ArchProfile kArm64_4K_39 = detail::make_arm64("arm64-4k-39", 12, 39, 48);
inline constexpr ArchProfile kArm64_4K_48 = detail::make_arm64("arm64-4k-48", 12, 48, 48);
inline constexpr ArchProfile kArm64_16K_47 = detail::make_arm64("arm64-16k-47", 14, 47, 48);
inline constexpr ArchProfile kArm64_64K_42 = detail::make_arm64("arm64-64k-42", 16, 42, 48);
inline constexpr ArchProfile kArm64_64K_52 = detail::make_arm64("arm64-64k-52", 16, 52, 52);

// Geometry facts the code relies on (spec §1.1: MAX_ORDER-1+PAGE_SHIFT <= SECTION_SIZE_BITS).
constexpr bool arch_geometry_ok(const ArchProfile& a) {
  return a.section_size_bits >= SUBSECTION_SHIFT && a.max_order - 1 + a.page_shift <= a.section_size_bits &&
         a.pageblock_order + a.page_shift <= a.section_size_bits && a.subsections_per_section() <= 256;
}
static_assert(arch_geometry_ok(kX86_64) && arch_geometry_ok(kX86_64_LA57) && arch_geometry_ok(kArm64_4K_39) &&
              arch_geometry_ok(kArm64_4K_48) && arch_geometry_ok(kArm64_16K_47) &&
              arch_geometry_ok(kArm64_64K_42) && arch_geometry_ok(kArm64_64K_52));
static_assert(kX86_64.pages_per_section().value() == 32768 && kX86_64.subsections_per_section() == 64);
static_assert(kArm64_4K_39.vmemmap_start == 0xfffffffe00000000ULL && kArm64_4K_39.vmemmap_size == (1ULL << 32));
static_assert(kArm64_4K_48.vmemmap_start == 0xfffffc0000000000ULL && kArm64_4K_48.vmemmap_size == (1ULL << 41));
static_assert(kArm64_64K_42.vmemmap_size == (1ULL << 31) && kArm64_64K_52.vmemmap_start == 0xfffffc0000000000ULL);
static_assert(kArm64_64K_52.subsections_per_section() == 256 && kArm64_16K_47.pages_per_subsection().value() == 128);

// Every profile, in a stable order (for tests that run on all of them).
std::span<const ArchProfile> all_arch_profiles();
// nullptr when the name is unknown.
const ArchProfile* find_arch_profile(std::string_view name);

}  // namespace sparsemem

namespace sparsemem {

// Memory block size (spec §1.3): x86's probe_memory_block_size() evaluated once at boot, or the
// weak default of one section (arm64). `platform_bytes` is a size set by the platform (UV, Xen,
// hyperv); 0 when none. `boot_mem_end` is max_pfn's byte address (end of boot RAM).
constexpr uint64_t probe_memory_block_size(const ArchProfile& a, uint64_t boot_mem_end, bool hypervisor,
                                           uint64_t platform_bytes = 0) {
  if (a.block_size_rule == BlockSizeRule::Section) return a.section_size();
  constexpr uint64_t kMin = uint64_t{128} << 20, kMax = uint64_t{2} << 30;
  if (platform_bytes >= kMin && platform_bytes <= (uint64_t{64} << 30)) return platform_bytes;
  if (boot_mem_end < (uint64_t{64} << 30)) return kMin;
  if (!hypervisor) return kMax;
  for (uint64_t bz = kMax; bz > kMin; bz >>= 1)
    if ((boot_mem_end & (bz - 1)) == 0) return bz;
  return kMin;
}
static_assert(probe_memory_block_size(kX86_64, 0x144000000, true) == (128 << 20));
static_assert(probe_memory_block_size(kX86_64, uint64_t{96} << 30, false) == (uint64_t{2} << 30));
static_assert(probe_memory_block_size(kX86_64, uint64_t{96} << 30, true) == (uint64_t{2} << 30));
static_assert(probe_memory_block_size(kX86_64, (uint64_t{64} << 30) + (uint64_t{512} << 20), true) == (512 << 20));
static_assert(probe_memory_block_size(kArm64_64K_42, uint64_t{96} << 30, true) == (512 << 20));

}  // namespace sparsemem
