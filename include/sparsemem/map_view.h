// Map view: a picture of a Machine's physical address space — sections and their state, subsection
// maps, zones, memory blocks, iomem owners and vmemmap population — as text or SVG. Pure readers:
// call between operations (or under the hotplug lock); rendering never changes the machine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sparsemem/machine.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

struct MapOptions {
  // The physical range to draw (inclusive end, as /proc/iomem). nullopt: the whole address space,
  // 0 .. 2^MAX_PHYSMEM_BITS - 1. Sections overlapping the range are drawn whole; when the range
  // touches exactly one section, each of its subsections gets a line of its own.
  std::optional<PhysRange> range;
  // ANSI colour escapes in the text form. Plain text by default, so output can be pasted and diffed.
  bool color = false;
};

// Parses a physical range for MapOptions: "START-END" (inclusive end) or "START+SIZE", numbers in
// C notation (0x.. or decimal) with an optional K, M, G or T suffix (binary units), or "section N"
// / "sN" for one whole section. Return: -EINVAL for malformed text, an empty or reversed range;
// -ERANGE for an end at or beyond 2^MAX_PHYSMEM_BITS.
Result<PhysRange> parse_map_range(std::string_view text, const ArchProfile& arch);

// ---- the model the renderers draw (exposed so tests and other views can read it) ----

// Vmemmap population of one section's memmap, in bytes of the vmemmap window. A page or PMD that
// the section shares with a neighbour (arm64 16K/64K sub-page memmaps) counts for each.
struct VmemmapUse {
  uint64_t base_bytes = 0;      // mapped by base (PAGE_SIZE) pages
  uint64_t huge_bytes = 0;      // mapped by huge (PMD) mappings
  uint64_t unmapped_bytes = 0;  // not mapped: touching a descriptor here faults
  uint8_t origins = 0;          // bit (1 << VmemmapOrigin) for every origin seen among mapped bytes
  bool operator==(const VmemmapUse&) const = default;
};

// Whether a section's subsection map is all set, all clear or mixed.
enum class SubsectionFill : uint8_t { None, Full, Mixed };

// One line of the map: a run of consecutive sections that look the same (same flags, node,
// subsection map, vmemmap use; sections absent from the table also split where their top-level
// iomem owners change). Zones, blocks and iomem owners are the union over the run.
struct MapRun {
  SectionNr first;
  SectionNr last;                // inclusive
  bool in_table = false;         // the section exists (its root is allocated)
  SectionFlags flags;
  unsigned nid = 0;
  SubsectionFill fill = SubsectionFill::None;
  unsigned subsections_set = 0;  // per section
  std::vector<bool> subsections;  // Mixed only: the map of every section of the run
  VmemmapUse vmemmap;             // per section
  std::vector<std::string> zones;         // "DMA", "DMA32", ... ("n1:Normal" names the node on multi-node machines)
  std::vector<std::string> blocks;        // "memory0-23 online"
  std::vector<std::string> iomem_owners;  // top-level /proc/iomem names, in address order, distinct
};

// One subsection of a zoomed-in section.
struct MapSubsection {
  SubsectionIdx idx;
  Pfn start;
  bool populated = false;
  bool zone_device = false;  // Behaviour::subsection_zone_device_map only
  VmemmapAddr memmap;        // struct page of the first pfn
  VmemmapUse vmemmap;
  bool first_pfn_valid = false;
  bool first_pfn_online = false;  // pfn_to_online_page(start) != NULL
};

struct MapModel {
  PhysRange range;                 // as drawn: whole sections
  std::vector<MapRun> runs;        // ascending, covering range
  std::vector<MapSubsection> subsections;  // filled only when range is one section
};

// Builds the model of `options.range`. Cost: one table lookup per section of the range (absent
// roots skipped whole), and one vmemmap lookup per mapped PMD or page of each existing section.
MapModel build_map_model(const Machine& machine, const MapOptions& options);

// The compact text map: a header (geometry, block size, vmemmap window), nodes and zones with
// their spans, then one line per run, with the subsection map under every mixed section, and each
// subsection's line when zoomed into one section. Ends with a newline.
std::string render_map_text(const Machine& machine, const MapOptions& options);
// The same picture as a self-contained SVG document (no scripts, no external references): one
// row per run coloured by state, subsection cells for mixed sections, text labels and a legend.
std::string render_map_svg(const Machine& machine, const MapOptions& options);

// ---- pfn queries by kind (what `sparsemem boot` prints) ----

// Kinds of pfn the predicates tell apart (spec §12.2), in the order they are printed.
enum class PfnKind : uint8_t {
  EarlyRam,            // RAM (memblock.memory) in a populated subsection of an early section
  EarlyHoleInSub,      // not RAM, but inside a populated subsection of an early section
  EarlyHoleSubsection, // a whole subsection of an early section with no memory behind it
  HotplugOnline,       // populated subsection of a hot-added (non-early) section that is online
  HotplugOffline,      // populated subsection of a non-early section that is not online (incl. ZONE_DEVICE)
  HotplugEmptySub,     // unpopulated subsection of a non-early section with a memmap
  PresentNoMemmap,     // present section without a memmap
  NoSection,           // below max_pfn, no present section
  BeyondRam,           // at or above max_pfn, no present section
  BeyondPhysLimit,     // at or above 2^(MAX_PHYSMEM_BITS - PAGE_SHIFT)
};
inline constexpr unsigned kNrPfnKinds = 10;
const char* pfn_kind_name(PfnKind k);

struct PfnKindSample {
  PfnKind kind;
  NrPages pages{0};  // pfns of this kind below the physical limit (0 for BeyondPhysLimit)
  Pfn sample;          // the lowest pfn of this kind
  bool pfn_valid = false;
  bool online = false;  // pfn_to_online_page(sample) != NULL
  VmemmapAddr page_addr;
  VmemmapMapKind mapping = VmemmapMapKind::None;
  VmemmapOrigin origin = VmemmapOrigin::Boot;  // meaningful when mapped
};

struct PfnQuerySummary {
  std::vector<PfnKindSample> kinds;  // only kinds that occur, in PfnKind order
  NrPages valid_pfns{0};   // pfns for which pfn_valid() is true
  NrPages online_pfns{0};  // pfns for which pfn_to_online_page() is not NULL
  // True when the counts were taken per pfn; false when the machine was too large and one pfn per
  // subsection was asked (6.1 answers both predicates per subsection, except for seed 000's
  // memblock_pfn_valid, whose NOMAP ranges are page granular).
  bool exact = true;
};

// Classifies every pfn below the physical limit (by ranges: sections, subsections, memblock
// regions) and asks the real predicates for one sample pfn of each kind and for the counts.
PfnQuerySummary summarize_pfn_queries(const Machine& machine);
// A table: kind, pages, sample pfn, pfn_valid, pfn_to_online_page, struct page address and its
// mapping; then the two counts. Ends with a newline.
std::string render_pfn_summary(const Machine& machine, const PfnQuerySummary& summary);

// The section-state letters of the map: P present, M memmap, O online, E early, T ZONE_DEVICE
// taint, '-' for each flag that is clear ("PMOE-").
std::string section_state_letters(SectionFlags flags);

}  // namespace sparsemem
