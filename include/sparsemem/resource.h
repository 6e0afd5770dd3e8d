// ResourceTree: the iomem resource tree, iomem_resource and struct resource (spec §2.7, §3, §4.16, §6.1).
// Not internally locked: like resource_lock, the owner serialises writers; const members may run concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sparsemem/arch.h"
#include "sparsemem/behaviour.h"
#include "sparsemem/invariant.h"
#include "sparsemem/klog.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

// A struct resource flags word (include/linux/ioport.h). Typed so that it never mixes with an
// address; the bit values are the kernel's, because traces and logs print them.
struct ResourceFlags : StrongInt<ResourceFlags> {
  using StrongInt::StrongInt;
  constexpr ResourceFlags operator|(ResourceFlags o) const { return ResourceFlags(m_value | o.m_value); }
  constexpr ResourceFlags operator&(ResourceFlags o) const { return ResourceFlags(m_value & o.m_value); }
  constexpr ResourceFlags operator~() const { return ResourceFlags(~m_value); }
  constexpr ResourceFlags& operator|=(ResourceFlags o) { return *this = *this | o; }
  // Every bit of `bits` is set (the kernel's `(flags & bits) == bits`).
  constexpr bool has(ResourceFlags bits) const { return (m_value & bits.m_value) == bits.m_value; }
  constexpr bool any(ResourceFlags bits) const { return (m_value & bits.m_value) != 0; }
};

inline constexpr ResourceFlags IORESOURCE_NONE{0};
inline constexpr ResourceFlags IORESOURCE_IO{0x00000100};
inline constexpr ResourceFlags IORESOURCE_MEM{0x00000200};
inline constexpr ResourceFlags IORESOURCE_TYPE_BITS{0x00001f00};
inline constexpr ResourceFlags IORESOURCE_PREFETCH{0x00002000};
inline constexpr ResourceFlags IORESOURCE_READONLY{0x00004000};
inline constexpr ResourceFlags IORESOURCE_MEM_64{0x00100000};
inline constexpr ResourceFlags IORESOURCE_WINDOW{0x00200000};
inline constexpr ResourceFlags IORESOURCE_EXT_TYPE_BITS{0x01000000};
inline constexpr ResourceFlags IORESOURCE_SYSRAM{0x01000000};
inline constexpr ResourceFlags IORESOURCE_SYSRAM_DRIVER_MANAGED{0x02000000};
inline constexpr ResourceFlags IORESOURCE_SYSRAM_MERGEABLE{0x04000000};
inline constexpr ResourceFlags IORESOURCE_EXCLUSIVE{0x08000000};
inline constexpr ResourceFlags IORESOURCE_DISABLED{0x10000000};
inline constexpr ResourceFlags IORESOURCE_BUSY{0x80000000};
inline constexpr ResourceFlags IORESOURCE_SYSTEM_RAM = IORESOURCE_MEM | IORESOURCE_SYSRAM;

// enum IORES_DESC_* (spec §2.7), same numbers.
enum class IoresDesc : uint8_t {
  None = 0,
  CrashKernel = 1,
  AcpiTables = 2,
  AcpiNvStorage = 3,
  PersistentMemory = 4,
  PersistentMemoryLegacy = 5,
  DevicePrivateMemory = 6,
  Reserved = 7,
  SoftReserved = 8,
  Cxl = 9,
};

// Stable handle of one resource. Ids are never reused, so a handle kept across a release reads
// as "unknown" (-EINVAL) instead of silently naming a different resource.
struct ResourceId : StrongInt<ResourceId> {
  using StrongInt::StrongInt;
};

// One struct resource, without its links (the tree owns those).
struct Resource {
  PhysAddr start;
  PhysAddr end;                     // inclusive, as struct resource spells it
  std::optional<std::string> name;  // nullopt is the kernel's NULL name: /proc/iomem prints "<BAD>"
  ResourceFlags flags;
  IoresDesc desc = IoresDesc::None;

  constexpr uint64_t size() const { return end.value() - start.value() + 1; }
  constexpr PhysRange range() const { return PhysRange{start, end}; }
};

// One line of /proc/iomem before formatting: pre-order position, nesting depth (0 = top level).
struct IomemEntry {
  ResourceId id;
  unsigned depth;
  Resource resource;
};

