// Zone and node span management for hotplug: move_pfn_range_to_zone / remove_pfn_range_from_zone
// and present-page accounting (spec §4.11). Pure functions over a Node; the caller holds the lock.
#include <algorithm>
#include <optional>

#include "sparsemem/zone.h"

namespace sparsemem {

Node make_empty_node(unsigned nid) {
  Node n;
  n.nid = nid;
  for (unsigned z = 0; z < MAX_NR_ZONES; ++z) {
    n.zones[z].type = static_cast<ZoneType>(z);
    n.zones[z].nid = nid;
  }
  return n;
}

void move_pfn_range_to_zone(Node& node, ZoneType zt, Pfn start, NrPages n) {
  Zone& zone = node.zone(zt);
  // resize_zone_range(): an empty zone (init_currently_empty_zone) restarts at `start`.
  const Pfn old_end = zone.is_empty() ? start : zone.zone_end_pfn();
  if (zone.is_empty() || start < zone.zone_start_pfn) zone.zone_start_pfn = start;
  zone.spanned_pages = std::max(start + n, old_end) - zone.zone_start_pfn;
  // resize_pgdat_range(): the same for the node. An empty node's stale start is reset with it.
  const Pfn node_old_end = node.node_spanned_pages.value() ? node.node_start_pfn + node.node_spanned_pages : start;
  if (!node.node_spanned_pages.value() || start < node.node_start_pfn) node.node_start_pfn = start;
  node.node_spanned_pages = std::max(start + n, node_old_end) - node.node_start_pfn;
}

void update_pgdat_span(Node& node) {
  Pfn lo(0), hi(0);
  bool any = false;
  for (const Zone& z : node.zones) {
    if (z.is_empty()) continue;
    if (!any) {
      lo = z.zone_start_pfn;
      hi = z.zone_end_pfn();
      any = true;
      continue;
    }
    lo = std::min(lo, z.zone_start_pfn);
    hi = std::max(hi, z.zone_end_pfn());
  }
  node.node_start_pfn = lo;
  node.node_spanned_pages = hi - lo;
}

void remove_pfn_range_from_zone(Node& node, ZoneType zt, Pfn start, NrPages n, NrPages step,
                                const OnlineInZoneProbe& online_in_zone) {
  // ZONE_DEVICE spans never shrink (spec §9.17): devmem ranges leave no online pages to look for.
  if (zt == ZoneType::Device) return;
  Zone& zone = node.zone(zt);
  if (!zone.is_empty()) {
    const Pfn end = start + n;
    const Pfn zone_end = zone.zone_end_pfn();
    if (zone.zone_start_pfn == start) {
      // find_smallest_section_pfn(): the first online pfn of this zone after the range.
      std::optional<Pfn> found;
      for (Pfn pfn = end; pfn < zone_end; pfn += step)
        if (online_in_zone(pfn)) {
          found = pfn;
          break;
        }
      if (found) {
        zone.spanned_pages = zone_end - *found;
        zone.zone_start_pfn = *found;
      } else {
        zone.zone_start_pfn = Pfn(0);
        zone.spanned_pages = NrPages(0);
      }
    } else if (zone_end == end) {
      // find_biggest_section_pfn(): the last online pfn before the range, scanning down from
      // start - 1 (so the new end need not be subsection aligned).
      std::optional<Pfn> found;
      for (uint64_t pfn = start.value() - 1;; pfn -= step.value()) {
        if (online_in_zone(Pfn(pfn))) {
          found = Pfn(pfn);
          break;
        }
        if (pfn < zone.zone_start_pfn.value() + step.value()) break;
      }
      if (found) {
        zone.spanned_pages = *found + NrPages(1) - zone.zone_start_pfn;
      } else {
        zone.zone_start_pfn = Pfn(0);
        zone.spanned_pages = NrPages(0);
      }
    }
  }
  update_pgdat_span(node);
}

void zone_present_add(Node& node, ZoneType zt, NrPages n, bool early) {
  Zone& zone = node.zone(zt);
  zone.present_pages += n;
  if (early) zone.present_early_pages += n;
  node.node_present_pages += n;
}

void zone_present_sub(Node& node, ZoneType zt, NrPages n, bool early) {
  Zone& zone = node.zone(zt);
  zone.present_pages -= n;
  if (early) zone.present_early_pages -= n;
  node.node_present_pages -= n;
}

}  // namespace sparsemem
