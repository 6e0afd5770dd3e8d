// SectionTable: the section table, section activation/deactivation and the pfn predicates of
// Linux 6.1 mm/sparse.c and include/linux/mmzone.h. Readers lock-free; writers hold the hotplug lock.
#include "sparsemem/section.h"

#include <bit>

#include "internal/rcu.h"

namespace sparsemem {

RcuReadGuard::RcuReadGuard() { rcu::read_lock(); }
RcuReadGuard::~RcuReadGuard() { rcu::read_unlock(); }

namespace {
// RAII read section for the predicates below.
struct ReadSection {
  ReadSection() { rcu::read_lock(); }
  ~ReadSection() { rcu::read_unlock(); }
};
}  // namespace

bool MemSectionUsage::any() const {
  for (const auto& w : subsection_map)
    if (w.load(std::memory_order_relaxed)) return true;
  return false;
}

unsigned MemSectionUsage::weight() const {
  unsigned n = 0;
  for (const auto& w : subsection_map) n += std::popcount(w.load(std::memory_order_relaxed));
  return n;
}

SectionTable::SectionTable(const ArchProfile& arch, const Behaviour& behaviour, Vmemmap& vmemmap, KernelLog& log)
    : m_arch(arch),
      m_behaviour(behaviour),
      m_vmemmap(vmemmap),
      m_log(log),
      m_roots(new std::atomic<MemSection*>[arch.nr_section_roots()]()) {}

SectionTable::~SectionTable() {
  for (uint64_t r = 0; r < m_arch.nr_section_roots(); ++r) {
    MemSection* root = m_roots[r].load(std::memory_order_relaxed);
    if (!root) continue;
    for (uint64_t i = 0; i < m_arch.sections_per_root(); ++i) {
      MemSectionUsage* u = root[i].m_usage.load(std::memory_order_relaxed);
      if (u && !u->from_boot) delete u;
    }
    delete[] root;
  }
}

MemSection* SectionTable::find_mut(SectionNr nr) const {
  if (nr.value() >= m_arch.nr_mem_sections()) return nullptr;
  MemSection* root = m_roots[nr.value() / m_arch.sections_per_root()].load(std::memory_order_acquire);
  if (!root) return nullptr;
  return &root[nr.value() % m_arch.sections_per_root()];
}

const MemSection* SectionTable::find(SectionNr nr) const { return find_mut(nr); }

Result<MemSection*> SectionTable::ensure_section(SectionNr nr) {
  if (nr.value() >= m_arch.nr_mem_sections())
    return fail(Errno::Range, fmt::format("section {} beyond NR_MEM_SECTIONS ({})", nr.value(),
                                          m_arch.nr_mem_sections()));
  auto& slot = m_roots[nr.value() / m_arch.sections_per_root()];
  MemSection* root = slot.load(std::memory_order_acquire);
  if (!root) {
    // Roots are published with a release store and never freed while the table lives, so a
    // reader that saw the pointer can always dereference it (tcmalloc's never-free leaves).
    root = new MemSection[m_arch.sections_per_root()];
    slot.store(root, std::memory_order_release);
  }
  return &root[nr.value() % m_arch.sections_per_root()];
}

void SectionTable::bump_highest(SectionNr nr) {
  if (nr.value() > m_highest_present.load(std::memory_order_relaxed))
    m_highest_present.store(nr.value(), std::memory_order_release);
}

// The early-section rule (seed 004), decided here and nowhere else.
EarlyRule SectionTable::early_rule(SectionFlags flags) const {
  EarlyRule r;
  r.early = flags.has(SectionFlag::Early);
  if (!r.early) return r;
  switch (m_behaviour.early_memmap) {
    case EarlyMemmapRule::Permanent:
      // 6.1: "traditionally early sections always returned pfn_valid() for the entire section-sized
      // span", because their memmap is never partially removed.
      r.whole_section_valid = true;
      r.partial_add_reuses_memmap = true;
      r.partial_remove_keeps_memmap = true;
      break;
    case EarlyMemmapRule::LegacyDepopulate:
      // The bug: pfn_valid and section_activate still trust the boot memmap, deactivate removes it.
      r.whole_section_valid = true;
      r.partial_add_reuses_memmap = true;
      r.partial_remove_keeps_memmap = false;
      break;
    case EarlyMemmapRule::PartialRepopulate:
      // Dan Williams' design: an early section is an ordinary one once it is partly removed, so
      // validity follows the subsection map.
      break;
  }
  return r;
}

bool SectionTable::pfn_valid(Pfn pfn) const {
  if (!m_arch.pfn_survives_phys(pfn)) return false;
  // Seed 000: the pre-5.12 arm64 rule — a struct page counts only where memblock has mapped
  // memory, whatever the section says.
  if (m_behaviour.memblock_pfn_valid) return m_map_memory && m_map_memory->pfn_is_map_memory(pfn);
  const MemSection* ms = find(m_arch.pfn_to_section_nr(pfn));
  if (!ms) return false;
  const SectionFlags flags = ms->flags();
  if (!flags.has(SectionFlag::HasMemMap)) return false;
  if (early_rule(flags).whole_section_valid) return true;
  ReadSection rs;
  const MemSectionUsage* u = ms->usage();
  return u && u->test(m_arch.subsection_map_index(pfn));
}

bool SectionTable::pfn_section_valid(Pfn pfn) const {
  const MemSection* ms = find(m_arch.pfn_to_section_nr(pfn));
  if (!ms) return false;
  ReadSection rs;
  const MemSectionUsage* u = ms->usage();
  return u && u->test(m_arch.subsection_map_index(pfn));
}

bool SectionTable::pfn_in_present_section(Pfn pfn) const {
  const MemSection* ms = find(m_arch.pfn_to_section_nr(pfn));
  return ms && ms->flags().has(SectionFlag::Present);
}

bool SectionTable::pfn_is_online(Pfn pfn) const {
  if (!m_arch.pfn_survives_phys(pfn)) return false;
  const MemSection* ms = find(m_arch.pfn_to_section_nr(pfn));
  if (!ms) return false;
  const SectionFlags flags = ms->flags();
  if (!flags.has(SectionFlag::Online)) return false;
  // Spec §9.18: the <= 5.9 gate trusted SECTION_IS_ONLINE alone.
  if (m_behaviour.old_pfn_to_online_page) return true;
  {
    ReadSection rs;
    const MemSectionUsage* u = ms->usage();
    // Unlike pfn_valid there is no early-section exception: hole subsections are not online RAM.
    if (!u || !u->test(m_arch.subsection_map_index(pfn))) return false;
    if (m_behaviour.subsection_zone_device_map) {
      // Seed 001 proposal: ZONE_DEVICE is known by pfn from the section table.
      const unsigned i = m_arch.subsection_map_index(pfn).value();
      if ((u->zone_device_map[i / 64].load(std::memory_order_acquire) >> (i % 64)) & 1) return false;
      return true;
    }
  }
  if (!flags.has(SectionFlag::TaintZoneDevice)) return true;
  const PagemapLookup* lookup = m_pagemaps.load(std::memory_order_acquire);
  if (lookup && lookup->has_live_pagemap(pfn)) return false;
  return true;
}

std::vector<SectionNr> SectionTable::present_sections() const {
  std::vector<SectionNr> out;
  const uint64_t highest = m_highest_present.load(std::memory_order_acquire);
  const uint64_t spr = m_arch.sections_per_root();
  for (uint64_t r = 0; r * spr <= highest && r < m_arch.nr_section_roots(); ++r) {
    const MemSection* root = m_roots[r].load(std::memory_order_acquire);
    if (!root) continue;
    for (uint64_t i = 0; i < spr && r * spr + i <= highest; ++i)
      if (root[i].flags().has(SectionFlag::Present)) out.push_back(SectionNr(r * spr + i));
  }
  return out;
}

uint64_t SectionTable::subsection_mask_word(Pfn start, NrPages n, unsigned word) const {
  // Bits [first, last] of the subsection map covered by [start, start+n), inside one section.
  const unsigned first = m_arch.subsection_map_index(start).value();
  const unsigned last = m_arch.subsection_map_index(start + n - NrPages(1)).value();
  const unsigned lo = word * 64, hi = lo + 63;
  if (last < lo || first > hi) return 0;
  const unsigned a = first > lo ? first - lo : 0;
  const unsigned b = last < hi ? last - lo : 63;
  const uint64_t upper = b == 63 ? ~uint64_t{0} : ((uint64_t{1} << (b + 1)) - 1);
  return upper & ~((uint64_t{1} << a) - 1);
}

Result<void> SectionTable::memory_present(unsigned nid, Pfn start, Pfn end) {
  if (end <= start) return {};
  const SectionNr first = m_arch.pfn_to_section_nr(start);
  const SectionNr last = m_arch.pfn_to_section_nr(end - NrPages(1));
  if (last.value() >= m_arch.nr_mem_sections())
    return fail(Errno::Range, fmt::format("memory [{:#x}-{:#x}] beyond the physical limit (2^{} bytes)",
                                          m_arch.pfn_to_phys(start).value(),
                                          m_arch.pfn_to_phys(end).value() - 1, m_arch.max_physmem_bits));
  for (SectionNr nr = first; nr <= last; nr = nr.next()) {
    SPM_TRY_ASSIGN(MemSection * ms, ensure_section(nr));
    if (ms->m_flags.load(std::memory_order_relaxed) == 0) {
      ms->m_nid.store(nid, std::memory_order_relaxed);
      ms->m_flags.store(SectionFlags().with(SectionFlag::Present).with(SectionFlag::Online).bits(),
                        std::memory_order_release);
      bump_highest(nr);
    }
  }
  return {};
}

Result<void> SectionTable::sparse_init() {
  const std::vector<SectionNr> present = present_sections();
  size_t i = 0;
  while (i < present.size()) {
    // One boot allocation of usages per run of sections on the same node (spec §4.1 step 2).
    const unsigned nid = find(present[i])->nid();
    size_t j = i;
    while (j < present.size() && find(present[j])->nid() == nid) ++j;
    auto block = std::make_unique<MemSectionUsage[]>(j - i);
    bool failed = false;
    for (size_t k = i; k < j; ++k) {
      MemSection* ms = find_mut(present[k]);
      if (!failed) {
        const Pfn start = m_arch.section_nr_to_pfn(present[k]);
        if (auto r = m_vmemmap.populate(start, m_arch.pages_per_section(), nullptr, VmemmapOrigin::Boot); !r) {
          m_log.log(LogLevel::Err,
                    "sparse_init_nid: node[{}] memory map backing failed. Some memory will not be available.",
                    nid);
          failed = true;
        }
      }
      if (failed) {
        ms->m_flags.store(0, std::memory_order_release);
        continue;
      }
      MemSectionUsage* u = &block[k - i];
      u->from_boot = true;
      ms->m_usage.store(u, std::memory_order_release);
      const SectionFlags f =
          ms->flags().with(SectionFlag::HasMemMap).with(SectionFlag::Early);
      ms->m_flags.store(f.bits(), std::memory_order_release);
    }
    m_boot_usage_blocks.push_back(std::move(block));
    i = j;
  }
  return {};
}

void SectionTable::subsection_map_init(Pfn start, NrPages n) {
  Pfn pfn = start;
  const Pfn end = start + n;
  while (pfn < end) {
    const SectionNr nr = m_arch.pfn_to_section_nr(pfn);
    const Pfn sec_end = m_arch.section_nr_to_pfn(nr.next());
    const Pfn chunk_end = end < sec_end ? end : sec_end;
    MemSection* ms = find_mut(nr);
    MemSectionUsage* u = ms ? ms->m_usage.load(std::memory_order_relaxed) : nullptr;
    if (u) {
      for (unsigned w = 0; w < MemSectionUsage::kMaxSubsections / 64; ++w)
        u->subsection_map[w].fetch_or(subsection_mask_word(pfn, chunk_end - pfn, w), std::memory_order_release);
    }
    pfn = chunk_end;
  }
}

Result<void> SectionTable::add_pages(unsigned nid, Pfn start, NrPages n, VmemAltmap* altmap, unsigned vmemmap_shift) {
  if (altmap) {
    if (altmap->base_pfn != start || altmap->offset() > n) {
      m_log.log(LogLevel::Warn, "memory add fail, invalid altmap");
      return fail(Errno::Inval, "memory add fail, invalid altmap");
    }
    altmap->alloc = NrPages(0);
  }
  if (n.value() == 0 || !m_arch.subsection_aligned(start) || !m_arch.subsection_aligned(Pfn(n.value()))) {
    const std::string msg = fmt::format("Misaligned __add_pages start: {:#x} end: #{:x}", start.value(),
                                        start.value() + (n.value() ? n.value() - 1 : 0));
    m_log.warn("{}", msg);
    return fail(Errno::Inval, msg);
  }
  if (start.value() + n.value() > m_arch.max_pfn_limit() || start.value() + n.value() < start.value())
    return fail(Errno::Range, fmt::format("pfn range [{:#x}+{:#x}) beyond the physical limit", start.value(),
                                          n.value()));
  const CompoundMemmap compound{NrPages(vmemmap_shift < 64 ? uint64_t{1} << vmemmap_shift : 0), start};
  Pfn pfn = start;
  const Pfn end = start + n;
  while (pfn < end) {
    const Pfn sec_end = m_arch.section_nr_to_pfn(m_arch.pfn_to_section_nr(pfn).next());
    const Pfn chunk_end = end < sec_end ? end : sec_end;
    // 6.1 keeps the chunks already added when a later one fails (spec §9.10).
    SPM_TRY(sparse_add_section(nid, pfn, chunk_end - pfn, altmap, vmemmap_shift ? &compound : nullptr));
    pfn = chunk_end;
  }
  return {};
}

Result<void> SectionTable::sparse_add_section(unsigned nid, Pfn start, NrPages n, VmemAltmap* altmap,
                                              const CompoundMemmap* compound) {
  const SectionNr nr = m_arch.pfn_to_section_nr(start);
  SPM_TRY_ASSIGN(MemSection * ms, ensure_section(nr));
  MemSectionUsage* usage = ms->m_usage.load(std::memory_order_relaxed);
  uint64_t mask[MemSectionUsage::kMaxSubsections / 64];
  bool any = false;
  for (unsigned w = 0; w < std::size(mask); ++w) {
    mask[w] = subsection_mask_word(start, n, w);
    any |= mask[w] != 0;
    if (usage && (usage->subsection_map[w].load(std::memory_order_relaxed) & mask[w]))
      return fail(Errno::Exist, fmt::format("subsections of [{:#x}+{:#x}) already present", start.value(),
                                            n.value()));
  }
  if (!any) return fail(Errno::Inval, "empty subsection mask");

  const SectionFlags flags = ms->flags();
  const EarlyRule rule = early_rule(flags);
  // section_activate(): a partial add into an early section reuses the boot memmap (spec §4.3.3).
  if (!(n < m_arch.pages_per_section() && rule.early && rule.partial_add_reuses_memmap)) {
    // Populate before publishing the bits, so a lock-free reader that sees pfn_valid() can read
    // the descriptor.
    SPM_TRY(m_vmemmap.populate(start, n, altmap, VmemmapOrigin::Buddy, compound));
  }
  if (!usage) {
    usage = new MemSectionUsage();
    ms->m_usage.store(usage, std::memory_order_release);
  }
  for (unsigned w = 0; w < std::size(mask); ++w)
    if (mask[w]) usage->subsection_map[w].fetch_or(mask[w], std::memory_order_release);
  ms->m_nid.store(nid, std::memory_order_relaxed);
  ms->m_flags.store(flags.with(SectionFlag::Present).with(SectionFlag::HasMemMap).bits(),
                    std::memory_order_release);
  bump_highest(nr);
  return {};
}

void SectionTable::remove_pages(Pfn start, NrPages n, VmemAltmap* altmap) {
  if (n.value() == 0 || !m_arch.subsection_aligned(start) || !m_arch.subsection_aligned(Pfn(n.value()))) {
    m_log.warn("__remove_pages: misaligned range {:#x}+{:#x}", start.value(), n.value());
    return;
  }
  std::vector<PendingUnmap> unmaps;
  std::vector<MemSectionUsage*> frees;
  Pfn pfn = start;
  const Pfn end = start + n;
  while (pfn < end) {
    const Pfn sec_end = m_arch.section_nr_to_pfn(m_arch.pfn_to_section_nr(pfn).next());
    const Pfn chunk_end = end < sec_end ? end : sec_end;
    const MemSection* ms = find(m_arch.pfn_to_section_nr(pfn));
    if (!ms || !ms->flags().has(SectionFlag::HasMemMap))
      m_log.warn("__remove_pages: section {} has no memmap", m_arch.pfn_to_section_nr(pfn).value());
    else
      section_deactivate(pfn, chunk_end - pfn, altmap, unmaps, frees);
    pfn = chunk_end;
  }
  // Readers that saw the old subsection bits may still be reading descriptors or usages: wait for
  // them once for the whole range, then unmap and free.
  rcu::synchronize();
  m_vmemmap.depopulate(unmaps);
  for (MemSectionUsage* u : frees) delete u;
}

void SectionTable::section_deactivate(Pfn start, NrPages n, VmemAltmap* altmap, std::vector<PendingUnmap>& unmaps,
                                      std::vector<MemSectionUsage*>& frees) {
  const SectionNr nr = m_arch.pfn_to_section_nr(start);
  MemSection* ms = find_mut(nr);
  MemSectionUsage* usage = ms->m_usage.load(std::memory_order_relaxed);
  uint64_t mask[MemSectionUsage::kMaxSubsections / 64];
  bool complete = usage != nullptr;
  for (unsigned w = 0; w < std::size(mask); ++w) {
    mask[w] = subsection_mask_word(start, n, w);
    if (usage && (usage->subsection_map[w].load(std::memory_order_relaxed) & mask[w]) != mask[w]) complete = false;
  }
  if (!complete) {
    m_log.warn("section already deactivated ({:#x} + {})", start.value(), n.value());
    return;
  }
  const SectionFlags flags = ms->flags();
  const EarlyRule rule = early_rule(flags);
  for (unsigned w = 0; w < std::size(mask); ++w)
    if (mask[w]) usage->subsection_map[w].fetch_and(~mask[w], std::memory_order_release);
  const bool empty = !usage->any();
  if (empty) {
    ms->m_flags.store(flags.without(SectionFlag::HasMemMap).bits(), std::memory_order_release);
    if (!usage->from_boot) {
      ms->m_usage.store(nullptr, std::memory_order_release);
      frees.push_back(usage);
    }
  }
  const Pfn section_start = m_arch.section_nr_to_pfn(nr);
  if (!rule.early)
    unmaps.push_back({start, n, altmap});
  else if (empty)
    unmaps.push_back({section_start, m_arch.pages_per_section(), nullptr});  // the whole boot memmap
  else if (!rule.partial_remove_keeps_memmap)
    unmaps.push_back({start, n, altmap});
  else
    m_vmemmap.deferred_init_range(start, n);  // the memmap outlives the range: pending bytes become real
  if (empty) ms->m_flags.store(0, std::memory_order_release);
}

void SectionTable::set_online(Pfn start, NrPages n, bool online) {
  for (Pfn pfn = start; pfn < start + n; pfn = m_arch.section_nr_to_pfn(m_arch.pfn_to_section_nr(pfn).next())) {
    MemSection* ms = find_mut(m_arch.pfn_to_section_nr(pfn));
    if (!ms || !ms->flags().has(SectionFlag::HasMemMap)) {
      m_log.warn("section {} has no memmap", m_arch.pfn_to_section_nr(pfn).value());
      continue;
    }
    const SectionFlags f = ms->flags();
    ms->m_flags.store((online ? f.with(SectionFlag::Online) : f.without(SectionFlag::Online)).bits(),
                      std::memory_order_release);
  }
}

void SectionTable::taint_zone_device(Pfn start, NrPages n) {
  auto taint = [&](Pfn pfn) {
    if (MemSection* ms = find_mut(m_arch.pfn_to_section_nr(pfn)))
      ms->m_flags.store(ms->flags().with(SectionFlag::TaintZoneDevice).bits(), std::memory_order_release);
  };
  if (!m_arch.section_aligned(start)) taint(start);
  if (!m_arch.section_aligned(start + n)) taint(start + n);
}

void SectionTable::set_zone_device(Pfn start, NrPages n, bool is_device) {
  for (Pfn pfn = start; pfn < start + n;) {
    const SectionNr nr = m_arch.pfn_to_section_nr(pfn);
    const Pfn sec_end = m_arch.section_nr_to_pfn(nr.next());
    const Pfn chunk_end = start + n < sec_end ? start + n : sec_end;
    if (MemSection* ms = find_mut(nr)) {
      if (MemSectionUsage* u = ms->m_usage.load(std::memory_order_relaxed)) {
        for (unsigned w = 0; w < MemSectionUsage::kMaxSubsections / 64; ++w) {
          const uint64_t m = subsection_mask_word(pfn, chunk_end - pfn, w);
          if (is_device)
            u->zone_device_map[w].fetch_or(m, std::memory_order_release);
          else
            u->zone_device_map[w].fetch_and(~m, std::memory_order_release);
        }
      }
    }
    pfn = chunk_end;
  }
}

bool SectionTable::pfn_is_zone_device(Pfn pfn) const {
  const MemSection* ms = find(m_arch.pfn_to_section_nr(pfn));
  if (!ms) return false;
  ReadSection rs;
  const MemSectionUsage* u = ms->usage();
  if (!u) return false;
  const unsigned i = m_arch.subsection_map_index(pfn).value();
  return (u->zone_device_map[i / 64].load(std::memory_order_acquire) >> (i % 64)) & 1;
}

void SectionTable::set_pageblock_migratetype(Pfn pfn, Migratetype mt) {
  MemSection* ms = find_mut(m_arch.pfn_to_section_nr(pfn));
  if (!ms) return;
  MemSectionUsage* u = ms->m_usage.load(std::memory_order_relaxed);
  if (!u) return;
  const uint64_t in_section = pfn.value() & (m_arch.pages_per_section().value() - 1);
  u->pageblock_flags[in_section >> m_arch.pageblock_order] = mt;
}

Migratetype SectionTable::pageblock_migratetype(Pfn pfn) const {
  const MemSection* ms = find(m_arch.pfn_to_section_nr(pfn));
  const MemSectionUsage* u = ms ? ms->usage() : nullptr;
  if (!u) return Migratetype::Unmovable;
  const uint64_t in_section = pfn.value() & (m_arch.pages_per_section().value() - 1);
  return u->pageblock_flags[in_section >> m_arch.pageblock_order];
}

void SectionTable::check_invariants(InvariantReport& report) const {
  const uint64_t spr = m_arch.sections_per_root();
  const uint64_t highest = m_highest_present.load(std::memory_order_acquire);
  const NrPages ppss = m_arch.pages_per_subsection();
  for (uint64_t r = 0; r < m_arch.nr_section_roots(); ++r) {
    const MemSection* root = m_roots[r].load(std::memory_order_acquire);
    if (!root) continue;
    for (uint64_t i = 0; i < spr; ++i) {
      const MemSection& ms = root[i];
      const SectionNr nr(r * spr + i);
      const SectionFlags f = ms.flags();
      const MemSectionUsage* u = ms.m_usage.load(std::memory_order_acquire);
      if (f.bits() == 0 && !u) continue;
      const Pfn base = m_arch.section_nr_to_pfn(nr);
      if (f.has(SectionFlag::HasMemMap) && !u)
        report.fail("INV-SEC-1", "section {} has a memmap but no usage", nr.value());
      if (f.has(SectionFlag::HasMemMap) && !f.has(SectionFlag::Present))
        report.fail("INV-SEC-2", "section {} has a memmap but is not present", nr.value());
      if (f.has(SectionFlag::Online) && !f.has(SectionFlag::HasMemMap))
        report.fail("INV-SEC-5", "section {} online without memmap", nr.value());
      if (f.has(SectionFlag::Present) && nr.value() > highest)
        report.fail("INV-SEC-6", "present section {} above highest_present {}", nr.value(), highest);
      if (u) {
        for (unsigned b = m_arch.subsections_per_section(); b < MemSectionUsage::kMaxSubsections; ++b)
          if ((u->subsection_map[b / 64].load(std::memory_order_relaxed) >> (b % 64)) & 1) {
            report.fail("INV-USAGE-1", "section {} has subsection bit {} beyond the section", nr.value(), b);
            break;
          }
      }
      if (!f.has(SectionFlag::HasMemMap)) continue;
      const EarlyRule rule = early_rule(f);
      // Usually every subsection must be mapped and is: one walk of the section's memmap, a huge
      // PMD at a time, answers for all of them; otherwise each is checked to name the one missing.
      const bool all_must = rule.whole_section_valid || (u && u->weight() == m_arch.subsections_per_section());
      if (all_must && m_vmemmap.descriptors_mapped(base, m_arch.pages_per_section())) continue;
      for (unsigned s = 0; s < m_arch.subsections_per_section(); ++s) {
        const Pfn first = base + NrPages(s * ppss.value());
        const Pfn last = first + ppss - NrPages(1);
        const bool bit = u && u->test(SubsectionIdx(s));
        // Spec §5.1: pfn_valid() => the descriptor is mapped. Early sections answer for their whole
        // span, so the legacy seed 004 behaviour (valid but depopulated) is reported here.
        const bool must_be_mapped = bit || rule.whole_section_valid;
        if (must_be_mapped && (!m_vmemmap.descriptor_mapped(first) || !m_vmemmap.descriptor_mapped(last)))
          report.fail(rule.early ? "INV-SEC-3" : "INV-SEC-4",
                      "section {} subsection {} (pfn {:#x}) is {} but its memmap is not mapped", nr.value(), s,
                      first.value(), bit ? "populated" : "in an early section");
      }
    }
  }
}

}  // namespace sparsemem
