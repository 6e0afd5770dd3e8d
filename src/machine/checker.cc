// Machine::check(): aggregates the per-structure invariants and checks the cross-structure ones
// (sections against zones and pages, memblock against sections). Takes the hotplug lock.
#include "sparsemem/checker.h"

#include <mutex>

namespace sparsemem {

InvariantReport Machine::check() const {
  InvariantReport report;
  HotplugGuard g(m_hotplug_lock);
  m_vmemmap->check_invariants(report);
  m_sections->check_invariants(report);
  m_memblock.check_invariants(report);
  m_iomem.check_invariants(report);
  for (const Node& n : m_nodes) n.check_invariants(report);
  check_cross(report);
  check_devmem_locked(report);
  check_hotplug_locked(report);
  return report;
}

// INV-X-1: pfn_to_online_page(pfn) != nullptr => the descriptor is readable, its zone is not
//          ZONE_DEVICE, and unless it is a reserved hole its zone's span contains pfn (spec §5.4). Checked on the first
//          pfn of every populated subsection of every online section.
// INV-X-2: every memblock.memory range lies in sections that are present and have a memmap.
void Machine::check_cross(InvariantReport& report) const {
  const NrPages ppss = m_arch.pages_per_subsection();
  // INV-DEFER-1's "present": every pending section is one of the present sections walked here.
  uint64_t pending_present = 0;
  for (const SectionNr nr : m_sections->present_sections()) {
    const MemSection* ms = m_sections->find(nr);
    if (!ms->flags().has(SectionFlag::Online)) {
      const std::optional<DeferredSectionRun> run = m_vmemmap->deferred_run(m_arch.section_nr_to_pfn(nr));
      pending_present += run.has_value();
      if (run && (!run->offlined || !ms->flags().has(SectionFlag::HasMemMap)))
        report.fail("INV-DEFER-1", "pending section {} is not online", nr.value());
      continue;
    }
    const Pfn base = m_arch.section_nr_to_pfn(nr);
    // INV-DEFER-1 (memmap.h): a pending section is checked from its run, never by reading it.
    if (const std::optional<DeferredSectionRun> run = m_vmemmap->deferred_run(base)) {
      ++pending_present;
      if (run->offlined) report.fail("INV-DEFER-1", "online section {} is pending as offlined", nr.value());
      const Zone* zone = run->nid < m_nodes.size() ? &m_nodes[run->nid].zone(run->zone) : nullptr;
      if (!ms->flags().has(SectionFlag::HasMemMap) || !zone || zone->is_empty() ||
          !PfnRange{zone->zone_start_pfn, zone->spanned_pages}.contains(base) ||
          !PfnRange{zone->zone_start_pfn, zone->spanned_pages}.contains(base + m_arch.pages_per_section() - NrPages(1)))
        report.fail("INV-DEFER-1", "pending section {} (node {} zone {}) is not inside its zone's span with a memmap",
                    nr.value(), run->nid, zone_name(run->zone));
      continue;
    }
    for (unsigned s = 0; s < m_arch.subsections_per_section(); ++s) {
      const Pfn pfn = base + NrPages(s * ppss.value());
      if (!m_sections->pfn_is_online(pfn)) continue;
      auto page = m_vmemmap->read_page(pfn);
      if (!page) {
        report.fail("INV-X-1", "pfn {:#x} is online but its descriptor faults: {}", pfn.value(),
                    page.error().message);
        continue;
      }
      const ZoneType zt = page->zone();
      const unsigned nid = page->nid();
      // Hole pfns inside a populated subsection are online but reserved, and may lie outside every
      // zone span (pfn 0 below DMA's start at pfn 1 on a pc machine); only usable pages must be
      // inside the span of the zone their descriptor names.
      if (zt == ZoneType::Device || nid >= m_nodes.size())
        report.fail("INV-X-1", "online pfn {:#x} has zone {} node {}", pfn.value(), zone_name(zt), nid);
      else if (!page->test(PG::reserved) &&
               (m_nodes[nid].zone(zt).is_empty() ||
                !PfnRange{m_nodes[nid].zone(zt).zone_start_pfn, m_nodes[nid].zone(zt).spanned_pages}.contains(pfn)))
        report.fail("INV-X-1", "online pfn {:#x} has zone {} node {} whose span does not contain it",
                    pfn.value(), zone_name(zt), nid);
    }
  }
  // Lock-free readers may write pending sections meanwhile, which only lowers the total; nothing
  // can make one pending under the hotplug lock. So more pending now than seen is a section the
  // walk did not find: pending while not present (left behind by a removal).
  if (const uint64_t total = m_vmemmap->deferred_pending_sections(); total > pending_present)
    report.fail("INV-DEFER-1", "{} pending sections are not present", total - pending_present);
  for (const MemRange& r : memory_pfn_ranges()) {
    for (SectionNr nr = m_arch.pfn_to_section_nr(r.start); nr <= m_arch.pfn_to_section_nr(r.end - NrPages(1));
         nr = nr.next()) {
      const MemSection* ms = m_sections->find(nr);
      if (!ms || !ms->flags().has(SectionFlag::Present) || !ms->flags().has(SectionFlag::HasMemMap)) {
        report.fail("INV-X-2", "memblock range [{:#x}-{:#x}) has section {} without a memmap", r.start.value(),
                    r.end.value(), nr.value());
        break;
      }
    }
  }
}

}  // namespace sparsemem
