// Which boot sections deferred struct page init leaves pending (Machine::plan_deferred_init); the
// pending state itself and its materialisation belong to the Vmemmap (memmap.h, DeferredSectionRun).
#include <algorithm>

#include "sparsemem/machine.h"

namespace sparsemem {

// defer_init() in mm/page_alloc.c, 6.1, defers only the memmap_init_range() call whose range ends
// at the node's end, from the section after its first. When bytes are written is not observable
// (the kernel completes its deferred init before userspace runs), so the model defers every boot
// section one run can describe, in every zone: only a section the range covers in part, or one
// that is partly reserved (or NOMAP), is written at boot.
std::vector<DeferredSectionRun> Machine::plan_deferred_init(const std::vector<MemRange>& mem,
                                                            const std::vector<PfnRange>& reserved) const {
  std::vector<DeferredSectionRun> runs;
  const ZoneLimits lim = boot_zone_limits(m_arch);
  const NrPages pps = m_arch.pages_per_section();
  // Pages of [a, b) in memblock.reserved (both lists sorted; `ri` only moves forward).
  size_t ri = 0;
  auto reserved_pages = [&](Pfn a, Pfn b) {
    while (ri < reserved.size() && reserved[ri].end() <= a) ++ri;
    uint64_t n = 0;
    for (size_t i = ri; i < reserved.size() && reserved[i].start < b; ++i)
      n += (std::min(b, reserved[i].end()) - std::max(a, reserved[i].start)).value();
    return n;
  };
  for (const MemRange& r : mem) {
    if (r.nomap || r.nid >= m_nodes.size()) continue;
    Pfn zlo(0);
    for (unsigned z = 0; z <= static_cast<unsigned>(ZoneType::Normal); ++z) {
      const Pfn zhi = lim.max_pfn[z];
      const Pfn s = std::max(r.start, zlo), e = std::min(r.end, zhi);
      zlo = std::max(zlo, zhi);
      if (s >= e) continue;
      const Pfn first = m_arch.section_nr_to_pfn(m_arch.pfn_to_section_nr(s + pps - NrPages(1)));
      for (Pfn sec = first; sec + pps <= e; sec += pps) {
        // A boot section whose memmap sparse_init could not allocate stays as it is (INV-X-2).
        if (!m_vmemmap->descriptor_mapped(sec) || !m_vmemmap->descriptor_mapped(sec + pps - NrPages(1))) continue;
        const uint64_t res = reserved_pages(sec, sec + pps);
        if (res != 0 && res != pps.value()) continue;  // partly reserved: eager
        const SectionNr nr = m_arch.pfn_to_section_nr(sec);
        const bool is_reserved = res != 0;
        DeferredSectionRun* last = runs.empty() ? nullptr : &runs.back();
        if (last && last->first.value() + last->nr_sections == nr.value() && last->zone == static_cast<ZoneType>(z) &&
            last->nid == r.nid && last->reserved == is_reserved)
          ++last->nr_sections;
        else
          runs.push_back(DeferredSectionRun{nr, 1, static_cast<ZoneType>(z), r.nid, is_reserved});
      }
    }
  }
  std::sort(runs.begin(), runs.end(),
            [](const DeferredSectionRun& a, const DeferredSectionRun& b) { return a.first < b.first; });
  return runs;
}

}  // namespace sparsemem
