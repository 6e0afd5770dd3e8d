// Property tests for pfn_valid / pfn_to_online_page after boot: for random memory maps on every
// architecture profile, the library agrees with a naive reference model and the checker is clean.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <set>

#include "sparsemem/machine.h"

namespace sparsemem {
namespace {

// The reference: a set of RAM byte ranges and two lines of arithmetic per question.
struct Reference {
  const ArchProfile* arch;
  std::vector<std::pair<uint64_t, uint64_t>> ram;  // [start, end) in bytes

  bool section_has_ram(uint64_t section) const {
    const uint64_t s = section << arch->section_size_bits, e = s + arch->section_size();
    for (auto [a, b] : ram)
      if (a < e && s < b) return true;
    return false;
  }
  bool subsection_has_ram(uint64_t pfn) const {
    const uint64_t s = (pfn << arch->page_shift) & ~((uint64_t{1} << SUBSECTION_SHIFT) - 1);
    const uint64_t e = s + (uint64_t{1} << SUBSECTION_SHIFT);
    for (auto [a, b] : ram)
      if (a < e && s < b) return true;
    return false;
  }
  // Boot sections are early: valid over the whole section (spec §3).
  bool pfn_valid(uint64_t pfn) const {
    return (pfn >> arch->pfn_section_shift()) < arch->nr_mem_sections() && section_has_ram(pfn >> arch->pfn_section_shift());
  }
  // Online only where a populated 2 MiB subsection is (no early exception).
  bool online(uint64_t pfn) const { return pfn_valid(pfn) && subsection_has_ram(pfn); }
};

RC_GTEST_PROP(PfnValidProperty, boot_maps_agree_with_reference_on_every_profile, ()) {
  const auto profiles = all_arch_profiles();
  const ArchProfile& arch = profiles[*rc::gen::inRange<size_t>(0, profiles.size())];
  const uint64_t page = arch.page_size();
  const uint64_t base = arch.family == ArchFamily::Arm64 ? 0x40000000 : 0;
  // Keep arm64 RAM inside what its vmemmap window covers.
  uint64_t span = uint64_t{1} << std::min(arch.max_physmem_bits, 40u);
  if (arch.family == ArchFamily::Arm64) span = std::min(span, (arch.vmemmap_size / STRUCT_PAGE_SIZE) * page);
  const auto n = *rc::gen::inRange<int>(1, 6);
  std::vector<BootRegion> regions;
  for (int i = 0; i < n; ++i) {
    const uint64_t start = base + (*rc::gen::inRange<uint64_t>(0, span / page - 1)) * page;
    const uint64_t size = *rc::gen::inRange<uint64_t>(1, (uint64_t{192} << 20) / page) * page;
    const auto kind = *rc::gen::element(BootMemKind::Usable, BootMemKind::Reserved, BootMemKind::NoMap);
    const unsigned nid = *rc::gen::inRange<unsigned>(0, 3);
    if (start + size > base + span) continue;
    bool overlaps = false;
    for (const BootRegion& r : regions)
      overlaps |= start < r.start.value() + r.size + page && r.start.value() < start + size + page;
    if (!overlaps) regions.push_back({PhysAddr(start), size, nid, kind});
  }
  RC_PRE(!regions.empty());
  MachineConfig cfg;
  cfg.arch = &arch;
  cfg.memory.regions = regions;
  auto m = Machine::boot(cfg);
  RC_ASSERT(m.has_value());
  Reference ref{&arch, {}};
  for (const BootRegion& r : regions) ref.ram.push_back({r.start.value(), r.start.value() + r.size});

  // Probe the edges where the answers change, plus random pfns.
  std::set<uint64_t> probes;
  for (const BootRegion& r : regions) {
    const uint64_t s = r.start.value() / page, e = (r.start.value() + r.size) / page;
    for (uint64_t p : {s, e, s + 1}) {
      probes.insert(p);
      if (p) probes.insert(p - 1);
    }
    const uint64_t sec = s >> arch.pfn_section_shift() << arch.pfn_section_shift();
    probes.insert(sec);
    probes.insert(sec + arch.pages_per_section().value() - 1);
    probes.insert(sec + arch.pages_per_section().value());
  }
  for (int i = 0; i < 64; ++i) probes.insert(*rc::gen::inRange<uint64_t>(0, (base + span) / page));
  probes.insert(arch.max_pfn_limit());
  probes.insert(~uint64_t{0});
  for (uint64_t pfn : probes) {
    RC_ASSERT((*m)->pfn_valid(Pfn(pfn)) == ref.pfn_valid(pfn));
    RC_ASSERT(((*m)->pfn_to_online_page(Pfn(pfn)) != nullptr) == ref.online(pfn));
  }
  const InvariantReport report = (*m)->check();
  RC_ASSERT(report.ok());
}

}  // namespace
}  // namespace sparsemem
