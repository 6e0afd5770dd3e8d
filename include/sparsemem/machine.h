// Machine: one booted Linux 6.1 memory model — arch profile, behaviour, vmemmap, section table,
// nodes and zones, kernel log — and the hotplug lock that serialises every writer. Readers
// (pfn_valid, pfn_to_online_page) are lock-free and may run on any thread while hotplug runs.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sparsemem/arch.h"
#include "sparsemem/behaviour.h"
#include "sparsemem/check.h"
#include "sparsemem/invariant.h"
#include "sparsemem/klog.h"
#include "sparsemem/memblock.h"
#include "sparsemem/memmap.h"
#include "sparsemem/resource.h"
#include "sparsemem/result.h"
#include "sparsemem/section.h"
#include "sparsemem/units.h"
#include "sparsemem/zone.h"

namespace sparsemem {

struct PlatformDescription;

// What one range of the boot memory map is (memblock's view after firmware parsing).
enum class BootMemKind : uint8_t {
  Usable,    // memblock.memory, freed to the buddy at boot
  Reserved,  // memblock.memory + memblock.reserved (kernel image, firmware tables): PG_reserved
  NoMap,     // memblock.memory with MEMBLOCK_NOMAP (arm64 UEFI runtime regions): PG_reserved, not mapped
};
const char* boot_mem_kind_name(BootMemKind k);

struct BootRegion {
  PhysAddr start;
  uint64_t size = 0;
  unsigned nid = 0;
  BootMemKind kind = BootMemKind::Usable;
};

// The boot memory map: any order; validated by Machine::boot().
struct BootMemoryMap {
  std::vector<BootRegion> regions;
};

// A boot-time /proc/iomem entry (firmware map, kernel image, ROMs, bridges), inserted in order.
struct BootResource {
  PhysAddr start;
  PhysAddr end;  // inclusive
  std::string name;
  unsigned depth = 0;
  ResourceFlags flags = IORESOURCE_MEM;
  IoresDesc desc = IoresDesc::None;
};

struct MachineConfig {
  const ArchProfile* arch = &kX86_64;
  Behaviour behaviour = kLinux61;
  bool cpu_has_pse = true;     // x86 CPUID PSE: 2 MiB vmemmap mappings
  bool hypervisor = true;      // X86_FEATURE_HYPERVISOR (QEMU guests): memory block size probing
  uint64_t platform_block_size = 0;  // set_memory_block_size_order() by a platform, 0 = none
  unsigned cpu_phys_bits = 0;  // x86 CPU-reported physical bits (iomem root end); 0: MAX_PHYSMEM_BITS
  BootMemoryMap memory;
  // Boot /proc/iomem. Empty: one "System RAM" entry per memblock.memory range, as arm64's
  // request_standard_resources() makes them.
  std::vector<BootResource> iomem;
};

// A memory block created at boot (drivers/base/memory.c memory_dev_init, spec §4.1 step 7).
struct BootBlock {
  BlockId id;
  unsigned nid = 0;
  bool single_zone = false;  // valid_zones reads the zone name, else "none"
  ZoneType zone = ZoneType::Normal;
};


class SPM_CAPABILITY("mutex") HotplugLock {
 public:
  void lock() SPM_ACQUIRE() { m_mutex.lock(); }
  void unlock() SPM_RELEASE() { m_mutex.unlock(); }

 private:
  std::mutex m_mutex;
};

// Scoped holder of the hotplug lock, visible to clang's thread-safety analysis.
class SPM_TSA(scoped_lockable) HotplugGuard {
 public:
  explicit HotplugGuard(HotplugLock& lock) SPM_ACQUIRE(lock) : m_lock(lock) { m_lock.lock(); }
  ~HotplugGuard() SPM_RELEASE() { m_lock.unlock(); }
  HotplugGuard(const HotplugGuard&) = delete;
  HotplugGuard& operator=(const HotplugGuard&) = delete;

 private:
  HotplugLock& m_lock;
};

class Machine {
 public:
  // Boots the memory map (spec §4.1). Return: -EINVAL for an empty, overlapping, unaligned or
  // zero-sized region or a node id >= MAX_NUMNODES, -ERANGE for a region beyond the profile's
  // physical limit; nothing is built then.
  static Result<std::unique_ptr<Machine>> boot(MachineConfig config);
  // Boots the machine a platform (QEMU options or a plain map) describes: memblock from its
  // memory map trimmed to whole pages, /proc/iomem from its firmware resources.
  static Result<std::unique_ptr<Machine>> boot(const PlatformDescription& platform, const Behaviour& behaviour);
  static Result<MachineConfig> config_from_platform(const PlatformDescription& platform, const Behaviour& behaviour);
  ~Machine();

