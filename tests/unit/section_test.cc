// Tests for include/sparsemem/section.h: section activation and deactivation (spec §4.3-4.5), the
// early-section rule under every behaviour (seed 004), and lock-free readers during hotplug.
#include "sparsemem/section.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "sparsemem/machine.h"
#include "support/machines.h"

namespace sparsemem {
namespace {
using testing::boot_or_die;
using testing::expect_clean;

std::unique_ptr<Machine> pc(const char* behaviour = "linux-6.1", bool pse = true) {
  MachineConfig c;
  c.memory = testing::pc_4160m_map();
  c.behaviour = *find_behaviour(behaviour);
  c.cpu_has_pse = pse;
  return boot_or_die(c);
}

constexpr Pfn kSection48(0x180000);  // 6 GiB, where QEMU puts the first DIMM

// Scenario: add_pages of one whole section above boot RAM. Expect: Present|HasMemMap only, all 64
// subsection bits, a huge-PMD memmap, pfn_valid true but not online until set_online.
TEST(SectionHotplug, add_full_section_is_present_not_online) {
  auto m = pc();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_pages(0, {kSection48, NrPages(32768)}));
  const MemSection* ms = m->sections().find(SectionNr(48));
  ASSERT_NE(ms, nullptr);
  EXPECT_EQ(ms->flags(), SectionFlags().with(SectionFlag::Present).with(SectionFlag::HasMemMap));
  {
    RcuReadGuard g;
    EXPECT_EQ(ms->usage()->weight(), 64u);
  }
  EXPECT_TRUE(m->pfn_valid(kSection48));
  EXPECT_TRUE(m->pfn_valid(Pfn(0x187fff)));
  EXPECT_EQ(m->pfn_to_online_page(kSection48), nullptr);
  EXPECT_EQ(m->vmemmap().mapping_of(kSection48), VmemmapMapKind::Huge);
  EXPECT_EQ(m->vmemmap().origin_of(kSection48), VmemmapOrigin::Buddy);
  EXPECT_EQ(m->sections().highest_present(), SectionNr(48));
  expect_clean(*m);
}

// Scenario: adding the same range twice, and a misaligned range. Expect: EEXIST and EINVAL (with
// the kernel's WARN text, whose second value lacks "0x"), and nothing changes.
TEST(SectionHotplug, overlap_and_misalignment_change_nothing) {
  auto m = pc();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_pages(0, {kSection48, NrPages(1024)}));
  const MemSection* ms = m->sections().find(SectionNr(48));
  const auto stats_before = m->vmemmap().stats();
  auto r = m->add_pages(0, {Pfn(0x180200), NrPages(512)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errno::Exist);
  r = m->add_pages(0, {Pfn(0x181000), NrPages(100)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errno::Inval);
  EXPECT_EQ(r.error().message, "Misaligned __add_pages start: 0x181000 end: #181063");
  RcuReadGuard g;
  EXPECT_EQ(ms->usage()->weight(), 2u);
  EXPECT_EQ(m->vmemmap().stats().bytes_mapped(), stats_before.bytes_mapped());
  EXPECT_FALSE(m->pfn_valid(Pfn(0x181000)));
}

// Scenario: hot-add then hot-remove of a whole section. Expect: the section word is 0, pfn_valid
// false, the memmap unmapped; a second remove only WARNs "section already deactivated".
TEST(SectionHotplug, remove_full_section_unmaps_and_double_remove_warns) {
  auto m = pc();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_pages(0, {kSection48, NrPages(32768)}));
  m->remove_pages({kSection48, NrPages(32768)});
  EXPECT_EQ(m->sections().find(SectionNr(48))->flags(), SectionFlags());
  EXPECT_FALSE(m->pfn_valid(kSection48));
  EXPECT_FALSE(m->vmemmap().descriptor_mapped(kSection48));
  EXPECT_EQ(m->sections().highest_present(), SectionNr(48));  // never decreases
  const size_t warns = m->log().warn_count();
  m->remove_pages({kSection48, NrPages(32768)});
  EXPECT_EQ(m->log().warn_count(), warns + 1);
  expect_clean(*m);
}

// Scenario: spec §10 A — 16 MiB of device memory at pfn 0x144000 inside early section 40, added
// and removed under linux-6.1. Expect: the boot memmap is reused (no new mapping), bits 32-39 set
// then cleared, the memmap kept, pfn_valid still true, pfn_to_online_page null.
TEST(SectionEarly, linux61_partial_add_and_remove_keep_the_boot_memmap) {
  auto m = pc();
  ASSERT_TRUE(m);
  const auto before = m->vmemmap().stats();
  ASSERT_TRUE(m->add_pages(0, {Pfn(0x144000), NrPages(4096)}));
  EXPECT_EQ(m->vmemmap().stats().bytes_mapped(), before.bytes_mapped());
  const MemSection* ms = m->sections().find(SectionNr(40));
  {
    RcuReadGuard g;
    for (unsigned i = 0; i < 64; ++i) EXPECT_EQ(ms->usage()->test(SubsectionIdx(i)), i < 40) << i;
  }
  m->remove_pages({Pfn(0x144000), NrPages(4096)});
  EXPECT_TRUE(ms->flags().has(SectionFlag::Early));
  EXPECT_TRUE(m->vmemmap().descriptor_mapped(Pfn(0x144000)));
  EXPECT_TRUE(m->pfn_valid(Pfn(0x144000)));
  EXPECT_EQ(m->pfn_to_online_page(Pfn(0x144000)), nullptr);
  EXPECT_EQ(m->vmemmap().stats().bytes_mapped(), before.bytes_mapped());
  expect_clean(*m);
}

// Scenario: seed 004's bug with PSE — the pre-fix kernel depopulated the removed part of the
// early section's huge PMD. Expect: the PMD stays mapped, the removed descriptors read 0xFD
// (compound_head 0xfdfdfdfdfdfdfdfd: bit 0 set, a "tail" with a non-canonical head).
TEST(SectionEarly, seed004_legacy_with_pse_leaves_0xfd_descriptors) {
  auto m = pc("seed004-legacy", true);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_pages(0, {Pfn(0x144000), NrPages(4096)}));
  m->remove_pages({Pfn(0x144000), NrPages(4096)});
  ASSERT_TRUE(m->vmemmap().descriptor_mapped(Pfn(0x144000)));
  auto p = m->vmemmap().read_page(Pfn(0x144000));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->compound_head, 0xfdfdfdfdfdfdfdfdULL);
  EXPECT_TRUE(p->is_tail());
  EXPECT_TRUE(m->pfn_valid(Pfn(0x144000)));
  // Descriptors outside the removed range are untouched.
  EXPECT_NE(m->vmemmap().read_page(Pfn(0x143fff))->flags, 0xfdfdfdfdfdfdfdfdULL);
}

