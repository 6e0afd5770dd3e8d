// Zones and nodes (struct zone, pglist_data): spans, present, present_early and managed pages.
// Owned by the Machine; changed only under its hotplug lock (boot, online, offline, memremap).
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "sparsemem/arch.h"
#include "sparsemem/invariant.h"
#include "sparsemem/page.h"
#include "sparsemem/units.h"

namespace sparsemem {

// INV-ZONE-1: present_pages <= spanned_pages
// INV-ZONE-2: managed_pages <= present_pages
// INV-ZONE-3: present_early_pages <= present_pages
// INV-ZONE-4: ZoneType::Device has present == managed == 0 (spec §2.5)
struct Zone {
  ZoneType type = ZoneType::Normal;
  unsigned nid = 0;
  Pfn zone_start_pfn{0};
  NrPages spanned_pages{0};
  NrPages present_pages{0};
  NrPages present_early_pages{0};
  NrPages managed_pages{0};
  NrPages cma_pages{0};

  Pfn zone_end_pfn() const { return zone_start_pfn + spanned_pages; }
  bool is_empty() const { return spanned_pages.value() == 0; }
  bool populated() const { return present_pages.value() != 0; }
  // zone_intersects(): false for an empty zone, else half-open overlap.
  bool intersects(Pfn start, NrPages n) const {
    return !is_empty() && PfnRange{zone_start_pfn, spanned_pages}.overlaps(PfnRange{start, n});
  }
  void check_invariants(InvariantReport& report) const;
};

// INV-NODE-1: the node span is the union (hull) of its non-empty zone spans (spec §5.14)
// INV-NODE-2: node_present_pages is the sum of its zones' present_pages
struct Node {
  unsigned nid = 0;
  bool online = false;
  Pfn node_start_pfn{0};
  NrPages node_spanned_pages{0};
  NrPages node_present_pages{0};
  std::array<Zone, MAX_NR_ZONES> zones{};

  Zone& zone(ZoneType t) { return zones[static_cast<unsigned>(t)]; }
  const Zone& zone(ZoneType t) const { return zones[static_cast<unsigned>(t)]; }
  void check_invariants(InvariantReport& report) const;
};

// A node with every zone empty and typed (the pgdat hotadd_init_pgdat() brings up, and boot's start).
Node make_empty_node(unsigned nid);

// ---- Zone span management (mm/memory_hotplug.c, spec §4.11, §5.14). Pure functions over a Node;
// the caller holds the hotplug lock and initialises the memmap itself.

// The question the shrinking rule asks about one pfn: pfn_to_online_page(pfn) is non-null and its
// descriptor names this node and this zone.
using OnlineInZoneProbe = std::function<bool(Pfn pfn)>;

// move_pfn_range_to_zone() without the memmap: an empty zone starts at `start`; the zone and the
// node grow to cover [start, start + n) (a span only ever grows here; zones may overlap).
void move_pfn_range_to_zone(Node& node, ZoneType zone, Pfn start, NrPages n);
// remove_pfn_range_from_zone() (shrink_zone_span + update_pgdat_span): ZoneType::Device never
// shrinks. A range at the zone's start moves the start to the first pfn of [start + n, end) for
// which `online_in_zone` holds, stepping by `step` (PAGES_PER_SUBSECTION); a range at the zone's end
// moves the end behind the last such pfn of [zone start, start); none found empties the zone
// (start 0, spanned 0); a range in the middle changes nothing. The node span becomes the hull of
// its non-empty zones. Requires: the range's own pages already fail `online_in_zone`.
void remove_pfn_range_from_zone(Node& node, ZoneType zone, Pfn start, NrPages n, NrPages step,
                                const OnlineInZoneProbe& online_in_zone);
// update_pgdat_span(): node span = hull of the non-empty zone spans (ZONE_DEVICE included).
void update_pgdat_span(Node& node);
// adjust_present_page_count() for the zone and node: present += n (and present_early when the
// range's first section is early); the _sub form takes them away again.
void zone_present_add(Node& node, ZoneType zone, NrPages n, bool early);
void zone_present_sub(Node& node, ZoneType zone, NrPages n, bool early);

// The pfn at which each boot zone ends (max_zone_pfn[]): x86 DMA < 16 MiB, DMA32 < 4 GiB, then
// Normal; arm64 (6.1, no firmware DMA limit) puts everything below 4 GiB in DMA and has no DMA32.
struct ZoneLimits {
  std::array<Pfn, MAX_NR_ZONES> max_pfn{};  // exclusive end for DMA, DMA32, Normal; Movable/Device unused
};
ZoneLimits boot_zone_limits(const ArchProfile& arch);

}  // namespace sparsemem
