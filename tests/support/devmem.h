// Test fixtures for ZONE_DEVICE: the spec §10 pgmaps and a printable snapshot of everything memremap_pages may change.
// Test-only; expected values in the tests are worked out by hand, never taken from these helpers' output.
#pragma once

#include <string>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "sparsemem/machine.h"
#include "sparsemem/pagemap.h"
#include "support/machines.h"

namespace sparsemem::testing {

// Spec §10 A: the 16 MiB devdax namespace at 0x144000000 inside early section 40 — range
// 0x144000000-0x144ffffff, altmap base 0x144000, reserve 2, free 510.
inline void make_seed004_devdax(DevPagemap& pgmap, unsigned vmemmap_shift = 0) {
  pgmap.type = MemoryType::Generic;
  pgmap.ranges = {PhysRange{PhysAddr(0x144000000), PhysAddr(0x144ffffff)}};
  pgmap.flags = PGMAP_ALTMAP_VALID;
  pgmap.altmap = VmemAltmap{};
  pgmap.altmap.base_pfn = Pfn(0x144000);
  pgmap.altmap.end_pfn = Pfn(0x144fff);
  pgmap.altmap.reserve = NrPages(2);
  pgmap.altmap.free = NrPages(510);
  pgmap.vmemmap_shift = vmemmap_shift;
}

// Everything a failed memremap_pages must leave as it was: section words and subsection maps,
// zone and node spans and counters, the pgmap registry, /proc/iomem, the vmemmap's mappings by
// kind and origin, and max_pfn. (Log lines are expected to change; __highest_present_section_nr
// and the host's reserved chunks are bookkeeping that never shrinks.)
inline std::string devmem_snapshot(const Machine& m) {
  std::string s;
  const ArchProfile& arch = m.arch();
  {
    RcuReadGuard g;
    for (const SectionNr nr : m.sections().present_sections()) {
      const MemSection* ms = m.sections().find(nr);
      s += fmt::format("section {} flags {:#x} nid {}", nr.value(), ms->flags().bits(), ms->nid());
      if (const MemSectionUsage* u = ms->usage())
        for (const auto& w : u->subsection_map) s += fmt::format(" {:x}", w.load());
      s += "\n";
    }
  }
  for (const Node& n : m.nodes()) {
    s += fmt::format("node {} [{:#x}+{:#x}) present {}\n", n.nid, n.node_start_pfn.value(), n.node_spanned_pages.value(),
                     n.node_present_pages.value());
    for (const Zone& z : n.zones)
      s += fmt::format("  {} [{:#x}+{:#x}) present {} managed {}\n", zone_name(z.type), z.zone_start_pfn.value(),
                       z.spanned_pages.value(), z.present_pages.value(), z.managed_pages.value());
  }
  for (const auto& e : m.pgmap_registry().entries())
    s += fmt::format("pgmap [{:#x}-{:#x}) {}\n", e.start.value(), e.end.value(), static_cast<const void*>(e.pgmap));
  s += m.iomem().render();
  const VmemmapStats v = m.vmemmap().stats();
  s += fmt::format("vmemmap base {} huge {} boot {} buddy {} altmap {} shared {}\n", v.base_pages, v.huge_pmds,
                   v.bytes_by_origin[0], v.bytes_by_origin[1], v.bytes_by_origin[2], v.bytes_by_origin[3]);
  s += fmt::format("max_pfn {:#x} arch {}\n", m.max_pfn().value(), arch.name);
  return s;
}

// The number of log lines equal to `text`.
inline size_t log_lines_with(const Machine& m, const std::string& text) {
  size_t n = 0;
  for (const LogLine& l : m.log().lines()) n += l.text == text;
  return n;
}

}  // namespace sparsemem::testing