// Scenario: seed 004's bug without PSE — the base-page vmemmap of the removed range is freed
// while pfn_valid still answers for the whole early section. Expect: the descriptor read faults
// (EFAULT with the oops text) and the checker reports the broken invariant pfn_valid => mapped.
TEST(SectionEarly, seed004_legacy_without_pse_unmaps_a_valid_memmap) {
  auto m = pc("seed004-legacy", false);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_pages(0, {Pfn(0x144000), NrPages(4096)}));
  m->remove_pages({Pfn(0x144000), NrPages(4096)});
  EXPECT_TRUE(m->pfn_valid(Pfn(0x144002)));
  EXPECT_FALSE(m->vmemmap().descriptor_mapped(Pfn(0x144002)));
  auto p = m->vmemmap().read_page(Pfn(0x144002));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Errno::Fault);
  EXPECT_NE(p.error().message.find("ffffea0005100080"), std::string::npos) << p.error().message;
  const InvariantReport r = m->check();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.violations().front().id, "INV-SEC-3");
}

// Scenario: the never-built design (seed 004, Dan Williams): early sections depopulate and
// repopulate partially. Expect: after remove pfn_valid follows the subsection map; re-add works
// and the descriptors are mapped again; the checker is clean throughout.
TEST(SectionEarly, seed004_repopulate_design_is_consistent) {
  for (bool pse : {true, false}) {
    SCOPED_TRACE(pse ? "pse" : "no pse");
    auto m = pc("seed004-repopulate", pse);
    ASSERT_TRUE(m);
    ASSERT_TRUE(m->add_pages(0, {Pfn(0x144000), NrPages(4096)}));
    m->remove_pages({Pfn(0x144000), NrPages(4096)});
    EXPECT_FALSE(m->pfn_valid(Pfn(0x144000)));
    EXPECT_TRUE(m->pfn_valid(Pfn(0x143fff)));
    expect_clean(*m);
    ASSERT_TRUE(m->add_pages(0, {Pfn(0x144000), NrPages(4096)}));
    EXPECT_TRUE(m->pfn_valid(Pfn(0x144000)));
    EXPECT_TRUE(m->vmemmap().descriptor_mapped(Pfn(0x144000)));
    // Raw add_pages into an online section exposes uninitialised descriptors (memremap_pages
    // would initialise and taint them), so the checker runs once the range is gone again.
    m->remove_pages({Pfn(0x144000), NrPages(4096)});
    expect_clean(*m);
  }
}

