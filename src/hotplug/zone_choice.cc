// Zone choice for onlining (zone_for_pfn_range and the auto-movable policy of mm/memory_hotplug.c,
// spec §4.8) and the valid_zones text of an offline block (spec §6.2). Pure functions of their inputs.
#include <algorithm>

#include "sparsemem/memory_block.h"

namespace sparsemem {

namespace {

// auto_movable_stats: MOVABLE and early KERNEL pages over the populated zones of one node or all.
struct MovableStats {
  int64_t kernel_early_pages = 0;
  int64_t movable_pages = 0;
};

void account_zone(MovableStats& s, const Zone& z) {
  if (!z.populated()) return;
  if (z.type == ZoneType::Movable) {
    s.movable_pages += static_cast<int64_t>(z.present_pages.value());
  } else {
    // CMA pages of kernel zones behave like movable memory (Debian has no CMA: cma_pages is 0).
    s.kernel_early_pages += static_cast<int64_t>(z.present_early_pages.value()) - static_cast<int64_t>(z.cma_pages.value());
    s.movable_pages += static_cast<int64_t>(z.cma_pages.value());
  }
}

// auto_movable_can_online_movable(nid or all, group, nr_pages).
bool can_online_movable(const ZoneChoiceContext& ctx, std::optional<unsigned> nid, const MemoryGroup* group,
                        int64_t nr_pages) {
  MovableStats s;
  for (const Node& node : ctx.nodes) {
    if (nid && node.nid != *nid) continue;
    for (const Zone& z : node.zones) account_zone(s, z);
  }
  // Kernel memory inside other dynamic groups lets those groups hold more MOVABLE memory: take
  // their requirement out of the early kernel pages, and their movable pages out of the total.
  const int64_t ratio = ctx.config.auto_movable_ratio;
  int64_t req_kernel_early = 0, group_movable = 0;
  ctx.groups.for_each([&](const MemoryGroup& g) {
    if (!g.is_dynamic || (group && g.id == group->id) || (nid && g.nid != *nid) || !ratio) return;
    const int64_t pages = static_cast<int64_t>(g.present_movable_pages.value()) * 100 / ratio -
                          static_cast<int64_t>(g.present_kernel_pages.value());
    if (pages > 0) req_kernel_early += pages;
    group_movable += static_cast<int64_t>(g.present_movable_pages.value());
  });
  if (s.kernel_early_pages <= req_kernel_early) return false;
  int64_t kernel_early = s.kernel_early_pages - req_kernel_early;
  int64_t movable = s.movable_pages - group_movable;
  if (group && group->is_dynamic) kernel_early += static_cast<int64_t>(group->present_kernel_pages.value());
  movable += nr_pages;
  return movable <= ratio * kernel_early / 100;
}

ZoneType auto_movable_zone_for_pfn(const ZoneChoiceContext& ctx, unsigned nid, const MemoryGroup* group, Pfn pfn,
                                   NrPages nr_pages) {
  const Node& node = ctx.nodes[nid];
  if (!ctx.config.auto_movable_ratio) return default_kernel_zone_for_pfn(node, pfn, nr_pages);
  uint64_t online_pages = 0, max_pages = 0;
  if (group && !group->is_dynamic) {
    max_pages = group->max_pages.value();
    online_pages = group->present_movable_pages.value();
    // Anything of the group in a kernel zone: the whole group goes there.
    if (group->present_kernel_pages.value()) return default_kernel_zone_for_pfn(node, pfn, nr_pages);
  } else if (!group || group->unit_pages == nr_pages) {
    max_pages = nr_pages.value();
  } else {
    // Dynamic group: look at the online sections of the unit that holds pfn (dynamic groups only
    // hold hot-added memory, whose sections are each in a single zone).
    max_pages = group->unit_pages.value();
    pfn = Pfn(pfn.value() & ~(group->unit_pages.value() - 1));
    const Pfn end = pfn + group->unit_pages;
    for (; pfn < end; pfn += ctx.pages_per_section) {
      const std::optional<ZoneType> z = ctx.online_page_zone(pfn);
      if (!z) continue;
      if (*z != ZoneType::Movable) return default_kernel_zone_for_pfn(node, pfn, nr_pages);
      online_pages += ctx.pages_per_section.value();
    }
  }
  // MOVABLE if everything the group may still online could currently go MOVABLE.
  nr_pages = NrPages(max_pages - std::min(max_pages, online_pages));
  const auto need = static_cast<int64_t>(nr_pages.value());
  if (!can_online_movable(ctx, std::nullopt, group, need)) return default_kernel_zone_for_pfn(node, pfn, nr_pages);
  if (ctx.config.auto_movable_numa_aware && !can_online_movable(ctx, nid, group, need))
    return default_kernel_zone_for_pfn(node, pfn, nr_pages);
  return ZoneType::Movable;
}

ZoneType default_zone_for_pfn(const ZoneChoiceContext& ctx, const Node& node, Pfn start, NrPages n) {
  const ZoneType kernel = default_kernel_zone_for_pfn(node, start, n);
  const bool in_kernel = node.zone(kernel).intersects(start, n);
  const bool in_movable = node.zone(ZoneType::Movable).intersects(start, n);
  // Exactly one candidate already spans the range: keep zones contiguous by joining it.
  if (in_kernel != in_movable) return in_kernel ? kernel : ZoneType::Movable;
  return ctx.config.movable_node ? ZoneType::Movable : kernel;
}

}  // namespace

ZoneType default_kernel_zone_for_pfn(const Node& node, Pfn start, NrPages n) {
  for (ZoneType z : {ZoneType::DMA, ZoneType::DMA32})
    if (node.zone(z).intersects(start, n)) return z;
  return ZoneType::Normal;
}

ZoneType zone_for_pfn_range(const ZoneChoiceContext& ctx, OnlineType online_type, unsigned nid,
                            const MemoryGroup* group, Pfn start, NrPages n) {
  SPM_CHECK(nid < ctx.nodes.size(), "zone_for_pfn_range: node without pgdat");
  const Node& node = ctx.nodes[nid];
  switch (online_type) {
    case OnlineType::OnlineKernel: return default_kernel_zone_for_pfn(node, start, n);
    case OnlineType::OnlineMovable: return ZoneType::Movable;
    case OnlineType::Online:
      if (ctx.config.online_policy == OnlinePolicy::AutoMovable)
        return auto_movable_zone_for_pfn(ctx, nid, group, start, n);
      return default_zone_for_pfn(ctx, node, start, n);
    case OnlineType::Offline: break;
  }
  SPM_UNREACHABLE("zone_for_pfn_range: offline is not an online type");
}

std::string valid_zones_offline(const ZoneChoiceContext& ctx, unsigned nid, const MemoryGroup* group, Pfn start,
                                NrPages n) {
  const ZoneType def = zone_for_pfn_range(ctx, OnlineType::Online, nid, group, start, n);
  std::string out = zone_name(def);
  for (OnlineType t : {OnlineType::OnlineKernel, OnlineType::OnlineMovable}) {
    const ZoneType z = zone_for_pfn_range(ctx, t, nid, group, start, n);
    if (z != def) {
      out += ' ';
      out += zone_name(z);
    }
  }
  return out;
}

}  // namespace sparsemem
