// Onlining and offlining blocks: device_online/offline, memory_block_online/offline (memmap_on_memory),
// online_pages, offline_pages with isolation, notifiers and migration (spec §4.7, §4.9). Under the lock.
#include <algorithm>
#include <bit>

#include "internal/page_walk.h"
#include "sparsemem/machine.h"

namespace sparsemem {

namespace {
// "[mem %#010llx-%#010llx]" of a pfn range (inclusive end), as online_pages/offline_pages print it.
std::string mem_range(const ArchProfile& arch, Pfn start, NrPages n) {
  return fmt::format("[mem {:#010x}-{:#010x}]", arch.pfn_to_phys(start).value(),
                     arch.pfn_to_phys(start + n).value() - 1);
}

bool node_has_memory(const Node& n) { return n.node_present_pages.value() != 0; }
bool node_has_normal_memory(const Node& n) {
  for (ZoneType z : {ZoneType::DMA, ZoneType::DMA32, ZoneType::Normal})
    if (n.zone(z).populated()) return true;
  return false;
}
bool is_kernel_zone(ZoneType z) { return z <= ZoneType::Normal; }

// f(start, n) for each piece of [pfn, pfn + n) inside one section: descriptors are contiguous in
// the vmemmap within a section only.
template <class F>
void for_each_section_span(const ArchProfile& arch, Pfn pfn, NrPages n, F&& f) {
  const Pfn end = pfn + n;
  for (Pfn p = pfn; p < end;) {
    const Pfn span_end = std::min(end, arch.section_nr_to_pfn(arch.pfn_to_section_nr(p).next()));
    f(p, span_end - p);
    p = span_end;
  }
}
}  // namespace

// The callback interface a driver's online_page_callback sees.
struct Machine::OnlineOps final : OnlinePageOps {
  explicit OnlineOps(Machine& machine) : m(machine) {}
  // Runs inside online_pages(), under the hotplug lock the analysis cannot see through the callback.
  void generic_online_page(Pfn pfn, unsigned order) SPM_NO_TSA override {
    const NrPages n(uint64_t{1} << order);
    // A MAX_ORDER-1 chunk never leaves its section: its descriptors are one array.
    Page* first = m.m_vmemmap->pfn_to_page(pfn);
    for (uint64_t i = 0; i < n.value(); ++i) {
      first[i].clear(PG::reserved);
      first[i].refcount = 0;
    }
    free_initialised_chunk(pfn, order);
  }
  // generic_online_page() after its per-page part: the descriptors already read PG_reserved
  // clear and refcount 0 (online_pages' fused initialisation writes them so).
  void free_initialised_chunk(Pfn pfn, unsigned order) SPM_NO_TSA {
    const Page* first = m.m_vmemmap->pfn_to_page(pfn);
    m.m_nodes[first->nid()].zone(first->zone()).managed_pages += NrPages(uint64_t{1} << order);
    m.free_pages_to_buddy_locked(pfn, order);
  }
  void set_page_offline(Pfn pfn, unsigned order) SPM_NO_TSA override {
    Page* first = m.m_vmemmap->pfn_to_page(pfn);
    for (uint64_t i = 0; i < (uint64_t{1} << order); ++i) {
      first[i].clear(PG::reserved);  // virtio-mem's fake-offline pages are not PG_reserved
      first[i].set_type(PG_offline);
    }
  }
  Machine& m;
};

// memmap_init_range(MEMINIT_HOTPLUG): every descriptor of the range initialised for zone and node
// with PG_reserved; the migratetype of every pageblock starting in it set to `mt`.
void Machine::memmap_init_hotplug_locked(Pfn pfn, NrPages n, unsigned nid, ZoneType zone, Migratetype mt) {
  for_each_section_span(m_arch, pfn, n, [&](Pfn p, NrPages span) {
    init_page_range(m_vmemmap->pfn_to_page(p), span.value(), zone, nid, m_vmemmap->page_addr(p), true);
  });
  set_pageblocks_migratetype_locked(pfn, n, mt);
}

// memmap_init_range()'s migratetype part: every pageblock starting in the range.
void Machine::set_pageblocks_migratetype_locked(Pfn pfn, NrPages n, Migratetype mt) {
  const uint64_t pb = m_arch.pageblock_nr_pages().value();
  for (Pfn p((pfn.value() + pb - 1) & ~(pb - 1)); p < pfn + n; p += NrPages(pb))
    m_sections->set_pageblock_migratetype(p, mt);
}

void Machine::shrink_zone_locked(Pfn pfn, NrPages n, unsigned nid, ZoneType zone) {
  remove_pfn_range_from_zone(m_nodes[nid], zone, pfn, n, m_arch.pages_per_subsection(), [&](Pfn p) {
    if (!m_sections->pfn_is_online(p)) return false;
    const Result<Page> page = m_vmemmap->read_page(p);
    return page && page->zone() == zone && page->nid() == nid;
  });
}

// adjust_present_page_count(): zone, node and memory group; early when the first section is.
void Machine::adjust_present_locked(Pfn pfn, NrPages n, unsigned nid, ZoneType zone, MemoryGroup* group, bool add) {
  const MemSection* ms = m_sections->find(m_arch.pfn_to_section_nr(pfn));
  const bool early = ms && ms->flags().has(SectionFlag::Early);
  if (add)
    zone_present_add(m_nodes[nid], zone, n, early);
  else
    zone_present_sub(m_nodes[nid], zone, n, early);
  if (!group) return;
  NrPages& counter = zone == ZoneType::Movable ? group->present_movable_pages : group->present_kernel_pages;
  counter = add ? counter + n : counter - n;
}

Result<void> Machine::online_pages_locked(Pfn pfn, NrPages n, unsigned nid, ZoneType zone, MemoryGroup* group) {
  if (!n.value() || !m_arch.pageblock_aligned(pfn) || !m_arch.section_aligned(pfn + n)) {
    m_log.warn("online_pages: misaligned range {:#x}+{:#x}", pfn.value(), n.value());
    return fail(Errno::Inval, "online_pages: range not pageblock/section aligned");
  }
  Node& node = m_nodes[nid];
  // Pages are initialised into the zone and isolated before anyone is asked (spec §4.7.2).
  move_pfn_range_to_zone(node, zone, pfn, n);
  // The PG_reserved descriptors memmap_init_range() writes are seen only by a MEM_GOING_ONLINE
  // callback that reads the memmap, by an online page callback, or by a failed online (which
  // leaves them). Without the first two, the descriptors are written once, after the notifiers:
  // reserved when the online fails, else directly in the state generic_online_page() leaves them.
  // Lock-free readers of pfn_to_page() may then miss the reserved state, as they may when the
  // kernel's __free_pages_core() runs right after memmap_init_range(). Saves a pass over the memmap.
  const bool fused = !m_online_page_cb && !m_memory_chain.any_sees_memmap();
  if (fused)
    set_pageblocks_migratetype_locked(pfn, n, Migratetype::Isolate);
  else
    memmap_init_hotplug_locked(pfn, n, nid, zone, Migratetype::Isolate);

  MemoryNotify arg{pfn, n, -1, -1};
  if (!node_has_memory(node)) arg.status_change_nid = static_cast<int>(nid);
  if (is_kernel_zone(zone) && !node_has_normal_memory(node)) arg.status_change_nid_normal = static_cast<int>(nid);
  if (const int err = notifier_to_errno(m_memory_chain.call(MemoryAction::GoingOnline, arg))) {
    // 6.1 leaves the descriptors initialised and the pageblocks isolated; the span goes back by
    // the end-shrink rule, the sections stay offline (spec §4.9 "what a failed online leaves").
    if (fused) memmap_init_hotplug_locked(pfn, n, nid, zone, Migratetype::Isolate);
    m_log.log(LogLevel::Debug, "online_pages {} failed", mem_range(m_arch, pfn, n));
    m_memory_chain.call(MemoryAction::CancelOnline, arg);
    shrink_zone_locked(pfn, n, nid, zone);
    return fail(static_cast<Errno>(-err), fmt::format("online_pages {} failed", mem_range(m_arch, pfn, n)));
  }

  // online_pages_range(): naturally aligned chunks of up to MAX_ORDER-1 through the callback.
  OnlineOps ops(*this);
  if (fused) {
    // A whole section ends up free in MAX_ORDER-1 blocks: one run describes it, so it is left
    // pending (memmap.h, DeferredSectionRun) and written on its first access instead.
    const bool lazy = m_config.kernel.deferred_struct_page_init;
    for_each_section_span(m_arch, pfn, n, [&](Pfn p, NrPages span) {
      if (lazy && span == m_arch.pages_per_section()) {
        m_vmemmap->defer_sections(DeferredSectionRun{m_arch.pfn_to_section_nr(p), 1, zone, nid, false});
        m_nodes[nid].zone(zone).managed_pages += span;
        return;
      }
      init_free_page_range(m_vmemmap->pfn_to_page(p), span.value(), zone, nid, m_vmemmap->page_addr(p));
    });
  }
  for (Pfn p = pfn; p < pfn + n;) {
    unsigned order = m_arch.max_order - 1;
    if (p.value()) order = std::min<unsigned>(order, static_cast<unsigned>(std::countr_zero(p.value())));
    if (m_online_page_cb)
      m_online_page_cb(ops, p, order);
    else if (fused && m_vmemmap->deferred_run(p))
      ;  // counted with its section above
    else if (fused)
      ops.free_initialised_chunk(p, order);
    else
      ops.generic_online_page(p, order);
    p += NrPages(uint64_t{1} << order);
  }
  m_sections->set_online(pfn, n, true);
  adjust_present_locked(pfn, n, nid, zone, group, true);
  const uint64_t pb = m_arch.pageblock_nr_pages().value();
  for (Pfn p = pfn; p < pfn + n; p += NrPages(pb)) m_sections->set_pageblock_migratetype(p, Migratetype::Movable);
  m_memory_chain.call(MemoryAction::Online, arg);
  return {};
}

Result<void> Machine::offline_pages_locked(Pfn start, NrPages n, unsigned nid, ZoneType zone, MemoryGroup* group) {
  if (!n.value() || !m_arch.pageblock_aligned(start) || !m_arch.section_aligned(start + n)) {
    m_log.warn("offline_pages: misaligned range {:#x}+{:#x}", start.value(), n.value());
    return fail(Errno::Inval, "offline_pages: range not pageblock/section aligned");
  }
  const Pfn end = start + n;
  auto failed = [&](Errno e, const char* reason) {
    m_log.log(LogLevel::Debug, "memory offlining {} failed due to {}", mem_range(m_arch, start, n), reason);
    return fail(e, fmt::format("memory offlining {} failed due to {}", mem_range(m_arch, start, n), reason));
  };

  // Blocks with holes can never be offlined (so hotplug memory never has holes).
  uint64_t ram = 0;
  m_iomem.walk_system_ram_range(start, n, [&](Pfn, NrPages nr) {
    ram += nr.value();
    return 0;
  });
  if (ram != n.value()) return failed(Errno::Inval, "memory holes");

  auto in_zone = [&](Pfn p) {
    const Result<Page> page = m_vmemmap->read_page(p);  // a pending section answers unwritten
    return page && page->zone() == zone && page->nid() == nid;
  };
  auto free_pending = [](Pfn, Pfn, const DeferredSectionRun& run) { return !run.reserved && !run.offlined; };
  if (!in_zone(start) || !in_zone(end - NrPages(1))) {
    m_log.warn("offline_pages: range {} is not in zone {}", mem_range(m_arch, start, n), zone_name(zone));
    return failed(Errno::Inval, "multizone range");
  }

  // start_isolate_page_range() -> has_unmovable_pages(MEMORY_OFFLINE): reserved pages are
  // unmovable everywhere; outside ZONE_MOVABLE so is any referenced page that is not LRU,
  // PageOffline or hwpoisoned.
  // 6.1 isolates the first pageblock, then the last, then those between (start_isolate_page_range()
  // in mm/page_isolation.c), so the page it dumps is the first unmovable one in that order.
  std::optional<Pfn> unmovable;
  auto scan_unmovable = [&](Pfn from, Pfn to) {
    if (unmovable || from >= to) return;
    for_each_page_or_pending(*m_vmemmap, m_arch, from, to, [&](Pfn pfn, const Page& p) -> uint64_t {
      bool bad = p.test(PG::reserved);
      if (!bad && zone != ZoneType::Movable && p.refcount != 0)
        bad = !p.test(PG::hwpoison) && !p.has_type(PG_offline) && !p.test(PG::lru);
      if (bad) {
        unmovable = pfn;
        return 0;
      }
      return p.refcount == 0 && p.is_buddy() ? uint64_t{1} << p.private_ : 1;
    }, free_pending);
  };
  const NrPages pageblock = m_arch.pageblock_nr_pages();
  const Pfn first_end = std::min(end, start + pageblock);
  const Pfn last_start = std::max(first_end, end - pageblock);
  scan_unmovable(start, first_end);
  scan_unmovable(last_start, end);
  scan_unmovable(first_end, last_start);
  if (unmovable) {
    dump_page_locked(*unmovable, "unmovable page");
    return failed(Errno::Busy, "failure to isolate range");
  }
  const uint64_t pb = m_arch.pageblock_nr_pages().value();
  auto set_migratetype = [&](Migratetype mt) {
    for (Pfn p = start; p < end; p += NrPages(pb)) m_sections->set_pageblock_migratetype(p, mt);
  };
  set_migratetype(Migratetype::Isolate);

  Node& node = m_nodes[nid];
  MemoryNotify arg{start, n, -1, -1};
  // node_states_check_changes_offline(): the node loses N_NORMAL_MEMORY / N_MEMORY when this range
  // is all it has left of that kind.
  uint64_t kernel_present = 0;
  for (ZoneType z : {ZoneType::DMA, ZoneType::DMA32, ZoneType::Normal}) kernel_present += node.zone(z).present_pages.value();
  if (is_kernel_zone(zone) && n.value() >= kernel_present) arg.status_change_nid_normal = static_cast<int>(nid);
  if (n.value() >= kernel_present + node.zone(ZoneType::Movable).present_pages.value())
    arg.status_change_nid = static_cast<int>(nid);

  auto failed_isolated = [&](Errno e, const char* reason) {
    set_migratetype(Migratetype::Movable);
    m_memory_chain.call(MemoryAction::CancelOffline, arg);
    return failed(e, reason);
  };
  if (const int err = notifier_to_errno(m_memory_chain.call(MemoryAction::GoingOffline, arg)))
    return failed_isolated(static_cast<Errno>(-err), "notifier failure");

  // scan_movable_pages(): a referenced PageOffline page is unmovable.
  std::optional<Pfn> referenced;
  for_each_page_or_pending(*m_vmemmap, m_arch, start, end, [&](Pfn pfn, const Page& p) -> uint64_t {
    if (p.has_type(PG_offline) && p.refcount != 0) {
      referenced = pfn;
      return 0;
    }
    return p.is_buddy() ? uint64_t{1} << p.private_ : 1;
  }, free_pending);
  if (referenced) {
    dump_page_locked(*referenced, "unmovable page");
    return failed_isolated(Errno::Busy, "unmovable page");
  }

  // do_migrate_range(): every movable page moves to a free page outside the isolated range,
  // preferring other nodes with memory, then the highest zone (GFP_HIGHUSER_MOVABLE zonelist).
  // The kernel retries forever while no target is free; the model takes every target first and
  // stops, unchanged, with the error a signal would give ("signal backoff") when one is missing.
  std::vector<std::pair<Pfn, Pfn>> moves;  // source, target
  const PfnRange isolated{start, n};
  std::vector<unsigned> target_nodes;
  for (const Node& other : m_nodes)
    if (other.nid != nid && node_has_memory(other)) target_nodes.push_back(other.nid);
  if (target_nodes.empty()) target_nodes.push_back(nid);
  for (auto it = m_tagged_by_pfn.lower_bound(start); it != m_tagged_by_pfn.end() && it->first < end; ++it) {
    std::optional<Pfn> target;
    for (unsigned tn : target_nodes) {
      for (ZoneType z : {ZoneType::Movable, ZoneType::Normal, ZoneType::DMA32, ZoneType::DMA})
        if ((target = find_free_page_locked(tn, z, isolated))) break;
      if (target) break;
    }
    if (!target) {
      for (const auto& [src, dst] : moves) {
        m_vmemmap->pfn_to_page(dst)->refcount = 0;
        free_pages_to_buddy_locked(dst, 0);
      }
      return failed_isolated(Errno::Intr, "signal backoff");
    }
    take_free_page_locked(*target);
    m_vmemmap->pfn_to_page(*target)->refcount = 1;
    moves.emplace_back(it->first, *target);
  }
  for (const auto& [src, dst] : moves) {
    Page* from = m_vmemmap->pfn_to_page(src);
    Page* to = m_vmemmap->pfn_to_page(dst);
    const TaggedPage tp = m_tagged_by_pfn.at(src);
    to->private_ = tp.tag;
    to->set(PG::lru);
    from->clear(PG::lru);
    from->private_ = 0;
    from->refcount = 0;
    free_pages_to_buddy_locked(src, 0);
    m_tagged_by_pfn.erase(src);
    m_tagged_by_pfn[dst] = tp;
    m_tagged_by_tag[tp.tag] = dst;
  }

  // Success: sections go offline first, then the free pages leave the buddy and the counters
  // shrink; MEM_OFFLINE; then the span shrinks (spec §4.9 "success ordering").
  m_sections->set_online(start, n, false);
  for_each_page_or_pending(*m_vmemmap, m_arch, start, end, [&](Pfn, Page& p) -> uint64_t {
    if (!p.is_buddy()) return 1;
    const uint64_t order = p.private_;
    p.clear_type(PG_buddy);
    p.private_ = 0;
    return uint64_t{1} << order;
  }, [&](Pfn from, Pfn to, const DeferredSectionRun& run) {
    // Only a whole section can stay pending as offlined; a part of one is written and walked.
    if (!free_pending(from, to, run) || from != m_arch.section_nr_to_pfn(run.first) ||
        to - from != m_arch.pages_per_section())
      return false;
    DeferredSectionRun offlined = run;
    offlined.offlined = true;
    m_vmemmap->defer_sections(offlined);
    return true;
  });
  m_log.log(LogLevel::Debug, "Offlined Pages {}", n.value());  // pr_debug: the traces enable it with dyndbg
  node.zone(zone).managed_pages -= n;
  adjust_present_locked(start, n, nid, zone, group, false);
  m_memory_chain.call(MemoryAction::Offline, arg);
  shrink_zone_locked(start, n, nid, zone);
  return {};
}

Result<void> Machine::memory_block_online_locked(MemoryBlock& mem, OnlineType type) {
  const PfnRange r = m_blocks.block_range(mem.id);
  const NrPages v = mem.nr_vmemmap_pages;
  MemoryGroup* group = mem.group ? m_groups.find(*mem.group) : nullptr;
  const ZoneType zone = zone_for_pfn_range(zone_choice_context(), type, mem.nid, group, r.start, r.nr);
  if (v.value()) {
    // mhp_init_memmap_on_memory(): the vmemmap pages join the zone as reserved, self-hosted pages.
    move_pfn_range_to_zone(m_nodes[mem.nid], zone, r.start, v);
    memmap_init_hotplug_locked(r.start, v, mem.nid, zone, Migratetype::Unmovable);
    for_each_page(*m_vmemmap, m_arch, r.start, r.start + v, [](Pfn, Page& p) -> uint64_t {
      p.set(PG::vmemmap_self_hosted);
      return 1;
    });
    if (v >= m_arch.pages_per_section())
      m_sections->set_online(r.start, NrPages(v.value() & ~(m_arch.pages_per_section().value() - 1)), true);
  }
  if (auto res = online_pages_locked(r.start + v, r.nr - v, mem.nid, zone, group); !res) {
    if (v.value()) {
      // mhp_deinit_memmap_on_memory()
      if (v >= m_arch.pages_per_section())
        m_sections->set_online(r.start, NrPages(v.value() & ~(m_arch.pages_per_section().value() - 1)), false);
      shrink_zone_locked(r.start, v, mem.nid, zone);
    }
    return res;
  }
  // The vmemmap pages count as present (never managed) once onlining succeeded.
  if (v.value()) adjust_present_locked(r.start, v, mem.nid, zone, group, true);
  mem.zone = zone;
  return {};
}

Result<void> Machine::memory_block_offline_locked(MemoryBlock& mem) {
  // Blocks spanning zones or nodes (mem->zone NULL) cannot be offlined.
  if (!mem.zone) return fail(Errno::Inval, fmt::format("memory{} spans several zones or nodes", mem.id.value()));
  const PfnRange r = m_blocks.block_range(mem.id);
  const NrPages v = mem.nr_vmemmap_pages;
  const ZoneType zone = *mem.zone;
  MemoryGroup* group = mem.group ? m_groups.find(*mem.group) : nullptr;
  // Unaccount the vmemmap pages first, so an emptied zone is seen as such by offline_pages().
  if (v.value()) adjust_present_locked(r.start, v, mem.nid, zone, group, false);
  if (auto res = offline_pages_locked(r.start + v, r.nr - v, mem.nid, zone, group); !res) {
    if (v.value()) adjust_present_locked(r.start, v, mem.nid, zone, group, true);
    return res;
  }
  if (v.value()) {
    // mhp_deinit_memmap_on_memory()
    if (v >= m_arch.pages_per_section())
      m_sections->set_online(r.start, NrPages(v.value() & ~(m_arch.pages_per_section().value() - 1)), false);
    shrink_zone_locked(r.start, v, mem.nid, zone);
  }
  if (mem.boot) {
    m_dirty_boot_blocks.insert(mem.id.value());
    m_pristine_boot_counts.erase(mem.id.value());
  }
  mem.zone.reset();
  return {};
}

Result<bool> Machine::device_online_locked(BlockId id, OnlineType type) {
  MemoryBlock* mem = m_blocks.find(id);
  if (!mem) return fail(Errno::NoEnt, fmt::format("no memory block {}", id.value()));
  if (mem->state == MemoryBlockState::Online) return true;
  if (mem->state != MemoryBlockState::Offline)
    return fail(Errno::Inval, fmt::format("memory{} is {}", id.value(), memory_block_state_name(mem->state)));
  // memory_subsys_online(): device_online() without a type means MMOP_ONLINE.
  if (type == OnlineType::Offline) type = OnlineType::Online;
  SPM_TRY(memory_block_online_locked(*mem, type));
  mem->state = MemoryBlockState::Online;
  return false;
}

Result<bool> Machine::device_offline_locked(BlockId id) {
  MemoryBlock* mem = m_blocks.find(id);
  if (!mem) return fail(Errno::NoEnt, fmt::format("no memory block {}", id.value()));
  if (mem->state == MemoryBlockState::Offline) return true;
  if (mem->state != MemoryBlockState::Online)
    return fail(Errno::Inval, fmt::format("memory{} is {}", id.value(), memory_block_state_name(mem->state)));
  // memory_block_change_state(): "going-offline" while the attempt runs, back to online on failure.
  mem->state = MemoryBlockState::GoingOffline;
  if (auto res = memory_block_offline_locked(*mem); !res) {
    mem->state = MemoryBlockState::Online;
    return tl::unexpected(res.error());
  }
  mem->state = MemoryBlockState::Offline;
  return false;
}

Result<void> Machine::device_online(BlockId id, OnlineType type) {
  HotplugGuard g(m_hotplug_lock);
  SPM_TRY(device_online_locked(id, type));
  return {};
}

Result<void> Machine::device_offline(BlockId id) {
  HotplugGuard g(m_hotplug_lock);
  SPM_TRY(device_offline_locked(id));
  return {};
}

Result<void> Machine::memory_block_state_store(BlockId id, OnlineType type) {
  HotplugGuard g(m_hotplug_lock);
  // state_store(): the generic device layer reports "already in that state", which becomes -EINVAL.
  Result<bool> already = type == OnlineType::Offline ? device_offline_locked(id) : device_online_locked(id, type);
  if (!already) return tl::unexpected(already.error());
  if (*already)
    return fail(Errno::Inval, fmt::format("memory{} is already {}", id.value(),
                                          type == OnlineType::Offline ? "offline" : "online"));
  return {};
}

}  // namespace sparsemem
