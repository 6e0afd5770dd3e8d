// Map view: builds the run-compressed model of a Machine's physical address space and renders it
// as text or SVG, plus the pfn-kind summary. Reads only const Machine state; never writes.
#include "sparsemem/map_view.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include <fmt/core.h>

namespace sparsemem {
namespace {

// ---------------------------------------------------------------------------------------------
// Formatting helpers

// Binary size with a one-letter suffix, exact: "128M", "2016K", "64T", "64B".
std::string size_str(uint64_t bytes) {
  static constexpr std::pair<unsigned, char> kUnits[] = {{40, 'T'}, {30, 'G'}, {20, 'M'}, {10, 'K'}};
  if (bytes == 0) return "0";
  for (const auto& [shift, suffix] : kUnits)
    if (bytes >= (uint64_t{1} << shift) && bytes % (uint64_t{1} << shift) == 0)
      return fmt::format("{}{}", bytes >> shift, suffix);
  return fmt::format("{}B", bytes);
}

// The size of a span of sections: exact while that takes at most four digits, else "~32.9G".
std::string span_size(uint64_t bytes) {
  std::string exact = size_str(bytes);
  if (exact.size() <= 5) return exact;
  static constexpr std::pair<unsigned, char> kUnits[] = {{40, 'T'}, {30, 'G'}, {20, 'M'}, {10, 'K'}};
  for (const auto& [shift, suffix] : kUnits)
    if (bytes >= (uint64_t{1} << shift))
      return fmt::format("~{:.1f}{}", static_cast<double>(bytes) / static_cast<double>(uint64_t{1} << shift), suffix);
  return exact;
}

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }
std::string hex_w(uint64_t v, unsigned digits) { return fmt::format("{:#0{}x}", v, digits + 2); }

unsigned hex_digits(uint64_t v) {
  unsigned d = 1;
  while (v >>= 4) ++d;
  return d;
}

// "0-31" or "7" for an inclusive index range.
std::string idx_range(uint64_t a, uint64_t b) { return a == b ? fmt::format("{}", a) : fmt::format("{}-{}", a, b); }

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

}  // namespace

std::string section_state_letters(SectionFlags f) {
  std::string s;
  s += f.has(SectionFlag::Present) ? 'P' : '-';
  s += f.has(SectionFlag::HasMemMap) ? 'M' : '-';
  s += f.has(SectionFlag::Online) ? 'O' : '-';
  s += f.has(SectionFlag::Early) ? 'E' : '-';
  s += f.has(SectionFlag::TaintZoneDevice) ? 'T' : '-';
  return s;
}

namespace {

const char* origin_short(unsigned o) { return origin_name(static_cast<VmemmapOrigin>(o)); }

// "2M huge [boot]", "32K base, 2016K unmapped [buddy]", "unmapped", "-" for nothing at all.
std::string vmemmap_str(const VmemmapUse& u) {
  std::vector<std::string> parts;
  if (u.huge_bytes) parts.push_back(size_str(u.huge_bytes) + " huge");
  if (u.base_bytes) parts.push_back(size_str(u.base_bytes) + " base");
  if (parts.empty()) return u.unmapped_bytes ? "unmapped" : "-";
  if (u.unmapped_bytes) parts.push_back(size_str(u.unmapped_bytes) + " unmapped");
  std::vector<std::string> origins;
  for (unsigned o = 0; o < 4; ++o)
    if (u.origins & (1u << o)) origins.emplace_back(origin_short(o));
  return join(parts, ", ") + " [" + join(origins, "+") + "]";
}

// ---------------------------------------------------------------------------------------------
// Reading the machine

// The machine's memory blocks as the map shows them. This is the only place the map reads blocks:
// when the memory-block registry replaces boot_blocks(), only this function changes.
struct BlockView {
  BlockId id;
  const char* state;  // the sysfs `state` word
};
std::vector<BlockView> memory_blocks_of(const Machine& machine) {
  std::vector<BlockView> out;
  // The registry visits blocks in ascending id order.
  machine.memory_blocks().for_each(
      [&](const MemoryBlock& b) { out.push_back(BlockView{b.id, memory_block_state_name(b.state)}); });
  return out;
}

struct TopLevelResource {
  PhysAddr start;
  PhysAddr end;  // inclusive
  std::string name;
};
std::vector<TopLevelResource> top_level_iomem(const Machine& machine) {
  std::vector<TopLevelResource> out;
  for (const IomemEntry& e : machine.iomem().entries())
    if (e.depth == 0)
      out.push_back(TopLevelResource{e.resource.start, e.resource.end, e.resource.name.value_or("<BAD>")});
  return out;
}

// Walks the vmemmap that holds the descriptors of [start, start + n): one lookup per PMD or page.
VmemmapUse vmemmap_use(const Vmemmap& vm, Pfn start, NrPages n) {
  const ArchProfile& a = vm.arch();
  VmemmapUse u;
  const uint64_t total = n.value() * STRUCT_PAGE_SIZE;
  const uint64_t base = vm.page_addr(start).value();
  uint64_t off = 0;
  while (off < total) {
    const uint64_t kaddr = base + off;  // modulo 2^64, as the kernel's address arithmetic wraps
    const Pfn pfn = start + NrPages(off / STRUCT_PAGE_SIZE);
    const VmemmapMapKind kind = vm.mapping_of(pfn);
    const uint64_t gran = kind == VmemmapMapKind::Huge ? a.pmd_size() : a.page_size();
    const uint64_t step = std::min(gran - (kaddr & (gran - 1)), total - off);
    switch (kind) {
      case VmemmapMapKind::Huge: u.huge_bytes += step; break;
      case VmemmapMapKind::Base: u.base_bytes += step; break;
      case VmemmapMapKind::None: u.unmapped_bytes += step; break;
    }
    if (kind != VmemmapMapKind::None) u.origins |= static_cast<uint8_t>(1u << static_cast<unsigned>(vm.origin_of(pfn)));
    off += step;
  }
  return u;
}

PhysRange whole_space(const ArchProfile& a) { return PhysRange{PhysAddr(0), PhysAddr(a.physmem_end())}; }

// The node label zones carry: only machines with more than one node name it.
bool multi_node(const Machine& machine) {
  unsigned with_memory = 0;
  for (const Node& n : machine.nodes()) with_memory += n.node_spanned_pages.value() != 0;
  return with_memory > 1;
}

// ---------------------------------------------------------------------------------------------
// Model building

// What one "unit" (an existing section, or a stretch of sections absent from the table) looks like.
struct UnitKey {
  bool nothing = true;  // no flags, no usage, nothing mapped: "no section"
  uint32_t flags = 0;
  unsigned nid = 0;
  SubsectionFill fill = SubsectionFill::None;
  unsigned set = 0;
  std::vector<bool> map;  // Mixed only
  VmemmapUse vmemmap;
  std::vector<size_t> owners;  // compared only when `nothing`: holes split where iomem changes
  bool operator==(const UnitKey&) const = default;
};

class ModelBuilder {
 public:
  ModelBuilder(const Machine& m, PhysRange range)
      : m_machine(m), m_arch(m.arch()), m_iomem(top_level_iomem(m)), m_blocks(memory_blocks_of(m)), m_range(range) {
    m_sections_per_block = std::max<uint64_t>(1, m.memory_block_size() / m_arch.section_size());
    for (const TopLevelResource& r : m_iomem) {
      m_events.push_back(m_arch.pfn_to_section_nr(m_arch.phys_to_pfn(r.start)).value());
      m_events.push_back(m_arch.pfn_to_section_nr(m_arch.phys_to_pfn(r.end)).value() + 1);
    }
    std::sort(m_events.begin(), m_events.end());
    for (const Node& n : m.nodes())
      for (const Zone& z : n.zones)
        if (!z.is_empty()) m_zones.push_back(&z);
    m_multi_node = multi_node(m);
  }

