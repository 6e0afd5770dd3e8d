// Plain memory maps: a small line format for machines no QEMU option describes, validated and turned
// into a PlatformDescription for any architecture profile. Pure functions.
#include <algorithm>
#include <cctype>

#include <fmt/core.h>

#include "platform_internal.h"

namespace sparsemem {

using namespace platform_detail;

namespace {

constexpr uint64_t kMaxNumNodes = 1024;  // MAX_NUMNODES with Debian's NODES_SHIFT 10
constexpr uint64_t kMaxSlots = 256;      // ACPI_MAX_RAM_SLOTS, the most a PC firmware describes

enum class ItemKind : uint8_t { Ram, Nomap, Reserved, Pmem, Hotplug };

struct Item {
  ItemKind kind;
  uint64_t start, last;
  unsigned node = 0;
  uint64_t slots = kMaxSlots;
  size_t line;
};

// A number in C notation (0x.. or decimal) with an optional K/M/G/T suffix; the whole token must parse.
std::optional<uint64_t> parse_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  unsigned base = 10;
  size_t i = 0;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
  }
  uint64_t v = 0;
  const size_t digits_start = i;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = unsigned(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f') d = unsigned(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F') d = unsigned(c - 'A' + 10);
    else break;
    if (v > (~uint64_t{0} - d) / base) return std::nullopt;
    v = v * base + d;
  }
  if (i == digits_start) return std::nullopt;
  if (i < s.size()) {
    unsigned shift;
    switch (s[i]) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
      case 'T': case 't': shift = 40; break;
      default: return std::nullopt;
    }
    if (i + 1 != s.size()) return std::nullopt;
    if (v > (~uint64_t{0} >> shift)) return std::nullopt;
    v <<= shift;
  }
  return v;
}

std::string_view kind_word(ItemKind k) {
  switch (k) {
    case ItemKind::Ram: return "ram";
    case ItemKind::Nomap: return "nomap";
    case ItemKind::Reserved: return "reserved";
    case ItemKind::Pmem: return "pmem";
    case ItemKind::Hotplug: return "hotplug";
  }
  return "?";
}

