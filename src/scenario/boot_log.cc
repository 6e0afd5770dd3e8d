// Kernel messages the simulator prints on the machine's behalf: the boot memory layout (e820,
// SRAT, free_area_init) and mm/page_alloc.c's zonelist rebuilds. Reads the machine, changes nothing.
#include <algorithm>

#include <fmt/core.h>

#include "scenario/simulation.h"

namespace sparsemem::sim {

std::vector<std::string> boot_prefix_messages(const Scenario& sc, const PlatformDescription& p, const Machine& m,
                                              const std::string& kernel_release) {
  std::vector<std::string> out;
  out.push_back(fmt::format("Linux version {} (sparsemem {}) #1 SMP PREEMPT_DYNAMIC", kernel_release,
                            m.behaviour().name));
  out.push_back("Command line: " + sc.kernel_cmdline());
  for (const std::string& l : p.e820_log) {
    // The late "reserve RAM buffer" lines come after PCI probing, long after the memory layout.
    if (!l.starts_with("e820: reserve RAM buffer")) out.push_back(l);
  }
  for (const std::string& l : srat_memory_lines(p)) out.push_back(l);

  // free_area_init() (mm/page_alloc.c): zone bounds from max_zone_pfn[] and the lowest memblock pfn.
  const ArchProfile& arch = m.arch();
  const auto mem = m.memblock().memory();
  if (mem.empty()) return out;
  const uint64_t page = arch.page_size();
  auto pfn_up = [&](uint64_t a) { return (a + page - 1) >> arch.page_shift; };
  auto pfn_down = [&](uint64_t a) { return a >> arch.page_shift; };
  uint64_t lowest = UINT64_MAX, highest = 0;
  for (const MemblockRegion& r : mem) {
    lowest = std::min(lowest, pfn_up(r.base.value()));
    highest = std::max(highest, pfn_down(r.end()));
  }
  const ZoneLimits limits = boot_zone_limits(arch);
  out.push_back("Zone ranges:");
  uint64_t start = lowest;
  for (unsigned z = 0; z < MAX_NR_ZONES; ++z) {
    const auto type = static_cast<ZoneType>(z);
    if (type == ZoneType::Movable) continue;
    // ZONE_NORMAL ends at max_pfn; ZONE_DEVICE has no boot pfns (max_zone_pfn 0).
    const uint64_t zone_max = type == ZoneType::Normal ? highest : type == ZoneType::Device ? 0 : limits.max_pfn[z].value();
    const uint64_t end = std::max(zone_max, start);
    const std::string label = fmt::format("  {:<8} ", zone_name(type));
    if (end == start)
      out.push_back(label + "empty");
    else
      out.push_back(fmt::format("{}[mem {:#018x}-{:#018x}]", label, start << arch.page_shift, (end << arch.page_shift) - 1));
    start = end;
  }
  out.push_back("Movable zone start for each node");
  for (const Node& n : m.nodes()) {
    const Zone& mov = n.zone(ZoneType::Movable);
    if (!mov.is_empty()) out.push_back(fmt::format("  Node {}: {:#018x}", n.nid, mov.zone_start_pfn.value() << arch.page_shift));
  }
  out.push_back("Early memory node ranges");
  // for_each_mem_pfn_range(): memblock regions, adjacent ones of a node merged, whole pages only.
  struct PfnSpan {
    uint64_t start, end;
    int nid;
  };
  std::vector<PfnSpan> spans;
  for (const MemblockRegion& r : mem) {
    const uint64_t s = pfn_up(r.base.value()), e = pfn_down(r.end());
    if (s >= e) continue;
    if (!spans.empty() && spans.back().end == s && spans.back().nid == r.nid)
      spans.back().end = e;
    else
      spans.push_back({s, e, r.nid});
  }
  for (const PfnSpan& s : spans)
    out.push_back(fmt::format("  node {:>3}: [mem {:#018x}-{:#018x}]", s.nid, s.start << arch.page_shift,
                              (s.end << arch.page_shift) - 1));
  for (const Node& n : m.nodes()) {
    uint64_t s = UINT64_MAX, e = 0;
    for (const PfnSpan& sp : spans) {
      if (sp.nid != static_cast<int>(n.nid)) continue;
      s = std::min(s, sp.start);
      e = std::max(e, sp.end);
    }
    if (s < e)
      out.push_back(fmt::format("Initmem setup node {} [mem {:#018x}-{:#018x}]", n.nid, s << arch.page_shift,
                                (e << arch.page_shift) - 1));
  }
  return out;
}

std::set<std::pair<unsigned, ZoneType>> ZonelistLog::populated(const Machine& m) const {
  std::set<std::pair<unsigned, ZoneType>> out;
  for (const Node& n : m.nodes())
    for (const Zone& z : n.zones)
      if (n.online && z.populated()) out.emplace(n.nid, z.type);
  return out;
}

std::vector<std::string> ZonelistLog::build(const Machine& m) {
  std::vector<std::string> out;
  std::vector<unsigned> online;
  uint64_t total = 0;
  for (const Node& n : m.nodes()) {
    if (!n.online) continue;
    online.push_back(n.nid);
    for (const Zone& z : n.zones) {
      total += z.managed_pages.value();
      // check_highest_zone(): policy_zone only grows, and never to ZONE_MOVABLE.
      if (z.populated() && z.type != ZoneType::Movable && z.type > m_policy_zone) m_policy_zone = z.type;
    }
  }
  // build_zonelists(): the node itself first, then the others by distance (QEMU's default table
  // makes every other node equally far, so by number).
  for (const unsigned nid : online) {
    std::string line = fmt::format("Fallback order for Node {}: {} ", nid, nid);
    for (const unsigned other : online)
      if (other != nid) line += fmt::format("{} ", other);
    out.push_back(line);
  }
  out.push_back(fmt::format("Built {} zonelists, mobility grouping on.  Total pages: {}", online.size(), total));
  out.push_back(fmt::format("Policy zone: {}", zone_name(m_policy_zone)));
  return out;
}

void ZonelistLog::attach(Machine& m) {
  Machine* mp = &m;
  m.register_memory_notifier(
      [this, mp](MemoryAction action, const MemoryNotify&) {
        switch (action) {
          case MemoryAction::GoingOnline:
          case MemoryAction::GoingOffline: m_before = populated(*mp); break;
          case MemoryAction::Online:
          case MemoryAction::Offline:
            if (populated(*mp) != m_before)
              for (std::string& l : build(*mp)) mp->log().append(LogLevel::Info, std::move(l));
            break;
          default: break;
        }
        return NOTIFY_OK;
      },
      /*priority=*/INT32_MAX, /*sees_memmap=*/false);  // zone counters only
}

}  // namespace sparsemem::sim
