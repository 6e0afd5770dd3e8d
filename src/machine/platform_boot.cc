// Booting a Machine from a PlatformDescription: the platform's memory map becomes memblock (trimmed
// to whole pages, as memblock_trim_memory does) and its boot resources become /proc/iomem.
#include "sparsemem/machine.h"
#include "sparsemem/platform.h"

namespace sparsemem {

Result<MachineConfig> Machine::config_from_platform(const PlatformDescription& platform, const Behaviour& behaviour) {
  MachineConfig cfg;
  cfg.arch = platform.arch;
  cfg.behaviour = behaviour;
  cfg.cpu_phys_bits = platform.phys_bits;
  cfg.cpu_has_pse = platform.cpu_has_pse;
  // The memory-hotplug boot parameters (mm/memory_hotplug.c, drivers/base/memory.c).
  const KernelCmdline& cmd = platform.cmdline;
  if (cmd.memhp_default_state) {
    switch (*cmd.memhp_default_state) {
      case MemhpDefaultState::Offline: cfg.hotplug.auto_online_blocks = OnlineType::Offline; break;
      case MemhpDefaultState::Online: cfg.hotplug.auto_online_blocks = OnlineType::Online; break;
      case MemhpDefaultState::OnlineKernel: cfg.hotplug.auto_online_blocks = OnlineType::OnlineKernel; break;
      case MemhpDefaultState::OnlineMovable: cfg.hotplug.auto_online_blocks = OnlineType::OnlineMovable; break;
    }
  }
  if (cmd.online_policy)
    cfg.hotplug.online_policy =
        *cmd.online_policy == MemhpOnlinePolicy::AutoMovable ? OnlinePolicy::AutoMovable : OnlinePolicy::ContigZones;
  if (cmd.memmap_on_memory) cfg.hotplug.memmap_on_memory = *cmd.memmap_on_memory;
  if (cmd.auto_movable_ratio) cfg.hotplug.auto_movable_ratio = *cmd.auto_movable_ratio;
  cfg.hotplug.movable_node = cmd.movable_node;
  const ArchProfile& arch = *platform.arch;
  const uint64_t page = arch.page_size();
  for (const BootMemoryRegion& r : platform.memory_map) {
    if (r.kind != BootMemoryKind::Ram && r.kind != BootMemoryKind::Nomap) continue;
    const uint64_t start = (r.range.start.value() + page - 1) & ~(page - 1);
    const uint64_t end = (r.range.last.value() + 1) & ~(page - 1);
    if (end <= start) continue;
    cfg.memory.regions.push_back(BootRegion{PhysAddr(start), end - start, r.node,
                                            r.kind == BootMemoryKind::Nomap ? BootMemKind::NoMap
                                                                            : BootMemKind::Usable});
  }
  cfg.boot_reservations = platform.boot_reservations;
  for (const FirmwareResource& f : platform.iomem) {
    cfg.iomem.push_back(BootResource{f.range.start, f.range.last, f.name, f.depth, ResourceFlags(f.flags), f.desc});
  }
  return cfg;
}

Result<std::unique_ptr<Machine>> Machine::boot(const PlatformDescription& platform, const Behaviour& behaviour) {
  SPM_TRY_ASSIGN(MachineConfig cfg, config_from_platform(platform, behaviour));
  return boot(std::move(cfg));
}

}  // namespace sparsemem
