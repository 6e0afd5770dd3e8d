// ZONE_DEVICE memmap initialisation of Linux 6.1 (memmap_init_zone_device, and memmap_init_range for an altmap area):
// writes descriptors through Vmemmap's checked path only. Callers hold the hotplug lock or own the range.
#include <chrono>

#include "sparsemem/pagemap.h"

namespace sparsemem {

namespace {

// __init_zone_device_page(): a single ZONE_DEVICE page of the pgmap.
void init_zone_device_page(Page& p, const Vmemmap& vmemmap, Pfn pfn, unsigned nid, const DevPagemap& pgmap,
                           const Behaviour& behaviour) {
  init_single_page(p, ZoneType::Device, nid, vmemmap.page_addr(pfn));
  // Seed 001: 6.1 keeps PG_reserved on every ZONE_DEVICE page; the proposal drops it.
  if (behaviour.device_pages_reserved) p.set(PG::reserved);
  p.compound_head = reinterpret_cast<uint64_t>(&pgmap);  // page->pgmap (bit0 clear: not a tail)
  p.lru_prev = 0;                                        // page->zone_device_data
  // PRIVATE and COHERENT pages start free (refcount 0); the driver hands them out with
  // zone_device_page_init. The other types are "1-based": 1 means idle.
  if (pgmap.type == MemoryType::DevicePrivate || pgmap.type == MemoryType::DeviceCoherent) p.refcount = 0;
}

// prep_compound_head(): the compound metadata lives in the first tail page.
void prep_compound_head(Page& first_tail, unsigned order) {
  constexpr uint64_t kCompoundPageDtor = 1;
  const uint64_t mapcount_minus_one = 0xffffffffu;
  first_tail.lru_prev = kCompoundPageDtor | (uint64_t{order} << 8) | (mapcount_minus_one << 32);
  first_tail.mapping = (uint64_t{1} << order) << 32;  // compound_pincount 0, compound_nr
}

}  // namespace

Result<void> memmap_init_altmap_area(Vmemmap& vmemmap, SectionTable& sections, const Behaviour& behaviour,
                                     const DevPagemap& pgmap, unsigned nid) {
  if (!pgmap.altmap_valid()) return {};
  const ArchProfile& arch = vmemmap.arch();
  const VmemAltmap& a = pgmap.altmap;
  Pfn start = pgmap.range_start_pfn(arch, 0);
  // [base, base + reserve) is the driver's (the info block) and is never initialised.
  if (start == a.base_pfn) start = start + a.reserve;
  const Pfn end = a.base_pfn + a.offset();
  for (Pfn pfn = start; pfn < end; ++pfn) {
    SPM_TRY_ASSIGN(Page * p, vmemmap.writable_page(pfn));
    init_single_page(*p, ZoneType::Device, nid, vmemmap.page_addr(pfn));
    if (behaviour.device_pages_reserved) p->set(PG::reserved);
    if (arch.pageblock_aligned(pfn)) sections.set_pageblock_migratetype(pfn, Migratetype::Movable);
  }
  return {};
}

Result<void> memmap_init_zone_device(Vmemmap& vmemmap, SectionTable& sections, const Behaviour& behaviour,
                                     const DevPagemap& pgmap, unsigned range, unsigned nid, KernelLog& log) {
  const ArchProfile& arch = vmemmap.arch();
  const Pfn start = pgmap.pfn_first(arch, range);
  const Pfn end = pgmap.range_end_pfn(arch, range);
  if (start >= end) return {};
  const auto t0 = std::chrono::steady_clock::now();
  const NrPages per_compound = pgmap.vmemmap_nr();
  const unsigned order = pgmap.vmemmap_shift;
  // Descriptors per unit that are really there to write: a de-duplicated unit has 2 vmemmap
  // pages of its own, the rest alias the second (spec §4.14). Whether a unit was de-duplicated
  // is read from the vmemmap rather than re-derived: an EARLY section's partial add reuses the
  // boot memmap instead of populating it, so its units are whole (6.1.y's early-section rule).
  const uint64_t unique = 2 * (arch.page_size() / STRUCT_PAGE_SIZE);
  const bool may_dedup = vmemmap_can_optimize(arch, pgmap.altmap_valid() ? &pgmap.altmap : nullptr, per_compound);

  for (Pfn head = start; head < end; head += per_compound) {
    SPM_TRY_ASSIGN(Page * hp, vmemmap.writable_page(head));
    init_zone_device_page(*hp, vmemmap, head, nid, pgmap, behaviour);
    if (order == 0) continue;
    hp->set(PG::head);
    uint64_t k = per_compound.value();
    if (may_dedup && vmemmap.origin_of(head + NrPages(unique)) == VmemmapOrigin::Shared &&
        vmemmap.descriptor_mapped(head + NrPages(unique)))
      k = unique;
    const uint64_t head_addr = vmemmap.page_addr(head).value();
    for (uint64_t i = 1; i < k; ++i) {
      const Pfn tail = head + NrPages(i);
      SPM_TRY_ASSIGN(Page * tp, vmemmap.writable_page(tail));
      init_zone_device_page(*tp, vmemmap, tail, nid, pgmap, behaviour);
      tp->compound_head = head_addr | 1;  // prep_compound_tail()
      tp->refcount = 0;
      // 6.1 writes the first tail's compound metadata once the second tail is initialised: the
      // first tail must already be initialised, or its own initialisation would clear it.
      if (i == 2) {
        SPM_TRY_ASSIGN(Page * first_tail, vmemmap.writable_page(head + NrPages(1)));
        prep_compound_head(*first_tail, order);
      }
    }
  }
  // Every pageblock of the range is MOVABLE, whether or not its descriptors were written.
  const uint64_t pb = arch.pageblock_nr_pages().value();
  for (uint64_t pfn = (start.value() + pb - 1) & ~(pb - 1); pfn < end.value(); pfn += pb)
    sections.set_pageblock_migratetype(Pfn(pfn), Migratetype::Movable);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  log.log(LogLevel::Debug, "memmap_init_zone_device initialised {} pages in {}ms", (end - start).value(), ms);
  return {};
}

}  // namespace sparsemem
