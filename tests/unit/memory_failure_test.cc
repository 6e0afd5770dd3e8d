// Tests for Machine::soft_offline_page / memory_failure / num_poisoned_pages (machine.h, memory
// failure): free pages poisoned, errors that change nothing, offline/online and remove (spec §4.5, §6.2).
#include <gtest/gtest.h>

#include "sparsemem/kpageflags.h"
#include "support/machines.h"

namespace sparsemem {
namespace {

std::unique_ptr<Machine> boot_plain() {
  MachineConfig cfg;
  cfg.memory = testing::pc_4160m_map();
  return testing::boot_or_die(std::move(cfg));
}

// What a failed call must leave alone: the counter, and the flags and counts of the pfns touched.
struct Snapshot {
  uint64_t poisoned;
  std::vector<uint64_t> flags, counts;
  bool operator==(const Snapshot&) const = default;
};
Snapshot snapshot(const Machine& m, std::initializer_list<uint64_t> pfns) {
  Snapshot s{m.num_poisoned_pages(), {}, {}};
  for (uint64_t pfn : pfns) {
    s.flags.push_back(kpageflags(m, Pfn(pfn)).value_or(~uint64_t{0}));
    s.counts.push_back(kpagecount(m, Pfn(pfn)).value_or(~uint64_t{0}));
  }
  return s;
}

bool logged(const Machine& m, std::string_view line) {
  for (const LogLine& l : m.log().lines())
    if (l.text == line) return true;
  return false;
}

// Scenario: soft-offline one free page and hard-offline the next (trace f_errors step 14).
// Expect: both read HWPOISON only, with no map count; two poisoned pages; the hard one logs the
// recovery line; the free pages around them stay free and the checker is clean.
TEST(MemoryFailure, FreePagesArePoisoned) {
  auto m = boot_plain();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->soft_offline_page(Pfn(0x108000)));
  ASSERT_TRUE(m->memory_failure(Pfn(0x108001)));
  EXPECT_EQ(m->num_poisoned_pages(), 2u);
  EXPECT_EQ(*kpageflags(*m, Pfn(0x108000)), kpf_bit(KPF::Hwpoison));
  EXPECT_EQ(*kpageflags(*m, Pfn(0x108001)), kpf_bit(KPF::Hwpoison));
  EXPECT_EQ(*kpagecount(*m, Pfn(0x108001)), 0u);
  EXPECT_EQ(*kpageflags(*m, Pfn(0x108002)), kpf_bit(KPF::Buddy));
  EXPECT_TRUE(logged(*m, "Memory failure: 0x108001: recovery action for free buddy page: Recovered"));
  testing::expect_clean(*m);
}

// Scenario: the error cases: hard-offline a poisoned page, soft-offline it again, pfns without
// memory, an offline block's page, a page in use.
// Expect: -EHWPOISON ("already hardware poisoned") and success ("page already poisoned") without
// counting twice; -ENXIO for a pfn without a section (both), -EIO (soft) and -ENXIO (hard) for an
// offline block; -EOPNOTSUPP for an allocated page (not modelled); nothing else changes.
TEST(MemoryFailure, ErrorsChangeNothing) {
  auto m = boot_plain();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->memory_failure(Pfn(0x110000)));
  ASSERT_TRUE(m->alloc_page_at(Pfn(0x110010), Migratability::Unmovable, 7));
  ASSERT_TRUE(m->memory_block_state_store(BlockId(35), OnlineType::Offline));
  const auto pfns = {uint64_t{0x110000}, uint64_t{0x110010}, uint64_t{0x118000}, uint64_t{0x150000}};
  const Snapshot before = snapshot(*m, pfns);
  EXPECT_EQ(m->memory_failure(Pfn(0x110000)).error().code, Errno::HwPoison);
  EXPECT_TRUE(logged(*m, "Memory failure: 0x110000: already hardware poisoned"));
  EXPECT_TRUE(m->soft_offline_page(Pfn(0x110000)));
  EXPECT_TRUE(logged(*m, "Memory failure: soft_offline_page: 0x110000 page already poisoned"));
  EXPECT_EQ(m->soft_offline_page(Pfn(0x150000)).error().code, Errno::NxIO);
  EXPECT_EQ(m->memory_failure(Pfn(0x150000)).error().code, Errno::NxIO);
  EXPECT_TRUE(logged(*m, "Memory failure: 0x150000: memory outside kernel control"));
  EXPECT_EQ(m->soft_offline_page(Pfn(0x118000)).error().code, Errno::Io);
  EXPECT_EQ(m->memory_failure(Pfn(0x118000)).error().code, Errno::NxIO);
  EXPECT_EQ(m->soft_offline_page(Pfn(0x110010)).error().code, Errno::NotSupp);
  EXPECT_EQ(m->memory_failure(Pfn(0x110010)).error().code, Errno::NotSupp);
  EXPECT_EQ(snapshot(*m, pfns), before);
  EXPECT_EQ(m->num_poisoned_pages(), 1u);
  testing::expect_clean(*m);
}

// Scenario: poison two free pages of memory33, offline it, online it movable (f_errors step 15).
// Expect: offlining succeeds (poisoned pages are neither unmovable nor migrated) and takes the whole
// block out of managed; onlining re-initialises the descriptors, so the pages read BUDDY again,
// while HardwareCorrupted keeps counting them (6.1 clears the flag without the count).
TEST(MemoryFailure, OfflineOnlineReinitialisesPoisonedPages) {
  auto m = boot_plain();
  ASSERT_TRUE(m);
  const NrPages total = m->totalram_pages();
  ASSERT_TRUE(m->soft_offline_page(Pfn(0x108000)));
  ASSERT_TRUE(m->memory_failure(Pfn(0x108001)));
  ASSERT_TRUE(m->memory_block_state_store(BlockId(33), OnlineType::Offline));
  EXPECT_EQ(m->totalram_pages(), total - NrPages(0x8000));
  ASSERT_TRUE(m->memory_block_state_store(BlockId(33), OnlineType::OnlineMovable));
  EXPECT_EQ(m->totalram_pages(), total);
  EXPECT_EQ(*kpageflags(*m, Pfn(0x108000)), kpf_bit(KPF::Buddy));
  EXPECT_EQ(*kpageflags(*m, Pfn(0x108001)), kpf_bit(KPF::Buddy));
  EXPECT_EQ(m->num_poisoned_pages(), 2u);
  testing::expect_clean(*m);
}

// Scenario: hot-add a 128 MiB block, online it, poison a page, offline and remove the block.
// Expect: __remove_pages releases the count of the page still flagged (clear_hwpoisoned_pages).
TEST(MemoryFailure, RemoveReleasesTheCount) {
  auto m = boot_plain();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(0x180000000), 0x8000000));
  ASSERT_TRUE(m->memory_block_state_store(BlockId(48), OnlineType::OnlineMovable));
  ASSERT_TRUE(m->memory_failure(Pfn(0x180010)));
  ASSERT_TRUE(m->memory_failure(Pfn(0x108000)));
  EXPECT_EQ(m->num_poisoned_pages(), 2u);
  ASSERT_TRUE(m->memory_block_state_store(BlockId(48), OnlineType::Offline));
  ASSERT_TRUE(m->remove_memory(PhysAddr(0x180000000), 0x8000000));
  EXPECT_EQ(m->num_poisoned_pages(), 1u);
  testing::expect_clean(*m);
}

}  // namespace
}  // namespace sparsemem