// region_intersects() answers (REGION_DISJOINT/INTERSECTS/MIXED, same numbers).
enum class RegionIntersect : uint8_t { Disjoint = 0, Intersects = 1, Mixed = 2 };

// Which region_intersects() is modelled (spec §3, §9.6).
enum class RegionIntersectsScope : uint8_t {
  Nested,        // 6.1.y: matching descendants of a non-matching top-level resource count
  TopLevelOnly,  // 6.1.0: only top-level resources are looked at
};

// Who reads /proc/iomem: without CAP_SYS_ADMIN every address prints as zero (spec §6.1).
enum class IomemReader : uint8_t { Privileged, Unprivileged };

// What release_mem_region_adjustable() did.
enum class AdjustOutcome : uint8_t {
  Deleted,        // the busy resource matched the range exactly and is gone (with its subtree)
  TrimmedStart,   // the range was its head: the resource now starts after the range
  TrimmedEnd,     // the range was its tail: the resource now ends before the range
  Split,          // the range was strictly inside: lower part keeps the id and the children
  NotFound,       // no busy System RAM resource contains the range; nothing changed
  ChildInTheWay,  // trimming or splitting would cut a child off (kernel WARN); nothing changed
};

struct AdjustResult {
  AdjustOutcome outcome;
  std::optional<ResourceId> upper;  // Split only: the new resource holding the upper part
};

// The callback of walk_system_ram_range(): one call per System RAM pfn range; a non-zero return
// stops the walk and becomes the walk's result (page_is_ram() relies on returning 1).
using SystemRamWalkFn = std::function<int(Pfn start_pfn, NrPages nr_pages)>;

// Root end of iomem_resource (spec §1.5): x86 spans the CPU-reported physical address width
// (0 .. 2^cpu_phys_bits - 1; QEMU's default is 40 bits), arm64 the full 64-bit space.
// Return: -EINVAL if cpu_phys_bits is 0 or above 64 on x86 (arm64 ignores it).
Result<PhysAddr> iomem_root_end(const ArchProfile& arch, unsigned cpu_phys_bits);

// The tree. The root (iomem_resource, "PCI mem", IORESOURCE_MEM) is ResourceTree::root() and spans
// [0, root_end]; every other resource lies somewhere below it.
//
// INV-IOMEM-1: every resource has start <= end.
// INV-IOMEM-2: a child lies inside its parent: parent.start <= child.start && child.end <= parent.end.
// INV-IOMEM-3: siblings are sorted and disjoint: sib[i].end < sib[i+1].start.
// INV-IOMEM-4: links agree: each child names its parent; every stored resource is reached exactly
//              once from the root; the root is its own parent and spans [0, root_end].
// INV-IOMEM-5: every resource is memory: (flags & IORESOURCE_TYPE_BITS) == IORESOURCE_MEM.
// INV-IOMEM-6: IORESOURCE_SYSRAM_MERGEABLE implies IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY.
// INV-IOMEM-7: a DevicePrivateMemory resource is busy (request_free_mem_region() requests it).
//
// Every modifying call either succeeds or returns an errno and leaves the tree exactly as it was.
class ResourceTree {
 public:
  // Requires: root_end from iomem_root_end(). `behaviour` selects region_intersects() semantics;
  // `log` (may be null) receives the lines the kernel prints.
  ResourceTree(const ArchProfile& arch, PhysAddr root_end, const Behaviour& behaviour = kLinux61,
               KernelLog* log = nullptr);

  ResourceId root() const { return m_root; }
  // The resource behind a handle, or nullptr for an unknown/released one. The pointer and the
  // spans below stay valid until the next modifying call.
  const Resource* find(ResourceId id) const;
  std::optional<ResourceId> parent_of(ResourceId id) const;
  std::span<const ResourceId> children_of(ResourceId id) const;
  // Number of resources below the root.
  size_t size() const { return m_nodes.size() - 1; }
  // All resources below the root in /proc/iomem order (pre-order, siblings ascending).
  std::vector<IomemEntry> entries() const;

