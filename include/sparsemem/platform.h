// Platform: a machine's physical address space as firmware hands it to Linux (QEMU 7.2 pc/q35/virt options
// or a plain memory map, kernel command-line edits applied). Pure functions over values; no Machine, no state.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sparsemem/arch.h"
#include "sparsemem/memblock.h"
#include "sparsemem/platform_cmdline.h"
#include "sparsemem/platform_e820.h"
#include "sparsemem/resource.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

// Error convention of this layer:
//   Errno::Inval    QEMU (or the plain-map parser) refuses the input. For QEMU, `message` is exactly what
//                   QEMU prints on stderr after its "qemu-system-x86_64: " prefix, including the option
//                   location ("-device nvdimm,...: ") where QEMU prints one and hint lines after a '\n'.
//                   Runtime calls (plug/unplug) return QEMU's bare text, which is QMP's "desc".
//   Errno::Range    plain map: an address beyond the architecture's physical limit, a node id too large.
//   Errno::NotSupp  the input is valid for QEMU but outside what this model reproduces; the message starts
//                   with "sparsemem: " so it is never mistaken for QEMU's own words.

enum class MachineType : uint8_t { Pc, Q35, Virt, Plain };
std::string_view machine_type_name(MachineType m);
// "qemu-system-x86_64" or "qemu-system-aarch64": the prefix QEMU puts before its error lines.
std::string_view qemu_program_name(MachineType m);

// ---- Firmware resources (/proc/iomem at boot) ---------------------------------------------------------

// Kernel resource flag bits and descriptors: the iomem tree's definitions (resource.h), spelled as
// plain words here because firmware tables carry them as numbers.
namespace firmware {
inline constexpr uint64_t IORESOURCE_MEM = sparsemem::IORESOURCE_MEM.value();
inline constexpr uint64_t IORESOURCE_PREFETCH = sparsemem::IORESOURCE_PREFETCH.value();
inline constexpr uint64_t IORESOURCE_READONLY = sparsemem::IORESOURCE_READONLY.value();
inline constexpr uint64_t IORESOURCE_WINDOW = sparsemem::IORESOURCE_WINDOW.value();
inline constexpr uint64_t IORESOURCE_SYSRAM = sparsemem::IORESOURCE_SYSRAM.value();
inline constexpr uint64_t IORESOURCE_BUSY = sparsemem::IORESOURCE_BUSY.value();
inline constexpr uint64_t IORESOURCE_SYSTEM_RAM = sparsemem::IORESOURCE_SYSTEM_RAM.value();
using sparsemem::IoresDesc;
}  // namespace firmware

// Who creates a boot resource; lets a consumer pick, e.g., only the e820-derived ones.
enum class ResourceOrigin : uint8_t {
  E820,         // an e820 entry (e820__reserve_resources and its _late half)
  MemoryMap,    // a memblock range on a machine without e820 (arm64 request_standard_resources, plain maps)
  KernelImage,  // "Kernel code/rodata/data/bss" of the modelled kernel image
  Rom,          // "Video ROM", "System ROM" (probe_roms)
  PciWindow,    // host bridge windows from ACPI _CRS: "PCI Bus 0000:00"
  Chipset,      // "IOAPIC 0", "HPET 0", "Local APIC", "PCI MMCONFIG 0000 [bus 00-ff]"
  Device,       // claimed by boot-time drivers: "PNP0103:00", "pnp 00:05", "0000:00:1f.2"
  RamBuffer,    // "RAM buffer" (e820__reserve_resources_late)
};

// One /proc/iomem line present before any module or hotplug activity. Lists are in /proc/iomem order
// (pre-order, siblings ascending), so `parent` always indexes an earlier element.
struct FirmwareResource {
  PhysRange range;  // inclusive end, as /proc/iomem prints it
  std::string name;
  unsigned depth = 0;  // 0 = top level
  int parent = -1;     // index of the parent in the same list, -1 at top level
  uint64_t flags = 0;  // firmware::IORESOURCE_* bits
  firmware::IoresDesc desc = firmware::IoresDesc::None;
  ResourceOrigin origin = ResourceOrigin::E820;

  bool operator==(const FirmwareResource&) const = default;
};

// ---- Memory backends and devices (QEMU -object / -device, object_add / device_add) ---------------------

enum class BackendKind : uint8_t { Ram, File, Memfd };

