// libnvdimm and the dax bus of Linux 6.1 (drivers/nvdimm, drivers/dax): regions, namespaces, the
// pfn/dax personalities with their info-block geometry, device_dax and kmem. Only Libnvdimm's owner calls in.
#include "sparsemem/nvdimm.h"

#include <algorithm>
#include <bit>

#include <fmt/core.h>

namespace sparsemem {
namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB;
constexpr uint64_t kInfoBlockReserve = 8 * KiB;  // SZ_8K: the info block at 4 KiB and the padding before it

uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
uint64_t round_down(uint64_t v, uint64_t a) { return v / a * a; }

const char* claim_prefix(NdClaimKind k) {
  switch (k) {
    case NdClaimKind::Pfn: return "pfn";
    case NdClaimKind::Dax: return "dax";
    case NdClaimKind::Btt: return "btt";
  }
  return "?";
}

// ida_alloc(): the lowest id no live device of the kind has.
template <class Range, class IdOf>
unsigned lowest_free_id(const Range& r, IdOf id_of) {
  for (unsigned id = 0;; ++id)
    if (std::none_of(r.begin(), r.end(), [&](const auto& x) { return id_of(x) == id; })) return id;
}

}  // namespace

std::optional<NdModule> nd_module_from_name(std::string_view n) {
  if (n == "nfit") return NdModule::Nfit;
  if (n == "nd_e820") return NdModule::NdE820;
  if (n == "nd_pmem") return NdModule::NdPmem;
  if (n == "nd_btt") return NdModule::NdBtt;
  if (n == "dax_pmem") return NdModule::DaxPmem;
  if (n == "device_dax") return NdModule::DeviceDax;
  if (n == "kmem") return NdModule::Kmem;
  return std::nullopt;
}

Libnvdimm::Libnvdimm(const PlatformDescription& platform) {
  for (const MemoryDevice& d : platform.memory_devices)
    if (d.kind == MemoryDeviceKind::Nvdimm) m_nvdimms.push_back(d);
}

bool Libnvdimm::loaded(NdModule mod) const { return std::find(m_loaded.begin(), m_loaded.end(), mod) != m_loaded.end(); }

// ---- lookups ----

const NdRegion* Libnvdimm::find_region(std::string_view name) const {
  for (const NdRegion& r : m_regions)
    if (r.name == name) return &r;
  return nullptr;
}

NdRegion* Libnvdimm::region_mut(std::string_view name) { return const_cast<NdRegion*>(find_region(name)); }

const NdNamespace* Libnvdimm::find_namespace(std::string_view name, const NdRegion** region) const {
  for (const NdRegion& r : m_regions)
    for (const NdNamespace& ns : r.namespaces)
      if (ns.name == name) {
        if (region) *region = &r;
        return &ns;
      }
  return nullptr;
}

NdNamespace* Libnvdimm::ns_mut(std::string_view name, NdRegion** region) {
  const NdRegion* r = nullptr;
  auto* ns = const_cast<NdNamespace*>(find_namespace(name, &r));
  if (region) *region = const_cast<NdRegion*>(r);
  return ns;
}

const NdPersonality* Libnvdimm::find_personality(const NdRegion& r, std::string_view name) const {
  for (const NdPersonality& p : r.personalities)
    if (p.name == name) return &p;
  return nullptr;
}

const DevDax* Libnvdimm::find_dax(std::string_view name) const {
  for (const auto& d : m_dax)
    if (d->name == name) return d.get();
  return nullptr;
}

DevDax* Libnvdimm::dax_mut(std::string_view name) { return const_cast<DevDax*>(find_dax(name)); }

const NdPersonality* Libnvdimm::holder_of(const NdRegion& r, const NdNamespace& ns) const {
  return ns.holder.empty() ? nullptr : find_personality(r, ns.holder);
}

// ---- modules and buses ----

