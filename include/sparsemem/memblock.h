// Memblock: memblock.memory and memblock.reserved, the boot memory map (mm/memblock.c; spec §4.1 items 1, 6).
// Not internally locked: written at boot and by arm64 hotplug under the owner's lock; const members may run together.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sparsemem/arch.h"
#include "sparsemem/invariant.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

// enum memblock_flags (include/linux/memblock.h, 6.1), same bits.
struct MemblockFlags : StrongInt<MemblockFlags> {
  using StrongInt::StrongInt;
  constexpr MemblockFlags operator|(MemblockFlags o) const { return MemblockFlags(m_value | o.m_value); }
  constexpr MemblockFlags operator&(MemblockFlags o) const { return MemblockFlags(m_value & o.m_value); }
  constexpr MemblockFlags operator~() const { return MemblockFlags(~m_value); }
  constexpr bool any(MemblockFlags bits) const { return (m_value & bits.m_value) != 0; }
};
inline constexpr MemblockFlags MEMBLOCK_NONE{0x0};
inline constexpr MemblockFlags MEMBLOCK_HOTPLUG{0x1};         // hotpluggable region (movable_node)
inline constexpr MemblockFlags MEMBLOCK_MIRROR{0x2};          // mirrored region
inline constexpr MemblockFlags MEMBLOCK_NOMAP{0x4};           // not in the direct/linear map
inline constexpr MemblockFlags MEMBLOCK_DRIVER_MANAGED{0x8};  // hot-added System RAM (kmem, virtio-mem)

// memblock_add() leaves a region's node unassigned (MAX_NUMNODES) until memblock_set_node().
inline constexpr int MAX_NUMNODES = 1 << 10;  // Debian NODES_SHIFT 10

// struct memblock_region: [base, base + size).
struct MemblockRegion {
  PhysAddr base;
  uint64_t size;
  MemblockFlags flags;
  int nid;

  constexpr uint64_t end() const { return base.value() + size; }  // exclusive
  constexpr bool operator==(const MemblockRegion&) const = default;
};

// What a kernel reserves and allocates for itself while it boots, before and just after the buddy
// allocator takes over (spec §4.1 step 6). Platforms that describe the kernel image they boot fill it
// (x86: the platform layer from the image's /proc/iomem lines and the command line); a MachineConfig
// without it boots with memblock.reserved holding only the map's Reserved regions. Machine::boot()
// applies it in the kernel's order (src/machine/boot_reservations.cc).
struct BootReservations {
  // x86 realmode_reserve(): memblock_reserve(0, SZ_1M), BIOSes corrupt low memory. 0: none.
  uint64_t low_reserve = 0;
  // early_reserve_memory(): [_text, __end_of_kernel_reserve), without the text/rodata and
  // rodata/data gaps mark_rodata_ro() frees at the end of boot. Page-rounded outwards when applied.
  std::vector<PhysRange> kernel_image;
  // init_mem_mapping(): direct-map page tables taken top-down from the highest mapped RAM once the
  // brk page-table buffer runs out (3 pages on every QEMU pc machine the oracle recorded).
  uint64_t early_page_table_pages = 0;
  // setup_log_buf(): log_buf_len= bytes of printk ring buffer plus its descriptor (24 bytes) and
  // info (88 bytes) arrays, one per 32 bytes of text (PRB_AVGBITS), top-down. 0: the static buffer.
  uint64_t log_buf_len = 0;
  // alloc_node_data(): NODE_DATA of each node, top-down in its memory; page-rounded
  // sizeof(pg_data_t) (Debian 6.1 amd64, NODES_SHIFT 10: 43 pages, "NODE_DATA(0) allocated").
  uint64_t pgdat_size = 0;
  // sparse_init_nid(): the vmemmap boot buffer, one PMD-aligned allocation per node of its present
  // sections' memmaps; register_page_bootmem_info() later marks each backing page PG_private,
  // private = section number, index = SECTION_INFO, with an extra reference.
  bool sparse_boot_buffer = false;
  // mem_init() -> preallocate_vmalloc_pages(): the first pages the buddy hands out, top-level
  // kernel page tables for the vmalloc area (x86 4-level: 32 TiB / 512 GiB = 64 PUD pages). They
  // come from the head of the highest zone's free list, i.e. its lowest free pages.
  uint64_t vmalloc_pgtable_pages = 0;

  bool operator==(const BootReservations&) const = default;
};

enum class MemblockType : uint8_t { Memory, Reserved };

// The two region lists, each sorted by base and merged the way the kernel merges them.
//
// Boot input is validated before anything changes (seed 002's "validate, then commit"): every
// range must be page aligned, non-empty and end at or below 2^max_physmem_bits, and a range added
// to a list must not overlap what that list already holds. The kernel silently takes the union
// of overlapping adds; a model fed a memory map treats an overlap as a malformed map instead.
//
// INV-MEMBLOCK-1: every region is non-empty and page aligned (base and size).
// INV-MEMBLOCK-2: each list is sorted and disjoint: r[i].base + r[i].size <= r[i+1].base.
// INV-MEMBLOCK-3: each list is fully merged: touching neighbours differ in nid or flags.
// INV-MEMBLOCK-4: every region ends at or below 2^max_physmem_bits.
// INV-MEMBLOCK-5: reserved regions carry MEMBLOCK_NONE and MAX_NUMNODES (memblock_reserve()).
// INV-MEMBLOCK-6: total_size of each list equals the sum of its region sizes.
class Memblock {
 public:
  explicit Memblock(const ArchProfile& arch) : m_arch(arch) {}