  MapModel build() {
    MapModel model;
    const uint64_t first = m_arch.pfn_to_section_nr(m_arch.phys_to_pfn(m_range.start)).value();
    const uint64_t last = m_arch.pfn_to_section_nr(m_arch.phys_to_pfn(m_range.last)).value();
    model.range = PhysRange{m_arch.pfn_to_phys(m_arch.section_nr_to_pfn(SectionNr(first))),
                            PhysAddr(m_arch.pfn_to_phys(m_arch.section_nr_to_pfn(SectionNr(last))).value() +
                                     m_arch.section_size() - 1)};
    const uint64_t per_root = m_arch.sections_per_root();
    for (uint64_t s = first; s <= last;) {
      const MemSection* ms = m_machine.sections().find(SectionNr(s));
      if (!ms) {
        // A missing root: every section up to the root's end is absent; split at iomem changes.
        uint64_t end = std::min(last, (s / per_root + 1) * per_root - 1);
        const auto ev = std::upper_bound(m_events.begin(), m_events.end(), s);
        if (ev != m_events.end() && *ev - 1 < end) end = *ev - 1;
        add_unit(s, end, absent_key(s, end));
        s = end + 1;
        continue;
      }
      add_unit(s, s, section_key(SectionNr(s), *ms));
      ++s;
    }
    flush();
    model.runs = std::move(m_runs);
    if (first == last) model.subsections = subsections_of(SectionNr(first));
    return model;
  }

 private:
  Pfn sec_pfn(uint64_t s) const { return m_arch.section_nr_to_pfn(SectionNr(s)); }

  std::vector<size_t> owners_of(uint64_t first, uint64_t last) const {
    const uint64_t lo = m_arch.pfn_to_phys(sec_pfn(first)).value();
    const uint64_t hi = m_arch.pfn_to_phys(sec_pfn(last)).value() + m_arch.section_size() - 1;
    std::vector<size_t> out;
    for (size_t i = 0; i < m_iomem.size(); ++i)
      if (m_iomem[i].start.value() <= hi && m_iomem[i].end.value() >= lo) out.push_back(i);
    return out;
  }

  UnitKey absent_key(uint64_t first, uint64_t last) const {
    UnitKey k;
    k.owners = owners_of(first, last);
    k.vmemmap.unmapped_bytes = m_arch.section_memmap_bytes();
    return k;
  }

  UnitKey section_key(SectionNr nr, const MemSection& ms) const {
    UnitKey k;
    const SectionFlags f = ms.flags();
    k.flags = f.bits();
    k.nid = ms.nid();
    {
      RcuReadGuard guard;  // the usage may be retired by a concurrent hot-remove
      if (const MemSectionUsage* u = ms.usage()) {
        const unsigned n = m_arch.subsections_per_section();
        k.map.resize(n);
        for (unsigned i = 0; i < n; ++i) k.map[i] = u->test(SubsectionIdx(i));
        k.set = static_cast<unsigned>(std::count(k.map.begin(), k.map.end(), true));
        k.fill = k.set == 0 ? SubsectionFill::None : k.set == n ? SubsectionFill::Full : SubsectionFill::Mixed;
        if (k.fill != SubsectionFill::Mixed) k.map.clear();
        k.nothing = false;
      }
    }
    k.vmemmap = vmemmap_use(m_machine.vmemmap(), sec_pfn(nr.value()), m_arch.pages_per_section());
    if (k.flags != 0 || k.vmemmap.unmapped_bytes != m_arch.section_memmap_bytes()) k.nothing = false;
    if (k.nothing) k.owners = owners_of(nr.value(), nr.value());
    return k;
  }

