// The page allocation state offlining needs: buddy free blocks, tagged allocations out of them, frees
// with merging, dump_page() (spec §4.9). Entry points take the hotplug lock; _locked helpers require it.
#include <algorithm>

#include "sparsemem/machine.h"

namespace sparsemem {

namespace {
std::string page_flag_names(const Page& p) {
  static constexpr std::pair<PG, const char*> kNames[] = {
      {PG::locked, "locked"},       {PG::referenced, "referenced"}, {PG::uptodate, "uptodate"},
      {PG::dirty, "dirty"},         {PG::lru, "lru"},               {PG::active, "active"},
      {PG::slab, "slab"},           {PG::owner_priv_1, "owner_priv_1"}, {PG::reserved, "reserved"},
      {PG::private_, "private"},    {PG::head, "head"},             {PG::swapbacked, "swapbacked"},
      {PG::hwpoison, "hwpoison"},
  };
  std::string out;
  for (const auto& [flag, name] : kNames)
    if (p.test(flag)) {
      out += name;
      out += '|';
    }
  return out;
}
}  // namespace

// is_free_buddy_page(): the head of the free block holding pfn, if any.
std::optional<Pfn> Machine::free_buddy_head_locked(Pfn pfn) const {
  for (unsigned order = 0; order < m_arch.max_order; ++order) {
    const Pfn head(pfn.value() & ~((uint64_t{1} << order) - 1));
    // A block of at most MAX_ORDER-1 never leaves its section, so the head's memmap is mapped.
    const Result<Page> p = m_vmemmap->read_page(head);
    if (p && p->is_buddy() && p->private_ >= order) return head;
  }
  return std::nullopt;
}

// __free_one_page(): merge with free buddies of the same order, zone and node up to MAX_ORDER-1.
void Machine::free_pages_to_buddy_locked(Pfn pfn, unsigned order) {
  const Page* first = m_vmemmap->pfn_to_page(pfn);
  const ZoneType zone = first->zone();
  const unsigned nid = first->nid();
  while (order + 1 < m_arch.max_order) {
    const Pfn buddy(pfn.value() ^ (uint64_t{1} << order));
    Page* b = m_vmemmap->pfn_to_page(buddy);
    if (!b->is_buddy() || b->private_ != order || b->zone() != zone || b->nid() != nid) break;
    b->clear_type(PG_buddy);
    b->private_ = 0;
    pfn = std::min(pfn, buddy);
    ++order;
  }
  Page* head = m_vmemmap->pfn_to_page(pfn);
  head->set_type(PG_buddy);
  head->private_ = order;
}

// Takes one free page out of its buddy block, splitting the rest back into free blocks (expand()).
void Machine::take_free_page_locked(Pfn pfn) {
  const std::optional<Pfn> head = free_buddy_head_locked(pfn);
  SPM_CHECK(head.has_value(), "take_free_page: page is not free");
  Page* h = m_vmemmap->pfn_to_page(*head);
  unsigned order = static_cast<unsigned>(h->private_);
  h->clear_type(PG_buddy);
  h->private_ = 0;
  Pfn lo = *head;
  while (order > 0) {
    --order;
    const NrPages half(uint64_t{1} << order);
    const Pfn upper = lo + half;
    const Pfn freed = pfn >= upper ? lo : upper;
    if (pfn >= upper) lo = upper;
    Page* f = m_vmemmap->pfn_to_page(freed);
    f->set_type(PG_buddy);
    f->private_ = order;
  }
}

std::optional<Pfn> Machine::find_free_page_locked(unsigned nid, ZoneType zt, PfnRange exclude) const {
  if (nid >= m_nodes.size()) return std::nullopt;
  const Zone& zone = m_nodes[nid].zone(zt);
  if (zone.is_empty()) return std::nullopt;
  const Pfn end = zone.zone_end_pfn();
  for (Pfn pfn = zone.zone_start_pfn; pfn < end;) {
    if (exclude.contains(pfn)) {
      pfn = exclude.end();
      continue;
    }
    // Read, not pfn_to_page(): a pending section answers from its run and stays unwritten.
    const Result<Page> p = m_sections->pfn_is_online(pfn) ? m_vmemmap->read_page(pfn) : fail(Errno::NoEnt, "offline");
    if (!p) {
      // Offline section or hole subsection: nothing free before the next subsection.
      pfn = Pfn((pfn.value() | (m_arch.pages_per_subsection().value() - 1)) + 1);
      continue;
    }
    if (p->zone() == zt && p->nid() == nid) {
      if (p->is_buddy()) return pfn;
      if (p->refcount == 0 && !p->has_type(PG_offline) && free_buddy_head_locked(pfn)) return pfn;
    }
    pfn += NrPages(p->is_buddy() ? uint64_t{1} << p->private_ : 1);
  }
  return std::nullopt;
}

Result<Pfn> Machine::alloc_page_at_locked(Pfn pfn, Migratability kind, uint64_t tag) {
  if (m_tagged_by_tag.count(tag)) return fail(Errno::Exist, fmt::format("tag {:#x} is in use", tag));
  Page* p = m_sections->pfn_to_online_page(pfn);
  if (!p) return fail(Errno::Inval, fmt::format("pfn {:#x} is not online memory", pfn.value()));
  // GFP_KERNEL never reaches ZONE_MOVABLE: unmovable memory there could never be offlined.
  if (kind == Migratability::Unmovable && p->zone() == ZoneType::Movable)
    return fail(Errno::Inval, fmt::format("pfn {:#x}: unmovable allocation in ZONE_MOVABLE", pfn.value()));
  if (p->refcount != 0 || p->test(PG::reserved) || !free_buddy_head_locked(pfn))
    return fail(Errno::Busy, fmt::format("pfn {:#x} is not free", pfn.value()));
  take_free_page_locked(pfn);
  p->refcount = 1;
  p->private_ = tag;
  if (kind == Migratability::Movable) p->set(PG::lru);
  m_tagged_by_pfn[pfn] = TaggedPage{tag, kind};
  m_tagged_by_tag[tag] = pfn;
  return pfn;
}

Result<Pfn> Machine::alloc_page(unsigned nid, ZoneType zone, Migratability kind, uint64_t tag) {
  HotplugGuard g(m_hotplug_lock);
  if (nid >= m_nodes.size() || zone == ZoneType::Device)
    return fail(Errno::Inval, fmt::format("no allocatable zone {} on node {}", zone_name(zone), nid));
  if (kind == Migratability::Unmovable && zone == ZoneType::Movable)
    return fail(Errno::Inval, "unmovable allocation in ZONE_MOVABLE");
  if (m_tagged_by_tag.count(tag)) return fail(Errno::Exist, fmt::format("tag {:#x} is in use", tag));
  const std::optional<Pfn> pfn = find_free_page_locked(nid, zone, PfnRange{});
  if (!pfn) return fail(Errno::NoMem, fmt::format("node {} zone {} has no free page", nid, zone_name(zone)));
  return alloc_page_at_locked(*pfn, kind, tag);
}

Result<Pfn> Machine::alloc_page_at(Pfn pfn, Migratability kind, uint64_t tag) {
  HotplugGuard g(m_hotplug_lock);
  return alloc_page_at_locked(pfn, kind, tag);
}

Result<void> Machine::free_page(uint64_t tag) {
  HotplugGuard g(m_hotplug_lock);
  auto it = m_tagged_by_tag.find(tag);
  if (it == m_tagged_by_tag.end()) return fail(Errno::NoEnt, fmt::format("no page carries tag {:#x}", tag));
  const Pfn pfn = it->second;
  Page* p = m_vmemmap->pfn_to_page(pfn);
  p->clear(PG::lru);
  p->private_ = 0;
  p->refcount = 0;
  free_pages_to_buddy_locked(pfn, 0);
  m_tagged_by_pfn.erase(pfn);
  m_tagged_by_tag.erase(it);
  return {};
}

std::optional<Pfn> Machine::page_of_tag(uint64_t tag) const {
  HotplugGuard g(m_hotplug_lock);
  auto it = m_tagged_by_tag.find(tag);
  if (it == m_tagged_by_tag.end()) return std::nullopt;
  return it->second;
}

size_t Machine::nr_tagged_pages() const {
  HotplugGuard g(m_hotplug_lock);
  return m_tagged_by_tag.size();
}

// dump_page(): the lines 6.1 prints before "page dumped because: <reason>" (the raw words and the
// lastcpupid field are left out: the model's flags word carries neither).
void Machine::dump_page_locked(Pfn pfn, std::string_view reason) {
  const Page& p = *m_vmemmap->pfn_to_page(pfn);
  const int mapcount = p.has_type(PG_buddy) || p.has_type(PG_offline) ? 0 : p.mapcount + 1;
  m_log.log(LogLevel::Warn, "page:(____ptrval____) refcount:{} mapcount:{} mapping:{:016x} index:{:#x} pfn:{:#x}",
            p.refcount, mapcount, p.mapping, p.index, pfn.value());
  m_log.log(LogLevel::Warn, "flags: {:#x}({}node={}|zone={})", p.flags, page_flag_names(p), p.nid(),
            static_cast<unsigned>(p.zone()));
  m_log.log(LogLevel::Warn, "page dumped because: {}", reason);
}

}  // namespace sparsemem
