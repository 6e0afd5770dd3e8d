// Machine construction and boot: memblock, memory_present, sparse_init, subsection maps, zones,
// memmap_init and the boot memory blocks, as Linux 6.1 does them (spec §4.1). Single-threaded
// until boot() returns; everything after goes through the hotplug lock.
#include <algorithm>

#include "internal/page_walk.h"
#include "sparsemem/machine.h"

namespace sparsemem {

namespace {
constexpr unsigned MAX_NUMNODES = 1u << NODES_SHIFT;

Result<void> validate_map(const ArchProfile& arch, const BootMemoryMap& map) {
  if (map.regions.empty()) return fail(Errno::Inval, "boot memory map is empty");
  std::vector<BootRegion> sorted = map.regions;
  std::sort(sorted.begin(), sorted.end(),
            [](const BootRegion& a, const BootRegion& b) { return a.start < b.start; });
  const uint64_t limit = uint64_t{1} << arch.max_physmem_bits;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const BootRegion& r = sorted[i];
    if (r.size == 0) return fail(Errno::Inval, fmt::format("region at {:#x} has size 0", r.start.value()));
    if ((r.start.value() | r.size) & (arch.page_size() - 1))
      return fail(Errno::Inval, fmt::format("region [{:#x}+{:#x}] is not aligned to PAGE_SIZE ({:#x})",
                                            r.start.value(), r.size, arch.page_size()));
    if (r.start.value() >= limit || r.size > limit - r.start.value())
      return fail(Errno::Range, fmt::format("region [{:#x}+{:#x}] beyond the physical limit {:#x} (MAX_PHYSMEM_BITS {})",
                                            r.start.value(), r.size, limit, arch.max_physmem_bits));
    if (r.nid >= MAX_NUMNODES)
      return fail(Errno::Inval, fmt::format("region at {:#x}: node {} >= MAX_NUMNODES", r.start.value(), r.nid));
    if (i > 0) {
      const BootRegion& p = sorted[i - 1];
      if (p.start.value() + p.size > r.start.value())
        return fail(Errno::Inval, fmt::format("regions [{:#x}+{:#x}] and [{:#x}+{:#x}] overlap", p.start.value(),
                                              p.size, r.start.value(), r.size));
    }
  }
  return {};
}
}  // namespace

const char* boot_mem_kind_name(BootMemKind k) {
  switch (k) {
    case BootMemKind::Usable: return "usable";
    case BootMemKind::Reserved: return "reserved";
    case BootMemKind::NoMap: return "nomap";
  }
  return "?";
}

ZoneLimits boot_zone_limits(const ArchProfile& arch) {
  ZoneLimits z;
  const uint64_t four_gib_pfn = (uint64_t{4} << 30) >> arch.page_shift;
  const uint64_t top = arch.max_pfn_limit();
  if (arch.family == ArchFamily::X86_64) {
    z.max_pfn[0] = Pfn((uint64_t{16} << 20) >> arch.page_shift);  // MAX_DMA_PFN
    z.max_pfn[1] = Pfn(four_gib_pfn);                             // MAX_DMA32_PFN
  } else {
    z.max_pfn[0] = Pfn(four_gib_pfn);  // zone_dma_bits = 32 without a firmware limit
    z.max_pfn[1] = Pfn(four_gib_pfn);  // ZONE_DMA32 left empty
  }
  z.max_pfn[2] = Pfn(top);
  z.max_pfn[3] = Pfn(top);
  z.max_pfn[4] = Pfn(top);
  return z;
}

Machine::Machine(MachineConfig config)
    : m_config(std::move(config)),
      m_arch(*m_config.arch),
      m_behaviour(m_config.behaviour),
      m_memblock(m_arch),
      m_iomem(m_arch, iomem_root_end(m_arch, m_config.cpu_phys_bits ? m_config.cpu_phys_bits : m_arch.max_physmem_bits).value_or(PhysAddr(~uint64_t{0})),
              m_behaviour, &m_log) {
  VmemmapConfig vc;
  vc.cpu_has_pse = m_config.cpu_has_pse;
  vc.pending_memmaps = m_config.kernel.deferred_struct_page_init;
  if (m_arch.vmemmap_from_memstart) {
    // arm64 memstart_addr: lowest RAM rounded down to ARM64_MEMSTART_ALIGN (here: one section,
    // enough for the 4K/16K/64K configurations whose window starts at the lowest RAM pfn).
    uint64_t lowest = UINT64_MAX;
    for (const BootRegion& r : m_config.memory.regions) lowest = std::min(lowest, r.start.value());
    if (lowest == UINT64_MAX) lowest = 0;
    vc.memstart_pfn = m_arch.phys_to_pfn(PhysAddr(lowest & ~(m_arch.section_size() - 1)));
  }
  m_vmemmap = std::make_unique<Vmemmap>(m_arch, m_behaviour, m_log, vc);
  m_sections = std::make_unique<SectionTable>(m_arch, m_behaviour, *m_vmemmap, m_log);
  devmem_attach();
}