  void add_unit(uint64_t first, uint64_t last, UnitKey key) {
    if (m_open && key == m_key && m_cur.last.value() + 1 == first) {
      m_cur.last = SectionNr(last);
    } else {
      flush();
      m_open = true;
      m_key = std::move(key);
      m_cur = MapRun{};
      m_cur.first = SectionNr(first);
      m_cur.last = SectionNr(last);
      m_cur.in_table = !m_key.nothing;
      m_cur.flags = SectionFlags(m_key.flags);
      m_cur.nid = m_key.nid;
      m_cur.fill = m_key.fill;
      m_cur.subsections_set = m_key.set;
      m_cur.subsections = m_key.map;
      m_cur.vmemmap = m_key.vmemmap;
      m_zone_set.clear();
      m_owner_set.clear();
      m_block_ranges.clear();
    }
    accumulate(first, last);
  }

  // Zones, blocks and iomem owners of sections [first, last], added to the open run.
  void accumulate(uint64_t first, uint64_t last) {
    const Pfn start = sec_pfn(first);
    const NrPages n((last - first + 1) << m_arch.pfn_section_shift());
    for (const Zone* z : m_zones)
      if (z->intersects(start, n)) m_zone_set.insert({z->nid, static_cast<unsigned>(z->type)});
    for (size_t i : owners_of(first, last)) m_owner_set.insert(i);
    const BlockId b_first(first / m_sections_per_block), b_last(last / m_sections_per_block);
    auto it = std::lower_bound(m_blocks.begin(), m_blocks.end(), b_first,
                               [](const BlockView& b, BlockId id) { return b.id < id; });
    for (; it != m_blocks.end() && it->id <= b_last; ++it) {
      // A block larger than a section is met again by the next unit of the same run.
      if (!m_block_ranges.empty() && std::get<1>(m_block_ranges.back()) >= it->id) continue;
      if (!m_block_ranges.empty() && std::get<1>(m_block_ranges.back()).value() + 1 == it->id.value() &&
          std::get<2>(m_block_ranges.back()) == std::string_view(it->state))
        std::get<1>(m_block_ranges.back()) = it->id;
      else
        m_block_ranges.emplace_back(it->id, it->id, it->state);
    }
  }

  void flush() {
    if (!m_open) return;
    // One entry per zone; on multi-node machines the first zone of each node names it: "n1:DMA32".
    unsigned prev_nid = ~0u;
    for (const auto& [nid, zt] : m_zone_set) {
      const char* zn = zone_name(static_cast<ZoneType>(zt));
      m_cur.zones.push_back(m_multi_node && nid != prev_nid ? fmt::format("n{}:{}", nid, zn) : std::string(zn));
      prev_nid = nid;
    }
    for (size_t i : m_owner_set) {
      const std::string& name = m_iomem[i].name;
      if (std::find(m_cur.iomem_owners.begin(), m_cur.iomem_owners.end(), name) == m_cur.iomem_owners.end())
        m_cur.iomem_owners.push_back(name);
    }
    for (const auto& [a, b, st] : m_block_ranges)
      m_cur.blocks.push_back(fmt::format("memory{} {}", idx_range(a.value(), b.value()), st));
    m_runs.push_back(std::move(m_cur));
    m_open = false;
  }

  std::vector<MapSubsection> subsections_of(SectionNr nr) const {
    std::vector<MapSubsection> out;
    const MemSection* ms = m_machine.sections().find(nr);
    const Pfn base = sec_pfn(nr.value());
    const NrPages per = m_arch.pages_per_subsection();
    for (unsigned i = 0; i < m_arch.subsections_per_section(); ++i) {
      MapSubsection s;
      s.idx = SubsectionIdx(i);
      s.start = base + NrPages(uint64_t{i} * per.value());
      // Only the subsections the requested range touches.
      const PhysAddr lo = m_arch.pfn_to_phys(s.start);
      const PhysAddr hi(lo.value() + (per.value() << m_arch.page_shift) - 1);
      if (hi < m_range.start || lo > m_range.last) continue;
      if (ms) {
        RcuReadGuard guard;
        if (const MemSectionUsage* u = ms->usage()) s.populated = u->test(s.idx);
      }
      s.zone_device = m_machine.behaviour().subsection_zone_device_map && m_machine.sections().pfn_is_zone_device(s.start);
      s.memmap = m_machine.vmemmap().page_addr(s.start);
      s.vmemmap = vmemmap_use(m_machine.vmemmap(), s.start, per);
      s.first_pfn_valid = m_machine.pfn_valid(s.start);
      // Asked without a Page*: a pending deferred section stays unwritten.
      s.first_pfn_online = m_machine.pfn_is_online(s.start);
      out.push_back(s);
    }
    return out;
  }

  const Machine& m_machine;
  const ArchProfile& m_arch;
  std::vector<TopLevelResource> m_iomem;
  std::vector<BlockView> m_blocks;
  PhysRange m_range;
  uint64_t m_sections_per_block = 1;
  std::vector<uint64_t> m_events;  // section numbers where the top-level iomem owner set may change
  std::vector<const Zone*> m_zones;
  bool m_multi_node = false;

