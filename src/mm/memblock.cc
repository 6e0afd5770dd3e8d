// memblock.memory and memblock.reserved of memblock.h: validated adds, removal, flag and node updates, lookups.
// Owned by the mm layer; callers serialise modifications as memblock.h states.
#include "sparsemem/memblock.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace sparsemem {

Result<void> Memblock::validate_range(PhysAddr base, uint64_t size) const {
  const uint64_t mask = m_arch.page_size() - 1;
  if (size == 0) return fail(Errno::Inval, fmt::format("memblock: empty range at {:#x}", base.value()));
  if ((base.value() & mask) != 0 || (size & mask) != 0)
    return fail(Errno::Inval, fmt::format("memblock: range {:#x}+{:#x} is not page aligned", base.value(), size));
  const uint64_t limit = uint64_t{1} << m_arch.max_physmem_bits;
  if (base.value() > limit || size > limit - base.value())
    return fail(Errno::Range, fmt::format("memblock: range {:#x}+{:#x} beyond the {}-bit physical limit", base.value(),
                                          size, m_arch.max_physmem_bits));
  return {};
}

const MemblockRegion* Memblock::find(const RegionList& l, PhysAddr addr) {
  auto it = std::partition_point(l.regions.begin(), l.regions.end(),
                                 [&](const MemblockRegion& r) { return r.end() <= addr.value(); });
  if (it == l.regions.end() || it->base > addr) return nullptr;
  return &*it;
}

void Memblock::merge_regions(RegionList& l) {
  auto& v = l.regions;
  size_t i = 0;
  while (i + 1 < v.size()) {
    MemblockRegion& a = v[i];
    const MemblockRegion& b = v[i + 1];
    if (a.end() == b.base.value() && a.nid == b.nid && a.flags == b.flags) {
      a.size += b.size;
      v.erase(v.begin() + static_cast<std::ptrdiff_t>(i + 1));
    } else {
      ++i;
    }
  }
}

Result<void> Memblock::insert_disjoint(MemblockType type, PhysAddr base, uint64_t size, int nid, MemblockFlags flags) {
  SPM_TRY(validate_range(base, size));
  RegionList& l = list(type);
  const uint64_t end = base.value() + size;
  auto it = std::partition_point(l.regions.begin(), l.regions.end(),
                                 [&](const MemblockRegion& r) { return r.end() <= base.value(); });
  if (it != l.regions.end() && it->base.value() < end)
    return fail(Errno::Inval,
                fmt::format("memblock: {:#x}-{:#x} overlaps {} region {:#x}-{:#x}", base.value(), end - 1,
                            type == MemblockType::Memory ? "memory" : "reserved", it->base.value(), it->end() - 1));
  l.regions.insert(it, MemblockRegion{base, size, flags, nid});
  l.total_size += size;
  merge_regions(l);
  return {};
}

Result<void> Memblock::add_node(PhysAddr base, uint64_t size, int nid, MemblockFlags flags) {
  if (nid < 0 || nid > MAX_NUMNODES) return fail(Errno::Inval, fmt::format("memblock: bad node {}", nid));
  return insert_disjoint(MemblockType::Memory, base, size, nid, flags);
}

Result<void> Memblock::reserve(PhysAddr base, uint64_t size) {
  return insert_disjoint(MemblockType::Reserved, base, size, MAX_NUMNODES, MEMBLOCK_NONE);
}

void Memblock::remove_range(MemblockType type, PhysAddr base, uint64_t size) {
  RegionList& l = list(type);
  const uint64_t b = base.value();
  const uint64_t e = b + size;
  std::vector<MemblockRegion> out;
  out.reserve(l.regions.size() + 1);
  for (const MemblockRegion& r : l.regions) {
    if (r.end() <= b || r.base.value() >= e) {
      out.push_back(r);
      continue;
    }
    if (r.base.value() < b) out.push_back(MemblockRegion{r.base, b - r.base.value(), r.flags, r.nid});
    if (r.end() > e) out.push_back(MemblockRegion{PhysAddr(e), r.end() - e, r.flags, r.nid});
  }
  l.regions = std::move(out);
  l.total_size = 0;
  for (const MemblockRegion& r : l.regions) l.total_size += r.size;
}

Result<void> Memblock::remove(PhysAddr base, uint64_t size) {
  SPM_TRY(validate_range(base, size));
  remove_range(MemblockType::Memory, base, size);
  return {};
}

Result<void> Memblock::phys_free(PhysAddr base, uint64_t size) {
  SPM_TRY(validate_range(base, size));
  remove_range(MemblockType::Reserved, base, size);
  return {};
}

// memblock_isolate_range() then a change to every isolated memory region, then a merge: the
// kernel's shape for flag and node updates. Requires: the range was validated.
template <class F>
void Memblock::update_range(PhysAddr base, uint64_t size, F&& change) {
  const uint64_t b = base.value();
  const uint64_t e = b + size;
  std::vector<MemblockRegion> out;
  out.reserve(m_memory.regions.size() + 2);
  for (const MemblockRegion& r : m_memory.regions) {
    if (r.end() <= b || r.base.value() >= e) {
      out.push_back(r);
      continue;
    }
    const uint64_t lo = std::max(b, r.base.value());
    const uint64_t hi = std::min(e, r.end());
    if (r.base.value() < lo) out.push_back(MemblockRegion{r.base, lo - r.base.value(), r.flags, r.nid});
    MemblockRegion mid{PhysAddr(lo), hi - lo, r.flags, r.nid};
    change(mid);
    out.push_back(mid);
    if (r.end() > hi) out.push_back(MemblockRegion{PhysAddr(hi), r.end() - hi, r.flags, r.nid});
  }
  m_memory.regions = std::move(out);
  merge_regions(m_memory);
}