// Scenario: a hot-added section's descriptors are written (so backed by host memory), then the
// section is removed. Expect: mincore() reports every page of its vmemmap non-resident.
TEST(SectionHotplug, removed_memmap_holds_no_memory) {
  auto m = pc();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_pages(0, {kSection48, NrPages(32768)}));
  for (uint64_t i = 0; i < 32768; ++i) m->pfn_to_page(kSection48 + NrPages(i))->flags = 0x5a;
  const long host_page = sysconf(_SC_PAGESIZE);
  auto* addr = static_cast<unsigned char*>(const_cast<void*>(m->vmemmap().host_address(kSection48)));
  const size_t len = 32768 * sizeof(Page);
  std::vector<unsigned char> vec(len / host_page);
  ASSERT_EQ(mincore(addr, len, vec.data()), 0);
  size_t resident = 0;
  for (unsigned char v : vec) resident += v & 1;
  EXPECT_EQ(resident, vec.size());
  m->remove_pages({kSection48, NrPages(32768)});
  ASSERT_EQ(mincore(addr, len, vec.data()), 0);
  resident = 0;
  for (unsigned char v : vec) resident += v & 1;
  EXPECT_EQ(resident, 0u);
}

// Scenario: reader threads call pfn_valid / pfn_to_online_page and read descriptors inside an RCU
// read section while a writer adds, onlines, offlines and removes sections. Expect: no reader
// ever faults (hot-remove waits for readers before unmapping); clean under TSan and ASan.
TEST(SectionConcurrency, readers_during_hotplug) {
  auto m = pc();
  ASSERT_TRUE(m);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> seen_valid{0};
  std::atomic<uint64_t> reads{0};
  auto reader = [&](uint64_t seed) {
    uint64_t x = seed, local = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      const uint64_t r = x >> 33;
      const Pfn pfn((r & 1 ? 0x100000 : 0x180000) + (r >> 1) % (4 * 32768));  // boot or hotplug sections
      reads.fetch_add(1, std::memory_order_relaxed);
      RcuReadGuard g;
      if (m->pfn_valid(pfn)) {
        const volatile uint64_t* flags = &m->pfn_to_page(pfn)->flags;
        (void)*flags;
        ++local;
      }
      if (Page* p = m->pfn_to_online_page(pfn)) {
        const volatile uint64_t* f = &p->flags;
        (void)*f;
      }
    }
    seen_valid += local;
  };
  std::thread r1(reader, 1), r2(reader, 2);
  // At least 40 rounds, and until the readers have really run alongside the writer.
  for (int round = 0; round < 40 || reads.load() < 20000; ++round) {
    for (uint64_t s = 0; s < 4; ++s) {
      const PfnRange sec{Pfn(0x180000 + s * 32768), NrPages(32768)};
      if ((round + s) % 2 == 0) {
        ASSERT_TRUE(m->add_pages(0, sec));
      }
    }
    for (uint64_t s = 0; s < 4; ++s) {
      const PfnRange sec{Pfn(0x180000 + s * 32768), NrPages(32768)};
      if ((round + s) % 2 == 0) m->remove_pages(sec);
    }
  }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_GT(seen_valid.load(), 0u);
  expect_clean(*m);
}

}  // namespace
}  // namespace sparsemem
