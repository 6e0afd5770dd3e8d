// SectionTable: maps a section number to its MemSection (two-level, SPARSEMEM_EXTREME) and
// answers pfn_valid / pfn_to_online_page. Lock-free readers; writers hold the machine's hotplug
// lock. Per-section usage (subsection map, pageblock migratetypes) is retired through RCU.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "sparsemem/arch.h"
#include "sparsemem/behaviour.h"
#include "sparsemem/invariant.h"
#include "sparsemem/klog.h"
#include "sparsemem/memmap.h"
#include "sparsemem/page.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

// The section_mem_map flag bits of Linux 6.1 (spec §2.1), as typed state.
enum class SectionFlag : uint32_t {
  Present = 0x1,           // SECTION_MARKED_PRESENT: has (or had at boot) memory
  HasMemMap = 0x2,         // SECTION_HAS_MEM_MAP: memmap exists and usage is valid
  Online = 0x4,            // SECTION_IS_ONLINE: pages onlined
  Early = 0x8,             // SECTION_IS_EARLY: memmap created at boot by sparse_init
  TaintZoneDevice = 0x10,  // SECTION_TAINT_ZONE_DEVICE: a ZONE_DEVICE range starts or ends inside
};

class SectionFlags {
 public:
  constexpr SectionFlags() = default;
  constexpr explicit SectionFlags(uint32_t bits) : m_bits(bits) {}
  constexpr bool has(SectionFlag f) const { return m_bits & static_cast<uint32_t>(f); }
  constexpr SectionFlags with(SectionFlag f) const { return SectionFlags(m_bits | static_cast<uint32_t>(f)); }
  constexpr SectionFlags without(SectionFlag f) const { return SectionFlags(m_bits & ~static_cast<uint32_t>(f)); }
  constexpr uint32_t bits() const { return m_bits; }
  constexpr bool operator==(const SectionFlags&) const = default;

 private:
  uint32_t m_bits = 0;
};

// Page migratetypes kept per pageblock (Debian amd64: no CMA, so ISOLATE is 4).
enum class Migratetype : uint8_t { Unmovable = 0, Movable = 1, Reclaimable = 2, HighAtomic = 3, Isolate = 4 };

// struct mem_section_usage (spec §2.3).
// INV-USAGE-1: no subsection bit at or beyond subsections_per_section is set.
struct MemSectionUsage {
  static constexpr unsigned kMaxSubsections = 256;  // arm64 64K: 512 MiB / 2 MiB
  static constexpr unsigned kMaxPageblocks = 64;    // x86: 128 MiB / 2 MiB
  std::atomic<uint64_t> subsection_map[kMaxSubsections / 64] = {};
  // Seed 001 proposal (Behaviour::subsection_zone_device_map): subsections owned by ZONE_DEVICE.
  std::atomic<uint64_t> zone_device_map[kMaxSubsections / 64] = {};
  Migratetype pageblock_flags[kMaxPageblocks] = {};  // writers only (hotplug lock)
  bool from_boot = false;  // carved from the boot allocation: kept attached when the section empties

  bool test(SubsectionIdx i) const {
    return (subsection_map[i.value() / 64].load(std::memory_order_acquire) >> (i.value() % 64)) & 1;
  }
  bool any() const;
  unsigned weight() const;
};

// One struct mem_section. Readers load the fields with acquire; writers (hotplug lock) store with
// release after the state they describe is complete.
// INV-SEC-1: HasMemMap => usage != nullptr                                        (spec §5.6)
// INV-SEC-2: HasMemMap => Present
// INV-SEC-3: pfn_valid(pfn) => its descriptor is mapped; for Early the whole span  (spec §5.1, §5.2)
// INV-SEC-4: non-early HasMemMap => the memmap of every set subsection is mapped  (spec §5.5)
// INV-SEC-5: Online => HasMemMap (a section is onlined only after it has a memmap)
// INV-SEC-6: section nr <= highest_present for every Present section
class MemSection {
 public:
  SectionFlags flags() const { return SectionFlags(m_flags.load(std::memory_order_acquire)); }
  unsigned nid() const { return m_nid.load(std::memory_order_relaxed); }
  // Requires: an RCU read section (RcuReadGuard) or the hotplug lock for as long as it is used.
  const MemSectionUsage* usage() const { return m_usage.load(std::memory_order_acquire); }

