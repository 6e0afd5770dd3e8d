// Hotplug invariants for Machine::check(): blocks vs sections and page zones, groups, zone counters
// recounted from descriptors, tagged pages never lost. Runs under the hotplug lock; reports, never aborts.
#include <algorithm>

#include "internal/page_walk.h"
#include "sparsemem/machine.h"

namespace sparsemem {

// INV-ZONE-COUNT-1/2/3: per node and zone, present / present_early / managed equal the recount
// over online blocks: a boot block contributes its memblock pages, a hot-added one all its pages
// (vmemmap pages included); managed pages are those neither PG_reserved nor PageOffline.
Machine::ZoneCounts Machine::count_block_locked(const MemoryBlock& mem) const {
  ZoneCounts c;
  const PfnRange r = m_blocks.block_range(mem.id);
  auto count = [&](Pfn start, Pfn end) {
    // Runs of pages of one node and zone are counted locally, then added to the map.
    std::pair<unsigned, ZoneType> key{~0u, ZoneType::DMA};
    std::array<uint64_t, 3> run{};
    auto flush = [&] {
      if (key.first == ~0u) return;
      for (unsigned i = 0; i < 3; ++i) c[key][i] += run[i];
      run = {};
    };
    const uint64_t ppss = m_arch.pages_per_subsection().value();
    for (Pfn sub = start; sub < end;) {
      // INV-DEFER-2 (memmap.h): a pending section's pages are counted from its run, unread.
      if (const std::optional<DeferredSectionRun> pending = m_vmemmap->deferred_run(sub)) {
        const Pfn sec_end = std::min(end, m_arch.section_nr_to_pfn(m_arch.pfn_to_section_nr(sub).next()));
        const uint64_t n = (sec_end - sub).value();
        const std::pair<unsigned, ZoneType> k{pending->nid, pending->zone};
        if (k != key) {
          flush();
          key = k;
        }
        run[0] += n;
        if (mem.boot) run[1] += n;
        if (!pending->reserved) run[2] += n;
        sub = sec_end;
        continue;
      }
      const Pfn sub_end = std::min(end, Pfn((sub.value() | (ppss - 1)) + 1));
      // An unmapped memmap under a legacy behaviour is INV-SEC-3's finding; it is not counted here.
      if (!m_vmemmap->descriptor_mapped(sub) || !m_vmemmap->descriptor_mapped(sub_end - NrPages(1))) {
        sub = sub_end;
        continue;
      }
      // The page before's flags and type word, and whether it was managed: reserved runs (the
      // kernel image, boot allocations) repeat them page after page.
      bool have_last = false;
      uint64_t last_flags = 0;
      int32_t last_type = 0;
      bool last_managed = false;
      for_each_page(*m_vmemmap, m_arch, sub, sub_end, [&](Pfn pfn, const Page& p) -> uint64_t {
        if (have_last && p.flags == last_flags && p.mapcount == last_type) {
          ++run[0];
          if (mem.boot) ++run[1];
          run[2] += last_managed;
          return 1;
        }
        const std::pair<unsigned, ZoneType> k{p.nid(), p.zone()};
        if (k != key) {
          flush();
          key = k;
        }
        // A free buddy block is one zone and node, and managed throughout: counted at its head.
        const uint64_t n = p.is_buddy() ? std::min<uint64_t>(uint64_t{1} << p.private_, (sub_end - pfn).value()) : 1;
        const bool managed = p.is_buddy() || (!p.test(PG::reserved) && !p.has_type(PG_offline));
        run[0] += n;
        if (mem.boot) run[1] += n;
        if (managed) run[2] += n;
        have_last = !p.is_buddy();  // a buddy head's tail pages differ from it
        last_flags = p.flags;
        last_type = p.mapcount;
        last_managed = managed;
        return n;
      });
      sub = sub_end;
    }
    flush();
  };
  if (!mem.boot) {
    count(r.start, r.end());
    return c;
  }
  for (const MemRange& m : memory_pfn_ranges()) {
    const Pfn s = std::max(m.start, r.start), e = std::min(m.end, r.end());
    if (s < e) count(s, e);
  }
  return c;
}

void Machine::check_hotplug_locked(InvariantReport& report) const {
  m_blocks.check_invariants(report);
  const NrPages pps = m_arch.pages_per_section();
  const NrPages ppss = m_arch.pages_per_subsection();
  std::map<uint64_t, unsigned> group_blocks;
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> group_present;  // kernel, movable
  ZoneCounts total;

  std::vector<const MemoryBlock*> blocks;
  blocks.reserve(m_blocks.size());
  m_blocks.for_each([&](const MemoryBlock& b) { blocks.push_back(&b); });
  for (const MemoryBlock* block : blocks) {
    const MemoryBlock& b = *block;
    const PfnRange r = m_blocks.block_range(b.id);
    const bool online = b.state == MemoryBlockState::Online;
    if (b.nid >= m_nodes.size() || !m_nodes[b.nid].online)
      report.fail("INV-BLOCK-6", "memory{} is linked to node {} which is not online", b.id.value(), b.nid);
    // INV-BLOCK-1: an online block's present sections are online, an offline block's are not;
    // a hot-added block's sections are all present with a memmap and never early.
    for (Pfn p = r.start; p < r.end(); p += pps) {
      const MemSection* ms = m_sections->find(m_arch.pfn_to_section_nr(p));
      const SectionFlags f = ms ? ms->flags() : SectionFlags();
      if (!b.boot && (!f.has(SectionFlag::Present) || !f.has(SectionFlag::HasMemMap) || f.has(SectionFlag::Early)))
        report.fail("INV-BLOCK-1", "hot-added memory{}: section {} has flags {:#x}", b.id.value(),
                    m_arch.pfn_to_section_nr(p).value(), f.bits());
      if (!f.has(SectionFlag::Present)) continue;
      if (f.has(SectionFlag::Online) != online)
        report.fail("INV-BLOCK-1", "memory{} is {} but section {} is {}", b.id.value(), memory_block_state_name(b.state),
                    m_arch.pfn_to_section_nr(p).value(), f.has(SectionFlag::Online) ? "online" : "offline");
    }
    if (online != b.zone.has_value() && !(b.boot && online))
      report.fail("INV-BLOCK-2", "memory{} is {} with zone {}", b.id.value(), memory_block_state_name(b.state),
                  b.zone ? zone_name(*b.zone) : "none");
    // INV-BLOCK-2: the usable pages of an online single-zone block are in its zone and node.
    if (online && b.zone) {
      for (Pfn p = r.start; p < r.end(); p += ppss) {
        // INV-DEFER-1: a pending section's usable pages are its run's zone and node, unread.
        if (const std::optional<DeferredSectionRun> pending = m_vmemmap->deferred_run(p)) {
          if (!pending->reserved && (pending->zone != *b.zone || pending->nid != b.nid)) {
            report.fail("INV-BLOCK-2", "memory{} is online in node {} zone {} but pending section {} is node {} zone {}",
                        b.id.value(), b.nid, zone_name(*b.zone), m_arch.pfn_to_section_nr(p).value(), pending->nid,
                        zone_name(pending->zone));
            break;
          }
          p = m_arch.section_nr_to_pfn(m_arch.pfn_to_section_nr(p).next()) - ppss;
          continue;
        }
        // The checker reads descriptors through the checked path: under a legacy behaviour an
        // "online" pfn's memmap may be unmapped, which is a finding, not a crash.
        if (!m_sections->pfn_is_online(p)) continue;
        const Result<Page> read = m_vmemmap->read_page(p);
        if (!read) {
          report.fail("INV-BLOCK-2", "memory{}: online pfn {:#x} faults: {}", b.id.value(), p.value(),
                      read.error().message);
          continue;
        }
        const Page* page = &*read;
        if (page->test(PG::reserved)) continue;
        if (page->zone() != *b.zone || page->nid() != b.nid) {
          report.fail("INV-BLOCK-2", "memory{} is online in node {} zone {} but pfn {:#x} is node {} zone {}",
                      b.id.value(), b.nid, zone_name(*b.zone), p.value(), page->nid(), zone_name(page->zone()));
          break;
        }
      }
    }
    // INV-BLOCK-4: memmap_on_memory pages of an online block are reserved, self-hosted pages.
    if (b.nr_vmemmap_pages.value() && (b.boot || b.nr_vmemmap_pages >= r.nr))
      report.fail("INV-BLOCK-4", "memory{} has {} vmemmap pages", b.id.value(), b.nr_vmemmap_pages.value());
    if (online && b.nr_vmemmap_pages.value())
      for (Pfn p = r.start; p < r.start + b.nr_vmemmap_pages; ++p) {
        const Result<Page> read = m_vmemmap->read_page(p);
        const Page* page = read ? &*read : nullptr;
        if (!page || !page->test(PG::reserved) || !page->test(PG::vmemmap_self_hosted) || page->zone() != b.zone) {
          report.fail("INV-BLOCK-4", "memory{}: vmemmap pfn {:#x} is not a reserved self-hosted page of its zone",
                      b.id.value(), p.value());
          break;
        }
      }
    if (b.group) {
      ++group_blocks[b.group->value()];
      if (online && b.zone) {
        auto& gp = group_present[b.group->value()];
        (*b.zone == ZoneType::Movable ? gp.second : gp.first) += r.nr.value();
      }
    }
    if (!online) continue;
    const ZoneCounts* counts = nullptr;
    ZoneCounts fresh;
    if (b.boot && !m_dirty_boot_blocks.count(b.id.value())) {
      auto it = m_pristine_boot_counts.find(b.id.value());
      if (it == m_pristine_boot_counts.end()) it = m_pristine_boot_counts.emplace(b.id.value(), count_block_locked(b)).first;
      counts = &it->second;
    } else {
      fresh = count_block_locked(b);
      counts = &fresh;
    }
    for (const auto& [key, v] : *counts)
      for (unsigned i = 0; i < 3; ++i) total[key][i] += v[i];
  }

  // INV-BLOCK-3: every online section belongs to a memory block.
  for (const SectionNr nr : m_sections->present_sections()) {
    const MemSection* ms = m_sections->find(nr);
    if (ms->flags().has(SectionFlag::Online) && !m_blocks.find_by_pfn(m_arch.section_nr_to_pfn(nr)))
      report.fail("INV-BLOCK-3", "section {} is online outside every memory block", nr.value());
  }

  for (const Node& n : m_nodes)
    for (const Zone& z : n.zones) {
      if (z.type == ZoneType::Device) continue;
      const auto it = total.find({n.nid, z.type});
      const std::array<uint64_t, 3> want = it == total.end() ? std::array<uint64_t, 3>{} : it->second;
      const uint64_t have[3] = {z.present_pages.value(), z.present_early_pages.value(), z.managed_pages.value()};
      static constexpr const char* kWhat[3] = {"present", "present_early", "managed"};
      for (unsigned i = 0; i < 3; ++i)
        if (have[i] != want[i])
          report.fail(fmt::format("INV-ZONE-COUNT-{}", i + 1), "node {} zone {}: {} {} but the pages count {}", n.nid,
                      zone_name(z.type), kWhat[i], have[i], want[i]);
    }

  // INV-GROUP-1: a group's block count and present pages match its blocks.
  m_groups.for_each([&](const MemoryGroup& g) {
    const unsigned nb = group_blocks.count(g.id.value()) ? group_blocks[g.id.value()] : 0;
    const auto gp = group_present.count(g.id.value()) ? group_present[g.id.value()] : std::pair<uint64_t, uint64_t>{};
    if (nb != g.nr_blocks || gp.first != g.present_kernel_pages.value() || gp.second != g.present_movable_pages.value())
      report.fail("INV-GROUP-1", "group {}: {} blocks, kernel {}, movable {}; its blocks say {}, {}, {}", g.id.value(),
                  g.nr_blocks, g.present_kernel_pages.value(), g.present_movable_pages.value(), nb, gp.first, gp.second);
  });
  for (const auto& [gid, nb] : group_blocks)
    if (!m_groups.find(MemoryGroupId(gid))) report.fail("INV-GROUP-1", "{} blocks link to missing group {}", nb, gid);

  // INV-TAG-1: the two tag indexes agree. INV-TAG-2: a tagged page is an online, allocated page
  // that still carries its tag (no content tag is ever lost or duplicated by migration).
  if (m_tagged_by_pfn.size() != m_tagged_by_tag.size())
    report.fail("INV-TAG-1", "{} tagged pfns but {} tags", m_tagged_by_pfn.size(), m_tagged_by_tag.size());
  for (const auto& [tag, pfn] : m_tagged_by_tag) {
    auto it = m_tagged_by_pfn.find(pfn);
    if (it == m_tagged_by_pfn.end() || it->second.tag != tag) {
      report.fail("INV-TAG-1", "tag {:#x} points at pfn {:#x} which does not carry it", tag, pfn.value());
      continue;
    }
    const Result<Page> read =
        m_sections->pfn_is_online(pfn) ? m_vmemmap->read_page(pfn) : fail(Errno::NoEnt, "not online");
    if (!read) {
      report.fail("INV-TAG-2", "tag {:#x} lives at pfn {:#x}, which is not online", tag, pfn.value());
      continue;
    }
    const Page* p = &*read;
    const bool movable = it->second.kind == Migratability::Movable;
    if (p->refcount < 1 || p->is_buddy() || p->private_ != tag || p->test(PG::lru) != movable ||
        (!movable && p->zone() == ZoneType::Movable))
      report.fail("INV-TAG-2", "pfn {:#x} (tag {:#x}): refcount {} buddy {} private {:#x} lru {}", pfn.value(), tag,
                  p->refcount, p->is_buddy(), p->private_, p->test(PG::lru));
  }
}

}  // namespace sparsemem
