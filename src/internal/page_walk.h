// for_each_page(): walks the descriptors of a pfn range one section at a time. Private helper of
// the machine layer; the caller guarantees the range's memmap is mapped and holds the hotplug lock.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "sparsemem/arch.h"
#include "sparsemem/memmap.h"
#include "sparsemem/page.h"

namespace sparsemem {

// Calls f(pfn, page) for the pfns of [start, end); f returns how many pfns to advance (a free
// buddy block is skipped whole), or 0 to stop. Within a section the descriptors are contiguous in
// the vmemmap, so one pfn_to_page() lookup serves the whole section instead of one per page.
// A pending section (memmap.h, DeferredSectionRun) is first offered to on_pending(from, to, run),
// which returns true when it dealt with [from, to) from the run alone, false to have it read.
template <class F, class G>
void for_each_page_or_pending(const Vmemmap& vm, const ArchProfile& arch, Pfn start, Pfn end, F&& f, G&& on_pending) {
  for (Pfn pfn = start; pfn < end;) {
    const Pfn sec_end = std::min(end, arch.section_nr_to_pfn(arch.pfn_to_section_nr(pfn).next()));
    if (const std::optional<DeferredSectionRun> run = vm.deferred_run(pfn); run && on_pending(pfn, sec_end, *run)) {
      pfn = sec_end;
      continue;
    }
    Page* const base = vm.pfn_to_page(pfn);
    const Pfn base_pfn = pfn;
    while (pfn < sec_end) {
      const uint64_t step = f(pfn, base[(pfn - base_pfn).value()]);
      if (!step) return;
      pfn += NrPages(step);
    }
  }
}

template <class F>
void for_each_page(const Vmemmap& vm, const ArchProfile& arch, Pfn start, Pfn end, F&& f) {
  for_each_page_or_pending(vm, arch, start, end, std::forward<F>(f), [](Pfn, Pfn, const DeferredSectionRun&) { return false; });
}

}  // namespace sparsemem
