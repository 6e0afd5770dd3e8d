// The iomem resource tree of resource.h: inserts, requests, release, adjust, merge, lookups and /proc/iomem.
// Owned by the mm layer; callers serialise modifications as resource.h states.
#include "sparsemem/resource.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <unordered_set>

namespace sparsemem {

namespace {

constexpr uint64_t kMaxAddr = std::numeric_limits<uint64_t>::max();

// The kernel's is_type_match(): every requested flag bit present, and the desc if one is asked for.
bool is_type_match(const Resource& r, ResourceFlags flags, IoresDesc desc) {
  return r.flags.has(flags) && (desc == IoresDesc::None || r.desc == desc);
}

bool overlaps(const Resource& r, uint64_t start, uint64_t end) {
  return r.start.value() <= end && r.end.value() >= start;
}

// [start, start + n - 1], or nullopt when n is 0 or the range wraps: both make the kernel's
// __request_resource() report the parent itself as the conflict.
std::optional<uint64_t> inclusive_end(PhysAddr start, uint64_t n) {
  if (n == 0 || n - 1 > kMaxAddr - start.value()) return std::nullopt;
  return start.value() + n - 1;
}

// What the tree-walking helpers tell visit_preorder() to do next.
enum class Visit : uint8_t { Continue, SkipChildren, Stop };

}  // namespace

Result<PhysAddr> iomem_root_end(const ArchProfile& arch, unsigned cpu_phys_bits) {
  // arm64's iomem_resource spans the whole 64-bit space whatever the CPU reports (spec §1.5).
  if (arch.family == ArchFamily::Arm64) return PhysAddr(kMaxAddr);
  if (cpu_phys_bits == 0 || cpu_phys_bits > 64)
    return fail(Errno::Inval, fmt::format("cpu physical address bits {} out of range 1..64", cpu_phys_bits));
  if (cpu_phys_bits == 64) return PhysAddr(kMaxAddr);
  return PhysAddr((uint64_t{1} << cpu_phys_bits) - 1);
}

std::string format_resource(const Resource& res) {
  std::string s;
  if (res.flags.any(IORESOURCE_MEM)) {
    s = fmt::format("[mem {:#010x}-{:#010x}", res.start.value(), res.end.value());
  } else {
    s = fmt::format("[??? {:#010x}-{:#010x} flags {:#x}", res.start.value(), res.end.value(), res.flags.value());
    return s + "]";
  }
  if (res.flags.any(IORESOURCE_MEM_64)) s += " 64bit";
  if (res.flags.any(IORESOURCE_PREFETCH)) s += " pref";
  if (res.flags.any(IORESOURCE_WINDOW)) s += " window";
  if (res.flags.any(IORESOURCE_DISABLED)) s += " disabled";
  return s + "]";
}

ResourceTree::ResourceTree(const ArchProfile& arch, PhysAddr root_end, const Behaviour& behaviour, KernelLog* log)
    : m_arch(arch), m_behaviour(behaviour), m_log(log), m_root_end(root_end) {
  Node root;
  root.res = Resource{PhysAddr(0), root_end, std::string("PCI mem"), IORESOURCE_MEM, IoresDesc::None};
  root.parent = m_root;
  m_nodes.emplace(m_root, std::move(root));
}

ResourceTree::Node* ResourceTree::node(ResourceId id) {
  auto it = m_nodes.find(id);
  return it == m_nodes.end() ? nullptr : &it->second;
}

const ResourceTree::Node* ResourceTree::node(ResourceId id) const {
  auto it = m_nodes.find(id);
  return it == m_nodes.end() ? nullptr : &it->second;
}

const Resource* ResourceTree::find(ResourceId id) const {
  const Node* n = node(id);
  return n ? &n->res : nullptr;
}

std::optional<ResourceId> ResourceTree::parent_of(ResourceId id) const {
  const Node* n = node(id);
  if (!n || id == m_root) return std::nullopt;
  return n->parent;
}

std::span<const ResourceId> ResourceTree::children_of(ResourceId id) const {
  const Node* n = node(id);
  if (!n) return {};
  return n->children;
}

template <class F>
void ResourceTree::visit_preorder(ResourceId from, unsigned depth, F& f) const {
  // Returns through `stop` so that a Stop anywhere ends the whole walk, not just one level.
  bool stop = false;
  auto rec = [&](auto& self, ResourceId id, unsigned d) -> void {
    for (ResourceId c : node(id)->children) {
      Visit v = f(c, d);
      if (v == Visit::Stop) {
        stop = true;
        return;
      }
      if (v == Visit::Continue) {
        self(self, c, d + 1);
        if (stop) return;
      }
    }
  };
  rec(rec, from, depth);
}

std::vector<IomemEntry> ResourceTree::entries() const {
  std::vector<IomemEntry> out;
  out.reserve(size());
  auto f = [&](ResourceId id, unsigned depth) {
    out.push_back(IomemEntry{id, depth, node(id)->res});
    return Visit::Continue;
  };
  visit_preorder(m_root, 0, f);
  return out;
}

ResourceTree::Probe ResourceTree::probe(ResourceId parent, PhysAddr start, PhysAddr end) const {
  const Node* p = node(parent);
  if (end < start || start < p->res.start || end > p->res.end) return Probe{Probe::Kind::OutsideParent};
  // Siblings are sorted and disjoint (INV-IOMEM-3), so their ends ascend too: the first child
  // ending at or after `start` is the only candidate for the first overlap.
  const auto& kids = p->children;
  auto it = std::partition_point(kids.begin(), kids.end(), [&](ResourceId c) { return node(c)->res.end < start; });
  size_t idx = static_cast<size_t>(it - kids.begin());
  if (it == kids.end() || node(*it)->res.start > end) return Probe{Probe::Kind::Fits, idx};
  return Probe{Probe::Kind::Conflict, idx, *it};
}

ResourceId ResourceTree::link_new(ResourceId parent, size_t index, Resource res) {
  ResourceId id(m_next_id++);
  Node n;
  n.res = std::move(res);
  n.parent = parent;
  m_nodes.emplace(id, std::move(n));
  auto& kids = node(parent)->children;
  kids.insert(kids.begin() + static_cast<std::ptrdiff_t>(index), id);
  return id;
}

void ResourceTree::unlink_from_parent(ResourceId id) {
  auto& kids = node(node(id)->parent)->children;
  kids.erase(std::find(kids.begin(), kids.end(), id));
}

void ResourceTree::erase_subtree(ResourceId id) {
  std::vector<ResourceId> pending{id};
  while (!pending.empty()) {
    ResourceId cur = pending.back();
    pending.pop_back();
    const Node* n = node(cur);
    pending.insert(pending.end(), n->children.begin(), n->children.end());
    m_nodes.erase(cur);
  }
}

Result<void> ResourceTree::validate_new(PhysAddr start, PhysAddr end, ResourceFlags flags) const {
  if (start > end)
    return fail(Errno::Inval, fmt::format("resource start {:#x} after end {:#x}", start.value(), end.value()));
  // This tree is iomem_resource: everything in it is memory (INV-IOMEM-5).
  if ((flags & IORESOURCE_TYPE_BITS) != IORESOURCE_MEM)
    return fail(Errno::Inval, fmt::format("resource flags {:#x} are not IORESOURCE_MEM", flags.value()));
  return {};
}

Result<ResourceId> ResourceTree::insert_resource(ResourceId parent, PhysAddr start, PhysAddr end,
                                                 std::optional<std::string_view> name, ResourceFlags flags,
                                                 IoresDesc desc) {
  SPM_TRY(validate_new(start, end, flags));
  if (!node(parent)) return fail(Errno::Inval, "insert_resource: unknown parent");
  Resource res{start, end, name ? std::optional<std::string>(*name) : std::nullopt, flags, desc};

  ResourceId at = parent;
  Probe pr;
  for (;;) {
    pr = probe(at, start, end);
    if (pr.kind == Probe::Kind::Fits) return link_new(at, pr.index, std::move(res));
    if (pr.kind == Probe::Kind::OutsideParent)
      return fail(Errno::Busy,
                  fmt::format("{} does not fit in {}", format_resource(res), format_resource(node(at)->res)));
    const Resource& first = node(pr.conflict)->res;
    const bool contains = first.start <= start && first.end >= end;
    const bool identical = first.start == start && first.end == end;
    // A strictly larger resource takes the new one inside it, busy or not; an identical one is
    // adopted below instead (the later insert becomes the parent).
    if (!contains || identical) break;
    at = pr.conflict;
  }

  // Adopt every sibling from the first overlap on that starts inside the new range; each must
  // lie wholly inside it, else the insert conflicts and nothing changes.
  auto& kids = node(at)->children;
  size_t last = pr.index;
  for (size_t i = pr.index; i < kids.size() && node(kids[i])->res.start <= end; ++i) {
    const Resource& r = node(kids[i])->res;
    if (r.start < start || r.end > end)
      return fail(Errno::Busy, fmt::format("{} conflicts with {} {}", format_resource(res), r.name.value_or("<BAD>"),
                                           format_resource(r)));
    last = i + 1;
  }
  std::vector<ResourceId> adopted(kids.begin() + static_cast<std::ptrdiff_t>(pr.index),
                                  kids.begin() + static_cast<std::ptrdiff_t>(last));
  kids.erase(kids.begin() + static_cast<std::ptrdiff_t>(pr.index), kids.begin() + static_cast<std::ptrdiff_t>(last));
  ResourceId id = link_new(at, pr.index, std::move(res));
  for (ResourceId c : adopted) node(c)->parent = id;
  node(id)->children = std::move(adopted);
  return id;
}

Result<ResourceId> ResourceTree::request_resource(ResourceId parent, PhysAddr start, PhysAddr end,
                                                  std::optional<std::string_view> name, ResourceFlags flags,
                                                  IoresDesc desc) {
  SPM_TRY(validate_new(start, end, flags));
  if (!node(parent)) return fail(Errno::Inval, "request_resource: unknown parent");
  Resource res{start, end, name ? std::optional<std::string>(*name) : std::nullopt, flags, desc};
  Probe pr = probe(parent, start, end);
  if (pr.kind != Probe::Kind::Fits)
    return fail(Errno::Busy, fmt::format("request_resource {} conflicts", format_resource(res)));
  return link_new(parent, pr.index, std::move(res));
}

Result<ResourceId> ResourceTree::request_region(ResourceId parent, PhysAddr start, uint64_t n,
                                                std::optional<std::string_view> name, ResourceFlags flags) {
  if (!node(parent)) return fail(Errno::Inval, "request_region: unknown parent");
  std::optional<uint64_t> last = inclusive_end(start, n);
  if (!last) return fail(Errno::Busy, fmt::format("request_region: empty or wrapping range at {:#x}", start.value()));
  const PhysAddr end(*last);

  ResourceId at = parent;
  for (;;) {
    const Node* p = node(at);
    // Flags and desc are recomputed at every level: the resource takes them from the parent it
    // finally lands under (a region under kmem's SYSTEM_RAM "daxX.Y" becomes SYSRAM too).
    Resource res{start, end, name ? std::optional<std::string>(*name) : std::nullopt,
                 (p->res.flags & (IORESOURCE_TYPE_BITS | IORESOURCE_EXT_TYPE_BITS)) | IORESOURCE_BUSY | flags,
                 p->res.desc};
    Probe pr = probe(at, start, end);
    if (pr.kind == Probe::Kind::Fits) return link_new(at, pr.index, std::move(res));
    if (pr.kind == Probe::Kind::Conflict) {
      const Resource& c = node(pr.conflict)->res;
      if (c.desc == IoresDesc::DevicePrivateMemory && m_log)
        m_log->log(LogLevel::Warn, "Unaddressable device {} {} conflicts with {}", c.name.value_or("(null)"),
                   format_resource(c), format_resource(res));
      if (!c.flags.any(IORESOURCE_BUSY)) {
        at = pr.conflict;
        continue;
      }
      return fail(Errno::Busy, fmt::format("{} conflicts with {} {}", format_resource(res), c.name.value_or("<BAD>"),
                                           format_resource(c)));
    }
    return fail(Errno::Busy, fmt::format("{} does not fit in {}", format_resource(res), format_resource(p->res)));
  }
}

Result<void> ResourceTree::release_resource(ResourceId id) {
  if (id == m_root || !node(id)) return fail(Errno::Inval, "release_resource: unknown resource");
  unlink_from_parent(id);
  erase_subtree(id);
  return {};
}

Result<void> ResourceTree::remove_resource(ResourceId id) {
  if (id == m_root || !node(id)) return fail(Errno::Inval, "remove_resource: unknown resource");
  Node* n = node(id);
  const ResourceId parent = n->parent;
  std::vector<ResourceId> kids = std::move(n->children);
  auto& siblings = node(parent)->children;
  auto pos = std::find(siblings.begin(), siblings.end(), id);
  // The children lay inside `id`, which lay between its neighbours: splicing them in its place
  // keeps the sibling list sorted (INV-IOMEM-3).
  pos = siblings.erase(pos);
  siblings.insert(pos, kids.begin(), kids.end());
  for (ResourceId c : kids) node(c)->parent = parent;
  m_nodes.erase(id);
  return {};
}

Result<void> ResourceTree::release_region(ResourceId parent, PhysAddr start, uint64_t n) {
  if (!node(parent)) return fail(Errno::Inval, "release_region: unknown parent");
  std::optional<uint64_t> last = inclusive_end(start, n);
  if (last) {
    ResourceId at = parent;
    bool descended = true;
    while (descended) {
      descended = false;
      for (ResourceId c : node(at)->children) {
        const Resource& r = node(c)->res;
        if (!(r.start.value() <= start.value() && r.end.value() >= *last)) continue;
        if (!r.flags.any(IORESOURCE_BUSY)) {
          at = c;
          descended = true;
          break;
        }
        if (r.start == start && r.end.value() == *last) {
          unlink_from_parent(c);
          erase_subtree(c);
          return {};
        }
        break;
      }
    }
  }
  const uint64_t end = start.value() + n - 1;  // the kernel prints the wrapped value as is
  if (m_log) m_log->log(LogLevel::Warn, "Trying to free nonexistent resource <{:#018x}-{:#018x}>", start.value(), end);
  return fail(Errno::Inval, fmt::format("no busy resource {:#x}-{:#x}", start.value(), end));
}

AdjustResult ResourceTree::release_mem_region_adjustable(PhysAddr start, uint64_t size) {
  std::optional<uint64_t> last = inclusive_end(start, size);
  if (!last || *last > node(m_root)->res.end.value()) {
    if (m_log) m_log->warn("release_mem_region_adjustable: range outside iomem_resource");
    return {AdjustOutcome::NotFound, std::nullopt};
  }
  const uint64_t end = *last;

  // Find the busy resource containing the range, descending through non-busy memory containers
  // ("Persistent Memory" > "daxX.Y" for kmem).
  ResourceId at = m_root;
  std::optional<ResourceId> target;
  bool descended = true;
  while (descended && !target) {
    descended = false;
    for (ResourceId c : node(at)->children) {
      const Resource& r = node(c)->res;
      if (r.start.value() > end) break;
      if (!(r.start <= start && r.end.value() >= end)) continue;
      if (!r.flags.any(IORESOURCE_MEM)) return {AdjustOutcome::NotFound, std::nullopt};
      if (!r.flags.any(IORESOURCE_BUSY)) {
        at = c;
        descended = true;
        break;
      }
      // Hotplug always registers IORESOURCE_SYSRAM; a busy resource without it belongs to a
      // driver (HMM, devm) that releases it through its own path.
      if (!r.flags.any(IORESOURCE_SYSRAM)) return {AdjustOutcome::NotFound, std::nullopt};
      target = c;
      break;
    }
  }
  if (!target) return {AdjustOutcome::NotFound, std::nullopt};

  Node* t = node(*target);
  const uint64_t rs = t->res.start.value();
  const uint64_t re = t->res.end.value();
  // __adjust_resource() refuses a shrink that would leave a child outside: WARN, nothing changes.
  auto children_within = [&](uint64_t lo, uint64_t hi) {
    return std::all_of(t->children.begin(), t->children.end(), [&](ResourceId c) {
      const Resource& r = node(c)->res;
      return r.start.value() >= lo && r.end.value() <= hi;
    });
  };
  auto refuse = [&]() {
    if (m_log)
      m_log->warn("release_mem_region_adjustable: {} cannot shrink around its children", format_resource(t->res));
    return AdjustResult{AdjustOutcome::ChildInTheWay, std::nullopt};
  };

  if (rs == start.value() && re == end) {
    unlink_from_parent(*target);
    erase_subtree(*target);
    return {AdjustOutcome::Deleted, std::nullopt};
  }
  if (rs == start.value()) {
    if (!children_within(end + 1, re)) return refuse();
    t->res.start = PhysAddr(end + 1);
    return {AdjustOutcome::TrimmedStart, std::nullopt};
  }
  if (re == end) {
    if (!children_within(rs, start.value() - 1)) return refuse();
    t->res.end = PhysAddr(start.value() - 1);
    return {AdjustOutcome::TrimmedEnd, std::nullopt};
  }
  // Strictly inside: the lower part keeps the handle and the children, a new resource with the
  // same name, flags and desc takes the upper part.
  if (!children_within(rs, start.value() - 1)) return refuse();
  Resource upper{PhysAddr(end + 1), PhysAddr(re), t->res.name, t->res.flags, t->res.desc};
  t->res.end = PhysAddr(start.value() - 1);
  const ResourceId parent = t->parent;
  auto& kids = node(parent)->children;
  const size_t idx = static_cast<size_t>(std::find(kids.begin(), kids.end(), *target) - kids.begin());
  ResourceId up = link_new(parent, idx + 1, std::move(upper));
  return {AdjustOutcome::Split, up};
}

Result<ResourceId> ResourceTree::merge_system_ram_resource(ResourceId id) {
  Node* n = node(id);
  if (id == m_root || !n) return fail(Errno::Inval, "merge_system_ram_resource: unknown resource");
  if (!n->res.flags.has(IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY)) {
    if (m_log) m_log->warn("merge_system_ram_resource: {} is not busy System RAM", format_resource(n->res));
    return fail(Errno::Inval, "merge_system_ram_resource: not busy System RAM");
  }
  n->res.flags |= IORESOURCE_SYSRAM_MERGEABLE;

  // Only one side needs MERGEABLE set before the call; equal flags then imply both have it.
  auto mergeable = [&](const Node& a, const Node& b) {
    return a.res.flags == b.res.flags && a.res.end.value() + 1 == b.res.start.value() && a.res.name == b.res.name &&
           a.res.desc == b.res.desc && a.children.empty() && b.children.empty();
  };
  auto& kids = node(n->parent)->children;
  size_t idx = static_cast<size_t>(std::find(kids.begin(), kids.end(), id) - kids.begin());

  if (idx + 1 < kids.size()) {
    const ResourceId next = kids[idx + 1];
    if (mergeable(*n, *node(next))) {
      n->res.end = node(next)->res.end;
      kids.erase(kids.begin() + static_cast<std::ptrdiff_t>(idx + 1));
      m_nodes.erase(next);
    }
  }
  if (idx > 0) {
    const ResourceId prev = kids[idx - 1];
    Node* p = node(prev);
    if (mergeable(*p, *n)) {
      p->res.end = n->res.end;
      kids.erase(kids.begin() + static_cast<std::ptrdiff_t>(idx));
      m_nodes.erase(id);
      return prev;
    }
  }
  return id;
}

Result<void> ResourceTree::set_flags(ResourceId id, ResourceFlags flags) {
  Node* n = node(id);
  if (id == m_root || !n) return fail(Errno::Inval, "set_flags: unknown resource");
  if ((flags & IORESOURCE_TYPE_BITS) != IORESOURCE_MEM)
    return fail(Errno::Inval, fmt::format("set_flags: flags {:#x} are not IORESOURCE_MEM", flags.value()));
  n->res.flags = flags;
  return {};
}

Result<ResourceId> ResourceTree::request_free_mem_region(ResourceId base, uint64_t size,
                                                         std::optional<std::string_view> name, PhysAddr ceiling) {
  const Node* b = node(base);
  if (!b) return fail(Errno::Inval, "request_free_mem_region: unknown base");
  const uint64_t align = m_arch.section_size();  // GFR_DEFAULT_ALIGN
  if (size == 0 || size > kMaxAddr - (align - 1)) return fail(Errno::Range, "request_free_mem_region: bad size");
  size = (size + align - 1) & ~(align - 1);
  const uint64_t window_end = std::min(b->res.end.value(), ceiling.value());
  if (size - 1 > window_end) return fail(Errno::Range, "request_free_mem_region: no free region");

  const auto& kids = b->children;
  for (uint64_t addr = window_end - size + 1; addr > size && addr >= b->res.start.value(); addr -= size) {
    const uint64_t last = addr + size - 1;
    auto it =
        std::partition_point(kids.begin(), kids.end(), [&](ResourceId c) { return node(c)->res.end.value() < addr; });
    if (it != kids.end() && node(*it)->res.start.value() <= last) continue;  // some child overlaps
    Result<ResourceId> r = request_region(m_root, PhysAddr(addr), size, name);
    // The kernel gives up at the first failed request instead of trying lower slots.
    if (!r) return fail(Errno::Range, "request_free_mem_region: " + r.error().message);
    node(*r)->res.desc = IoresDesc::DevicePrivateMemory;
    return *r;
  }
  return fail(Errno::Range, "request_free_mem_region: no free region");
}

RegionIntersect ResourceTree::region_intersects(PhysAddr start, uint64_t size, ResourceFlags flags,
                                                IoresDesc desc) const {
  return region_intersects(start, size, flags, desc,
                           m_behaviour.region_intersects_top_level_only ? RegionIntersectsScope::TopLevelOnly
                                                                        : RegionIntersectsScope::Nested);
}

RegionIntersect ResourceTree::region_intersects(PhysAddr start, uint64_t size, ResourceFlags flags, IoresDesc desc,
                                                RegionIntersectsScope scope) const {
  if (size == 0) return RegionIntersect::Disjoint;
  const uint64_t s = start.value();
  const uint64_t e = size - 1 > kMaxAddr - s ? kMaxAddr : s + size - 1;
  unsigned type = 0;
  unsigned other = 0;
  for (ResourceId top : node(m_root)->children) {
    const Resource& p = node(top)->res;
    if (!overlaps(p, s, e)) continue;
    if (is_type_match(p, flags, desc)) {
      ++type;
      continue;
    }
    if (scope == RegionIntersectsScope::TopLevelOnly) {
      ++other;
      continue;
    }
    // 6.1.y: matching descendants stand in for the parts of `p` they cover. The non-matching
    // top-level resource still counts as "other" unless they cover its overlap with the region
    // contiguously from its start.
    uint64_t ostart = std::max(s, p.start.value());
    const uint64_t oend = std::min(e, p.end.value());
    bool covered = false;
    auto f = [&](ResourceId id, unsigned) {
      const Resource& dp = node(id)->res;
      if (!overlaps(dp, s, e) || !is_type_match(dp, flags, desc)) return Visit::Continue;
      ++type;
      if (dp.start.value() > ostart) return Visit::Stop;  // a gap before it: uncovered
      if (dp.end.value() >= oend) {
        covered = true;
        return Visit::Stop;
      }
      ostart = std::max(ostart, dp.end.value() + 1);
      return Visit::Continue;
    };
    visit_preorder(top, 1, f);
    if (!covered) ++other;
  }
  if (type == 0) return RegionIntersect::Disjoint;
  return other == 0 ? RegionIntersect::Intersects : RegionIntersect::Mixed;
}

std::optional<Resource> ResourceTree::find_next_iomem_res(PhysAddr start, PhysAddr end, ResourceFlags flags,
                                                          IoresDesc desc) const {
  std::optional<Resource> found;
  auto f = [&](ResourceId id, unsigned) {
    const Resource& r = node(id)->res;
    // Pre-order visits starts in ascending order: past the window nothing can match any more.
    if (r.start > end) return Visit::Stop;
    // Children lie inside their parent, so a resource ending before the window hides nothing.
    if (r.end < start) return Visit::SkipChildren;
    if (!is_type_match(r, flags, desc)) return Visit::Continue;
    Resource clipped = r;
    clipped.start = std::max(start, r.start);
    clipped.end = std::min(end, r.end);
    found = std::move(clipped);
    return Visit::Stop;
  };
  visit_preorder(m_root, 0, f);
  return found;
}

int ResourceTree::walk_system_ram_range(Pfn start_pfn, NrPages nr_pages, const SystemRamWalkFn& cb) const {
  constexpr int kEinval = -static_cast<int>(Errno::Inval);
  const unsigned shift = m_arch.page_shift;
  const uint64_t max_pfn_span = kMaxAddr >> shift;
  if (nr_pages.value() == 0 || start_pfn.value() > max_pfn_span ||
      nr_pages.value() > max_pfn_span - start_pfn.value() + 1)
    return kEinval;
  uint64_t start = start_pfn.value() << shift;
  // ((start_pfn + nr_pages) << PAGE_SHIFT) - 1, computed so that the top page does not wrap.
  const uint64_t end = ((start_pfn.value() + nr_pages.value() - 1) << shift) + ((uint64_t{1} << shift) - 1);
  const uint64_t mask = (uint64_t{1} << shift) - 1;

  int ret = kEinval;
  while (start < end) {
    std::optional<Resource> r =
        find_next_iomem_res(PhysAddr(start), PhysAddr(end), IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY, IoresDesc::None);
    if (!r) break;
    const uint64_t rs = r->start.value();
    const uint64_t re = r->end.value();
    const uint64_t pfn = (rs >> shift) + ((rs & mask) != 0 ? 1 : 0);         // PFN_UP(start)
    const uint64_t end_pfn = (re >> shift) + ((re & mask) == mask ? 1 : 0);  // PFN_DOWN(end + 1)
    if (end_pfn > pfn) ret = cb(Pfn(pfn), NrPages(end_pfn - pfn));
    if (ret != 0) break;
    if (re == kMaxAddr) break;
    start = re + 1;
  }
  return ret;
}

bool ResourceTree::page_is_ram(Pfn pfn) const {
  return walk_system_ram_range(pfn, NrPages(1), [](Pfn, NrPages) { return 1; }) == 1;
}

std::string ResourceTree::render(IomemReader reader) const {
  const int width = node(m_root)->res.end.value() < 0x10000 ? 4 : 8;
  constexpr unsigned kMaxIoresLevel = 5;
  std::string out;
  auto f = [&](ResourceId id, unsigned depth) {
    const Resource& r = node(id)->res;
    const bool priv = reader == IomemReader::Privileged;
    const int indent = static_cast<int>(std::min(depth, kMaxIoresLevel) * 2);
    fmt::format_to(std::back_inserter(out), "{:{}}{:0{}x}-{:0{}x} : {}\n", "", indent, priv ? r.start.value() : 0,
                   width, priv ? r.end.value() : 0, width, r.name.value_or("<BAD>"));
    return Visit::Continue;
  };
  visit_preorder(m_root, 0, f);
  return out;
}

void ResourceTree::check_invariants(InvariantReport& report) const {
  const Node* root = node(m_root);
  if (!root) {
    report.fail("INV-IOMEM-4", "root resource missing");
    return;
  }
  if (root->parent != m_root || root->res.start.value() != 0 || root->res.end != m_root_end)
    report.fail("INV-IOMEM-4", "root spans {:#x}-{:#x}, expected 0-{:#x}", root->res.start.value(),
                root->res.end.value(), m_root_end.value());

  std::unordered_set<ResourceId> seen;
  std::vector<ResourceId> pending{m_root};
  while (!pending.empty()) {
    const ResourceId pid = pending.back();
    pending.pop_back();
    const Node* p = node(pid);
    const Resource* prev = nullptr;
    for (ResourceId c : p->children) {
      const Node* n = node(c);
      if (!n) {
        report.fail("INV-IOMEM-4", "child id {} of {} is not stored", c.value(), p->res.name.value_or("<BAD>"));
        continue;
      }
      if (!seen.insert(c).second) {
        report.fail("INV-IOMEM-4", "resource id {} reached twice", c.value());
        continue;
      }
      const Resource& r = n->res;
      const std::string nm = r.name.value_or("<BAD>");
      if (n->parent != pid) report.fail("INV-IOMEM-4", "{} names the wrong parent", nm);
      if (r.start > r.end)
        report.fail("INV-IOMEM-1", "{} starts {:#x} after its end {:#x}", nm, r.start.value(), r.end.value());
      if (r.start < p->res.start || r.end > p->res.end)
        report.fail("INV-IOMEM-2", "{} {:#x}-{:#x} outside its parent {:#x}-{:#x}", nm, r.start.value(), r.end.value(),
                    p->res.start.value(), p->res.end.value());
      if (prev && !(prev->end < r.start))
        report.fail("INV-IOMEM-3", "{} {:#x}-{:#x} not after its sibling ending {:#x}", nm, r.start.value(),
                    r.end.value(), prev->end.value());
      if ((r.flags & IORESOURCE_TYPE_BITS) != IORESOURCE_MEM)
        report.fail("INV-IOMEM-5", "{} flags {:#x} are not memory", nm, r.flags.value());
      if (r.flags.any(IORESOURCE_SYSRAM_MERGEABLE) && !r.flags.has(IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY))
        report.fail("INV-IOMEM-6", "{} is MERGEABLE but flags {:#x} are not busy System RAM", nm, r.flags.value());
      if (r.desc == IoresDesc::DevicePrivateMemory && !r.flags.any(IORESOURCE_BUSY))
        report.fail("INV-IOMEM-7", "device-private {} is not busy", nm);
      prev = &r;
      pending.push_back(c);
    }
  }
  if (seen.size() != m_nodes.size() - 1)
    report.fail("INV-IOMEM-4", "{} resources stored but {} reachable from the root", m_nodes.size() - 1, seen.size());
}

}  // namespace sparsemem
