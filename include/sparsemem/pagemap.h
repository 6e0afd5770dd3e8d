// DevPagemap (struct dev_pagemap), its reference count, the pgmap registry (pgmap_array) and the
// pure ZONE_DEVICE rules of Linux 6.1 mm/memremap.c. Registry readers are lock-free (RCU); writers hold the machine's hotplug lock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "sparsemem/arch.h"
#include "sparsemem/behaviour.h"
#include "sparsemem/invariant.h"
#include "sparsemem/klog.h"
#include "sparsemem/memmap.h"
#include "sparsemem/page.h"
#include "sparsemem/result.h"
#include "sparsemem/section.h"
#include "sparsemem/units.h"

namespace sparsemem {

// The build switches of the modelled kernel that decide what memremap_pages accepts (spec §1.1).
// The default is Debian's 6.1 amd64 build: DEVICE_PRIVATE, TEST_HMM and PCI_P2PDMA are off, so a
// MEMORY_DEVICE_PRIVATE pgmap fails -EINVAL "Device private memory not supported".
struct KernelConfig {
  bool device_private = false;  // CONFIG_DEVICE_PRIVATE
  bool test_hmm = false;        // CONFIG_TEST_HMM (lib/test_hmm, the device-private test driver)
  bool pci_p2pdma = false;      // CONFIG_PCI_P2PDMA
  bool fs_dax_limited = false;  // CONFIG_FS_DAX_LIMITED (s390 only): FS_DAX pgmaps are refused
  // CONFIG_DEFERRED_STRUCT_PAGE_INIT (Debian: y): descriptors of wholly free or wholly reserved
  // sections, at boot and when online_pages() frees a whole section, are written on first access
  // (Vmemmap::defer_sections). Nothing observable changes; off, every descriptor is written when
  // the kernel writes it (the reference the tests compare with).
  bool deferred_struct_page_init = true;
};
inline constexpr KernelConfig kDebianAmd64Config{};

// enum memory_type (spec §2.8), same numbers; 0 is not a valid type.
enum class MemoryType : uint8_t {
  Invalid = 0,
  DevicePrivate = 1,
  DeviceCoherent = 2,
  FsDax = 3,
  Generic = 4,
  PciP2pdma = 5,
};
const char* memory_type_name(MemoryType t);  // "private", "coherent", "fsdax", "generic", "p2pdma", "invalid"

// dev_pagemap.flags: the only flag 6.1 has.
inline constexpr uint32_t PGMAP_ALTMAP_VALID = 1;

// struct dev_pagemap_ops. Only presence matters to memremap_pages' validation; page_free is also
// called when a device page's refcount drops to zero (free_zone_device_page).
struct DevPagemapOps {
  std::function<void(Pfn pfn, Page& page)> page_free;
  std::function<int(Pfn pfn)> migrate_to_ram;  // returns a vm_fault_t-like code; presence only
  std::function<int(Pfn pfn, NrPages n)> memory_failure;
};

// struct dev_pagemap: the driver fills the public fields and owns the object; memremap_pages
// fills the runtime state.
//
// LIFETIME: the object must outlive its mapping — call Machine::memunmap_pages before
// destroying it, or destroy the Machine first (nothing in a destroyed Machine is read again). memunmap_pages returns only after every reference taken by get_dev_pagemap or
// zone_device_page_init is gone and after an RCU grace period following the registry erase, so
// once it returns no reader can reach the object any more. The public fields must not change
// while the pgmap is mapped.
//
// REFERENCE COUNT (percpu_ref): starts at 1 when memremap_pages begins (the "initial"
// reference), plus one per compound unit of every mapped range for FS_DAX/GENERIC/P2PDMA
// (pfn_len), plus one per allocated PRIVATE/COHERENT page, plus one per successful
// get_dev_pagemap. memunmap_pages kills it (tryget_live fails from then on), drops the bulk and
// initial references and waits until the count is zero.
// INV-PGMAP-2: live => count >= 1 + bulk references.
struct DevPagemap {
 public:
  MemoryType type = MemoryType::Generic;
  uint32_t flags = 0;  // PGMAP_ALTMAP_VALID
  VmemAltmap altmap{};
  unsigned vmemmap_shift = 0;  // compound order of the device pages; 0 = base pages
  const DevPagemapOps* ops = nullptr;
  const void* owner = nullptr;   // PRIVATE/COHERENT: the driver's owner cookie (must be non-null)
  std::vector<PhysRange> ranges;  // ranges[0] is the kernel's pgmap->range

