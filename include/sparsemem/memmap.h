// Vmemmap: the vmemmap window — a real reserved host address range in which the 64-byte page
// descriptors live — its population with base-page or huge (PMD) mappings, altmap backing,
// x86 compound de-duplication (one page mapped at several addresses) and partial depopulation
// (Linux 6.1 mm/sparse-vmemmap.c and the x86-64/arm64 vmemmap_populate()).
// Writers (populate/depopulate) are serialised by the caller (the machine's hotplug lock); the
// reader paths (pfn_to_page, descriptor_mapped, read_page) are lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "sparsemem/arch.h"
#include "sparsemem/behaviour.h"
#include "sparsemem/invariant.h"
#include "sparsemem/klog.h"
#include "sparsemem/page.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

// struct vmem_altmap (spec §2.8): device pfns that back the memmap of the device's own range.
//   [base_pfn, base_pfn + reserve)                 reserved for the driver (info block)
//   [base_pfn + reserve, + free)                   may back the memmap, handed out by alloc()
// INV-ALTMAP-1: alloc + align <= free.
struct VmemAltmap {
  Pfn base_pfn;
  Pfn end_pfn;
  NrPages reserve;
  NrPages free;
  NrPages align;
  NrPages alloc;

  // vmem_altmap_offset(): pfns from base whose struct pages are not device data pages.
  NrPages offset() const { return reserve + free; }
  // altmap_alloc_block_buf(): n pages aligned to the lowest set bit of n; -ENOMEM when exhausted.
  // Returns the first backing pfn.
  Result<Pfn> alloc_pages(NrPages n);
  // vmem_altmap_free(): alloc -= n. The kernel's unsigned subtraction would wrap when n > alloc
  // (a caller freeing pages it never took); the model stops at 0 so INV-ALTMAP-1 stays checkable.
  void free_pages(NrPages n);
  // The pfn alloc_pages() would hand out next before alignment: base + reserve + alloc + align.
  Pfn next_pfn() const { return base_pfn + reserve + alloc + align; }
  // INV-ALTMAP-1 above.
  void check_invariants(InvariantReport& report) const;
};

// Where the memory behind a vmemmap mapping came from.
enum class VmemmapOrigin : uint8_t {
  Boot,    // sparse_init's boot buffer (memblock)
  Buddy,   // the page allocator at hotplug time
  Altmap,  // the device's own pfns (vmem_altmap) or memmap_on_memory's first pages
  Shared,  // one more mapping of a de-duplicated compound tail page (devmem, spec §4.14); no new memory
};
const char* origin_name(VmemmapOrigin o);  // "boot", "buddy", "altmap", "shared"

// How the vmemmap page holding a descriptor is mapped.
enum class VmemmapMapKind : uint8_t { None, Base, Huge };
const char* map_kind_name(VmemmapMapKind k);  // "none", "base", "huge"

// x86 PAGE_UNUSED (spec §1.1): the byte that marks the unused part of a partly used huge PMD.
inline constexpr uint8_t PAGE_UNUSED = 0xFD;

struct VmemmapConfig {
  bool cpu_has_pse = true;  // x86: PSE => 2 MiB vmemmap mappings; without it base pages only
  Pfn memstart_pfn{0};      // arm64: PHYS_OFFSET >> PAGE_SHIFT (the window starts at this pfn)
  // Pending memmaps (below): de-duplicated compound units are mapped for the model at once and for
  // the host on first access, and ZONE_DEVICE descriptors may be described instead of written.
  // Machine sets it from KernelConfig::deferred_struct_page_init.
  bool pending_memmaps = true;
};