Result<void> Libnvdimm::load(Machine& m, NdModule mod) {
  if (loaded(mod)) return {};
  m_loaded.push_back(mod);
  if (mod == NdModule::Nfit && !m_nvdimms.empty()) {
    const unsigned bus = static_cast<unsigned>(m_buses.size());
    m_buses.push_back(NdBus{bus, fmt::format("ndbus{}", bus), "ACPI.NFIT"});
    for (const MemoryDevice& d : m_nvdimms) {
      const unsigned dimm = static_cast<unsigned>(m_dimms.size());
      m_dimms.push_back(NdDimm{fmt::format("nmem{}", dimm), d.nfit_handle(), d.nfit_serial(), d.label_size, false});
      // acpi_nfit_insert_resource(): the SPA range as a non-busy "Persistent Memory" container.
      SPM_TRY(m.insert_iomem_resource(d.range(), "Persistent Memory", IORESOURCE_MEM, IoresDesc::PersistentMemory));
      add_region(m, bus, d.range(), d.node, dimm, false);
    }
  } else if (mod == NdModule::NdE820) {
    std::vector<PhysRange> legacy;
    for (const IomemEntry& e : m.iomem().entries())
      if (e.depth == 0 && e.resource.name == "Persistent Memory (legacy)") legacy.push_back(e.resource.range());
    if (!legacy.empty()) {
      const unsigned bus = static_cast<unsigned>(m_buses.size());
      m_buses.push_back(NdBus{bus, fmt::format("ndbus{}", bus), "e820"});
      for (PhysRange r : legacy) add_region(m, bus, r, 0, std::nullopt, true);
    }
  }
  // Bus probing: every enabled region's unbound devices meet the new driver.
  for (NdRegion& r : m_regions) {
    if (!r.enabled) {
      probe_region(m, r);
      continue;
    }
    for (NdNamespace& ns : r.namespaces)
      if (!ns.bound && ns.holder.empty() && ns.size) (void)probe_namespace(m, r, ns);
    for (NdPersonality& p : r.personalities)
      if (!p.bound && !p.ns.empty()) (void)probe_personality(m, r, p);
  }
  for (auto& d : m_dax)
    if (d->driver == DaxDriver::None && loaded(NdModule::DeviceDax)) (void)bind_device_dax(m, *d);
  return {};
}

void Libnvdimm::add_region(Machine& m, unsigned bus, PhysRange range, unsigned node, std::optional<unsigned> dimm,
                           bool pagemap) {
  NdRegion r;
  r.id = lowest_free_id(m_regions, [](const NdRegion& x) { return x.id; });
  r.name = fmt::format("region{}", r.id);
  r.bus = bus;
  r.range = range;
  r.numa_node = node;
  r.dimm = dimm;
  r.pagemap = pagemap;
  // nd_region's default align: 16 MiB, PAGE_SIZE for regions smaller than that.
  r.align = range.size() < 16 * MiB ? m.arch().page_size() : 16 * MiB;
  if (dimm) {
    const uint64_t serial = m_dimms[*dimm].serial;
    r.iset_cookie = (2 * serial) << 32 | serial;
  }
  m_regions.push_back(std::move(r));
  probe_region(m, m_regions.back());
}

// nd_region_probe(): the namespaces from the labels (or one io namespace), then the seeds.
void Libnvdimm::probe_region(Machine& m, NdRegion& r) {
  r.enabled = true;
  r.namespaces.clear();
  r.personalities.clear();
  r.labelled = r.dimm && m_dimms[*r.dimm].labels_valid;
  if (r.labelled) {
    for (const NdLabel& l : m_labels[*r.dimm]) {
      NdNamespace ns;
      ns.id = l.ns_id;
      ns.name = fmt::format("namespace{}.{}", r.id, l.ns_id);
      ns.start = l.start;
      ns.size = l.size;
      ns.uuid = l.uuid;
      ns.alt_name = l.alt_name;
      r.namespaces.push_back(std::move(ns));
    }
    r.ns_seed = new_namespace_seed(r);
  } else {
    NdNamespace ns;
    ns.io = true;
    ns.name = fmt::format("namespace{}.0", r.id);
    ns.start = r.range.start;
    ns.size = r.range.size();
    r.namespaces.push_back(std::move(ns));
    r.ns_seed = r.namespaces.back().name;
  }
  r.init_namespaces = static_cast<unsigned>(r.namespaces.size());
  r.btt_seed = new_seed(r, NdClaimKind::Btt);
  r.pfn_seed = new_seed(r, NdClaimKind::Pfn);
  r.dax_seed = new_seed(r, NdClaimKind::Dax);
  for (NdNamespace& ns : r.namespaces)
    if (ns.size) (void)probe_namespace(m, r, ns);
}

std::string Libnvdimm::new_namespace_seed(NdRegion& r) {
  NdNamespace ns;
  ns.id = lowest_free_id(r.namespaces, [](const NdNamespace& x) { return x.id; });
  ns.name = fmt::format("namespace{}.{}", r.id, ns.id);
  r.namespaces.push_back(std::move(ns));
  return r.namespaces.back().name;
}