struct MemoryBackend {
  std::string id;
  BackendKind kind = BackendKind::Ram;
  uint64_t size = 0;   // bytes
  uint64_t align = 0;  // QEMU's memory_region_get_alignment(): placement alignment of a DIMM on it
  bool share = false;
  std::string mem_path;
  bool in_use = false;  // host_memory_backend_is_mapped(): a device uses it
};

enum class MemoryDeviceKind : uint8_t { Dimm, Nvdimm };
std::string_view memory_device_kind_name(MemoryDeviceKind k);  // "dimm" / "nvdimm" as QMP reports it

// A device_add / -device request before QEMU assigns slot and address.
struct MemoryDeviceRequest {
  MemoryDeviceKind kind = MemoryDeviceKind::Dimm;
  std::optional<std::string> id;
  std::optional<std::string> memdev;
  std::optional<PhysAddr> addr;       // 0 means "assign", as in QEMU
  std::optional<int64_t> slot;        // -1 means "assign"
  std::optional<uint64_t> node;
  std::optional<uint64_t> label_size;  // nvdimm only; bytes
  std::string opts_text;              // the option string as given, for QEMU's "-device <opts>: " location
};

struct MemoryDevice {
  MemoryDeviceKind kind = MemoryDeviceKind::Dimm;
  std::string id;      // may be empty (QEMU allows anonymous devices)
  std::string memdev;  // backend id
  PhysAddr addr;
  uint64_t size = 0;  // the device's region: the backend size (DIMM) or the persistent area (NVDIMM)
  unsigned slot = 0;
  unsigned node = 0;
  bool hotplugged = false;  // added by device_add after boot (QMP "hotplugged")
  uint64_t backend_size = 0;
  uint64_t label_size = 0;  // NVDIMM label area, taken from the end of the backend; 0 = label-less
  uint64_t align = 0;

  PhysRange range() const { return PhysRange{addr, PhysAddr(addr.value() + size - 1)}; }
  // NFIT facts of an NVDIMM (QEMU hw/acpi/nvdimm.c): handle = slot + 1, serial = 0x123456 + slot.
  uint32_t nfit_handle() const { return slot + 1; }
  uint32_t nfit_serial() const { return 0x123456 + slot; }
};

// ---- NUMA, SRAT, ACPI memory devices ---------------------------------------------------------------------

struct NumaNode {
  unsigned id = 0;
  uint64_t mem_size = 0;  // bytes of boot RAM (its memdev's size)
  std::string memdev;     // empty for auto-created or memdev-less nodes
  std::vector<unsigned> cpus;
};

// One enabled SRAT memory affinity structure, in table order (QEMU build_srat()).
struct SratMemoryAffinity {
  PhysAddr start;
  uint64_t size = 0;
  unsigned proximity = 0;
  bool hotpluggable = false;
  bool non_volatile = false;
  bool operator==(const SratMemoryAffinity&) const = default;
};

// One \_SB.MHPC.MPxx device (PNP0C80) as Linux enumerates it at boot.
struct AcpiMemorySlot {
  unsigned slot = 0;
  std::string name;    // "PNP0C80:00"
  std::string path;    // "\_SB_.MHPC.MP00"
  unsigned status = 0;  // _STA: 15 while a pc-dimm (not an NVDIMM) occupies the slot, else 0
  std::string device_id;  // the occupying pc-dimm's id, empty otherwise
};

// ---- The description -------------------------------------------------------------------------------------

struct DeviceMemoryRegion {
  PhysAddr base;
  uint64_t size = 0;  // 0: no device memory (maxmem == memory)
  bool present() const { return size != 0; }
  PhysRange range() const { return PhysRange{base, PhysAddr(base.value() + size - 1)}; }
};

// What boot feeds to memblock, per architecture's rules: x86 takes usable e820 entries after the kernel's
// edits (byte-exact; memblock_trim_memory is the boot layer's job), arm64 the DT/plain-map ranges.
enum class BootMemoryKind : uint8_t {
  Ram,               // memblock.memory
  Nomap,             // memblock.memory with MEMBLOCK_NOMAP (arm64)
  Reserved,          // firmware-reserved, not RAM (e820 reserved, ACPI, NVS, unusable)
  Persistent,        // e820 type 7
  PersistentLegacy,  // e820 type 12 (memmap=nn!ss) or a plain map's pmem line
};

