// DevPagemap reference counting and the pgmap registry (pgmap_array) of Linux 6.1 mm/memremap.c.
// Registry readers are lock-free under RCU; writers are serialised by the hotplug lock and retire old vectors after a grace period.
#include "sparsemem/pagemap.h"

#include <algorithm>

#include "internal/rcu.h"

namespace sparsemem {

const char* memory_type_name(MemoryType t) {
  switch (t) {
    case MemoryType::DevicePrivate: return "private";
    case MemoryType::DeviceCoherent: return "coherent";
    case MemoryType::FsDax: return "fsdax";
    case MemoryType::Generic: return "generic";
    case MemoryType::PciP2pdma: return "p2pdma";
    case MemoryType::Invalid: break;
  }
  return "invalid";
}

Pfn DevPagemap::pfn_first(const ArchProfile& arch, unsigned i) const {
  const Pfn first = range_start_pfn(arch, i);
  if (i == 0 && altmap_valid()) return first + altmap.offset();
  return first;
}

uint64_t DevPagemap::pfn_len(const ArchProfile& arch, unsigned i) const {
  const Pfn first = pfn_first(arch, i);
  const Pfn end = range_end_pfn(arch, i);
  if (first >= end || vmemmap_shift >= 64) return 0;
  return (end - first).value() >> vmemmap_shift;
}

bool DevPagemap::pfn_valid_in(const ArchProfile& arch, Pfn pfn) const {
  for (unsigned i = 0; i < ranges.size(); ++i)
    if (pfn >= range_start_pfn(arch, i) && pfn < range_end_pfn(arch, i)) return pfn >= pfn_first(arch, i);
  return false;
}

bool DevPagemap::tryget_live() {
  uint64_t v = m_ref.load(std::memory_order_relaxed);
  do {
    if (v & kDead) return false;
  } while (!m_ref.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_relaxed));
  return true;
}

void DevPagemap::get(uint64_t n) {
  const uint64_t old = m_ref.fetch_add(n, std::memory_order_relaxed);
  SPM_CHECK((old & ~kDead) != 0, "DevPagemap::get without a reference held");
}

void DevPagemap::put(uint64_t n) {
  const uint64_t old = m_ref.fetch_sub(n, std::memory_order_acq_rel);
  SPM_CHECK((old & ~kDead) >= n, "DevPagemap reference count underflow");
  if ((old & ~kDead) != n || !(old & kDead)) return;
  // The last reference of a killed count: wake memunmap_pages. Notify under the mutex so the
  // waiter cannot return and free the object while this thread still touches it.
  std::lock_guard g(m_zero_mutex);
  m_zero = true;
  m_zero_cv.notify_all();
}

void PagemapLifecycle::start(DevPagemap& pgmap) {
  pgmap.m_ref.store(1, std::memory_order_release);
  pgmap.m_bulk_refs.store(0, std::memory_order_relaxed);
  pgmap.m_nr_mapped.store(0, std::memory_order_relaxed);
  std::lock_guard g(pgmap.m_zero_mutex);
  pgmap.m_zero = false;
}

void PagemapLifecycle::set_nr_mapped(DevPagemap& pgmap, unsigned n) {
  pgmap.m_nr_mapped.store(n, std::memory_order_release);
}

void PagemapLifecycle::set_mapped(DevPagemap& pgmap, bool mapped) {
  pgmap.m_mapped.store(mapped, std::memory_order_release);
}

void PagemapLifecycle::set_nid(DevPagemap& pgmap, unsigned nid) { pgmap.m_nid.store(nid, std::memory_order_release); }

void PagemapLifecycle::add_bulk(DevPagemap& pgmap, uint64_t n) {
  if (n == 0) return;
  pgmap.get(n);
  pgmap.m_bulk_refs.fetch_add(n, std::memory_order_relaxed);
}

void PagemapLifecycle::kill(DevPagemap& pgmap) { pgmap.m_ref.fetch_or(DevPagemap::kDead, std::memory_order_acq_rel); }

void PagemapLifecycle::drop_initial_and_bulk(DevPagemap& pgmap) {
  const uint64_t bulk = pgmap.m_bulk_refs.exchange(0, std::memory_order_relaxed);
  pgmap.put(bulk + 1);
}

void PagemapLifecycle::wait_for_zero(DevPagemap& pgmap) {
  std::unique_lock g(pgmap.m_zero_mutex);
  pgmap.m_zero_cv.wait(g, [&] { return pgmap.m_zero; });
}

void put_dev_pagemap(DevPagemap* pgmap) {
  if (pgmap) pgmap->put(1);
}

PgmapRegistry::PgmapRegistry(const ArchProfile& arch) : m_arch(arch), m_current(new Snapshot()) {}

void PgmapRegistry::attach(SectionTable& sections) {
  m_sections = &sections;
  sections.set_pagemap_lookup(this);
}

