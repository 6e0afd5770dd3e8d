// Page descriptor initialisation (__init_single_page and the reserved variant) and zone names.
// Pure functions on a caller-owned descriptor; the caller holds the hotplug lock or owns the range.
#include "sparsemem/page.h"

#include <cstring>

namespace sparsemem {

const char* zone_name(ZoneType z) {
  switch (z) {
    case ZoneType::DMA: return "DMA";
    case ZoneType::DMA32: return "DMA32";
    case ZoneType::Normal: return "Normal";
    case ZoneType::Movable: return "Movable";
    case ZoneType::Device: return "Device";
  }
  return "?";
}

void Page::set_zone_nid(ZoneType z, unsigned nid) {
  constexpr uint64_t zone_mask = (uint64_t{1} << ZONES_SHIFT) - 1;
  constexpr uint64_t node_mask = (uint64_t{1} << NODES_SHIFT) - 1;
  flags &= ~((zone_mask << ZONES_PGSHIFT) | (node_mask << NODES_PGSHIFT));
  flags |= (static_cast<uint64_t>(z) & zone_mask) << ZONES_PGSHIFT;
  flags |= (static_cast<uint64_t>(nid) & node_mask) << NODES_PGSHIFT;
}

void init_single_page(Page& p, ZoneType zone, unsigned nid, VmemmapAddr self) {
  // The descriptor may hold anything (buddy leftovers, 0xFD, device contents): start from zero
  // bytes rather than assigning fields, exactly as the kernel's 64-byte clear does.
  std::memset(static_cast<void*>(&p), 0, sizeof(Page));
  p.set_zone_nid(zone, nid);
  p.refcount = 1;
  p.mapcount = -1;
  // INIT_LIST_HEAD(&page->lru): both list pointers hold the list_head's own address, which is
  // the descriptor's address plus offsetof(lru) = 0x08; bit0 is clear, so the page is no tail.
  const uint64_t lru_self = self.value() + offsetof(Page, compound_head);
  p.compound_head = lru_self;
  p.lru_prev = lru_self;
}

void init_reserved_page(Page& p, ZoneType zone, unsigned nid, VmemmapAddr self) {
  init_single_page(p, zone, nid, self);
  p.set(PG::reserved);
}

namespace {
// Everything but the two self-pointing lru words is the same for every page of the range, so
// build it once and store whole descriptors: no read of the old (possibly poisoned) contents.
void store_from_template(Page* first, uint64_t n, const Page& tmpl, VmemmapAddr first_self) {
  uint64_t lru_self = first_self.value() + offsetof(Page, compound_head);
  for (uint64_t i = 0; i < n; ++i, lru_self += sizeof(Page)) {
    Page p = tmpl;
    p.compound_head = lru_self;
    p.lru_prev = lru_self;
    first[i] = p;
  }
}

Page range_template(ZoneType zone, unsigned nid, bool reserved, int32_t refcount) {
  Page tmpl{};
  tmpl.set_zone_nid(zone, nid);
  if (reserved) tmpl.set(PG::reserved);
  tmpl.refcount = refcount;
  tmpl.mapcount = -1;
  return tmpl;
}
}  // namespace

void init_page_range(Page* first, uint64_t n, ZoneType zone, unsigned nid, VmemmapAddr first_self,
                     bool reserved) {
  store_from_template(first, n, range_template(zone, nid, reserved, 1), first_self);
}

void init_free_page_range(Page* first, uint64_t n, ZoneType zone, unsigned nid, VmemmapAddr first_self) {
  store_from_template(first, n, range_template(zone, nid, false, 0), first_self);
}

}  // namespace sparsemem
