// ndctl / daxctl 76.1 command bodies (spec ndctl-daxctl.md §3-§10): the sysfs sequence each tool
// runs, as calls on Libnvdimm and the Machine, and the tool's stdout/stderr. Text helpers: ndtool_text.h.
#include "scenario/ndtool.h"

#include <algorithm>
#include <random>

#include <fmt/core.h>

#include "scenario/ndtool_text.h"
#include "scenario/simulation.h"

namespace sparsemem::sim {
namespace {

using nlohmann::ordered_json;
using namespace ndtool;

int neg(Errno e) { return -static_cast<int>(e); }
int exit_of(int rc) { return rc & 0xff; }
std::string strerror_of(int rc) { return std::string(errno_text(static_cast<Errno>(-rc))); }

// Random version-4 UUIDs: the real tool's are random too, and the diff compares them as "any UUID".
std::string new_uuid(std::mt19937_64& rng) {
  const uint64_t a = rng(), b = rng();
  return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff,
                     0x8000 | ((b >> 48) & 0x3fff), b & 0xffffffffffffULL);
}

std::mt19937_64& uuid_rng() {
  static thread_local std::mt19937_64 rng(0x5eed0004);
  return rng;
}

struct NdCtx {
  Simulation& s;
  Libnvdimm& nd;
  Machine& m;
};

std::string blockdev_name(const NdRegion& r, const NdNamespace& ns) {
  return ns.id == 0 ? fmt::format("pmem{}", r.id) : fmt::format("pmem{}.{}", r.id, ns.id);
}

// Is the namespace enabled (it or its claiming personality bound)?
bool ns_active(const Libnvdimm& nd, const NdRegion& r, const NdNamespace& ns) {
  if (const NdPersonality* p = nd.holder_of(r, ns)) return p->bound;
  return ns.bound;
}

// ---- JSON objects (§3, §8) ----

ordered_json dax_device_json(const NdCtx& c, const DevDax& d, bool human) {
  ordered_json j;
  j["chardev"] = d.name;
  j["size"] = size_value(d.range.size(), human);
  if (d.target_node >= 0) j["target_node"] = d.target_node;
  if (d.align) j["align"] = d.align == 2 * 1024 * 1024 ? ordered_json(d.align) : size_value(d.align, human);
  j["mode"] = d.driver == DaxDriver::Kmem ? "system-ram" : "devdax";
  if (d.driver == DaxDriver::Kmem && d.kmem_range) {
    const std::vector<BlockId> blocks = c.nd.dax_memory_blocks(c.m, d.name);
    unsigned online = 0;
    bool all_movable = true;
    for (BlockId b : blocks) {
      const MemoryBlock* mb = c.m.memory_blocks().find(b);
      if (mb && mb->state == MemoryBlockState::Online) ++online;
      auto vz = c.m.valid_zones(b);
      if (!vz || *vz != "Movable") all_movable = false;
    }
    j["online_memblocks"] = online;
    j["total_memblocks"] = blocks.size();
    if (online == blocks.size()) j["movable"] = all_movable;
  }
  if (d.driver == DaxDriver::None) j["state"] = "disabled";  // daxctl_dev_is_enabled()
  return j;
}

ordered_json namespace_body_json(const NdCtx& c, const NdRegion& r, const NdNamespace& ns, bool human, bool dax_region) {
  ordered_json j;
  j["dev"] = ns.name;
  const NdPersonality* p = c.nd.holder_of(r, ns);
  if (p && p->kind == NdClaimKind::Dax) {
    const DevDax* d = nullptr;
    for (const auto& x : c.nd.dax_devices())
      if (x->personality == p->name && x->region == r.id) d = x.get();
    const uint64_t data = ns.size - p->dataoff - p->end_trunc;
    j["mode"] = "devdax";
    j["map"] = p->mode == PfnMode::Ram ? "mem" : "dev";
    j["size"] = size_value(data, human);
    j["uuid"] = p->uuid;
    if (dax_region) {
      ordered_json dr;
      dr["id"] = r.id;
      dr["size"] = size_value(data, human);
      dr["align"] = p->align;
      if (d) dr["devices"] = ordered_json::array({dax_device_json(c, *d, human)});
      j["daxregion"] = dr;
    } else if (d) {
      j["chardev"] = d->name;
    }
    j["align"] = p->align;
    return j;
  }
  if (p && p->kind == NdClaimKind::Pfn) {
    j["mode"] = "fsdax";
    j["map"] = p->mode == PfnMode::Ram ? "mem" : "dev";
    j["size"] = size_value(ns.size - p->dataoff - p->end_trunc, human);
    j["uuid"] = p->uuid;
    j["sector_size"] = 512;
    j["align"] = p->align;
    j["blockdev"] = blockdev_name(r, ns);
    return j;
  }
  // Raw: a legacy (e820) namespace is mapped (pmem_should_map_pages), which ndctl reports as fsdax/mem.
  if (r.pagemap && ns.io) {
    j["mode"] = "fsdax";
    j["map"] = "mem";
  } else {
    j["mode"] = "raw";
  }
  j["size"] = size_value(ns.size, human);
  if (!ns.uuid.empty()) j["uuid"] = ns.uuid;
  else if (!ns.io) j["uuid"] = "00000000-0000-0000-0000-000000000000";
  j["sector_size"] = 512;
  if (ns.bound) j["blockdev"] = blockdev_name(r, ns);
  if (!ns_active(c.nd, r, ns)) j["state"] = "disabled";
  return j;
}

// util_namespace_to_json(): the mode's keys, then the label's name last (ndctl/json.c, 76.1).
ordered_json namespace_json(const NdCtx& c, const NdRegion& r, const NdNamespace& ns, bool human, bool dax_region) {
  ordered_json j = namespace_body_json(c, r, ns, human, dax_region);
  if (!ns.alt_name.empty()) j["name"] = ns.alt_name;
  return j;
}

ordered_json region_json(const NdCtx& c, const NdRegion& r, const NdctlListArgs& a, const ordered_json& namespaces) {
  ordered_json j;
  const bool h = a.human;
  j["dev"] = r.name;
  j["size"] = size_value(r.size(), h);
  j["align"] = size_value(r.align, h);
  j["available_size"] = size_value(c.nd.available_size(r), h);
  j["max_available_extent"] = size_value(c.nd.max_available_extent(r), h);
  j["type"] = "pmem";
  if (r.labelled) j["iset_id"] = hex_value(r.iset_cookie, h);
  if (a.dimms && r.dimm) {
    ordered_json m;
    m["dimm"] = c.nd.dimms()[*r.dimm].name;
    m["offset"] = hex_value(0, h);
    m["length"] = hex_value(r.size(), h);
    m["position"] = 0;
    j["mappings"] = ordered_json::array({m});
  }
  if (!r.enabled) j["state"] = "disabled";
  j["persistence_domain"] = "unknown";
  if (!namespaces.empty()) j["namespaces"] = namespaces;
  return j;
}

ordered_json dimm_json(const NdDimm& d, bool human) {
  ordered_json j;
  j["dev"] = d.name;
  const uint32_t s = d.serial;
  const uint32_t le = (s & 0xff) << 24 | (s & 0xff00) << 8 | (s >> 8 & 0xff00) | s >> 24;
  j["id"] = fmt::format("8680-{:08x}", le);
  j["handle"] = hex_value(d.handle, human);
  j["phys_id"] = hex_value(0, human);
  return j;
}

// Regions of every bus in the libraries' order (§1.6: bus N first, then by name hash).
std::vector<const NdRegion*> regions_in_order(const Libnvdimm& nd) {
  std::vector<const NdRegion*> out;
  for (auto b = nd.buses().rbegin(); b != nd.buses().rend(); ++b) {
    std::vector<std::string> names;
    for (const NdRegion& r : nd.regions())
      if (r.bus == b->id) names.push_back(r.name);
    for (const std::string& n : libndctl_order(names)) out.push_back(nd.find_region(n));
  }
  return out;
}

std::vector<const NdNamespace*> namespaces_in_order(const NdRegion& r) {
  std::vector<std::string> names;
  for (const NdNamespace& ns : r.namespaces) names.push_back(ns.name);
  std::vector<const NdNamespace*> out;
  for (const std::string& n : libndctl_order(names))
    for (const NdNamespace& ns : r.namespaces)
      if (ns.name == n) out.push_back(&ns);
  return out;
}

// ---- ndctl list ----

ToolOutcome ndctl_list(NdCtx& c, const std::vector<std::string>& argv) {
  ToolOutcome o;
  NdctlListArgs raw;
  if (ParseOutcome p = parse_ndctl_list(argv, raw); !p.ok) return ToolOutcome{p.rc, p.out, p.err, {}};
  const NdctlListArgs a = raw.resolved();
  ordered_json dimms = ordered_json::array(), regions = ordered_json::array(), top_ns = ordered_json::array();
  if (a.dimms)
    for (const NdDimm& d : c.nd.dimms()) dimms.push_back(dimm_json(d, a.human));
  for (const NdRegion* r : regions_in_order(c.nd)) {
    if (a.region && *a.region != r->name && *a.region != std::to_string(r->id)) continue;
    if (!r->enabled && !a.idle) continue;
    ordered_json nss = ordered_json::array();
    if (a.namespaces)
      for (const NdNamespace* ns : namespaces_in_order(*r)) {
        const bool active = ns_active(c.nd, *r, *ns);
        if (!active && !a.idle && !(a.configured && ns->size)) continue;
        if (a.namespace_id && *a.namespace_id != ns->name) continue;
        nss.push_back(namespace_json(c, *r, *ns, a.human, a.dax));
      }
    if (a.regions) regions.push_back(region_json(c, *r, a, nss));
    else
      for (auto& n : nss) top_ns.push_back(n);
  }
  // list_display(): namespaces count as a list even when they are nested in their regions.
  bool any_ns = !top_ns.empty();
  for (const auto& r : regions) any_ns |= r.contains("namespaces");
  const int lists = !dimms.empty() + !regions.empty() + any_ns;
  if (lists == 0) return o;
  if (lists > 1) {
    ordered_json j;
    if (!dimms.empty()) j["dimms"] = dimms;
    if (!regions.empty()) j["regions"] = regions;
    if (!top_ns.empty()) j["namespaces"] = top_ns;
    o.out = json_c_pretty(j) + "\n";
    return o;
  }
  const ordered_json& only = !dimms.empty() ? dimms : !regions.empty() ? regions : top_ns;
  DisplayText t = display_json_array(only, a.human);
  o.out = t.out + "\n";
  o.err = t.err;
  return o;
}

// ---- ndctl create-namespace ----

NdNamespaceConfig::Mode mode_of(std::string_view m) {
  std::string l(m);
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (l == "raw") return NdNamespaceConfig::Mode::Raw;
  if (l == "sector" || l == "safe") return NdNamespaceConfig::Mode::Sector;
  if (l == "devdax" || l == "dax") return NdNamespaceConfig::Mode::Devdax;
  return NdNamespaceConfig::Mode::Fsdax;
}

// The mode ndctl reads back for a namespace (ndctl_namespace_get_mode()).
NdNamespaceConfig::Mode current_mode(const NdCtx& c, const NdRegion& r, const NdNamespace& ns) {
  const NdPersonality* p = c.nd.holder_of(r, ns);
  if (!p) return r.pagemap && ns.io ? NdNamespaceConfig::Mode::Fsdax : NdNamespaceConfig::Mode::Raw;
  switch (p->kind) {
    case NdClaimKind::Pfn: return NdNamespaceConfig::Mode::Fsdax;
    case NdClaimKind::Dax: return NdNamespaceConfig::Mode::Devdax;
    case NdClaimKind::Btt: return NdNamespaceConfig::Mode::Sector;
  }
  return NdNamespaceConfig::Mode::Raw;
}

uint64_t default_align(const NdCtx& c, const NdRegion& r, const NdNamespace* target, NdNamespaceConfig::Mode mode) {
  const uint64_t page = c.m.arch().page_size();
  if (target && mode == current_mode(c, r, *target)) {
    const NdPersonality* p = c.nd.holder_of(r, *target);
    return p && p->kind != NdClaimKind::Btt ? p->align : page;
  }
  const std::string& seed = mode == NdNamespaceConfig::Mode::Fsdax ? r.pfn_seed
                            : mode == NdNamespaceConfig::Mode::Devdax ? r.dax_seed
                                                                       : std::string();
  if (seed.empty()) return page;
  const NdPersonality* p = c.nd.find_personality(r, seed);
  return p && p->align ? p->align : 2 * 1024 * 1024;
}

// zero_info_block() on a labelled namespace of size 0 (an idle seed): nd_pmem cannot bind it, so
// libndctl logs the failed enable and ndctl carries on (err(), counted by the command).
std::string zeroing_failed(std::string_view cmd, std::string_view ns) {
  return fmt::format("libndctl: ndctl_namespace_enable: {0}: failed to enable\n  Error: {1}: {0} failed to enable for "
                     "zeroing, continuing\n\n",
                     ns, cmd);
}

ToolOutcome ndctl_create_namespace(NdCtx& c, const std::vector<std::string>& argv) {
  ToolOutcome o;
  CreateNamespaceArgs a;
  if (ParseOutcome p = parse_create_namespace(argv, a); !p.ok) return ToolOutcome{p.rc, p.out, p.err, {}};
  const bool reconfig = a.reconfig.has_value();
  auto summary = [&](int rc) {
    o.err += fmt::format("failed to {} namespace: {}\n", reconfig ? "reconfigure" : "create", strerror_of(rc));
    o.rc = exit_of(reconfig ? rc : neg(Errno::NoDev));
    return o;
  };
  auto failed_err = [&](int rc) {  // reported through err(): the errno itself, no summary line
    o.rc = exit_of(rc);
    return o;
  };
  if (a.type && *a.type == "blk") return summary(neg(Errno::NxIO));

  const NdRegion* region = nullptr;
  const NdNamespace* target = nullptr;
  if (reconfig) {
    target = c.nd.find_namespace(*a.reconfig, &region);
    if (!target) return summary(neg(Errno::NxIO));
  }
  NdNamespaceConfig cfg;
  cfg.mode = a.mode ? mode_of(*a.mode) : NdNamespaceConfig::Mode::Fsdax;
  if (a.map) cfg.map = *a.map == "mem" ? PfnMode::Ram : PfnMode::Pmem;
  std::vector<const NdRegion*> candidates;
  if (region) candidates.push_back(region);
  else
    for (const NdRegion* r : regions_in_order(c.nd)) candidates.push_back(r);

  for (const NdRegion* r : candidates) {
    if (!r->enabled) continue;
    if (a.region && *a.region != r->name && *a.region != std::to_string(r->id)) continue;
    // §4.4 step 2: the size.
    uint64_t size = 0;
    if (a.size) size = *a.size;
    else if (target) size = target->size ? target->size : r->size();
    else size = r->labelled ? c.nd.max_available_extent(*r) : r->size();
    if (target && !target->io && !a.size) {
      // A labelled namespace keeps its size; a claimed one reports its raw size to ndctl.
      size = target->size;
    }
    if (!reconfig) {
      const uint64_t capacity = r->labelled ? c.nd.max_available_extent(*r) : r->size();
      if (capacity == 0 || size > capacity) continue;
    }
    // Step 3: label-less regions cannot be sub-divided.
    if (!r->labelled && size != r->size()) {
      o.err += "  Error: Legacy / label-less namespaces do not support sub-dividing a region\n\n";
      o.err += "  Error: Retry without -s/--size=\n\n";
      return summary(neg(Errno::Inval));
    }
    // Step 5: align only for fsdax/devdax.
    if (a.align && (cfg.mode == NdNamespaceConfig::Mode::Raw || cfg.mode == NdNamespaceConfig::Mode::Sector)) {
      o.err += fmt::format("  Error: {} mode does not support setting an alignment\n\n",
                           cfg.mode == NdNamespaceConfig::Mode::Raw ? "raw" : "sector");
      return summary(neg(Errno::NxIO));
    }
    if (a.align && *a.align != 4096 && *a.align != 2097152 && *a.align != 1073741824) {
      o.err += fmt::format("  Error: unsupported align: {}\n\n", a.align_text);
      return summary(neg(Errno::NxIO));
    }
    // Step 6: the region's align.
    if (size % r->align) {
      o.err += fmt::format("  Error: create namespace: {}: align setting is {:#x} size {:#x} is misaligned\n\n", r->name,
                           r->align, size);
      return failed_err(neg(Errno::Inval));
    }
    // validate_namespace_options(): the align given; on a reconfigure in the same mode the
    // namespace's own personality's (PAGE_SIZE when unclaimed); else the seed personality's —
    // which keeps whatever align a failed create wrote to it (§4.5).
    const uint64_t align = a.align ? *a.align : default_align(c, *r, target, cfg.mode);
    // Step 7.
    if ((cfg.mode == NdNamespaceConfig::Mode::Fsdax || cfg.mode == NdNamespaceConfig::Mode::Devdax) && size % align) {
      o.err += "  Error: create namespace: " + size_align_hint(size, a.size_text, align, 1) + "\n";
      return failed_err(neg(Errno::Inval));
    }
    if (a.map && reconfig && (cfg.mode == NdNamespaceConfig::Mode::Raw || cfg.mode == NdNamespaceConfig::Mode::Sector)) {
      o.err += fmt::format("  Error: create namespace: {}: --map= only valid for fsdax mode namespace\n\n", target->name);
      return failed_err(neg(Errno::Inval));
    }
    if (cfg.mode == NdNamespaceConfig::Mode::Sector) {
      o.unsupported = "ndctl create-namespace --mode=sector (BTT is not modelled)";
      return o;
    }
    cfg.align = align;
    cfg.size = size;
    cfg.uuid = new_uuid(uuid_rng());
    cfg.pfn_uuid = new_uuid(uuid_rng());
    // The label's name: given, else (reconfigure) the namespace's own.
    cfg.name = a.name ? *a.name : target ? target->alt_name : std::string();
    std::string ns_name;
    const std::string region_name = r->name;
    // A legacy namespace is already mapped with its memmap in RAM: fsdax --map=mem needs no pfn
    // device, the namespace is simply enabled raw.
    if (target && target->io && r->pagemap && cfg.mode == NdNamespaceConfig::Mode::Fsdax && cfg.map == PfnMode::Ram)
      cfg.mode = NdNamespaceConfig::Mode::Raw;
    if (reconfig) {
      const std::string tname = target->name;
      const bool io = target->io;
      if (ns_active(c.nd, *r, *target) && !a.force) {
        o.err += fmt::format("  Error: {} is active, specify --force for re-configuration\n\n", tname);
        return summary(neg(Errno::Busy));
      }
      if (auto d = c.nd.disable_namespace(c.m, tname); !d) return summary(neg(d.error().code));
      if (!io && target->size == 0) o.err += zeroing_failed("create namespace", tname);
      (void)c.nd.destroy_namespace(c.m, tname);
      ns_name = io ? tname : std::string();
    }
    if (ns_name.empty()) ns_name = c.nd.idle_namespace(*r);
    const bool dax_mode = cfg.mode == NdNamespaceConfig::Mode::Devdax || cfg.mode == NdNamespaceConfig::Mode::Fsdax;
    const std::string personality = cfg.mode == NdNamespaceConfig::Mode::Devdax ? r->dax_seed : r->pfn_seed;
    auto made = c.nd.setup_namespace(c.m, region_name, ns_name, cfg);
    if (!made) {
      const Errno e = made.error().code;
      // An oops in the kernel (seed 004's memmap-init fault) kills the task that wrote to sysfs
      // (oops_end() with SIGKILL): the shell reports it, nothing else is printed.
      if (e == Errno::Fault) {
        o.err = "Killed\n";
        o.rc = 128 + 9;
        return o;
      }
      if (!dax_mode || e == Errno::NoSpc || e == Errno::NoDev) return summary(neg(e));
      // setup_namespace() in ndctl/namespace.c: the bind did not take, libndctl says -ENXIO
      // whatever the probe's errno; with autorecover the claim is dropped and the
      // namespace deleted (size 0, the label gone) — namespace_create(), 76.1.
      o.err += fmt::format("libndctl: ndctl_{}_enable: {}: failed to enable\n",
                           cfg.mode == NdNamespaceConfig::Mode::Devdax ? "dax" : "pfn", personality);
      o.err += fmt::format("  Error: {}: failed to enable\n\n", ns_name);
      if (!reconfig && a.autorecover) (void)c.nd.destroy_namespace(c.m, ns_name);
      return summary(neg(Errno::NxIO));
    }
    const NdRegion* nr = nullptr;
    const NdNamespace* ns = c.nd.find_namespace(*made, &nr);
    o.out = json_c_pretty(namespace_json(c, *nr, *ns, false, true)) + "\n";
    return o;
  }
  return summary(reconfig ? neg(Errno::NxIO) : neg(Errno::NoSpc));
}

// ---- ndctl destroy / disable / enable namespace ----

ToolOutcome ndctl_namespace_op(NdCtx& c, const std::vector<std::string>& argv, std::string_view op) {
  ToolOutcome o;
  DestroyNamespaceArgs a;
  ParseOutcome p = op == "destroy" ? parse_destroy_namespace(argv, a)
                   : op == "disable" ? parse_disable_namespace(argv, a)
                                     : parse_enable_namespace(argv, a);
  if (!p.ok) return ToolOutcome{p.rc, p.out, p.err, {}};
  int rc = 0, count = 0;
  bool found = false;
  bool err_counted = false;
  for (const NdRegion* r : regions_in_order(c.nd)) {
    if (a.region && *a.region != r->name) continue;
    std::vector<std::string> names;
    for (const NdNamespace* ns : namespaces_in_order(*r))
      if (a.target == "all" ? (ns->size != 0 || !ns->uuid.empty()) : ns->name == a.target) names.push_back(ns->name);
    for (const std::string& name : names) {
      found = true;
      const NdRegion* rr = nullptr;
      const NdNamespace* ns = c.nd.find_namespace(name, &rr);
      if (!ns) continue;
      if (op == "destroy") {
        if (ns_active(c.nd, *rr, *ns) && !a.force) {
          // namespace_prep_reconfig() reports this with error(), not err(): the summary follows.
          o.err += fmt::format("  Error: {} is active, specify --force for re-configuration\n\n", name);
          rc = neg(Errno::Busy);
          continue;
        }
        if (auto d = c.nd.disable_namespace(c.m, name); !d) {
          rc = neg(d.error().code);
          continue;
        }
        // namespace_destroy(): a labelled namespace counts once its label is deleted, even an
        // idle seed whose info block could not be zeroed.
        const bool labelled = !ns->io;
        if (labelled && ns->size == 0) {
          o.err += zeroing_failed("destroy namespace", name);
          err_counted = true;
        }
        auto destroyed = c.nd.destroy_namespace(c.m, name);
        if (!destroyed) {
          rc = neg(destroyed.error().code);
          continue;
        }
        if (*destroyed || labelled) ++count;
      } else if (op == "disable") {
        if (auto d = c.nd.disable_namespace(c.m, name); !d) rc = neg(d.error().code);
        else ++count;
      } else {
        // ndctl_namespace_enable(): a bind that does not take is logged and is -ENXIO.
        if (auto e = c.nd.enable_namespace(c.m, name); !e) {
          o.err += fmt::format("libndctl: ndctl_namespace_enable: {}: failed to enable\n", name);
          rc = neg(Errno::NxIO);
        } else {
          ++count;
        }
      }
    }
  }
  if (!found && a.target != "all") rc = neg(Errno::NxIO);
  const char* verb = op == "destroy" ? "destroy" : op == "disable" ? "disabl" : "enabl";
  if (rc < 0 && !err_counted) o.err += fmt::format("error {}ing namespaces: {}\n", verb, strerror_of(rc));
  o.err += fmt::format("{}ed {} namespace{}\n", op == "destroy" ? "destroy" : op == "disable" ? "disabl" : "enabl", count,
                       count == 1 ? "" : "s");
  o.rc = exit_of(rc);
  return o;
}

// ---- regions and labels ----

ToolOutcome ndctl_region_op(NdCtx& c, const std::vector<std::string>& argv, bool enable) {
  ToolOutcome o;
  RegionArgs a;
  if (ParseOutcome p = enable ? parse_enable_region(argv, a) : parse_disable_region(argv, a); !p.ok)
    return ToolOutcome{p.rc, p.out, p.err, {}};
  int count = 0;
  for (const NdRegion* r : regions_in_order(c.nd)) {
    if (a.target != "all" && a.target != r->name) continue;
    const std::string name = r->name;
    auto res = enable ? c.nd.enable_region(c.m, name) : c.nd.disable_region(c.m, name);
    if (res) ++count;
  }
  // "region" only for exactly one: N = 0 prints "disabled 0 regions" (trace n3).
  o.err = fmt::format("{} {} region{}\n", enable ? "enabled" : "disabled", count, count == 1 ? "" : "s");
  return o;
}

ToolOutcome ndctl_init_labels(NdCtx& c, const std::vector<std::string>& argv) {
  ToolOutcome o;
  InitLabelsArgs a;
  if (ParseOutcome p = parse_init_labels(argv, a); !p.ok) return ToolOutcome{p.rc, p.out, p.err, {}};
  int count = 0, rc = 0;
  for (const NdDimm& d : c.nd.dimms()) {
    if (std::find(a.targets.begin(), a.targets.end(), "all") == a.targets.end() &&
        std::find(a.targets.begin(), a.targets.end(), d.name) == a.targets.end())
      continue;
    if (auto r = c.nd.init_labels(d.name, a.force); !r) {
      o.err += r.error().message + "\n";
      rc = 1;
    } else {
      ++count;
    }
  }
  o.err += fmt::format("initialized {} nmem{}\n", count, count > 1 ? "s" : "");
  o.rc = rc ? 1 : 0;
  return o;
}

// ---- daxctl ----

std::vector<const DevDax*> dax_in_order(const Libnvdimm& nd) {
  std::vector<std::string> names;
  for (const auto& d : nd.dax_devices()) names.push_back(d->name);
  std::vector<const DevDax*> out;
  for (const std::string& n : libndctl_order(names)) out.push_back(nd.find_dax(n));
  return out;
}

ToolOutcome daxctl_list(NdCtx& c, const std::vector<std::string>& argv) {
  ToolOutcome o;
  DaxctlListArgs raw;
  if (ParseOutcome p = parse_daxctl_list(argv, raw); !p.ok) return ToolOutcome{p.rc, p.out, p.err, {}};
  const DaxctlListArgs a = raw.resolved();
  if (a.regions) {
    o.unsupported = "daxctl list -R (dax regions)";
    return o;
  }
  ordered_json devs = ordered_json::array();
  for (const DevDax* d : dax_in_order(c.nd)) {
    if (a.dev && *a.dev != d->name && *a.dev != "all") continue;
    devs.push_back(dax_device_json(c, *d, a.human));
  }
  if (devs.empty()) return o;
  DisplayText t = display_json_array(devs, a.human);
  o.out = t.out + "\n";
  o.err = t.err;
  return o;
}

// daxctl_memory_online/offline over the device's blocks. Returns the blocks acted on, or an errno.
std::vector<BlockId> dax_blocks(NdCtx& c, const DevDax& d) { return c.nd.dax_memory_blocks(c.m, d.name); }

bool block_online(const Machine& m, BlockId b) {
  const MemoryBlock* mb = m.memory_blocks().find(b);
  return mb && mb->state == MemoryBlockState::Online;
}

const char* kRaceWarning =
    "  WARNING: detected a race while onlining memory\n"
    "  Some memory may not be in the expected zone. It is\n"
    "  recommended to disable any other onlining mechanisms,\n"
    "  and retry. If onlining is to be left to other agents,\n"
    "  use the --no-online option to suppress this warning\n";

// Online the device's offline blocks (reconfigure step 4 / online-memory). rc < 0 errno, 1 when
// everything was already online (online-memory's "nothing to do"), 0 otherwise.
int dax_online_memory(NdCtx& c, const DevDax& d, bool movable, ToolOutcome& o) {
  const std::vector<BlockId> blocks = dax_blocks(c, d);
  size_t already = 0;
  for (BlockId b : blocks) already += block_online(c.m, b);
  if (already) {
    o.err += fmt::format("{}:\n{}", d.name, kRaceWarning);
    if (already == blocks.size()) {
      o.err += fmt::format("{}: all memory sections ({}) already online\n", d.name, blocks.size());
      return 1;
    }
    o.err += fmt::format("{}: {} memory section{} already online\n", d.name, already, already == 1 ? "" : "s");
  }
  for (BlockId b : blocks) {
    if (block_online(c.m, b)) continue;
    if (auto r = c.m.memory_block_state_store(b, movable ? OnlineType::OnlineMovable : OnlineType::Online); !r)
      return neg(r.error().code);
  }
  for (BlockId b : blocks) {
    auto vz = c.m.valid_zones(b);
    if (!vz || *vz != (movable ? "Movable" : "Normal")) {
      o.err += fmt::format("libdaxctl: daxctl_memory_online_with_zone: {}:\n"
                           "  WARNING: detected a race while onlining memory\n"
                           "  See 'man daxctl-reconfigure-device' for more details\n",
                           d.name);
      return neg(Errno::Busy);
    }
  }
  return 0;
}

int dax_offline_memory(NdCtx& c, const DevDax& d, ToolOutcome& o, bool report_already) {
  const std::vector<BlockId> blocks = dax_blocks(c, d);
  size_t already = 0;
  for (BlockId b : blocks) already += !block_online(c.m, b);
  if (report_already && already == blocks.size()) {
    o.err += fmt::format("{}: all memory sections ({}) already offline\n", d.name, blocks.size());
    return 1;
  }
  if (report_already && already)
    o.err += fmt::format("{}: {} memory section{} already offline\n", d.name, already, already == 1 ? "" : "s");
  for (BlockId b : blocks) {
    if (!block_online(c.m, b)) continue;
    if (auto r = c.m.memory_block_state_store(b, OnlineType::Offline); !r) {
      o.err += fmt::format("{}: failed to offline memory: {}\n", d.name, errno_text(r.error().code));
      return neg(r.error().code);
    }
  }
  return 0;
}

std::vector<std::string> dax_targets(const Libnvdimm& nd, std::string_view dev) {
  std::vector<std::string> out;
  for (const DevDax* d : dax_in_order(nd))
    if (dev == "all" || dev == d->name) out.push_back(d->name);
  return out;
}

ToolOutcome daxctl_reconfigure(NdCtx& c, const std::vector<std::string>& argv) {
  ToolOutcome o;
  ReconfigureDeviceArgs a;
  if (ParseOutcome p = parse_reconfigure_device(argv, a); !p.ok) return ToolOutcome{p.rc, p.out, p.err, {}};
  if (a.size || a.align) {
    o.unsupported = "daxctl reconfigure-device --size/--align (dynamic dax regions are not modelled)";
    return o;
  }
  int rc = 0, count = 0;
  ordered_json last;
  const std::vector<std::string> targets = dax_targets(c.nd, a.device);
  if (targets.empty()) rc = neg(Errno::NxIO);
  for (const std::string& name : targets) {
    const DevDax* d = c.nd.find_dax(name);
    int r = 0;
    if (a.mode && *a.mode == "system-ram") {
      const OnlineType policy = c.m.hotplug_config().auto_online_blocks;
      if (!a.force && policy != OnlineType::Offline && (a.no_online || !a.no_movable)) {
        o.err += fmt::format("{}: error: kernel policy will auto-online memory, aborting\n", name);
        rc = neg(Errno::Busy);
        continue;
      }
      if (d->driver == DaxDriver::Kmem) {
        o.err += fmt::format("{} was already in system-ram mode\n", name);
      } else if (auto b = c.nd.bind_dax(c.m, name, DaxDriver::Kmem); !b) {
        // daxctl_dev_enable() writes the driver's new_id (an attach attempt) and then bind: the
        // kernel probes twice.
        (void)c.nd.bind_dax(c.m, name, DaxDriver::Kmem);
        o.err += fmt::format("libdaxctl: daxctl_dev_enable: {}: failed to enable\n", name);
        rc = neg(b.error().code);
        continue;
      }
      d = c.nd.find_dax(name);
      if (!a.no_online) {
        r = dax_online_memory(c, *d, !a.no_movable, o);
        if (r < 0) {
          rc = r;
          continue;
        }
      }
    } else if (a.mode && *a.mode == "devdax") {
      if (d->driver == DaxDriver::DeviceDax) {
        o.err += fmt::format("{} was already in devdax mode\n", name);
      } else {
        if (a.force && d->driver == DaxDriver::Kmem)
          if (int off = dax_offline_memory(c, *d, o, false); off < 0) {
            rc = off;
            continue;
          }
        bool online = false;
        for (BlockId b : dax_blocks(c, *d)) online |= block_online(c.m, b);
        if (online) {
          rc = neg(Errno::Busy);
          continue;
        }
        if (auto b = c.nd.bind_dax(c.m, name, DaxDriver::DeviceDax); !b) {
          o.err += fmt::format("libdaxctl: daxctl_dev_enable: {}: failed to enable\n", name);
          rc = neg(b.error().code);
          continue;
        }
      }
    } else {
      o.err += fmt::format("{}: unknown mode requested: 0\n", name);
      rc = neg(Errno::Inval);
      continue;
    }
    ++count;
    last = ordered_json::array({dax_device_json(c, *c.nd.find_dax(name), a.human)});
  }
  if (!last.is_null()) {
    DisplayText t = display_json_array(last, a.human);
    o.out = t.out + "\n";
  }
  if (rc < 0) o.err += fmt::format("error reconfiguring devices: {}\n", strerror_of(rc));
  o.err += fmt::format("reconfigured {} device{}\n", count, count == 1 ? "" : "s");
  o.rc = exit_of(rc);
  return o;
}

ToolOutcome daxctl_memory_op(NdCtx& c, const std::vector<std::string>& argv, bool online) {
  ToolOutcome o;
  MemoryOpArgs a;
  if (ParseOutcome p = online ? parse_online_memory(argv, a) : parse_offline_memory(argv, a); !p.ok)
    return ToolOutcome{p.rc, p.out, p.err, {}};
  int rc = 0, count = 0;
  const std::vector<std::string> targets = dax_targets(c.nd, a.device);
  if (targets.empty()) rc = neg(Errno::NxIO);
  for (const std::string& name : targets) {
    const DevDax* d = c.nd.find_dax(name);
    if (d->driver != DaxDriver::Kmem) {
      o.err += fmt::format("{}: memory operations are not applicable in devdax mode\n", name);
      rc = neg(Errno::NxIO);
      continue;
    }
    const int r = online ? dax_online_memory(c, *d, !a.no_movable, o) : dax_offline_memory(c, *d, o, true);
    if (r < 0) rc = r;
    else if (r == 1 && rc == 0) rc = 1;
    else if (r == 0) ++count;
  }
  if (rc < 0) o.err += fmt::format("error {} memory: {}\n", online ? "onlining" : "offlining", strerror_of(rc));
  o.err += fmt::format("{} memory for {} device{}\n", online ? "onlined" : "offlined", count, count == 1 ? "" : "s");
  o.rc = exit_of(rc);
  return o;
}

}  // namespace