  bool m_open = false;
  UnitKey m_key;
  MapRun m_cur;
  std::set<std::pair<unsigned, unsigned>> m_zone_set;
  std::set<size_t> m_owner_set;
  std::vector<std::tuple<BlockId, BlockId, const char*>> m_block_ranges;
  std::vector<MapRun> m_runs;
};

// ---------------------------------------------------------------------------------------------
// Text rendering

namespace ansi {
constexpr std::string_view kReset = "\x1b[0m";
constexpr std::string_view kGreen = "\x1b[32m";
constexpr std::string_view kYellow = "\x1b[33m";
constexpr std::string_view kMagenta = "\x1b[35m";
constexpr std::string_view kDim = "\x1b[2m";
}  // namespace ansi

// The colour of a run: online green, memmap without online yellow, tainted magenta, absent dim.
std::string_view run_color(const MapRun& r) {
  if (!r.in_table) return ansi::kDim;
  if (r.flags.has(SectionFlag::TaintZoneDevice)) return ansi::kMagenta;
  if (r.flags.has(SectionFlag::Online)) return ansi::kGreen;
  if (r.flags.has(SectionFlag::HasMemMap)) return ansi::kYellow;
  return ansi::kDim;
}

// Fixed-width columns computed from the content; the last column is not padded.
class Table {
 public:
  void row(std::vector<std::string> cells, std::string_view color = {}) {
    m_rows.push_back(Row{std::move(cells), std::string(color), {}});
  }
  // A free-form line below the previous row (not part of the column layout).
  void note(std::string text) { m_rows.push_back(Row{{}, {}, std::move(text)}); }
  std::string render(bool color, std::string_view indent) const {
    std::vector<size_t> width;
    for (const Row& r : m_rows)
      for (size_t i = 0; i < r.cells.size(); ++i) {
        if (width.size() <= i) width.push_back(0);
        width[i] = std::max(width[i], r.cells[i].size());
      }
    std::string out;
    for (const Row& r : m_rows) {
      if (r.cells.empty()) {
        out += r.note + "\n";
        continue;
      }
      std::string line(indent);
      for (size_t i = 0; i < r.cells.size(); ++i) {
        const bool last = i + 1 == r.cells.size();
        std::string cell = last ? r.cells[i] : fmt::format("{:<{}}", r.cells[i], width[i]);
        // The state column (index 2 in the section table) carries the run's colour.
        if (color && !r.color.empty() && i == m_color_column) cell = r.color + cell + std::string(ansi::kReset);
        line += cell;
        if (!last) line += "  ";
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    return out;
  }
  void set_color_column(size_t c) { m_color_column = c; }

 private:
  struct Row {
    std::vector<std::string> cells;
    std::string color;
    std::string note;
  };
  std::vector<Row> m_rows;
  size_t m_color_column = 0;
};

std::string phys_span(const ArchProfile& a, SectionNr first, SectionNr last, unsigned digits) {
  const uint64_t lo = a.pfn_to_phys(a.section_nr_to_pfn(first)).value();
  const uint64_t hi = a.pfn_to_phys(a.section_nr_to_pfn(last)).value() + a.section_size() - 1;
  return fmt::format("{}-{}", hex_w(lo, digits), hex_w(hi, digits));
}

// "#" populated, "." empty, 64 per line.
std::vector<std::string> subsection_bitmap_lines(const std::vector<bool>& map) {
  std::vector<std::string> lines;
  for (size_t i = 0; i < map.size(); i += 64) {
    std::string l;
    for (size_t j = i; j < std::min(map.size(), i + 64); ++j) l += map[j] ? '#' : '.';
    lines.push_back(l);
  }
  return lines;
}

// "0-31 populated, 32-63 empty".
std::string subsection_ranges(const std::vector<bool>& map) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < map.size();) {
    size_t j = i;
    while (j + 1 < map.size() && map[j + 1] == map[i]) ++j;
    parts.push_back(idx_range(i, j) + (map[i] ? " populated" : " empty"));
    i = j + 1;
  }
  return join(parts, ", ");
}

constexpr size_t kMaxOwnersShown = 5;

std::string owners_str(const std::vector<std::string>& owners) {
  if (owners.empty()) return "-";
  if (owners.size() <= kMaxOwnersShown) return join(owners, ", ");
  std::vector<std::string> head(owners.begin(), owners.begin() + kMaxOwnersShown);
  return join(head, ", ") + fmt::format(", +{} more", owners.size() - kMaxOwnersShown);
}

std::string header_text(const Machine& m, const MapModel& model) {
  const ArchProfile& a = m.arch();
  std::string out;
  out += fmt::format("physical address space {}-{} ({}), arch {}, behaviour {}\n", hex(model.range.start.value()),
                     hex(model.range.last.value()), size_str(model.range.size()), a.name, m.behaviour().name);
  out += fmt::format("sections of {} ({} pages of {}), {} subsections of {}; memory blocks of {}\n",
                     size_str(a.section_size()), a.pages_per_section().value(), size_str(a.page_size()),
                     a.subsections_per_section(), size_str(uint64_t{1} << SUBSECTION_SHIFT),
                     size_str(m.memory_block_size()));
  out += fmt::format("vmemmap {}-{}, {} bytes per struct page, {} of memmap per section\n", hex(a.vmemmap_start),
                     hex(a.vmemmap_start + a.vmemmap_size - 1), STRUCT_PAGE_SIZE, size_str(a.section_memmap_bytes()));
  out += fmt::format("state: P present, M memmap, O online, E early, T ZONE_DEVICE taint, - clear; "
                     "vmemmap: huge = {} PMD mappings, base = {} pages\n",
                     size_str(a.pmd_size()), size_str(a.page_size()));
  return out;
}

std::string zones_text(const Machine& m, const MapModel& model) {
  const ArchProfile& a = m.arch();
  Table t;
  for (const Node& n : m.nodes()) {
    if (n.node_spanned_pages.value() == 0 && !n.online) continue;
    t.note(fmt::format("  node {}: start_pfn {}, spanned {}, present {}", n.nid, hex(n.node_start_pfn.value()),
                       n.node_spanned_pages.value(), n.node_present_pages.value()));
    for (const Zone& z : n.zones) {
      if (z.is_empty()) continue;
      const uint64_t lo = a.pfn_to_phys(z.zone_start_pfn).value();
      const uint64_t hi = a.pfn_to_phys(z.zone_end_pfn()).value() - 1;
      if (hi < model.range.start.value() || lo > model.range.last.value()) continue;
      t.row({zone_name(z.type), fmt::format("{}-{}", hex(lo), hex(hi)),
             fmt::format("start_pfn {}", hex(z.zone_start_pfn.value())),
             fmt::format("spanned {}", z.spanned_pages.value()), fmt::format("present {}", z.present_pages.value()),
             fmt::format("managed {}", z.managed_pages.value())});
    }
  }
  return t.render(false, "    ");
}

const std::vector<std::string> kRunHeadings = {"sections", "physical range", "size",          "state", "subsections",
                                               "vmemmap",  "zones",          "memory blocks", "iomem"};
constexpr size_t kStateColumn = 3;

// The cells of one run's line, shared by the text and SVG forms.
std::vector<std::string> run_cells(const ArchProfile& a, const MapRun& r, unsigned digits) {
  const uint64_t nsec = r.last.value() - r.first.value() + 1;
  std::string subs = "-";
  if (r.in_table && (r.fill != SubsectionFill::None || r.flags.has(SectionFlag::HasMemMap)))
    subs = fmt::format("{}/{}", r.subsections_set, a.subsections_per_section());
  return {idx_range(r.first.value(), r.last.value()),
          phys_span(a, r.first, r.last, digits),
          span_size(nsec * a.section_size()),
          r.in_table ? section_state_letters(r.flags) : "-----",
          subs,
          r.in_table ? vmemmap_str(r.vmemmap) : "-",
          r.zones.empty() ? "-" : join(r.zones, "/"),
          r.blocks.empty() ? "-" : join(r.blocks, ", "),
          owners_str(r.iomem_owners)};
}

std::string sections_text(const Machine& m, const MapModel& model, bool color) {
  const ArchProfile& a = m.arch();
  const unsigned digits = hex_digits(model.range.last.value());
  Table t;
  t.set_color_column(kStateColumn);
  t.row(kRunHeadings);
  for (const MapRun& r : model.runs) {
    t.row(run_cells(a, r, digits), run_color(r));
    if (r.fill == SubsectionFill::Mixed) {
      t.note(fmt::format("    subsections {}", subsection_ranges(r.subsections)));
      for (const std::string& l : subsection_bitmap_lines(r.subsections)) {
        std::string shown = l;
        if (color) {
          shown.clear();
          for (char c : l)
            shown += c == '#' ? fmt::format("{}#{}", ansi::kGreen, ansi::kReset) : fmt::format("{}.{}", ansi::kDim, ansi::kReset);
        }
        t.note("      [" + shown + "]");
      }
    }
  }
  return t.render(color, "  ");
}

std::string subsections_text(const Machine& m, const MapModel& model) {
  const ArchProfile& a = m.arch();
  const unsigned digits = hex_digits(model.range.last.value());
  Table t;
  t.row({"subsection", "pfns", "physical range", "populated", "pfn_valid", "online", "struct page", "vmemmap"});
  const uint64_t per = a.pages_per_subsection().value();
  for (const MapSubsection& s : model.subsections) {
    const uint64_t lo = a.pfn_to_phys(s.start).value();
    t.row({fmt::format("{}", s.idx.value()), fmt::format("{}-{}", hex(s.start.value()), hex(s.start.value() + per - 1)),
           fmt::format("{}-{}", hex_w(lo, digits), hex_w(lo + (per << a.page_shift) - 1, digits)),
           std::string(s.populated ? "yes" : "no") + (s.zone_device ? " (ZONE_DEVICE)" : ""),
           s.first_pfn_valid ? "1" : "0", s.first_pfn_online ? "page" : "NULL", hex(s.memmap.value()),
           vmemmap_str(s.vmemmap)});
  }
  return t.render(false, "  ");
}

// ---------------------------------------------------------------------------------------------
// SVG rendering

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0; resource names come from user input.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t') out += '?';
        else out += c;
    }
  }
  return out;
}