struct VmemmapStats {
  uint64_t base_pages = 0;  // base (PAGE_SIZE) vmemmap mappings
  uint64_t huge_pmds = 0;   // huge (PMD) vmemmap mappings
  uint64_t bytes_by_origin[4] = {};  // indexed by VmemmapOrigin
  uint64_t reserved_chunks = 0;  // 1 GiB host reservations made so far (never released before ~Vmemmap)
  // Base pages mapped for the model whose host memory comes on first access (pending compound
  // mappings); counted in base_pages and bytes_by_origin like the others.
  uint64_t host_pending_pages = 0;
  uint64_t bytes_mapped() const {
    return bytes_by_origin[0] + bytes_by_origin[1] + bytes_by_origin[2] + bytes_by_origin[3];
  }
  // Memory actually backing the vmemmap: Shared mappings alias a page counted elsewhere.
  uint64_t bytes_backed() const { return bytes_mapped() - bytes_by_origin[3]; }
};

// The compound-page layout memremap_pages asks for (spec §4.14): device pages come in units of
// pages_per_compound, and range_start is where the range being added begins (the reuse rule of a
// unit's later sections counts from it).
struct CompoundMemmap {
  NrPages pages_per_compound;
  Pfn range_start;
};

// vmemmap_can_optimize() (spec §4.14): the arch deduplicates compound memmaps (x86 in 6.1), no
// altmap backs the memmap, and one unit's memmap is larger than two vmemmap pages (so there are
// tail pages to share: vmemmap_shift >= 8 with 4 KiB pages).
bool vmemmap_can_optimize(const ArchProfile& arch, const VmemAltmap* altmap, NrPages pages_per_compound);

// Pending memmaps: deferred struct page init (CONFIG_DEFERRED_STRUCT_PAGE_INIT; mm/page_alloc.c
// defer_init() and deferred_init_memmap(), 6.1), applied to every section whose bytes one run can
// describe. A section whose every page is in one state, either all free in naturally aligned
// MAX_ORDER-1 buddy blocks or all PG_reserved, of one zone and node, is not written when boot or
// online_pages() initialises it: its run is recorded and the section is materialised
// (init_page_range plus the buddy heads, exactly the bytes the eager path writes) on the first
// descriptor access. The kernel's memmap is fully written before userspace sees it, so nothing
// observable may differ: only when the bytes are written does. Invariants (checked by
// Machine::check without touching a pending section's descriptors):
// offline_pages() of a pending free section leaves it pending as `offlined` (the same bytes
// without the buddy heads), and depopulating a whole pending section drops it unwritten.
// INV-DEFER-1: a pending section is present, has a memmap, and is online unless `offlined`; an
//              online one lies inside the span of its run's zone on its run's node.
// INV-DEFER-2: a pending online section counts pages_per_section present pages in (run.nid,
//              run.zone), as many present_early pages when its block is a boot block, and as many
//              managed pages unless run.reserved.
struct DeferredSectionRun {
  SectionNr first;           // first section of the run
  uint64_t nr_sections = 0;  // sections [first, first + nr_sections)
  ZoneType zone = ZoneType::Normal;
  unsigned nid = 0;
  bool reserved = false;  // every page PG_reserved (memblock.reserved); else every page free
  bool offlined = false;  // free pages offline_pages() took out of the buddy: no PG_buddy heads
};

// Pending ZONE_DEVICE memmaps: the same deferral for memmap_init_zone_device(), which writes every
// descriptor of a device range before memremap_pages() returns and which nothing reads for a long
// time after (a devdax or fsdax range is touched page by page, when mapped). A run describes the
// descriptors of [start, end): every page is `base` (__init_zone_device_page()'s descriptor); with
// order > 0, in units of 2^order pages counted from start, a unit's first page is also PG_head, the
// others are its tails (compound_head = head | 1, refcount 0), and in units of more than two pages
// the second carries prep_compound_head()'s metadata. Sections are pending per run (a section that
// is pending already, or a range with an unmapped descriptor, is written at once instead); pfns of
// a pending section outside its run read their own memory. Compound units de-duplicated by
// populate_compound() are mapped on the host only when first accessed, in the eager layout, so a
// range nobody touches costs neither host mappings nor descriptor writes.
// INV-DEFER-3 (Machine::check): a pending device section's run is the data pages of a mapped
//              pgmap range, and no other section is device-pending.
struct DeviceMemmapRun {
  Pfn start;
  Pfn end;
  unsigned order = 0;
  Page base{};
};
// The descriptor of pfn (in [run.start, run.end)) once written; head_addr is the kernel address
// of its unit's head (page_addr of start + ((pfn - start) & ~(2^order - 1))).
Page device_memmap_page(const DeviceMemmapRun& run, Pfn pfn, VmemmapAddr head_addr);