Result<std::vector<Item>> parse_items(std::string_view text, const ArchProfile& arch) {
  std::vector<Item> items;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string_view> tok;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      size_t j = i;
      while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      if (j > i) tok.push_back(line.substr(i, j - i));
      i = j;
    }
    if (tok.empty()) continue;
    auto err = [&](Errno e, std::string msg) { return fail(e, fmt::format("line {}: {}", line_no, msg)); };

    Item it{};
    it.line = line_no;
    if (tok[0] == "ram") it.kind = ItemKind::Ram;
    else if (tok[0] == "nomap") it.kind = ItemKind::Nomap;
    else if (tok[0] == "reserved") it.kind = ItemKind::Reserved;
    else if (tok[0] == "pmem") it.kind = ItemKind::Pmem;
    else if (tok[0] == "hotplug") it.kind = ItemKind::Hotplug;
    else return err(Errno::Inval, fmt::format("unknown item '{}' (ram, nomap, reserved, pmem, hotplug)", tok[0]));
    if (tok.size() < 2) return err(Errno::Inval, fmt::format("{} needs a range START-END or START+SIZE", tok[0]));

    const std::string_view range = tok[1];
    const size_t plus = range.find('+');
    const size_t dash = range.find('-');
    if (plus != std::string_view::npos) {
      auto start = parse_number(range.substr(0, plus));
      auto size = parse_number(range.substr(plus + 1));
      if (!start || !size) return err(Errno::Inval, fmt::format("bad range '{}'", range));
      if (*size == 0) return err(Errno::Inval, fmt::format("empty range '{}'", range));
      if (*start + (*size - 1) < *start) return err(Errno::Range, fmt::format("range '{}' wraps past 2^64", range));
      it.start = *start;
      it.last = *start + (*size - 1);
    } else if (dash != std::string_view::npos) {
      auto start = parse_number(range.substr(0, dash));
      auto last = parse_number(range.substr(dash + 1));
      if (!start || !last) return err(Errno::Inval, fmt::format("bad range '{}'", range));
      if (*last < *start) return err(Errno::Inval, fmt::format("range '{}' ends before it starts", range));
      it.start = *start;
      it.last = *last;
    } else {
      return err(Errno::Inval, fmt::format("bad range '{}' (START-END or START+SIZE)", range));
    }

    for (size_t k = 2; k < tok.size(); ++k) {
      const size_t eq = tok[k].find('=');
      const std::string_view key = tok[k].substr(0, eq);
      const std::string_view val = eq == std::string_view::npos ? std::string_view() : tok[k].substr(eq + 1);
      auto v = parse_number(val);
      if (key == "node" && it.kind != ItemKind::Reserved && it.kind != ItemKind::Hotplug) {
        if (!v) return err(Errno::Inval, fmt::format("bad node '{}'", val));
        if (*v >= kMaxNumNodes) {
          return err(Errno::Range, fmt::format("node {} out of range (MAX_NUMNODES {})", *v, kMaxNumNodes));
        }
        it.node = unsigned(*v);
      } else if (key == "slots" && it.kind == ItemKind::Hotplug) {
        if (!v || *v == 0 || *v > kMaxSlots) {
          return err(Errno::Inval, fmt::format("slots must be 1..{}, not '{}'", kMaxSlots, val));
        }
        it.slots = *v;
      } else {
        return err(Errno::Inval, fmt::format("unknown attribute '{}' for {}", tok[k], kind_word(it.kind)));
      }
    }

    // Validation: page alignment at both ends, the architecture's physical limit, arch-specific kinds.
    const uint64_t page = arch.page_size();
    if (it.start % page != 0 || (it.last + 1) % page != 0) {
      return err(Errno::Inval, fmt::format("[{:#x}-{:#x}] is not aligned to the page size {:#x}", it.start, it.last,
                                           page));
    }
    if (it.last > arch.physmem_end()) {
      return err(Errno::Range, fmt::format("[{:#x}-{:#x}] lies beyond the physical address limit {:#x} of {}",
                                           it.start, it.last, arch.physmem_end(), arch.name));
    }
    if (it.kind == ItemKind::Nomap && arch.family != ArchFamily::Arm64) {
      return err(Errno::Inval, "nomap is an arm64 memblock flag; use reserved on x86");
    }
    for (const Item& o : items) {
      if (o.start <= it.last && it.start <= o.last) {
        return err(Errno::Inval, fmt::format("[{:#x}-{:#x}] overlaps line {}", it.start, it.last, o.line));
      }
      if (it.kind == ItemKind::Hotplug && o.kind == ItemKind::Hotplug) {
        return err(Errno::Inval, fmt::format("a second hotplug window (the first is on line {})", o.line));
      }
    }
    items.push_back(it);
    if (nl == text.size()) break;
  }
  if (std::none_of(items.begin(), items.end(), [](const Item& i) { return i.kind == ItemKind::Ram; })) {
    return fail(Errno::Inval, "plain map: no ram line");
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.start < b.start; });
  return items;
}

}  // namespace