  // memblock_add(base, size): RAM with no node yet (MAX_NUMNODES), flags NONE. Merges with
  // touching neighbours of the same nid and flags.
  // Return: -EINVAL unaligned, empty, or overlapping memory; -ERANGE beyond 2^max_physmem_bits.
  Result<void> add(PhysAddr base, uint64_t size) { return add_node(base, size, MAX_NUMNODES, MEMBLOCK_NONE); }
  // memblock_add_node(base, size, nid, flags) (arm64 hot-add passes DRIVER_MANAGED for kmem).
  // Return: as add(), and -EINVAL for a nid outside 0..MAX_NUMNODES.
  Result<void> add_node(PhysAddr base, uint64_t size, int nid, MemblockFlags flags);
  // memblock_remove(base, size): drop the covered parts of memory regions (split as needed);
  // parts not in memblock.memory are ignored. Return: -EINVAL unaligned/empty; -ERANGE out of range.
  Result<void> remove(PhysAddr base, uint64_t size);
  // memblock_reserve(base, size). Return: as add(), overlap meaning overlap with reserved.
  Result<void> reserve(PhysAddr base, uint64_t size);
  // memblock_alloc_range_nid() in memblock's default top-down direction: the highest `align`-aligned
  // range of `size` bytes inside [min_addr, max_addr) that lies in memory of node `nid` (MAX_NUMNODES:
  // any node), outside NOMAP regions and outside every reserved region; it is reserved and returned.
  // Return: -EINVAL for a size that is not a page multiple or an align that is not a power of two of
  // at least a page; -ENOMEM when no free range fits (nothing changes then).
  Result<PhysAddr> alloc_top_down(uint64_t size, uint64_t align, PhysAddr min_addr, PhysAddr max_addr, int nid);
  // memblock_phys_free(base, size): drop the covered parts of reserved regions.
  // Return: as remove().
  Result<void> phys_free(PhysAddr base, uint64_t size);
  // memblock_mark_nomap / memblock_clear_nomap(base, size): set or clear NOMAP on the parts of
  // memory regions inside the range (splitting them at its edges, merging afterwards); parts not
  // in memblock.memory are ignored. Return: as remove().
  Result<void> mark_nomap(PhysAddr base, uint64_t size);
  Result<void> clear_nomap(PhysAddr base, uint64_t size);
  // memblock_set_node(base, size, nid): assign the node of the memory inside the range.
  // Return: as remove(), and -EINVAL for a nid outside 0..MAX_NUMNODES.
  Result<void> set_node(PhysAddr base, uint64_t size, int nid);

  // Regions in ascending order (for_each_mem_region / for_each_reserved_mem_region). The span
  // stays valid until the next modifying call.
  std::span<const MemblockRegion> memory() const { return m_memory.regions; }
  std::span<const MemblockRegion> reserved() const { return m_reserved.regions; }
  std::span<const MemblockRegion> regions(MemblockType type) const {
    return type == MemblockType::Memory ? memory() : reserved();
  }

  // memblock_phys_mem_size() / memblock_reserved_size(): bytes in each list.
  uint64_t phys_mem_size() const { return m_memory.total_size; }
  uint64_t reserved_size() const { return m_reserved.total_size; }
  // memblock_end_of_DRAM(): end (exclusive) of the last memory region, 0 when there is none.
  PhysAddr end_of_dram() const;

  // memblock_is_memory(addr): addr lies in a memory region (NOMAP included).
  bool is_memory(PhysAddr addr) const;
  // memblock_is_reserved(addr).
  bool is_reserved(PhysAddr addr) const;
  // pfn_is_map_memory(pfn) (arm64): the pfn survives pfn->phys->pfn, lies in a memory region and
  // that region is not NOMAP. NOMAP memory is pfn_valid but not map memory (spec §8, seed 000).
  bool is_map_memory(Pfn pfn) const;

  void check_invariants(InvariantReport& report) const;

 private:
  struct RegionList {
    std::vector<MemblockRegion> regions;
    uint64_t total_size = 0;  // memblock_type.total_size, cross-checked by INV-MEMBLOCK-6
  };

  RegionList& list(MemblockType type) { return type == MemblockType::Memory ? m_memory : m_reserved; }
  Result<void> validate_range(PhysAddr base, uint64_t size) const;
  Result<void> insert_disjoint(MemblockType type, PhysAddr base, uint64_t size, int nid, MemblockFlags flags);
  void remove_range(MemblockType type, PhysAddr base, uint64_t size);
  template <class F>
  void update_range(PhysAddr base, uint64_t size, F&& change);
  static void merge_regions(RegionList& l);
  static const MemblockRegion* find(const RegionList& l, PhysAddr addr);

  ArchProfile m_arch;
  RegionList m_memory;
  RegionList m_reserved;
};

}  // namespace sparsemem
