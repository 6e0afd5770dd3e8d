// Zone and node invariants. Pure checks over the values in zone.h.
#include "sparsemem/zone.h"

namespace sparsemem {

void Zone::check_invariants(InvariantReport& report) const {
  if (present_pages > spanned_pages)
    report.fail("INV-ZONE-1", "node {} zone {}: present {} > spanned {}", nid, zone_name(type),
                present_pages.value(), spanned_pages.value());
  if (managed_pages > present_pages)
    report.fail("INV-ZONE-2", "node {} zone {}: managed {} > present {}", nid, zone_name(type),
                managed_pages.value(), present_pages.value());
  if (present_early_pages > present_pages)
    report.fail("INV-ZONE-3", "node {} zone {}: present_early {} > present {}", nid, zone_name(type),
                present_early_pages.value(), present_pages.value());
  if (type == ZoneType::Device && (present_pages.value() || managed_pages.value()))
    report.fail("INV-ZONE-4", "node {} zone Device: present {} managed {} (must be 0)", nid,
                present_pages.value(), managed_pages.value());
}

void Node::check_invariants(InvariantReport& report) const {
  Pfn lo(UINT64_MAX), hi(0);
  NrPages present(0);
  for (const Zone& z : zones) {
    z.check_invariants(report);
    present += z.present_pages;
    if (z.is_empty()) continue;
    lo = std::min(lo, z.zone_start_pfn);
    hi = std::max(hi, z.zone_end_pfn());
  }
  const NrPages spanned = hi > lo ? hi - lo : NrPages(0);
  if (spanned != node_spanned_pages || (spanned.value() && lo != node_start_pfn))
    report.fail("INV-NODE-1", "node {}: span [{:#x}+{:#x}) is not the hull of its zones [{:#x}+{:#x})", nid,
                node_start_pfn.value(), node_spanned_pages.value(), spanned.value() ? lo.value() : 0,
                spanned.value());
  if (present != node_present_pages)
    report.fail("INV-NODE-2", "node {}: present {} != sum of zone present {}", nid, node_present_pages.value(),
                present.value());
}

}  // namespace sparsemem
