// Deferred struct page init: the pending boot sections of a Vmemmap and their materialisation on
// first access (memmap.h, DeferredSectionRun). Lock-free readers test a done bit; writers hold Deferred::mutex.
#include <algorithm>

#include "internal/deferred_memmap.h"

namespace sparsemem {

const DeferredSectionRun* Vmemmap::Deferred::find(SectionNr nr, uint64_t& bit) const {
  auto it = std::upper_bound(runs.begin(), runs.end(), nr,
                             [](SectionNr n, const DeferredSectionRun& r) { return n < r.first; });
  if (it == runs.begin()) return nullptr;
  --it;
  if (nr.value() - it->first.value() >= it->nr_sections) return nullptr;
  const size_t i = static_cast<size_t>(it - runs.begin());
  bit = first_bit[i] + (nr.value() - it->first.value());
  return &*it;
}

void Vmemmap::defer_init(std::vector<DeferredSectionRun> runs) {
  SPM_CHECK(!m_deferred, "defer_init called twice");
  auto d = std::make_unique<Deferred>();
  uint64_t bits = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    SPM_CHECK(i == 0 || runs[i - 1].first.value() + runs[i - 1].nr_sections <= runs[i].first.value(),
              "deferred runs must be sorted and disjoint");
    d->first_bit.push_back(bits);
    bits += runs[i].nr_sections;
  }
  d->runs = std::move(runs);
  d->done.reset(new std::atomic<uint64_t>[(bits + 63) / 64]());
  d->pending.store(bits, std::memory_order_release);
  m_deferred = std::move(d);
}

uint64_t Vmemmap::deferred_pending_sections() const {
  return m_deferred ? m_deferred->pending.load(std::memory_order_acquire) : 0;
}

const DeferredSectionRun* Vmemmap::deferred_run(Pfn pfn) const {
  if (!deferred_pending_sections()) return nullptr;
  uint64_t bit = 0;
  const DeferredSectionRun* run = m_deferred->find(m_arch.pfn_to_section_nr(pfn), bit);
  return run && !m_deferred->is_done(bit) ? run : nullptr;
}

void Vmemmap::deferred_init_range(Pfn start, NrPages n) const {
  if (!deferred_pending_sections() || n.value() == 0) return;
  const SectionNr last = m_arch.pfn_to_section_nr(start + NrPages(n.value() - 1));
  for (SectionNr nr = m_arch.pfn_to_section_nr(start); nr <= last; nr = nr.next()) deferred_init_section(nr);
}

// deferred_init_memmap_chunk() for one section: the bytes memmap_init_range() and
// memblock_free_all() write at boot without deferral — every descriptor initialised for the run's
// zone and node, then either PG_reserved, or refcount 0 with a PG_buddy head of order
// MAX_ORDER-1 every 2^(MAX_ORDER-1) pages (the section is whole and aligned, so __free_pages_core
// never merges or splits differently).
void Vmemmap::deferred_init_section(SectionNr nr) const {
  Deferred& d = *m_deferred;
  uint64_t bit = 0;
  const DeferredSectionRun* run = d.find(nr, bit);
  if (!run || d.is_done(bit)) return;
  std::lock_guard<std::mutex> lock(d.mutex);
  if (d.is_done(bit)) return;  // another thread won the race
  const Pfn start = m_arch.section_nr_to_pfn(nr);
  const uint64_t pps = m_arch.pages_per_section().value();
  // Descriptors of one section are contiguous in the window (a section's memmap never crosses a
  // 1 GiB chunk), so one address serves the whole section.
  Page* first = raw_page(start);
  init_page_range(first, pps, run->zone, run->nid, page_addr(start), run->reserved);
  if (!run->reserved) {
    const unsigned order = m_arch.max_order - 1;
    for (uint64_t i = 0; i < pps; ++i) first[i].refcount = 0;
    for (uint64_t i = 0; i < pps; i += uint64_t{1} << order) {
      first[i].set_type(PG_buddy);
      first[i].private_ = order;
    }
  }
  d.done[bit / 64].fetch_or(uint64_t{1} << (bit % 64), std::memory_order_release);
  d.pending.fetch_sub(1, std::memory_order_release);
}

}  // namespace sparsemem
