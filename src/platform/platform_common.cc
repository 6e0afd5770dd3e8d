// Shared platform machinery: the boot-resource tree, the x86 e820 boot sequence (arch/x86/kernel/e820.c
// and setup.c of Linux 6.1), memory maps, PXM numbering and the derived views. Pure functions.
#include <algorithm>

#include <fmt/core.h>

#include "platform_internal.h"

namespace sparsemem {

using namespace platform_detail;

std::string_view machine_type_name(MachineType m) {
  switch (m) {
    case MachineType::Pc: return "pc";
    case MachineType::Q35: return "q35";
    case MachineType::Virt: return "virt";
    case MachineType::Plain: return "plain";
  }
  return "?";
}

std::string_view qemu_program_name(MachineType m) {
  return m == MachineType::Virt ? "qemu-system-aarch64" : "qemu-system-x86_64";
}

std::string_view memory_device_kind_name(MemoryDeviceKind k) {
  return k == MemoryDeviceKind::Nvdimm ? "nvdimm" : "dimm";
}

const MemoryDevice* PlatformDescription::find_memory_device(std::string_view id) const {
  for (const MemoryDevice& d : memory_devices) {
    if (!d.id.empty() && d.id == id) return &d;
  }
  return nullptr;
}

const MemoryBackend* PlatformDescription::find_backend(std::string_view id) const {
  for (const MemoryBackend& b : backends) {
    if (b.id == id) return &b;
  }
  return nullptr;
}

namespace platform_detail {

// ---- ResourceTreeBuilder ----

bool ResourceTreeBuilder::add(uint64_t start, uint64_t last, std::string name, uint64_t flags,
                              firmware::IoresDesc desc, ResourceOrigin origin, Mode mode) {
  if (last < start) return false;
  int parent = -1;
  for (;;) {
    std::vector<size_t>& list = children_of(parent);
    std::vector<size_t> overlapping;
    for (size_t idx : list) {
      const Node& n = m_nodes[idx];
      if (n.start <= last && start <= n.last) overlapping.push_back(idx);
    }
    if (overlapping.empty()) break;
    const Node& first = m_nodes[overlapping.front()];
    const bool first_contains = first.start <= start && first.last >= last;
    const bool first_equal = first.start == start && first.last == last;
    if (mode == Mode::Request) {
      // __request_region(): descend into the first conflict unless it is busy or cannot hold us.
      if (overlapping.size() != 1 || !first_contains || (first.flags & firmware::IORESOURCE_BUSY)) return false;
      parent = int(overlapping.front());
      continue;
    }
    if (overlapping.size() == 1 && first_contains && !first_equal) {
      parent = int(overlapping.front());
      continue;
    }
    // __insert_resource(): the new resource adopts every conflict it encloses (an equal one included);
    // a partial overlap fails.
    for (size_t idx : overlapping) {
      const Node& n = m_nodes[idx];
      if (n.start < start || n.last > last) return false;
    }
    Node node{start, last, std::move(name), flags, desc, origin, overlapping};
    m_nodes.push_back(std::move(node));
    const size_t new_idx = m_nodes.size() - 1;
    std::vector<size_t>& plist = children_of(parent);
    plist.erase(std::remove_if(plist.begin(), plist.end(),
                               [&](size_t i) {
                                 return std::find(overlapping.begin(), overlapping.end(), i) != overlapping.end();
                               }),
                plist.end());
    plist.push_back(new_idx);
    std::sort(plist.begin(), plist.end(), [&](size_t a, size_t b) { return m_nodes[a].start < m_nodes[b].start; });
    return true;
  }
  m_nodes.push_back(Node{start, last, std::move(name), flags, desc, origin, {}});
  const size_t new_idx = m_nodes.size() - 1;
  std::vector<size_t>& plist = children_of(parent);
  plist.push_back(new_idx);
  std::sort(plist.begin(), plist.end(), [&](size_t a, size_t b) { return m_nodes[a].start < m_nodes[b].start; });
  return true;
}

void ResourceTreeBuilder::add_in_top_level_gaps(uint64_t start, uint64_t last, const std::string& name,
                                                uint64_t flags, ResourceOrigin origin) {
  std::vector<std::pair<uint64_t, uint64_t>> pieces;
  uint64_t cur = start;
  bool done = false;
  for (size_t idx : m_roots) {  // ascending
    const Node& n = m_nodes[idx];
    if (n.last < cur) continue;
    if (n.start > last) break;
    if (n.start > cur) pieces.emplace_back(cur, n.start - 1);
    if (n.last >= last) {
      done = true;
      break;
    }
    cur = n.last + 1;
  }
  if (!done && cur <= last) pieces.emplace_back(cur, last);
  for (auto [s, l] : pieces) add(s, l, name, flags, firmware::IoresDesc::None, origin, Mode::Insert);
}

void ResourceTreeBuilder::flatten_into(const std::vector<size_t>& list, unsigned depth, int parent,
                                       std::vector<FirmwareResource>& out) const {
  for (size_t idx : list) {
    const Node& n = m_nodes[idx];
    out.push_back(FirmwareResource{PhysRange{PhysAddr(n.start), PhysAddr(n.last)}, n.name, depth, parent, n.flags,
                                   n.desc, n.origin});
    const int me = int(out.size() - 1);
    flatten_into(n.children, depth + 1, me, out);
  }
}

std::vector<FirmwareResource> ResourceTreeBuilder::flatten() const {
  std::vector<FirmwareResource> out;
  flatten_into(m_roots, 0, -1, out);
  return out;
}

// ---- e820 ----

uint64_t e820_resource_flags(const E820Entry& e) {
  uint64_t flags = (e.type == E820Type::Ram || e.type == E820Type::ReservedKern) ? firmware::IORESOURCE_SYSTEM_RAM
                                                                                  : firmware::IORESOURCE_MEM;
  // do_mark_busy(): everything below 1 MiB, and all but reserved/soft-reserved/pmem types above it.
  bool busy = true;
  if (e.addr.value() >= MiB) {
    switch (e.type) {
      case E820Type::Reserved:
      case E820Type::SoftReserved:
      case E820Type::Pram:
      case E820Type::Pmem: busy = false; break;
      default: break;
    }
  }
  return busy ? flags | firmware::IORESOURCE_BUSY : flags;
}

firmware::IoresDesc e820_resource_desc(E820Type t) {
  switch (t) {
    case E820Type::Acpi: return firmware::IoresDesc::AcpiTables;
    case E820Type::Nvs: return firmware::IoresDesc::AcpiNvStorage;
    case E820Type::Pmem: return firmware::IoresDesc::PersistentMemory;
    case E820Type::Pram: return firmware::IoresDesc::PersistentMemoryLegacy;
    case E820Type::Reserved: return firmware::IoresDesc::Reserved;
    case E820Type::SoftReserved: return firmware::IoresDesc::SoftReserved;
    default: return firmware::IoresDesc::None;
  }
}

std::vector<PhysRange> e820_ram_buffers(const E820Table& table) {
  std::vector<PhysRange> out;
  for (const E820Entry& e : table) {
    if (e.type != E820Type::Ram || e.size == 0) continue;
    const uint64_t start = e.addr.value() + e.size;
    if (start == 0) continue;  // RAM reaching the top of the address space
    // ram_alignment(): 64 KiB in the first MiB, 1 MiB below 16 MiB, 64 MiB above.
    const uint64_t mb = start >> 20;
    const uint64_t align = mb == 0 ? 64 * KiB : mb < 16 ? MiB : 64 * MiB;
    const uint64_t rounded = align_up_wrap(start, align);
    const uint64_t end = rounded == 0 ? ~uint64_t{0} : rounded - 1;
    if (start >= end) continue;
    out.push_back(PhysRange{PhysAddr(start), PhysAddr(end)});
  }
  return out;
}

void run_x86_e820_boot(PlatformDescription& p, E820Table firmware) {
  std::vector<std::string>& log = p.e820_log;
  e820_update_table(firmware);
  p.e820_firmware = firmware;
  log.push_back("BIOS-provided physical RAM map:");
  for (const E820Entry& e : firmware) log.push_back(format_e820_entry("BIOS-e820", e));

  E820Table table = firmware;
  p.e820_userdef = apply_e820_cmdline(table, p.cmdline, &log);
  if (p.e820_userdef) {
    // e820__finish_early_params(): a user map that cannot be sanitized panics the kernel
    // ("Invalid user supplied memory map"); the model keeps it as given and says so.
    if (!e820_update_table(table) && table.size() >= 2) {
      p.warnings.push_back("sparsemem: the kernel would panic: Invalid user supplied memory map");
    }
    log.push_back("user-defined physical RAM map:");
    for (const E820Entry& e : table) log.push_back(format_e820_entry("user", e));
    p.e820_user = table;
  }

  // trim_bios_range(): page 0 is BIOS-owned, the 640K-1M legacy area is not RAM.
  e820_range_update(table, PhysAddr(0), 4 * KiB, E820Type::Ram, E820Type::Reserved, &log);
  e820_range_remove(table, PhysAddr(0xa0000), 0x100000 - 0xa0000, E820Type::Ram, &log);
  e820_update_table(table);
  p.e820_kernel = table;

  // e820__setup_pci_gap(): the largest gap below 4 GiB (at least 4 MiB), searched from the top.
  uint64_t gap_start = 0, gap_size = 0x400000;
  bool found = false;
  uint64_t last = uint64_t{1} << 32;
  for (size_t i = table.size(); i-- > 0;) {
    const uint64_t s = table[i].addr.value();
    const uint64_t e = s + table[i].size;
    if (last > e) {
      const uint64_t gap = last - e;
      if (gap >= gap_size) {
        gap_size = gap;
        gap_start = e;
        found = true;
      }
    }
    if (s < last) last = s;
  }
  if (!found) {
    uint64_t max_ram_end = 0;
    for (const E820Entry& e : table) {
      if (e.type == E820Type::Ram) max_ram_end = std::max(max_ram_end, e.addr.value() + e.size);
    }
    gap_start = (max_ram_end & ~(4 * KiB - 1)) + MiB;
    log.push_back("Cannot find an available gap in the 32-bit address space");
    log.push_back("PCI devices with unassigned 32-bit BARs may not work!");
  }
  log.push_back(fmt::format("[mem {:#010x}-{:#010x}] available for PCI devices", gap_start, gap_start + gap_size - 1));

  for (const PhysRange& r : e820_ram_buffers(table)) {
    log.push_back(fmt::format("e820: reserve RAM buffer [mem {:#010x}-{:#010x}]", r.start.value(), r.last.value()));
  }
}

std::vector<int> pxm_to_node_table(const PlatformDescription& p) {
  unsigned max_pxm = 0;
  for (const NumaNode& n : p.numa_nodes) max_pxm = std::max(max_pxm, n.id);
  for (const SratMemoryAffinity& s : p.srat) max_pxm = std::max(max_pxm, s.proximity);
  std::vector<int> table(max_pxm + 1, -1);
  int next = 0;
  auto see = [&](unsigned pxm) {
    if (pxm < table.size() && table[pxm] < 0) table[pxm] = next++;
  };
  // acpi_numa_init() parses processor affinity before memory affinity.
  for (unsigned cpu = 0; cpu < p.nr_cpus; ++cpu) {
    for (const NumaNode& n : p.numa_nodes) {
      if (std::find(n.cpus.begin(), n.cpus.end(), cpu) != n.cpus.end()) see(n.id);
    }
  }
  for (const SratMemoryAffinity& s : p.srat) see(s.proximity);
  return table;
}

void build_x86_memory_map(PlatformDescription& p) {
  const std::vector<int> pxm = pxm_to_node_table(p);
  auto node_of = [&](unsigned proximity) {
    return proximity < pxm.size() && pxm[proximity] >= 0 ? unsigned(pxm[proximity]) : 0u;
  };
  p.memory_map.clear();
  for (const E820Entry& e : p.e820_kernel) {
    if (e.size == 0) continue;
    BootMemoryKind kind;
    switch (e.type) {
      case E820Type::Ram:
      case E820Type::ReservedKern: kind = BootMemoryKind::Ram; break;
      case E820Type::Pram: kind = BootMemoryKind::PersistentLegacy; break;
      case E820Type::Pmem: kind = BootMemoryKind::Persistent; break;
      default: kind = BootMemoryKind::Reserved; break;
    }
    const uint64_t s = e.addr.value(), l = e.last().value();
    if (kind != BootMemoryKind::Ram || p.srat.empty()) {
      p.memory_map.push_back(BootMemoryRegion{PhysRange{PhysAddr(s), PhysAddr(l)}, kind, 0});
      continue;
    }
    // Split RAM at SRAT boundaries; a part no SRAT entry covers stays on node 0.
    uint64_t cur = s;
    while (cur <= l) {
      unsigned node = 0;
      uint64_t piece_last = l;
      for (const SratMemoryAffinity& a : p.srat) {
        const uint64_t as = a.start.value(), al = a.start.value() + a.size - 1;
        if (a.size == 0) continue;
        if (as <= cur && cur <= al) {
          node = node_of(a.proximity);
          piece_last = std::min(piece_last, al);
          break;
        }
        if (as > cur && as <= piece_last) piece_last = as - 1;
      }
      p.memory_map.push_back(BootMemoryRegion{PhysRange{PhysAddr(cur), PhysAddr(piece_last)}, kind, node});
      if (piece_last == l) break;
      cur = piece_last + 1;
    }
  }
}

void apply_arm64_mem_limit(std::vector<BootMemoryRegion>& map, uint64_t limit) {
  std::vector<BootMemoryRegion> out;
  uint64_t left = limit;
  for (const BootMemoryRegion& r : map) {
    if (r.kind != BootMemoryKind::Ram && r.kind != BootMemoryKind::Nomap) {
      out.push_back(r);
      continue;
    }
    if (left == 0) continue;
    const uint64_t size = r.range.size();
    if (size <= left) {
      out.push_back(r);
      left -= size;
      continue;
    }
    BootMemoryRegion cut = r;
    cut.range.last = PhysAddr(r.range.start.value() + left - 1);
    out.push_back(cut);
    left = 0;
  }
  map = std::move(out);
}

}  // namespace platform_detail

// ---- views ----

std::vector<const MemoryDevice*> memory_devices_by_address(const PlatformDescription& p) {
  std::vector<const MemoryDevice*> out;
  for (const MemoryDevice& d : p.memory_devices) out.push_back(&d);
  std::stable_sort(out.begin(), out.end(), [](const MemoryDevice* a, const MemoryDevice* b) { return a->addr < b->addr; });
  return out;
}

std::vector<AcpiMemorySlot> acpi_memory_slots(const PlatformDescription& p) {
  std::vector<AcpiMemorySlot> out;
  if (!p.acpi_enabled) return out;
  // virt builds the same MHPC devices (build_memory_hotplug_aml) only with its ACPI GED, which
  // exists only when it boots through UEFI firmware.
  if (p.machine == MachineType::Virt && !p.memory_hotplug_enabled) return out;
  // ram_slots is bounded by 256 whenever device memory exists; without it QEMU builds no MHPC devices.
  if (!p.device_memory.present()) return out;
  for (unsigned slot = 0; slot < p.ram_slots; ++slot) {
    AcpiMemorySlot d;
    d.slot = slot;
    d.name = fmt::format("PNP0C80:{:02x}", slot);
    d.path = fmt::format("\\_SB_.MHPC.MP{:02X}", slot);
    for (const MemoryDevice& m : p.memory_devices) {
      if (m.slot == slot && m.kind == MemoryDeviceKind::Dimm) {
        d.status = 15;
        d.device_id = m.id;
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<std::string> srat_memory_lines(const PlatformDescription& p) {
  const std::vector<int> pxm = pxm_to_node_table(p);
  std::vector<std::string> out;
  for (const SratMemoryAffinity& a : p.srat) {
    if (a.size == 0) continue;
    const int node = a.proximity < pxm.size() ? pxm[a.proximity] : -1;
    out.push_back(fmt::format("ACPI: SRAT: Node {} PXM {} [mem {:#010x}-{:#010x}]{}{}", node < 0 ? 0 : node,
                              a.proximity, a.start.value(), a.start.value() + a.size - 1,
                              a.hotpluggable ? " hotplug" : "", a.non_volatile ? " non-volatile" : ""));
  }
  return out;
}

}  // namespace sparsemem
