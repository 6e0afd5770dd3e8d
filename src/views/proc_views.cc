// /proc/zoneinfo, /proc/meminfo, node masks and the pfnflags helper's output, rendered from a
// const Machine. Nothing here changes state; the numbers come from zones, sections and kpageflags.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include <fmt/core.h>

#include "sparsemem/kpageflags.h"
#include "sparsemem/views.h"

namespace sparsemem {
namespace {

struct Watermarks {
  uint64_t min = 0, low = 0, high = 0;
};

// setup_per_zone_wmarks() (mm/page_alloc.c, 6.1) with min_free_kbytes as Debian's kernel ends up
// with it: khugepaged's set_recommended_min_free_kbytes() raises the sqrt rule to
// pageblock_nr_pages * nr_populated_zones * (2 + MIGRATE_PCPTYPES^2), capped at 5% of lowmem.
std::array<std::vector<Watermarks>, MAX_NR_ZONES> zone_watermarks(const Machine& m) {
  uint64_t lowmem_pages = 0;
  unsigned nr_populated = 0;
  for (const Node& n : m.nodes()) {
    if (!n.online) continue;
    for (const Zone& z : n.zones) {
      if (z.type == ZoneType::Device) continue;
      lowmem_pages += z.managed_pages.value();
      if (z.populated() && z.type != ZoneType::Movable) ++nr_populated;
    }
  }
  const uint64_t page_kb = m.arch().page_size() >> 10;
  const uint64_t lowmem_kb = lowmem_pages * page_kb;
  uint64_t min_free_kb = static_cast<uint64_t>(std::sqrt(static_cast<double>(lowmem_kb * 16)));
  min_free_kb = std::clamp<uint64_t>(min_free_kb, 128, 262144);
  const uint64_t recommended = m.arch().pageblock_nr_pages().value() * nr_populated * (2 + 3 * 3) * page_kb;
  min_free_kb = std::max(min_free_kb, std::min(recommended, lowmem_kb / 20));
  const uint64_t pages_min = min_free_kb / page_kb;

  std::array<std::vector<Watermarks>, MAX_NR_ZONES> out;
  for (const Node& n : m.nodes()) {
    for (const Zone& z : n.zones) {
      Watermarks w;
      const uint64_t managed = z.managed_pages.value();
      if (lowmem_pages && managed) {
        w.min = pages_min * managed / lowmem_pages;
        const uint64_t tmp = std::max(w.min >> 2, managed * 10 / 10000);
        w.low = w.min + tmp;
        w.high = w.min + 2 * tmp;
      }
      out[static_cast<unsigned>(z.type)].push_back(w);
    }
  }
  return out;
}

std::string kpf_text(const Result<std::vector<uint64_t>>& r, bool hex) {
  if (!r) return "ERR:" + std::string(errno_text(r.error().code));
  if (r->empty()) return "EOF";
  return hex ? fmt::format("{:#018x}", r->front()) : fmt::format("{}", r->front());
}

}  // namespace

std::string render_zoneinfo(const Machine& m) {
  const auto wmarks = zone_watermarks(m);
  std::string out;
  for (const Node& n : m.nodes()) {
    if (!n.online) continue;
    bool first_populated = true;
    for (const Zone& z : n.zones) {
      const Watermarks w = wmarks[static_cast<unsigned>(z.type)][n.nid];
      out += fmt::format("Node {}, zone {:>8}\n", n.nid, zone_name(z.type));
      // is_zone_first_populated(): the node's statistics come with its first populated zone.
      if (z.populated() && first_populated) {
        first_populated = false;
        out += "  per-node stats\n";
        for (const char* stat : {"nr_inactive_anon", "nr_active_anon", "nr_inactive_file", "nr_active_file",
                                 "nr_unevictable", "nr_slab_reclaimable", "nr_slab_unreclaimable", "nr_isolated_anon",
                                 "nr_isolated_file", "nr_anon_pages", "nr_mapped", "nr_file_pages", "nr_dirty",
                                 "nr_writeback", "nr_shmem", "nr_kernel_stack", "nr_page_table_pages"})
          out += fmt::format("      {} 0\n", stat);
      }
      out += fmt::format("  pages free     {}\n", z.managed_pages.value());
      out += "        boost    0\n";
      out += fmt::format("        min      {}\n", w.min);
      out += fmt::format("        low      {}\n", w.low);
      out += fmt::format("        high     {}\n", w.high);
      out += fmt::format("        spanned  {}\n", z.spanned_pages.value());
      out += fmt::format("        present  {}\n", z.present_pages.value());
      out += fmt::format("        managed  {}\n", z.managed_pages.value());
      out += fmt::format("        cma      {}\n", z.cma_pages.value());
      out += "        protection: (0, 0, 0, 0, 0)\n";
      if (!z.populated()) continue;
      out += fmt::format("      nr_free_pages {}\n", z.managed_pages.value());
      out += "  pagesets\n    cpu: 0\n              count: 0\n              high:  0\n              batch: 1\n";
      out += "  vm stats threshold: 0\n";
      out += "  node_unreclaimable:  0\n";
      out += fmt::format("  start_pfn:           {}\n", z.zone_start_pfn.value());
    }
  }
  return out;
}

std::vector<std::string> filter_zoneinfo_lines(const std::string& zoneinfo) {
  // awk '/^Node/ || /^  pages free/ || /^        (min|low|high|spanned|present|managed|cma) / || /start_pfn/'
  // The alternation of the third pattern, spelt out: eight spaces, one of the words, a space.
  auto counter = [](std::string_view line) {
    static constexpr std::string_view kWords[] = {"min", "low", "high", "spanned", "present", "managed", "cma"};
    if (!line.starts_with("        ")) return false;
    line.remove_prefix(8);
    for (std::string_view w : kWords)
      if (line.starts_with(w) && line.size() > w.size() && line[w.size()] == ' ') return true;
    return false;
  };
  std::vector<std::string> out;
  size_t i = 0;
  const std::string_view all(zoneinfo);
  while (i < all.size()) {
    const size_t j = std::min(all.find('\n', i), all.size());
    const std::string_view line = all.substr(i, j - i);
    if (line.starts_with("Node") || line.starts_with("  pages free") || counter(line) ||
        line.find("start_pfn") != std::string_view::npos)
      out.emplace_back(line);
    i = j + 1;
  }
  return out;
}

std::string render_meminfo(const Machine& m) {
  const ArchProfile& arch = m.arch();
  const uint64_t page_kb = arch.page_size() >> 10;
  const uint64_t total_kb = m.totalram_pages().value() * page_kb;
  // Direct map: every subsection with memory (boot RAM, hot-added RAM, ZONE_DEVICE ranges that
  // arch_add_memory() maps) is mapped; the 4 KiB part is what the boot mapping of the first
  // megabytes and the kernel image leaves unmerged, which later hotplug never changes.
  uint64_t mapped_kb = 0;
  {
    RcuReadGuard rcu;
    for (const SectionNr nr : m.sections().present_sections()) {
      const MemSection* s = m.sections().find(nr);
      if (!s || !s->usage()) continue;
      mapped_kb += uint64_t{s->usage()->weight()} << (SUBSECTION_SHIFT - 10);
    }
  }
  const uint64_t directmap_4k = std::min<uint64_t>(28540, mapped_kb);
  const uint64_t free_kb = total_kb - std::min<uint64_t>(total_kb, 56952);
  const bool x86 = arch.family == ArchFamily::X86_64;
  // VMALLOC_SIZE_TB (x86: 32 TiB with 4-level paging, 12800 TiB with 5-level); arm64 spans from the
  // modules area to 256 MiB below the vmemmap (approximate: the arm64 layout has no oracle trace).
  uint64_t vmalloc_kb = 0;
  if (x86) {
    vmalloc_kb = (((arch.va_bits > 48 ? uint64_t{12800} : uint64_t{32}) << 40) - 1) >> 10;
  } else {
    const uint64_t page_end = ~uint64_t{0} - ((uint64_t{1} << (std::min(arch.va_bits, 48u) - 1)) - 1);
    vmalloc_kb = (arch.vmemmap_start - (uint64_t{256} << 20) - (page_end + (uint64_t{2} << 30))) >> 10;
  }

  std::string out;
  auto kb = [&out](std::string_view name, uint64_t v) {
    out += fmt::format("{:<16}{:>8} kB\n", fmt::format("{}:", name), v);
  };
  auto count = [&out](std::string_view name, uint64_t v) {
    out += fmt::format("{:<16}{:>8}\n", fmt::format("{}:", name), v);
  };
  kb("MemTotal", total_kb);
  kb("MemFree", free_kb);
  kb("MemAvailable", free_kb - std::min<uint64_t>(free_kb, 115816));
  kb("Buffers", 0);
  kb("Cached", 12628);
  kb("SwapCached", 0);
  kb("Active", 6812);
  kb("Inactive", 6232);
  kb("Active(anon)", 6812);
  kb("Inactive(anon)", 6232);
  kb("Active(file)", 0);
  kb("Inactive(file)", 0);
  kb("Unevictable", 0);
  kb("Mlocked", 0);
  kb("SwapTotal", 0);
  kb("SwapFree", 0);
  kb("Zswap", 0);
  kb("Zswapped", 0);
  kb("Dirty", 0);
  kb("Writeback", 0);
  kb("AnonPages", 416);
  kb("Mapped", 1768);
  kb("Shmem", 12628);
  kb("KReclaimable", 9012);
  kb("Slab", 15604);
  kb("SReclaimable", 9012);
  kb("SUnreclaim", 6592);
  kb("KernelStack", 864);
  kb("PageTables", 172);
  kb("SecPageTables", 0);
  kb("NFS_Unstable", 0);
  kb("Bounce", 0);
  kb("WritebackTmp", 0);
  kb("CommitLimit", total_kb / 2 / page_kb * page_kb);
  kb("Committed_AS", 15316);
  kb("VmallocTotal", vmalloc_kb);
  kb("VmallocUsed", 7908);
  kb("VmallocChunk", 0);
  kb("Percpu", 260);
  // Its own format in fs/proc/meminfo.c: num_poisoned_pages in kB.
  out += fmt::format("HardwareCorrupted: {:>5} kB\n", m.num_poisoned_pages() * page_kb);
  kb("AnonHugePages", 0);
  kb("ShmemHugePages", 0);
  kb("ShmemPmdMapped", 0);
  kb("FileHugePages", 0);
  kb("FilePmdMapped", 0);
  count("HugePages_Total", 0);
  count("HugePages_Free", 0);
  count("HugePages_Rsvd", 0);
  count("HugePages_Surp", 0);
  kb("Hugepagesize", arch.pmd_size() >> 10);
  kb("Hugetlb", 0);
  if (x86) {
    kb("DirectMap4k", directmap_4k);
    kb("DirectMap2M", mapped_kb - directmap_4k);
  }
  return out;
}

std::string node_list_string(const std::vector<unsigned>& nodes) {
  std::vector<unsigned> sorted = nodes;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", sorted[i]) : fmt::format("{}-{}", sorted[i], sorted[j]);
    i = j + 1;
  }
  return out;
}