 private:
  friend class SectionTable;
  std::atomic<uint32_t> m_flags{0};
  std::atomic<uint32_t> m_nid{0};
  std::atomic<MemSectionUsage*> m_usage{nullptr};
};

// An RCU read-side critical section. A Page* from pfn_to_online_page() (and the usage of a
// MemSection) stays valid until the guard that was held around the lookup ends: hot-remove waits
// for every such reader before it unmaps a memmap or frees a usage.
class RcuReadGuard {
 public:
  RcuReadGuard();
  ~RcuReadGuard();
  RcuReadGuard(const RcuReadGuard&) = delete;
  RcuReadGuard& operator=(const RcuReadGuard&) = delete;
};

// The question pfn_to_online_page's slow path asks (spec §3 step 5): does a live dev_pagemap
// cover this pfn? Answered by the devmem layer; lookups are lock-free.
class PagemapLookup {
 public:
  virtual ~PagemapLookup() = default;
  virtual bool has_live_pagemap(Pfn pfn) const = 0;
};

// Seed 000: arm64 <= 5.11 answered pfn_valid() from memblock (a non-NOMAP memory region).
// Only read under Behaviour::memblock_pfn_valid; answered by the machine's memblock.
class MapMemoryLookup {
 public:
  virtual ~MapMemoryLookup() = default;
  virtual bool pfn_is_map_memory(Pfn pfn) const = 0;
};

// How the early-section rule (seed 004) applies to one section under the machine's Behaviour.
// This is the only place where the EARLY bit is interpreted; activation, deactivation, pfn_valid
// and present-page accounting all read it from here.
struct EarlyRule {
  bool early = false;                   // section was created by sparse_init
  bool whole_section_valid = false;     // pfn_valid() true for the entire section span
  bool partial_add_reuses_memmap = false;   // section_activate() skips populate for a partial add
  bool partial_remove_keeps_memmap = false; // section_deactivate() never depopulates a part
};

class SectionTable {
 public:
  SectionTable(const ArchProfile& arch, const Behaviour& behaviour, Vmemmap& vmemmap, KernelLog& log);
  ~SectionTable();
  SectionTable(const SectionTable&) = delete;
  SectionTable& operator=(const SectionTable&) = delete;

  const ArchProfile& arch() const { return m_arch; }
  void set_pagemap_lookup(const PagemapLookup* lookup) { m_pagemaps.store(lookup, std::memory_order_release); }
  // Requires: set before any reader runs (boot). Readers under the seed 000 rule call it unlocked,
  // as arm64's memblock-based pfn_valid() did.
  void set_map_memory_lookup(const MapMemoryLookup* lookup) { m_map_memory = lookup; }

  // -- lock-free readers --
  // __nr_to_section(): nullptr when nr >= NR_MEM_SECTIONS or its root was never allocated.
  const MemSection* find(SectionNr nr) const;
  EarlyRule early_rule(SectionFlags flags) const;
  // Spec §3. Each is one implementation for every profile; architecture facts come from ArchProfile.
  // pfn_valid under Behaviour::memblock_pfn_valid (seed 000) asks the MapMemoryLookup instead of
  // the section (so ZONE_DEVICE and hot-added pfns without memblock entries read invalid).
  bool pfn_valid(Pfn pfn) const;
  bool pfn_section_valid(Pfn pfn) const;
  bool pfn_in_present_section(Pfn pfn) const;
  // The memmap is initialised and the pfn is online RAM (never ZONE_DEVICE). Lifetime of the
  // returned Page*: the caller's RcuReadGuard, or the hotplug lock.
  Page* pfn_to_online_page(Pfn pfn) const { return pfn_is_online(pfn) ? m_vmemmap.pfn_to_page(pfn) : nullptr; }
  // pfn_to_online_page(pfn) != nullptr, without touching (or first initialising, see
  // Vmemmap::deferred_init_range) the descriptor: for callers that only compare with null.
  bool pfn_is_online(Pfn pfn) const;
  Page* pfn_to_page(Pfn pfn) const { return m_vmemmap.pfn_to_page(pfn); }
  Pfn page_to_pfn(const Page* page) const { return m_vmemmap.page_to_pfn(page); }
  SectionNr highest_present() const { return SectionNr(m_highest_present.load(std::memory_order_acquire)); }
  // Sections whose Present bit is set, in increasing order (for_each_present_section_nr).
  std::vector<SectionNr> present_sections() const;

