// Memory blocks and groups (drivers/base/memory.c): memoryN registry, online types, notifier chain,
// zone choice (spec §2.6, §4.7-4.8, §6.2, §11). Pure values; the Machine mutates them under its hotplug lock.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sparsemem/invariant.h"
#include "sparsemem/page.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"
#include "sparsemem/zone.h"

namespace sparsemem {

// ---- Names and parameters -------------------------------------------------------------------------

// mem->state (MEM_ONLINE = 1, MEM_GOING_OFFLINE = 2, MEM_OFFLINE = 4).
enum class MemoryBlockState : uint8_t { Online = 1, GoingOffline = 2, Offline = 4 };
const char* memory_block_state_name(MemoryBlockState s);  // "online", "going-offline", "offline"

// MMOP_OFFLINE, MMOP_ONLINE, MMOP_ONLINE_KERNEL, MMOP_ONLINE_MOVABLE: what a block is asked to become.
enum class OnlineType : uint8_t { Offline = 0, Online = 1, OnlineKernel = 2, OnlineMovable = 3 };
const char* online_type_name(OnlineType t);  // "offline", "online", "online_kernel", "online_movable"
// What the sysfs `state` and `auto_online_blocks` files accept (mhp_online_type_from_str): the exact,
// case-sensitive name with at most one trailing newline. "ONLINE", "online " and "" are nullopt.
std::optional<OnlineType> parse_online_type(std::string_view text);

// memory_hotplug.online_policy: which zone MMOP_ONLINE picks.
enum class OnlinePolicy : uint8_t { ContigZones, AutoMovable };
const char* online_policy_name(OnlinePolicy p);  // "contig-zones", "auto-movable"
std::optional<OnlinePolicy> parse_online_policy(std::string_view text);  // one trailing newline tolerated

// The boot and module parameters of memory hotplug (spec §6.2). Defaults are Debian 6.1's.
struct MemoryHotplugConfig {
  OnlineType auto_online_blocks = OnlineType::Offline;  // memhp_default_state= / auto_online_blocks
  OnlinePolicy online_policy = OnlinePolicy::ContigZones;
  unsigned auto_movable_ratio = 301;    // percent
  bool auto_movable_numa_aware = true;
  bool memmap_on_memory = false;        // memory_hotplug.memmap_on_memory (boot only)
  bool movable_node = false;            // movable_node boot option
};

// mhp_t flags of add_memory() (include/linux/memory_hotplug.h, same bits).
struct MhpFlags : StrongInt<MhpFlags> {
  using StrongInt::StrongInt;
  constexpr MhpFlags operator|(MhpFlags o) const { return MhpFlags(m_value | o.m_value); }
  constexpr bool has(MhpFlags f) const { return (m_value & f.m_value) == f.m_value && f.m_value; }
};
inline constexpr MhpFlags MHP_NONE{0};
inline constexpr MhpFlags MHP_MERGE_RESOURCE{1u << 0};    // merge with adjacent System RAM resources
inline constexpr MhpFlags MHP_MEMMAP_ON_MEMORY{1u << 1};  // memmap carved from the added range itself
inline constexpr MhpFlags MHP_NID_IS_MGID{1u << 2};       // the nid argument is a memory group id

// ---- Memory groups ---------------------------------------------------------------------------------

// A memory group id (31-bit xarray index, lowest free first).
struct MemoryGroupId : StrongInt<MemoryGroupId> {
  using StrongInt::StrongInt;
};

// struct memory_group: blocks added together (one ACPI DIMM = one static group; virtio-mem = dynamic).
struct MemoryGroup {
  MemoryGroupId id;
  unsigned nid = 0;
  bool is_dynamic = false;
  NrPages max_pages{0};   // static groups: pages the group may ever hold
  NrPages unit_pages{0};  // dynamic groups: unit of hot(un)plug, a power of two >= one block
  NrPages present_kernel_pages{0};
  NrPages present_movable_pages{0};
  unsigned nr_blocks = 0;  // memory blocks linked to the group
};

class MemoryGroups {
 public:
  // memory_group_register_static(). Return: -EINVAL for max_pages 0 or an impossible node;
  // -EBUSY when the 31-bit id space is exhausted.
  Result<MemoryGroupId> register_static(unsigned nid, NrPages max_pages);
  // memory_group_register_dynamic(). Return: -EINVAL unless unit_pages is a power of two of at
  // least one block, or for an impossible node; -EBUSY as above.
  Result<MemoryGroupId> register_dynamic(unsigned nid, NrPages unit_pages, NrPages pages_per_block);
  // memory_group_unregister(). Return: -EINVAL unknown id; -EBUSY while blocks are linked.
  Result<void> unregister(MemoryGroupId id);
  const MemoryGroup* find(MemoryGroupId id) const;
  MemoryGroup* find(MemoryGroupId id);
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [id, g] : m_groups) f(g);
  }
  size_t size() const { return m_groups.size(); }

 private:
  Result<MemoryGroupId> insert(MemoryGroup g);
  std::map<uint32_t, MemoryGroup> m_groups;
};