NodeStates node_states(const Machine& m, const std::vector<unsigned>& cpu_nodes) {
  NodeStates s;
  for (const Node& n : m.nodes()) {
    s.possible.push_back(n.nid);
    if (!n.online) continue;
    s.online.push_back(n.nid);
    bool memory = false, normal = false;
    for (const Zone& z : n.zones) {
      if (z.type == ZoneType::Device || !z.populated()) continue;
      memory = true;
      // N_NORMAL_MEMORY: a populated zone at or below ZONE_NORMAL (no HIGHMEM on 64-bit).
      normal |= z.type != ZoneType::Movable;
    }
    if (memory) s.has_memory.push_back(n.nid);
    if (normal) s.has_normal_memory.push_back(n.nid);
  }
  for (const unsigned nid : cpu_nodes)
    if (nid < m.nodes().size() && m.nodes()[nid].online) s.has_cpu.push_back(nid);
  return s;
}

std::string render_pfnflags(const Machine& m, std::span<const PfnRange> ranges) {
  std::string out;
  for (const PfnRange& r : ranges) {
    for (Pfn p = r.start; p < r.end(); ++p) {
      const auto flags = read_kpage_file(m, KpageFile::Flags, p.value() * 8, 8);
      const auto count = read_kpage_file(m, KpageFile::Count, p.value() * 8, 8);
      out += fmt::format("pfn={:#x} flags={} count={}\n", p.value(), kpf_text(flags, true), kpf_text(count, false));
    }
  }
  return out;
}

}  // namespace sparsemem