  DevPagemap() = default;
  ~DevPagemap() = default;
  DevPagemap(const DevPagemap&) = delete;
  DevPagemap& operator=(const DevPagemap&) = delete;

  bool altmap_valid() const { return flags & PGMAP_ALTMAP_VALID; }
  // pgmap_vmemmap_nr(): pages per compound unit.
  NrPages vmemmap_nr() const { return NrPages(uint64_t{1} << vmemmap_shift); }
  // Pfns of range i: [range_start_pfn, range_end_pfn).
  Pfn range_start_pfn(const ArchProfile& arch, unsigned i) const { return arch.phys_to_pfn(ranges[i].start); }
  Pfn range_end_pfn(const ArchProfile& arch, unsigned i) const {
    return arch.phys_to_pfn(PhysAddr(ranges[i].last.value())) + NrPages(1);
  }
  // pfn_first(): first data pfn of range i (range 0 skips vmem_altmap_offset when the altmap is valid).
  Pfn pfn_first(const ArchProfile& arch, unsigned i) const;
  // pfn_len(): compound units of data pages in range i = (end - pfn_first) >> vmemmap_shift.
  uint64_t pfn_len(const ArchProfile& arch, unsigned i) const;
  // pgmap_pfn_valid(): pfn lies in a range at or after that range's pfn_first.
  bool pfn_valid_in(const ArchProfile& arch, Pfn pfn) const;

  // Ranges memremap_pages has mapped so far (the kernel's nr_range while mapped).
  unsigned nr_mapped() const { return m_nr_mapped.load(std::memory_order_acquire); }
  // The node whose Device zone holds the pages (meaningful while mapped).
  unsigned nid() const { return m_nid.load(std::memory_order_acquire); }
  bool mapped() const { return m_mapped.load(std::memory_order_acquire); }

  // -- reference count; thread-safe, lock-free except the final wake-up --
  // percpu_ref_tryget_live(): a reference, unless memunmap_pages has killed the count.
  bool tryget_live();
  // percpu_ref_get_many(): requires a reference already held (or the initial one being live).
  void get(uint64_t n = 1);
  // percpu_ref_put_many(): requires n held references.
  void put(uint64_t n = 1);
  bool live() const { return !(m_ref.load(std::memory_order_acquire) & kDead); }
  uint64_t ref_count() const { return m_ref.load(std::memory_order_acquire) & ~kDead; }
  // References taken in bulk for mapped FS_DAX/GENERIC/P2PDMA ranges (INV-PGMAP-2).
  uint64_t bulk_refs() const { return m_bulk_refs.load(std::memory_order_acquire); }

 private:
  friend class PagemapLifecycle;
  static constexpr uint64_t kDead = uint64_t{1} << 63;

  std::atomic<uint64_t> m_ref{0};  // count | kDead
  std::atomic<uint64_t> m_bulk_refs{0};
  std::atomic<unsigned> m_nr_mapped{0};
  std::atomic<bool> m_mapped{false};
  std::atomic<unsigned> m_nid{0};
  // The zero wake-up. The putter that takes a dead count to zero sets m_zero and notifies while
  // holding m_zero_mutex, so the waiter cannot return (and let the owner free the object) before
  // that putter is done with it.
  std::mutex m_zero_mutex;
  std::condition_variable m_zero_cv;
  bool m_zero = false;  // guarded by m_zero_mutex
};

// Starts, kills and waits for a DevPagemap's reference count; used by memremap_pages and
// memunmap_pages only (writers, under the hotplug lock except for wait_for_zero).
class PagemapLifecycle {
 public:
  // percpu_ref_init(): count 1, live, no bulk references, nothing mapped.
  static void start(DevPagemap& pgmap);
  static void set_nr_mapped(DevPagemap& pgmap, unsigned n);
  static void set_mapped(DevPagemap& pgmap, bool mapped);
  static void set_nid(DevPagemap& pgmap, unsigned nid);
  static void add_bulk(DevPagemap& pgmap, uint64_t n);
  // percpu_ref_kill(): tryget_live fails from now on; the initial reference stays until drop_initial.
  static void kill(DevPagemap& pgmap);
  // Drops the bulk references and the initial one.
  static void drop_initial_and_bulk(DevPagemap& pgmap);
  // Blocks until every reference is gone. Requires kill and drop_initial_and_bulk first. Must not
  // be called with the hotplug lock held or inside an RCU read section: a reference holder may
  // need either to let go.
  static void wait_for_zero(DevPagemap& pgmap);
};

// pgmap_array: pfn -> DevPagemap. An RCU-published, sorted vector of disjoint pfn intervals.
// Readers (lookup, get_dev_pagemap, has_live_pagemap) are lock-free and may run on any thread;
// writers (store, erase) are serialised by the caller's hotplug lock and publish a new vector
// with a release store, retiring the old one after an RCU grace period.
// While attached, the registry answers the section table's pfn_to_online_page slow path.
//
// INV-PGMAP-1: intervals are sorted, non-empty and disjoint (at most one pgmap per pfn) and name
//              a pgmap (the machine's checker adds that it is one of its mapped pgmaps).
class PgmapRegistry final : public PagemapLookup {
 public:
  struct Entry {
    Pfn start;
    Pfn end;  // exclusive
    DevPagemap* pgmap;
  };

