// Machine's ZONE_DEVICE operations: memremap_pages / memunmap_pages with pagemap_range's steps (Linux 6.1
// mm/memremap.c), device-private placement and device page references. Writers take the hotplug lock; lookups are lock-free.
#include <algorithm>

#include "sparsemem/machine.h"

namespace sparsemem {

namespace {

PfnRange range_pfns(const ArchProfile& arch, const DevPagemap& pgmap, unsigned i) {
  const Pfn start = pgmap.range_start_pfn(arch, i);
  return PfnRange{start, pgmap.range_end_pfn(arch, i) - start};
}

bool takes_bulk_refs(MemoryType t) { return t != MemoryType::DevicePrivate && t != MemoryType::DeviceCoherent; }

}  // namespace

void Machine::devmem_attach() {
  m_pgmap_registry.attach(*m_sections);
  m_sections->set_map_memory_lookup(&m_map_memory);
}

// pagemap_range()'s checks for range i (spec §4.12 steps 1-3 and 7, and the refusals of add_pages and
// __add_pages), in the kernel's order, before anything changes. `earlier` holds this pgmap's
// ranges 0..i-1, which 6.1 would already have stored and added by now.
Result<void> Machine::validate_pagemap_range_locked(const DevPagemap& pgmap, unsigned i,
                                                     const std::vector<PfnRange>& earlier) {
  const PhysRange& r = pgmap.ranges[i];
  const PfnRange pfns = range_pfns(m_arch, pgmap, i);
  if (pgmap.altmap_valid() && i > 0) {
    const std::string msg = "altmap not supported for multiple ranges";
    m_log.warn("{}", msg);
    return fail(Errno::Inval, msg);
  }
  // Step 2: only the two endpoints are looked up (spec §9.11), and a conflict is -ENOMEM.
  const Pfn first = m_arch.phys_to_pfn(r.start), last = m_arch.phys_to_pfn(r.last);
  auto mine = [&](Pfn p) {
    return std::any_of(earlier.begin(), earlier.end(), [&](const PfnRange& e) { return e.contains(p); });
  };
  if (m_pgmap_registry.has_live_pagemap(first) || m_pgmap_registry.has_live_pagemap(last) || mine(first) ||
      mine(last)) {
    const std::string msg = "Conflicting mapping in same section";
    m_log.warn("{}", msg);
    return fail(Errno::NoMem, msg);
  }
  // Step 3: no System RAM in the range (6.1.0 only sees top-level resources, spec §9.6).
  const RegionIntersect ri = m_iomem.region_intersects(r.start, r.size(), IORESOURCE_SYSTEM_RAM, IoresDesc::None);
  if (ri != RegionIntersect::Disjoint) {
    const std::string msg = fmt::format("attempted on {} region {:#x}-{:#x}",
                                        ri == RegionIntersect::Mixed ? "mixed" : "ram", r.start.value(), r.last.value());
    if (m_devmem_once.first("attempted on region")) m_log.warn("{}", msg);
    return fail(Errno::NxIO, msg);
  }
  // Step 7: device-private memory has no direct map, so only PHYSMEM_END bounds it.
  SPM_TRY(mhp_range_allowed(m_arch, m_vmemmap->config().memstart_pfn, r.start, r.size(),
                            pgmap.type != MemoryType::DevicePrivate, m_log));
  // x86 add_pages() [6.1.y]: nothing above PHYSMEM_END (unreachable after step 7, kept as the
  // kernel has it for a physmem_end lowered below the pluggable range).
  if (m_arch.family == ArchFamily::X86_64 && r.last.value() > m_arch.physmem_end()) {
    const std::string msg = fmt::format("add_pages: [{:#x}-{:#x}] beyond PHYSMEM_END {:#x}", r.start.value(),
                                        r.last.value(), m_arch.physmem_end());
    if (m_devmem_once.first("add_pages ERANGE")) m_log.warn("{}", msg);
    return fail(Errno::Range, msg);
  }
  // __add_pages(): the altmap must start at the range and leave room for the data pages.
  if (pgmap.altmap_valid() && (pgmap.altmap.base_pfn != pfns.start || pgmap.altmap.offset() > pfns.nr)) {
    const std::string msg = "memory add fail, invalid altmap";
    if (m_devmem_once.first(msg)) m_log.warn("{}", msg);
    return fail(Errno::Inval, msg);
  }
  if (pfns.empty() || !m_arch.subsection_aligned(pfns.start) || !m_arch.subsection_aligned(Pfn(pfns.nr.value()))) {
    const std::string msg = fmt::format("Misaligned __add_pages start: {:#x} end: #{:x}", pfns.start.value(),
                                        pfns.start.value() + (pfns.nr.value() ? pfns.nr.value() - 1 : 0));
    m_log.warn("{}", msg);
    return fail(Errno::Inval, msg);
  }
  if (pfns.end().value() > m_arch.max_pfn_limit())
    return fail(Errno::Range, fmt::format("pfn range [{:#x}+{:#x}) beyond the physical limit", pfns.start.value(),
                                          pfns.nr.value()));
  // section_activate(): -EEXIST when any subsection is already populated (boot memory, another
  // pgmap, hot-added memory, or an earlier range of this pgmap).
  const NrPages sub = m_arch.pages_per_subsection();
  for (Pfn p = pfns.start; p < pfns.end(); p += sub) {
    const bool taken = m_sections->pfn_section_valid(p) || mine(p);
    if (taken)
      return fail(Errno::Exist, fmt::format("subsections of [{:#x}+{:#x}) already present", pfns.start.value(),
                                            pfns.nr.value()));
  }
  return {};
}

// Steps 4 and 8: store the pgmap for the range, add its sections and memmap. A failure of the
// add (a populate error) undoes what this call added and erases the store.
Result<void> Machine::add_pagemap_range_locked(DevPagemap& pgmap, unsigned i, unsigned nid) {
  const PfnRange pfns = range_pfns(m_arch, pgmap, i);
  VmemAltmap* altmap = i == 0 && pgmap.altmap_valid() ? &pgmap.altmap : nullptr;
  m_pgmap_registry.store(pfns, &pgmap);
  const NrPages sub = m_arch.pages_per_subsection();
  Result<void> r = m_sections->add_pages(nid, pfns.start, pfns.nr, altmap, pgmap.vmemmap_shift);
  if (!r) {
    // 6.1 keeps the sections __add_pages managed to add (spec §9.10); validation ensured none of
    // the range was populated before, so every populated subsection of it is this call's.
    Pfn run_start = pfns.start;
    for (Pfn p = pfns.start;; p += sub) {
      const bool at_end = p >= pfns.end();
      const bool populated = !at_end && m_sections->pfn_section_valid(p);
      if (populated) continue;
      if (run_start < p) m_sections->remove_pages(run_start, p - run_start, altmap);
      if (at_end) break;
      run_start = p + sub;
    }
    m_pgmap_registry.erase(pfns);
    return r;
  }
  // x86 add_pages() raises max_pfn only without a pgmap [6.1.y] (6.1.0: always, spec §9.7);
  // arm64's arch_add_memory raises it for the types with a linear map.
  const bool raise = m_arch.family == ArchFamily::X86_64 ? m_behaviour.zone_device_raises_max_pfn
                                                         : pgmap.type != MemoryType::DevicePrivate;
  if (raise) m_max_pfn = std::max(m_max_pfn, pfns.end());
  return {};
}

// Steps 9, 11 and 12: Device zone, taint, memmap (altmap area, then the data pages), references.
Result<void> Machine::init_pagemap_range_locked(DevPagemap& pgmap, unsigned i, unsigned nid) {
  const PfnRange pfns = range_pfns(m_arch, pgmap, i);
  // move_pfn_range_to_zone(): the Device zone and the node grow (a Device span never shrinks).
  move_pfn_range_to_zone(m_nodes[nid], ZoneType::Device, pfns.start, pfns.nr);
  m_sections->taint_zone_device(pfns.start, pfns.nr);
  if (m_behaviour.subsection_zone_device_map) m_sections->set_zone_device(pfns.start, pfns.nr, true);
  if (i == 0) SPM_TRY(memmap_init_altmap_area(*m_vmemmap, *m_sections, m_behaviour, pgmap, nid));
  SPM_TRY(memmap_init_zone_device(*m_vmemmap, *m_sections, m_behaviour, pgmap, i, nid, m_log,
                                  m_config.kernel.deferred_struct_page_init));
  if (takes_bulk_refs(pgmap.type)) PagemapLifecycle::add_bulk(pgmap, pgmap.pfn_len(m_arch, i));
  return {};
}

// memunmap_pages()'s per-range teardown (spec §4.15 step 4): ZONE_DEVICE spans do not shrink;
// PRIVATE ranges go without the altmap, as 6.1 removes them (seed 002's inconsistency).
void Machine::remove_pagemap_range_locked(DevPagemap& pgmap, unsigned i) {
  const PfnRange pfns = range_pfns(m_arch, pgmap, i);
  if (m_behaviour.subsection_zone_device_map) m_sections->set_zone_device(pfns.start, pfns.nr, false);
  VmemAltmap* altmap =
      i == 0 && pgmap.altmap_valid() && pgmap.type != MemoryType::DevicePrivate ? &pgmap.altmap : nullptr;
  m_sections->remove_pages(pfns.start, pfns.nr, altmap);
  m_pgmap_registry.erase(pfns);
}

// memremap_pages()'s error path: the ranges added so far come down again (memunmap_pages of
// the first `added` ranges), and the pgmap is left unmapped with a dead reference count.
Result<void> Machine::unwind_memremap_locked(DevPagemap& pgmap, unsigned added, Error error) {
  for (unsigned i = added; i-- > 0;) remove_pagemap_range_locked(pgmap, i);
  if (pgmap.altmap_valid()) pgmap.altmap.alloc = NrPages(0);
  PagemapLifecycle::kill(pgmap);
  PagemapLifecycle::drop_initial_and_bulk(pgmap);
  PagemapLifecycle::set_nr_mapped(pgmap, 0);
  PagemapLifecycle::set_mapped(pgmap, false);
  return tl::unexpected(std::move(error));
}

Result<void> Machine::memremap_pages(DevPagemap& pgmap, int nid) {
  HotplugGuard g(m_hotplug_lock);
  if (pgmap.mapped()) return fail(Errno::Busy, "memremap_pages: pgmap is already mapped");
  SPM_TRY(validate_dev_pagemap(pgmap, m_arch, m_config.kernel, m_behaviour, m_log, m_devmem_once));
  std::vector<PfnRange> earlier;
  for (unsigned i = 0; i < pgmap.ranges.size(); ++i) {
    SPM_TRY(validate_pagemap_range_locked(pgmap, i, earlier));
    earlier.push_back(range_pfns(m_arch, pgmap, i));
  }
  // Step 5: no node given means the node of the calling CPU; the model's CPUs are on the first
  // online node.
  unsigned node = 0;
  if (nid < 0) {
    while (node + 1 < m_nodes.size() && !m_nodes[node].online) ++node;
  } else {
    node = static_cast<unsigned>(nid);
  }
  if (node >= m_nodes.size())
    return fail(Errno::Inval, fmt::format("memremap_pages: node {} has no pgdat", nid));

  PagemapLifecycle::start(pgmap);
  PagemapLifecycle::set_nid(pgmap, node);
  PagemapLifecycle::set_mapped(pgmap, true);
  unsigned added = 0;
  for (unsigned i = 0; i < pgmap.ranges.size(); ++i) {
    if (auto r = add_pagemap_range_locked(pgmap, i, node); !r) return unwind_memremap_locked(pgmap, added, r.error());
    ++added;
  }
  for (unsigned i = 0; i < pgmap.ranges.size(); ++i) {
    // Only a descriptor write can fail here: the oops of seed 004's legacy behaviour. The model
    // takes the mapping down again; no caller-visible reference was handed out yet.
    if (auto r = init_pagemap_range_locked(pgmap, i, node); !r) {
      // The kernel prints its oops; the message is the oops line.
      m_log.log(LogLevel::Err, "{}", r.error().message);
      return unwind_memremap_locked(pgmap, added, r.error());
    }
  }
  PagemapLifecycle::set_nr_mapped(pgmap, static_cast<unsigned>(pgmap.ranges.size()));
  m_mapped_pgmaps.push_back(&pgmap);
  return {};
}

void Machine::memunmap_pages(DevPagemap& pgmap) {
  {
    HotplugGuard g(m_hotplug_lock);
    if (!pgmap.mapped() || std::find(m_mapped_pgmaps.begin(), m_mapped_pgmaps.end(), &pgmap) == m_mapped_pgmaps.end())
      return;
  }
  // Steps 1-3 run without the hotplug lock: whoever holds the last references (a pinned DAX
  // page, an allocated private page) may need it to let go.
  PagemapLifecycle::kill(pgmap);
  PagemapLifecycle::drop_initial_and_bulk(pgmap);
  PagemapLifecycle::wait_for_zero(pgmap);

  HotplugGuard g(m_hotplug_lock);
  for (unsigned i = 0; i < pgmap.nr_mapped(); ++i) remove_pagemap_range_locked(pgmap, i);
  if (pgmap.altmap_valid() && pgmap.altmap.alloc.value() != 0) {
    const std::string msg = "failed to free all reserved pages";
    if (m_devmem_once.first(msg)) m_log.warn("{}", msg);
  }
  m_mapped_pgmaps.erase(std::find(m_mapped_pgmaps.begin(), m_mapped_pgmaps.end(), &pgmap));
  PagemapLifecycle::set_nr_mapped(pgmap, 0);
  PagemapLifecycle::set_mapped(pgmap, false);
}

Result<PhysRange> Machine::request_free_mem_region(uint64_t size, std::string_view name) {
  HotplugGuard g(m_hotplug_lock);
  uint64_t ceiling = m_arch.physmem_end();
  if (m_behaviour.out_of_window == OutOfWindowRule::PlaceInWindow) {
    // Seed 003 (Ard Biesheuvel): only where the vmemmap window has descriptors.
    const uint64_t covered = m_vmemmap->config().memstart_pfn.value() + m_arch.vmemmap_size / STRUCT_PAGE_SIZE;
    if (covered <= (m_arch.physmem_end() >> m_arch.page_shift)) ceiling = (covered << m_arch.page_shift) - 1;
  }
  SPM_TRY_ASSIGN(const ResourceId id,
                 m_iomem.request_free_mem_region(m_iomem.root(), size, std::string(name), PhysAddr(ceiling)));
  return m_iomem.find(id)->range();
}

Result<void> Machine::release_mem_region(PhysRange range) {
  HotplugGuard g(m_hotplug_lock);
  return m_iomem.release_region(m_iomem.root(), range.start, range.size());
}

namespace {

// The resource of exactly `range` named `name`, searched depth first.
std::optional<ResourceId> find_resource(const ResourceTree& t, ResourceId from, PhysRange range, std::string_view name) {
  for (ResourceId c : t.children_of(from)) {
    const Resource* r = t.find(c);
    if (r->start == range.start && r->end == range.last && r->name && *r->name == name) return c;
    if (r->start <= range.start && range.last <= r->end)
      if (auto hit = find_resource(t, c, range, name)) return hit;
  }
  return std::nullopt;
}

}  // namespace

Result<PhysRange> Machine::request_mem_region(PhysRange range, std::string_view name) {
  HotplugGuard g(m_hotplug_lock);
  SPM_TRY_ASSIGN(const ResourceId id, m_iomem.request_mem_region(range.start, range.size(), std::string(name)));
  return m_iomem.find(id)->range();
}

Result<void> Machine::insert_iomem_resource(PhysRange range, std::string_view name, ResourceFlags flags,
                                            IoresDesc desc) {
  HotplugGuard g(m_hotplug_lock);
  SPM_TRY(m_iomem.insert_resource(m_iomem.root(), range.start, range.last, std::string(name), flags, desc));
  return {};
}

Result<void> Machine::remove_iomem_resource(PhysRange range, std::string_view name) {
  HotplugGuard g(m_hotplug_lock);
  const auto id = find_resource(m_iomem, m_iomem.root(), range, name);
  if (!id) return fail(Errno::Inval, fmt::format("no resource {} [mem {:#x}-{:#x}]", name, range.start.value(), range.last.value()));
  return m_iomem.remove_resource(*id);
}

Result<void> Machine::set_mem_region_flags(PhysRange range, std::string_view name, ResourceFlags flags) {
  HotplugGuard g(m_hotplug_lock);
  const auto id = find_resource(m_iomem, m_iomem.root(), range, name);
  if (!id) return fail(Errno::Inval, fmt::format("no resource {} [mem {:#x}-{:#x}]", name, range.start.value(), range.last.value()));
  return m_iomem.set_flags(*id, flags);
}

Result<void> Machine::zone_device_page_init(Pfn pfn) {
  DevPagemap* pgmap = m_pgmap_registry.get_dev_pagemap(pfn);
  if (!pgmap) return fail(Errno::NxIO, fmt::format("pfn {:#x}: no live pgmap", pfn.value()));
  if ((pgmap->type != MemoryType::DevicePrivate && pgmap->type != MemoryType::DeviceCoherent) ||
      !pgmap->pfn_valid_in(m_arch, pfn)) {
    put_dev_pagemap(pgmap);
    return fail(Errno::Inval, fmt::format("pfn {:#x}: not a free-able device page", pfn.value()));
  }
  // The descriptor stays mapped while the reference is held: memunmap_pages waits for it.
  auto page = m_vmemmap->writable_page(pfn);
  if (!page) {
    put_dev_pagemap(pgmap);
    return tl::unexpected(page.error());
  }
  if (const int32_t refs = (*page)->refcount; refs != 0) {
    // Read before the reference goes: without it the descriptor may be unmapped any time.
    put_dev_pagemap(pgmap);
    return fail(Errno::Busy, fmt::format("pfn {:#x}: page in use (refcount {})", pfn.value(), refs));
  }
  (*page)->refcount = 1;  // the reference taken above now belongs to the page
  return {};
}

Result<void> Machine::put_device_page(Pfn pfn) {
  // The page's own reference (if any) keeps its pgmap in the registry until this returns.
  DevPagemap* pgmap = m_pgmap_registry.lookup_racy(pfn);
  if (!pgmap || !pgmap->pfn_valid_in(m_arch, pfn))
    return fail(Errno::NxIO, fmt::format("pfn {:#x}: no device page", pfn.value()));
  SPM_TRY_ASSIGN(Page * page, m_vmemmap->writable_page(pfn));
  if (page->refcount <= 0) return fail(Errno::Inval, fmt::format("pfn {:#x}: refcount already 0", pfn.value()));
  if (--page->refcount != 0) return {};
  // free_zone_device_page().
  if (!pgmap->ops || !pgmap->ops->page_free) {
    m_log.warn("WARNING: at mm/memremap.c free_zone_device_page");
    return {};
  }
  page->mapping = 0;
  pgmap->ops->page_free(pfn, *page);
  if (takes_bulk_refs(pgmap->type))
    page->refcount = 1;  // "1-based" pages: 1 means idle again
  else
    put_dev_pagemap(pgmap);
  return {};
}

bool Machine::pfn_is_zone_device(Pfn pfn) const {
  if (m_behaviour.subsection_zone_device_map) return m_sections->pfn_is_zone_device(pfn);
  if (!m_sections->pfn_valid(pfn)) return false;
  auto page = m_vmemmap->read_page(pfn);
  return page && is_zone_device_page(*page);
}

// INV-PGMAP-* (pagemap.h and below), between operations.
// INV-PGMAP-1: registry intervals are disjoint and name only mapped pgmaps; a live pgmap's
//              ranges are covered by itself (spec §5.12).
// INV-PGMAP-2: live => ref_count >= 1 + bulk; bulk = sum of pfn_len for the 1-based types;
//              PRIVATE/COHERENT: ref_count - 1 >= pages handed out (refcount > 0).
// INV-PGMAP-3: no pfn of a mapped range is online (pfn_to_online_page null), every one is
//              pfn_valid (spec §5.11); checked per subsection.
// INV-PGMAP-4: the node's Device zone spans every mapped range and stays unpopulated.
// INV-PGMAP-5: the section of a non-aligned range start or end is tainted.
// INV-PGMAP-6: each range's first data page reads as a ZONE_DEVICE page of its pgmap; under the
//              seed 001 map every subsection of the range is marked ZONE_DEVICE.
// INV-DEFER-3 (memmap.h) is checked here too, from the runs alone.
void Machine::check_devmem_locked(InvariantReport& report) const {
  std::vector<uint64_t> pending_sections;
  m_pgmap_registry.check_invariants(report);
  for (const PgmapRegistry::Entry& e : m_pgmap_registry.entries())
    if (std::find(m_mapped_pgmaps.begin(), m_mapped_pgmaps.end(), e.pgmap) == m_mapped_pgmaps.end())
      report.fail("INV-PGMAP-1", "pgmap_array [{:#x}-{:#x}) names a pgmap that is not mapped", e.start.value(),
                  e.end.value());
  const NrPages sub = m_arch.pages_per_subsection();
  for (DevPagemap* pgmap : m_mapped_pgmaps) {
    const bool live = pgmap->live();
    uint64_t bulk = 0;
    uint64_t handed_out = 0;
    for (unsigned i = 0; i < pgmap->nr_mapped(); ++i) {
      const PfnRange pfns = range_pfns(m_arch, *pgmap, i);
      if (takes_bulk_refs(pgmap->type)) bulk += pgmap->pfn_len(m_arch, i);
      if (live) {
        for (Pfn p = pfns.start; p < pfns.end(); p += sub)
          if (m_pgmap_registry.lookup_racy(p) != pgmap || m_pgmap_registry.lookup_racy(p + sub - NrPages(1)) != pgmap) {
            report.fail("INV-PGMAP-1", "pfn {:#x} of a live {} pgmap is not mapped to it", p.value(),
                        memory_type_name(pgmap->type));
            break;
          }
      }
      for (Pfn p = pfns.start; p < pfns.end(); p += sub) {
        if (m_sections->pfn_is_online(p) || !m_sections->pfn_valid(p)) {
          report.fail("INV-PGMAP-3", "ZONE_DEVICE pfn {:#x} is {}", p.value(),
                      m_sections->pfn_valid(p) ? "online" : "not pfn_valid");
          break;
        }
        if (m_behaviour.subsection_zone_device_map && !m_sections->pfn_is_zone_device(p)) {
          report.fail("INV-PGMAP-6", "ZONE_DEVICE pfn {:#x} is not in the zone-device map", p.value());
          break;
        }
      }
      const Zone& z = m_nodes[pgmap->nid()].zone(ZoneType::Device);
      if (z.is_empty() || pfns.start < z.zone_start_pfn || pfns.end() > z.zone_end_pfn() || z.populated())
        report.fail("INV-PGMAP-4", "node {} Device zone [{:#x}+{:#x}) present {} does not hold [{:#x}-{:#x})",
                    pgmap->nid(), z.zone_start_pfn.value(), z.spanned_pages.value(), z.present_pages.value(),
                    pfns.start.value(), pfns.end().value());
      for (Pfn edge : {pfns.start, pfns.end()}) {
        if (m_arch.section_aligned(edge)) continue;
        const MemSection* ms = m_sections->find(m_arch.pfn_to_section_nr(edge));
        if (!ms || !ms->flags().has(SectionFlag::TaintZoneDevice))
          report.fail("INV-PGMAP-5", "section {} holds the edge pfn {:#x} of a ZONE_DEVICE range but is not tainted",
                      m_arch.pfn_to_section_nr(edge).value(), edge.value());
      }
      const Pfn first = pgmap->pfn_first(m_arch, i);
      if (first < pfns.end()) {
        const SectionNr last = m_arch.pfn_to_section_nr(pfns.end() - NrPages(1));
        for (SectionNr nr = m_arch.pfn_to_section_nr(first); nr <= last; nr = nr.next()) {
          const std::optional<DeviceMemmapRun> run = m_vmemmap->device_run(m_arch.section_nr_to_pfn(nr));
          if (!run || run->end <= first || run->start >= pfns.end()) continue;  // none, or another range's
          if (run->start != first || run->end != pfns.end() || run->order != pgmap->vmemmap_shift ||
              page_pgmap(run->base) != pgmap || !is_zone_device_page(run->base))
            report.fail("INV-DEFER-3",
                        "section {} is pending as [{:#x}-{:#x}) order {}, not as the data pages of its {} pgmap", nr.value(),
                        run->start.value(), run->end.value(), run->order, memory_type_name(pgmap->type));
          pending_sections.push_back(nr.value());
        }
        auto page = m_vmemmap->read_page(first);
        if (!page || !is_zone_device_page(*page) || page_pgmap(*page) != pgmap)
          report.fail("INV-PGMAP-6", "first data page {:#x} of a {} pgmap is not its ZONE_DEVICE page", first.value(),
                      memory_type_name(pgmap->type));
      }
      if (!takes_bulk_refs(pgmap->type)) {
        for (Pfn p = first; p < pfns.end(); ++p) {
          auto page = m_vmemmap->read_page(p);
          if (page && page->refcount > 0) ++handed_out;
        }
      }
    }
    if (live && (pgmap->bulk_refs() != bulk || pgmap->ref_count() < 1 + bulk + handed_out))
      report.fail("INV-PGMAP-2", "{} pgmap: {} references, {} bulk (expected {}), {} pages handed out",
                  memory_type_name(pgmap->type), pgmap->ref_count(), pgmap->bulk_refs(), bulk, handed_out);
  }
  std::sort(pending_sections.begin(), pending_sections.end());
  pending_sections.erase(std::unique(pending_sections.begin(), pending_sections.end()), pending_sections.end());
  if (const uint64_t total = m_vmemmap->device_pending_sections(); total != pending_sections.size())
    report.fail("INV-DEFER-3", "{} sections are device-pending, {} of them in mapped pgmap ranges", total,
                pending_sections.size());
}

}  // namespace sparsemem