// ---- Memory blocks ---------------------------------------------------------------------------------

// struct memory_block: one memoryN device.
struct MemoryBlock {
  BlockId id;
  MemoryBlockState state = MemoryBlockState::Offline;
  unsigned nid = 0;               // the node it is linked to (boot: the last node linked)
  std::optional<ZoneType> zone;   // mem->zone: single zone while online, nullopt otherwise ("none")
  NrPages nr_vmemmap_pages{0};    // memmap_on_memory: the block's own first pages back its memmap
  std::optional<MemoryGroupId> group;
  bool boot = false;              // created by memory_dev_init() (its sections are early)
};

// The id -> block registry (the kernel's memory_blocks xarray): a two-level table, so lookup by id
// or pfn is two loads whatever the number of blocks. Leaves are allocated on first insert and kept.
// INV-BLOCK-REG-1: size() equals the number of present slots, and each slot holds its own id.
class MemoryBlockRegistry {
 public:
  static constexpr unsigned kLeafShift = 9;
  static constexpr uint64_t kLeafSize = uint64_t{1} << kLeafShift;

  // Empties the registry and sizes it for ids [0, nr_block_ids). Requires: pages_per_block is a
  // power of two.
  void reset(uint64_t nr_block_ids, NrPages pages_per_block);
  uint64_t capacity() const { return m_capacity; }
  NrPages pages_per_block() const { return NrPages(uint64_t{1} << m_block_pfn_shift); }
  BlockId block_id_of(Pfn pfn) const { return BlockId(pfn.value() >> m_block_pfn_shift); }
  Pfn block_start_pfn(BlockId id) const { return Pfn(id.value() << m_block_pfn_shift); }
  PfnRange block_range(BlockId id) const { return PfnRange{block_start_pfn(id), pages_per_block()}; }

  const MemoryBlock* find(BlockId id) const;
  MemoryBlock* find(BlockId id);
  const MemoryBlock* find_by_pfn(Pfn pfn) const { return find(block_id_of(pfn)); }
  // Return: the stored block; -EEXIST when the id is taken; -ERANGE beyond capacity().
  Result<MemoryBlock*> insert(const MemoryBlock& block);
  // Return: whether a block was removed.
  bool erase(BlockId id);
  size_t size() const { return m_size; }

  // Visits every block in ascending id order.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& leaf : m_leaves) {
      if (!leaf || !leaf->count) continue;
      for (uint64_t i = 0; i < kLeafSize; ++i)
        if (leaf->present[i]) f(leaf->blocks[i]);
    }
  }
  void check_invariants(InvariantReport& report) const;

 private:
  struct Leaf {
    std::array<MemoryBlock, kLeafSize> blocks{};
    std::bitset<kLeafSize> present;
    unsigned count = 0;
  };
  std::vector<std::unique_ptr<Leaf>> m_leaves;
  uint64_t m_capacity = 0;
  unsigned m_block_pfn_shift = 0;
  size_t m_size = 0;
};

// ---- Memory notifier chain (spec §11) --------------------------------------------------------------

enum class MemoryAction : uint8_t { GoingOnline, Online, CancelOnline, GoingOffline, Offline, CancelOffline };
const char* memory_action_name(MemoryAction a);  // "MEM_GOING_ONLINE", ...

// struct memory_notify. A node id of -1 means "no node-state change".
struct MemoryNotify {
  Pfn start_pfn;
  NrPages nr_pages;
  int status_change_nid_normal = -1;
  int status_change_nid = -1;
};

inline constexpr int NOTIFY_DONE = 0;
inline constexpr int NOTIFY_OK = 1;
inline constexpr int NOTIFY_STOP_MASK = 0x8000;
inline constexpr int NOTIFY_BAD = NOTIFY_STOP_MASK | 0x0002;
// notifier_from_errno(-ENOMEM) etc.: a veto carrying an errno; 0 becomes NOTIFY_OK.
constexpr int notifier_from_errno(int err) { return err ? NOTIFY_STOP_MASK | (NOTIFY_OK - err) : NOTIFY_OK; }
// notifier_to_errno(): strip the stop bit; values above NOTIFY_OK become NOTIFY_OK - value
// (NOTIFY_BAD -> -EPERM, NOTIFY_STOP -> 0). Returns 0 or a negative errno.
constexpr int notifier_to_errno(int ret) {
  ret &= ~NOTIFY_STOP_MASK;
  return ret > NOTIFY_OK ? NOTIFY_OK - ret : 0;
}
static_assert(notifier_to_errno(NOTIFY_BAD) == -1 && notifier_to_errno(notifier_from_errno(-12)) == -12);