Result<PlatformDescription> platform_from_memory_map(std::string_view text, const ArchProfile& arch,
                                                     std::string_view kernel_cmdline) {
  SPM_TRY_ASSIGN(std::vector<Item> items, parse_items(text, arch));
  PlatformDescription p;
  p.machine = MachineType::Plain;
  p.arch = &arch;
  p.phys_bits = arch.max_physmem_bits;
  p.acpi_enabled = false;
  p.cmdline = parse_kernel_cmdline(kernel_cmdline);

  unsigned max_node = 0;
  for (const Item& i : items) {
    if (i.kind == ItemKind::Ram) p.ram_size += i.last - i.start + 1;
    if (i.kind != ItemKind::Reserved && i.kind != ItemKind::Hotplug) max_node = std::max(max_node, i.node);
  }
  p.maxram_size = p.ram_size;
  // Nodes 0..max: a node id with no line of its own is a memory-less node.
  for (unsigned n = 0; n <= max_node; ++n) {
    NumaNode node;
    node.id = n;
    for (const Item& i : items) {
      if (i.kind == ItemKind::Ram && i.node == n) node.mem_size += i.last - i.start + 1;
    }
    if (n == 0) node.cpus.push_back(0);
    p.numa_nodes.push_back(node);
  }
  for (const Item& i : items) {
    if (i.kind == ItemKind::Ram || i.kind == ItemKind::Nomap) {
      p.srat.push_back({PhysAddr(i.start), i.last - i.start + 1, i.node, false, false});
    }
  }
  for (const Item& i : items) {
    if (i.kind != ItemKind::Hotplug) continue;
    p.device_memory = DeviceMemoryRegion{PhysAddr(i.start), i.last - i.start + 1};
    p.device_memory_capacity = p.device_memory.size;
    p.ram_slots = i.slots;
    p.maxram_size = p.ram_size + p.device_memory.size;
    p.memory_hotplug_enabled = true;
    p.srat.push_back({p.device_memory.base, p.device_memory.size, max_node, true, false});
  }

  if (arch.family == ArchFamily::X86_64) {
    // The map is the firmware's e820 table; the kernel's e820 sequence runs on it as on a PC.
    E820Table t;
    for (const Item& i : items) {
      const uint64_t size = i.last - i.start + 1;
      if (i.kind == ItemKind::Ram) t.push_back(E820Entry{PhysAddr(i.start), size, E820Type::Ram});
      else if (i.kind == ItemKind::Reserved) t.push_back(E820Entry{PhysAddr(i.start), size, E820Type::Reserved});
      else if (i.kind == ItemKind::Pmem) t.push_back(E820Entry{PhysAddr(i.start), size, E820Type::Pram});
    }
    for (const Item& i : items) {
      if (i.kind == ItemKind::Ram && i.start < (uint64_t{1} << 32)) {
        p.below_4g_mem_size += std::min(i.last + 1, uint64_t{1} << 32) - i.start;
      }
    }
    p.above_4g_mem_size = p.ram_size - p.below_4g_mem_size;
    run_x86_e820_boot(p, std::move(t));
    build_x86_memory_map(p);
    ResourceTreeBuilder tree;
    for (const E820Entry& e : p.e820_kernel) {
      if (e.size == 0) continue;
      tree.add(e.addr.value(), e.last().value(), std::string(e820_type_resource_name(e.type)), e820_resource_flags(e),
               e820_resource_desc(e.type), ResourceOrigin::E820, ResourceTreeBuilder::Mode::Insert);
    }
    for (const PhysRange& r : e820_ram_buffers(p.e820_kernel)) {
      tree.add_in_top_level_gaps(r.start.value(), r.last.value(), "RAM buffer",
                                 firmware::IORESOURCE_MEM | firmware::IORESOURCE_BUSY, ResourceOrigin::RamBuffer);
    }
    p.iomem = tree.flatten();
    return p;
  }

  // arm64: the ranges are memblock's (DT memory nodes, /reserved-memory no-map, pmem regions).
  p.above_4g_mem_size = p.ram_size;
  for (const Item& i : items) {
    BootMemoryKind kind;
    switch (i.kind) {
      case ItemKind::Ram: kind = BootMemoryKind::Ram; break;
      case ItemKind::Nomap: kind = BootMemoryKind::Nomap; break;
      case ItemKind::Reserved: kind = BootMemoryKind::Reserved; break;
      case ItemKind::Pmem: kind = BootMemoryKind::PersistentLegacy; break;
      case ItemKind::Hotplug: continue;
    }
    p.memory_map.push_back(BootMemoryRegion{PhysRange{PhysAddr(i.start), PhysAddr(i.last)}, kind, i.node});
  }
  if (p.cmdline.mem_limit) apply_arm64_mem_limit(p.memory_map, p.cmdline.mem_limit->value());
  // request_standard_resources(): "System RAM" for memory, "reserved" for NOMAP memory.
  ResourceTreeBuilder tree;
  for (const BootMemoryRegion& r : p.memory_map) {
    if (r.kind == BootMemoryKind::Ram) {
      tree.add(r.range.start.value(), r.range.last.value(), "System RAM",
               firmware::IORESOURCE_SYSTEM_RAM | firmware::IORESOURCE_BUSY, firmware::IoresDesc::None,
               ResourceOrigin::MemoryMap, ResourceTreeBuilder::Mode::Insert);
    } else if (r.kind == BootMemoryKind::Nomap) {
      tree.add(r.range.start.value(), r.range.last.value(), "reserved", firmware::IORESOURCE_MEM,
               firmware::IoresDesc::None, ResourceOrigin::MemoryMap, ResourceTreeBuilder::Mode::Insert);
    }
  }
  p.iomem = tree.flatten();
  return p;
}

}  // namespace sparsemem
