// Pending memmaps: sections whose descriptors are described by a run instead of written, and their
// materialisation on first access (memmap.h, DeferredSectionRun). Readers are lock-free; writers hold Deferred::mutex.
#include <algorithm>

#include "internal/deferred_memmap.h"

namespace sparsemem {

Vmemmap::Deferred::Deferred(uint64_t sections)
    : nr_sections(sections), roots(new std::atomic<Leaf*>[(sections + (1u << kLeafBits) - 1) >> kLeafBits]()) {}

std::optional<DeferredSectionRun> Vmemmap::Deferred::find(SectionNr nr) const {
  if (nr.value() >= nr_sections) return std::nullopt;
  const Leaf* leaf = roots[nr.value() >> kLeafBits].load(std::memory_order_acquire);
  if (!leaf) return std::nullopt;
  const uint32_t s = leaf->state[nr.value() & ((1u << kLeafBits) - 1)].load(std::memory_order_acquire);
  if (!(s & 1)) return std::nullopt;
  return DeferredSectionRun{nr, 1, static_cast<ZoneType>((s >> 2) & 7), s >> 8, (s & 2) != 0, (s & 32) != 0};
}

void Vmemmap::Deferred::store(SectionNr nr, uint32_t state) {
  std::atomic<Leaf*>& root = roots[nr.value() >> kLeafBits];
  Leaf* leaf = root.load(std::memory_order_relaxed);
  if (!leaf) {
    leaves.push_back(std::make_unique<Leaf>());
    leaf = leaves.back().get();
    root.store(leaf, std::memory_order_release);
  }
  std::atomic<uint32_t>& word = leaf->state[nr.value() & ((1u << kLeafBits) - 1)];
  const bool was = word.load(std::memory_order_relaxed) & 1;
  word.store(state, std::memory_order_release);
  if (was && !(state & 1)) pending.fetch_sub(1, std::memory_order_release);
  if (!was && (state & 1)) pending.fetch_add(1, std::memory_order_release);
}

void Vmemmap::defer_init(std::vector<DeferredSectionRun> runs) {
  for (const DeferredSectionRun& run : runs) defer_sections(run);
}

void Vmemmap::defer_sections(const DeferredSectionRun& run) {
  Deferred& d = *m_deferred;
  std::lock_guard<std::mutex> lock(d.mutex);
  for (uint64_t i = 0; i < run.nr_sections; ++i) {
    const SectionNr nr(run.first.value() + i);
    SPM_CHECK(nr.value() < d.nr_sections, "pending section beyond the section table");
    d.store(nr, Deferred::encode(run));
  }
}

uint64_t Vmemmap::deferred_pending_sections() const { return m_deferred->pending.load(std::memory_order_acquire); }

std::optional<DeferredSectionRun> Vmemmap::deferred_run(Pfn pfn) const {
  if (!deferred_pending_sections()) return std::nullopt;
  return m_deferred->find(m_arch.pfn_to_section_nr(pfn));
}

void Vmemmap::deferred_init_range(Pfn start, NrPages n) const {
  if (!deferred_pending_sections() || n.value() == 0) return;
  const SectionNr last = m_arch.pfn_to_section_nr(start + NrPages(n.value() - 1));
  for (SectionNr nr = m_arch.pfn_to_section_nr(start); nr <= last; nr = nr.next()) deferred_init_section(nr);
}

void Vmemmap::forget_pending(Pfn start, NrPages n) {
  if (!deferred_pending_sections() || n.value() == 0) return;
  const Pfn end = start + n;
  const SectionNr last = m_arch.pfn_to_section_nr(end - NrPages(1));
  for (SectionNr nr = m_arch.pfn_to_section_nr(start); nr <= last; nr = nr.next()) {
    const Pfn s = m_arch.section_nr_to_pfn(nr);
    if (s < start || s + m_arch.pages_per_section() > end) {
      deferred_init_section(nr);
      continue;
    }
    Deferred& d = *m_deferred;
    std::lock_guard<std::mutex> lock(d.mutex);
    if (d.find(nr)) d.store(nr, 0);
  }
}

// deferred_init_memmap_chunk() for one section: the bytes memmap_init_range() and
// memblock_free_all() (or online_pages()) write without deferral. Every descriptor is initialised
// for the run's zone and node, then either PG_reserved, or refcount 0 with a PG_buddy head of order
// MAX_ORDER-1 every 2^(MAX_ORDER-1) pages; an offlined run has no heads. The section is whole and
// aligned, so __free_pages_core never merges or splits differently.
void Vmemmap::deferred_init_section(SectionNr nr) const {
  Deferred& d = *m_deferred;
  if (!d.find(nr)) return;
  std::lock_guard<std::mutex> lock(d.mutex);
  const std::optional<DeferredSectionRun> run = d.find(nr);
  if (!run) return;  // another thread won the race
  const Pfn start = m_arch.section_nr_to_pfn(nr);
  const uint64_t pps = m_arch.pages_per_section().value();
  // Descriptors of one section are contiguous in the window (a section's memmap never crosses a
  // 1 GiB chunk), so one address serves the whole section.
  Page* first = raw_page(start);
  if (run->reserved) {
    init_page_range(first, pps, run->zone, run->nid, page_addr(start), true);
  } else {
    init_free_page_range(first, pps, run->zone, run->nid, page_addr(start));
    const unsigned order = m_arch.max_order - 1;
    for (uint64_t i = 0; i < pps && !run->offlined; i += uint64_t{1} << order) {
      first[i].set_type(PG_buddy);
      first[i].private_ = order;
    }
  }
  d.store(nr, 0);
}

// One descriptor of deferred_init_section()'s bytes; the tests compare the two pfn by pfn.
Page Vmemmap::pending_page(const DeferredSectionRun& run, Pfn pfn) const {
  Page p;
  init_single_page(p, run.zone, run.nid, page_addr(pfn));
  if (run.reserved) {
    p.set(PG::reserved);
    return p;
  }
  p.refcount = 0;
  const unsigned order = m_arch.max_order - 1;
  if (!run.offlined && !(pfn.value() & ((uint64_t{1} << order) - 1))) {
    p.set_type(PG_buddy);
    p.private_ = order;
  }
  return p;
}

}  // namespace sparsemem