Machine::~Machine() = default;

Result<std::unique_ptr<Machine>> Machine::boot(MachineConfig config) {
  if (!config.arch) return fail(Errno::Inval, "no architecture profile");
  SPM_TRY(validate_map(*config.arch, config.memory));
  std::unique_ptr<Machine> m(new Machine(std::move(config)));
  HotplugGuard g(m->m_hotplug_lock);
  SPM_TRY(m->boot_locked());
  return m;
}

Result<void> Machine::boot_locked() {
  // memblock.memory and memblock.reserved, as e820__memblock_setup / the DT scan fill them.
  for (const BootRegion& r : m_config.memory.regions) {
    const MemblockFlags flags = r.kind == BootMemKind::NoMap ? MEMBLOCK_NOMAP : MEMBLOCK_NONE;
    SPM_TRY(m_memblock.add_node(r.start, r.size, static_cast<int>(r.nid), flags));
    if (r.kind == BootMemKind::Reserved) SPM_TRY(m_memblock.reserve(r.start, r.size));
  }
  SPM_TRY(reserve_boot_memory_locked());
  const std::vector<MemRange> m_memory = memory_pfn_ranges();
  const std::vector<PfnRange> reserved = reserved_pfn_ranges();
  m_max_pfn = m_memory.back().end;

  // memblocks_present() + sparse_init() + subsection_map_init() (spec §4.1 steps 1-3).
  for (const MemRange& r : m_memory) SPM_TRY(m_sections->memory_present(r.nid, r.start, r.end));
  SPM_TRY(m_sections->sparse_init());
  for (const MemRange& r : m_memory) m_sections->subsection_map_init(r.start, r.end - r.start);

  // Nodes and zone spans (free_area_init): a zone spans its arch range clipped to the node span.
  unsigned max_nid = 0;
  for (const MemRange& r : m_memory) max_nid = std::max(max_nid, r.nid);
  m_nodes.resize(max_nid + 1);
  const ZoneLimits lim = boot_zone_limits(m_arch);
  for (unsigned nid = 0; nid <= max_nid; ++nid) {
    Node& n = m_nodes[nid];
    n.nid = nid;
    for (unsigned z = 0; z < MAX_NR_ZONES; ++z) {
      n.zones[z].type = static_cast<ZoneType>(z);
      n.zones[z].nid = nid;
    }
    Pfn nstart(UINT64_MAX), nend(0);
    for (const MemRange& r : m_memory)
      if (r.nid == nid) {
        nstart = std::min(nstart, r.start);
        nend = std::max(nend, r.end);
      }
    if (nend.value() == 0) continue;
    n.online = true;
    n.node_start_pfn = nstart;
    n.node_spanned_pages = nend - nstart;
    Pfn zlo(0);
    for (unsigned z = 0; z <= static_cast<unsigned>(ZoneType::Normal); ++z) {
      const Pfn zhi = lim.max_pfn[z];
      const Pfn s = std::max(zlo, nstart), e = std::min(zhi, nend);
      Zone& zone = n.zones[z];
      if (s < e) {
        zone.zone_start_pfn = s;
        zone.spanned_pages = e - s;
        for (const MemRange& r : m_memory) {
          if (r.nid != nid) continue;
          const Pfn a = std::max(r.start, s), b = std::min(r.end, e);
          if (a < b) zone.present_pages += b - a;
        }
        zone.present_early_pages = zone.present_pages;
        n.node_present_pages += zone.present_pages;
      }
      zlo = std::max(zlo, zhi);
    }
  }

  if (m_config.kernel.deferred_struct_page_init) m_vmemmap->defer_init(plan_deferred_init(m_memory, reserved));
  memmap_init_locked(m_memory);
  free_boot_memory_locked(m_memory, reserved);
  register_boot_memory_locked();
  create_boot_blocks_locked(m_memory);
  return insert_boot_iomem_locked();
}

