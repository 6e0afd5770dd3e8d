// Hot-add and hot-remove: add_memory(_driver_managed), add_memory_resource, remove_memory and
// offline_and_remove_memory (spec §4.6, §4.10). Entry points take the hotplug lock, validate, then commit.
#include <algorithm>

#include "sparsemem/machine.h"

namespace sparsemem {

namespace {
constexpr unsigned kMaxNumNodes = 1u << NODES_SHIFT;
}  // namespace

Result<void> Machine::add_memory_locked(unsigned nid, PhysAddr start, uint64_t size, std::string_view name,
                                        MhpFlags flags) {
  // register_memory_resource() -> mhp_range_allowed(need_mapping): x86 takes [0, PHYSMEM_END];
  // arm64 only what its linear map covers (arch_get_mappable_range), capped at PHYSMEM_END.
  uint64_t lo = 0, hi = m_arch.physmem_end();
  if (m_arch.family == ArchFamily::Arm64) {
    lo = m_arch.pfn_to_phys(m_vmemmap->config().memstart_pfn).value();
    const uint64_t linear = m_arch.vmemmap_size << (m_arch.page_shift - STRUCT_PAGE_SHIFT);
    if (lo > hi) {
      lo = hi = 0;
    } else {
      hi = std::min(hi, lo + linear - 1);
    }
  }
  const uint64_t s = start.value();
  const bool allowed = size && s + size > s && s >= lo && s + size - 1 <= hi;
  if (!allowed) {
    const std::string msg = fmt::format("Hotplug memory [{:#x}-{:#x}] exceeds maximum addressable range [{:#x}-{:#x}]",
                                        s, s + size, lo, hi);
    m_log.log(LogLevel::Warn, "{}", msg);
    return fail(Errno::TooBig, msg);
  }
  ResourceFlags rflags = IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY;
  if (name != "System RAM") rflags |= IORESOURCE_SYSRAM_DRIVER_MANAGED;
  auto res = m_iomem.request_region(m_iomem.root(), start, size, name, rflags);
  if (!res) {
    m_log.log(LogLevel::Debug, "Unable to reserve System RAM region: {:016x}->{:016x}", s, s + size);
    return fail(Errno::Exist, fmt::format("Unable to reserve System RAM region: {:016x}->{:016x}", s, s + size));
  }
  // __add_memory(): the resource goes again when the add fails after the request.
  if (auto r = add_memory_resource_locked(nid, *res, start, size, flags); !r) {
    (void)m_iomem.release_resource(*res);
    return r;
  }
  return {};
}

Result<void> Machine::add_memory_resource_locked(unsigned nid, ResourceId res, PhysAddr start, uint64_t size,
                                                 MhpFlags flags) {
  const uint64_t bs = m_block_size;
  if (!size || start.value() % bs || size % bs) {
    const std::string msg = fmt::format("Block size [{:#x}] unaligned hotplug range: start {:#x}, size {:#x}", bs,
                                        start.value(), size);
    m_log.log(LogLevel::Err, "{}", msg);
    return fail(Errno::Inval, msg);
  }
  MemoryGroup* group = nullptr;
  if (flags.has(MHP_NID_IS_MGID)) {
    group = m_groups.find(MemoryGroupId(nid));
    if (!group) return fail(Errno::Inval, fmt::format("no memory group {}", nid));
    nid = group->nid;
  }
  if (nid >= kMaxNumNodes) {
    m_log.warn("add_memory_resource: node {} is not possible", nid);
    return fail(Errno::Inval, fmt::format("node {} is not possible", nid));
  }
  const PfnRange range{m_arch.phys_to_pfn(start), NrPages(size >> m_arch.page_shift)};

  // What arch_add_memory() and block creation would refuse (-EEXIST), checked before anything
  // changes: 6.1 finds it half-way and unwinds, or leaves earlier sections behind (spec §9.10).
  for (BlockId id = m_blocks.block_id_of(range.start); id.value() <= m_blocks.block_id_of(range.end() - NrPages(1)).value();
       id = BlockId(id.value() + 1))
    if (m_blocks.find(id)) return fail(Errno::Exist, fmt::format("memory block {} exists", id.value()));
  for (Pfn p = range.start; p < range.end(); p += m_arch.pages_per_subsection())
    if (m_sections->pfn_section_valid(p))
      return fail(Errno::Exist, fmt::format("subsection at pfn {:#x} already present", p.value()));

  VmemAltmap altmap{};
  const bool on_memory = flags.has(MHP_MEMMAP_ON_MEMORY);
  if (on_memory) {
    if (!mhp_supports_memmap_on_memory(size))
      return fail(Errno::Inval, fmt::format("memmap_on_memory is not supported for [{:#x}+{:#x}]", start.value(), size));
    altmap.base_pfn = range.start;
    altmap.free = range.nr;
  }

  // ARCH_KEEP_MEMBLOCK (arm64): hot-added memory is memblock memory too.
  const Resource* r = m_iomem.find(res);
  const bool driver_managed = r && r->flags.any(IORESOURCE_SYSRAM_DRIVER_MANAGED);
  const bool keep_memblock = m_arch.family == ArchFamily::Arm64;
  if (keep_memblock)
    SPM_TRY(m_memblock.add_node(start, size, static_cast<int>(nid), driver_managed ? MEMBLOCK_DRIVER_MANAGED : MEMBLOCK_NONE));
  if (auto added = m_sections->add_pages(nid, range.start, range.nr, on_memory ? &altmap : nullptr); !added) {
    // Only the host refusing a mapping gets here; take back the sections already added.
    for (Pfn p = range.start; p < range.end(); p += m_arch.pages_per_section())
      if (m_sections->pfn_section_valid(p)) m_sections->remove_pages(p, m_arch.pages_per_section(), on_memory ? &altmap : nullptr);
    if (keep_memblock) (void)m_memblock.remove(start, size);
    return added;
  }

  // hotadd_init_pgdat() for a node that never had memory, then the blocks, linked to the node.
  while (m_nodes.size() <= nid) m_nodes.push_back(make_empty_node(static_cast<unsigned>(m_nodes.size())));
  if (m_node_has_cpus.size() < m_nodes.size()) m_node_has_cpus.resize(m_nodes.size(), false);
  for (BlockId id = m_blocks.block_id_of(range.start); id.value() <= m_blocks.block_id_of(range.end() - NrPages(1)).value();
       id = BlockId(id.value() + 1)) {
    MemoryBlock b;
    b.id = id;
    b.nid = nid;
    b.nr_vmemmap_pages = altmap.alloc;
    if (group) {
      b.group = group->id;
      ++group->nr_blocks;
    }
    SPM_CHECK(m_blocks.insert(b).has_value(), "validated block id refused");
    m_dirty_boot_blocks.erase(id.value());
  }
  m_nodes[nid].online = true;
  if (!driver_managed) m_firmware_memmap.push_back({start, PhysAddr(start.value() + size - 1), "System RAM"});
  // x86 add_pages() / arm64 arch_add_memory(): max_pfn grows and never shrinks.
  m_max_pfn = std::max(m_max_pfn, range.end());
  if (flags.has(MHP_MERGE_RESOURCE)) (void)m_iomem.merge_system_ram_resource(res);

  // Auto-online (memhp_default_state / auto_online_blocks): failures do not fail the add.
  if (m_mhp.auto_online_blocks != OnlineType::Offline)
    for (BlockId id = m_blocks.block_id_of(range.start); id.value() <= m_blocks.block_id_of(range.end() - NrPages(1)).value();
         id = BlockId(id.value() + 1))
      (void)device_online_locked(id, m_mhp.auto_online_blocks);
  return {};
}

bool Machine::mhp_supports_memmap_on_memory(uint64_t size) const {
  const uint64_t vmemmap_bytes = (size >> m_arch.page_shift) * STRUCT_PAGE_SIZE;
  const uint64_t pageblock_bytes = m_arch.pageblock_nr_pages().value() << m_arch.page_shift;
  return m_mhp.memmap_on_memory && m_arch.memmap_on_memory_possible && size == m_block_size &&
         vmemmap_bytes % m_arch.pmd_size() == 0 && (size - vmemmap_bytes) % pageblock_bytes == 0;
}

Result<void> Machine::add_memory(unsigned nid, PhysAddr start, uint64_t size, MhpFlags flags) {
  HotplugGuard g(m_hotplug_lock);
  return add_memory_locked(nid, start, size, "System RAM", flags);
}

Result<void> Machine::add_memory_driver_managed(unsigned nid, PhysAddr start, uint64_t size,
                                                std::string_view resource_name, MhpFlags flags) {
  if (!resource_name.starts_with("System RAM (") || !resource_name.ends_with(")"))
    return fail(Errno::Inval, fmt::format("bad resource name '{}' for driver-managed memory", resource_name));
  HotplugGuard g(m_hotplug_lock);
  return add_memory_locked(nid, start, size, resource_name, flags);
}

void Machine::try_offline_node_locked(unsigned nid) {
  Node& node = m_nodes[nid];
  // The node stays while it spans anything (ZONE_DEVICE spans never shrink), holds CPUs, or is
  // still linked to a block.
  if (node.node_spanned_pages.value()) return;
  if (nid < m_node_has_cpus.size() && m_node_has_cpus[nid]) return;
  bool linked = false;
  m_blocks.for_each([&](const MemoryBlock& b) { linked |= b.nid == nid; });
  if (!linked) node.online = false;
}

Result<void> Machine::remove_memory_locked(PhysAddr start, uint64_t size) {
  const uint64_t bs = m_block_size;
  // The kernel BUGs on these; they are caller errors here.
  if (!size || start.value() % bs || size % bs)
    return fail(Errno::Inval, fmt::format("remove_memory: [{:#x}+{:#x}] is not block aligned", start.value(), size));
  const PfnRange range{m_arch.phys_to_pfn(start), NrPages(size >> m_arch.page_shift)};
  const BlockId first = m_blocks.block_id_of(range.start), last = m_blocks.block_id_of(range.end() - NrPages(1));
  std::vector<MemoryBlock*> blocks;
  for (BlockId id = first; id <= last; id = BlockId(id.value() + 1)) {
    MemoryBlock* mem = m_blocks.find(id);
    if (!mem) return fail(Errno::Inval, fmt::format("remove_memory: memory block {} does not exist", id.value()));
    blocks.push_back(mem);
  }
  uint64_t nr_vmemmap = 0;
  for (const MemoryBlock* mem : blocks) {
    if (mem->state != MemoryBlockState::Offline) {
      const uint64_t b = m_arch.pfn_to_phys(m_blocks.block_start_pfn(mem->id)).value();
      const std::string msg =
          fmt::format("removing memory fails, because memory [0x{:016x}-0x{:016x}] is onlined", b, b + bs - 1);
      m_log.log(LogLevel::Warn, "{}", msg);
      return fail(Errno::Busy, msg);
    }
    nr_vmemmap += mem->nr_vmemmap_pages.value();
  }
  const unsigned nid = blocks.back()->nid;
  if (nr_vmemmap && size != bs) {
    const std::string msg = fmt::format("Refuse to remove {:#x} - {:#x},wrong granularity", start.value(), start.value() + size);
    m_log.log(LogLevel::Warn, "{}", msg);
    return fail(Errno::Inval, msg);
  }

  const FirmwareMemmapEntry fw{start, PhysAddr(start.value() + size - 1), "System RAM"};
  std::erase(m_firmware_memmap, fw);
  for (MemoryBlock* mem : blocks) {
    if (mem->group)
      if (MemoryGroup* g = m_groups.find(*mem->group)) --g->nr_blocks;
    m_dirty_boot_blocks.erase(mem->id.value());
    m_pristine_boot_counts.erase(mem->id.value());
    m_blocks.erase(mem->id);
  }
  // arch_remove_memory(): with memmap_on_memory the vmemmap goes back to an altmap that only
  // counts what it handed out.
  VmemAltmap altmap{};
  altmap.alloc = NrPages(nr_vmemmap);
  // __remove_pages(): clear_hwpoisoned_pages() past the altmap's pages, then the sections.
  clear_hwpoisoned_pages_locked(range.start + NrPages(nr_vmemmap), range.nr - NrPages(nr_vmemmap));
  m_sections->remove_pages(range.start, range.nr, nr_vmemmap ? &altmap : nullptr);
  // arm64 keeps memblock; on x86 only boot memory is still listed there.
  (void)m_memblock.remove(start, size);
  (void)m_iomem.release_mem_region_adjustable(start, size);
  try_offline_node_locked(nid);
  return {};
}

Result<void> Machine::remove_memory(PhysAddr start, uint64_t size) {
  HotplugGuard g(m_hotplug_lock);
  return remove_memory_locked(start, size);
}

Result<void> Machine::offline_and_remove_memory(PhysAddr start, uint64_t size) {
  HotplugGuard g(m_hotplug_lock);
  const uint64_t bs = m_block_size;
  if (!size || start.value() % bs || size % bs)
    return fail(Errno::Inval, fmt::format("offline_and_remove_memory: [{:#x}+{:#x}] is not block aligned",
                                          start.value(), size));
  const PfnRange range{m_arch.phys_to_pfn(start), NrPages(size >> m_arch.page_shift)};
  // Remember what each block was, offline them in order, stop at the first failure.
  std::vector<std::pair<BlockId, OnlineType>> was;
  for (BlockId id = m_blocks.block_id_of(range.start); id <= m_blocks.block_id_of(range.end() - NrPages(1));
       id = BlockId(id.value() + 1)) {
    const MemoryBlock* mem = m_blocks.find(id);
    if (!mem) continue;
    OnlineType t = OnlineType::Offline;
    if (mem->state == MemoryBlockState::Online)
      t = mem->zone == ZoneType::Movable ? OnlineType::OnlineMovable : OnlineType::OnlineKernel;
    was.emplace_back(id, t);
  }
  Result<void> rc;
  for (const auto& [id, t] : was)
    if (auto r = device_offline_locked(id); !r) {
      rc = tl::unexpected(r.error());
      break;
    }
  if (rc) rc = remove_memory_locked(start, size);
  if (!rc) {
    for (const auto& [id, t] : was) {
      const MemoryBlock* mem = m_blocks.find(id);
      if (t == OnlineType::Offline || !mem || mem->state != MemoryBlockState::Offline) continue;
      if (auto r = device_online_locked(id, t); !r)
        m_log.log(LogLevel::Warn, "offline_and_remove_memory: Failed to re-online memory: -{}",
                  static_cast<int>(r.error().code));
    }
  }
  return rc;
}

}  // namespace sparsemem
