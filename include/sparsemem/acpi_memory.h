// ACPI memory devices (PNP0C80, drivers/acpi/acpi_memhotplug.c and the eject path of
// drivers/acpi/scan.c): one device per QEMU DIMM slot. Not locked: the owner serialises calls.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sparsemem/machine.h"
#include "sparsemem/memory_block.h"
#include "sparsemem/platform.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

// One \_SB.MHPC.MPxx device as Linux sees it.
struct AcpiMemoryDeviceState {
  unsigned slot = 0;
  std::string name;  // "PNP0C80:00"
  std::string path;  // "\_SB_.MHPC.MP00"
  unsigned status = 0;               // _STA: 15 while a pc-dimm occupies the slot, else 0
  std::optional<PhysRange> range;    // _CRS of the occupying DIMM
  unsigned node = 0;                 // _PXM of the occupying DIMM
  bool enabled = false;              // acpi_memory_enable_device() bound the range (info->enabled)
  std::optional<MemoryGroupId> group;  // the static memory group of the device's memory
};

// The ACPI memory hotplug driver over every PNP0C80 device of a platform.
// INV-ACPI-1: enabled implies status == 15 and a range.
class AcpiMemoryHotplug {
 public:
  // The devices of a platform at power-on, all empty; occupied slots come through device_add().
  explicit AcpiMemoryHotplug(const PlatformDescription& platform);

  const std::vector<AcpiMemoryDeviceState>& devices() const { return m_devices; }
  const AcpiMemoryDeviceState* find(std::string_view name) const;
  const AcpiMemoryDeviceState* find_slot(unsigned slot) const;

  // A DIMM occupies `slot` (boot enumeration or an insertion notify): _STA reads 15 and
  // acpi_memory_device_add() runs: one static memory group of the DIMM's pages on its node, then
  // add_memory(group, start, size, MHP_NID_IS_MGID [| MHP_MEMMAP_ON_MEMORY when the kernel would
  // use it]) — auto-onlining as the machine's auto_online_blocks says. -EEXIST from add_memory
  // still binds the device, as in 6.1.
  // Logs "acpi PNP0C80:NN: Memory device configured by ACPI" (dev_dbg) on success; on failure
  // "add_memory failed" and "acpi_memory_enable_device() error" (dev_err), unregisters the group
  // and returns -EINVAL (the device stays present and unbound, and can still be ejected).
  // Return: also -ENOENT for a slot without a device.
  Result<void> device_add(Machine& machine, unsigned slot, PhysRange range, unsigned node);

  // Boot enumeration: device_add() for every cold-plugged DIMM of the platform, in realize order.
  // Return: the first error; later DIMMs are still added (each device binds on its own).
  Result<void> add_cold_plugged(Machine& machine, const PlatformDescription& platform);

  // Ejection (acpi_scan_hot_remove(): the eject file, or QEMU's eject request). Offlines every
  // memory block bound to the device in two passes as acpi_scan_try_to_offline() does; when a
  // block refuses, onlines again the blocks it offlined (movable ones as online_movable, others as
  // online_kernel) and returns -EBUSY ("Offline failed."). Otherwise removes the memory
  // (remove_memory per range, then the group), evaluates _EJ0 and the slot reads _STA 0.
  // Return: -ENODEV for a slot without a present device (acpi_eject_store()); -EBUSY as above.
  Result<void> eject(Machine& machine, unsigned slot);

  // The memory blocks bound to the device (its physical_node links), in link order: the blocks of
  // an enabled range in ascending id order.
  std::vector<BlockId> physical_nodes(const Machine& machine, unsigned slot) const;

  // mhp_supports_memmap_on_memory(size) as acpi_memory_enable_device() asks it (mm/memory_hotplug.c,
  // 6.1): memmap_on_memory enabled, exactly one memory block, a memmap that fills whole PMDs and
  // leaves a pageblock-aligned remainder.
  static bool memmap_on_memory_applies(const Machine& machine, uint64_t size);

  void check_invariants(InvariantReport& report) const;

 private:
  AcpiMemoryDeviceState* find_slot_mut(unsigned slot);
  std::vector<AcpiMemoryDeviceState> m_devices;
};

}  // namespace sparsemem