Result<void> Memblock::mark_nomap(PhysAddr base, uint64_t size) {
  SPM_TRY(validate_range(base, size));
  update_range(base, size, [](MemblockRegion& r) { r.flags = r.flags | MEMBLOCK_NOMAP; });
  return {};
}

Result<void> Memblock::clear_nomap(PhysAddr base, uint64_t size) {
  SPM_TRY(validate_range(base, size));
  update_range(base, size, [](MemblockRegion& r) { r.flags = r.flags & ~MEMBLOCK_NOMAP; });
  return {};
}

Result<void> Memblock::set_node(PhysAddr base, uint64_t size, int nid) {
  if (nid < 0 || nid > MAX_NUMNODES) return fail(Errno::Inval, fmt::format("memblock: bad node {}", nid));
  SPM_TRY(validate_range(base, size));
  update_range(base, size, [nid](MemblockRegion& r) { r.nid = nid; });
  return {};
}

Result<PhysAddr> Memblock::alloc_top_down(uint64_t size, uint64_t align, PhysAddr min_addr, PhysAddr max_addr,
                                          int nid) {
  const uint64_t page = m_arch.page_size();
  if (size == 0 || size % page || align < page || (align & (align - 1)))
    return fail(Errno::Inval, fmt::format("memblock: bad allocation size {:#x} or alignment {:#x}", size, align));
  // __memblock_find_range_top_down(): free ranges (memory minus reserved) from the highest down; the
  // candidate is the highest aligned base whose range still fits below the free range's end.
  for (auto m = m_memory.regions.rbegin(); m != m_memory.regions.rend(); ++m) {
    if (m->flags.any(MEMBLOCK_NOMAP) || (nid != MAX_NUMNODES && m->nid != nid)) continue;
    uint64_t hi = std::min(m->end(), max_addr.value());
    const uint64_t lo = std::max(m->base.value(), min_addr.value());
    // Walk the reserved regions below hi from the top: each gap between them is a free range.
    auto r = std::partition_point(m_reserved.regions.begin(), m_reserved.regions.end(),
                                  [&](const MemblockRegion& x) { return x.base.value() < hi; });
    while (hi > lo) {
      const uint64_t free_lo = r == m_reserved.regions.begin() ? lo : std::max(lo, std::prev(r)->end());
      if (hi >= free_lo + size) {
        const uint64_t cand = (hi - size) & ~(align - 1);
        if (cand >= free_lo) {
          SPM_TRY(reserve(PhysAddr(cand), size));
          return PhysAddr(cand);
        }
      }
      if (r == m_reserved.regions.begin()) break;
      --r;
      hi = std::min(hi, r->base.value());
    }
  }
  return fail(Errno::NoMem, fmt::format("memblock: no free {:#x} bytes aligned to {:#x} in [{:#x}, {:#x})", size, align,
                                        min_addr.value(), max_addr.value()));
}

PhysAddr Memblock::end_of_dram() const {
  if (m_memory.regions.empty()) return PhysAddr(0);
  return PhysAddr(m_memory.regions.back().end());
}

bool Memblock::is_memory(PhysAddr addr) const { return find(m_memory, addr) != nullptr; }

bool Memblock::is_reserved(PhysAddr addr) const { return find(m_reserved, addr) != nullptr; }

bool Memblock::is_map_memory(Pfn pfn) const {
  if (!m_arch.pfn_survives_phys(pfn)) return false;
  const MemblockRegion* r = find(m_memory, m_arch.pfn_to_phys(pfn));
  return r && !r->flags.any(MEMBLOCK_NOMAP);
}

void Memblock::check_invariants(InvariantReport& report) const {
  const uint64_t mask = m_arch.page_size() - 1;
  const uint64_t limit = uint64_t{1} << m_arch.max_physmem_bits;
  for (MemblockType type : {MemblockType::Memory, MemblockType::Reserved}) {
    const RegionList& l = type == MemblockType::Memory ? m_memory : m_reserved;
    const char* nm = type == MemblockType::Memory ? "memory" : "reserved";
    uint64_t sum = 0;
    for (size_t i = 0; i < l.regions.size(); ++i) {
      const MemblockRegion& r = l.regions[i];
      sum += r.size;
      if (r.size == 0 || (r.base.value() & mask) != 0 || (r.size & mask) != 0)
        report.fail("INV-MEMBLOCK-1", "{}[{}] {:#x}+{:#x} empty or not page aligned", nm, i, r.base.value(), r.size);
      if (r.base.value() > limit || r.size > limit - r.base.value())
        report.fail("INV-MEMBLOCK-4", "{}[{}] {:#x}+{:#x} beyond 2^{}", nm, i, r.base.value(), r.size,
                    m_arch.max_physmem_bits);
      if (type == MemblockType::Reserved && (r.flags != MEMBLOCK_NONE || r.nid != MAX_NUMNODES))
        report.fail("INV-MEMBLOCK-5", "reserved[{}] carries flags {:#x} nid {}", i, r.flags.value(), r.nid);
      if (i + 1 < l.regions.size()) {
        const MemblockRegion& n = l.regions[i + 1];
        if (r.end() > n.base.value())
          report.fail("INV-MEMBLOCK-2", "{}[{}] ends {:#x} after the next starts {:#x}", nm, i, r.end(),
                      n.base.value());
        else if (r.end() == n.base.value() && r.nid == n.nid && r.flags == n.flags)
          report.fail("INV-MEMBLOCK-3", "{}[{}] and [{}] touch with equal nid and flags", nm, i, i + 1);
      }
    }
    if (sum != l.total_size)
      report.fail("INV-MEMBLOCK-6", "{} total_size {:#x} but regions sum to {:#x}", nm, l.total_size, sum);
  }
}

}  // namespace sparsemem