std::string Libnvdimm::new_seed(NdRegion& r, NdClaimKind kind) {
  NdPersonality p;
  p.kind = kind;
  std::vector<unsigned> ids;
  for (const NdPersonality& x : r.personalities)
    if (x.kind == kind) ids.push_back(x.id);
  p.id = lowest_free_id(ids, [](unsigned x) { return x; });
  p.name = fmt::format("{}{}.{}", claim_prefix(kind), r.id, p.id);
  // The personalities' default align: PMD size (THP) for pfn and dax; btt has none.
  p.align = kind == NdClaimKind::Btt ? 0 : 2 * MiB;
  r.personalities.push_back(std::move(p));
  return r.personalities.back().name;
}

// nd_region_advance_seeds(): a seed that was just probed successfully is replaced by a new one.
void Libnvdimm::advance_seeds(NdRegion& r, const std::string& probed) {
  // Label-less regions have one io namespace and no namespace seeds to create.
  if (r.ns_seed == probed) {
    if (r.labelled) r.ns_seed = new_namespace_seed(r);
    return;
  }
  const NdPersonality* p = find_personality(r, probed);
  if (!p) return;
  const NdClaimKind kind = p->kind;
  const std::string ns = p->ns;
  std::string& seed = kind == NdClaimKind::Pfn ? r.pfn_seed : kind == NdClaimKind::Dax ? r.dax_seed : r.btt_seed;
  if (seed == probed) seed = new_seed(r, kind);
  if (!r.labelled) return;
  if (ns == r.ns_seed) r.ns_seed = new_namespace_seed(r);
}

// A personality that lost its namespace and is not a seed is unregistered (its id is free again).
void Libnvdimm::release_personality_if_unclaimed(NdRegion& r, const std::string& name) {
  auto it = std::find_if(r.personalities.begin(), r.personalities.end(), [&](const NdPersonality& p) { return p.name == name; });
  if (it == r.personalities.end() || !it->ns.empty()) return;
  if (name == r.pfn_seed || name == r.dax_seed || name == r.btt_seed) {
    it->mode = PfnMode::None;
    it->uuid.clear();
    it->align = it->kind == NdClaimKind::Btt ? 0 : 2 * MiB;
    return;
  }
  r.personalities.erase(it);
}

// ---- probing ----

// nd_pmem bound to a namespace: the whole namespace is requested; a region with ND_REGION_PAGEMAP
// (e820) maps it as FS_DAX without an altmap (pmem_should_map_pages). An info block on the media
// makes the namespace a personality's instead (nd_pfn_probe / nd_dax_probe).
Result<void> Libnvdimm::probe_namespace(Machine& m, NdRegion& r, NdNamespace& ns) {
  if (auto it = m_info_blocks.find(ns.start.value()); it != m_info_blocks.end() && ns.holder.empty()) {
    const NdInfoBlock& ib = it->second;
    const NdModule needed = ib.kind == NdClaimKind::Dax ? NdModule::DaxPmem : NdModule::NdPmem;
    if (!loaded(needed)) return {};
    std::string& seed = ib.kind == NdClaimKind::Pfn ? r.pfn_seed : ib.kind == NdClaimKind::Dax ? r.dax_seed : r.btt_seed;
    NdPersonality* p = nullptr;
    for (NdPersonality& x : r.personalities)
      if (x.name == seed) p = &x;
    if (!p) return fail(Errno::NoDev, "no personality seed");
    p->ns = ns.name;
    p->mode = ib.mode;
    p->align = ib.align;
    p->uuid = ib.uuid;
    ns.holder = p->name;
    const std::string name = p->name;
    if (auto ok = probe_personality(m, r, *p); !ok) return ok;
    advance_seeds(r, name);
    return {};
  }
  if (!loaded(NdModule::NdPmem) || ns.bound) return {};
  SPM_TRY(m.request_mem_region(ns.range(), ns.name));
  ns.reservation = ns.range();
  if (r.pagemap && !ns.force_raw) {
    ns.pgmap = std::make_unique<DevPagemap>();
    ns.pgmap->type = MemoryType::FsDax;
    ns.pgmap->ranges = {ns.range()};
    if (auto mapped = m.memremap_pages(*ns.pgmap, static_cast<int>(r.numa_node)); !mapped) {
      ns.pgmap.reset();
      (void)m.release_mem_region(ns.range());
      ns.reservation.reset();
      return mapped;
    }
  }
  ns.bound = true;
  return {};
}

