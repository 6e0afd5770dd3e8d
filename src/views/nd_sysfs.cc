// The sysfs attributes of libnvdimm's and the dax bus's devices as the guest helper nd_dax_state
// prints them (shared/oracle/guest/bin/nd_dax_state). Pure rendering of a Libnvdimm.
#include <algorithm>

#include <fmt/core.h>

#include "sparsemem/views.h"

namespace sparsemem {
namespace {

constexpr const char* kUnreadable = "<err>";  // a read() that fails (-ENXIO for an unset size)

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

const char* pfn_mode_name(PfnMode m) {
  switch (m) {
    case PfnMode::None: return "none";
    case PfnMode::Ram: return "ram";
    case PfnMode::Pmem: return "pmem";
  }
  return "none";
}

// namespace "mode": the claiming personality's kind, raw when unclaimed.
const char* namespace_mode(const Libnvdimm& nd, const NdRegion& r, const NdNamespace& ns) {
  const NdPersonality* p = nd.holder_of(r, ns);
  // pmem_should_map_pages(): an unclaimed namespace of an ND_REGION_PAGEMAP region is mapped.
  if (!p) return r.pagemap && !ns.force_raw ? "memory" : "raw";
  switch (p->kind) {
    case NdClaimKind::Pfn: return "memory";
    case NdClaimKind::Dax: return "dax";
    case NdClaimKind::Btt: return "safe";
  }
  return "raw";
}

}  // namespace

std::vector<std::string> nd_dax_state_lines(const Libnvdimm& nd) {
  std::vector<std::pair<std::string, std::string>> nd_lines;  // (device name, line)
  for (const NdBus& b : nd.buses()) nd_lines.emplace_back(b.name, fmt::format("nd {} driver=nd_bus", b.name));
  for (const NdDimm& d : nd.dimms()) nd_lines.emplace_back(d.name, fmt::format("nd {} driver=nvdimm", d.name));
  for (const NdRegion& r : nd.regions()) {
    nd_lines.emplace_back(
        r.name,
        fmt::format("region {} size={} resource={} align={} available_size={} max_available_extent={} numa_node={} "
                    "target_node={} init_namespaces={} namespace_seed={} dax_seed={} pfn_seed={} btt_seed={} driver={}",
                    r.name, r.size(), hex(r.range.start.value()), hex(r.align),
                    // region_visible() hides available_size from regions without DIMMs.
                    r.dimm ? fmt::format("{}", nd.available_size(r)) : std::string(),
                    nd.max_available_extent(r), r.numa_node, r.numa_node,
                    r.enabled ? fmt::format("{}/{}", r.init_namespaces, r.init_namespaces) : std::string("0/0"),
                    r.ns_seed, r.dax_seed, r.pfn_seed, r.btt_seed, r.enabled ? "nd_region" : ""));
    for (const NdNamespace& ns : r.namespaces) {
      const bool has_res = ns.size != 0;
      nd_lines.emplace_back(ns.name,
                            fmt::format("namespace {} devtype={} mode={} size={} resource={} holder={} force_raw={} "
                                        "numa_node={} driver={}",
                                        ns.name, ns.io ? "nd_namespace_io" : "nd_namespace_pmem",
                                        namespace_mode(nd, r, ns), ns.size,
                                        has_res ? hex(ns.start.value()) : std::string(kUnreadable), ns.holder,
                                        ns.force_raw ? 1 : 0, r.numa_node, ns.bound ? "nd_pmem" : ""));
    }
    for (const NdPersonality& p : r.personalities) {
      std::string line;
      if (p.kind == NdClaimKind::Btt) {
        line = fmt::format("btt {} namespace={} mode= align= size={} resource= driver={}", p.name, p.ns,
                           p.bound ? std::string("0") : std::string(kUnreadable), p.bound ? "nd_btt" : "");
      } else {
        const NdNamespace* ns = p.bound ? nd.find_namespace(p.ns) : nullptr;
        const std::string size = ns ? fmt::format("{}", ns->size - p.dataoff - p.end_trunc) : kUnreadable;
        const std::string res = ns ? hex(ns->start.value() + p.dataoff) : kUnreadable;
        line = fmt::format("{} {} namespace={} mode={} align={} size={} resource={} driver={}",
                           p.kind == NdClaimKind::Dax ? "dax" : "pfn", p.name, p.ns, pfn_mode_name(p.mode), p.align,
                           size, res, !p.bound ? "" : p.kind == NdClaimKind::Dax ? "dax_pmem" : "nd_pmem");
      }
      nd_lines.emplace_back(p.name, std::move(line));
    }
  }
  std::sort(nd_lines.begin(), nd_lines.end());
  std::vector<std::pair<std::string, std::string>> dax_lines;
  for (const auto& d : nd.dax_devices()) {
    const char* driver = d->driver == DaxDriver::DeviceDax ? "device_dax" : d->driver == DaxDriver::Kmem ? "kmem" : "";
    dax_lines.emplace_back(d->name, fmt::format("daxdev {} size={} resource={} target_node={} align={} numa_node={} driver={}",
                                                d->name, d->range.size(), hex(d->range.start.value()), d->target_node,
                                                d->align, d->target_node, driver));
  }
  std::sort(dax_lines.begin(), dax_lines.end());
  std::vector<std::string> out;
  for (auto& [n, l] : nd_lines) out.push_back(std::move(l));
  for (auto& [n, l] : dax_lines) out.push_back(std::move(l));
  return out;
}

}  // namespace sparsemem