  const ArchProfile& arch() const { return m_arch; }
  const Behaviour& behaviour() const { return m_behaviour; }
  const MachineConfig& config() const { return m_config; }
  KernelLog& log() { return m_log; }
  const KernelLog& log() const { return m_log; }
  const Vmemmap& vmemmap() const { return *m_vmemmap; }
  const SectionTable& sections() const { return *m_sections; }

  // -- lock-free queries (spec §3) --
  bool pfn_valid(Pfn pfn) const { return m_sections->pfn_valid(pfn); }
  Page* pfn_to_online_page(Pfn pfn) const { return m_sections->pfn_to_online_page(pfn); }
  Page* pfn_to_page(Pfn pfn) const { return m_sections->pfn_to_page(pfn); }
  Pfn page_to_pfn(const Page* page) const { return m_sections->page_to_pfn(page); }
  bool pfn_section_valid(Pfn pfn) const { return m_sections->pfn_section_valid(pfn); }

  // -- state read under the hotplug lock or between operations --
  const std::vector<Node>& nodes() const { return m_nodes; }
  const std::vector<BootBlock>& boot_blocks() const { return m_boot_blocks; }
  uint64_t memory_block_size() const { return m_block_size; }
  Pfn max_pfn() const { return m_max_pfn; }
  const Memblock& memblock() const { return m_memblock; }
  const ResourceTree& iomem() const { return m_iomem; }

  // add_pages() / __remove_pages(): sections and memmap only, as memremap_pages of
  // MEMORY_DEVICE_PRIVATE uses them (spec §4.4, §4.5). Takes the hotplug lock.
  Result<void> add_pages(unsigned nid, PfnRange range, VmemAltmap* altmap = nullptr);
  void remove_pages(PfnRange range, VmemAltmap* altmap = nullptr);

  // Runs every structure's check_invariants and the cross-structure invariants (checker.cc).
  InvariantReport check() const;

  // ---- hotplug: memory blocks, add_memory / online / offline / remove (src/machine/hotplug*.cc) ----

  // ---- devmem: ZONE_DEVICE pagemaps, memremap_pages / memunmap_pages (src/machine/devmem*.cc) ----

 private:
  explicit Machine(MachineConfig config);
  // memblock in pfn units: memory ranges (merged by node and NOMAP) and reserved ranges.
  struct MemRange {
    Pfn start;
    Pfn end;
    unsigned nid;
    bool nomap;
  };
  std::vector<MemRange> memory_pfn_ranges() const;
  std::vector<PfnRange> reserved_pfn_ranges() const;
  Result<void> boot_locked() SPM_REQUIRES(m_hotplug_lock);
  void memmap_init_locked(const std::vector<MemRange>& mem) SPM_REQUIRES(m_hotplug_lock);
  void free_boot_memory_locked(const std::vector<MemRange>& mem, const std::vector<PfnRange>& reserved)
      SPM_REQUIRES(m_hotplug_lock);
  void create_boot_blocks_locked(const std::vector<MemRange>& mem) SPM_REQUIRES(m_hotplug_lock);
  void init_unavailable_range(Pfn start, Pfn end, ZoneType zone, unsigned nid);
  void check_cross(InvariantReport& report) const;
  Result<void> insert_boot_iomem_locked() SPM_REQUIRES(m_hotplug_lock);

  MachineConfig m_config;
  const ArchProfile& m_arch;
  Behaviour m_behaviour;
  KernelLog m_log;
  std::unique_ptr<Vmemmap> m_vmemmap;
  std::unique_ptr<SectionTable> m_sections;
  mutable HotplugLock m_hotplug_lock;
  std::vector<Node> m_nodes;
  Memblock m_memblock;
  ResourceTree m_iomem;
  std::vector<BootBlock> m_boot_blocks;
  uint64_t m_block_size = 0;
  Pfn m_max_pfn{0};

  // ---- hotplug private state (declared after the core so it may be built from it) ----

  // ---- devmem private state ----
};

}  // namespace sparsemem
