// Trace comparison (diff.h): the rule table, the dmesg pattern list, and the comparison that
// applies them. Pure; the regex table is built once, on first use, and only read afterwards.
#include "sparsemem/diff.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <regex>
#include <utility>

#include <fmt/core.h>

#include "sparsemem/check.h"

namespace sparsemem {
namespace {

using J = OrderedJson;
using K = DiffRuleKind;

// One row per field. docs/conformance.md carries the same table; a unit test keeps them in step.
constexpr DiffRule kRules[] = {
    // Trace level.
    {"trace.scenario", K::Identity, "names the scenario both traces ran"},
    {"trace.scenario_file", K::Identity, "compared by file name: the directory depends on where the scenario was run from"},
    {"trace.description", K::Identity, "part of the scenario text"},
    {"trace.scenario_source", K::Identity, "the scenario text itself; a difference means different scenarios"},
    {"trace.kernel", K::Excluded, "executor identity (the host's kernel package), not an observation"},
    {"trace.qemu_version", K::Excluded, "executor identity, not an observation"},
    {"trace.qemu_greeting", K::Excluded, "QMP greeting: QEMU's version, executor identity"},
    {"trace.guest_kernel", K::Excluded, "uname -r in the guest: executor identity"},
    {"trace.qemu_cmdline", K::Masked, "the -kernel image path names the host's kernel package and the console log path depends on ORACLE_LOGS; everything else is exact ($RUNDIR is already substituted by the driver)"},
    {"trace.guest_cmdline", K::Exact, "the base command line plus the append: lines"},
    {"trace.boot_to_init_s", K::Excluded, "host timing"},
    {"trace.completed", K::Exact, "whether every step ran"},
    {"trace.errors", K::Exact, "driver errors (QEMU refusing the command line, ...), one observation per entry"},
    {"trace.final_memory_devices", K::Exact, "QMP query-memory-devices after the last step"},
    {"trace.trailing_qmp_events", K::Masked, "event timestamps are host wall-clock time; the rest is exact"},
    {"trace.qemu_exit", K::Exact, "QEMU's exit status"},
    {"trace.qemu_output", K::Exact, "QEMU's own messages ($RUNDIR already substituted)"},
    {"trace.console_alerts", K::Masked, "each line reduced to its alert marker (WARNING:, BUG:, Oops, ...): the rest is timestamps, PIDs, registers and addresses"},
    {"trace.console_tail", K::Excluded, "a debugging aid: the last 80 console lines of an incomplete run"},
    {"trace.timing", K::Excluded, "host timing"},
    {"trace.*", K::Exact, "top-level keys the layout does not model"},
    // Steps.
    {"step.index", K::Identity, "step number"},
    {"step.type", K::Identity, "guest or host, from the scenario"},
    {"step.name", K::Identity, "from the scenario"},
    {"step.t_start", K::Excluded, "host timing"},
    {"step.t_end", K::Excluded, "host timing"},
    {"step.guest_uptime_start", K::Excluded, "guest timing"},
    {"step.guest_uptime_end", K::Excluded, "guest timing"},
    {"step.*", K::Exact, "step keys the layout does not model"},
    {"command.cmd", K::Identity, "the command line from the scenario"},
    {"command.rc", K::Exact, "exit status"},
    {"command.stdout", K::Masked, "UUIDs (ndctl create-namespace makes a random one per namespace) and kernel log timestamps are masked; the rest is exact"},
    {"command.stderr", K::Masked, "as stdout"},
    {"command.t0", K::Excluded, "guest timing"},
    {"command.t1", K::Excluded, "guest timing"},
    {"command.*", K::Exact, "command keys the layout does not model"},
    {"host_action.action", K::Identity, "the host line from the scenario"},
    {"host_action.response", K::Masked, "QMP/HMP reply; the timestamp of an event returned by wait_event is masked"},
    {"host_action.events", K::Masked, "timestamps masked; compared as one sequence per step, because which action an event is attached to depends on host timing (the driver reads for 0.3 s after each action)"},
    {"host_action.elapsed_s", K::Excluded, "host timing"},
    {"host_action.error", K::Exact, "\"no QMP connection\""},
    {"host_action.*", K::Exact, "host action keys the layout does not model"},
    // Snapshot.
    {"iomem", K::Exact, "one observation per /proc/iomem line, aligned as a sequence"},
    {"iomem_raw", K::Redundant, "the same lines as iomem: must render from iomem"},
    {"memory_blocks.state", K::Exact, "memoryN/state"},
    {"memory_blocks.phys_index", K::Exact, "memoryN/phys_index"},
    {"memory_blocks.valid_zones", K::Exact, "memoryN/valid_zones"},
    {"memory_blocks.removable", K::Exact, "memoryN/removable"},
    {"memory_blocks.phys_device", K::Exact, "memoryN/phys_device"},
    {"memory_blocks.online_type", K::Exact, "absent in 6.1 (null)"},
    {"memory_blocks.nodes", K::Exact, "nodeN links of the block"},
    {"memory_blocks.*", K::Exact, "block keys the layout does not model"},
    {"memory_global.*", K::Exact, "block_size_bytes, auto_online_blocks, memory_hotplug parameters, node masks: one observation per key"},
    {"zones.start_pfn", K::Exact, "zone span: exact from the memory map and hotplug"},
    {"zones.end_pfn", K::Exact, "start_pfn + spanned"},
    {"zones.spanned", K::Exact, "zone span"},
    {"zones.present", K::Exact, "pages backed by memory: exact from the memory map and hotplug"},
    {"zones.managed", K::Delta, "the boot value depends on what the kernel reserved while booting (image, initrd, page tables; it differs by a page between runs); every later change is onlining or offlining and exact"},
    {"zones.cma", K::Exact, "no CMA area: 0"},
    {"zones.pages_free", K::Excluded, "allocator noise: every allocation changes it"},
    {"zones.min", K::Excluded, "watermarks follow min_free_kbytes = sqrt(16 * lowmem kB) over the boot-noisy managed counts; not linear, so deltas do not carry over"},
    {"zones.low", K::Excluded, "watermark, as min"},
    {"zones.high", K::Excluded, "watermark, as min"},
    {"zones.*", K::Exact, "zone keys the layout does not model"},
    {"zones_raw", K::Redundant, "the zoneinfo lines zones was parsed from: must parse to the same zones"},
    {"meminfo.MemTotal", K::Delta, "sum of managed pages: boot value depends on boot-time reservations, every change is exactly the pages onlined or offlined"},
    {"meminfo.MemFree", K::Excluded, "allocator noise"},
    {"meminfo.MemAvailable", K::Excluded, "estimate from free pages and caches: allocator noise"},
    {"meminfo.Buffers", K::Excluded, "page cache"},
    {"meminfo.Cached", K::Excluded, "page cache"},
    {"meminfo.SwapCached", K::Exact, "no swap device: 0"},
    {"meminfo.Active", K::Excluded, "LRU state of userspace and page cache"},
    {"meminfo.Inactive", K::Excluded, "LRU state of userspace and page cache"},
    {"meminfo.Active(anon)", K::Excluded, "LRU state of userspace"},
    {"meminfo.Inactive(anon)", K::Excluded, "LRU state of userspace"},
    {"meminfo.Active(file)", K::Excluded, "LRU state of page cache"},
    {"meminfo.Inactive(file)", K::Excluded, "LRU state of page cache"},
    {"meminfo.Unevictable", K::Excluded, "LRU state of userspace and page cache"},
    {"meminfo.Mlocked", K::Excluded, "userspace mlock"},
    {"meminfo.SwapTotal", K::Exact, "no swap device: 0"},
    {"meminfo.SwapFree", K::Exact, "no swap device: 0"},
    {"meminfo.Zswap", K::Exact, "no swap device: 0"},
    {"meminfo.Zswapped", K::Exact, "no swap device: 0"},
    {"meminfo.Dirty", K::Excluded, "page cache writeback state"},
    {"meminfo.Writeback", K::Excluded, "page cache writeback state"},
    {"meminfo.AnonPages", K::Excluded, "userspace memory (busybox, the step commands)"},
    {"meminfo.Mapped", K::Excluded, "userspace mappings"},
    {"meminfo.Shmem", K::Excluded, "tmpfs contents (initramfs, command output files)"},
    {"meminfo.KReclaimable", K::Excluded, "kernel allocations"},
    {"meminfo.Slab", K::Excluded, "kernel allocations"},
    {"meminfo.SReclaimable", K::Excluded, "kernel allocations"},
    {"meminfo.SUnreclaim", K::Excluded, "kernel allocations"},
    {"meminfo.KernelStack", K::Excluded, "kernel allocations (one stack per process)"},
    {"meminfo.PageTables", K::Excluded, "kernel allocations (userspace page tables)"},
    {"meminfo.SecPageTables", K::Exact, "no KVM guests: 0"},
    {"meminfo.NFS_Unstable", K::Exact, "constant 0 in 6.1"},
    {"meminfo.Bounce", K::Exact, "constant 0 in 6.1"},
    {"meminfo.WritebackTmp", K::Exact, "constant 0 in 6.1"},
    {"meminfo.CommitLimit", K::Excluded, "MemTotal / 2 (overcommit_ratio 50) rounded to a page: carries nothing beyond MemTotal, which is compared"},
    {"meminfo.Committed_AS", K::Excluded, "userspace commitments"},
    {"meminfo.VmallocTotal", K::Exact, "size of the vmalloc area: fixed by the paging mode"},
    {"meminfo.VmallocUsed", K::Excluded, "kernel vmalloc allocations (modules, stacks)"},
    {"meminfo.VmallocChunk", K::Exact, "constant 0 since 5.3"},
    {"meminfo.Percpu", K::Excluded, "percpu allocations (modules)"},
    {"meminfo.HardwareCorrupted", K::Exact, "poisoned pages: soft and hard offlining are deterministic"},
    {"meminfo.AnonHugePages", K::Excluded, "transparent huge pages used by userspace"},
    {"meminfo.ShmemHugePages", K::Excluded, "transparent huge pages used by userspace"},
    {"meminfo.ShmemPmdMapped", K::Excluded, "transparent huge pages used by userspace"},
    {"meminfo.FileHugePages", K::Excluded, "transparent huge pages used by userspace"},
    {"meminfo.FilePmdMapped", K::Excluded, "transparent huge pages used by userspace"},
    {"meminfo.HugePages_Total", K::Exact, "no hugetlb pool configured"},
    {"meminfo.HugePages_Free", K::Exact, "no hugetlb pool configured"},
    {"meminfo.HugePages_Rsvd", K::Exact, "no hugetlb pool configured"},
    {"meminfo.HugePages_Surp", K::Exact, "no hugetlb pool configured"},
    {"meminfo.Hugepagesize", K::Exact, "PMD size"},
    {"meminfo.Hugetlb", K::Exact, "no hugetlb pool configured"},
    {"meminfo.DirectMap4k", K::Delta, "the boot split of the direct map depends on the kernel image layout and early allocations; hot-add, hot-remove and memremap map and unmap whole 2 MiB pages, exactly. Across a step that loads a module (modprobe, insmod) only the sum of the DirectMap fields is compared, as one observation: the module's pages are made read-only and non-executable in the direct map too, splitting 2 MiB pages wherever the allocator put them (+2048 or +4096 kB of 4k in traces d3, x1 and y1, which maps no memory at all)"},
    {"meminfo.DirectMap2M", K::Delta, "as DirectMap4k"},
    {"meminfo.DirectMap1G", K::Delta, "as DirectMap4k"},
    {"meminfo.*", K::Exact, "meminfo fields without a row of their own"},
    {"kpageflags.flags", K::Masked, "allocation-state bits (LRU, BUDDY, ANON, SLAB, ... and the owner bits of pages that are not RESERVED) say who uses a page right now: allocator noise; NOPAGE, RESERVED, HWPOISON, OFFLINE, ZERO_PAGE and the other bits are exact; EOF/ERR markers exact"},
    {"kpageflags.count", K::Masked, "kpagecount is the map count: compared when the expected page carries no allocation-state bit (reserved, offline, absent, free-tail pages), not compared for pages in use"},
    {"kpageflags.flag_names", K::Redundant, "decoded from flags"},
    {"kpageflags.note", K::Exact, "pfnflags lines that are not per-pfn (open errors), as a sequence"},
    {"kpageflags.*", K::Exact, "kpageflags keys the layout does not model"},
    {"acpi_memory_devices.status", K::Exact, "_STA"},
    {"acpi_memory_devices.path", K::Exact, "ACPI path"},
    {"acpi_memory_devices.eject", K::Exact, "has an eject file"},
    {"acpi_memory_devices.physical_nodes", K::Exact, "memory blocks of the device"},
    {"acpi_memory_devices.*", K::Exact, "ACPI device keys the layout does not model"},
    {"nd_dax.*", K::Exact, "every libnvdimm and device-dax attribute, driver included, one observation each"},
    {"dmesg", K::Filtered, "only the messages of the model's code paths (dmesg_patterns()), timestamps removed, compared as a sequence"},
    {"snapshot.sparsemem_checker", K::Excluded, "the simulator's invariant checker findings after the step; the real kernel has no such observation"},
    {"snapshot.*", K::Exact, "snapshot parts the layout does not model"},
};

// Kernel messages the model produces, by the 6.1 function that prints them.
constexpr DmesgPattern kDmesgPatterns[] = {
    // Boot: the memory map and what free_area_init() derives from it.
    {"arch/x86/kernel/e820.c e820__print_table", R"(^BIOS-e820: \[mem 0x[0-9a-f]+-0x[0-9a-f]+\] .+$)", "", ""},
    {"drivers/acpi/numa/srat.c acpi_numa_memory_affinity_init", R"(^ACPI: SRAT: Node \d+ PXM \d+ \[mem 0x[0-9a-f]+-0x[0-9a-f]+\]( hotplug)?( non-volatile)?$)", "", ""},
    {"mm/page_alloc.c free_area_init", R"(^Zone ranges:$)", "", ""},
    {"mm/page_alloc.c free_area_init", R"(^  (DMA|DMA32|Normal|Movable|Device) +(\[mem 0x[0-9a-f]+-0x[0-9a-f]+\]|empty)$)", "", ""},
    {"mm/page_alloc.c free_area_init", R"(^Movable zone start for each node$)", "", ""},
    {"mm/page_alloc.c free_area_init", R"(^  Node \d+: 0x[0-9a-f]+$)", "", ""},
    {"mm/page_alloc.c free_area_init", R"(^Early memory node ranges$)", "", ""},
    {"mm/page_alloc.c free_area_init", R"(^  node +\d+: \[mem 0x[0-9a-f]+-0x[0-9a-f]+\]$)", "", ""},
    {"mm/page_alloc.c free_area_init_node", R"(^Initmem setup node \d+ \[mem 0x[0-9a-f]+-0x[0-9a-f]+\]$)", "", ""},
    {"mm/page_alloc.c init_unavailable_range", R"(^On node \d+, zone \w+: \d+ pages in unavailable ranges$)", "", ""},
    {"arch/x86/mm/init_64.c probe_memory_block_size", R"(^x86/mm: Memory block size: \d+MB$)", "", ""},
    // Zonelists are rebuilt when onlining populates a zone or offlining empties one.
    {"mm/page_alloc.c build_zonelists", R"(^Fallback order for Node \d+:( \d+)* $)", "", ""},
    {"mm/page_alloc.c build_all_zonelists", R"(^Built \d+ zonelists, mobility grouping (on|off)\.  Total pages: \d+$)", R"(Total pages: \d+)", "Total pages: <managed, allocator noise>"},
    {"mm/page_alloc.c build_all_zonelists", R"(^Policy zone: \w+$)", "", ""},
    // Memory hotplug.
    {"mm/memory_hotplug.c check_hotplug_memory_range", R"(^Block size \[0x[0-9a-f]+\] unaligned hotplug range: start 0x[0-9a-f]+, size 0x[0-9a-f]+$)", "", ""},
    {"mm/memory_hotplug.c check_hotplug_memory_addressable", R"(^Hotplug memory \[0x[0-9a-f]+-0x[0-9a-f]+\] exceeds maximum addressable range \[0x[0-9a-f]+-0x[0-9a-f]+\]$)", "", ""},
    {"mm/memory_hotplug.c register_memory_resource", R"(^Unable to reserve System RAM region: [0-9a-f]+->[0-9a-f]+$)", "", ""},
    {"mm/memory_hotplug.c online_pages", R"(^online_pages \[mem 0x[0-9a-f]+-0x[0-9a-f]+\] failed$)", "", ""},
    {"mm/memory_hotplug.c offline_pages", R"(^memory offlining \[mem 0x[0-9a-f]+-0x[0-9a-f]+\] failed due to .+$)", "", ""},
    {"mm/memory_hotplug.c offline_pages", R"(^Offlined Pages \d+$)", "", ""},
    {"mm/memory_hotplug.c check_memblock_offlined_cb", R"(^removing memory fails, because memory \[.+\] is onlined$)", "", ""},
    // Sparse memory model.
    {"mm/sparse.c clear_subsection_map", R"(^section already deactivated \(0x[0-9a-f]+ \+ \d+\)$)", "", ""},
    // ZONE_DEVICE.
    {"mm/memremap.c pagemap_range", R"(^Conflicting mapping in same section$)", "", ""},
    {"mm/memremap.c memremap_pages", R"(^Missing (migrate_to_ram|page_free) method$)", "", ""},
    {"mm/memremap.c memremap_pages", R"(^Missing owner$)", "", ""},
    {"mm/memremap.c memremap_pages", R"(^altmap not supported for multiple ranges$)", "", ""},
    {"mm/memremap.c memremap_pages", R"(^Invalid pgmap type -?\d+$)", "", ""},
    // ACPI memory devices (DIMMs).
    {"drivers/acpi/acpi_memhotplug.c acpi_memory_device_add", R"(^acpi PNP0C80:[0-9a-f]+: Memory device configured by ACPI$)", "", ""},
    {"drivers/acpi/acpi_memhotplug.c acpi_memory_enable_device", R"(^acpi PNP0C80:[0-9a-f]+: add_memory failed$)", "", ""},
    {"drivers/acpi/acpi_memhotplug.c acpi_memory_device_add", R"(^acpi PNP0C80:[0-9a-f]+: acpi_memory_enable_device\(\) error$)", "", ""},
    // device-dax kmem.
    {"drivers/dax/kmem.c dev_dax_kmem_probe", R"(^kmem dax\d+\.\d+: mapping\d+: 0x[0-9a-f]+-0x[0-9a-f]+ (too small after alignment|could not reserve region|cannot hotplug memory)$)", "", ""},
    {"drivers/dax/kmem.c dev_dax_kmem_probe", R"(^kmem dax\d+\.\d+: rejecting DAX region without any memory after alignment$)", "", ""},
    {"drivers/base/dd.c call_driver_probe (for kmem)", R"(^kmem: probe of dax\d+\.\d+ failed with error -\d+$)", "", ""},
    {"mm/memory-failure.c memory_failure, action_result", R"(^Memory failure: 0x[0-9a-f]+: (recovery action for .+|already hardware poisoned|memory outside kernel control)$)", "", ""},
    {"mm/memory-failure.c soft_offline_page", R"(^Memory failure: soft_offline_page: 0x[0-9a-f]+ page already poisoned$)", "", ""},
};

struct CompiledPattern {
  std::string prefix;  // literal text every match starts with: a cheap test before the regex
  std::regex re;
  std::optional<std::regex> mask;
};

// The literal start of an anchored pattern ("^Offlined Pages \\d+$" -> "Offlined Pages "); empty
// when the pattern starts with anything else.
std::string literal_prefix(std::string_view re) {
  std::string out;
  if (!re.starts_with('^')) return out;
  int depth = 0;  // a top-level '|' makes the anchor apply to one alternative only
  for (size_t i = 0; i < re.size(); ++i) {
    if (re[i] == '\\') ++i;
    else if (re[i] == '(') ++depth;
    else if (re[i] == ')') --depth;
    else if (re[i] == '|' && depth == 0) return out;
  }
  for (size_t i = 1; i < re.size(); ++i) {
    const char c = re[i];
    if (c == '\\' && i + 1 < re.size() && std::string_view("[]().*+?|^$\\").find(re[i + 1]) != std::string_view::npos) {
      out += re[++i];
      continue;
    }
    if (std::string_view("\\[]().*+?|^${}").find(c) != std::string_view::npos) {
      // A quantifier applies to the character before it, which then is not certain.
      if ((c == '*' || c == '?' || c == '{') && !out.empty()) out.pop_back();
      break;
    }
    out += c;
  }
  return out;
}

const std::vector<CompiledPattern>& compiled_patterns() {
  static const std::vector<CompiledPattern> compiled = [] {
    std::vector<CompiledPattern> out;
    for (const auto& p : kDmesgPatterns) {
      try {
        CompiledPattern c{literal_prefix(p.regex),
                          std::regex(std::string(p.regex), std::regex::ECMAScript | std::regex::optimize), std::nullopt};
        if (!p.mask.empty()) c.mask = std::regex(std::string(p.mask), std::regex::ECMAScript);
        out.push_back(std::move(c));
      } catch (const std::regex_error&) {
        SPM_UNREACHABLE("a dmesg pattern in kDmesgPatterns is not a valid regex");
      }
    }
    return out;
  }();
  return compiled;
}

// "[   12.345678] text" -> "text"
std::string_view strip_timestamp(std::string_view line) {
  if (!line.starts_with('[')) return line;
  const size_t close = line.find("] ");
  if (close == std::string_view::npos) return line;
  const std::string_view ts = line.substr(1, close - 1);
  if (ts.find_first_not_of(" 0123456789.") != std::string_view::npos) return line;
  return line.substr(close + 2);
}

// Masks for Masked rows.
std::string mask_output(const std::string& s) {
  static const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  static const std::regex stamp(R"(\[ *[0-9]+\.[0-9]{6}\])");
  if (s.find('-') == std::string::npos && s.find('[') == std::string::npos) return s;
  return std::regex_replace(std::regex_replace(s, uuid, "<uuid>"), stamp, "[<time>]");
}

J mask_event(const J& e) {
  if (!e.is_object() || !e.contains("event") || !e.contains("timestamp")) return e;
  J out = e;
  out.erase("timestamp");
  return out;
}

std::vector<std::string> mask_cmdline(std::vector<std::string> argv) {
  for (size_t i = 0; i < argv.size(); ++i) {
    if (i > 0 && argv[i - 1] == "-kernel") argv[i] = "<kernel image>";
    if (argv[i].starts_with("file,") && argv[i].find(",path=") != std::string::npos)
      argv[i] = argv[i].substr(0, argv[i].find(",path=")) + ",path=<console log>";
  }
  return argv;
}

std::string alert_marker(const std::string& line) {
  static constexpr std::string_view kMarkers[] = {"WARNING:", "BUG:", "Oops", "Call Trace", "Kernel panic",
                                                  "general protection", "RIP:", "page allocation failure",
                                                  "hung_task", "soft lockup"};
  for (const auto m : kMarkers)
    if (line.find(m) != std::string::npos) return std::string(m);
  return line;
}

// kpageflags bits that describe who uses a page at this moment (KPF_* numbers).
constexpr uint64_t bit(int b) { return uint64_t{1} << b; }
constexpr uint64_t kAllocationBits = bit(0) | bit(1) | bit(2) | bit(3) | bit(4) | bit(5) | bit(6) | bit(7) |
                                     bit(8) | bit(9) | bit(10) | bit(11) | bit(12) | bit(13) | bit(14) |
                                     bit(15) | bit(16) | bit(17) | bit(18) | bit(21) | bit(22) | bit(25) |
                                     bit(26) | bit(33) | bit(34) | bit(40);
// PRIVATE, PRIVATE_2, OWNER_PRIVATE belong to the page's owner: structural on a reserved page
// (memmap_on_memory's vmemmap pages carry OWNER_PRIVATE), filesystem state on a page-cache page.
constexpr uint64_t kOwnerBits = bit(35) | bit(36) | bit(37);
constexpr uint64_t kReservedBit = bit(32);

std::optional<uint64_t> flags_value(const std::string& s) {
  if (!s.starts_with("0x") || s.size() == 2) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

uint64_t compared_flag_bits(uint64_t reference) {
  uint64_t ignored = kAllocationBits;
  if ((reference & kReservedBit) == 0) ignored |= kOwnerBits;
  return ~ignored;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

std::string basename(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

std::string signed_str(int64_t v) { return v >= 0 ? fmt::format("+{}", v) : fmt::format("{}", v); }

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t nl = s.find('\n', start);
    out.push_back(s.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

// Longest common subsequence alignment of two line lists: which expected lines have no partner
// (missing) and which actual lines have none (unexpected), in order.
struct Alignment {
  size_t matched = 0;
  std::vector<size_t> missing, unexpected;
};
Alignment align(const std::vector<std::string>& e, const std::vector<std::string>& a) {
  Alignment r;
  size_t pre = 0;
  while (pre < e.size() && pre < a.size() && e[pre] == a[pre]) ++pre;
  size_t suf = 0;
  while (suf < e.size() - pre && suf < a.size() - pre && e[e.size() - 1 - suf] == a[a.size() - 1 - suf]) ++suf;
  const size_t n = e.size() - pre - suf, m = a.size() - pre - suf;
  r.matched = pre + suf;
  if (n * m > (size_t{1} << 22)) {
    // Too large for the table: pair equal lines greedily in order (still exact when equal).
    std::multimap<std::string, size_t> pool;
    for (size_t j = 0; j < m; ++j) pool.emplace(a[pre + j], pre + j);
    std::vector<bool> used(a.size(), false);
    for (size_t i = 0; i < n; ++i) {
      auto it = pool.find(e[pre + i]);
      if (it == pool.end()) {
        r.missing.push_back(pre + i);
      } else {
        used[it->second] = true;
        pool.erase(it);
        ++r.matched;
      }
    }
    for (size_t j = 0; j < m; ++j)
      if (!used[pre + j]) r.unexpected.push_back(pre + j);
    return r;
  }
  std::vector<uint32_t> t((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> uint32_t& { return t[i * (m + 1) + j]; };
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      at(i, j) = e[pre + i] == a[pre + j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
  size_t i = 0, j = 0;
  while (i < n && j < m) {
    if (e[pre + i] == a[pre + j]) {
      ++r.matched;
      ++i;
      ++j;
    } else if (at(i + 1, j) >= at(i, j + 1)) {
      r.missing.push_back(pre + i++);
    } else {
      r.unexpected.push_back(pre + j++);
    }
  }
  while (i < n) r.missing.push_back(pre + i++);
  while (j < m) r.unexpected.push_back(pre + j++);
  return r;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

class Differ {
 public:
  explicit Differ(const DiffOptions& o) : m_opts(o) {}
  DiffResult take() { return std::move(m_r); }

  void compare_traces(const Trace& e, const Trace& a) {
    m_prefix = "trace: ";
    text("trace.scenario", "scenario", e.scenario, a.scenario);
    text("trace.scenario_file", "scenario_file", basename(e.scenario_file), basename(a.scenario_file));
    text("trace.description", "description", e.description, a.description);
    text("trace.scenario_source", "scenario_source", e.scenario_source, a.scenario_source);
    text("trace.kernel", "kernel", e.kernel, a.kernel);
    text("trace.qemu_version", "qemu_version", e.qemu_version, a.qemu_version);
    json("trace.qemu_greeting", "qemu_greeting", e.qemu_greeting, a.qemu_greeting);
    text("trace.guest_kernel", "guest_kernel", e.guest_kernel, a.guest_kernel);
    json("trace.qemu_cmdline", "qemu_cmdline", J(mask_cmdline(e.qemu_cmdline)), J(mask_cmdline(a.qemu_cmdline)));
    text("trace.guest_cmdline", "guest_cmdline (/proc/cmdline)", e.guest_cmdline, a.guest_cmdline);
    number("trace.boot_to_init_s", "boot_to_init_s", e.boot_to_init_s, a.boot_to_init_s);
    text("trace.completed", "completed", std::string(e.completed ? "true" : "false"), std::string(a.completed ? "true" : "false"));
    for (size_t i = 0; i < std::max(e.errors.size(), a.errors.size()); ++i) {
      auto err_json = [](const std::vector<DriverError>& v, size_t k) -> std::optional<J> {
        if (k >= v.size()) return std::nullopt;
        J x{{"where", v[k].where}};
        if (v[k].rc) x["rc"] = *v[k].rc;
        if (v[k].qemu_output) x["qemu_output"] = *v[k].qemu_output;
        if (v[k].error) x["error"] = *v[k].error;
        for (auto it = v[k].extra.begin(); it != v[k].extra.end(); ++it) x[it.key()] = it.value();
        return x;
      };
      json("trace.errors", fmt::format("driver error {}", i), err_json(e.errors, i), err_json(a.errors, i));
    }
    json("trace.final_memory_devices", "final_memory_devices (query-memory-devices)", e.final_memory_devices, a.final_memory_devices);
    auto masked_events = [](const std::optional<std::vector<J>>& v) -> std::optional<J> {
      if (!v) return std::nullopt;
      J out = J::array();
      for (const auto& x : *v) out.push_back(mask_event(x));
      return out;
    };
    json("trace.trailing_qmp_events", "trailing_qmp_events", masked_events(e.trailing_qmp_events), masked_events(a.trailing_qmp_events));
    number("trace.qemu_exit", "qemu_exit", e.qemu_exit, a.qemu_exit);
    text("trace.qemu_output", "qemu_output", e.qemu_output, a.qemu_output);
    auto markers = [](const std::optional<std::vector<std::string>>& v) -> std::optional<std::string> {
      if (!v) return std::nullopt;
      std::vector<std::string> out;
      for (const auto& l : *v) out.push_back(alert_marker(l));
      return join(out, ", ");
    };
    text("trace.console_alerts", "console alerts", markers(e.console_alerts), markers(a.console_alerts));
    json("trace.console_tail", "console_tail", opt_json(e.console_tail), opt_json(a.console_tail));
    json("trace.timing", "timing", e.timing, a.timing);
    extras("trace", "", e.extra, a.extra);

    const size_t n = std::max(e.steps.size(), a.steps.size());
    for (size_t i = 0; i < n; ++i) {
      const TraceStep* es = i < e.steps.size() ? &e.steps[i] : nullptr;
      const TraceStep* as = i < a.steps.size() ? &a.steps[i] : nullptr;
      const TraceStep* ep = i > 0 && i - 1 < e.steps.size() ? &e.steps[i - 1] : nullptr;
      const TraceStep* ap = i > 0 && i - 1 < a.steps.size() ? &a.steps[i - 1] : nullptr;
      const TraceStep& named = es != nullptr ? *es : *as;
      m_prefix = fmt::format("step {} {}: ", named.index, named.name);
      const uint64_t m0 = m_r.matched, x0 = m_r.mismatched;
      one_sided(es, as, "", [&] { compare_step(es, as, ep, ap); });
      if (m_opts.verbose && m_quiet == 0)
        m_r.lines.push_back(fmt::format("{}{} matched, {} mismatched", m_prefix, m_r.matched - m0, m_r.mismatched - x0));
    }
  }

 private:
  const DiffRule& rule(std::string_view field) const {
    const DiffRule* r = find_diff_rule(field);
    SPM_CHECK(r != nullptr, "a compared field has no row in the diff rule table");
    return *r;
  }
  void match() { ++m_r.matched; }
  void mismatch(const std::string& msg) {
    ++m_r.mismatched;
    if (m_quiet == 0) m_r.lines.push_back(m_prefix + msg);
  }

  // Runs `fn` for a unit (step, command, block, ...) that one trace lacks without printing its
  // differences one by one: one line says the unit is missing, all its observations count.
  template <class T, class Fn>
  void one_sided(const T* e, const T* a, const std::string& label, Fn fn) {
    if (e != nullptr && a != nullptr) {
      fn();
      return;
    }
    if (e == nullptr && a == nullptr) return;
    const bool outermost = m_quiet == 0;
    const uint64_t x0 = m_r.mismatched;
    ++m_quiet;
    fn();
    --m_quiet;
    if (!outermost) return;
    if (m_r.mismatched == x0) ++m_r.mismatched;  // a unit with nothing compared still differs
    const uint64_t n = m_r.mismatched - x0;
    m_r.lines.push_back(fmt::format("{}{}{} ({} observation{})", m_prefix, label.empty() ? "" : label + ": ",
                                    e != nullptr ? "missing from the actual trace" : "not in the expected trace", n,
                                    n == 1 ? "" : "s"));
  }

  // The core observation: values already rendered (and masked) for comparison and display.
  void observe(std::string_view field, const std::string& label, const std::optional<std::string>& e,
               const std::optional<std::string>& a, bool quote) {
    const DiffRule& r = rule(field);
    if (r.kind == K::Excluded) return;
    SPM_DCHECK(r.kind != K::Delta && r.kind != K::Redundant && r.kind != K::Filtered, "rule used with the wrong comparison");
    if (!e && !a) return;
    // Inside a unit that one trace lacks, its identity is that unit's one report line.
    if (r.kind == K::Identity && m_quiet > 0) return;
    const bool same = e && a && *e == *a;
    if (same) {
      if (r.kind != K::Identity) match();
      return;
    }
    auto show = [&](const std::string& v) { return quote ? quoted(v) : v; };
    if (!a) return mismatch(fmt::format("{}: expected {}, missing", label, show(*e)));
    if (!e) return mismatch(fmt::format("{}: unexpected {}", label, show(*a)));
    if (quote && !m_opts.verbose && (e->find('\n') != std::string::npos || a->find('\n') != std::string::npos)) {
      const auto el = split_lines(*e), al = split_lines(*a);
      size_t i = 0;
      while (i < el.size() && i < al.size() && el[i] == al[i]) ++i;
      auto line_or = [](const std::vector<std::string>& v, size_t k) { return k < v.size() ? quoted(v[k]) : "(no line)"; };
      return mismatch(fmt::format("{} line {}: expected {} got {}", label, i + 1, line_or(el, i), line_or(al, i)));
    }
    mismatch(fmt::format("{}: expected {} got {}", label, show(*e), show(*a)));
  }
  void text(std::string_view field, const std::string& label, const std::optional<std::string>& e,
            const std::optional<std::string>& a) {
    observe(field, label, e, a, true);
  }
  template <class N>
  void number(std::string_view field, const std::string& label, const std::optional<N>& e, const std::optional<N>& a,
              std::string_view unit = "") {
    auto r = [&](const std::optional<N>& v) -> std::optional<std::string> {
      if (!v) return std::nullopt;
      return unit.empty() ? fmt::format("{}", *v) : fmt::format("{} {}", *v, unit);
    };
    observe(field, label, r(e), r(a), false);
  }
  void json(std::string_view field, const std::string& label, const std::optional<J>& e, const std::optional<J>& a) {
    auto r = [](const std::optional<J>& v) -> std::optional<std::string> {
      if (!v) return std::nullopt;
      return v->dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    };
    observe(field, label, r(e), r(a), false);
  }
  template <class T>
  static std::optional<J> opt_json(const std::optional<T>& v) {
    if (!v) return std::nullopt;
    return J(*v);
  }

  void delta(std::string_view field, const std::string& label, std::optional<int64_t> e, std::optional<int64_t> ep,
             std::optional<int64_t> a, std::optional<int64_t> ap, std::string_view unit) {
    const DiffRule& r = rule(field);
    SPM_DCHECK(r.kind == K::Delta, "delta() used for a field whose rule is not Delta");
    const std::string u = unit.empty() ? "" : fmt::format(" {}", unit);
    if (!e && !a) return;
    if (!a) return mismatch(fmt::format("{}: expected {}{}, missing", label, *e, u));
    if (!e) return mismatch(fmt::format("{}: unexpected {}{}", label, *a, u));
    if (!ep || !ap) return;  // nothing to compare a change against (step 0, or the field is new)
    const int64_t de = *e - *ep, da = *a - *ap;
    if (de == da) return match();
    mismatch(fmt::format("{}: expected change {}{} got {}{} (expected {}{}, got {}{})", label, signed_str(de), u,
                         signed_str(da), u, *e, u, *a, u));
  }

  // Keys of `extra` objects: the family's "*" row (Exact).
  // Keys a layout does not model: each uses its own row when the table has one (the simulator's
  // "snapshot.sparsemem_checker"), else its family's "*" row.
  void extras(std::string_view family, const std::string& label, const J& e, const J& a) {
    auto field = [&](const std::string& key) { return fmt::format("{}.{}", family, key); };
    for (auto it = e.begin(); it != e.end(); ++it)
      json(field(it.key()), label + it.key(), it.value(),
           a.contains(it.key()) ? std::optional<J>(a.at(it.key())) : std::nullopt);
    for (auto it = a.begin(); it != a.end(); ++it)
      if (!e.contains(it.key())) json(field(it.key()), label + it.key(), std::nullopt, it.value());
  }

  // Compares two sequences of lines; each line is one observation.
  void lines(std::string_view field, const std::string& label, const std::vector<std::string>& e,
             const std::vector<std::string>& a) {
    SPM_DCHECK(rule(field).kind != K::Excluded, "lines() on an excluded field");
    const Alignment al = align(e, a);
    m_r.matched += al.matched;
    for (size_t i : al.missing) mismatch(fmt::format("{}: expected line {} missing", label, quoted(e[i])));
    for (size_t j : al.unexpected) mismatch(fmt::format("{}: unexpected line {}", label, quoted(a[j])));
  }

  // A snapshot part that may be absent on either side.
  template <class T, class Fn>
  void part(const std::string& label, const T* e, const T* a, Fn fn) {
    static const T empty{};
    one_sided(e, a, label, [&] { fn(e != nullptr ? *e : empty, a != nullptr ? *a : empty); });
  }

  // Pairs items by key; the k-th item with a key in one list pairs with the k-th in the other, so
  // repeated keys (a pfn sampled twice) are neither lost nor compared twice.
  template <class T, class KeyFn, class LabelFn, class CmpFn>
  void keyed(const std::vector<T>& e, const std::vector<T>& a, KeyFn key, LabelFn label, CmpFn cmp) {
    using Key = decltype(key(std::declval<const T&>()));
    std::map<Key, std::vector<const T*>> in_a;
    for (const auto& y : a) in_a[key(y)].push_back(&y);
    std::map<Key, size_t> used;
    for (const auto& x : e) {
      const Key k = key(x);
      const auto it = in_a.find(k);
      size_t& n = used[k];
      const T* y = it != in_a.end() && n < it->second.size() ? it->second[n] : nullptr;
      ++n;
      one_sided(&x, y, label(x), [&] { cmp(&x, y); });
    }
    std::map<Key, size_t> occurrence;  // the actual items nobody paired, in their own order
    for (const auto& y : a) {
      const Key k = key(y);
      const auto u = used.find(k);
      if (occurrence[k]++ < (u == used.end() ? 0 : u->second)) continue;
      one_sided(static_cast<const T*>(nullptr), &y, label(y), [&] { cmp(nullptr, &y); });
    }
  }

  void compare_step(const TraceStep* e, const TraceStep* a, const TraceStep* ep, const TraceStep* ap) {
    auto str = [](const TraceStep* s, auto get) -> std::optional<std::string> {
      if (s == nullptr) return std::nullopt;
      return get(*s);
    };
    text("step.index", "index", str(e, [](auto& s) { return std::to_string(s.index); }), str(a, [](auto& s) { return std::to_string(s.index); }));
    text("step.type", "type", str(e, [](auto& s) { return std::string(step_kind_name(s.type)); }), str(a, [](auto& s) { return std::string(step_kind_name(s.type)); }));
    text("step.name", "name", str(e, [](auto& s) { return s.name; }), str(a, [](auto& s) { return s.name; }));
    auto num = [](const TraceStep* s, auto get) -> std::optional<double> {
      if (s == nullptr) return std::nullopt;
      return get(*s);
    };
    number("step.t_start", "t_start", num(e, [](auto& s) { return std::optional<double>(s.t_start); }), num(a, [](auto& s) { return std::optional<double>(s.t_start); }));
    number("step.t_end", "t_end", e ? e->t_end : std::nullopt, a ? a->t_end : std::nullopt);
    number("step.guest_uptime_start", "guest_uptime_start", e ? e->guest_uptime_start : std::nullopt, a ? a->guest_uptime_start : std::nullopt);
    number("step.guest_uptime_end", "guest_uptime_end", e ? e->guest_uptime_end : std::nullopt, a ? a->guest_uptime_end : std::nullopt);

    static const std::vector<CommandRecord> no_cmds;
    const auto& ec = e ? e->commands : no_cmds;
    const auto& ac = a ? a->commands : no_cmds;
    for (size_t i = 0; i < std::max(ec.size(), ac.size()); ++i) {
      const CommandRecord* x = i < ec.size() ? &ec[i] : nullptr;
      const CommandRecord* y = i < ac.size() ? &ac[i] : nullptr;
      const CommandRecord& named = x != nullptr ? *x : *y;
      const std::string label = fmt::format("$ {}", named.cmd.value_or(fmt::format("(command {})", i + 1)));
      one_sided(x, y, label, [&] { compare_command(label, x, y); });
    }
    compare_host_actions(e ? e->host_actions : std::nullopt, a ? a->host_actions : std::nullopt);
    // Loading a module makes its pages read-only and non-executable in the direct map as well
    // (set_memory_ro/nx), which splits the 2 MiB pages around wherever the allocator put them.
    bool loads_modules = false;
    for (const CommandRecord& c : ec)
      if (c.cmd && (c.cmd->starts_with("modprobe ") || c.cmd->starts_with("insmod ")) &&
          c.cmd->find(" -r") == std::string::npos)
        loads_modules = true;
    compare_snapshot(e ? &e->snapshot : nullptr, a ? &a->snapshot : nullptr, ep ? &ep->snapshot : nullptr,
                     ap ? &ap->snapshot : nullptr, loads_modules);
    static const J no_extra = J::object();
    extras("step", "", e ? e->extra : no_extra, a ? a->extra : no_extra);
  }

  void compare_command(const std::string& label, const CommandRecord* e, const CommandRecord* a) {
    auto get = [](const CommandRecord* c, auto member) { return c ? c->*member : decltype(c->*member){}; };
    auto masked = [](std::optional<std::string> s) {
      if (s) s = mask_output(*s);
      return s;
    };
    text("command.cmd", label + ": cmd", get(e, &CommandRecord::cmd), get(a, &CommandRecord::cmd));
    number("command.rc", label + ": rc", get(e, &CommandRecord::rc), get(a, &CommandRecord::rc));
    text("command.stdout", label + ": stdout", masked(get(e, &CommandRecord::out)), masked(get(a, &CommandRecord::out)));
    text("command.stderr", label + ": stderr", masked(get(e, &CommandRecord::err)), masked(get(a, &CommandRecord::err)));
    number("command.t0", label + ": t0", get(e, &CommandRecord::t0), get(a, &CommandRecord::t0));
    number("command.t1", label + ": t1", get(e, &CommandRecord::t1), get(a, &CommandRecord::t1));
    static const J no_extra = J::object();
    extras("command", label + ": ", e ? e->extra : no_extra, a ? a->extra : no_extra);
  }

  void compare_host_actions(const std::optional<std::vector<HostActionRecord>>& e,
                            const std::optional<std::vector<HostActionRecord>>& a) {
    static const std::vector<HostActionRecord> none;
    const auto& ev = e ? *e : none;
    const auto& av = a ? *a : none;
    std::vector<std::string> e_events, a_events;
    auto collect = [](const std::vector<HostActionRecord>& v, std::vector<std::string>& out) {
      for (const auto& h : v)
        if (h.events)
          for (const auto& x : *h.events) out.push_back(mask_event(x).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace));
    };
    collect(ev, e_events);
    collect(av, a_events);
    for (size_t i = 0; i < std::max(ev.size(), av.size()); ++i) {
      const HostActionRecord* x = i < ev.size() ? &ev[i] : nullptr;
      const HostActionRecord* y = i < av.size() ? &av[i] : nullptr;
      const HostActionRecord& named = x != nullptr ? *x : *y;
      const std::string label = fmt::format("host> {}", named.action.value_or(fmt::format("(action {})", i + 1)));
      one_sided(x, y, label, [&] {
        text("host_action.action", label + ": action", x ? x->action : std::nullopt, y ? y->action : std::nullopt);
        auto resp = [](const HostActionRecord* h) -> std::optional<J> {
          if (h == nullptr || !h->response) return std::nullopt;
          return mask_event(*h->response);
        };
        json("host_action.response", label + ": response", resp(x), resp(y));
        number("host_action.elapsed_s", label + ": elapsed_s", x ? x->elapsed_s : std::nullopt, y ? y->elapsed_s : std::nullopt);
        text("host_action.error", label + ": error", x ? x->error : std::nullopt, y ? y->error : std::nullopt);
        static const J no_extra = J::object();
        extras("host_action", label + ": ", x ? x->extra : no_extra, y ? y->extra : no_extra);
      });
    }
    if (rule("host_action.events").kind != K::Excluded) lines("host_action.events", "QMP events", e_events, a_events);
  }

  void compare_snapshot(const Snapshot* e, const Snapshot* a, const Snapshot* ep, const Snapshot* ap, bool loads_modules) {
    auto p = [](const Snapshot* s, auto member) { return s != nullptr && (s->*member) ? &*(s->*member) : nullptr; };

    // /proc/iomem, one line per resource.
    auto iomem_lines = [](const std::vector<TraceIomemLine>& v) {
      std::vector<std::string> out;
      for (const auto& x : v) out.push_back(iomem_line(x));
      return out;
    };
    part("/proc/iomem", p(e, &Snapshot::iomem), p(a, &Snapshot::iomem), [&](const auto& x, const auto& y) {
      lines("iomem", "/proc/iomem", iomem_lines(x), iomem_lines(y));
    });
    for (const auto& [s, side] : {std::pair{e, "expected"}, std::pair{a, "actual"}}) {
      if (s != nullptr && s->iomem && s->iomem_raw && iomem_lines(*s->iomem) != *s->iomem_raw)
        mismatch(fmt::format("/proc/iomem: iomem_raw does not render from iomem in the {} trace", side));
      if (s != nullptr && s->zones && s->zones_raw && !same_zones(parse_zoneinfo_lines(*s->zones_raw), *s->zones))
        mismatch(fmt::format("/proc/zoneinfo: zones_raw does not parse to zones in the {} trace", side));
    }

    part("memory blocks", p(e, &Snapshot::memory_blocks), p(a, &Snapshot::memory_blocks), [&](const auto& x, const auto& y) {
      keyed(x, y, [](const MemoryBlockEntry& b) { return b.id; },
            [](const MemoryBlockEntry& b) { return fmt::format("memory{}", b.id); },
            [&](const MemoryBlockEntry* b, const MemoryBlockEntry* c) { compare_block(b, c); });
    });

    part("memory_global", p(e, &Snapshot::memory_global), p(a, &Snapshot::memory_global), [&](const auto& x, const auto& y) {
      using KV = std::pair<std::string, std::string>;
      keyed(x, y, [](const KV& kv) { return kv.first; }, [](const KV& kv) { return global_path(kv.first); },
            [&](const KV* kv, const KV* lv) {
              const KV& named = kv != nullptr ? *kv : *lv;
              text("memory_global.*", global_path(named.first), kv ? std::optional(kv->second) : std::nullopt,
                   lv ? std::optional(lv->second) : std::nullopt);
            });
    });

    const auto* ezp = p(ep, &Snapshot::zones);
    const auto* azp = p(ap, &Snapshot::zones);
    part("/proc/zoneinfo", p(e, &Snapshot::zones), p(a, &Snapshot::zones), [&](const auto& x, const auto& y) {
      auto key = [](const ZoneEntry& z) { return std::pair(z.node, z.zone); };
      auto find_prev = [&](const std::vector<ZoneEntry>* prev, const ZoneEntry* z) -> const ZoneEntry* {
        if (prev == nullptr || z == nullptr) return nullptr;
        for (const auto& q : *prev)
          if (key(q) == key(*z)) return &q;
        return nullptr;
      };
      keyed(x, y, key, [](const ZoneEntry& z) { return fmt::format("/proc/zoneinfo: Node {}, zone {}", z.node, z.zone); },
            [&](const ZoneEntry* z, const ZoneEntry* w) { compare_zone(z, w, find_prev(ezp, z), find_prev(azp, w)); });
    });

    const auto* emp = p(ep, &Snapshot::meminfo);
    const auto* amp = p(ap, &Snapshot::meminfo);
    part("/proc/meminfo", p(e, &Snapshot::meminfo), p(a, &Snapshot::meminfo), [&](const auto& x, const auto& y) {
      using KV = std::pair<std::string, int64_t>;
      auto prev_of = [](const std::vector<KV>* prev, const std::string& k) -> std::optional<int64_t> {
        if (prev == nullptr) return std::nullopt;
        for (const auto& kv : *prev)
          if (kv.first == k) return kv.second;
        return std::nullopt;
      };
      keyed(x, y, [](const KV& kv) { return kv.first; }, [](const KV& kv) { return "/proc/meminfo: " + kv.first; },
            [&](const KV* kv, const KV* lv) {
              const std::string& name = (kv != nullptr ? kv : lv)->first;
              const std::string field = "meminfo." + name;
              const std::string label = "/proc/meminfo: " + name;
              const std::string_view unit = name.starts_with("HugePages_") ? "" : "kB";
              const auto ev = kv ? std::optional(kv->second) : std::nullopt;
              const auto av = lv ? std::optional(lv->second) : std::nullopt;
              if (loads_modules && name.starts_with("DirectMap") && ev && av) return;  // as one sum, below
              if (rule(field).kind == K::Delta) {
                delta(field, label, ev, prev_of(emp, name), av, prev_of(amp, name), unit);
              } else {
                number(field, label, ev, av, unit);
              }
            });
      // meminfo.DirectMap*: across a step that loads modules only the size of the direct map is
      // compared, the sum of the three fields, whose change is memory mapped or unmapped.
      if (!loads_modules) return;
      // The DirectMap fields of v that w has too: a field in one trace only was reported above.
      auto direct_map = [](const std::vector<KV>* v, const std::vector<KV>& w) -> std::optional<int64_t> {
        if (v == nullptr) return std::nullopt;
        std::optional<int64_t> sum;
        for (const auto& [k, val] : *v)
          if (k.starts_with("DirectMap") &&
              std::any_of(w.begin(), w.end(), [&k = k](const KV& o) { return o.first == k; }))
            sum = sum.value_or(0) + val;
        return sum;
      };
      delta("meminfo.DirectMap4k", "/proc/meminfo: DirectMap4k + DirectMap2M + DirectMap1G", direct_map(&x, y),
            direct_map(emp, x), direct_map(&y, x), direct_map(amp, y), "kB");
    });

    part("/proc/kpageflags", p(e, &Snapshot::kpageflags), p(a, &Snapshot::kpageflags), [&](const auto& x, const auto& y) {
      compare_kpageflags(x, y);
    });

    part("ACPI memory devices", p(e, &Snapshot::acpi_memory_devices), p(a, &Snapshot::acpi_memory_devices),
         [&](const auto& x, const auto& y) {
           keyed(x, y, [](const AcpiMemoryDevice& d) { return d.name; },
                 [](const AcpiMemoryDevice& d) { return "/sys/bus/acpi/devices/" + d.name; },
                 [&](const AcpiMemoryDevice* d, const AcpiMemoryDevice* f) { compare_acpi(d, f); });
         });

    part("nd/dax objects", p(e, &Snapshot::nd_dax), p(a, &Snapshot::nd_dax), [&](const auto& x, const auto& y) {
      keyed(x, y, [](const NdDaxEntry& d) { return std::pair(d.kind, d.name); }, nd_path,
            [&](const NdDaxEntry* d, const NdDaxEntry* f) { compare_nddax(d, f); });
    });

    part("dmesg", p(e, &Snapshot::dmesg), p(a, &Snapshot::dmesg), [&](const auto& x, const auto& y) {
      auto filtered = [](const std::vector<std::string>& v) {
        std::vector<std::string> out;
        for (const auto& l : v)
          if (auto c = dmesg_comparable(l)) out.push_back(std::move(*c));
        return out;
      };
      lines("dmesg", "dmesg", filtered(x), filtered(y));
    });

    static const J no_extra = J::object();
    const J& ex = e ? e->extra : no_extra;
    const J& ax = a ? a->extra : no_extra;
    extras("snapshot", "snapshot part ", ex, ax);
  }

  static bool same_zones(const std::vector<ZoneEntry>& x, const std::vector<ZoneEntry>& y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      const auto& a = x[i];
      const auto& b = y[i];
      if (a.node != b.node || a.zone != b.zone || a.start_pfn != b.start_pfn || a.pages_free != b.pages_free ||
          a.min != b.min || a.low != b.low || a.high != b.high || a.spanned != b.spanned || a.present != b.present ||
          a.managed != b.managed || a.cma != b.cma || a.end_pfn != b.end_pfn)
        return false;
    }
    return true;
  }

  static std::string global_path(const std::string& key) {
    if (key.starts_with("memory_hotplug.")) return "/sys/module/memory_hotplug/parameters/" + key.substr(15);
    if (key.starts_with("nodes.")) return "/sys/devices/system/node/" + key.substr(6);
    return "/sys/devices/system/memory/" + key;
  }

  static std::string nd_path(const NdDaxEntry& d) {
    return (d.kind == "daxdev" ? "/sys/bus/dax/devices/" : "/sys/bus/nd/devices/") + d.name;
  }

  void compare_block(const MemoryBlockEntry* e, const MemoryBlockEntry* a) {
    const MemoryBlockEntry& named = e != nullptr ? *e : *a;
    const std::string base = fmt::format("memory{}/", named.id);
    auto s = [](const MemoryBlockEntry* b, auto member) -> std::optional<std::string> {
      if (b == nullptr) return std::nullopt;
      return b->*member;
    };
    text("memory_blocks.state", base + "state", s(e, &MemoryBlockEntry::state), s(a, &MemoryBlockEntry::state));
    text("memory_blocks.phys_index", base + "phys_index", s(e, &MemoryBlockEntry::phys_index), s(a, &MemoryBlockEntry::phys_index));
    text("memory_blocks.valid_zones", base + "valid_zones", s(e, &MemoryBlockEntry::valid_zones), s(a, &MemoryBlockEntry::valid_zones));
    text("memory_blocks.removable", base + "removable", s(e, &MemoryBlockEntry::removable), s(a, &MemoryBlockEntry::removable));
    text("memory_blocks.phys_device", base + "phys_device", s(e, &MemoryBlockEntry::phys_device), s(a, &MemoryBlockEntry::phys_device));
    auto ot = [](const MemoryBlockEntry* b) -> std::optional<std::string> {
      if (b == nullptr) return std::nullopt;
      return b->online_type.value_or("(no such attribute)");
    };
    text("memory_blocks.online_type", base + "online_type", ot(e), ot(a));
    auto nodes = [](const MemoryBlockEntry* b) -> std::optional<std::string> {
      if (b == nullptr) return std::nullopt;
      return join(b->nodes, " ");
    };
    text("memory_blocks.nodes", base + "node links", nodes(e), nodes(a));
    static const J no_extra = J::object();
    extras("memory_blocks", base, e ? e->extra : no_extra, a ? a->extra : no_extra);
  }

  void compare_zone(const ZoneEntry* e, const ZoneEntry* a, const ZoneEntry* ep, const ZoneEntry* ap) {
    const ZoneEntry& named = e != nullptr ? *e : *a;
    const std::string base = fmt::format("/proc/zoneinfo: Node {}, zone {}: ", named.node, named.zone);
    auto v = [](const ZoneEntry* z, std::optional<int64_t> ZoneEntry::*m) -> std::optional<int64_t> {
      return z != nullptr ? z->*m : std::nullopt;
    };
    auto start = [](const ZoneEntry* z) -> std::optional<std::string> {
      if (z == nullptr) return std::nullopt;
      return z->start_pfn ? std::to_string(*z->start_pfn) : std::string("(empty zone)");
    };
    observe("zones.start_pfn", base + "start_pfn", start(e), start(a), false);
    for (auto [name, m] : {std::pair{"end_pfn", &ZoneEntry::end_pfn}, std::pair{"spanned", &ZoneEntry::spanned},
                           std::pair{"present", &ZoneEntry::present}, std::pair{"cma", &ZoneEntry::cma},
                           std::pair{"pages_free", &ZoneEntry::pages_free}, std::pair{"min", &ZoneEntry::min},
                           std::pair{"low", &ZoneEntry::low}, std::pair{"high", &ZoneEntry::high}}) {
      number(fmt::format("zones.{}", name), base + name, v(e, m), v(a, m));
    }
    delta("zones.managed", base + "managed", v(e, &ZoneEntry::managed), v(ep, &ZoneEntry::managed),
          v(a, &ZoneEntry::managed), v(ap, &ZoneEntry::managed), "");
    static const J no_extra = J::object();
    extras("zones", base, e ? e->extra : no_extra, a ? a->extra : no_extra);
  }

  void compare_kpageflags(const std::vector<KpageflagsEntry>& e, const std::vector<KpageflagsEntry>& a) {
    std::vector<KpageflagsEntry> ep, ap;
    std::vector<std::string> en, an;
    for (const auto& x : e) x.note ? en.push_back(*x.note) : ep.push_back(x);
    for (const auto& x : a) x.note ? an.push_back(*x.note) : ap.push_back(x);
    lines("kpageflags.note", "/proc/kpageflags", en, an);
    keyed(ep, ap, [](const KpageflagsEntry& k) { return k.pfn; },
          [](const KpageflagsEntry& k) { return "/proc/kpageflags: pfn " + k.pfn; },
          [&](const KpageflagsEntry* x, const KpageflagsEntry* y) { compare_pfn(x, y); });
  }

  void compare_pfn(const KpageflagsEntry* e, const KpageflagsEntry* a) {
    const KpageflagsEntry& ref = e != nullptr ? *e : *a;
    const std::string base = "/proc/kpageflags: pfn " + ref.pfn;
    const auto ref_flags = flags_value(ref.flags);
    const uint64_t keep = compared_flag_bits(ref_flags.value_or(0));
    auto flags = [&](const KpageflagsEntry* k) -> std::optional<std::string> {
      if (k == nullptr) return std::nullopt;
      const auto v = flags_value(k->flags);
      if (!v) return k->flags;
      const auto names = kpageflags_names(*v & keep);
      return fmt::format("[{}]", names.empty() ? std::string() : join(names, ","));
    };
    observe("kpageflags.flags", base + ": flags (compared bits)", flags(e), flags(a), false);
    for (const auto& [k, side] : {std::pair{e, "expected"}, std::pair{a, "actual"}}) {
      if (k == nullptr || !k->flag_names) continue;
      const auto v = flags_value(k->flags);
      if (!v || *k->flag_names != kpageflags_names(*v))
        mismatch(fmt::format("{}: flag_names do not decode flags in the {} trace", base, side));
    }
    // The map count is an observation only for pages nobody is using (see the rule's reason).
    if (ref_flags && (*ref_flags & kAllocationBits) != 0) return;
    auto count = [](const KpageflagsEntry* k) -> std::optional<std::string> {
      if (k == nullptr) return std::nullopt;
      return k->count ? std::to_string(*k->count) : k->count_marker;
    };
    observe("kpageflags.count", "/proc/kpagecount: pfn " + ref.pfn, count(e), count(a), false);
  }

  void compare_acpi(const AcpiMemoryDevice* e, const AcpiMemoryDevice* a) {
    const AcpiMemoryDevice& named = e != nullptr ? *e : *a;
    const std::string base = "/sys/bus/acpi/devices/" + named.name + "/";
    auto s = [](const AcpiMemoryDevice* d, auto get) -> std::optional<std::string> {
      if (d == nullptr) return std::nullopt;
      return get(*d);
    };
    text("acpi_memory_devices.status", base + "status", s(e, [](auto& d) { return d.status; }), s(a, [](auto& d) { return d.status; }));
    text("acpi_memory_devices.path", base + "path", s(e, [](auto& d) { return d.path; }), s(a, [](auto& d) { return d.path; }));
    text("acpi_memory_devices.eject", base + "eject", s(e, [](auto& d) { return std::string(d.eject ? "present" : "absent"); }),
         s(a, [](auto& d) { return std::string(d.eject ? "present" : "absent"); }));
    text("acpi_memory_devices.physical_nodes", base + "physical_node*", s(e, [](auto& d) { return join(d.physical_nodes, " "); }),
         s(a, [](auto& d) { return join(d.physical_nodes, " "); }));
    static const J no_extra = J::object();
    extras("acpi_memory_devices", base, e ? e->extra : no_extra, a ? a->extra : no_extra);
  }

  void compare_nddax(const NdDaxEntry* e, const NdDaxEntry* a) {
    const NdDaxEntry& named = e != nullptr ? *e : *a;
    const std::string base = nd_path(named) + "/";
    static const std::vector<std::pair<std::string, std::string>> none;
    const auto& ea = e ? e->attrs : none;
    const auto& aa = a ? a->attrs : none;
    auto find = [](const auto& v, const std::string& k) -> std::optional<std::string> {
      for (const auto& [key, val] : v)
        if (key == k) return val;
      return std::nullopt;
    };
    for (const auto& [k, v] : ea) text("nd_dax.*", base + k, v, find(aa, k));
    for (const auto& [k, v] : aa)
      if (!find(ea, k)) text("nd_dax.*", base + k, std::nullopt, v);
  }

  const DiffOptions& m_opts;
  DiffResult m_r;
  std::string m_prefix;
  int m_quiet = 0;
};

}  // namespace

std::string_view diff_rule_kind_name(DiffRuleKind k) {
  switch (k) {
    case K::Exact: return "exact";
    case K::Masked: return "masked";
    case K::Delta: return "delta";
    case K::Identity: return "identity";
    case K::Filtered: return "filtered";
    case K::Redundant: return "redundant";
    case K::Excluded: return "excluded";
  }
  return "?";
}

std::span<const DiffRule> diff_rules() { return kRules; }

const DiffRule* find_diff_rule(std::string_view field) {
  auto find = [](std::string_view f) -> const DiffRule* {
    for (const auto& r : kRules)
      if (r.field == f) return &r;
    return nullptr;
  };
  if (const DiffRule* r = find(field)) return r;
  const size_t dot = field.find('.');
  if (dot == std::string_view::npos) return nullptr;
  return find(std::string(field.substr(0, dot)) + ".*");
}

std::span<const DmesgPattern> dmesg_patterns() { return kDmesgPatterns; }

std::optional<std::string> dmesg_comparable(std::string_view line) {
  const std::string text(strip_timestamp(line));
  const auto& compiled = compiled_patterns();
  for (size_t i = 0; i < compiled.size(); ++i) {
    if (!text.starts_with(compiled[i].prefix) || !std::regex_search(text, compiled[i].re)) continue;
    if (!compiled[i].mask) return text;
    return std::regex_replace(text, *compiled[i].mask, std::string(kDmesgPatterns[i].mask_as));
  }
  return std::nullopt;
}

DiffResult diff_traces(const Trace& expected, const Trace& actual, const DiffOptions& opts) {
  Differ d(opts);
  d.compare_traces(expected, actual);
  return d.take();
}

std::string format_diff(const DiffResult& r) {
  std::string out;
  for (const auto& l : r.lines) {
    out += l;
    out += '\n';
  }
  out += fmt::format("observations: {} matched, {} mismatched\n", r.matched, r.mismatched);
  return out;
}

}  // namespace sparsemem