  // insert_resource() (boot: firmware map, kernel image, ROMs, bridges): descends into any
  // resource that contains the new range (busy or not); at the level where it lands it adopts the
  // siblings it fully covers as children (an identical range is adopted too, so inserting
  // "Reserved" f0000-fffff over an existing "System ROM" f0000-fffff nests the ROM).
  // Flags and desc are stored as given.
  // Return: -EINVAL start > end, flags not IORESOURCE_MEM typed, unknown parent;
  //         -EBUSY partial overlap with a resource at the landing level, or outside the parent.
  Result<ResourceId> insert_resource(ResourceId parent, PhysAddr start, PhysAddr end,
                                     std::optional<std::string_view> name, ResourceFlags flags,
                                     IoresDesc desc = IoresDesc::None);

  // request_resource(): insert directly under `parent` only if the range overlaps none of its
  // children. Return: -EINVAL as insert_resource(); -EBUSY on any overlap or outside the parent.
  Result<ResourceId> request_resource(ResourceId parent, PhysAddr start, PhysAddr end,
                                      std::optional<std::string_view> name, ResourceFlags flags,
                                      IoresDesc desc = IoresDesc::None);

  // __request_region(parent, start, n, name, flags) (spec §2.7): the new resource is busy; it
  // descends into overlapping children that are not busy and lands where it overlaps nothing.
  // Its flags = type and extended type bits (MEM, SYSRAM) of the parent it lands under | BUSY |
  // flags; its desc is that parent's desc. A conflict with a DevicePrivateMemory resource logs
  // "Unaddressable device <name> [mem ..] conflicts with [mem ..]".
  // Return: -EBUSY on overlap with a busy resource, on a partial overlap, outside the parent,
  //         n == 0 or a range that wraps (register_memory_resource maps this to -EEXIST);
  //         -EINVAL unknown parent.
  Result<ResourceId> request_region(ResourceId parent, PhysAddr start, uint64_t n, std::optional<std::string_view> name,
                                    ResourceFlags flags = IORESOURCE_NONE);
  // request_mem_region(): request_region() under the root.
  Result<ResourceId> request_mem_region(PhysAddr start, uint64_t n, std::optional<std::string_view> name) {
    return request_region(m_root, start, n, name);
  }

  // release_resource(): unlink the resource together with its subtree (every handle in it dies).
  // Return: -EINVAL unknown handle or the root.
  Result<void> release_resource(ResourceId id);
  // remove_resource(): unlink only this resource; its children move up into its place.
  // Return: -EINVAL unknown handle or the root.
  Result<void> remove_resource(ResourceId id);
  // __release_region(parent, start, n): find the busy resource exactly [start, start+n-1],
  // descending through non-busy containers, and release it with its subtree.
  // Return: -EINVAL when there is none (logs "Trying to free nonexistent resource <..-..>").
  Result<void> release_region(ResourceId parent, PhysAddr start, uint64_t n);

  // release_mem_region_adjustable(start, size) (spec §2.7, used by hot-remove): descend through
  // non-busy memory resources to the busy System RAM resource containing the range, then delete,
  // trim or split it. Never returns an error; see AdjustOutcome for what happened.
  AdjustResult release_mem_region_adjustable(PhysAddr start, uint64_t size);

  // merge_system_ram_resource(res) (spec §2.7, MHP_MERGE_RESOURCE): mark res MERGEABLE, merge it
  // with the next and then the previous sibling when flags, name and desc are equal, the ranges
  // touch and neither has children. Names compare by text: the kernel compares name pointers, and
  // every hotplug caller passes one literal per name. Return: the handle that now holds the range
  // (the previous sibling's when it absorbed res; res's otherwise).
  // -EINVAL unknown handle, or res is not IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY (kernel WARN).
  Result<ResourceId> merge_system_ram_resource(ResourceId id);

  // Overwrite a resource's flags (kmem turns its "daxX.Y" region into a non-busy SYSTEM_RAM
  // container this way). Return: -EINVAL unknown handle, the root, or flags not MEM typed.
  Result<void> set_flags(ResourceId id, ResourceFlags flags);

  // request_free_mem_region(base, size, name) (spec §4.16): size is rounded up to the section
  // size; candidates start at min(base.end, ceiling) - size + 1 and step down by size while
  // candidate > size and candidate >= base.start; the first candidate overlapping no child of
  // `base` is requested under the root and gets desc DevicePrivateMemory.
  // `ceiling` is PHYSMEM_END (x86 6.1.y: physmem_end; 6.1.0 and arm64: 2^MAX_PHYSMEM_BITS - 1).
  // Return: -ERANGE no slot (also size 0, or when the final request fails); -EINVAL unknown base.
  Result<ResourceId> request_free_mem_region(ResourceId base, uint64_t size, std::optional<std::string_view> name,
                                             PhysAddr ceiling);

