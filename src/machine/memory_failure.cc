// Memory failure (mm/memory-failure.c, 6.1) for the pages the model owns: soft and hard offlining of
// free pages, num_poisoned_pages and its release when memory is removed. Entry points take the hotplug lock.
#include "internal/page_walk.h"
#include "sparsemem/machine.h"

namespace sparsemem {

namespace {
// pr_fmt of mm/memory-failure.c.
constexpr std::string_view kPrefix = "Memory failure: ";
}  // namespace

// take_page_off_buddy() + SetPageHWPoison + page_ref_inc + num_poisoned_pages_inc(): the page leaves
// the free lists for good with one reference; it stays in the zone's managed pages, as in 6.1.
void Machine::poison_free_page_locked(Pfn pfn) {
  take_free_page_locked(pfn);
  Page* p = m_vmemmap->pfn_to_page(pfn);
  p->set(PG::hwpoison);
  p->refcount = 1;
  ++m_num_poisoned_pages;
}

Result<void> Machine::soft_offline_page(Pfn pfn) {
  HotplugGuard g(m_hotplug_lock);
  if (!m_sections->pfn_valid(pfn)) return fail(Errno::NxIO, fmt::format("soft_offline_page: pfn {:#x} is not valid", pfn.value()));
  // Only online pages can be soft-offlined (esp., not ZONE_DEVICE).
  Page* p = m_sections->pfn_to_online_page(pfn);
  if (!p) return fail(Errno::Io, fmt::format("soft_offline_page: pfn {:#x} is not online memory", pfn.value()));
  if (p->test(PG::hwpoison)) {
    m_log.log(LogLevel::Info, "{}soft_offline_page: {:#x} page already poisoned", kPrefix, pfn.value());
    return {};
  }
  // get_hwpoison_page() == 0: a free buddy page. Anything else is in use and 6.1 would migrate it
  // (soft_offline_in_use_page), which the model does not do: refuse loudly, change nothing.
  if (p->refcount != 0 || p->test(PG::reserved) || !free_buddy_head_locked(pfn))
    return fail(Errno::NotSupp, fmt::format("sparsemem: soft offlining the page in use at pfn {:#x} (migration) is not modelled",
                                            pfn.value()));
  poison_free_page_locked(pfn);
  return {};
}

Result<void> Machine::memory_failure(Pfn pfn) {
  HotplugGuard g(m_hotplug_lock);
  Page* p = m_sections->pfn_to_online_page(pfn);
  if (!p) {
    if (m_sections->pfn_valid(pfn) && m_pgmap_registry.get_dev_pagemap(pfn, nullptr))
      return fail(Errno::NotSupp, fmt::format("sparsemem: memory failure of ZONE_DEVICE pfn {:#x} is not modelled", pfn.value()));
    m_log.log(LogLevel::Err, "{}{:#x}: memory outside kernel control", kPrefix, pfn.value());
    return fail(Errno::NxIO, "memory outside kernel control");
  }
  if (p->test(PG::hwpoison)) {
    m_log.log(LogLevel::Err, "{}{:#x}: already hardware poisoned", kPrefix, pfn.value());
    return fail(Errno::HwPoison, "already hardware poisoned");
  }
  // Free buddy page: the only kind the model recovers. In-use pages (kill processes, unmap,
  // truncate) are not modelled.
  if (p->refcount != 0 || p->test(PG::reserved) || !free_buddy_head_locked(pfn))
    return fail(Errno::NotSupp, fmt::format("sparsemem: memory failure of the page in use at pfn {:#x} is not modelled",
                                            pfn.value()));
  poison_free_page_locked(pfn);
  m_log.log(LogLevel::Err, "{}{:#x}: recovery action for free buddy page: Recovered", kPrefix, pfn.value());
  return {};
}

uint64_t Machine::num_poisoned_pages() const {
  HotplugGuard g(m_hotplug_lock);
  return m_num_poisoned_pages;
}

// clear_hwpoisoned_pages(), called by __remove_pages for each section's descriptors after the
// altmap's: poisoned pages stop counting. Pages onlined again since they were poisoned were
// re-initialised without the flag, so they keep counting forever, as in 6.1.
void Machine::clear_hwpoisoned_pages_locked(Pfn start, NrPages n) {
  if (m_num_poisoned_pages == 0) return;
  const uint64_t pps = m_arch.pages_per_section().value();
  for (Pfn pfn = start; pfn < start + n;) {
    const Pfn sec_end = std::min(start + n, Pfn((pfn.value() | (pps - 1)) + 1));
    // No memmap in this section: nothing to clear. A pending section holds no poisoned page
    // (poisoning takes the page out of the buddy, which writes the section).
    if (m_vmemmap->descriptor_mapped(pfn))
      for_each_page_or_pending(*m_vmemmap, m_arch, pfn, sec_end, [&](Pfn, Page& p) -> uint64_t {
        if (p.test(PG::hwpoison)) {
          p.clear(PG::hwpoison);
          --m_num_poisoned_pages;
        }
        return 1;
      }, [](Pfn, Pfn, const DeferredSectionRun&) { return true; });
    pfn = sec_end;
  }
}

}  // namespace sparsemem
