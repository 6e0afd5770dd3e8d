// Behaviour: which kernel is being modelled — Linux 6.1 by default, or a named historic bug or
// proposed design from the upstream threads. An immutable value given to a Machine at construction;
// every question the kernels answer differently is one field here, read through one predicate.
#pragma once

#include <span>
#include <string_view>

namespace sparsemem {

// Seed 004 (mm/sparse: never partially remove memmap for early section, Jun 2020): what
// section_deactivate() may do to the memmap of an EARLY section.
enum class EarlyMemmapRule : unsigned char {
  Permanent,          // 6.1: never partially depopulated; freed only when the section empties
  LegacyDepopulate,   // pre-fix: partial removal depopulates like any section; re-add skips populate
  PartialRepopulate,  // Dan's never-built design: early sections depopulate and repopulate partially
};

// Seed 003 (arm64 WARN flood for device-private pages, Apr 2023): descriptors outside the vmemmap window.
enum class OutOfWindowRule : unsigned char {
  WarnPerSection,  // 6.1: WARN for every section populated or freed, carry on at wrapped addresses
  HardError,       // Ard's position: refuse the mapping (-ERANGE)
  PlaceInWindow,   // proposed: request_free_mem_region only places where the window covers
};

struct Behaviour {
  std::string_view name = "linux-6.1";
  std::string_view source = "Linux 6.1 (Debian 6.1.y)";

  // Seed 000: arm64 pfn_valid() <= 5.11 required a non-NOMAP memblock entry.
  bool memblock_pfn_valid = false;
  // Seed 001: ZONE_DEVICE and hot-plugged pages carry PG_reserved (true in 6.1).
  bool device_pages_reserved = true;
  // Seed 001 proposal: per-subsection ZONE_DEVICE map answering is-zone-device by pfn.
  bool subsection_zone_device_map = false;
  // Seed 002 proposal: memremap_pages refuses an altmap for MEMORY_DEVICE_PRIVATE.
  bool reject_private_altmap = false;
  OutOfWindowRule out_of_window = OutOfWindowRule::WarnPerSection;
  EarlyMemmapRule early_memmap = EarlyMemmapRule::Permanent;
  // Seed 004 / spec §9.18: pfn_to_online_page() <= 5.9 checked only SECTION_IS_ONLINE.
  bool old_pfn_to_online_page = false;
  // Spec §9.6: 6.1.0 region_intersects() looked at top-level resources only.
  bool region_intersects_top_level_only = false;
  // Spec §9.7: 6.1.0 x86 add_pages() raised max_pfn for ZONE_DEVICE too.
  bool zone_device_raises_max_pfn = false;

  // The one predicate for "may section_deactivate() depopulate part of an EARLY section's memmap".
  constexpr bool early_memmap_partially_removable() const { return early_memmap != EarlyMemmapRule::Permanent; }
  // The one predicate for "does section_activate() repopulate a partial add into an EARLY section".
  constexpr bool early_memmap_repopulated() const { return early_memmap == EarlyMemmapRule::PartialRepopulate; }
};

// Named behaviours: "linux-6.1" first, then each seed thread's bug or proposal.
std::span<const Behaviour> all_behaviours();
// nullptr when the name is unknown.
const Behaviour* find_behaviour(std::string_view name);
inline constexpr Behaviour kLinux61{};

}  // namespace sparsemem