  // -- boot (single-threaded, before any reader) --
  // memory_present(): mark the sections of [start, end) Present|Online with nid. -ERANGE beyond
  // the physical limit.
  Result<void> memory_present(unsigned nid, Pfn start, Pfn end);
  // sparse_init(): a boot usage and a full-section boot memmap for every present section,
  // installed as Present|HasMemMap|Online|Early. Failure logs the kernel's line and zeroes the run.
  Result<void> sparse_init();
  // subsection_map_init(): set the subsection bits covering [start, start+n) (2 MiB granules).
  void subsection_map_init(Pfn start, NrPages n);

  // -- hotplug writers (hotplug lock held) --
  // __add_pages() (spec §4.4) without the arch parts: -EINVAL when misaligned (with the kernel's
  // WARN text) or the altmap does not start at start; -EEXIST on overlap; -ENOMEM from populate.
  // Sections already added when a later one fails are not rolled back (6.1, spec §9.10).
  // vmemmap_shift: memremap_pages' compound order; when vmemmap_can_optimize() holds, each
  // section's memmap is populated de-duplicated (spec §4.14) with the units counted from start.
  Result<void> add_pages(unsigned nid, Pfn start, NrPages n, VmemAltmap* altmap, unsigned vmemmap_shift = 0);
  // __remove_pages() (spec §4.5): section_deactivate per section chunk; memmap is unmapped and
  // usages freed only after an RCU grace period.
  void remove_pages(Pfn start, NrPages n, VmemAltmap* altmap);
  // Mark the sections covering [start, start+n) online / offline (online_pages, offline_pages).
  void set_online(Pfn start, NrPages n, bool online);
  // move_pfn_range_to_zone() for ZONE_DEVICE: taint the sections of a non-aligned start and end.
  void taint_zone_device(Pfn start, NrPages n);
  // Seed 001 proposal: record which subsections belong to ZONE_DEVICE.
  void set_zone_device(Pfn start, NrPages n, bool is_device);
  bool pfn_is_zone_device(Pfn pfn) const;  // only meaningful with subsection_zone_device_map
  void set_pageblock_migratetype(Pfn pfn, Migratetype mt);
  Migratetype pageblock_migratetype(Pfn pfn) const;

  // INV-SEC-* above, per present or populated section.
  void check_invariants(InvariantReport& report) const;

 private:
  struct Root;
  MemSection* find_mut(SectionNr nr) const;
  Result<MemSection*> ensure_section(SectionNr nr);
  Result<void> sparse_add_section(unsigned nid, Pfn start, NrPages n, VmemAltmap* altmap,
                                  const CompoundMemmap* compound);
  using PendingUnmap = Vmemmap::FreeRange;
  void section_deactivate(Pfn start, NrPages n, VmemAltmap* altmap, std::vector<PendingUnmap>& unmaps,
                          std::vector<MemSectionUsage*>& frees);
  uint64_t subsection_mask_word(Pfn start, NrPages n, unsigned word) const;
  void bump_highest(SectionNr nr);

  const ArchProfile& m_arch;
  const Behaviour& m_behaviour;
  Vmemmap& m_vmemmap;
  KernelLog& m_log;
  std::unique_ptr<std::atomic<MemSection*>[]> m_roots;  // NR_SECTION_ROOTS entries, never freed
  std::atomic<uint64_t> m_highest_present{0};
  std::atomic<const PagemapLookup*> m_pagemaps{nullptr};
  const MapMemoryLookup* m_map_memory = nullptr;
  std::vector<std::unique_ptr<MemSectionUsage[]>> m_boot_usage_blocks;  // boot allocations
};

}  // namespace sparsemem
