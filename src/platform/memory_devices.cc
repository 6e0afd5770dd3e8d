// Memory backends and devices (pc-dimm, nvdimm) as QEMU 7.2 creates, places and removes them (hw/mem/*.c).
// Pure functions on a PlatformDescription; every call validates first and changes nothing on error.
#include <algorithm>

#include <fmt/core.h>

#include "platform_internal.h"
#include "qemu_opts.h"

namespace sparsemem {

using namespace platform_detail;

namespace {

constexpr uint64_t kHostPageSize = 4 * KiB;
// QEMU_VMALLOC_ALIGN on an x86-64 (or 4K-page arm64) Linux host: anonymous RAM is 2 MiB aligned.
constexpr uint64_t kAnonRamAlign = 2 * MiB;
// MIN_NAMESPACE_LABEL_SIZE (hw/mem/nvdimm.c).
constexpr uint64_t kMinLabelSize = 128 * KiB;

bool known_backend_property(BackendKind kind, std::string_view key) {
  static constexpr std::string_view common[] = {"qom-type", "id", "size", "share", "prealloc", "prealloc-threads",
                                                "prealloc-context", "reserve", "host-nodes", "policy", "merge",
                                                "dump", "x-use-canonical-path-for-ramblock-id"};
  static constexpr std::string_view file_only[] = {"mem-path", "align", "discard-data", "pmem", "readonly",
                                                   "offset"};
  static constexpr std::string_view memfd_only[] = {"hugetlb", "hugetlbsize", "seal"};
  for (auto k : common) {
    if (k == key) return true;
  }
  if (kind == BackendKind::File) {
    for (auto k : file_only) {
      if (k == key) return true;
    }
  }
  if (kind == BackendKind::Memfd) {
    for (auto k : memfd_only) {
      if (k == key) return true;
    }
  }
  return false;
}

std::string_view backend_type_name(BackendKind k) {
  switch (k) {
    case BackendKind::Ram: return "memory-backend-ram";
    case BackendKind::File: return "memory-backend-file";
    case BackendKind::Memfd: return "memory-backend-memfd";
  }
  return "memory-backend";
}

bool looks_like_hugetlbfs(std::string_view path) {
  return path.find("hugepages") != std::string_view::npos || path.find("hugetlbfs") != std::string_view::npos;
}

}  // namespace

Result<MemoryBackend> parse_memory_backend(std::string_view opts) {
  SPM_TRY_ASSIGN(std::vector<qemu::Opt> kv, qemu::split_opts(opts, "qom-type"));
  const std::optional<std::string> type = qemu::find_opt(kv, "qom-type");
  if (!type) return fail(Errno::Inval, "Parameter 'qom-type' is missing");
  MemoryBackend b;
  if (*type == "memory-backend-ram") {
    b.kind = BackendKind::Ram;
  } else if (*type == "memory-backend-file") {
    b.kind = BackendKind::File;
  } else if (*type == "memory-backend-memfd") {
    b.kind = BackendKind::Memfd;
  } else {
    return fail(Errno::NotSupp, fmt::format("sparsemem: object type '{}' is not a memory backend", *type));
  }
  const std::optional<std::string> id = qemu::find_opt(kv, "id");
  if (!id) return fail(Errno::Inval, "Parameter 'id' is missing");
  if (!qemu::id_wellformed(*id)) return fail(Errno::Inval, "Parameter 'id' expects an identifier");
  b.id = *id;

  uint64_t explicit_align = 0;
  bool hugetlb = false;
  uint64_t hugetlbsize = 0;
  for (const qemu::Opt& o : kv) {
    if (!known_backend_property(b.kind, o.key)) {
      return fail(Errno::Inval, fmt::format("Property '{}.{}' not found", backend_type_name(b.kind), o.key));
    }
    if (o.key == "size" || o.key == "align" || o.key == "hugetlbsize") {
      qemu::SizeResult s = qemu::strtosz(o.value);
      if (s.error) return fail(Errno::Inval, fmt::format("Parameter '{}' expects size", o.key));
      if (o.key == "size") b.size = s.value;
      else if (o.key == "align") explicit_align = s.value;
      else hugetlbsize = s.value;
    } else if (o.key == "share" || o.key == "hugetlb" || o.key == "prealloc" || o.key == "reserve" ||
               o.key == "merge" || o.key == "dump" || o.key == "pmem" || o.key == "readonly" ||
               o.key == "discard-data" || o.key == "seal") {
      std::optional<bool> v = qemu::parse_bool(o.value);
      if (!v) return fail(Errno::Inval, fmt::format("Parameter '{}' expects 'on' or 'off'", o.key));
      if (o.key == "share") b.share = *v;
      if (o.key == "hugetlb") hugetlb = *v;
    } else if (o.key == "mem-path") {
      b.mem_path = o.value;
    }
  }
  // host_memory_backend_memory_complete() -> *_memory_alloc(): size first, then the file's path.
  if (b.size == 0) return fail(Errno::Inval, "can't create backend with size 0");
  if (b.kind == BackendKind::File && b.mem_path.empty()) return fail(Errno::Inval, "mem-path property not set");
  switch (b.kind) {
    case BackendKind::Ram: b.align = kAnonRamAlign; break;
    case BackendKind::File:
      // file_ram_alloc(): align= if given, else the page size of the file system holding mem-path (the
      // model assumes an ordinary file system or tmpfs, 2 MiB huge pages for a hugetlbfs-looking path).
      b.align = explicit_align ? explicit_align : looks_like_hugetlbfs(b.mem_path) ? 2 * MiB : kHostPageSize;
      break;
    case BackendKind::Memfd: b.align = hugetlb ? (hugetlbsize ? hugetlbsize : 2 * MiB) : kHostPageSize; break;
  }
  // qemu_ram_alloc_*(): the region is a whole number of host pages.
  b.size = align_up_wrap(b.size, kHostPageSize);
  if (b.size == 0) return fail(Errno::Inval, "can't create backend with size 0");
  return b;
}

Result<void> add_memory_backend(PlatformDescription& p, MemoryBackend backend) {
  if (p.find_backend(backend.id)) {
    return fail(Errno::Inval,
                fmt::format("attempt to add duplicate property '{}' to object (type 'container')", backend.id));
  }
  backend.in_use = false;
  p.backends.push_back(std::move(backend));
  return {};
}

Result<void> remove_memory_backend(PlatformDescription& p, std::string_view id) {
  auto it = std::find_if(p.backends.begin(), p.backends.end(), [&](const MemoryBackend& b) { return b.id == id; });
  if (it == p.backends.end()) return fail(Errno::Inval, fmt::format("object '{}' not found", id));
  if (it->in_use) return fail(Errno::Inval, fmt::format("object '{}' can't be deleted", id));
  p.backends.erase(it);
  return {};
}

Result<MemoryDeviceRequest> parse_memory_device(std::string_view opts) {
  SPM_TRY_ASSIGN(std::vector<qemu::Opt> kv, qemu::split_opts(opts, "driver"));
  const std::optional<std::string> driver = qemu::find_opt(kv, "driver");
  if (!driver) return fail(Errno::Inval, "Parameter 'driver' is missing");
  MemoryDeviceRequest r;
  r.opts_text = std::string(opts);
  if (*driver == "pc-dimm") {
    r.kind = MemoryDeviceKind::Dimm;
  } else if (*driver == "nvdimm") {
    r.kind = MemoryDeviceKind::Nvdimm;
  } else if (*driver == "virtio-mem-pci" || *driver == "virtio-pmem-pci" || *driver == "virtio-mem" ||
             *driver == "virtio-pmem") {
    return fail(Errno::NotSupp, fmt::format("sparsemem: memory device '{}' is not modelled", *driver));
  } else {
    return fail(Errno::NotSupp, fmt::format("sparsemem: '{}' is not a memory device", *driver));
  }
  const std::string_view type = r.kind == MemoryDeviceKind::Nvdimm ? "nvdimm" : "pc-dimm";
  // QemuOpts validates the id when the option is created, before any property is set.
  if (auto id = qemu::find_opt(kv, "id")) {
    if (!qemu::id_wellformed(*id)) return fail(Errno::Inval, "Parameter 'id' expects an identifier");
    r.id = *id;
  }
  // Properties are set in the order given; the first bad one is reported.
  for (const qemu::Opt& o : kv) {
    if (o.key == "driver" || o.key == "id") continue;
    if (o.key == "memdev") {
      r.memdev = o.value;
    } else if (o.key == "addr") {
      auto v = qemu::strtou64(o.value);
      if (!v) return fail(Errno::Inval, "Parameter 'addr' expects integer");
      r.addr = PhysAddr(*v);
    } else if (o.key == "slot") {
      auto v = qemu::strtoi64(o.value);
      if (!v || *v < INT32_MIN || *v > INT32_MAX) return fail(Errno::Inval, "Parameter 'slot' expects int32_t");
      r.slot = *v;
    } else if (o.key == "node") {
      auto v = qemu::strtou64(o.value);
      if (!v || *v > UINT32_MAX) return fail(Errno::Inval, "Parameter 'node' expects uint32_t");
      r.node = *v;
    } else if (o.key == "label-size" && r.kind == MemoryDeviceKind::Nvdimm) {
      qemu::SizeResult s = qemu::strtosz(o.value);
      if (s.error) return fail(Errno::Inval, "Parameter 'label-size' expects size");
      // nvdimm_set_label_size(): checked when the property is set.
      if (s.value < kMinLabelSize) {
        return fail(Errno::Inval, fmt::format("Property 'nvdimm.label-size' (0x{:x}) is required at least 0x{:x}",
                                              s.value, kMinLabelSize));
      }
      r.label_size = s.value;
    } else if ((o.key == "unarmed" && r.kind == MemoryDeviceKind::Nvdimm)) {
      if (!qemu::parse_bool(o.value)) return fail(Errno::Inval, "Parameter 'unarmed' expects 'on' or 'off'");
    } else if (o.key == "uuid" && r.kind == MemoryDeviceKind::Nvdimm) {
      // Accepted and not needed by the model.
    } else if (o.key == "bus") {
      // Memory devices sit on no bus; QEMU rejects a bus= for them. The model only accepts the option.
    } else {
      return fail(Errno::Inval, fmt::format("Property '{}.{}' not found", type, o.key));
    }
  }
  return r;
}

namespace {

// memory_device_get_free_addr() with QEMU's Range arithmetic (inclusive upper bounds, wrap = empty).
Result<uint64_t> memory_device_get_free_addr(const PlatformDescription& p, std::optional<uint64_t> hint,
                                             uint64_t align, uint64_t size) {
  if (p.machine == MachineType::Virt && !p.device_memory.present()) {
    return fail(Errno::Inval, "memory devices (e.g. for memory hotplug) are not supported by the machine");
  }
  if (!p.device_memory.present()) {
    if (p.machine == MachineType::Plain) {
      return fail(Errno::Inval, "memory devices (e.g. for memory hotplug) are not supported by the machine");
    }
    return fail(Errno::Inval,
                "memory devices (e.g. for memory hotplug) are not enabled, please specify the maxmem option");
  }
  const uint64_t as_lob = p.device_memory.base.value();
  const uint64_t as_size = p.device_memory.size;
  const uint64_t as_upb = as_lob + as_size - 1;
  if (align == 0 || as_lob % align != 0) {
    return fail(Errno::Inval, fmt::format("the alignment (0x{:x}) is not supported", align));
  }
  // memory_device_check_addable(): everything plugged counts against maxmem - memory.
  uint64_t used = 0;
  for (const MemoryDevice& d : p.memory_devices) used += d.size;
  if (used + size < used || used + size > p.device_memory_capacity) {
    return fail(Errno::Inval, fmt::format("not enough space, currently 0x{:x} in use of total space for memory "
                                          "devices 0x{:x}",
                                          used, p.device_memory_capacity));
  }
  if (hint && *hint % align != 0) {
    return fail(Errno::Inval, fmt::format("address must be aligned to 0x{:x} bytes", align));
  }
  if (size % align != 0) return fail(Errno::Inval, fmt::format("backend memory size must be multiple of 0x{:x}", align));

  struct Range {
    uint64_t lob, upb;
    bool empty;
  };
  auto range_init = [](uint64_t lob, uint64_t sz, Range& r) {
    // range_init(): fails for size 0 or when lob + size - 1 wraps.
    if (sz == 0 || lob + sz - 1 < lob) return false;
    r = Range{lob, lob + sz - 1, false};
    return true;
  };
  Range nr{};
  if (hint) {
    if (!range_init(*hint, size, nr) || nr.lob < as_lob || nr.upb > as_upb) {
      return fail(Errno::Inval, fmt::format("can't add memory device [0x{:x}:0x{:x}], usable range for memory "
                                            "devices [0x{:x}:0x{:x}]",
                                            *hint, size, as_lob, as_size));
    }
  } else if (!range_init(as_lob, size, nr)) {
    return fail(Errno::Inval, "can't add memory device, device too big");
  }
  for (const MemoryDevice* d : memory_devices_by_address(p)) {
    const uint64_t t_lob = d->addr.value(), t_upb = d->addr.value() + d->size - 1;
    const bool overlaps = !nr.empty && t_lob <= nr.upb && nr.lob <= t_upb;
    if (overlaps) {
      if (hint) {
        return fail(Errno::Inval, fmt::format("address range conflicts with memory device id='{}'",
                                              d->id.empty() ? "(unnamed)" : d->id));
      }
      const uint64_t next = align_up_wrap(t_upb + 1, align);
      if (next == 0 || !range_init(next, size, nr)) {
        nr.empty = true;
        break;
      }
    } else if (t_lob > nr.upb) {
      break;
    }
  }
  if (nr.empty || nr.lob < as_lob || nr.upb > as_upb) {
    return fail(Errno::Inval,
                "could not find position in guest address space for memory device - memory fragmented due to "
                "alignments");
  }
  return nr.lob;
}

}  // namespace

Result<MemoryDevice> plug_memory_device(PlatformDescription& p, const MemoryDeviceRequest& req, bool hotplugged) {
  // QemuOpts: ids are unique among -device / device_add options.
  if (req.id && p.find_memory_device(*req.id)) {
    return fail(Errno::Inval, fmt::format("Duplicate ID '{}' for device", *req.id));
  }
  const MemoryBackend* backend = nullptr;
  if (req.memdev) {
    backend = p.find_backend(*req.memdev);
    if (!backend) return fail(Errno::Inval, fmt::format("Device '{}' not found", *req.memdev));
  }
  const bool is_nvdimm = req.kind == MemoryDeviceKind::Nvdimm;

  // Machine pre_plug hook (pc_memory_pre_plug / virt_memory_pre_plug).
  if (p.machine == MachineType::Pc || p.machine == MachineType::Q35) {
    if (!p.acpi_enabled || !p.memory_hotplug_enabled) {
      return fail(Errno::Inval, "memory hotplug is not enabled: missing acpi device or acpi disabled");
    }
    if (is_nvdimm && !p.nvdimm_enabled) return fail(Errno::Inval, "nvdimm is not enabled: missing 'nvdimm' in '-M'");
  } else if (p.machine == MachineType::Virt) {
    if (!p.memory_hotplug_enabled) return fail(Errno::Inval, "memory hotplug is not enabled: missing acpi-ged device");
    if (is_nvdimm && !p.nvdimm_enabled) return fail(Errno::Inval, "nvdimm is not enabled: add 'nvdimm=on' to '-M'");
  }

  // pc_dimm_pre_plug(): the slot.
  const int64_t slot_prop = req.slot.value_or(-1);
  if ((slot_prop < 0 || uint64_t(slot_prop) >= p.ram_slots) && slot_prop != -1) {
    return fail(Errno::Inval,
                fmt::format("invalid slot number {}, valid range is [0-{}]", slot_prop, p.ram_slots - 1));
  }
  if (p.ram_slots == 0) return fail(Errno::Inval, "no slots where allocated, please specify the 'slots' option");
  unsigned slot = 0;
  if (slot_prop != -1) {
    for (const MemoryDevice& d : p.memory_devices) {
      if (d.slot == uint64_t(slot_prop)) return fail(Errno::Inval, fmt::format("slot {} is busy", slot_prop));
    }
    slot = unsigned(slot_prop);
  } else {
    // find_first_zero_bit() over the realized devices' slots.
    std::vector<unsigned> used;
    for (const MemoryDevice& d : p.memory_devices) used.push_back(d.slot);
    std::sort(used.begin(), used.end());
    uint64_t candidate = 0;
    for (unsigned u : used) {
      if (u == candidate) ++candidate;
      else if (u > candidate) break;
    }
    if (candidate >= p.ram_slots) return fail(Errno::Inval, "no free slots available");
    slot = unsigned(candidate);
  }

  // memory_device_pre_plug(): the device's memory region (nvdimm_prepare_memory_region for an NVDIMM).
  if (!backend) return fail(Errno::Inval, "'memdev' property must be set");
  const uint64_t label = is_nvdimm ? req.label_size.value_or(0) : 0;
  uint64_t region_size = backend->size;
  if (is_nvdimm) {
    const uint64_t pmem = align_down(backend->size - label, backend->align);  // wraps like QEMU's when too small
    if (backend->size <= label || pmem == 0) {
      return fail(Errno::Inval, fmt::format("the size of memdev {} (0x{:x}) is too small to contain nvdimm label "
                                            "(0x{:x}) and aligned PMEM (0x{:x})",
                                            backend->id, backend->size, label, backend->align));
    }
    region_size = pmem;
  }
  const std::optional<uint64_t> hint =
      req.addr && req.addr->value() != 0 ? std::optional<uint64_t>(req.addr->value()) : std::nullopt;
  SPM_TRY_ASSIGN(const uint64_t addr, memory_device_get_free_addr(p, hint, backend->align, region_size));

  // pc_dimm_realize(): the backend must be free, the node must exist.
  if (backend->in_use) return fail(Errno::Inval, fmt::format("can't use already busy memdev: {}", backend->id));
  const uint64_t node = req.node.value_or(0);
  const uint64_t nb_nodes = p.numa_nodes.size();
  if ((nb_nodes > 0 && node >= nb_nodes) || (nb_nodes == 0 && node != 0)) {
    return fail(Errno::Inval, fmt::format("'DIMM property node has value {}' which exceeds the number of numa nodes: {}",
                                          node, nb_nodes ? nb_nodes : 1));
  }

  MemoryDevice d;
  d.kind = req.kind;
  d.id = req.id.value_or("");
  d.memdev = backend->id;
  d.addr = PhysAddr(addr);
  d.size = region_size;
  d.slot = slot;
  d.node = unsigned(node);
  d.hotplugged = hotplugged;
  d.backend_size = backend->size;
  d.label_size = label;
  d.align = backend->align;
  for (MemoryBackend& b : p.backends) {
    if (b.id == d.memdev) b.in_use = true;
  }
  p.memory_devices.push_back(d);
  return d;
}

Result<const MemoryDevice*> check_memory_device_unplug(const PlatformDescription& p, std::string_view id) {
  const MemoryDevice* d = p.find_memory_device(id);
  if (!d) return fail(Errno::Inval, fmt::format("Device '{}' not found", id));
  if (p.machine == MachineType::Pc || p.machine == MachineType::Q35) {
    if (!p.acpi_enabled || !p.memory_hotplug_enabled) {
      return fail(Errno::Inval, "memory hotplug is not enabled: missing acpi device or acpi disabled");
    }
  }
  if (d->kind == MemoryDeviceKind::Nvdimm) {
    return fail(Errno::Inval, "nvdimm device hot unplug is not supported yet.");
  }
  return d;
}

Result<MemoryDevice> remove_memory_device(PlatformDescription& p, std::string_view id) {
  SPM_TRY(check_memory_device_unplug(p, id));
  auto it = std::find_if(p.memory_devices.begin(), p.memory_devices.end(),
                         [&](const MemoryDevice& d) { return !d.id.empty() && d.id == id; });
  MemoryDevice d = *it;
  p.memory_devices.erase(it);
  for (MemoryBackend& b : p.backends) {
    if (b.id == d.memdev) b.in_use = false;
  }
  return d;
}

}  // namespace sparsemem
