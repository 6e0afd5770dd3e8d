// The pure rules of memremap_pages (Linux 6.1 mm/memremap.c) and mhp_range_allowed (mm/memory_hotplug.c):
// checks of a pgmap before anything changes, and the pluggable physical range. No state; callers log through the given KernelLog.
#include <fmt/core.h>

#include "sparsemem/pagemap.h"

namespace sparsemem {

namespace {
Result<void> refuse(KernelLog& log, std::string message) {
  log.warn("{}", message);
  return fail(Errno::Inval, std::move(message));
}
}  // namespace

Result<void> validate_dev_pagemap(const DevPagemap& pgmap, const ArchProfile& arch, const KernelConfig& config,
                                  const Behaviour& behaviour, KernelLog& log, WarnOnce& once) {
  if (pgmap.ranges.empty()) {
    const std::string msg = "nr_range must be specified";
    if (once.first(msg)) log.warn("{}", msg);
    return fail(Errno::Inval, msg);
  }
  const bool has_ops = pgmap.ops != nullptr;
  switch (pgmap.type) {
    case MemoryType::DevicePrivate:
      if (!config.device_private) return refuse(log, "Device private memory not supported");
      if (!has_ops || !pgmap.ops->migrate_to_ram) return refuse(log, "Missing migrate_to_ram method");
      if (!pgmap.ops->page_free) return refuse(log, "Missing page_free method");
      if (!pgmap.owner) return refuse(log, "Missing owner");
      // Seed 002: Anshuman Khandual asked devm_memremap_pages to refuse an altmap for
      // un-addressable memory (its struct pages cannot live in memory the CPU cannot reach);
      // 6.1 never added the check and tears such a pgmap down without the altmap.
      if (behaviour.reject_private_altmap && pgmap.altmap_valid())
        return refuse(log, "Device private memory cannot use an altmap");
      break;
    case MemoryType::DeviceCoherent:
      // 6.1 reads ops->page_free without checking ops: a null ops pointer oopses there. The model
      // refuses it with the message the check would have printed.
      if (!has_ops || !pgmap.ops->page_free) return refuse(log, "Missing page_free method");
      if (!pgmap.owner) return refuse(log, "Missing owner");
      break;
    case MemoryType::FsDax:
      if (config.fs_dax_limited) return refuse(log, "File system DAX not supported");
      break;
    case MemoryType::Generic:
    case MemoryType::PciP2pdma:
      break;
    default:
      // 6.1 warns and carries on as if the type were GENERIC.
      log.warn("Invalid pgmap type {}", static_cast<int>(pgmap.type));
      break;
  }
  // Model checks (6.1 has none): a compound order the pfn width cannot hold, and ranges whose
  // data pages are not whole compound units — memmap_init_zone_device would initialise
  // descriptors past the end of the range.
  if (pgmap.vmemmap_shift >= 64 - arch.page_shift)
    return fail(Errno::Inval, fmt::format("vmemmap_shift {} is too large", pgmap.vmemmap_shift));
  for (unsigned i = 0; i < pgmap.ranges.size(); ++i) {
    const PhysRange& r = pgmap.ranges[i];
    if (r.last < r.start)
      return fail(Errno::Inval, fmt::format("range {} [{:#x}-{:#x}] ends before it starts", i, r.start.value(),
                                            r.last.value()));
    const Pfn first = pgmap.pfn_first(arch, i);
    const Pfn end = pgmap.range_end_pfn(arch, i);
    if (first < end && ((end - first).value() & (pgmap.vmemmap_nr().value() - 1)))
      return fail(Errno::Inval,
                  fmt::format("range {}: {:#x} data pages are not a whole number of {}-page compound units", i,
                              (end - first).value(), pgmap.vmemmap_nr().value()));
  }
  return {};
}

PhysRange mhp_get_pluggable_range(const ArchProfile& arch, Pfn memstart_pfn, bool need_mapping) {
  const uint64_t physmem_end = arch.physmem_end();
  if (!need_mapping || arch.family == ArchFamily::X86_64) return PhysRange{PhysAddr(0), PhysAddr(physmem_end)};
  // arm64 arch_get_mappable_range(): the physical span of the linear map, which starts at
  // memstart and is as large as the vmemmap window has descriptors for.
  const uint64_t start = arch.pfn_to_phys(memstart_pfn).value();
  const uint64_t linear = (arch.vmemmap_size / STRUCT_PAGE_SIZE) << arch.page_shift;
  const uint64_t end = start + (linear - 1);
  if (start > physmem_end) return PhysRange{PhysAddr(0), PhysAddr(0)};
  return PhysRange{PhysAddr(start), PhysAddr(std::min(end, physmem_end))};
}

Result<void> mhp_range_allowed(const ArchProfile& arch, Pfn memstart_pfn, PhysAddr start, uint64_t size,
                               bool need_mapping, KernelLog& log) {
  const PhysRange r = mhp_get_pluggable_range(arch, memstart_pfn, need_mapping);
  const uint64_t s = start.value();
  const bool wraps = size == 0 || size - 1 > UINT64_MAX - s;
  if (!wraps && s >= r.start.value() && s + (size - 1) <= r.last.value()) return {};
  const std::string msg = fmt::format("Hotplug memory [{:#x}-{:#x}] exceeds maximum addressable range [{:#x}-{:#x}]", s,
                                      s + size, r.start.value(), r.last.value());
  log.log(LogLevel::Warn, "{}", msg);
  return fail(Errno::Inval, msg);
}

}  // namespace sparsemem