  // region_intersects(start, size, flags, desc) (spec §3) with the semantics chosen by the
  // Behaviour given at construction, or explicitly. A resource matches when it has every bit of
  // `flags` and (desc == None or its desc equals desc). Holes covered by no resource never count.
  // Worked example (e_kmem): Persistent Memory 180000000-37fdfffff > dax0.0 188000000-1bfffffff
  // (SYSTEM_RAM, not busy) > System RAM (kmem); for SYSTEM_RAM, 6.1.y answers INTERSECTS for
  // 188000000+128M, MIXED for 180000000+1G, DISJOINT for 180000000+2M; 6.1.0 DISJOINT for all.
  // Requires: size > 0.
  RegionIntersect region_intersects(PhysAddr start, uint64_t size, ResourceFlags flags, IoresDesc desc) const;
  RegionIntersect region_intersects(PhysAddr start, uint64_t size, ResourceFlags flags, IoresDesc desc,
                                    RegionIntersectsScope scope) const;

  // walk_system_ram_range(start_pfn, nr_pages, cb) (spec §3): in pre-order, each resource that
  // has IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY and overlaps the window is clipped to it and,
  // when it covers at least one whole page, passed to cb as [PFN_UP(start), PFN_DOWN(end + 1)).
  // A busy "System RAM (kmem)" nested in a non-busy container counts; the container does not.
  // Return: the last callback value (non-zero stops the walk), or -EINVAL when no callback ran
  // (the kernel also stops at the first sub-page piece before any callback ran).
  int walk_system_ram_range(Pfn start_pfn, NrPages nr_pages, const SystemRamWalkFn& cb) const;
  // page_is_ram(pfn): the walk over one page finds System RAM.
  bool page_is_ram(Pfn pfn) const;

  // /proc/iomem (spec §6.1): "<indent><start>-<end> : <name>\n" per resource in pre-order,
  // indent two spaces per depth capped at depth 5, lowercase hex zero-padded to 8 digits (4 when
  // the root ends below 0x10000), "<BAD>" for a null name. Pure.
  std::string render(IomemReader reader = IomemReader::Privileged) const;

  void check_invariants(InvariantReport& report) const;

 private:
  struct Node {
    Resource res;
    ResourceId parent;                 // the root names itself
    std::vector<ResourceId> children;  // sorted by start (INV-IOMEM-3)
  };
  // Where a range would go directly under `parent` (the kernel's __request_resource()).
  struct Probe {
    enum class Kind : uint8_t { Fits, OutsideParent, Conflict } kind;
    size_t index = 0;     // Fits: insertion position; Conflict: position of the first overlapping child
    ResourceId conflict;  // Conflict only
  };

  Node* node(ResourceId id);
  const Node* node(ResourceId id) const;
  Probe probe(ResourceId parent, PhysAddr start, PhysAddr end) const;
  ResourceId link_new(ResourceId parent, size_t index, Resource res);
  void erase_subtree(ResourceId id);
  void unlink_from_parent(ResourceId id);
  std::optional<Resource> find_next_iomem_res(PhysAddr start, PhysAddr end, ResourceFlags flags, IoresDesc desc) const;
  template <class F>
  void visit_preorder(ResourceId from, unsigned depth, F& f) const;
  Result<void> validate_new(PhysAddr start, PhysAddr end, ResourceFlags flags) const;

  ArchProfile m_arch;
  Behaviour m_behaviour;
  KernelLog* m_log;
  PhysAddr m_root_end;  // cross-checked against the root node (INV-IOMEM-4)
  ResourceId m_root{0};
  uint64_t m_next_id = 1;
  std::unordered_map<ResourceId, Node> m_nodes;
};

// "[mem 0x%08llx-0x%08llx]" with the decoded flags the kernel's %pR adds (" 64bit", " pref",
// " window", " disabled"), as printed in log lines.
std::string format_resource(const Resource& res);

}  // namespace sparsemem
