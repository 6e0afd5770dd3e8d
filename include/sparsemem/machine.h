// Machine: one booted Linux 6.1 memory model — arch profile, behaviour, vmemmap, section table,
// nodes and zones, kernel log — and the hotplug lock that serialises every writer. Readers
// (pfn_valid, pfn_to_online_page) are lock-free and may run on any thread while hotplug runs.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sparsemem/arch.h"
#include "sparsemem/behaviour.h"
#include "sparsemem/check.h"
#include "sparsemem/invariant.h"
#include "sparsemem/klog.h"
#include "sparsemem/memblock.h"
#include "sparsemem/memmap.h"
#include "sparsemem/pagemap.h"
#include "sparsemem/memory_block.h"
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
  KernelConfig kernel;         // build switches (default: Debian 6.1 amd64, DEVICE_PRIVATE off)
  MemoryHotplugConfig hotplug;  // memhp_default_state=, memory_hotplug.* parameters, movable_node
  // Boot /proc/iomem. Empty: one "System RAM" entry per memblock.memory range, as arm64's
  // request_standard_resources() makes them.
  std::vector<BootResource> iomem;
  // The kernel's own boot reservations (memblock.h). QEMU pc/q35 platforms, which describe the kernel
  // image they boot, set it (`sparsemem run`, `sparsemem boot` of a QEMU machine); without it (a
  // MachineConfig written by hand, a plain memory map) memblock.reserved holds only the map's
  // Reserved regions and every other RAM page starts free.
  std::optional<BootReservations> boot_reservations;
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
  bool pfn_is_online(Pfn pfn) const { return m_sections->pfn_is_online(pfn); }
  Page* pfn_to_page(Pfn pfn) const { return m_sections->pfn_to_page(pfn); }
  Pfn page_to_pfn(const Page* page) const { return m_sections->page_to_pfn(page); }
  bool pfn_section_valid(Pfn pfn) const { return m_sections->pfn_section_valid(pfn); }

  // -- state read under the hotplug lock or between operations --
  const std::vector<Node>& nodes() const { return m_nodes; }
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
  // Every operation takes the hotplug lock (device_hotplug_lock and mem_hotplug_lock in one),
  // validates before it changes anything and, when it fails, leaves blocks, sections, zones, iomem
  // and pages as they were (log lines aside, and the struct pages of a vetoed online, which stay
  // initialised as in 6.1 while their section stays offline). Getters read between operations.
  const MemoryBlockRegistry& memory_blocks() const { return m_blocks; }
  // The memory block devices whose range meets [range.start, range.last], ascending (what a
  // driver's range is bound to: ACPI physical nodes, kmem's memblocks).
  std::vector<BlockId> memory_blocks_in(PhysRange range) const;
  const MemoryGroups& memory_groups() const { return m_groups; }
  const MemoryHotplugConfig& hotplug_config() const { return m_mhp; }
  // totalram_pages(): MemTotal in pages, the sum of every zone's managed pages.
  NrPages totalram_pages() const;
  // /sys/firmware/memmap entries of hot-added plain "System RAM".
  const std::vector<FirmwareMemmapEntry>& firmware_memmap_hotplug() const { return m_firmware_memmap; }

  // add_memory(nid, start, size, flags) (spec §4.6): request "System RAM" in iomem, add sections
  // and memmap (MHP_MEMMAP_ON_MEMORY: from the range itself), create offline blocks linked to the
  // node (MHP_NID_IS_MGID: `nid` is a memory group id), raise max_pfn, then auto-online per
  // auto_online_blocks (online errors ignored, as the kernel does).
  // Return: -E2BIG outside the pluggable range ("Hotplug memory [..] exceeds maximum addressable
  // range [..]"); -EEXIST when iomem, a subsection or a block is taken; -EINVAL for a size or
  // start not block aligned ("Block size [%#lx] unaligned hotplug range: ..."), an unknown group,
  // an impossible node, or MHP_MEMMAP_ON_MEMORY when unsupported for this size; -ENOMEM when the
  // host refuses the memmap.
  Result<void> add_memory(unsigned nid, PhysAddr start, uint64_t size, MhpFlags flags = MHP_NONE)
      SPM_EXCLUDES(m_hotplug_lock);
  // mhp_supports_memmap_on_memory(size): memory_hotplug.memmap_on_memory is on, the architecture
  // can hold a memmap in hot-added memory, size is exactly one block, its memmap a PMD multiple and
  // the rest pageblock aligned. Drivers (ACPI) pass MHP_MEMMAP_ON_MEMORY only when this holds.
  bool mhp_supports_memmap_on_memory(uint64_t size) const;
  // add_memory_driver_managed(): the resource is named `resource_name` and marked
  // SYSRAM_DRIVER_MANAGED. Return: -EINVAL unless the name is "System RAM (...)"; as add_memory().
  Result<void> add_memory_driver_managed(unsigned nid, PhysAddr start, uint64_t size, std::string_view resource_name,
                                         MhpFlags flags = MHP_NONE) SPM_EXCLUDES(m_hotplug_lock);
  // remove_memory(start, size) (spec §4.10, try_remove_memory): blocks, sections and memmap, the
  // iomem resource (trimmed or split when merged), the firmware entry; the node goes offline when
  // nothing is left on it. max_pfn never shrinks. Return: -EINVAL for an empty, unaligned or not
  // fully added range (the kernel BUGs), or memmap_on_memory blocks removed more than one at a time
  // ("Refuse to remove ... wrong granularity"); -EBUSY when a block is not offline ("removing memory
  // fails, because memory [..] is onlined").
  Result<void> remove_memory(PhysAddr start, uint64_t size) SPM_EXCLUDES(m_hotplug_lock);
  // offline_and_remove_memory(): offline every block of the range in order, then remove it; on any
  // failure the blocks it offlined are onlined again in their previous zone kind.
  // Return: -EINVAL empty or unaligned range; offline and remove_memory errors.
  Result<void> offline_and_remove_memory(PhysAddr start, uint64_t size) SPM_EXCLUDES(m_hotplug_lock);

  // Writing memoryN/state (spec §6.2): an online type onlines an offline block, Offline offlines
  // an online one. Return: -ENOENT no such block; -EINVAL when the block already is online (for
  // any online type) or offline; online/offline errors (notifier veto errno, -EBUSY, -EINVAL for
  // holes, several zones or a block without a single zone).
  Result<void> memory_block_state_store(BlockId id, OnlineType type) SPM_EXCLUDES(m_hotplug_lock);
  // device_online() / device_offline() (the `online` file, ACPI, auto-online): a block already in
  // the state is success. OnlineType::Offline as the online type means MMOP_ONLINE.
  Result<void> device_online(BlockId id, OnlineType type = OnlineType::Online) SPM_EXCLUDES(m_hotplug_lock);
  Result<void> device_offline(BlockId id) SPM_EXCLUDES(m_hotplug_lock);
  // memoryN/valid_zones without the newline. Return: -ENOENT no such block.
  Result<std::string> valid_zones(BlockId id) const SPM_EXCLUDES(m_hotplug_lock);

  // auto_online_blocks and the writable memory_hotplug module parameters.
  void set_auto_online_blocks(OnlineType type) SPM_EXCLUDES(m_hotplug_lock);
  void set_online_policy(OnlinePolicy policy) SPM_EXCLUDES(m_hotplug_lock);
  void set_auto_movable_ratio(unsigned percent) SPM_EXCLUDES(m_hotplug_lock);
  void set_auto_movable_numa_aware(bool numa_aware) SPM_EXCLUDES(m_hotplug_lock);

  // Memory groups (spec §2.6); errors as MemoryGroups.
  Result<MemoryGroupId> register_static_memory_group(unsigned nid, NrPages max_pages) SPM_EXCLUDES(m_hotplug_lock);
  Result<MemoryGroupId> register_dynamic_memory_group(unsigned nid, NrPages unit_pages) SPM_EXCLUDES(m_hotplug_lock);
  Result<void> unregister_memory_group(MemoryGroupId id) SPM_EXCLUDES(m_hotplug_lock);

  // The memory notifier chain (spec §11). Callbacks run under the hotplug lock. A callback that
  // never reads page descriptors says so with sees_memmap = false, which lets onlining write the
  // memmap once, after MEM_GOING_ONLINE, instead of twice (MemoryNotifierChain::add).
  NotifierId register_memory_notifier(MemoryNotifierFn fn, int priority = 0, bool sees_memmap = true)
      SPM_EXCLUDES(m_hotplug_lock);
  bool unregister_memory_notifier(NotifierId id) SPM_EXCLUDES(m_hotplug_lock);
  // memory_notifier_error_inject: loading registers its notifier (-EEXIST when loaded); each
  // action's `error` file (0 or a negative errno; -EINVAL otherwise or for an action other than
  // MEM_GOING_ONLINE / MEM_GOING_OFFLINE; -ENOENT when not loaded) makes that action fail with it,
  // logging "Injecting error (%d) to MEM_GOING_ONLINE".
  Result<void> load_memory_notifier_error_inject() SPM_EXCLUDES(m_hotplug_lock);
  Result<void> set_memory_notifier_error(MemoryAction action, int error) SPM_EXCLUDES(m_hotplug_lock);
  // set_online_page_callback(): -EINVAL when a driver's callback is already installed.
  // restore_online_page_callback(): -EINVAL unless `cb` is the installed one.
  Result<void> set_online_page_callback(OnlinePageCallback cb) SPM_EXCLUDES(m_hotplug_lock);
  Result<void> restore_online_page_callback(OnlinePageCallback cb) SPM_EXCLUDES(m_hotplug_lock);

  // The allocation state offlining needs: one page taken out of the buddy, carrying `tag` in its
  // descriptor's private word. Movable pages are LRU pages that offlining migrates (the tag moves
  // with them); unmovable ones make offlining fail -EBUSY. alloc_page() takes the first free page
  // of the zone; alloc_page_at() the given one. Return: -EINVAL unmovable in ZONE_MOVABLE, a zone
  // that is Device or absent, a pfn that is not online; -EEXIST tag in use; -ENOMEM zone full;
  // -EBUSY pfn not free.
  Result<Pfn> alloc_page(unsigned nid, ZoneType zone, Migratability kind, uint64_t tag) SPM_EXCLUDES(m_hotplug_lock);
  Result<Pfn> alloc_page_at(Pfn pfn, Migratability kind, uint64_t tag) SPM_EXCLUDES(m_hotplug_lock);
  // Frees the page carrying `tag` back to the buddy. Return: -ENOENT unknown tag.
  Result<void> free_page(uint64_t tag) SPM_EXCLUDES(m_hotplug_lock);
  std::optional<Pfn> page_of_tag(uint64_t tag) const SPM_EXCLUDES(m_hotplug_lock);
  size_t nr_tagged_pages() const SPM_EXCLUDES(m_hotplug_lock);

  // ---- memory failure (src/machine/memory_failure.cc) ----
  // soft_offline_page(pfn) (the sysfs soft_offline_page file, mm/memory-failure.c): a free page
  // leaves the buddy for good, PG_hwpoison with one reference, and counts in num_poisoned_pages.
  // Success also for a page already poisoned (logs "soft_offline_page: %#lx page already
  // poisoned"). Return: -ENXIO pfn not valid; -EIO not online memory (offline, ZONE_DEVICE);
  // -EOPNOTSUPP for a page in use (6.1 migrates it; not modelled). Takes the hotplug lock.
  Result<void> soft_offline_page(Pfn pfn) SPM_EXCLUDES(m_hotplug_lock);
  // memory_failure(pfn, MF_SW_SIMULATED) (hard_offline_page): as soft offlining for a free page,
  // logging "Memory failure: %#lx: recovery action for free buddy page: Recovered".
  // Return: -ENXIO not online memory ("memory outside kernel control"); -EHWPOISON already
  // poisoned ("already hardware poisoned"); -EOPNOTSUPP for a page in use or a ZONE_DEVICE pfn
  // (not modelled). Failures change nothing but the log. Takes the hotplug lock.
  Result<void> memory_failure(Pfn pfn) SPM_EXCLUDES(m_hotplug_lock);
  // num_poisoned_pages: /proc/meminfo HardwareCorrupted is this times the page size. Onlining
  // re-initialises descriptors (the flag goes, the count stays); removing memory releases the
  // count of the pages still flagged (clear_hwpoisoned_pages).
  uint64_t num_poisoned_pages() const SPM_EXCLUDES(m_hotplug_lock);

  // ---- devmem: ZONE_DEVICE pagemaps, memremap_pages / memunmap_pages (src/machine/devmem*.cc) ----
  const KernelConfig& kernel_config() const { return m_config.kernel; }

  // memremap_pages(pgmap, nid) (spec §4.12): validates the pgmap and every range first
  // (validate_dev_pagemap, then per range in the kernel's order: altmap with a second range
  // -EINVAL "altmap not supported for multiple ranges"; an endpoint inside a live pgmap -ENOMEM
  // "Conflicting mapping in same section"; System RAM overlap -ENXIO "attempted on ram|mixed
  // region"; outside mhp_range_allowed -EINVAL; an invalid altmap -EINVAL "memory add fail,
  // invalid altmap"; misalignment -EINVAL "Misaligned __add_pages ..."; populated subsections
  // -EEXIST, which also covers a range strictly containing another pgmap — 6.1 passes its
  // endpoint check, overwrites the other pgmap's pgmap_array entries and then fails -EEXIST,
  // erasing them; the model refuses before touching them), then stores the pgmap, adds sections
  // and memmap (altmap, compound de-duplication), grows the node's Device zone (never shrinks),
  // taints sections, initialises the ZONE_DEVICE memmap and takes the pgmap references.
  // nid < 0 means the first online node; -EINVAL for a node without a pgdat.
  // Failure leaves the machine as it was (a populate failure undoes the sections already added,
  // where 6.1 would leave them), except for log lines and one case: a descriptor write that
  // faults (-EFAULT with the oops text, seed 004's legacy behaviour) is the kernel's crash; the
  // model unwinds the mapping but the Device zone keeps its grown span.
  // Takes the hotplug lock. Requires: pgmap not mapped (else -EBUSY), and pgmap outlives the mapping.
  Result<void> memremap_pages(DevPagemap& pgmap, int nid) SPM_EXCLUDES(m_hotplug_lock);
  // memunmap_pages(pgmap) (spec §4.15): kills the reference count, drops the bulk and initial
  // references, waits (without the hotplug lock) until every other reference is gone, then
  // removes each range's sections and memmap (PRIVATE without the altmap, as 6.1 does) and
  // erases it from the registry. WARN "failed to free all reserved pages" if the altmap still
  // has pages allocated. Does nothing for a pgmap that is not mapped. Must not be called while
  // holding a reference on pgmap or inside an RCU read section (it would wait forever).
  void memunmap_pages(DevPagemap& pgmap) SPM_EXCLUDES(m_hotplug_lock);
  // get_dev_pagemap / the registry: lock-free (see PgmapRegistry).
  DevPagemap* get_dev_pagemap(Pfn pfn, DevPagemap* cached = nullptr) const {
    return m_pgmap_registry.get_dev_pagemap(pfn, cached);
  }
  const PgmapRegistry& pgmap_registry() const { return m_pgmap_registry; }

  // request_free_mem_region(&iomem_resource, size, name) (spec §4.16): a busy DEVICE_PRIVATE
  // region in the highest free size-aligned slot below min(iomem root end, PHYSMEM_END); under
  // OutOfWindowRule::PlaceInWindow (seed 003) also below the last address the vmemmap window
  // covers. Return: the region; -ERANGE when no slot is free. Takes the hotplug lock.
  Result<PhysRange> request_free_mem_region(uint64_t size, std::string_view name) SPM_EXCLUDES(m_hotplug_lock);
  // release_mem_region(): -EINVAL when no busy region is exactly [start, last].
  Result<void> release_mem_region(PhysRange range) SPM_EXCLUDES(m_hotplug_lock);
  // Drivers' iomem (libnvdimm, dax, kmem): request_mem_region() (busy, nested into non-busy
  // containers such as "Persistent Memory"), insert_resource() under the root (NFIT's
  // "Persistent Memory"), and the flag rewrite kmem does on its "daxX.Y" region. Errors as the
  // ResourceTree's. Take the hotplug lock.
  Result<PhysRange> request_mem_region(PhysRange range, std::string_view name) SPM_EXCLUDES(m_hotplug_lock);
  Result<void> insert_iomem_resource(PhysRange range, std::string_view name, ResourceFlags flags, IoresDesc desc)
      SPM_EXCLUDES(m_hotplug_lock);
  Result<void> remove_iomem_resource(PhysRange range, std::string_view name) SPM_EXCLUDES(m_hotplug_lock);
  Result<void> set_mem_region_flags(PhysRange range, std::string_view name, ResourceFlags flags)
      SPM_EXCLUDES(m_hotplug_lock);

  // zone_device_page_init(page of pfn): a free PRIVATE/COHERENT page (refcount 0) is handed to
  // the driver: refcount 1 and one pgmap reference. -ENXIO when no live pgmap covers pfn,
  // -EINVAL for another type or a pfn before pfn_first, -EBUSY when the page is in use.
  Result<void> zone_device_page_init(Pfn pfn);
  // put_page() of a ZONE_DEVICE page: refcount - 1; at zero free_zone_device_page() calls
  // ops->page_free (WARN and stop without one) and then drops the page's pgmap reference
  // (PRIVATE/COHERENT) or sets the refcount back to 1 (the "1-based" types).
  // -ENXIO no pgmap covers pfn; -EINVAL refcount already 0.
  Result<void> put_device_page(Pfn pfn);
  // Is pfn ZONE_DEVICE memory? Under Behaviour::subsection_zone_device_map (seed 001) the section
  // table answers by pfn; 6.1 can only read the zone of the descriptor, which is stale after
  // memunmap_pages in an early section (and unsafe without a pgmap reference).
  bool pfn_is_zone_device(Pfn pfn) const;

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
  // The boot sections deferred struct page init leaves pending (deferred_init.cc).
  std::vector<DeferredSectionRun> plan_deferred_init(const std::vector<MemRange>& mem,
                                                     const std::vector<PfnRange>& reserved) const;
  void init_unavailable_range(Pfn start, Pfn end, ZoneType zone, unsigned nid);
  // The kernel's own boot reservations (config().boot_reservations, boot_reservations.cc): memblock
  // reservations and top-down allocations before sparse_init, then what mem_init() does to their
  // descriptors after memblock_free_all (register_page_bootmem_info, the first buddy allocations).
  Result<void> reserve_boot_memory_locked() SPM_REQUIRES(m_hotplug_lock);
  void register_boot_memory_locked() SPM_REQUIRES(m_hotplug_lock);
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
  uint64_t m_block_size = 0;
  Pfn m_max_pfn{0};
  // Boot memory handed to register_page_bootmem_info(): each node's vmemmap boot buffer (base and
  // the present sections whose memmaps it holds, in order) and its NODE_DATA.
  struct BootMemmapBuffer {
    unsigned nid;
    PhysAddr base;
    std::vector<SectionNr> sections;
  };
  std::vector<BootMemmapBuffer> m_boot_memmap_buffers;
  std::vector<std::pair<unsigned, PhysRange>> m_boot_pgdats;

  // ---- hotplug private state (declared after the core so it may be built from it) ----
  struct OnlineOps;
  struct TaggedPage {
    uint64_t tag;
    Migratability kind;
  };
  // Counts the checker recomputes per (node, zone) from descriptors (INV-ZONE-COUNT-*):
  // {present, present_early, managed}.
  using ZoneCounts = std::map<std::pair<unsigned, ZoneType>, std::array<uint64_t, 3>>;
  ZoneChoiceContext zone_choice_context() const;
  Result<void> add_memory_locked(unsigned nid, PhysAddr start, uint64_t size, std::string_view name, MhpFlags flags)
      SPM_REQUIRES(m_hotplug_lock);
  Result<void> add_memory_resource_locked(unsigned nid, ResourceId res, PhysAddr start, uint64_t size, MhpFlags flags)
      SPM_REQUIRES(m_hotplug_lock);
  Result<void> remove_memory_locked(PhysAddr start, uint64_t size) SPM_REQUIRES(m_hotplug_lock);
  Result<bool> device_online_locked(BlockId id, OnlineType type) SPM_REQUIRES(m_hotplug_lock);
  Result<bool> device_offline_locked(BlockId id) SPM_REQUIRES(m_hotplug_lock);
  Result<void> memory_block_online_locked(MemoryBlock& mem, OnlineType type) SPM_REQUIRES(m_hotplug_lock);
  Result<void> memory_block_offline_locked(MemoryBlock& mem) SPM_REQUIRES(m_hotplug_lock);
  Result<void> online_pages_locked(Pfn pfn, NrPages n, unsigned nid, ZoneType zone, MemoryGroup* group)
      SPM_REQUIRES(m_hotplug_lock);
  Result<void> offline_pages_locked(Pfn pfn, NrPages n, unsigned nid, ZoneType zone, MemoryGroup* group)
      SPM_REQUIRES(m_hotplug_lock);
  void adjust_present_locked(Pfn pfn, NrPages n, unsigned nid, ZoneType zone, MemoryGroup* group, bool add)
      SPM_REQUIRES(m_hotplug_lock);
  void memmap_init_hotplug_locked(Pfn pfn, NrPages n, unsigned nid, ZoneType zone, Migratetype mt)
      SPM_REQUIRES(m_hotplug_lock);
  void set_pageblocks_migratetype_locked(Pfn pfn, NrPages n, Migratetype mt) SPM_REQUIRES(m_hotplug_lock);
  void shrink_zone_locked(Pfn pfn, NrPages n, unsigned nid, ZoneType zone) SPM_REQUIRES(m_hotplug_lock);
  void try_offline_node_locked(unsigned nid) SPM_REQUIRES(m_hotplug_lock);
  void free_pages_to_buddy_locked(Pfn pfn, unsigned order) SPM_REQUIRES(m_hotplug_lock);
  void take_free_page_locked(Pfn pfn) SPM_REQUIRES(m_hotplug_lock);
  std::optional<Pfn> find_free_page_locked(unsigned nid, ZoneType zone, PfnRange exclude) const
      SPM_REQUIRES(m_hotplug_lock);
  std::optional<Pfn> free_buddy_head_locked(Pfn pfn) const SPM_REQUIRES(m_hotplug_lock);
  Result<Pfn> alloc_page_at_locked(Pfn pfn, Migratability kind, uint64_t tag) SPM_REQUIRES(m_hotplug_lock);
  void dump_page_locked(Pfn pfn, std::string_view reason) SPM_REQUIRES(m_hotplug_lock);
  void poison_free_page_locked(Pfn pfn) SPM_REQUIRES(m_hotplug_lock);
  void clear_hwpoisoned_pages_locked(Pfn start, NrPages n) SPM_REQUIRES(m_hotplug_lock);
  void check_hotplug_locked(InvariantReport& report) const SPM_REQUIRES(m_hotplug_lock);
  ZoneCounts count_block_locked(const MemoryBlock& mem) const SPM_REQUIRES(m_hotplug_lock);

  MemoryHotplugConfig m_mhp{m_config.hotplug};
  MemoryBlockRegistry m_blocks;
  MemoryGroups m_groups;
  MemoryNotifierChain m_memory_chain;
  OnlinePageCallback m_online_page_cb = nullptr;  // nullptr: generic_online_page
  std::optional<NotifierId> m_error_inject;      // memory_notifier_error_inject loaded
  std::array<int, 6> m_injected_error{};           // per MemoryAction
  uint64_t m_num_poisoned_pages = 0;  // mm/memory-failure.c num_poisoned_pages
  std::map<Pfn, TaggedPage> m_tagged_by_pfn;
  std::map<uint64_t, Pfn> m_tagged_by_tag;
  std::vector<FirmwareMemmapEntry> m_firmware_memmap;
  std::vector<bool> m_node_has_cpus;  // nodes with memory at boot hold the CPUs: never offlined
  // Counts of boot blocks never offlined since boot, computed once by the checker (their
  // descriptors cannot change classification while they stay online).
  mutable std::map<uint64_t, ZoneCounts> m_pristine_boot_counts SPM_GUARDED_BY(m_hotplug_lock);
  std::set<uint64_t> m_dirty_boot_blocks;  // boot blocks offlined at least once

  // ---- devmem private state ----
  // Seed 000: the section table asks memblock under Behaviour::memblock_pfn_valid.
  struct MemblockMapMemory final : MapMemoryLookup {
    explicit MemblockMapMemory(const Memblock& mb) : memblock(mb) {}
    bool pfn_is_map_memory(Pfn pfn) const override { return memblock.is_map_memory(pfn); }
    const Memblock& memblock;
  };
  // Called by the constructor once the section table exists: attaches the registry and the
  // memblock question to it.
  void devmem_attach();
  Result<void> validate_pagemap_range_locked(const DevPagemap& pgmap, unsigned i, const std::vector<PfnRange>& earlier)
      SPM_REQUIRES(m_hotplug_lock);
  Result<void> add_pagemap_range_locked(DevPagemap& pgmap, unsigned i, unsigned nid) SPM_REQUIRES(m_hotplug_lock);
  Result<void> init_pagemap_range_locked(DevPagemap& pgmap, unsigned i, unsigned nid) SPM_REQUIRES(m_hotplug_lock);
  void remove_pagemap_range_locked(DevPagemap& pgmap, unsigned i) SPM_REQUIRES(m_hotplug_lock);
  Result<void> unwind_memremap_locked(DevPagemap& pgmap, unsigned added, Error error) SPM_REQUIRES(m_hotplug_lock);
  void check_devmem_locked(InvariantReport& report) const SPM_REQUIRES(m_hotplug_lock);

  MemblockMapMemory m_map_memory{m_memblock};
  PgmapRegistry m_pgmap_registry{m_arch};  // m_sections' PagemapLookup (devmem_attach)
  std::vector<DevPagemap*> m_mapped_pgmaps SPM_GUARDED_BY(m_hotplug_lock);
  WarnOnce m_devmem_once SPM_GUARDED_BY(m_hotplug_lock);
};

}  // namespace sparsemem