struct BootMemoryRegion {
  PhysRange range;
  BootMemoryKind kind = BootMemoryKind::Ram;
  unsigned node = 0;
  bool operator==(const BootMemoryRegion&) const = default;
};

struct PlatformDescription {
  MachineType machine = MachineType::Pc;
  const ArchProfile* arch = &kX86_64;
  unsigned phys_bits = 40;  // CPU physical address bits (x86 iomem root: 0 .. 2^phys_bits - 1)
  bool cpu_has_pse = true;  // x86 CPUID PSE: 2 MiB vmemmap and direct-map pages
  unsigned nr_cpus = 1;

  // -m: boot RAM, maximum with device memory, hotplug slots. Plain maps: ram_size = sum of RAM lines.
  uint64_t ram_size = 0;
  uint64_t maxram_size = 0;
  uint64_t ram_slots = 0;
  // x86 RAM split (QEMU pc_init1 / pc_q35_init); arm64 virt has all RAM at 1 GiB (below_4g unused).
  uint64_t below_4g_mem_size = 0;
  uint64_t above_4g_mem_size = 0;
  PhysAddr above_4g_mem_start{uint64_t{1} << 32};
  bool nvdimm_enabled = false;
  bool acpi_enabled = true;
  bool memory_hotplug_enabled = false;  // an ACPI hotplug device exists (pc/q35 ACPI, virt GED)
  uint64_t firmware_reserved_size = 0;  // SeaBIOS table zone below L (spec §4.2 "R")

  DeviceMemoryRegion device_memory;        // where DIMMs and NVDIMMs live
  uint64_t device_memory_capacity = 0;    // bytes that may be plugged (QEMU: maxmem - memory)

  // e820 (x86 only): what the firmware handed over ("BIOS-e820:" lines, sanitized), the userdef table
  // ("user:" lines; empty unless mem=/memmap= was given) and the kernel's table after trim_bios_range(),
  // which /proc/iomem and memblock are built from.
  E820Table e820_firmware;
  E820Table e820_user;
  bool e820_userdef = false;
  E820Table e820_kernel;
  // The kernel's e820 dmesg lines in order, without timestamps: the BIOS map, the command-line edits,
  // the user map, trim_bios_range()'s edits, the PCI gap and the late "reserve RAM buffer" lines.
  std::vector<std::string> e820_log;

  std::vector<BootMemoryRegion> memory_map;  // sorted, disjoint
  std::vector<FirmwareResource> iomem;       // /proc/iomem before modules and hotplug

  std::vector<MemoryBackend> backends;     // creation order
  std::vector<MemoryDevice> memory_devices;  // realize order (cold-plug in argv order, then device_add)
  std::vector<NumaNode> numa_nodes;          // by id; empty when QEMU builds no SRAT
  std::vector<SratMemoryAffinity> srat;      // empty without NUMA

  // The kernel's own boot-time reservations and allocations (x86 pc/q35 with the modelled image).
  std::optional<BootReservations> boot_reservations;

  KernelCmdline cmdline;
  std::vector<std::string> warnings;  // QEMU's warnings, and what the model left out

  const MemoryDevice* find_memory_device(std::string_view id) const;
  const MemoryBackend* find_backend(std::string_view id) const;
};

// ---- Building a description ------------------------------------------------------------------------------

struct PlatformOptions {
  // pc/q35: the x86 profile (default x86-64, 4-level). virt: the arm64 profile (default arm64-4k-48).
  const ArchProfile* arch = nullptr;
  // Add the Debian 6.1.0-56-amd64 kernel image ranges (trace a_baseline, `nokaslr`) under System RAM.
  bool kernel_image_resources = true;
};

// Builds the machine QEMU 7.2 would build from `argv` (already shell-split; argv[0] may be the program
// name) and boots the kernel command line `kernel_cmdline` (default: the -append value) against it.
// Accepts -machine/-M pc|q35|virt (and their -7.2 names) with nvdimm=, max-ram-below-4g=, hpet=,
// acpi=, highmem=, memory-backend=; -m SIZE[,slots=N,maxmem=M]; -smp; -cpu (phys-bits=, arm64 PA size);
// -numa node|cpu|dist; -object memory-backend-ram|file|memfd; -device pc-dimm|nvdimm; and ignores
// options that do not shape memory (-display, -nodefaults, -no-reboot, -kernel, -initrd, -append,
// -chardev, -serial, -qmp, -monitor, ...). Cold-plugged devices are realized in argv order.
// Returns: Inval with QEMU's error text when QEMU would refuse to start; NotSupp for valid options the
// model does not reproduce (other machine types, KVM, virtio memory devices).
Result<PlatformDescription> platform_from_qemu(std::span<const std::string> argv,
                                               std::optional<std::string_view> kernel_cmdline = std::nullopt,
                                               const PlatformOptions& options = {});

