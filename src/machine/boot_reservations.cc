// The kernel's own boot reservations (BootReservations in memblock.h): memblock reservations and
// top-down allocations before sparse_init, and what mem_init() does to their descriptors. Boot only.
#include <algorithm>
#include <set>

#include "internal/page_walk.h"
#include "sparsemem/machine.h"

namespace sparsemem {

namespace {
// enum bootmem_type (include/linux/bootmem_info.h, 6.1): page->index of pages registered by
// register_page_bootmem_info_node().
constexpr uint64_t SECTION_INFO = 12;
constexpr uint64_t NODE_INFO = 14;

// memblock_reserve() takes the union with what is already reserved; the model's memblock refuses
// overlaps, so only the parts not yet reserved are added.
Result<void> reserve_union(Memblock& mb, uint64_t base, uint64_t end) {
  std::vector<std::pair<uint64_t, uint64_t>> gaps;
  uint64_t cur = base;
  for (const MemblockRegion& r : mb.reserved()) {
    if (r.end() <= cur || r.base.value() >= end) continue;
    if (r.base.value() > cur) gaps.emplace_back(cur, r.base.value());
    cur = std::max(cur, r.end());
  }
  if (cur < end) gaps.emplace_back(cur, end);
  for (const auto& [s, e] : gaps) SPM_TRY(mb.reserve(PhysAddr(s), e - s));
  return {};
}

// Reserves [base, end) where it is memory: reserve_bootmem_region() only marks pfn_valid pages, and
// the holes of a present section already are PG_reserved (init_unavailable_range).
Result<void> reserve_in_memory(Memblock& mb, uint64_t base, uint64_t end) {
  std::vector<std::pair<uint64_t, uint64_t>> parts;
  for (const MemblockRegion& m : mb.memory()) {
    const uint64_t s = std::max(base, m.base.value()), e = std::min(end, m.end());
    if (s < e) parts.emplace_back(s, e);
  }
  for (const auto& [s, e] : parts) SPM_TRY(reserve_union(mb, s, e));
  return {};
}
}  // namespace

// setup_arch() order (arch/x86/kernel/setup.c, 6.1): early_reserve_memory() (the image),
// realmode_reserve() (the first 1 MiB), init_mem_mapping() (page tables from the top of RAM),
// setup_log_buf(), initmem_init() (NODE_DATA), then paging_init() -> sparse_init() (the vmemmap
// boot buffers). Every later allocation is top-down below these, which is why the boot buffer of a
// 4160M pc machine is [0x13ea00000, 0x142c00000) and section 10's memmap sits at pfn 0x13fe00.
// Allocations the model leaves out (mem_section roots, usemaps, ACPI tables, the swiotlb, percpu,
// hash tables) are smaller than the PMD alignment gap they fall into, or go below the buffer.
Result<void> Machine::reserve_boot_memory_locked() {
  if (!m_config.boot_reservations) return {};
  const BootReservations& br = *m_config.boot_reservations;
  const uint64_t page = m_arch.page_size();
  const PhysAddr any_lo(0), any_hi(~uint64_t{0});

  for (const PhysRange& r : br.kernel_image) {
    const uint64_t s = r.start.value() & ~(page - 1), e = (r.last.value() + page) & ~(page - 1);
    SPM_TRY(reserve_in_memory(m_memblock, s, e));
  }
  if (br.low_reserve) SPM_TRY(reserve_in_memory(m_memblock, 0, br.low_reserve));
  for (uint64_t i = 0; i < br.early_page_table_pages; ++i)
    SPM_TRY(m_memblock.alloc_top_down(page, page, any_lo, any_hi, MAX_NUMNODES));
  if (br.log_buf_len) {
    // The text, then the descriptor and info arrays (struct prb_desc, struct printk_info).
    const uint64_t count = br.log_buf_len >> 5;
    for (const uint64_t bytes : {br.log_buf_len, count * 24, count * 88})
      SPM_TRY(m_memblock.alloc_top_down((bytes + page - 1) & ~(page - 1), page, any_lo, any_hi, MAX_NUMNODES));
  }

  // Present sections per node, in order (memblocks_present(); a section shared by two nodes
  // belongs to the first).
  std::map<unsigned, std::vector<SectionNr>> present;
  std::set<uint64_t> seen;
  for (const MemblockRegion& r : m_memblock.memory()) {
    const SectionNr first = m_arch.pfn_to_section_nr(m_arch.phys_to_pfn(r.base));
    const SectionNr last = m_arch.pfn_to_section_nr(m_arch.phys_to_pfn(PhysAddr(r.end() - 1)));
    for (uint64_t s = first.value(); s <= last.value(); ++s)
      if (seen.insert(s).second) present[static_cast<unsigned>(r.nid)].push_back(SectionNr(s));
  }
  if (br.pgdat_size) {
    for (const auto& [nid, sections] : present) {
      SPM_TRY_ASSIGN(const PhysAddr at, m_memblock.alloc_top_down(br.pgdat_size, page, any_lo, any_hi, static_cast<int>(nid)));
      m_boot_pgdats.emplace_back(nid, PhysRange{at, PhysAddr(at.value() + br.pgdat_size - 1)});
    }
  }
  if (br.sparse_boot_buffer) {
    // sparse_buffer_init(): memblock_alloc_exact_nid_raw(map_count * section_map_size(),
    // section_map_size(), __pa(MAX_DMA_ADDRESS), ...) — one PMD-aligned block above ZONE_DMA.
    const uint64_t map = std::max(m_arch.section_memmap_bytes(), m_arch.pmd_size());
    const PhysAddr min_addr = m_arch.pfn_to_phys(boot_zone_limits(m_arch).max_pfn[0]);
    for (const auto& [nid, sections] : present) {
      auto at = m_memblock.alloc_top_down(sections.size() * map, map, min_addr, any_hi, static_cast<int>(nid));
      // 6.1 then populates each section from memblock one by one; the model keeps the layout
      // question to the buffer and leaves such a node's memmap pages unregistered.
      if (!at) continue;
      m_boot_memmap_buffers.push_back(BootMemmapBuffer{nid, *at, sections});
    }
  }
  return {};
}

void Machine::register_boot_memory_locked() {
  if (!m_config.boot_reservations) return;
  const BootReservations& br = *m_config.boot_reservations;
  const uint64_t page = m_arch.page_size();
  // get_page_bootmem(info, page, type): index = type, PG_private, private = info, one reference
  // more than the reserved page's own. These references are why offlining a block that holds a
  // boot memmap fails -EBUSY (has_unmovable_pages finds PG_reserved first).
  auto get_page_bootmem = [&](Pfn first, Pfn end, uint64_t info, uint64_t type) {
    for_each_page(*m_vmemmap, m_arch, first, end, [&](Pfn, Page& p) -> uint64_t {
      p.index = type;
      p.set(PG::private_);
      p.private_ = info;
      ++p.refcount;
      return 1;
    });
  };
  const uint64_t map = std::max(m_arch.section_memmap_bytes(), m_arch.pmd_size());
  for (const BootMemmapBuffer& b : m_boot_memmap_buffers) {
    // register_page_bootmem_memmap() with PSE: every page of each section's 2 MiB vmemmap block.
    for (size_t i = 0; i < b.sections.size(); ++i) {
      const Pfn first = m_arch.phys_to_pfn(PhysAddr(b.base.value() + i * map));
      get_page_bootmem(first, first + NrPages(map / page), b.sections[i].value(), SECTION_INFO);
    }
  }
  for (const auto& [nid, range] : m_boot_pgdats)
    get_page_bootmem(m_arch.phys_to_pfn(range.start), m_arch.phys_to_pfn(range.last) + NrPages(1), nid, NODE_INFO);

  // preallocate_vmalloc_pages(): GFP_KERNEL order-0 pages, the first the buddy hands out. They come
  // from the preferred (highest populated kernel) zone of the first node, and memblock_free_all()
  // freed its blocks in ascending order to the tail of the free lists, so they are its lowest free
  // pages: pfn 0x100000 on the pc machines, which is why offlining memory32 fails -EBUSY there.
  if (br.vmalloc_pgtable_pages && !m_nodes.empty()) {
    const Node& n = m_nodes.front();
    std::optional<ZoneType> zone;
    for (ZoneType z : {ZoneType::DMA, ZoneType::DMA32, ZoneType::Normal})
      if (n.zone(z).present_pages.value()) zone = z;
    for (uint64_t i = 0; zone && i < br.vmalloc_pgtable_pages; ++i) {
      const std::optional<Pfn> pfn = find_free_page_locked(n.nid, *zone, PfnRange{});
      if (!pfn) break;
      take_free_page_locked(*pfn);
      m_vmemmap->pfn_to_page(*pfn)->refcount = 1;
    }
  }
}

}  // namespace sparsemem