struct SvgColors {
  const char* fill;
  const char* label;
};
SvgColors svg_colors(const MapRun& r) {
  if (!r.in_table) return {"#eeeeee", "no section"};
  if (r.flags.has(SectionFlag::TaintZoneDevice)) return {"#d9a6e8", "ZONE_DEVICE taint"};
  if (r.flags.has(SectionFlag::Online) && r.flags.has(SectionFlag::Early)) return {"#8fd18f", "early, online"};
  if (r.flags.has(SectionFlag::Online)) return {"#b8e6a0", "online"};
  if (r.flags.has(SectionFlag::HasMemMap)) return {"#f2d27a", "memmap, not online"};
  if (r.flags.has(SectionFlag::Present)) return {"#f5b48a", "present, no memmap"};
  return {"#dddddd", "empty section"};
}

// An SVG body that grows downwards; the document is sized to what was drawn.
class Svg {
 public:
  void rect(double x, double y, double w, double h, std::string_view fill, std::string_view stroke = "#666666") {
    m_body += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}" stroke="{}" stroke-width="0.5"/>)",
                          x, y, w, h, fill, stroke);
    m_body += "\n";
    m_right = std::max(m_right, x + w);
  }
  // `size` in px of a monospaced font: DejaVu Sans Mono advances 0.602 em per character.
  void text(double x, double y, std::string_view s, double size = 12, bool bold = false) {
    m_body += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="{}"{}>{}</text>)", x, y, size,
                          bold ? R"( font-weight="bold")" : "", xml_escape(s));
    m_body += "\n";
    m_right = std::max(m_right, x + static_cast<double>(s.size()) * 0.61 * size);
  }
  std::string document(double margin, double height) const {
    const double width = std::ceil(m_right + margin);
    std::string out = fmt::format(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" xml:space=\"preserve\" width=\"{:.0f}\" height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\" "
        "font-family=\"DejaVu Sans Mono, monospace\">\n",
        width, height, width, height);
    out += "<title>sparsemem map</title>\n";
    out += fmt::format("<rect x=\"0\" y=\"0\" width=\"{:.0f}\" height=\"{:.0f}\" fill=\"#ffffff\"/>\n", width, height);
    out += m_body;
    out += "</svg>\n";
    return out;
  }

 private:
  std::string m_body;
  double m_right = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public entry points