// A notifier callback. It runs under the machine's hotplug lock, so it must not call back into
// hotplug operations of the same machine.
using MemoryNotifierFn = std::function<int(MemoryAction, const MemoryNotify&)>;

struct NotifierId : StrongInt<NotifierId> {
  using StrongInt::StrongInt;
};

// A blocking notifier chain: callbacks run in descending priority (registration order among
// equals); a return value with NOTIFY_STOP_MASK stops the walk and is the chain's result.
class MemoryNotifierChain {
 public:
  // `sees_memmap`: the callback may read page descriptors. Every driver's may; the model's own
  // callbacks that read only sections or counters say false, which lets online_pages() skip the
  // descriptor state only a MEM_GOING_ONLINE callback could see (see any_sees_memmap()).
  NotifierId add(MemoryNotifierFn fn, int priority, bool sees_memmap = true);
  bool remove(NotifierId id);
  int call(MemoryAction action, const MemoryNotify& arg) const;
  size_t size() const { return m_entries.size(); }
  bool any_sees_memmap() const;

 private:
  struct Entry {
    NotifierId id;
    int priority;
    MemoryNotifierFn fn;
    bool sees_memmap;
  };
  std::vector<Entry> m_entries;  // sorted by descending priority
  uint64_t m_next_id = 1;
};

// ---- Online page callback, page allocation, firmware memmap ---------------------------------------

// What an online page callback may do with the pages online_pages() hands it.
class OnlinePageOps {
 public:
  virtual ~OnlinePageOps() = default;
  // generic_online_page(): clear PG_reserved and give [pfn, pfn + 2^order) to the buddy; managed
  // pages and MemTotal grow.
  virtual void generic_online_page(Pfn pfn, unsigned order) = 0;
  // Keep [pfn, pfn + 2^order) out of the buddy as PageOffline pages holding a reference (virtio-mem's
  // fake-offline pages): not managed; offlining them fails -EBUSY "unmovable page" while referenced.
  virtual void set_page_offline(Pfn pfn, unsigned order) = 0;
};
// online_page_callback_t. A plain function pointer: restore_online_page_callback() compares it.
using OnlinePageCallback = void (*)(OnlinePageOps& ops, Pfn pfn, unsigned order);

// How an allocated page may be treated by offlining: movable pages (LRU) are migrated, unmovable
// ones (kernel allocations) make isolation fail.
enum class Migratability : uint8_t { Movable, Unmovable };

// One /sys/firmware/memmap entry added by add_memory() of plain "System RAM".
struct FirmwareMemmapEntry {
  PhysAddr start;
  PhysAddr last;  // inclusive, as the "end" file prints it
  std::string type;
  bool operator==(const FirmwareMemmapEntry&) const = default;
};

// ---- Zone choice (spec §4.8) and valid_zones (spec §6.2) -------------------------------------------

// Everything zone_for_pfn_range() reads. `online_page_zone(pfn)` answers pfn_to_online_page(pfn) ?
// zone of that page : nullopt (the dynamic-group scan of the auto-movable policy).
struct ZoneChoiceContext {
  std::span<const Node> nodes;
  const MemoryGroups& groups;
  const MemoryHotplugConfig& config;
  NrPages pages_per_section;
  std::function<std::optional<ZoneType>(Pfn)> online_page_zone;
};

// default_kernel_zone_for_pfn(): the first zone below Normal intersecting the range, else Normal.
ZoneType default_kernel_zone_for_pfn(const Node& node, Pfn start, NrPages n);
// zone_for_pfn_range(online_type, nid, group, start, n). Requires: nid < nodes.size();
// online_type != Offline.
ZoneType zone_for_pfn_range(const ZoneChoiceContext& ctx, OnlineType online_type, unsigned nid,
                            const MemoryGroup* group, Pfn start, NrPages n);
// The valid_zones text of an offline block, without the newline: the default zone, then the
// kernel and movable choices each when different ("Normal Movable", "Movable Normal", "DMA32 Movable").
std::string valid_zones_offline(const ZoneChoiceContext& ctx, unsigned nid, const MemoryGroup* group, Pfn start,
                                NrPages n);

}  // namespace sparsemem
