// ACPI memory hotplug driver: adds a DIMM's memory when its PNP0C80 device appears, binds the
// memory blocks, and offlines and removes them on ejection (acpi_memhotplug.c, scan.c, 6.1).
#include "sparsemem/acpi_memory.h"

#include <algorithm>

#include <fmt/core.h>

namespace sparsemem {

AcpiMemoryHotplug::AcpiMemoryHotplug(const PlatformDescription& platform) {
  for (const AcpiMemorySlot& s : acpi_memory_slots(platform)) {
    AcpiMemoryDeviceState d;
    d.slot = s.slot;
    d.name = s.name;
    d.path = s.path;
    m_devices.push_back(std::move(d));
  }
}

const AcpiMemoryDeviceState* AcpiMemoryHotplug::find(std::string_view name) const {
  for (const AcpiMemoryDeviceState& d : m_devices)
    if (d.name == name) return &d;
  return nullptr;
}

const AcpiMemoryDeviceState* AcpiMemoryHotplug::find_slot(unsigned slot) const {
  for (const AcpiMemoryDeviceState& d : m_devices)
    if (d.slot == slot) return &d;
  return nullptr;
}

AcpiMemoryDeviceState* AcpiMemoryHotplug::find_slot_mut(unsigned slot) {
  return const_cast<AcpiMemoryDeviceState*>(std::as_const(*this).find_slot(slot));
}

bool AcpiMemoryHotplug::memmap_on_memory_applies(const Machine& m, uint64_t size) {
  const ArchProfile& arch = m.arch();
  const uint64_t vmemmap_bytes = (size >> arch.page_shift) * STRUCT_PAGE_SIZE;
  const uint64_t pageblock_bytes = arch.pageblock_nr_pages().value() << arch.page_shift;
  return m.hotplug_config().memmap_on_memory && arch.memmap_on_memory_possible && size == m.memory_block_size() &&
         vmemmap_bytes % arch.pmd_size() == 0 && (size - vmemmap_bytes) % pageblock_bytes == 0;
}

Result<void> AcpiMemoryHotplug::add_cold_plugged(Machine& m, const PlatformDescription& platform) {
  Result<void> first{};
  for (const MemoryDevice& d : platform.memory_devices)
    if (d.kind == MemoryDeviceKind::Dimm && !d.hotplugged)
      if (auto r = device_add(m, d.slot, d.range(), d.node); !r && first) first = r;
  return first;
}

Result<void> AcpiMemoryHotplug::device_add(Machine& m, unsigned slot, PhysRange range, unsigned node) {
  AcpiMemoryDeviceState* d = find_slot_mut(slot);
  if (!d) return fail(Errno::NoEnt, fmt::format("no ACPI memory device for slot {}", slot));
  d->status = 15;
  d->range = range;
  d->node = node;
  d->enabled = false;

  // acpi_memory_enable_device(): one static group for the whole device, then __add_memory().
  const uint64_t size = range.size();
  const NrPages pages((size + m.arch().page_size() - 1) >> m.arch().page_shift);
  auto group = m.register_static_memory_group(node, pages);
  if (!group) {
    m.log().log(LogLevel::Err, "acpi {}: acpi_memory_enable_device() error", d->name);
    return tl::unexpected(group.error());
  }
  MhpFlags flags = MHP_NID_IS_MGID;
  if (memmap_on_memory_applies(m, size)) flags = flags | MHP_MEMMAP_ON_MEMORY;
  auto added = m.add_memory(static_cast<unsigned>(group->value()), range.start, size, flags);
  // "If the memory block has been used by the kernel, add_memory() returns -EEXIST": the device is
  // bound all the same.
  if (added || added.error().code == Errno::Exist) {
    d->enabled = true;
    d->group = *group;
    m.log().log(LogLevel::Debug, "acpi {}: Memory device configured by ACPI", d->name);
    return {};
  }
  m.log().log(LogLevel::Err, "acpi {}: add_memory failed", d->name);
  m.log().log(LogLevel::Err, "acpi {}: acpi_memory_enable_device() error", d->name);
  (void)m.unregister_memory_group(*group);
  return fail(Errno::Inval, added.error().message);
}

std::vector<BlockId> AcpiMemoryHotplug::physical_nodes(const Machine& m, unsigned slot) const {
  const AcpiMemoryDeviceState* d = find_slot(slot);
  if (!d || !d->enabled || !d->range) return {};
  return m.memory_blocks_in(*d->range);
}

Result<void> AcpiMemoryHotplug::eject(Machine& m, unsigned slot) {
  AcpiMemoryDeviceState* d = find_slot_mut(slot);
  // acpi_eject_store(): a device without a scan handler (not present) cannot be ejected.
  if (!d || d->status == 0) return fail(Errno::NoDev, "no such device");

  // acpi_scan_try_to_offline(): first pass offlines what it can, the second retries the failures
  // and stops at the first refusal; then everything the first pass offlined is onlined again.
  const std::vector<BlockId> blocks = physical_nodes(m, slot);
  std::vector<std::pair<BlockId, OnlineType>> put_online;
  std::vector<BlockId> failed;
  for (const BlockId id : blocks) {
    const MemoryBlock* b = m.memory_blocks().find(id);
    const bool was_online = b && b->state == MemoryBlockState::Online;
    const OnlineType back = b && b->zone == ZoneType::Movable ? OnlineType::OnlineMovable : OnlineType::OnlineKernel;
    if (m.device_offline(id)) {
      if (was_online) put_online.emplace_back(id, back);
    } else {
      failed.push_back(id);
    }
  }
  for (const BlockId id : failed) {
    if (m.device_offline(id)) continue;
    m.log().log(LogLevel::Warn, "memory memory{}: Offline failed.", id.value());
    for (const auto& [bid, type] : put_online) (void)m.device_online(bid, type);
    return fail(Errno::Busy, fmt::format("memory{} could not be offlined", id.value()));
  }

  // acpi_bus_trim() -> acpi_memory_device_remove(): remove the enabled range, then the group.
  if (d->enabled && d->range) {
    if (auto r = m.remove_memory(d->range->start, d->range->size()); !r) return r;
  }
  if (d->group) (void)m.unregister_memory_group(*d->group);
  // _EJ0: the slot is empty from now on.
  d->status = 0;
  d->range.reset();
  d->enabled = false;
  d->group.reset();
  return {};
}

void AcpiMemoryHotplug::check_invariants(InvariantReport& report) const {
  for (const AcpiMemoryDeviceState& d : m_devices)
    if (d.enabled && (d.status != 15 || !d.range))
      report.fail("INV-ACPI-1", "{} is enabled with _STA {} and {} range", d.name, d.status, d.range ? "a" : "no");
}

}  // namespace sparsemem