// nd_pfn_init / nd_dax_probe: the info block's geometry, then the personality's driver.
Result<void> Libnvdimm::probe_personality(Machine& m, NdRegion& r, NdPersonality& p) {
  const NdModule needed = p.kind == NdClaimKind::Dax ? NdModule::DaxPmem : p.kind == NdClaimKind::Pfn ? NdModule::NdPmem : NdModule::NdBtt;
  if (!loaded(needed) || p.bound) return {};
  NdNamespace* ns = ns_mut(p.ns, nullptr);
  if (!ns) return fail(Errno::NoDev, fmt::format("{}: no namespace", p.name));
  const ArchProfile& arch = m.arch();
  const uint64_t P = ns->start.value(), S = ns->size;
  if (p.kind == NdClaimKind::Btt) return fail(Errno::NotSupp, "btt (sector mode) is not modelled");
  // memremap_compat_align() is the sub-section size; the personality's align is at least that.
  const uint64_t compat = uint64_t{1} << SUBSECTION_SHIFT;
  const uint64_t align = std::max<uint64_t>(p.align, compat);
  if (P % compat) return fail(Errno::Inval, fmt::format("{}: start {:#x} misaligned", p.name, P));
  const uint64_t npfns = (S - kInfoBlockReserve) / arch.page_size();
  const uint64_t dataoff = p.mode == PfnMode::Pmem ? round_up(P + kInfoBlockReserve + 64 * npfns, align) - P
                                                   : round_up(P + kInfoBlockReserve, align) - P;
  const uint64_t end_trunc = (P + S) - round_down(P + S, align);
  if (dataoff >= S) {
    // nd_pfn_init(): the reservation leaves no data.
    m.log().log(LogLevel::Err, "{} {}: {} unable to satisfy requested alignment",
                p.kind == NdClaimKind::Dax ? "dax_pmem" : "nd_pmem", p.name, ns->name);
    return fail(Errno::NxIO, fmt::format("{}: no data after the info block", p.name));
  }
  p.dataoff = dataoff;
  p.end_trunc = end_trunc;
  p.start_pad = 0;
  // The pgmap of the namespace: [start + start_pad, end - end_trunc], with the altmap in pmem mode.
  auto pgmap = std::make_unique<DevPagemap>();
  pgmap->ranges = {PhysRange{PhysAddr(P), PhysAddr(P + S - end_trunc - 1)}};
  VmemAltmap altmap{};
  if (p.mode == PfnMode::Pmem) {
    altmap.base_pfn = arch.phys_to_pfn(PhysAddr(P));
    altmap.reserve = NrPages(kInfoBlockReserve / arch.page_size());
    altmap.free = NrPages((dataoff - kInfoBlockReserve) / arch.page_size());
    pgmap->altmap = altmap;
    pgmap->flags = PGMAP_ALTMAP_VALID;
  }
  m_info_blocks[P] = NdInfoBlock{p.kind, p.mode, p.align, p.uuid};
  if (p.kind == NdClaimKind::Pfn) {
    // pmem_attach_disk(): the whole namespace, then the FS_DAX pagemap.
    SPM_TRY(m.request_mem_region(ns->range(), ns->name));
    pgmap->type = MemoryType::FsDax;
    if (auto mapped = m.memremap_pages(*pgmap, static_cast<int>(r.numa_node)); !mapped) {
      (void)m.release_mem_region(ns->range());
      return mapped;
    }
    p.reservation = ns->range();
    p.pgmap = std::move(pgmap);
    p.bound = true;
    return {};
  }
  // dax_pmem: the metadata as "namespaceX.Y", and a static dev_dax over the data.
  const PhysRange meta{PhysAddr(P), PhysAddr(P + dataoff - 1)};
  SPM_TRY(m.request_mem_region(meta, ns->name));
  p.reservation = meta;
  p.bound = true;
  auto d = std::make_unique<DevDax>();
  d->name = fmt::format("dax{}.{}", r.id, ns->id);
  d->region = r.id;
  d->personality = p.name;
  d->range = PhysRange{PhysAddr(P + dataoff), PhysAddr(P + S - end_trunc - 1)};
  d->align = p.align;
  d->target_node = static_cast<int>(r.numa_node);
  d->pgmap_range = pgmap->ranges[0];
  d->altmap = altmap;
  d->has_altmap = p.mode == PfnMode::Pmem;
  m_dax.push_back(std::move(d));
  // device_dax binds in the same probe chain; an oops there (seed 004's memmap-init fault) is the
  // caller's too. Other failures leave the dax device unbound, as a failed probe does.
  if (loaded(NdModule::DeviceDax))
    if (auto b = bind_device_dax(m, *m_dax.back()); !b && b.error().code == Errno::Fault) return b;
  return {};
}