  explicit PgmapRegistry(const ArchProfile& arch);
  // Becomes `sections`' PagemapLookup (pfn_to_online_page's slow path) until destroyed.
  // Requires: before any reader runs; sections outlives the registry.
  void attach(SectionTable& sections);
  ~PgmapRegistry() override;
  PgmapRegistry(const PgmapRegistry&) = delete;
  PgmapRegistry& operator=(const PgmapRegistry&) = delete;

  // -- lock-free readers --
  // get_dev_pagemap(pfn, cached) (spec §3): cached is returned as is (its reference kept) when
  // pfn lies in cached->ranges[0] — only range 0, as 6.1 checks; otherwise cached's reference is
  // dropped and pfn is looked up. Returns a pgmap with a new reference, or nullptr when no live
  // pgmap covers pfn. Drop the reference with put_dev_pagemap. Not inside an RCU read section
  // that a concurrent memunmap_pages could be waiting on (it never waits inside one itself).
  DevPagemap* get_dev_pagemap(Pfn pfn, DevPagemap* cached = nullptr) const;
  // pfn_to_online_page's question: does a live pgmap cover pfn? No reference is taken.
  bool has_live_pagemap(Pfn pfn) const override;
  // The pgmap stored for pfn (live or not), or nullptr. Racy by nature: the result may be
  // erased and freed right after; only for the checker and tests between operations.
  DevPagemap* lookup_racy(Pfn pfn) const;

  // -- writers (hotplug lock) --
  // xa_store_range(): map every pfn of [range.start, range.end()) to pgmap, overwriting whatever
  // was stored there (6.1 overwrites; memremap_pages refuses overlaps before calling this).
  void store(PfnRange range, DevPagemap* pgmap);
  // xa_store_range(NULL): unmap every pfn of the range, whoever it belonged to; returns after a
  // grace period, so no reader still holds a pointer obtained from the erased entries.
  void erase(PfnRange range);
  // A copy of the current intervals, in pfn order.
  std::vector<Entry> entries() const;

  void check_invariants(InvariantReport& report) const;

 private:
  struct Snapshot {
    std::vector<Entry> entries;
  };
  const Entry* find(const Snapshot& s, Pfn pfn) const;
  void publish(Snapshot* next);

  const ArchProfile& m_arch;
  SectionTable* m_sections = nullptr;
  std::atomic<const Snapshot*> m_current;
  std::mutex m_writer;  // belt and braces: writers are already serialised by the hotplug lock
};

// put_dev_pagemap(): drop one reference; nullptr is fine.
void put_dev_pagemap(DevPagemap* pgmap);

// Kernel WARN_ONCE bookkeeping: one line per distinct key and machine.
class WarnOnce {
 public:
  // True the first time `key` is seen.
  bool first(const std::string& key) { return m_seen.insert(key).second; }