PgmapRegistry::~PgmapRegistry() {
  if (m_sections) {
    m_sections->set_pagemap_lookup(nullptr);
    // A reader that loaded the lookup pointer may still be inside has_live_pagemap.
    rcu::synchronize();
  }
  delete m_current.load(std::memory_order_acquire);
}

const PgmapRegistry::Entry* PgmapRegistry::find(const Snapshot& s, Pfn pfn) const {
  auto it = std::upper_bound(s.entries.begin(), s.entries.end(), pfn,
                             [](Pfn p, const Entry& e) { return p < e.start; });
  if (it == s.entries.begin()) return nullptr;
  --it;
  return pfn < it->end ? &*it : nullptr;
}

DevPagemap* PgmapRegistry::get_dev_pagemap(Pfn pfn, DevPagemap* cached) const {
  if (cached) {
    // Only ranges[0] is compared, as 6.1 does (spec §9.12): a pfn in a later range of the same
    // pgmap drops the cached reference and looks the pgmap up again.
    const PhysRange& r0 = cached->ranges.front();
    const uint64_t phys = pfn.value() << m_arch.page_shift;
    if (pfn.value() <= (UINT64_MAX >> m_arch.page_shift) && phys >= r0.start.value() &&
        phys <= r0.last.value())
      return cached;
    put_dev_pagemap(cached);
  }
  rcu::read_lock();
  const Entry* e = find(*m_current.load(std::memory_order_acquire), pfn);
  DevPagemap* pgmap = e && e->pgmap->tryget_live() ? e->pgmap : nullptr;
  rcu::read_unlock();
  return pgmap;
}

bool PgmapRegistry::has_live_pagemap(Pfn pfn) const {
  rcu::read_lock();
  const Entry* e = find(*m_current.load(std::memory_order_acquire), pfn);
  const bool live = e && e->pgmap->live();
  rcu::read_unlock();
  return live;
}

DevPagemap* PgmapRegistry::lookup_racy(Pfn pfn) const {
  rcu::read_lock();
  const Entry* e = find(*m_current.load(std::memory_order_acquire), pfn);
  DevPagemap* pgmap = e ? e->pgmap : nullptr;
  rcu::read_unlock();
  return pgmap;
}

void PgmapRegistry::publish(Snapshot* next) {
  const Snapshot* old = m_current.exchange(next, std::memory_order_acq_rel);
  // Readers that loaded `old` leave their read sections before it is freed.
  rcu::synchronize();
  delete old;
}

namespace {
// The intervals of `in` with [start, end) cut out.
std::vector<PgmapRegistry::Entry> without(const std::vector<PgmapRegistry::Entry>& in, Pfn start, Pfn end) {
  std::vector<PgmapRegistry::Entry> out;
  out.reserve(in.size() + 1);
  for (const auto& e : in) {
    if (e.end <= start || e.start >= end) {
      out.push_back(e);
      continue;
    }
    if (e.start < start) out.push_back({e.start, start, e.pgmap});
    if (e.end > end) out.push_back({end, e.end, e.pgmap});
  }
  return out;
}
}  // namespace

void PgmapRegistry::store(PfnRange range, DevPagemap* pgmap) {
  if (range.empty()) return;
  std::lock_guard g(m_writer);
  auto* next = new Snapshot();
  next->entries = without(m_current.load(std::memory_order_relaxed)->entries, range.start, range.end());
  auto at = std::lower_bound(next->entries.begin(), next->entries.end(), range.start,
                             [](const Entry& e, Pfn p) { return e.start < p; });
  next->entries.insert(at, Entry{range.start, range.end(), pgmap});
  publish(next);
}

void PgmapRegistry::erase(PfnRange range) {
  if (range.empty()) return;
  std::lock_guard g(m_writer);
  auto* next = new Snapshot();
  next->entries = without(m_current.load(std::memory_order_relaxed)->entries, range.start, range.end());
  publish(next);
}

std::vector<PgmapRegistry::Entry> PgmapRegistry::entries() const {
  rcu::read_lock();
  std::vector<Entry> out = m_current.load(std::memory_order_acquire)->entries;
  rcu::read_unlock();
  return out;
}

void PgmapRegistry::check_invariants(InvariantReport& report) const {
  const std::vector<Entry> es = entries();
  for (size_t i = 0; i < es.size(); ++i) {
    if (es[i].start >= es[i].end)
      report.fail("INV-PGMAP-1", "pgmap_array interval [{:#x}-{:#x}) is empty", es[i].start.value(),
                  es[i].end.value());
    if (!es[i].pgmap)
      report.fail("INV-PGMAP-1", "pgmap_array interval [{:#x}-{:#x}) names no pgmap", es[i].start.value(),
                  es[i].end.value());
    if (i > 0 && es[i - 1].end > es[i].start)
      report.fail("INV-PGMAP-1", "pgmap_array intervals [{:#x}-{:#x}) and [{:#x}-{:#x}) overlap",
                  es[i - 1].start.value(), es[i - 1].end.value(), es[i].start.value(), es[i].end.value());
  }
}

}  // namespace sparsemem