// init_unavailable_range(): holes whose pageblock has a memmap get reserved descriptors of the
// following range's zone and node (spec §4.1 step 5), logged once per call.
void Machine::init_unavailable_range(Pfn start, Pfn end, ZoneType zone, unsigned nid) {
  uint64_t count = 0;
  const uint64_t pb = m_arch.pageblock_nr_pages().value();
  const uint64_t ps = m_arch.pages_per_section().value();
  for (uint64_t pfn = start.value(); pfn < end.value();) {
    if (!m_sections->pfn_in_present_section(Pfn(pfn))) {
      pfn = (pfn | (ps - 1)) + 1;  // no section: nothing in it has a memmap (large holes cost one step per section)
      continue;
    }
    const uint64_t block_end = std::min(end.value(), (pfn | (pb - 1)) + 1);
    // A pageblock's memmap is all there or all missing, and never crosses a section.
    if (m_sections->pfn_valid(Pfn(pfn & ~(pb - 1)))) {
      init_page_range(m_vmemmap->pfn_to_page(Pfn(pfn)), block_end - pfn, zone, nid, m_vmemmap->page_addr(Pfn(pfn)), true);
      count += block_end - pfn;
    }
    pfn = block_end;
  }
  if (count)
    m_log.log(LogLevel::Info, "On node {}, zone {}: {} pages in unavailable ranges", nid, zone_name(zone), count);
}

void Machine::memmap_init_locked(const std::vector<MemRange>& m_memory) {
  const ZoneLimits lim = boot_zone_limits(m_arch);
  Pfn hole(0);
  ZoneType last_zone = ZoneType::DMA;
  unsigned last_nid = 0;
  for (const MemRange& r : m_memory) {
    Pfn zlo(0);
    for (unsigned z = 0; z <= static_cast<unsigned>(ZoneType::Normal); ++z) {
      const Pfn zhi = lim.max_pfn[z];
      const Pfn s = std::max(r.start, zlo), e = std::min(r.end, zhi);
      zlo = std::max(zlo, zhi);
      if (s >= e) continue;
      const ZoneType zt = static_cast<ZoneType>(z);
      // One section at a time: descriptors are contiguous in the vmemmap within a section.
      for (Pfn pfn = s; pfn < e;) {
        const Pfn sec_end = m_arch.section_nr_to_pfn(m_arch.pfn_to_section_nr(pfn).next());
        const Pfn chunk_end = std::min(e, sec_end);
        // A pending section is written on its first access instead (deferred_init.cc).
        if (!m_vmemmap->deferred_run(pfn))
          init_page_range(m_vmemmap->pfn_to_page(pfn), (chunk_end - pfn).value(), zt, r.nid,
                        m_vmemmap->page_addr(pfn), false);
        pfn = chunk_end;
      }
      const uint64_t pb = m_arch.pageblock_nr_pages().value();
      for (Pfn pfn((s.value() + pb - 1) & ~(pb - 1)); pfn < e; pfn += NrPages(pb))
        m_sections->set_pageblock_migratetype(pfn, Migratetype::Movable);
      if (hole < s) init_unavailable_range(hole, s, zt, r.nid);
      hole = e;
      last_zone = zt;
      last_nid = r.nid;
    }
  }
  // The tail of the last section beyond RAM (16384 pages for RAM ending at 0x143ffffff).
  const Pfn tail_end = m_arch.section_nr_to_pfn(m_arch.pfn_to_section_nr(Pfn(hole.value() + m_arch.pages_per_section().value() - 1)));
  if (hole < tail_end) init_unavailable_range(hole, tail_end, last_zone, last_nid);
}

