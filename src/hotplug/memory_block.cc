// Memory block registry, memory groups and the hotplug parameter names of drivers/base/memory.c and
// mm/memory_hotplug.c. Pure data structures; the owner serialises writers (the hotplug lock).
#include "sparsemem/memory_block.h"

#include <bit>

namespace sparsemem {

namespace {
constexpr unsigned kMaxNumNodes = 1u << NODES_SHIFT;
constexpr uint32_t kMaxGroupId = (uint32_t{1} << 31) - 1;  // xa_limit_31b

// sysfs hands the written bytes over with their newline; the kernel's sysfs_streq() tolerates one.
std::string_view strip_one_newline(std::string_view s) {
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}
}  // namespace

const char* memory_block_state_name(MemoryBlockState s) {
  switch (s) {
    case MemoryBlockState::Online: return "online";
    case MemoryBlockState::GoingOffline: return "going-offline";
    case MemoryBlockState::Offline: return "offline";
  }
  return "?";
}

const char* online_type_name(OnlineType t) {
  switch (t) {
    case OnlineType::Offline: return "offline";
    case OnlineType::Online: return "online";
    case OnlineType::OnlineKernel: return "online_kernel";
    case OnlineType::OnlineMovable: return "online_movable";
  }
  return "?";
}

std::optional<OnlineType> parse_online_type(std::string_view text) {
  const std::string_view s = strip_one_newline(text);
  for (OnlineType t : {OnlineType::Offline, OnlineType::Online, OnlineType::OnlineKernel, OnlineType::OnlineMovable})
    if (s == online_type_name(t)) return t;
  return std::nullopt;
}

const char* online_policy_name(OnlinePolicy p) {
  return p == OnlinePolicy::AutoMovable ? "auto-movable" : "contig-zones";
}

std::optional<OnlinePolicy> parse_online_policy(std::string_view text) {
  const std::string_view s = strip_one_newline(text);
  if (s == "contig-zones") return OnlinePolicy::ContigZones;
  if (s == "auto-movable") return OnlinePolicy::AutoMovable;
  return std::nullopt;
}

// ---- MemoryGroups ----

Result<MemoryGroupId> MemoryGroups::insert(MemoryGroup g) {
  // xa_alloc(): the lowest free id.
  uint32_t id = 0;
  for (const auto& [used, grp] : m_groups) {
    if (used != id) break;
    ++id;
  }
  if (id > kMaxGroupId) return fail(Errno::Busy, "memory group ids exhausted");
  g.id = MemoryGroupId(id);
  m_groups.emplace(id, g);
  return g.id;
}

Result<MemoryGroupId> MemoryGroups::register_static(unsigned nid, NrPages max_pages) {
  if (max_pages.value() == 0) return fail(Errno::Inval, "static memory group needs max_pages > 0");
  if (nid >= kMaxNumNodes) return fail(Errno::Inval, fmt::format("node {} is not possible", nid));
  MemoryGroup g;
  g.nid = nid;
  g.max_pages = max_pages;
  return insert(g);
}

Result<MemoryGroupId> MemoryGroups::register_dynamic(unsigned nid, NrPages unit_pages, NrPages pages_per_block) {
  if (unit_pages.value() == 0 || !std::has_single_bit(unit_pages.value()) || unit_pages < pages_per_block)
    return fail(Errno::Inval, fmt::format("dynamic memory group unit of {} pages is not a power of two of at "
                                          "least one block ({} pages)",
                                          unit_pages.value(), pages_per_block.value()));
  if (nid >= kMaxNumNodes) return fail(Errno::Inval, fmt::format("node {} is not possible", nid));
  MemoryGroup g;
  g.nid = nid;
  g.is_dynamic = true;
  g.unit_pages = unit_pages;
  return insert(g);
}

Result<void> MemoryGroups::unregister(MemoryGroupId id) {
  auto it = m_groups.find(static_cast<uint32_t>(id.value()));
  if (id.value() > kMaxGroupId || it == m_groups.end())
    return fail(Errno::Inval, fmt::format("no memory group {}", id.value()));
  if (it->second.nr_blocks)
    return fail(Errno::Busy, fmt::format("memory group {} still has {} blocks", id.value(), it->second.nr_blocks));
  m_groups.erase(it);
  return {};
}

const MemoryGroup* MemoryGroups::find(MemoryGroupId id) const {
  if (id.value() > kMaxGroupId) return nullptr;
  auto it = m_groups.find(static_cast<uint32_t>(id.value()));
  return it == m_groups.end() ? nullptr : &it->second;
}

MemoryGroup* MemoryGroups::find(MemoryGroupId id) {
  return const_cast<MemoryGroup*>(static_cast<const MemoryGroups*>(this)->find(id));
}

// ---- MemoryBlockRegistry ----

void MemoryBlockRegistry::reset(uint64_t nr_block_ids, NrPages pages_per_block) {
  SPM_CHECK(std::has_single_bit(pages_per_block.value()), "pages per block must be a power of two");
  m_capacity = nr_block_ids;
  m_block_pfn_shift = static_cast<unsigned>(std::countr_zero(pages_per_block.value()));
  m_leaves.clear();
  m_leaves.resize((nr_block_ids + kLeafSize - 1) >> kLeafShift);
  m_size = 0;
}

const MemoryBlock* MemoryBlockRegistry::find(BlockId id) const {
  const uint64_t root = id.value() >> kLeafShift;
  if (id.value() >= m_capacity || !m_leaves[root]) return nullptr;
  const Leaf& leaf = *m_leaves[root];
  const uint64_t i = id.value() & (kLeafSize - 1);
  return leaf.present[i] ? &leaf.blocks[i] : nullptr;
}

MemoryBlock* MemoryBlockRegistry::find(BlockId id) {
  return const_cast<MemoryBlock*>(static_cast<const MemoryBlockRegistry*>(this)->find(id));
}

Result<MemoryBlock*> MemoryBlockRegistry::insert(const MemoryBlock& block) {
  if (block.id.value() >= m_capacity)
    return fail(Errno::Range, fmt::format("memory block {} beyond the {} possible blocks", block.id.value(), m_capacity));
  auto& leaf = m_leaves[block.id.value() >> kLeafShift];
  if (!leaf) leaf = std::make_unique<Leaf>();
  const uint64_t i = block.id.value() & (kLeafSize - 1);
  if (leaf->present[i]) return fail(Errno::Exist, fmt::format("memory block {} exists", block.id.value()));
  leaf->blocks[i] = block;
  leaf->present[i] = true;
  ++leaf->count;
  ++m_size;
  return &leaf->blocks[i];
}

bool MemoryBlockRegistry::erase(BlockId id) {
  if (!find(id)) return false;
  Leaf& leaf = *m_leaves[id.value() >> kLeafShift];
  const uint64_t i = id.value() & (kLeafSize - 1);
  leaf.present[i] = false;
  leaf.blocks[i] = MemoryBlock{};
  --leaf.count;
  --m_size;
  return true;
}

void MemoryBlockRegistry::check_invariants(InvariantReport& report) const {
  size_t n = 0;
  for (uint64_t r = 0; r < m_leaves.size(); ++r) {
    const Leaf* leaf = m_leaves[r].get();
    if (!leaf) continue;
    if (leaf->present.count() != leaf->count)
      report.fail("INV-BLOCK-REG-1", "leaf {} counts {} blocks but holds {}", r, leaf->count, leaf->present.count());
    for (uint64_t i = 0; i < kLeafSize; ++i) {
      if (!leaf->present[i]) continue;
      ++n;
      if (leaf->blocks[i].id.value() != (r << kLeafShift) + i)
        report.fail("INV-BLOCK-REG-1", "slot {} holds block {}", (r << kLeafShift) + i, leaf->blocks[i].id.value());
    }
  }
  if (n != m_size) report.fail("INV-BLOCK-REG-1", "registry size {} but {} blocks present", m_size, n);
}

}  // namespace sparsemem