// SYNCHRONIZATION: populate/depopulate/writable_page/check_invariants/defer_init/defer_sections are writers,
// serialised by the caller. pfn_to_page, page_to_pfn, host_address, descriptor_mapped, mapping_of,
// origin_of, read_page, deferred_run and stats are lock-free once the 1 GiB chunk holding the address has been reserved
// (pfn_to_page reserves a missing chunk under an internal mutex; out-of-window chunks are always
// looked up under it; the first pfn_to_page of a pending section or host-pending PMD writes or maps
// it under the pending mutexes, which later callers pass without waiting). depopulate waits for
// every read_page in flight before it unmaps, so read_page never faults; a raw Page* from
// pfn_to_page carries no such protection.
class Vmemmap {
 public:
  // Kernel addresses are split into 1 GiB chunks; a chunk's host range is reserved on first use.
  static constexpr unsigned kChunkShift = 30;

  // Reserves no host memory up front; host address space is reserved lazily per 1 GiB of window.
  // Requires: the arch page size is a multiple of the host page size (4 KiB on x86-64 hosts).
  Vmemmap(const ArchProfile& arch, const Behaviour& behaviour, KernelLog& log, VmemmapConfig config);
  ~Vmemmap();
  Vmemmap(const Vmemmap&) = delete;
  Vmemmap& operator=(const Vmemmap&) = delete;

  const ArchProfile& arch() const { return m_arch; }
  const VmemmapConfig& config() const { return m_config; }

  // Kernel address of pfn's struct page: start + (pfn - memstart_pfn) * 64, modulo 2^64 — arm64
  // pfns below memstart or far above the linear map wrap exactly as seed 003 describes.
  VmemmapAddr page_addr(Pfn pfn) const;
  // Is every descriptor of [start, start+n) inside [VMEMMAP_START, VMEMMAP_END)?
  bool in_window(Pfn start, NrPages n) const;

  // __populate_section_memmap() -> vmemmap_populate() for [start, start+n) (spec §4.2). Callers
  // pass one section at a time (arm64 WARNs once otherwise, as the kernel does).
  // Return: -ENOMEM when start or n is not subsection aligned (WARN_ONCE, as
  // __populate_section_memmap), when the altmap is exhausted, when x86 has no PSE and an altmap
  // is given ("vmemmap_populate: no cpu support for altmap allocations", logged once), or when
  // the host refuses a mapping; -EINVAL when ram_origin is not Boot or Buddy; -ERANGE when the
  // descriptors lie outside the window and Behaviour::out_of_window is HardError (seed 003).
  // Under the 6.1 rule an out-of-window range is populated anyway at its (possibly wrapped)
  // address; arm64 logs one WARN per call.
  // `ram_origin` says where non-altmap backing comes from (Boot during sparse_init, else Buddy).
  // Existing mappings are kept and shared; a failed call leaves every mapping it created removed
  // (altmap pages it took are given back with free_pages).
  // `compound` (memremap_pages with vmemmap_shift): when vmemmap_can_optimize() holds, the range is
  // populated by populate_compound() instead (__populate_section_memmap's choice).
  Result<void> populate(Pfn start, NrPages n, VmemAltmap* altmap, VmemmapOrigin ram_origin,
                        const CompoundMemmap* compound = nullptr);