void Libnvdimm::teardown_personality(Machine& m, NdRegion& r, NdPersonality& p) {
  (void)r;
  if (!p.bound) return;
  if (p.kind == NdClaimKind::Dax) {
    auto it = std::find_if(m_dax.begin(), m_dax.end(), [&](const auto& d) { return d->personality == p.name && d->region == r.id; });
    if (it != m_dax.end()) {
      if ((*it)->driver == DaxDriver::DeviceDax) unbind_device_dax(m, **it);
      if ((*it)->driver == DaxDriver::Kmem) (void)unbind_kmem(m, **it);
      m_dax.erase(it);
    }
  }
  if (p.pgmap) {
    m.memunmap_pages(*p.pgmap);
    p.pgmap.reset();
  }
  if (p.reservation) (void)m.release_mem_region(*p.reservation);
  p.reservation.reset();
  p.bound = false;
}

void Libnvdimm::teardown_namespace(Machine& m, NdRegion& r, NdNamespace& ns) {
  if (!ns.holder.empty()) {
    for (NdPersonality& p : r.personalities)
      if (p.name == ns.holder) teardown_personality(m, r, p);
    return;
  }
  if (!ns.bound) return;
  if (ns.pgmap) {
    m.memunmap_pages(*ns.pgmap);
    ns.pgmap.reset();
  }
  if (ns.reservation) (void)m.release_mem_region(*ns.reservation);
  ns.reservation.reset();
  ns.bound = false;
}

bool Libnvdimm::kmem_busy(const NdRegion& r, const NdNamespace& ns) const {
  const NdPersonality* p = holder_of(r, ns);
  if (!p || p->kind != NdClaimKind::Dax) return false;
  for (const auto& d : m_dax)
    if (d->personality == p->name && d->region == r.id && d->driver == DaxDriver::Kmem) return true;
  return false;
}

// ---- regions and labels ----

Result<void> Libnvdimm::disable_region(Machine& m, std::string_view name) {
  NdRegion* r = region_mut(name);
  if (!r) return fail(Errno::NoDev, fmt::format("{}: no such region", name));
  if (!r->enabled) return {};
  for (const NdNamespace& ns : r->namespaces)
    if (kmem_busy(*r, ns)) return fail(Errno::Busy, fmt::format("{}: dax memory in use as System RAM", ns.name));
  for (NdNamespace& ns : r->namespaces) teardown_namespace(m, *r, ns);
  r->namespaces.clear();
  r->personalities.clear();
  r->ns_seed = r->pfn_seed = r->dax_seed = r->btt_seed = "";
  r->enabled = false;
  return {};
}

Result<void> Libnvdimm::enable_region(Machine& m, std::string_view name) {
  NdRegion* r = region_mut(name);
  if (!r) return fail(Errno::NoDev, fmt::format("{}: no such region", name));
  if (r->enabled) return {};
  probe_region(m, *r);
  return {};
}

Result<void> Libnvdimm::init_labels(std::string_view dimm, bool force) {
  for (size_t i = 0; i < m_dimms.size(); ++i) {
    if (m_dimms[i].name != dimm) continue;
    for (const NdRegion& r : m_regions)
      if (r.dimm == i && r.enabled) return fail(Errno::Busy, fmt::format("{}: regions active, abort label write", dimm));
    if (m_dimms[i].labels_valid && !force) return fail(Errno::Exist, fmt::format("{}: error: labels already initialized", dimm));
    m_dimms[i].labels_valid = true;
    m_labels[static_cast<unsigned>(i)].clear();
    return {};
  }
  return fail(Errno::NoDev, fmt::format("{}: no such DIMM", dimm));
}

// Labelled capacity: the region rounded down to its align, less every allocated namespace.
std::vector<PhysRange> Libnvdimm::free_extents(const NdRegion& r) const {
  std::vector<PhysRange> out;
  const uint64_t base = r.range.start.value(), end = base + round_down(r.size(), r.align);
  std::vector<PhysRange> used;
  for (const NdNamespace& ns : r.namespaces)
    if (ns.size && !ns.io) used.push_back(ns.range());
  std::sort(used.begin(), used.end(), [](PhysRange a, PhysRange b) { return a.start < b.start; });
  uint64_t at = base;
  for (PhysRange u : used) {
    if (u.start.value() > at) out.push_back(PhysRange{PhysAddr(at), PhysAddr(u.start.value() - 1)});
    at = std::max(at, u.last.value() + 1);
  }
  if (end > at) out.push_back(PhysRange{PhysAddr(at), PhysAddr(end - 1)});
  return out;
}