Result<PhysRange> parse_map_range(std::string_view text, const ArchProfile& arch) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  auto number = [](std::string_view s) -> std::optional<uint64_t> {
    uint64_t mult = 1;
    if (!s.empty()) {
      switch (std::toupper(static_cast<unsigned char>(s.back()))) {
        case 'K': mult = uint64_t{1} << 10; break;
        case 'M': mult = uint64_t{1} << 20; break;
        case 'G': mult = uint64_t{1} << 30; break;
        case 'T': mult = uint64_t{1} << 40; break;
        default: break;
      }
      if (mult != 1) s.remove_suffix(1);
    }
    int base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
      base = 16;
      s.remove_prefix(2);
    }
    uint64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    if (v > UINT64_MAX / mult) return std::nullopt;
    return v * mult;
  };
  text = trim(text);
  const std::string orig(text);
  uint64_t lo = 0, hi = 0;
  if (text.starts_with("section") || (text.size() > 1 && text[0] == 's' && std::isdigit(static_cast<unsigned char>(text[1])))) {
    text.remove_prefix(text.starts_with("section") ? 7 : 1);
    const auto nr = number(trim(text));
    if (!nr) return fail(Errno::Inval, fmt::format("bad section number in range '{}'", orig));
    if (*nr >= arch.nr_mem_sections())
      return fail(Errno::Range, fmt::format("section {} is beyond the last section {}", *nr, arch.nr_mem_sections() - 1));
    lo = arch.pfn_to_phys(arch.section_nr_to_pfn(SectionNr(*nr))).value();
    hi = lo + arch.section_size() - 1;
  } else if (const size_t plus = text.find('+'); plus != std::string_view::npos) {
    const auto a = number(trim(text.substr(0, plus)));
    const auto n = number(trim(text.substr(plus + 1)));
    if (!a || !n || *n == 0) return fail(Errno::Inval, fmt::format("bad range '{}': want START+SIZE with SIZE > 0", orig));
    if (*a > UINT64_MAX - (*n - 1)) return fail(Errno::Range, fmt::format("range '{}' wraps", orig));
    lo = *a;
    hi = *a + *n - 1;
  } else if (const size_t dash = text.find('-'); dash != std::string_view::npos) {
    const auto a = number(trim(text.substr(0, dash)));
    const auto b = number(trim(text.substr(dash + 1)));
    if (!a || !b || *b < *a) return fail(Errno::Inval, fmt::format("bad range '{}': want START-END with END >= START", orig));
    lo = *a;
    hi = *b;
  } else {
    return fail(Errno::Inval, fmt::format("bad range '{}': want START-END, START+SIZE or section N", orig));
  }
  if (hi > arch.physmem_end())
    return fail(Errno::Range, fmt::format("range '{}' ends beyond the physical limit {:#x}", orig, arch.physmem_end()));
  return PhysRange{PhysAddr(lo), PhysAddr(hi)};
}

MapModel build_map_model(const Machine& machine, const MapOptions& options) {
  PhysRange r = options.range.value_or(whole_space(machine.arch()));
  // A range reaching past the physical limit is drawn up to the limit: no section lies beyond it.
  if (r.last.value() > machine.arch().physmem_end()) r.last = PhysAddr(machine.arch().physmem_end());
  if (r.start > r.last) r.start = r.last;
  return ModelBuilder(machine, r).build();
}

std::string render_map_text(const Machine& machine, const MapOptions& options) {
  const MapModel model = build_map_model(machine, options);
  std::string out = header_text(machine, model);
  out += "\nnodes and zones\n";
  out += zones_text(machine, model);
  out += "\n";
  out += sections_text(machine, model, options.color);
  if (!model.subsections.empty()) {
    const MapRun& r = model.runs.front();
    out += fmt::format("\nsubsections of section {} (pfn {}-{})\n", r.first.value(),
                       hex(machine.arch().section_nr_to_pfn(r.first).value()),
                       hex(machine.arch().section_nr_to_pfn(r.first).value() + machine.arch().pages_per_section().value() - 1));
    out += subsections_text(machine, model);
  }
  return out;
}