  // vmemmap_populate_compound_pages() (x86, spec §4.14), base pages from the buddy only: for
  // each compound unit a fresh page for the head's vmemmap page and one for the next, and every
  // further vmemmap page of the unit maps that second page again (VmemmapOrigin::Shared) — the
  // same host memory, so a write through one alias reads back through all of them. A chunk that
  // starts inside a unit larger than a subsection (a 1 GiB unit's second and later sections)
  // maps all its vmemmap pages to the page just below it. Existing mappings are kept.
  // Return: -ENOMEM when the page below a reused chunk is not mapped, when the host refuses a
  // mapping, or when the Vmemmap's compound pages would exceed half of the host's
  // vm.max_map_count (each page of a de-duplicated unit is a host mapping of its own: about
  // 10 GiB of 2 MiB units or 8 GiB of 1 GiB units with the default 65530); -EINVAL when the arch
  // does not deduplicate such units. A failed call removes what it mapped.
  Result<void> populate_compound(Pfn start, NrPages n, const CompoundMemmap& compound);

  // vmemmap_free() for [start, start+n) (spec §4.2): x86 frees fully covered huge PMDs and fills
  // partly covered ones with 0xFD (PAGE_UNUSED), freeing them once all 2 MiB read 0xFD; base
  // pages are unmapped whole even when only partly covered; arm64 frees every page and block
  // touched. Freed backing goes back to `altmap` when one is given (x86: huge PMDs only).
  // Out of window: arm64 WARNs per call; under HardError nothing there was ever mapped and the
  // call does nothing. Unmapped memory is returned to the host and the range reads PROT_NONE again
  // (a huge PMD's mapping is replaced by a fresh reservation, base pages get MADV_DONTNEED +
  // PROT_NONE). Hot-added and device huge PMDs (origin other than Boot) are backed by host huge
  // pages where the host has them (MADV_HUGEPAGE): one fault per 2 MiB instead of 512.
  void depopulate(Pfn start, NrPages n, VmemAltmap* altmap);
  // depopulate() of each range in order, leaving the same mappings as one call per range, but
  // with one wait for read_page callers and the host unmapping of all ranges coalesced (the
  // vmemmap_free() calls of one __remove_pages()).
  struct FreeRange {
    Pfn start;
    NrPages n;
    VmemAltmap* altmap;
  };
  void depopulate(std::span<const FreeRange> ranges);

  // -- lock-free readers --
  // pfn_to_page(): the host address of pfn's descriptor. Touching it when its vmemmap page is
  // not mapped faults for real (SIGSEGV), as the kernel's access did in seed 004. Reserves the
  // address's 1 GiB chunk (PROT_NONE, no memory) if nothing has yet.
  // Lifetime: valid while the caller keeps the range populated (holds the hotplug lock, an
  // online-memory reference, or a pagemap reference).
  Page* pfn_to_page(Pfn pfn) const;
  // Requires: page came from pfn_to_page/host_address/writable_page of this Vmemmap.
  Pfn page_to_pfn(const Page* page) const;
  // Is the vmemmap page holding pfn's descriptor mapped?
  bool descriptor_mapped(Pfn pfn) const;
  // descriptor_mapped() of every pfn of [start, start + n), a huge PMD at a time. Lock-free.
  bool descriptors_mapped(Pfn start, NrPages n) const;
  // Checked read: a copy of the descriptor, or -EFAULT carrying the oops text the kernel prints
  // for the descriptor's kernel address (x86 "BUG: unable to handle page fault for address:
  // %016lx", arm64 "Unable to handle kernel paging request at virtual address %016lx"). Safe
  // against a concurrent depopulate. The copy is racy against concurrent descriptor writers, as
  // a kernel pfn walker's is.
  Result<Page> read_page(Pfn pfn) const;
  // Checked dereference of a struct page pointer (a compound_head, a folio): the descriptor at
  // kernel address kaddr, or -EFAULT with the oops text — x86 "general protection fault, probably
  // for non-canonical address ..." for a non-canonical address, the page-fault text otherwise when
  // kaddr is not a mapped descriptor of the window.
  Result<Page> read_page_at(uint64_t kaddr) const;
  // Checked write access for the model's own initialisation routines; -EFAULT when unmapped.
  Result<Page*> writable_page(Pfn pfn);
  // The same for a run: the descriptors from pfn that one mapping covers (to the end of its
  // vmemmap page, or of its 2 MiB PMD when huge), at most max_pages; -EFAULT when unmapped.
  Result<std::span<Page>> writable_run(Pfn pfn, uint64_t max_pages);