 private:
  std::set<std::string> m_seen;
};

// memremap_pages' checks of the pgmap itself (spec §4.12, "Validation"), in the kernel's order.
// Return: -EINVAL with the kernel's message for nr_range 0 ("nr_range must be specified",
// WARN_ONCE), a PRIVATE pgmap without CONFIG_DEVICE_PRIVATE ("Device private memory not
// supported"), without ops->migrate_to_ram ("Missing migrate_to_ram method"), without
// ops->page_free ("Missing page_free method") or without owner ("Missing owner") — each with a
// WARN; a COHERENT pgmap without ops->page_free or owner; FS_DAX under CONFIG_FS_DAX_LIMITED;
// under Behaviour::reject_private_altmap (seed 002) a PRIVATE pgmap with a valid altmap;
// vmemmap_shift too large for the pfn width, or data pages that are not a whole number of
// compound units (a model check: 6.1 would initialise descriptors past the range end).
// An unknown type value logs "Invalid pgmap type %d" (WARN) and is accepted like GENERIC.
// A COHERENT pgmap with null ops is refused -EINVAL too: 6.1 dereferences ops unchecked (oops).
Result<void> validate_dev_pagemap(const DevPagemap& pgmap, const ArchProfile& arch, const KernelConfig& config,
                                  const Behaviour& behaviour, KernelLog& log, WarnOnce& once);

// mhp_get_pluggable_range(need_mapping) (spec §1.5), inclusive. x86 has no arch mappable range:
// [0, PHYSMEM_END]. arm64 with need_mapping: the linear map's physical span starting at
// memstart, capped at PHYSMEM_END. Without need_mapping (device private): [0, PHYSMEM_END].
PhysRange mhp_get_pluggable_range(const ArchProfile& arch, Pfn memstart_pfn, bool need_mapping);
// mhp_range_allowed(): -EINVAL with "Hotplug memory [%#llx-%#llx] exceeds maximum addressable
// range [%#llx-%#llx]" (also logged) when [start, start+size) is empty or not inside the range.
Result<void> mhp_range_allowed(const ArchProfile& arch, Pfn memstart_pfn, PhysAddr start, uint64_t size,
                               bool need_mapping, KernelLog& log);

// memmap_init_zone_device() for one mapped range (spec §4.13): initialises every data page as a
// ZONE_DEVICE page of node nid (PG_reserved unless Behaviour::device_pages_reserved is off,
// pgmap pointer, zone_device_data 0, refcount 1 or 0 for PRIVATE/COHERENT), builds compound
// pages of 2^vmemmap_shift pages (only the 128 unique descriptors of a unit whose memmap was
// deduplicated; every descriptor in an EARLY section, whose boot memmap is never deduplicated),
// and marks each pageblock MOVABLE; logs the kernel's debug line. Writes go through the checked path: -EFAULT with the oops
// text when a descriptor is not mapped (seed 004's fault); pages before it stay initialised.
// With may_defer (KernelConfig::deferred_struct_page_init), the descriptors are recorded as a
// pending DeviceMemmapRun instead when Vmemmap::defer_device() takes them; the result is the same
// either way (a removal that keeps the memmap, as an EARLY section's, writes them first).
// Requires: the hotplug lock (or exclusive ownership of the range's memmap).
Result<void> memmap_init_zone_device(Vmemmap& vmemmap, SectionTable& sections, const Behaviour& behaviour,
                                     const DevPagemap& pgmap, unsigned range, unsigned nid, KernelLog& log,
                                     bool may_defer = false);

// memmap_init_range(MEMINIT_HOTPLUG) for ZONE_DEVICE as move_pfn_range_to_zone calls it: with an
// altmap (range 0 only), the pfns whose struct pages back the memmap — from base + reserve when
// the range starts at base, up to base + reserve + free — become reserved Device pages (PG_reserved
// per Behaviour::device_pages_reserved); nothing without an altmap. Pageblock-aligned pfns get
// MOVABLE. Return: -EFAULT with the oops text at the first unmapped descriptor.
Result<void> memmap_init_altmap_area(Vmemmap& vmemmap, SectionTable& sections, const Behaviour& behaviour,
                                     const DevPagemap& pgmap, unsigned nid);

// The pgmap a ZONE_DEVICE head (or base) page points at, read from the descriptor. Only
// meaningful while holding a reference on that pgmap.
inline const DevPagemap* page_pgmap(const Page& page) {
  return page.is_tail() ? nullptr : reinterpret_cast<const DevPagemap*>(page.compound_head);
}
inline bool is_zone_device_page(const Page& page) { return page.zone() == ZoneType::Device; }

// The first tail page's compound metadata as prep_compound_head() writes it (6.1 layout):
// lru_prev = compound_dtor | compound_order << 8 | compound_mapcount (-1) << 32;
// mapping = compound_pincount (0) | compound_nr << 32.
inline unsigned compound_order_of(const Page& first_tail) {
  return static_cast<unsigned>((first_tail.lru_prev >> 8) & 0xff);
}
inline uint64_t compound_nr_of(const Page& first_tail) { return first_tail.mapping >> 32; }

}  // namespace sparsemem