// Builds a description from a plain memory map, for machines no QEMU option describes. One item a line;
// '#' starts a comment. Ranges are START-END (inclusive end, as /proc/iomem) or START+SIZE, numbers in
// C notation (0x.. or decimal) with an optional K/M/G/T suffix:
//   ram      0x40000000-0x7fffffff node=0   system RAM (node= optional, default 0)
//   nomap    0x80000000+2M                  RAM the kernel must not map (arm64 MEMBLOCK_NOMAP; arm64 only)
//   reserved 0xfec00000+4K                  firmware-reserved, not RAM
//   pmem     0x100000000+1G node=0          legacy persistent memory (x86: e820 type 12)
//   hotplug  0x200000000+16G slots=4         device-memory window for memory devices (at most one)
// Requires: `arch` outlives the description (the profiles of arch.h do; p.arch points at it).
// Every range must be page-aligned at both ends (arch page size), lie within the architecture's physical
// address limit and overlap no other line. On x86 the map becomes an e820 table and the kernel command
// line edits it as on a PC; on arm64 mem= limits the amount of RAM.
// Returns: Inval naming the line ("line 3: ...") for syntax, alignment, overlap and missing RAM; Range
// for an address beyond the physical limit or a node id >= MAX_NUMNODES (1024).
Result<PlatformDescription> platform_from_memory_map(std::string_view text, const ArchProfile& arch,
                                                     std::string_view kernel_cmdline = {});

// ---- Runtime changes (QMP / HMP) --------------------------------------------------------------------------
// Each validates everything first and changes nothing on error.

// Parses "memory-backend-ram,id=m1,size=1G" (-object / HMP object_add syntax; QMP object-add arguments can
// be written this way too). Returns: Inval with QEMU's text.
Result<MemoryBackend> parse_memory_backend(std::string_view opts);
// object-add. Returns: Inval "attempt to add duplicate property 'm1' to object (type 'container')".
Result<void> add_memory_backend(PlatformDescription& p, MemoryBackend backend);
// object-del. Returns: Inval when unknown or in use by a device.
Result<void> remove_memory_backend(PlatformDescription& p, std::string_view id);

// Parses "pc-dimm,id=d1,memdev=m1[,addr=..,slot=..,node=..]" or "nvdimm,...,label-size=128k".
// Returns: Inval with QEMU's text; NotSupp for other memory-device drivers (virtio-mem-pci, ...).
Result<MemoryDeviceRequest> parse_memory_device(std::string_view opts);
// device_add: QEMU's pre_plug (slot, then address: first fit in the device-memory window at the backend's
// alignment) and realize checks (busy memdev, node), in QEMU's order. On success records the device
// (hotplugged as given) and marks its backend in use. Returns: Inval with QEMU's bare message.
Result<MemoryDevice> plug_memory_device(PlatformDescription& p, const MemoryDeviceRequest& req, bool hotplugged);
// device_del's synchronous checks. Returns: Inval "Device 'x' not found",
// "nvdimm device hot unplug is not supported yet.".
Result<const MemoryDevice*> check_memory_device_unplug(const PlatformDescription& p, std::string_view id);
// Completes an unplug (after the guest ejected): frees slot, address range and backend.
Result<MemoryDevice> remove_memory_device(PlatformDescription& p, std::string_view id);

// ---- Derived views ---------------------------------------------------------------------------------------

// query-memory-devices order: ascending address.
std::vector<const MemoryDevice*> memory_devices_by_address(const PlatformDescription& p);
// The PNP0C80 devices Linux finds at boot (pc/q35 with slots); empty otherwise.
std::vector<AcpiMemorySlot> acpi_memory_slots(const PlatformDescription& p);
// Linux's "ACPI: SRAT: Node N PXM P [mem 0x..-0x..][ hotplug][ non-volatile]" lines (without the
// timestamp), nodes numbered in order of first appearance as acpi_map_pxm_to_node() does (CPUs first).
std::vector<std::string> srat_memory_lines(const PlatformDescription& p);

}  // namespace sparsemem