uint64_t Libnvdimm::available_size(const NdRegion& r) const {
  if (!r.dimm) return 0;
  uint64_t n = 0;
  for (PhysRange e : free_extents(r)) n += round_down(e.size(), r.align);
  return n;
}

uint64_t Libnvdimm::max_available_extent(const NdRegion& r) const {
  if (!r.dimm) return 0;
  uint64_t n = 0;
  for (PhysRange e : free_extents(r)) n = std::max(n, round_down(e.size(), r.align));
  return n;
}

// ---- namespaces ----

Result<void> Libnvdimm::disable_namespace(Machine& m, std::string_view name) {
  NdRegion* r = nullptr;
  NdNamespace* ns = ns_mut(name, &r);
  if (!ns) return fail(Errno::NxIO, fmt::format("{}: no such namespace", name));
  if (kmem_busy(*r, *ns)) return fail(Errno::Busy, fmt::format("{}: dax memory in use as System RAM", name));
  teardown_namespace(m, *r, *ns);
  return {};
}

Result<bool> Libnvdimm::destroy_namespace(Machine& m, std::string_view name) {
  NdRegion* r = nullptr;
  NdNamespace* ns = ns_mut(name, &r);
  if (!ns) return fail(Errno::NxIO, fmt::format("{}: no such namespace", name));
  SPM_TRY(disable_namespace(m, name));
  bool destroyed = m_info_blocks.erase(ns->start.value()) > 0;
  // The claim goes with the info block.
  if (!ns->holder.empty()) {
    const std::string holder = ns->holder;
    for (NdPersonality& p : r->personalities)
      if (p.name == holder) p.ns.clear();
    ns->holder.clear();
    release_personality_if_unclaimed(*r, holder);
  }
  if (!ns->io && ns->size) {
    // Labelled: size 0 deletes the label; a namespace other than 0 and the seed goes away.
    auto& labels = m_labels[*r->dimm];
    std::erase_if(labels, [&](const NdLabel& l) { return l.ns_id == ns->id; });
    ns->size = 0;
    ns->uuid.clear();
    ns->alt_name.clear();
    ns->start = PhysAddr(0);
    destroyed = true;
    if (ns->id != 0 && ns->name != r->ns_seed) {
      const std::string n = ns->name;
      std::erase_if(r->namespaces, [&](const NdNamespace& x) { return x.name == n; });
    }
  }
  return destroyed;
}

Result<void> Libnvdimm::enable_namespace(Machine& m, std::string_view name) {
  NdRegion* r = nullptr;
  NdNamespace* ns = ns_mut(name, &r);
  if (!ns) return fail(Errno::NxIO, fmt::format("{}: no such namespace", name));
  // nd_pmem_probe() / nvdimm_namespace_common_probe(): a labelled namespace without a size (an
  // idle seed or a deleted label) cannot be enabled.
  if (!ns->io && ns->size == 0) return fail(Errno::NoDev, fmt::format("{}: no size", name));
  if (!ns->holder.empty()) {
    for (NdPersonality& p : r->personalities)
      if (p.name == ns->holder) return probe_personality(m, *r, p);
  }
  return probe_namespace(m, *r, *ns);
}

std::string Libnvdimm::idle_namespace(const NdRegion& r) const {
  for (const NdNamespace& x : r.namespaces)
    if (x.id == 0 && !x.io && x.size == 0 && x.holder.empty()) return x.name;
  return r.ns_seed;
}