  // -- pending memmaps (DeferredSectionRun above) --
  // Records the runs' sections as pending. Requires: each section's memmap is populated, and
  // initialising it now would write exactly what its run describes; no descriptor of it is in use.
  // A writer, serialised with populate/depopulate by the caller (boot, or the hotplug lock).
  void defer_init(std::vector<DeferredSectionRun> runs);
  void defer_sections(const DeferredSectionRun& run);
  // pfn's section as a one-section run while it is pending, else nullopt. Lock-free. Under the
  // hotplug lock an answer may turn stale only by a reader materialising the section, which
  // writes exactly what the run describes, so an arithmetic count from the run stays true.
  std::optional<DeferredSectionRun> deferred_run(Pfn pfn) const;
  // Drops the pending state of every section wholly inside [start, start + n) without writing
  // it (its memmap is about to be unmapped) and materialises the pending sections the range covers
  // in part. A writer.
  void forget_pending(Pfn start, NrPages n);
  // Sections pending with a DeferredSectionRun (0 once everything is materialised or nothing was
  // deferred); device-pending sections are counted by device_pending_sections().
  uint64_t deferred_pending_sections() const;
  // Records run's sections as pending device memmap (DeviceMemmapRun above) and returns true, or
  // returns false having changed nothing when the run cannot be pending: empty, not whole units, a
  // descriptor not mapped, a section of it pending already, or the run table full. A writer.
  bool defer_device(const DeviceMemmapRun& run);
  // The pending device run of pfn's section, when pfn's section is device-pending (pfn itself may
  // be outside the run). Lock-free.
  std::optional<DeviceMemmapRun> device_run(Pfn pfn) const;
  uint64_t device_pending_sections() const;
  // deferred_init_memmap() for every pending section of [start, start + n): writes them now.
  // pfn_to_page, writable_page and depopulate call it for the pfns they touch, so a descriptor is
  // never handed out, written or unmapped before it is initialised; read_page answers a pending
  // section from its run instead (the same bytes, nothing written). Thread-safe: the
  // first caller writes under an internal mutex and publishes the section with a release store.
  void deferred_init_range(Pfn start, NrPages n) const;

  VmemmapMapKind mapping_of(Pfn pfn) const;
  VmemmapOrigin origin_of(Pfn pfn) const;  // meaningful only when mapped
  VmemmapStats stats() const;
  // Host address of pfn's descriptor, for mincore() residency tests and the map view.
  const void* host_address(Pfn pfn) const;

  // INV-VMEMMAP-1: a Huge mapping covers one whole, PMD-aligned window block.
  // INV-VMEMMAP-2: stats counters equal a recount of the mapping table.
  // INV-VMEMMAP-3: host protection matches the table (mapped <=> accessible) for sampled pages.
  // INV-VMEMMAP-4: base-page entries exist only under a page-table PMD, whose count of mapped
  //                entries equals a recount.
  // INV-VMEMMAP-5: a host-pending page is a Buddy (head or first tail) or Shared compound page, only
  //                host-pending pages carry the pending-file mark, and their count equals a recount.
  void check_invariants(InvariantReport& report) const;

 private:
  struct Impl;
  struct Deferred;
  // pfn_to_page() without deferred init: the address only (the deferred writer's own access).
  Page* raw_page(Pfn pfn) const;
  void deferred_init_section(SectionNr nr) const;
  // The descriptor pfn's pending section holds once materialised (deferred_init_section's bytes).
  Page pending_page(const DeferredSectionRun& run, Pfn pfn) const;
  // pending_page() for either kind of pending section; nullopt when pfn's bytes are its memory's.
  std::optional<Page> pending_descriptor(Pfn pfn) const;
  void write_device_section(const DeviceMemmapRun& run, SectionNr nr) const;
  const ArchProfile& m_arch;
  const Behaviour& m_behaviour;
  KernelLog& m_log;
  VmemmapConfig m_config;
  std::unique_ptr<Impl> m_impl;
  std::unique_ptr<Deferred> m_deferred;
};

}  // namespace sparsemem
