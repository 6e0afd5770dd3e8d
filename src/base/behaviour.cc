// The table of named behaviours; each entry cites the upstream thread it reproduces. Immutable data.
#include "sparsemem/behaviour.h"

#include <array>

namespace sparsemem {

namespace {
constexpr Behaviour make(std::string_view name, std::string_view source, auto&& tweak) {
  Behaviour b;
  b.name = name;
  b.source = source;
  tweak(b);
  return b;
}

constexpr std::array kBehaviours = {
    kLinux61,
    make("seed000-memblock-pfn-valid", "seed 000: arm64 pfn_valid() vs ZONE_DEVICE (Feb 2021), pre-5.12 arm64",
         [](Behaviour& b) { b.memblock_pfn_valid = true; }),
    make("seed001-no-reserved", "seed 001: don't mark hotplugged/ZONE_DEVICE pages PG_reserved (Oct 2019)",
         [](Behaviour& b) { b.device_pages_reserved = false; }),
    make("seed001-zone-device-map", "seed 001: Dan Williams' per-subsection ZONE_DEVICE map (Oct 2019)",
         [](Behaviour& b) {
           b.device_pages_reserved = false;
           b.subsection_zone_device_map = true;
         }),
    make("seed002-reject-private-altmap", "seed 002: HMM v13 review, reject an altmap for unaddressable memory",
         [](Behaviour& b) { b.reject_private_altmap = true; }),
    make("seed003-hard-error", "seed 003: arm64 device-private outside the vmemmap window is an error (Apr 2023)",
         [](Behaviour& b) { b.out_of_window = OutOfWindowRule::HardError; }),
    make("seed003-window-placement", "seed 003: place device-private memory only where the vmemmap window covers it",
         [](Behaviour& b) { b.out_of_window = OutOfWindowRule::PlaceInWindow; }),
    make("seed004-legacy", "seed 004: pre-fix partial depopulation of early sections, old pfn_to_online_page",
         [](Behaviour& b) {
           b.early_memmap = EarlyMemmapRule::LegacyDepopulate;
           b.old_pfn_to_online_page = true;
         }),
    make("seed004-repopulate", "seed 004: Dan Williams' partial depopulate and repopulate of early sections",
         [](Behaviour& b) { b.early_memmap = EarlyMemmapRule::PartialRepopulate; }),
    make("linux-6.1.0", "Linux 6.1.0 before the 6.1.y fixes (spec §9.6, §9.7)",
         [](Behaviour& b) {
           b.region_intersects_top_level_only = true;
           b.zone_device_raises_max_pfn = true;
         }),
};
}  // namespace

std::span<const Behaviour> all_behaviours() { return kBehaviours; }

const Behaviour* find_behaviour(std::string_view name) {
  for (const Behaviour& b : kBehaviours)
    if (b.name == name) return &b;
  return nullptr;
}

}  // namespace sparsemem