Result<std::string> Libnvdimm::setup_namespace(Machine& m, std::string_view region, std::string_view ns_name,
                                               const NdNamespaceConfig& cfg) {
  NdRegion* r = region_mut(region);
  if (!r || !r->enabled) return fail(Errno::NxIO, fmt::format("{}: no such region", region));
  NdNamespace* ns = ns_mut(ns_name.empty() ? idle_namespace(*r) : std::string(ns_name), nullptr);
  if (!ns) return fail(Errno::NxIO, "no namespace to configure");
  if (!ns->io) {
    // Allocate at the lowest free region-aligned offset.
    std::optional<uint64_t> at;
    for (PhysRange e : free_extents(*r))
      if (round_down(e.size(), r->align) >= cfg.size) {
        at = e.start.value();
        break;
      }
    if (!at || cfg.size == 0) return fail(Errno::NoSpc, "no space in the region");
    ns->start = PhysAddr(*at);
    ns->size = cfg.size;
    ns->uuid = cfg.uuid;
    ns->alt_name = cfg.name;
    m_labels[*r->dimm].push_back(NdLabel{ns->id, ns->start, ns->size, ns->uuid, ns->alt_name});
  }
  const std::string name = ns->name;
  if (cfg.mode == NdNamespaceConfig::Mode::Raw) {
    if (auto ok = probe_namespace(m, *r, *ns); !ok) return tl::unexpected(ok.error());
    advance_seeds(*r, name);
    return name;
  }
  const NdClaimKind kind = cfg.mode == NdNamespaceConfig::Mode::Devdax  ? NdClaimKind::Dax
                           : cfg.mode == NdNamespaceConfig::Mode::Fsdax ? NdClaimKind::Pfn
                                                                        : NdClaimKind::Btt;
  const std::string seed = kind == NdClaimKind::Pfn ? r->pfn_seed : kind == NdClaimKind::Dax ? r->dax_seed : r->btt_seed;
  NdPersonality* p = nullptr;
  for (NdPersonality& x : r->personalities)
    if (x.name == seed) p = &x;
  if (!p) return fail(Errno::NoDev, "no personality seed");
  p->ns = name;
  p->mode = kind == NdClaimKind::Btt ? PfnMode::None : cfg.map;
  p->align = kind == NdClaimKind::Btt ? 0 : cfg.align;
  p->uuid = cfg.pfn_uuid;
  ns->holder = p->name;
  if (auto ok = probe_personality(m, *r, *p); !ok) {
    // The claim is dropped; the seed keeps the align it was given (ndctl's later creates see it).
    // A probe that got as far as binding (dax_pmem before device_dax faulted) is undone first.
    teardown_personality(m, *r, *p);
    m_info_blocks.erase(ns->start.value());
    ns->holder.clear();
    p->ns.clear();
    p->mode = PfnMode::None;
    return tl::unexpected(ok.error());
  }
  advance_seeds(*r, seed);
  return name;
}

// ---- the dax bus ----

Result<void> Libnvdimm::bind_device_dax(Machine& m, DevDax& d) {
  const ArchProfile& arch = m.arch();
  SPM_TRY(m.request_mem_region(d.range, d.name));
  auto pgmap = std::make_unique<DevPagemap>();
  pgmap->type = MemoryType::Generic;
  pgmap->ranges = {d.pgmap_range};
  if (d.has_altmap) {
    pgmap->altmap = d.altmap;
    pgmap->flags = PGMAP_ALTMAP_VALID;
  }
  if (d.align > arch.page_size()) pgmap->vmemmap_shift = static_cast<unsigned>(std::countr_zero(d.align >> arch.page_shift));
  if (auto mapped = m.memremap_pages(*pgmap, d.target_node); !mapped) {
    (void)m.release_mem_region(d.range);
    return mapped;
  }
  d.pgmap = std::move(pgmap);
  d.driver = DaxDriver::DeviceDax;
  return {};
}

void Libnvdimm::unbind_device_dax(Machine& m, DevDax& d) {
  if (d.pgmap) m.memunmap_pages(*d.pgmap);
  d.pgmap.reset();
  (void)m.release_mem_region(d.range);
  d.driver = DaxDriver::None;
}