ToolOutcome run_ndctl(Simulation& s, const std::vector<std::string>& argv) {
  NdCtx c{s, s.nd, *s.machine};
  const std::string sub = argv.size() > 1 ? argv[1] : "";
  if (sub == "list") return ndctl_list(c, argv);
  if (sub == "create-namespace") return ndctl_create_namespace(c, argv);
  if (sub == "destroy-namespace") return ndctl_namespace_op(c, argv, "destroy");
  if (sub == "disable-namespace") return ndctl_namespace_op(c, argv, "disable");
  if (sub == "enable-namespace") return ndctl_namespace_op(c, argv, "enable");
  if (sub == "disable-region") return ndctl_region_op(c, argv, false);
  if (sub == "enable-region") return ndctl_region_op(c, argv, true);
  if (sub == "init-labels") return ndctl_init_labels(c, argv);
  ToolOutcome o;
  o.unsupported = fmt::format("ndctl {} is not modelled", sub);
  return o;
}

ToolOutcome run_daxctl(Simulation& s, const std::vector<std::string>& argv) {
  NdCtx c{s, s.nd, *s.machine};
  const std::string sub = argv.size() > 1 ? argv[1] : "";
  if (sub == "list") return daxctl_list(c, argv);
  if (sub == "reconfigure-device") return daxctl_reconfigure(c, argv);
  if (sub == "online-memory") return daxctl_memory_op(c, argv, true);
  if (sub == "offline-memory") return daxctl_memory_op(c, argv, false);
  ToolOutcome o;
  o.unsupported = fmt::format("daxctl {} is not modelled", sub);
  return o;
}

}  // namespace sparsemem::sim