std::string render_map_svg(const Machine& machine, const MapOptions& options) {
  const MapModel model = build_map_model(machine, options);
  const ArchProfile& a = machine.arch();
  const unsigned digits = hex_digits(model.range.last.value());
  constexpr double kMargin = 16, kRowH = 22, kCell = 9, kLine = 16;
  Svg svg;
  double y = kMargin + 14;
  svg.text(kMargin, y, fmt::format("sparsemem map: {}-{} ({}), arch {}, behaviour {}", hex(model.range.start.value()),
                                   hex(model.range.last.value()), size_str(model.range.size()), a.name,
                                   machine.behaviour().name),
           15, true);
  y += kLine + 2;
  svg.text(kMargin, y,
           fmt::format("sections of {}, {} subsections of 2M, memory blocks of {}; vmemmap huge = {} PMD, base = {} "
                       "pages; state P present M memmap O online E early T ZONE_DEVICE taint",
                       size_str(a.section_size()), a.subsections_per_section(), size_str(machine.memory_block_size()),
                       size_str(a.pmd_size()), size_str(a.page_size())));
  y += kLine;

  // Legend: one swatch per state colour.
  static const std::pair<const char*, const char*> kLegend[] = {
      {"#8fd18f", "early, online"},        {"#b8e6a0", "online"},     {"#f2d27a", "memmap, not online"},
      {"#f5b48a", "present, no memmap"},   {"#d9a6e8", "ZONE_DEVICE taint"}, {"#eeeeee", "no section"},
      {"#3c8c3c", "subsection populated"}, {"#ffffff", "subsection empty"}};
  double x = kMargin;
  y += 6;
  svg.text(x, y + 11, "legend:");
  x += 64;
  for (const auto& [fill, label] : kLegend) {
    svg.rect(x, y, 14, 14, fill);
    svg.text(x + 18, y + 11, label);
    x += 26 + 7.3 * static_cast<double>(std::string_view(label).size()) + 12;
  }
  y += 14 + 14;

  // Columns laid out by characters, as the text form: the font is monospaced.
  constexpr double kChar = 7.3;
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> width(kRunHeadings.size(), 0);
  for (const MapRun& r : model.runs) rows.push_back(run_cells(a, r, digits));
  for (size_t i = 0; i < width.size(); ++i) {
    width[i] = kRunHeadings[i].size();
    for (const auto& row : rows) width[i] = std::max(width[i], row[i].size());
  }
  std::vector<double> xs;
  double cx = kMargin + 6;
  for (size_t w : width) {
    xs.push_back(cx);
    cx += (static_cast<double>(w) + 2) * kChar;
  }
  const double table_w = cx - kMargin;
  for (size_t i = 0; i < kRunHeadings.size(); ++i) svg.text(xs[i], y + 12, kRunHeadings[i], 12, true);
  y += kRowH;

  for (size_t ri = 0; ri < model.runs.size(); ++ri) {
    const MapRun& r = model.runs[ri];
    svg.rect(kMargin, y, table_w, kRowH - 2, svg_colors(r).fill);
    for (size_t i = 0; i < rows[ri].size(); ++i) svg.text(xs[i], y + 14, rows[ri][i]);
    y += kRowH;
    if (r.fill == SubsectionFill::Mixed) {
      // One cell per subsection, 64 to a row.
      const size_t n = r.subsections.size();
      svg.text(xs[1], y + 10, "subsections " + subsection_ranges(r.subsections), 11);
      y += 14;
      for (size_t i = 0; i < n; ++i) {
        const double sx = xs[1] + static_cast<double>(i % 64) * (kCell + 1);
        const double sy = y + static_cast<double>(i / 64) * (kCell + 1);
        svg.rect(sx, sy, kCell, kCell, r.subsections[i] ? "#3c8c3c" : "#ffffff");
      }
      y += static_cast<double>((n + 63) / 64) * (kCell + 1) + 6;
    }
  }
  if (!model.subsections.empty()) {
    y += 10;
    svg.text(kMargin, y + 12, fmt::format("subsections of section {}", model.runs.front().first.value()), 12, true);
    y += kRowH;
    const uint64_t per = a.pages_per_subsection().value();
    for (const MapSubsection& s : model.subsections) {
      svg.rect(kMargin, y, 14, kRowH - 6, s.populated ? "#3c8c3c" : "#ffffff");
      svg.text(kMargin + 22, y + 12,
               fmt::format("{:>3}  pfn {}-{}  {}  pfn_valid {}  {}  struct page {}  {}", s.idx.value(),
                           hex(s.start.value()), hex(s.start.value() + per - 1),
                           s.populated ? "populated" : "empty    ", s.first_pfn_valid ? 1 : 0,
                           s.first_pfn_online ? "online" : "NULL  ", hex(s.memmap.value()), vmemmap_str(s.vmemmap)),
               11);
      y += kRowH - 4;
    }
  }
  return svg.document(kMargin, y + kMargin);
}

// ---------------------------------------------------------------------------------------------
// Pfn queries by kind

const char* pfn_kind_name(PfnKind k) {
  switch (k) {
    case PfnKind::EarlyRam: return "RAM in an early section";
    case PfnKind::EarlyHoleInSub: return "hole in a populated subsection, early section";
    case PfnKind::EarlyHoleSubsection: return "hole subsection of an early section";
    case PfnKind::HotplugOnline: return "populated subsection, hot-added section, online";
    case PfnKind::HotplugOffline: return "populated subsection, hot-added section, not online";
    case PfnKind::HotplugEmptySub: return "empty subsection of a hot-added section";
    case PfnKind::PresentNoMemmap: return "present section without memmap";
    case PfnKind::NoSection: return "no section (below max_pfn)";
    case PfnKind::BeyondRam: return "beyond RAM (max_pfn and above, no section)";
    case PfnKind::BeyondPhysLimit: return "beyond MAX_PHYSMEM_BITS";
  }
  return "?";
}