// dev_dax_kmem_probe(): the block-aligned part as driver-managed System RAM.
Result<void> Libnvdimm::bind_kmem(Machine& m, DevDax& d) {
  const uint64_t bs = m.memory_block_size();
  const uint64_t start = round_up(d.range.start.value(), bs), end = round_down(d.range.last.value() + 1, bs);
  if (end <= start) {
    m.log().log(LogLevel::Info, "kmem {}: mapping0: {:#x}-{:#x} too small after alignment", d.name,
                d.range.start.value(), d.range.last.value());
    m.log().log(LogLevel::Err, "kmem {}: rejecting DAX region without any memory after alignment", d.name);
    return fail(Errno::Inval, "nothing left after alignment");
  }
  if (d.target_node < 0) return fail(Errno::Inval, "no target node");
  const PhysRange range{PhysAddr(start), PhysAddr(end - 1)};
  SPM_TRY_ASSIGN(const MemoryGroupId group,
                 m.register_static_memory_group(static_cast<unsigned>(d.target_node), NrPages((end - start) >> m.arch().page_shift)));
  auto undo_group = [&] { (void)m.unregister_memory_group(group); };
  if (auto req = m.request_mem_region(range, d.name); !req) {
    m.log().log(LogLevel::Warn, "kmem {}: mapping0: {:#x}-{:#x} could not reserve region", d.name, start, end - 1);
    undo_group();
    return tl::unexpected(req.error());
  }
  // Not busy: add_memory_driver_managed()'s own request nests inside it.
  (void)m.set_mem_region_flags(range, d.name, IORESOURCE_SYSTEM_RAM);
  if (auto added = m.add_memory_driver_managed(static_cast<unsigned>(group.value()), range.start, range.size(),
                                                "System RAM (kmem)", MHP_NID_IS_MGID);
      !added) {
    m.log().log(LogLevel::Err, "kmem {}: mapping0: {:#x}-{:#x} cannot hotplug memory", d.name, start, end - 1);
    (void)m.remove_iomem_resource(range, d.name);
    undo_group();
    return added;
  }
  d.group = group;
  d.kmem_range = range;
  d.driver = DaxDriver::Kmem;
  return {};
}

Result<void> Libnvdimm::unbind_kmem(Machine& m, DevDax& d) {
  if (d.kmem_range) {
    if (auto removed = m.remove_memory(d.kmem_range->start, d.kmem_range->size()); !removed) {
      m.log().log(LogLevel::Warn, "kmem {}: mapping0: {:#x}-{:#x} cannot be hotremoved until the next reboot", d.name,
                  d.kmem_range->start.value(), d.kmem_range->last.value());
      return removed;
    }
    (void)m.remove_iomem_resource(*d.kmem_range, d.name);
  }
  if (d.group) (void)m.unregister_memory_group(*d.group);
  d.group.reset();
  d.kmem_range.reset();
  d.driver = DaxDriver::None;
  return {};
}

Result<void> Libnvdimm::bind_dax(Machine& m, std::string_view name, DaxDriver driver) {
  DevDax* d = dax_mut(name);
  if (!d) return fail(Errno::NoDev, fmt::format("{}: no such dax device", name));
  if (d->driver == driver) return {};
  if (d->driver == DaxDriver::Kmem) SPM_TRY(unbind_kmem(m, *d));
  if (d->driver == DaxDriver::DeviceDax) unbind_device_dax(m, *d);
  Result<void> bound = driver == DaxDriver::DeviceDax ? bind_device_dax(m, *d)
                       : driver == DaxDriver::Kmem    ? bind_kmem(m, *d)
                                                      : Result<void>{};
  // really_probe()'s report of a failed probe.
  if (!bound)
    m.log().log(LogLevel::Warn, "{}: probe of {} failed with error -{}", driver == DaxDriver::Kmem ? "kmem" : "dax_pmem",
                d->name, static_cast<int>(bound.error().code));
  return bound;
}

std::vector<BlockId> Libnvdimm::dax_memory_blocks(const Machine& m, std::string_view name) const {
  const DevDax* d = find_dax(name);
  if (!d || !d->kmem_range) return {};
  return m.memory_blocks_in(*d->kmem_range);
}

void Libnvdimm::check_invariants(const Machine& m, InvariantReport& report) const {
  for (const NdRegion& r : m_regions) {
    for (const NdNamespace& ns : r.namespaces) {
      // INV-ND-1: a namespace's holder claims it back.
      if (!ns.holder.empty()) {
        const NdPersonality* p = find_personality(r, ns.holder);
        if (!p || p->ns != ns.name) report.fail("INV-ND-1", "{}: holder {} does not claim it", ns.name, ns.holder);
      }
      // INV-ND-2: labelled namespaces lie in the region.
      if (ns.size && (ns.start < r.range.start || ns.range().last > r.range.last))
        report.fail("INV-ND-2", "{}: outside {}", ns.name, r.name);
    }
  }
  for (const auto& d : m_dax) {
    // INV-DAX-1: a device_dax pagemap is live and covers its range; kmem memory is in blocks.
    if (d->driver == DaxDriver::DeviceDax && (!d->pgmap || !d->pgmap->mapped()))
      report.fail("INV-DAX-1", "{}: bound to device_dax without a mapped pagemap", d->name);
    if (d->driver == DaxDriver::Kmem && d->kmem_range && dax_memory_blocks(m, d->name).empty())
      report.fail("INV-DAX-1", "{}: bound to kmem without memory blocks", d->name);
  }
}

}  // namespace sparsemem
