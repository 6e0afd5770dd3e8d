// Pending memmaps: sections whose descriptors are described by a run instead of written, and their materialisation on
// first access (memmap.h, DeferredSectionRun and DeviceMemmapRun). Readers are lock-free; writers hold Deferred::mutex.
#include <algorithm>

#include "internal/deferred_memmap.h"

namespace sparsemem {

Vmemmap::Deferred::Deferred(uint64_t sections)
    : nr_sections(sections),
      roots(new std::atomic<Leaf*>[(sections + (1u << kLeafBits) - 1) >> kLeafBits]()),
      run_blocks(new std::atomic<DeviceMemmapRun*>[kMaxRuns >> kRunBlockBits]()) {}

uint32_t Vmemmap::Deferred::word(SectionNr nr) const {
  if (nr.value() >= nr_sections) return 0;
  const Leaf* leaf = roots[nr.value() >> kLeafBits].load(std::memory_order_acquire);
  if (!leaf) return 0;
  return leaf->state[nr.value() & ((1u << kLeafBits) - 1)].load(std::memory_order_acquire);
}

std::optional<DeferredSectionRun> Vmemmap::Deferred::find(SectionNr nr) const {
  const uint32_t s = word(nr);
  if (!(s & kPending) || (s & kDevice)) return std::nullopt;
  return DeferredSectionRun{nr, 1, static_cast<ZoneType>((s >> 2) & 7), s >> 8, (s & 2) != 0, (s & 32) != 0};
}

const DeviceMemmapRun& Vmemmap::Deferred::device_run(uint32_t w) const {
  const uint32_t index = w >> 8;
  const DeviceMemmapRun* block = run_blocks[index >> kRunBlockBits].load(std::memory_order_acquire);
  return block[index & ((1u << kRunBlockBits) - 1)];
}

std::optional<uint32_t> Vmemmap::Deferred::add_device_run(const DeviceMemmapRun& run) {
  if (nr_runs == kMaxRuns) return std::nullopt;
  const uint32_t index = nr_runs++;
  std::atomic<DeviceMemmapRun*>& slot = run_blocks[index >> kRunBlockBits];
  DeviceMemmapRun* block = slot.load(std::memory_order_relaxed);
  if (!block) {
    run_owners.push_back(std::make_unique<DeviceMemmapRun[]>(std::size_t{1} << kRunBlockBits));
    block = run_owners.back().get();
    slot.store(block, std::memory_order_release);
  }
  // Readers reach the run only through a state word stored (with release) after this.
  block[index & ((1u << kRunBlockBits) - 1)] = run;
  return index;
}

void Vmemmap::Deferred::store(SectionNr nr, uint32_t state) {
  std::atomic<Leaf*>& root = roots[nr.value() >> kLeafBits];
  Leaf* leaf = root.load(std::memory_order_relaxed);
  if (!leaf) {
    leaves.push_back(std::make_unique<Leaf>());
    leaf = leaves.back().get();
    root.store(leaf, std::memory_order_release);
  }
  std::atomic<uint32_t>& w = leaf->state[nr.value() & ((1u << kLeafBits) - 1)];
  const uint32_t old = w.load(std::memory_order_relaxed);
  w.store(state, std::memory_order_release);
  auto count = [&](std::atomic<uint64_t>& n, bool was, bool is) {
    if (was && !is) n.fetch_sub(1, std::memory_order_release);
    if (!was && is) n.fetch_add(1, std::memory_order_release);
  };
  count(pending, old & kPending, state & kPending);
  count(run_pending, (old & kPending) && !(old & kDevice), (state & kPending) && !(state & kDevice));
  count(device_pending, (old & kPending) && (old & kDevice), (state & kPending) && (state & kDevice));
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

uint64_t Vmemmap::deferred_pending_sections() const { return m_deferred->run_pending.load(std::memory_order_acquire); }

uint64_t Vmemmap::device_pending_sections() const { return m_deferred->device_pending.load(std::memory_order_acquire); }

std::optional<DeferredSectionRun> Vmemmap::deferred_run(Pfn pfn) const {
  if (!m_deferred->pending.load(std::memory_order_acquire)) return std::nullopt;
  return m_deferred->find(m_arch.pfn_to_section_nr(pfn));
}

std::optional<DeviceMemmapRun> Vmemmap::device_run(Pfn pfn) const {
  if (!m_deferred->device_pending.load(std::memory_order_acquire)) return std::nullopt;
  const uint32_t w = m_deferred->word(m_arch.pfn_to_section_nr(pfn));
  if (!(w & Deferred::kPending) || !(w & Deferred::kDevice)) return std::nullopt;
  return m_deferred->device_run(w);
}

std::optional<Page> Vmemmap::pending_descriptor(Pfn pfn) const {
  if (!m_deferred->pending.load(std::memory_order_acquire)) return std::nullopt;
  const SectionNr nr = m_arch.pfn_to_section_nr(pfn);
  const uint32_t w = m_deferred->word(nr);
  if (!(w & Deferred::kPending)) return std::nullopt;
  if (!(w & Deferred::kDevice)) return pending_page(*m_deferred->find(nr), pfn);
  const DeviceMemmapRun& run = m_deferred->device_run(w);
  if (pfn < run.start || pfn >= run.end) return std::nullopt;
  const uint64_t unit = uint64_t{1} << run.order;
  return device_memmap_page(run, pfn, page_addr(run.start + NrPages((pfn - run.start).value() & ~(unit - 1))));
}

bool Vmemmap::defer_device(const DeviceMemmapRun& run) {
  if (run.start >= run.end || run.order >= 64) return false;
  const uint64_t n = (run.end - run.start).value();
  if (n & ((uint64_t{1} << run.order) - 1)) return false;
  // A missing descriptor must fault where memmap_init_zone_device() stores it (seed 004).
  if (!descriptors_mapped(run.start, NrPages(n))) return false;
  Deferred& d = *m_deferred;
  std::lock_guard<std::mutex> lock(d.mutex);
  const SectionNr first = m_arch.pfn_to_section_nr(run.start);
  const SectionNr last = m_arch.pfn_to_section_nr(run.end - NrPages(1));
  for (SectionNr nr = first; nr <= last; nr = nr.next())
    if (nr.value() >= d.nr_sections || (d.word(nr) & Deferred::kPending)) return false;
  const std::optional<uint32_t> index = d.add_device_run(run);
  if (!index) return false;
  for (SectionNr nr = first; nr <= last; nr = nr.next()) d.store(nr, Deferred::encode_device(*index));
  return true;
}

void Vmemmap::deferred_init_range(Pfn start, NrPages n) const {
  if (!m_deferred->pending.load(std::memory_order_acquire) || n.value() == 0) return;
  const SectionNr last = m_arch.pfn_to_section_nr(start + NrPages(n.value() - 1));
  for (SectionNr nr = m_arch.pfn_to_section_nr(start); nr <= last; nr = nr.next()) deferred_init_section(nr);
}

void Vmemmap::forget_pending(Pfn start, NrPages n) {
  if (!m_deferred->pending.load(std::memory_order_acquire) || n.value() == 0) return;
  const Pfn end = start + n;
  const SectionNr last = m_arch.pfn_to_section_nr(end - NrPages(1));
  for (SectionNr nr = m_arch.pfn_to_section_nr(start); nr <= last; nr = nr.next()) {
    Deferred& d = *m_deferred;
    const uint32_t w = d.word(nr);
    if (!(w & Deferred::kPending)) continue;
    // The pending pfns: the whole section, or a device run's part of it.
    Pfn s = m_arch.section_nr_to_pfn(nr);
    Pfn e = s + m_arch.pages_per_section();
    if (w & Deferred::kDevice) {
      const DeviceMemmapRun& run = d.device_run(w);
      s = std::max(s, run.start);
      e = std::min(e, run.end);
    }
    if (s < start || e > end) {
      deferred_init_section(nr);
      continue;
    }
    std::lock_guard<std::mutex> lock(d.mutex);
    if (d.word(nr) == w) d.store(nr, 0);
  }
}

// deferred_init_memmap_chunk() for one section: the bytes memmap_init_range() and
// memblock_free_all() (or online_pages()) write without deferral. Every descriptor is initialised
// for the run's zone and node, then either PG_reserved, or refcount 0 with a PG_buddy head of order
// MAX_ORDER-1 every 2^(MAX_ORDER-1) pages; an offlined run has no heads. The section is whole and
// aligned, so __free_pages_core never merges or splits differently.
void Vmemmap::deferred_init_section(SectionNr nr) const {
  Deferred& d = *m_deferred;
  if (!(d.word(nr) & Deferred::kPending)) return;
  std::lock_guard<std::mutex> lock(d.mutex);
  const uint32_t w = d.word(nr);
  if (!(w & Deferred::kPending)) return;  // another thread won the race
  if (w & Deferred::kDevice) {
    write_device_section(d.device_run(w), nr);
    d.store(nr, 0);
    return;
  }
  const std::optional<DeferredSectionRun> run = d.find(nr);
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

namespace sparsemem {

Page device_memmap_page(const DeviceMemmapRun& run, Pfn pfn, VmemmapAddr head_addr) {
  Page p = run.base;
  if (run.order == 0) return p;
  const uint64_t unit = uint64_t{1} << run.order;
  const uint64_t off = (pfn - run.start).value() & (unit - 1);
  if (off == 0) {
    p.set(PG::head);
    return p;
  }
  p.compound_head = head_addr.value() | 1;  // prep_compound_tail()
  p.refcount = 0;
  if (off == 1 && unit > 2) {
    // prep_compound_head(): the metadata lives in the first tail. 6.1 writes it once the second
    // tail is initialised, so an order-1 page (no second tail) never gets it.
    constexpr uint64_t kCompoundPageDtor = 1;
    const uint64_t mapcount_minus_one = 0xffffffffu;
    p.lru_prev = kCompoundPageDtor | (uint64_t{run.order} << 8) | (mapcount_minus_one << 32);
    p.mapping = unit << 32;  // compound_pincount 0, compound_nr
  }
  return p;
}

// memmap_init_zone_device()'s bytes for the run's part of section nr, a vmemmap page at a time
// (pfn_to_page gives a pending compound PMD its host memory first). A de-duplicated unit's alias
// page is skipped when the tail page it maps was written earlier in this call; otherwise (a later
// section of a 1 GiB unit) its descriptors are written through it: the same tail bytes, into the
// tail page the aliases share.
void Vmemmap::write_device_section(const DeviceMemmapRun& run, SectionNr nr) const {
  const Pfn sec = m_arch.section_nr_to_pfn(nr);
  const Pfn from = std::max(sec, run.start);
  const Pfn to = std::min(sec + m_arch.pages_per_section(), run.end);
  const uint64_t per_vmemmap_page = m_arch.page_size() / STRUCT_PAGE_SIZE;
  const uint64_t unit = uint64_t{1} << run.order;
  Page head{}, first_tail{}, tail{};
  Pfn unit_head(~uint64_t{0});
  for (Pfn pfn = from; pfn < to;) {
    const uint64_t n = std::min((to - pfn).value(), per_vmemmap_page - pfn.value() % per_vmemmap_page);
    if (origin_of(pfn) == VmemmapOrigin::Shared) {
      const Pfn aliased = run.start + NrPages((pfn - run.start).value() & ~(unit - 1)) + NrPages(per_vmemmap_page);
      if (aliased >= from && aliased < pfn) {
        pfn += NrPages(n);
        continue;
      }
    }
    Page* out = raw_page(pfn);
    for (uint64_t i = 0; i < n; ++i, ++pfn) {
      const Pfn h = run.start + NrPages((pfn - run.start).value() & ~(unit - 1));
      if (h != unit_head) {
        unit_head = h;
        const VmemmapAddr addr = page_addr(h);
        head = device_memmap_page(run, h, addr);
        first_tail = unit > 1 ? device_memmap_page(run, h + NrPages(1), addr) : head;
        tail = unit > 2 ? device_memmap_page(run, h + NrPages(2), addr) : first_tail;
      }
      const uint64_t off = (pfn - h).value();
      out[i] = off == 0 ? head : off == 1 ? first_tail : tail;
    }
  }
}

}  // namespace sparsemem