PfnQuerySummary summarize_pfn_queries(const Machine& machine) {
  const ArchProfile& a = machine.arch();
  struct Acc {
    uint64_t pages = 0;
    std::optional<Pfn> sample;
  };
  std::array<Acc, kNrPfnKinds> acc{};
  auto add = [&](PfnKind k, uint64_t start, uint64_t end) {
    if (end <= start) return;
    Acc& x = acc[static_cast<unsigned>(k)];
    x.pages += end - start;
    if (!x.sample) x.sample = Pfn(start);
  };
  const uint64_t max_pfn = machine.max_pfn().value();
  auto add_no_section = [&](uint64_t start, uint64_t end) {
    add(PfnKind::NoSection, start, std::min(end, std::max(start, max_pfn)));
    add(PfnKind::BeyondRam, std::max(start, max_pfn), end);
  };
  // RAM is memblock.memory (NOMAP included: it has descriptors, as the kernel's boot memmap does).
  std::vector<std::pair<uint64_t, uint64_t>> ram;
  for (const MemblockRegion& r : machine.memblock().memory())
    ram.emplace_back(r.base.value() >> a.page_shift, r.end() >> a.page_shift);
  auto add_early_populated = [&](uint64_t start, uint64_t end) {
    uint64_t cur = start;
    for (const auto& [rs, re] : ram) {
      const uint64_t s = std::max(rs, start), e = std::min(re, end);
      if (s >= e) continue;
      add(PfnKind::EarlyHoleInSub, cur, s);
      add(PfnKind::EarlyRam, s, e);
      cur = e;
    }
    add(PfnKind::EarlyHoleInSub, cur, end);
  };

  const uint64_t pps = a.pages_per_section().value(), ppss = a.pages_per_subsection().value();
  const uint64_t per_root = a.sections_per_root();
  std::vector<uint64_t> memmap_sections;  // sections where pfn_valid can be true (valid_section, spec §3)
  for (uint64_t s = 0; s < a.nr_mem_sections();) {
    const uint64_t sp = s * pps;
    const MemSection* ms = machine.sections().find(SectionNr(s));
    if (!ms) {
      const uint64_t end = std::min(a.nr_mem_sections(), (s / per_root + 1) * per_root);
      add_no_section(sp, end * pps);
      s = end;
      continue;
    }
    const SectionFlags f = ms->flags();
    if (!f.has(SectionFlag::Present)) {
      add_no_section(sp, sp + pps);
    } else if (!f.has(SectionFlag::HasMemMap)) {
      add(PfnKind::PresentNoMemmap, sp, sp + pps);
    } else {
      memmap_sections.push_back(s);
      RcuReadGuard guard;
      const MemSectionUsage* u = ms->usage();
      const bool early = machine.sections().early_rule(f).early;
      for (unsigned i = 0; i < a.subsections_per_section(); ++i) {
        const uint64_t lo = sp + i * ppss, hi = lo + ppss;
        const bool populated = u && u->test(SubsectionIdx(i));
        if (early)
          populated ? add_early_populated(lo, hi) : add(PfnKind::EarlyHoleSubsection, lo, hi);
        else if (!populated)
          add(PfnKind::HotplugEmptySub, lo, hi);
        else
          add(f.has(SectionFlag::Online) ? PfnKind::HotplugOnline : PfnKind::HotplugOffline, lo, hi);
      }
    }
    ++s;
  }
  add(PfnKind::BeyondPhysLimit, a.max_pfn_limit(), a.max_pfn_limit() + 1);
  acc[static_cast<unsigned>(PfnKind::BeyondPhysLimit)].pages = 0;

  PfnQuerySummary sum;
  const Vmemmap& vm = machine.vmemmap();
  for (unsigned k = 0; k < kNrPfnKinds; ++k) {
    if (!acc[k].sample) continue;
    PfnKindSample x;
    x.kind = static_cast<PfnKind>(k);
    x.pages = NrPages(acc[k].pages);
    x.sample = *acc[k].sample;
    x.pfn_valid = machine.pfn_valid(x.sample);
    x.online = machine.pfn_is_online(x.sample);
    x.page_addr = vm.page_addr(x.sample);
    x.mapping = vm.mapping_of(x.sample);
    if (x.mapping != VmemmapMapKind::None) x.origin = vm.origin_of(x.sample);
    sum.kinds.push_back(x);
  }

  // Counting every pfn costs two lookups each; above 2^24 pfns (64 GiB of 4K pages) ask one pfn
  // per subsection, which 6.1 answers per subsection anyway (see PfnQuerySummary::exact).
  constexpr uint64_t kExactLimit = uint64_t{1} << 24;
  sum.exact = memmap_sections.size() * pps <= kExactLimit;
  const uint64_t stride = sum.exact ? 1 : ppss;
  RcuReadGuard guard;
  for (uint64_t s : memmap_sections)
    for (uint64_t pfn = s * pps; pfn < (s + 1) * pps; pfn += stride) {
      if (machine.pfn_valid(Pfn(pfn))) sum.valid_pfns += NrPages(stride);
      if (machine.pfn_is_online(Pfn(pfn))) sum.online_pfns += NrPages(stride);
    }
  return sum;
}

std::string render_pfn_summary(const Machine& machine, const PfnQuerySummary& summary) {
  Table t;
  t.row({"kind", "pages", "sample pfn", "pfn_valid", "pfn_to_online_page", "struct page", "vmemmap"});
  for (const PfnKindSample& k : summary.kinds) {
    std::string vm = map_kind_name(k.mapping);
    if (k.mapping != VmemmapMapKind::None) vm += fmt::format(" [{}]", origin_name(k.origin));
    const bool in_window = machine.vmemmap().in_window(k.sample, NrPages(1));
    t.row({pfn_kind_name(k.kind), k.kind == PfnKind::BeyondPhysLimit ? "-" : fmt::format("{}", k.pages.value()),
           hex(k.sample.value()), k.pfn_valid ? "1" : "0", k.online ? "page" : "NULL",
           hex(k.page_addr.value()) + (in_window ? "" : " (outside the window)"),
           k.mapping == VmemmapMapKind::None ? "unmapped" : vm});
  }
  std::string out = t.render(false, "  ");
  out += fmt::format("  pfn_valid() is true for {} pfns, pfn_to_online_page() returns a page for {} pfns{}\n",
                     summary.valid_pfns.value(), summary.online_pfns.value(),
                     summary.exact ? " (every pfn asked)" : " (one pfn per subsection asked)");
  return out;
}

}  // namespace sparsemem
