// for_each_page(): walks the descriptors of a pfn range one section at a time. Private helper of
// the machine layer; the caller guarantees the range's memmap is mapped and holds the hotplug lock.
#pragma once

#include <algorithm>
#include <cstdint>

#include "sparsemem/arch.h"
#include "sparsemem/memmap.h"
#include "sparsemem/page.h"

namespace sparsemem {

// Calls f(pfn, page) for the pfns of [start, end); f returns how many pfns to advance (a free
// buddy block is skipped whole), or 0 to stop. Within a section the descriptors are contiguous in
// the vmemmap, so one pfn_to_page() lookup serves the whole section instead of one per page.
template <class F>
void for_each_page(const Vmemmap& vm, const ArchProfile& arch, Pfn start, Pfn end, F&& f) {
  for (Pfn pfn = start; pfn < end;) {
    const Pfn sec_end = std::min(end, arch.section_nr_to_pfn(arch.pfn_to_section_nr(pfn).next()));
    Page* const base = vm.pfn_to_page(pfn);
    const Pfn base_pfn = pfn;
    while (pfn < sec_end) {
      const uint64_t step = f(pfn, base[(pfn - base_pfn).value()]);
      if (!step) return;
      pfn += NrPages(step);
    }
  }
}

}  // namespace sparsemem