// memblock_free_all(): reserved and NOMAP pages keep PG_reserved; everything else goes to the
// buddy in naturally aligned blocks of up to MAX_ORDER-1 (as __free_pages_core would merge them).
void Machine::free_boot_memory_locked(const std::vector<MemRange>& m_memory,
                                      const std::vector<PfnRange>& m_reserved) {
  const NrPages pps = m_arch.pages_per_section();
  auto set_reserved = [](Pfn, Page& p) -> uint64_t {
    p.set(PG::reserved);
    return 1;
  };
  for (const PfnRange& r : m_reserved)
    for_each_page_or_pending(*m_vmemmap, m_arch, r.start, r.end(), set_reserved,
                             [](Pfn, Pfn, const DeferredSectionRun&) { return true; });  // PG_reserved when written
  size_t ri = 0;  // m_reserved and m_memory are both sorted
  for (const MemRange& r : m_memory) {
    if (r.nomap) {
      for_each_page(*m_vmemmap, m_arch, r.start, r.end, set_reserved);
      continue;
    }
    Pfn pfn = r.start;
    while (pfn < r.end) {
      while (ri < m_reserved.size() && m_reserved[ri].end() <= pfn) ++ri;
      Pfn free_end = r.end;
      if (ri < m_reserved.size() && m_reserved[ri].start <= pfn) {
        pfn = std::min(r.end, m_reserved[ri].end());
        continue;
      }
      if (ri < m_reserved.size() && m_reserved[ri].start < free_end) free_end = m_reserved[ri].start;
      while (pfn < free_end) {
        // A pending section is wholly free: its MAX_ORDER-1 blocks are written on first access.
        if (const std::optional<DeferredSectionRun> run = m_vmemmap->deferred_run(pfn)) {
          SPM_DCHECK(m_arch.section_aligned(pfn) && pfn + pps <= free_end, "pending section not wholly free");
          m_nodes[run->nid].zone(run->zone).managed_pages += pps;
          pfn += pps;
          continue;
        }
        unsigned order = m_arch.max_order - 1;
        while (order > 0 && ((pfn.value() & ((uint64_t{1} << order) - 1)) ||
                             pfn.value() + (uint64_t{1} << order) > free_end.value()))
          --order;
        const NrPages n(uint64_t{1} << order);
        Page* head = m_vmemmap->pfn_to_page(pfn);  // a MAX_ORDER-1 block never leaves its section
        for (uint64_t i = 0; i < n.value(); ++i) head[i].refcount = 0;
        head->set_type(PG_buddy);
        head->private_ = order;
        m_nodes[r.nid].zone(head->zone()).managed_pages += n;
        pfn += n;
      }
    }
  }
}

std::vector<Machine::MemRange> Machine::memory_pfn_ranges() const {
  std::vector<MemRange> out;
  for (const MemblockRegion& r : m_memblock.memory()) {
    const Pfn s = m_arch.phys_to_pfn(r.base), e = m_arch.phys_to_pfn(PhysAddr(r.end()));
    const unsigned nid = static_cast<unsigned>(r.nid);
    const bool nomap = r.flags.any(MEMBLOCK_NOMAP);
    // Adjacent regions that differ only in flags are one range for zones; NOMAP stays separate.
    if (!out.empty() && out.back().end == s && out.back().nid == nid && out.back().nomap == nomap)
      out.back().end = e;
    else
      out.push_back(MemRange{s, e, nid, nomap});
  }
  return out;
}

std::vector<PfnRange> Machine::reserved_pfn_ranges() const {
  std::vector<PfnRange> out;
  for (const MemblockRegion& r : m_memblock.reserved()) {
    const Pfn s = m_arch.phys_to_pfn(r.base), e = m_arch.phys_to_pfn(PhysAddr(r.end()));
    out.push_back(PfnRange{s, e - s});
  }
  return out;
}

// The boot /proc/iomem: the platform's firmware resources in order (each nested under the
// previous entry one level up), or System RAM per memblock range when the platform gave none.
Result<void> Machine::insert_boot_iomem_locked() {
  if (m_config.iomem.empty()) {
    for (const MemRange& r : memory_pfn_ranges()) {
      if (r.nomap) continue;
      SPM_TRY(m_iomem.insert_resource(m_iomem.root(), m_arch.pfn_to_phys(r.start),
                                      PhysAddr(m_arch.pfn_to_phys(r.end).value() - 1), "System RAM",
                                      IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY));
    }
    return {};
  }
  std::vector<ResourceId> parents{m_iomem.root()};
  for (const BootResource& r : m_config.iomem) {
    if (r.depth + 1 > parents.size())
      return fail(Errno::Inval, fmt::format("boot resource '{}' at depth {} has no parent", r.name, r.depth));
    parents.resize(r.depth + 1);
    SPM_TRY_ASSIGN(const ResourceId id, m_iomem.insert_resource(parents.back(), r.start, r.end, r.name, r.flags, r.desc));
    parents.push_back(id);
  }
  return {};
}

Result<void> Machine::add_pages(unsigned nid, PfnRange range, VmemAltmap* altmap) {
  HotplugGuard g(m_hotplug_lock);
  return m_sections->add_pages(nid, range.start, range.nr, altmap);
}

void Machine::remove_pages(PfnRange range, VmemAltmap* altmap) {
  HotplugGuard g(m_hotplug_lock);
  m_sections->remove_pages(range.start, range.nr, altmap);
}

}  // namespace sparsemem
