// Tests for the hotplug operations of machine.h: spec §10 B (with memmap_on_memory too), failures leave
// state unchanged, migration, notifiers, error injection, mem-on-off selftest, remove paths, callbacks.
#include <gtest/gtest.h>

#include <cstring>

#include "sparsemem/kpageflags.h"
#include "sparsemem/machine.h"
#include "support/hotplug.h"
#include "support/machines.h"

namespace sparsemem {
namespace {
using testing::boot_or_die;
using testing::expect_clean;
using testing::hotplug_snapshot;

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t GiB = uint64_t{1} << 30;
constexpr uint64_t kBlockPages = 32768;  // 128 MiB blocks of 4 KiB pages

// x86-64 with 2 GiB of RAM from 0: DMA and DMA32 only, 128 MiB blocks, nothing at 4 GiB.
std::unique_ptr<Machine> boot_2g(MemoryHotplugConfig hp = {}) {
  MachineConfig c;
  c.memory.regions = {{PhysAddr(0x1000), 2 * GiB - 0x1000, 0, BootMemKind::Usable}};
  c.hotplug = hp;
  return boot_or_die(c);
}

std::vector<std::string> log_tail(const Machine& m, size_t from) {
  std::vector<std::string> out;
  const auto lines = m.log().lines();
  for (size_t i = from; i < lines.size(); ++i) out.push_back(lines[i].text);
  return out;
}

bool log_has(const Machine& m, size_t from, const std::string& text) {
  for (const std::string& l : log_tail(m, from))
    if (l == text) return true;
  return false;
}

// Scenario: spec §10 example B — add_memory of 1 GiB at 4 GiB on x86 with 128 MiB blocks, then
// online memory32 as online_movable. Expect: blocks 32..39 offline with valid_zones "Normal Movable";
// sections 32-39 Present|HasMemMap, not Online, not Early, each memmap one 2 MiB PMD; max_pfn
// raised to 0x140000; a separate "100000000-13fffffff : System RAM" iomem line; after onlining
// Movable spans 0x100000-0x107fff with present and managed 32768, and MemTotal grows by 128 MiB.
TEST(SpecExampleB, add_1g_at_4g_then_online_movable) {
  auto m = boot_2g();
  ASSERT_TRUE(m);
  EXPECT_EQ(max_dump_pfn(*m).value(), 0x80000u);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), GiB));
  for (uint64_t id = 32; id <= 39; ++id) {
    const MemoryBlock* b = m->memory_blocks().find(BlockId(id));
    ASSERT_NE(b, nullptr) << id;
    EXPECT_EQ(b->state, MemoryBlockState::Offline);
    EXPECT_EQ(b->nr_vmemmap_pages.value(), 0u);
    EXPECT_EQ(*m->valid_zones(BlockId(id)), "Normal Movable");
    const SectionFlags f = m->sections().find(SectionNr(id))->flags();
    EXPECT_TRUE(f.has(SectionFlag::Present) && f.has(SectionFlag::HasMemMap));
    EXPECT_FALSE(f.has(SectionFlag::Online) || f.has(SectionFlag::Early));
    const Pfn first(id * kBlockPages);
    EXPECT_EQ(m->vmemmap().mapping_of(first), VmemmapMapKind::Huge);
    EXPECT_EQ(m->vmemmap().origin_of(first), VmemmapOrigin::Buddy);
    EXPECT_TRUE(m->pfn_valid(first));
    EXPECT_EQ(m->pfn_to_online_page(first), nullptr);
  }
  EXPECT_EQ(m->memory_blocks().find(BlockId(40)), nullptr);
  EXPECT_EQ(m->max_pfn().value(), 0x140000u);
  EXPECT_NE(m->iomem().render().find("100000000-13fffffff : System RAM\n"), std::string::npos);
  EXPECT_EQ(*kpageflags(*m, Pfn(0x100000)), KPF_NOPAGE_VALUE);
  expect_clean(*m);

  const uint64_t total = m->totalram_pages().value();
  ASSERT_TRUE(m->memory_block_state_store(BlockId(32), OnlineType::OnlineMovable));
  const Zone& mov = m->nodes()[0].zone(ZoneType::Movable);
  EXPECT_EQ(mov.zone_start_pfn.value(), 0x100000u);
  EXPECT_EQ(mov.spanned_pages.value(), kBlockPages);
  EXPECT_EQ(mov.present_pages.value(), kBlockPages);
  EXPECT_EQ(mov.managed_pages.value(), kBlockPages);
  EXPECT_EQ(m->totalram_pages().value(), total + kBlockPages);
  EXPECT_EQ(*m->valid_zones(BlockId(32)), "Movable");
  // The next block touches nothing yet: Movable's span ends at 0x108000, exclusive.
  EXPECT_EQ(*m->valid_zones(BlockId(33)), "Normal Movable");
  EXPECT_TRUE(m->sections().find(SectionNr(32))->flags().has(SectionFlag::Online));
  EXPECT_EQ(*kpageflags(*m, Pfn(0x100000)), kpf_bit(KPF::Buddy));
  expect_clean(*m);
}

// Scenario: spec §10 example B with memory_hotplug.memmap_on_memory=1 — a 128 MiB add at 4 GiB with
// MHP_MEMMAP_ON_MEMORY, onlined movable, offlined, removed (trace b3 shows the same numbers at
// 0x180000000). Expect: nr_vmemmap_pages 512 from the block itself (altmap origin); online: present
// += 32768, managed += 32256, pfns 0x100000-0x1001ff read RESERVED|OWNER_PRIVATE (0x2100000000),
// 0x100200 BUDDY; offline logs "Offlined Pages 32256" and empties the zone; remove returns the
// memmap to the altmap and the sections disappear.
TEST(SpecExampleB, memmap_on_memory_128m_block) {
  MemoryHotplugConfig hp;
  hp.memmap_on_memory = true;
  auto m = boot_2g(hp);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->mhp_supports_memmap_on_memory(128 * MiB));
  EXPECT_FALSE(m->mhp_supports_memmap_on_memory(GiB));
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), 128 * MiB, MHP_MEMMAP_ON_MEMORY));
  const MemoryBlock* b = m->memory_blocks().find(BlockId(32));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->nr_vmemmap_pages.value(), 512u);
  EXPECT_EQ(m->vmemmap().origin_of(Pfn(0x100000)), VmemmapOrigin::Altmap);
  expect_clean(*m);

  ASSERT_TRUE(m->device_online(BlockId(32), OnlineType::OnlineMovable));
  const Zone& mov = m->nodes()[0].zone(ZoneType::Movable);
  EXPECT_EQ(mov.zone_start_pfn.value(), 0x100000u);
  EXPECT_EQ(mov.present_pages.value(), 32768u);
  EXPECT_EQ(mov.managed_pages.value(), 32256u);
  for (uint64_t pfn : {0x100000ULL, 0x100001ULL, 0x1001ffULL}) EXPECT_EQ(*kpageflags(*m, Pfn(pfn)), 0x2100000000ULL);
  EXPECT_EQ(*kpageflags(*m, Pfn(0x100200)), kpf_bit(KPF::Buddy));
  expect_clean(*m);

  const size_t log0 = m->log().size();
  ASSERT_TRUE(m->device_offline(BlockId(32)));
  EXPECT_TRUE(log_has(*m, log0, "Offlined Pages 32256"));
  EXPECT_EQ(mov.spanned_pages.value(), 0u);
  EXPECT_EQ(mov.present_pages.value(), 0u);
  EXPECT_EQ(mov.managed_pages.value(), 0u);
  EXPECT_EQ(*kpageflags(*m, Pfn(0x100000)), KPF_NOPAGE_VALUE);
  expect_clean(*m);

  ASSERT_TRUE(m->remove_memory(PhysAddr(4 * GiB), 128 * MiB));
  EXPECT_EQ(m->memory_blocks().find(BlockId(32)), nullptr);
  EXPECT_FALSE(m->pfn_valid(Pfn(0x100000)));
  EXPECT_EQ(m->vmemmap().mapping_of(Pfn(0x100000)), VmemmapMapKind::None);
  // max_pfn never shrinks: the removed range reads NOPAGE, not EOF.
  EXPECT_EQ(m->max_pfn().value(), 0x108000u);
  EXPECT_EQ(*kpageflags(*m, Pfn(0x100000)), KPF_NOPAGE_VALUE);
  EXPECT_EQ(m->iomem().render().find("100000000-107ffffff"), std::string::npos);
  expect_clean(*m);
}

// Scenario: every add, online, offline and remove that must fail, each on the same machine state
// (1 GiB added at 4 GiB, blocks 32..35 online Normal, one unmovable kernel page in block 33, one
// movable page in block 34). Expect: the kernel's errno (and log line where it prints one) and a
// machine identical before and after — blocks, groups, zones, sections, iomem, max_pfn, tags,
// kpageflags.
TEST(HotplugFailure, failing_operations_change_nothing) {
  MemoryHotplugConfig hp;
  hp.memmap_on_memory = true;
  auto m = boot_2g(hp);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), GiB));
  for (uint64_t id = 32; id <= 35; ++id) ASSERT_TRUE(m->device_online(BlockId(id), OnlineType::OnlineKernel));
  ASSERT_TRUE(m->alloc_page_at(Pfn(0x108000 + 7), Migratability::Unmovable, 0xa1));
  ASSERT_TRUE(m->alloc_page_at(Pfn(0x110000 + 9), Migratability::Movable, 0xa2));
  auto group = m->register_static_memory_group(0, NrPages(2 * kBlockPages));
  ASSERT_TRUE(group);
  ASSERT_TRUE(m->add_memory(static_cast<unsigned>(group->value()), PhysAddr(8 * GiB), 128 * MiB, MHP_NID_IS_MGID));
  ASSERT_TRUE(m->load_memory_notifier_error_inject());
  const std::vector<uint64_t> tags = {0xa1, 0xa2};
  const std::vector<Pfn> pfns = {Pfn(0x100000), Pfn(0x108007), Pfn(0x110009), Pfn(0x120000), Pfn(0x13ffff)};
  expect_clean(*m);

  struct Case {
    const char* what;
    std::function<Result<void>()> op;
    Errno err;
    const char* log;  // a line the kernel prints, or nullptr
  };
  const std::vector<Case> cases = {
      {"add unaligned start", [&] { return m->add_memory(0, PhysAddr(5 * GiB + 64 * MiB), 128 * MiB); }, Errno::Inval,
       "Block size [0x8000000] unaligned hotplug range: start 0x144000000, size 0x8000000"},
      {"add unaligned size", [&] { return m->add_memory(0, PhysAddr(6 * GiB), 192 * MiB); }, Errno::Inval,
       "Block size [0x8000000] unaligned hotplug range: start 0x180000000, size 0xc000000"},
      {"add over hot-added RAM", [&] { return m->add_memory(0, PhysAddr(4 * GiB + 512 * MiB), GiB); }, Errno::Exist,
       nullptr},
      {"add over boot RAM", [&] { return m->add_memory(0, PhysAddr(GiB), 128 * MiB); }, Errno::Exist, nullptr},
      {"add beyond PHYSMEM_END", [&] { return m->add_memory(0, PhysAddr((uint64_t{1} << 46) - 128 * MiB), GiB); },
       Errno::TooBig, "Hotplug memory [0x3ffff8000000-0x400038000000] exceeds maximum addressable range [0x0-0x3fffffffffff]"},
      {"add size 0", [&] { return m->add_memory(0, PhysAddr(12 * GiB), 0); }, Errno::TooBig, nullptr},
      {"add to unknown group", [&] { return m->add_memory(77, PhysAddr(12 * GiB), 128 * MiB, MHP_NID_IS_MGID); },
       Errno::Inval, nullptr},
      {"add impossible node", [&] { return m->add_memory(4096, PhysAddr(12 * GiB), 128 * MiB); }, Errno::Inval, nullptr},
      {"memmap_on_memory for 2 blocks",
       [&] { return m->add_memory(0, PhysAddr(12 * GiB), 256 * MiB, MHP_MEMMAP_ON_MEMORY); }, Errno::Inval, nullptr},
      {"driver-managed bad name",
       [&] { return m->add_memory_driver_managed(0, PhysAddr(12 * GiB), 128 * MiB, "System RAM"); }, Errno::Inval,
       nullptr},
      {"online an online block", [&] { return m->memory_block_state_store(BlockId(32), OnlineType::Online); },
       Errno::Inval, nullptr},
      {"online_movable an online block",
       [&] { return m->memory_block_state_store(BlockId(32), OnlineType::OnlineMovable); }, Errno::Inval, nullptr},
      {"offline an offline block", [&] { return m->memory_block_state_store(BlockId(36), OnlineType::Offline); },
       Errno::Inval, nullptr},
      {"state of a missing block", [&] { return m->memory_block_state_store(BlockId(99), OnlineType::Offline); },
       Errno::NoEnt, nullptr},
      {"offline a block with an unmovable page", [&] { return m->device_offline(BlockId(33)); }, Errno::Busy,
       "memory offlining [mem 0x108000000-0x10fffffff] failed due to failure to isolate range"},
      {"offline a boot block spanning DMA and DMA32", [&] { return m->device_offline(BlockId(0)); }, Errno::Inval,
       nullptr},
      {"online vetoed by MEM_GOING_ONLINE",
       [&] {
         (void)m->set_memory_notifier_error(MemoryAction::GoingOnline, -12);
         auto r = m->device_online(BlockId(36));
         (void)m->set_memory_notifier_error(MemoryAction::GoingOnline, 0);
         return r;
       },
       Errno::NoMem, "online_pages [mem 0x120000000-0x127ffffff] failed"},
      {"offline vetoed by MEM_GOING_OFFLINE",
       [&] {
         (void)m->set_memory_notifier_error(MemoryAction::GoingOffline, -16);
         auto r = m->device_offline(BlockId(34));
         (void)m->set_memory_notifier_error(MemoryAction::GoingOffline, 0);
         return r;
       },
       Errno::Busy, "memory offlining [mem 0x110000000-0x117ffffff] failed due to notifier failure"},
      {"remove with online blocks", [&] { return m->remove_memory(PhysAddr(4 * GiB), GiB); }, Errno::Busy,
       "removing memory fails, because memory [0x0000000100000000-0x0000000107ffffff] is onlined"},
      {"remove unaligned", [&] { return m->remove_memory(PhysAddr(4 * GiB + MiB), 128 * MiB); }, Errno::Inval, nullptr},
      {"remove never-added memory", [&] { return m->remove_memory(PhysAddr(16 * GiB), 128 * MiB); }, Errno::Inval,
       nullptr},
      {"offline_and_remove rolls back",
       [&] { return m->offline_and_remove_memory(PhysAddr(4 * GiB), GiB); }, Errno::Busy,
       "memory offlining [mem 0x108000000-0x10fffffff] failed due to failure to isolate range"},
      {"unregister a group in use", [&] { return m->unregister_memory_group(*group); }, Errno::Busy, nullptr},
      {"unregister an unknown group", [&] { return m->unregister_memory_group(MemoryGroupId(999)); }, Errno::Inval,
       nullptr},
      {"allocate unmovable in Movable", [&]() -> Result<void> {
         SPM_TRY(m->alloc_page(0, ZoneType::Movable, Migratability::Unmovable, 0xbad));
         return {};
       },
       Errno::Inval, nullptr},
      {"allocate a busy page", [&]() -> Result<void> {
         SPM_TRY(m->alloc_page_at(Pfn(0x108007), Migratability::Movable, 0xbad));
         return {};
       },
       Errno::Busy, nullptr},
      {"allocate an offline page", [&]() -> Result<void> {
         SPM_TRY(m->alloc_page_at(Pfn(0x120000), Migratability::Movable, 0xbad));
         return {};
       },
       Errno::Inval, nullptr},
      {"reuse a tag", [&]() -> Result<void> {
         SPM_TRY(m->alloc_page(0, ZoneType::Normal, Migratability::Movable, 0xa1));
         return {};
       },
       Errno::Exist, nullptr},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string before = hotplug_snapshot(*m, tags, pfns);
    const size_t log0 = m->log().size();
    const Result<void> r = c.op();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, c.err) << r.error().message;
    if (c.log) EXPECT_TRUE(log_has(*m, log0, c.log)) << ::testing::PrintToString(log_tail(*m, log0));
    EXPECT_EQ(hotplug_snapshot(*m, tags, pfns), before);
    expect_clean(*m);
  }
}

// Scenario: a movable tagged page in a Movable block, the block offlined twice over (48 then 49 of a
// 1 GiB add), then freed. Expect: each offline migrates the page to the first free page outside the
// isolated block (0x108000, then 0x110000), keeping its tag; "Offlined Pages 32768" each time; the
// page is then freed back to the buddy.
TEST(HotplugMigration, offlining_moves_tagged_pages) {
  auto m = boot_2g();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), GiB));
  for (uint64_t id = 32; id <= 39; ++id) ASSERT_TRUE(m->device_online(BlockId(id), OnlineType::OnlineMovable));
  ASSERT_TRUE(m->alloc_page_at(Pfn(0x100005), Migratability::Movable, 0x77));
  auto second = m->alloc_page(0, ZoneType::Movable, Migratability::Movable, 0x78);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->value(), 0x100000u);  // the first free page of the zone
  EXPECT_EQ(*kpageflags(*m, Pfn(0x100005)), kpf_bit(KPF::Lru));
  ASSERT_TRUE(m->device_offline(BlockId(32)));
  EXPECT_EQ(m->page_of_tag(0x77)->value(), 0x108000u + 1);
  EXPECT_EQ(m->page_of_tag(0x78)->value(), 0x108000u);
  EXPECT_EQ(m->vmemmap().read_page(*m->page_of_tag(0x77))->private_, 0x77u);
  expect_clean(*m);
  ASSERT_TRUE(m->device_offline(BlockId(33)));
  EXPECT_EQ(m->page_of_tag(0x77)->value(), 0x110001u);
  EXPECT_EQ(m->page_of_tag(0x78)->value(), 0x110000u);
  expect_clean(*m);
  ASSERT_TRUE(m->free_page(0x77));
  ASSERT_TRUE(m->free_page(0x78));
  EXPECT_EQ(m->nr_tagged_pages(), 0u);
  EXPECT_EQ(*kpageflags(*m, Pfn(0x110000)), kpf_bit(KPF::Buddy));
  EXPECT_FALSE(m->free_page(0x77));
  expect_clean(*m);
}

// Scenario: the only Movable block holds a movable page and no other zone can take it (the boot
// RAM is filled by tagged pages first). Expect: offlining fails with the error a signal gives
// ("signal backoff", -EINTR) instead of the kernel's endless retry, and nothing changed.
TEST(HotplugMigration, no_target_page_is_signal_backoff) {
  MachineConfig c;
  c.memory.regions = {{PhysAddr(0x1000000), 2 * MiB, 0, BootMemKind::Usable}};
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), 128 * MiB));
  ASSERT_TRUE(m->device_online(BlockId(32), OnlineType::OnlineMovable));
  ASSERT_TRUE(m->alloc_page(0, ZoneType::Movable, Migratability::Movable, 1));
  uint64_t tag = 100;
  while (m->alloc_page(0, ZoneType::DMA32, Migratability::Unmovable, tag)) ++tag;
  while (m->alloc_page(0, ZoneType::DMA, Migratability::Unmovable, tag)) ++tag;
  EXPECT_EQ(m->alloc_page(0, ZoneType::DMA32, Migratability::Unmovable, tag).error().code, Errno::NoMem);
  const std::string before = hotplug_snapshot(*m, {1}, {Pfn(0x100000)});
  const size_t log0 = m->log().size();
  auto r = m->device_offline(BlockId(32));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errno::Intr);
  EXPECT_TRUE(log_has(*m, log0, "memory offlining [mem 0x100000000-0x107ffffff] failed due to signal backoff"));
  EXPECT_EQ(hotplug_snapshot(*m, {1}, {Pfn(0x100000)}), before);
  expect_clean(*m);
}

// Scenario: a notifier records every event of a successful online and offline, and of an online
// vetoed with NOTIFY_BAD by a higher-priority notifier. Expect: GOING_ONLINE then ONLINE with the
// block's pfn range and status_change_nid -1 (node 0 has memory); GOING_OFFLINE then OFFLINE;
// the veto gives -EPERM, GOING_ONLINE then CANCEL_ONLINE, and the lower-priority notifier never
// sees the vetoed GOING_ONLINE.
TEST(HotplugNotifier, events_payload_and_veto) {
  auto m = boot_2g();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), 256 * MiB));
  std::vector<std::string> seen;
  m->register_memory_notifier(
      [&](MemoryAction a, const MemoryNotify& n) {
        seen.push_back(fmt::format("{} {:#x}+{:#x} {} {}", memory_action_name(a), n.start_pfn.value(),
                                   n.nr_pages.value(), n.status_change_nid, n.status_change_nid_normal));
        return NOTIFY_OK;
      },
      0);
  ASSERT_TRUE(m->device_online(BlockId(32), OnlineType::OnlineMovable));
  ASSERT_TRUE(m->device_offline(BlockId(32)));
  EXPECT_EQ(seen, (std::vector<std::string>{"MEM_GOING_ONLINE 0x100000+0x8000 -1 -1", "MEM_ONLINE 0x100000+0x8000 -1 -1",
                                            "MEM_GOING_OFFLINE 0x100000+0x8000 -1 -1",
                                            "MEM_OFFLINE 0x100000+0x8000 -1 -1"}));
  seen.clear();
  const NotifierId veto = m->register_memory_notifier(
      [&](MemoryAction a, const MemoryNotify&) {
        seen.push_back(std::string("veto saw ") + memory_action_name(a));
        return a == MemoryAction::GoingOnline ? NOTIFY_BAD : NOTIFY_OK;
      },
      10);
  auto r = m->device_online(BlockId(33));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errno::Perm);
  EXPECT_EQ(seen, (std::vector<std::string>{"veto saw MEM_GOING_ONLINE", "veto saw MEM_CANCEL_ONLINE",
                                            "MEM_CANCEL_ONLINE 0x108000+0x8000 -1 -1"}));
  EXPECT_TRUE(m->unregister_memory_notifier(veto));
  EXPECT_FALSE(m->unregister_memory_notifier(veto));
  ASSERT_TRUE(m->device_online(BlockId(33)));
  expect_clean(*m);
}

// Scenario: the same steps on two machines with memmap_on_memory: one has a driver's notifier
// that reads the memmap at MEM_GOING_ONLINE (so online_pages writes PG_reserved descriptors, then
// hands them to the buddy chunk by chunk), the other none (online_pages writes each descriptor
// once, in its final state). Steps: a 256 MiB add onlined movable, a MHP_MEMMAP_ON_MEMORY block
// onlined, an online vetoed by error injection (-ENOMEM), the same online retried, all offlined.
// Expect: the notifier sees every descriptor PG_reserved with refcount 1; after each step both
// memmaps are byte-identical over the added range and both snapshots are equal.
TEST(HotplugOnline, single_pass_memmap_init_matches_two_pass) {
  MemoryHotplugConfig hp;
  hp.memmap_on_memory = true;
  auto fused = boot_2g(hp);
  auto two_pass = boot_2g(hp);
  ASSERT_TRUE(fused && two_pass);
  uint64_t seen = 0, not_reserved = 0;
  const Machine* tp = two_pass.get();
  two_pass->register_memory_notifier([&](MemoryAction a, const MemoryNotify& n) {
    if (a != MemoryAction::GoingOnline) return NOTIFY_OK;
    for (Pfn pfn = n.start_pfn; pfn < n.start_pfn + n.nr_pages; pfn += NrPages(1)) {
      const Page* p = tp->vmemmap().pfn_to_page(pfn);
      ++seen;
      not_reserved += !p->test(PG::reserved) || p->refcount != 1;
    }
    return NOTIFY_OK;
  });
  const Pfn first(0x100000);
  const uint64_t pages = 3 * kBlockPages;  // blocks 32..34
  auto same_memmap = [&] {
    for (uint64_t off = 0; off < pages; off += kBlockPages)  // one section per block: contiguous
      if (std::memcmp(fused->vmemmap().pfn_to_page(first + NrPages(off)),
                      two_pass->vmemmap().pfn_to_page(first + NrPages(off)), kBlockPages * sizeof(Page)) != 0)
        return false;
    return hotplug_snapshot(*fused) == hotplug_snapshot(*two_pass);
  };
  for (Machine* m : {fused.get(), two_pass.get()}) {
    ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), 256 * MiB));
    ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB + 256 * MiB), 128 * MiB, MHP_MEMMAP_ON_MEMORY));
    ASSERT_TRUE(m->load_memory_notifier_error_inject());
    ASSERT_TRUE(m->device_online(BlockId(32), OnlineType::OnlineMovable));
    ASSERT_TRUE(m->device_online(BlockId(34), OnlineType::OnlineMovable));
  }
  EXPECT_TRUE(same_memmap());
  EXPECT_EQ(seen, kBlockPages + kBlockPages - 512);
  EXPECT_EQ(not_reserved, 0u);
  for (Machine* m : {fused.get(), two_pass.get()}) {
    ASSERT_TRUE(m->set_memory_notifier_error(MemoryAction::GoingOnline, -12));
    auto r = m->device_online(BlockId(33));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errno::NoMem);
    ASSERT_TRUE(m->set_memory_notifier_error(MemoryAction::GoingOnline, 0));
  }
  EXPECT_TRUE(same_memmap());
  EXPECT_TRUE(fused->vmemmap().pfn_to_page(first + NrPages(kBlockPages))->test(PG::reserved));
  for (Machine* m : {fused.get(), two_pass.get()}) ASSERT_TRUE(m->device_online(BlockId(33)));
  EXPECT_TRUE(same_memmap());
  EXPECT_EQ(not_reserved, 0u);
  for (Machine* m : {fused.get(), two_pass.get()})
    for (uint64_t id : {32, 33, 34}) ASSERT_TRUE(m->device_offline(BlockId(id)));
  EXPECT_TRUE(same_memmap());
  expect_clean(*fused);
  expect_clean(*two_pass);
}

// Scenario: memory_notifier_error_inject used as its debugfs files allow. Expect: -ENOENT before
// loading, -EEXIST on a second load, -EINVAL for a positive error or another action; an injected
// error is logged "Injecting error (-12) to MEM_GOING_ONLINE" and returned; 0 clears it.
TEST(HotplugNotifier, error_injection_module) {
  auto m = boot_2g();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), 128 * MiB));
  EXPECT_EQ(m->set_memory_notifier_error(MemoryAction::GoingOnline, -12).error().code, Errno::NoEnt);
  ASSERT_TRUE(m->load_memory_notifier_error_inject());
  EXPECT_EQ(m->load_memory_notifier_error_inject().error().code, Errno::Exist);
  EXPECT_EQ(m->set_memory_notifier_error(MemoryAction::GoingOnline, 12).error().code, Errno::Inval);
  EXPECT_EQ(m->set_memory_notifier_error(MemoryAction::Online, -12).error().code, Errno::Inval);
  ASSERT_TRUE(m->set_memory_notifier_error(MemoryAction::GoingOnline, -12));
  const size_t log0 = m->log().size();
  EXPECT_EQ(m->device_online(BlockId(32)).error().code, Errno::NoMem);
  EXPECT_TRUE(log_has(*m, log0, "Injecting error (-12) to MEM_GOING_ONLINE"));
  ASSERT_TRUE(m->set_memory_notifier_error(MemoryAction::GoingOnline, 0));
  EXPECT_TRUE(m->device_online(BlockId(32)));
  expect_clean(*m);
}

// Scenario: tools/testing/selftests/memory-hotplug/mem-on-off-test.sh on a machine with 2 GiB of
// boot RAM and 2 GiB hot-added: online every offline block, offline 10% of the online removable
// blocks and online them again, then with notifier error injection (-12) for MEM_GOING_ONLINE and
// MEM_GOING_OFFLINE try again. Expect: every step the selftest expects to succeed succeeds, every
// injected step fails with -ENOMEM and leaves that block's state as it was; tags survive.
TEST(HotplugSelftest, mem_on_off_state_machine) {
  auto m = boot_2g();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), 2 * GiB));
  for (uint64_t t = 0; t < 64; ++t) ASSERT_TRUE(m->alloc_page(0, ZoneType::DMA32, Migratability::Movable, t));
  auto ids = [&](MemoryBlockState s) {
    std::vector<BlockId> out;
    m->memory_blocks().for_each([&](const MemoryBlock& b) {
      if (b.state == s) out.push_back(b.id);
    });
    return out;
  };
  // online_all_offline_memory
  for (BlockId id : ids(MemoryBlockState::Offline)) ASSERT_TRUE(m->memory_block_state_store(id, OnlineType::Online));
  EXPECT_TRUE(ids(MemoryBlockState::Offline).empty());
  expect_clean(*m);
  // offline_memory_expect_success on ratio 10% of the online removable blocks (those with a single zone)
  std::vector<BlockId> online;
  m->memory_blocks().for_each([&](const MemoryBlock& b) {
    if (b.zone) online.push_back(b.id);
  });
  std::vector<BlockId> victims;
  for (size_t i = 0; i < online.size(); i += 10) victims.push_back(online[i]);
  for (BlockId id : victims) ASSERT_TRUE(m->memory_block_state_store(id, OnlineType::Offline)) << id.value();
  expect_clean(*m);
  for (BlockId id : victims) ASSERT_TRUE(m->memory_block_state_store(id, OnlineType::Online)) << id.value();
  expect_clean(*m);
  // Notifier error injection: MEM_GOING_ONLINE
  ASSERT_TRUE(m->load_memory_notifier_error_inject());
  for (BlockId id : victims) ASSERT_TRUE(m->memory_block_state_store(id, OnlineType::Offline));
  ASSERT_TRUE(m->set_memory_notifier_error(MemoryAction::GoingOnline, -12));
  for (BlockId id : victims) {
    auto r = m->memory_block_state_store(id, OnlineType::Online);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errno::NoMem);
    EXPECT_EQ(m->memory_blocks().find(id)->state, MemoryBlockState::Offline);
  }
  ASSERT_TRUE(m->set_memory_notifier_error(MemoryAction::GoingOnline, 0));
  for (BlockId id : victims) ASSERT_TRUE(m->memory_block_state_store(id, OnlineType::Online));
  // Notifier error injection: MEM_GOING_OFFLINE
  ASSERT_TRUE(m->set_memory_notifier_error(MemoryAction::GoingOffline, -12));
  for (BlockId id : victims) {
    auto r = m->memory_block_state_store(id, OnlineType::Offline);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errno::NoMem);
    EXPECT_EQ(m->memory_blocks().find(id)->state, MemoryBlockState::Online);
  }
  ASSERT_TRUE(m->set_memory_notifier_error(MemoryAction::GoingOffline, 0));
  for (uint64_t t = 0; t < 64; ++t) EXPECT_TRUE(m->page_of_tag(t)) << t;
  expect_clean(*m);
}

// Scenario: offline_and_remove_memory of a 512 MiB range whose blocks are online in Movable and
// Normal, first with an unmovable page in the third block, then without. Expect: the failed call
// returns -EBUSY and onlines the first two blocks again in their zones (state as before); the
// second call removes everything (blocks, sections, iomem line).
TEST(HotplugRemove, offline_and_remove_memory) {
  auto m = boot_2g();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), 512 * MiB));
  ASSERT_TRUE(m->device_online(BlockId(32), OnlineType::OnlineMovable));
  ASSERT_TRUE(m->device_online(BlockId(33), OnlineType::OnlineKernel));
  ASSERT_TRUE(m->device_online(BlockId(34), OnlineType::OnlineKernel));
  ASSERT_TRUE(m->alloc_page_at(Pfn(0x110000), Migratability::Unmovable, 5));
  EXPECT_EQ(m->offline_and_remove_memory(PhysAddr(4 * GiB), 100 * MiB).error().code, Errno::Inval);
  const std::string before = hotplug_snapshot(*m, {5});
  auto r = m->offline_and_remove_memory(PhysAddr(4 * GiB), 512 * MiB);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errno::Busy);
  EXPECT_EQ(m->memory_blocks().find(BlockId(32))->zone, ZoneType::Movable);
  EXPECT_EQ(m->memory_blocks().find(BlockId(33))->zone, ZoneType::Normal);
  EXPECT_EQ(hotplug_snapshot(*m, {5}), before);
  expect_clean(*m);
  ASSERT_TRUE(m->free_page(5));
  ASSERT_TRUE(m->offline_and_remove_memory(PhysAddr(4 * GiB), 512 * MiB));
  for (uint64_t id = 32; id <= 35; ++id) EXPECT_EQ(m->memory_blocks().find(BlockId(id)), nullptr);
  EXPECT_EQ(m->iomem().render().find("100000000-11fffffff"), std::string::npos);
  EXPECT_FALSE(m->pfn_valid(Pfn(0x100000)));
  EXPECT_TRUE(m->firmware_memmap_hotplug().empty());
  expect_clean(*m);
}

// Scenario: MHP_MERGE_RESOURCE on two adjacent adds, then removing the first. Expect: one merged
// "System RAM" line for both, trimmed back to the second range by the removal; a driver-managed add
// nests its "System RAM (kmem)" name and gets no firmware memmap entry.
TEST(HotplugRemove, merged_resources_are_trimmed) {
  auto m = boot_2g();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), 256 * MiB, MHP_MERGE_RESOURCE));
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB + 256 * MiB), 256 * MiB, MHP_MERGE_RESOURCE));
  EXPECT_NE(m->iomem().render().find("100000000-11fffffff : System RAM\n"), std::string::npos);
  EXPECT_EQ(m->firmware_memmap_hotplug().size(), 2u);
  ASSERT_TRUE(m->remove_memory(PhysAddr(4 * GiB), 256 * MiB));
  EXPECT_NE(m->iomem().render().find("110000000-11fffffff : System RAM\n"), std::string::npos);
  EXPECT_EQ(m->firmware_memmap_hotplug().size(), 1u);
  ASSERT_TRUE(m->add_memory_driver_managed(0, PhysAddr(8 * GiB), 128 * MiB, "System RAM (kmem)"));
  EXPECT_NE(m->iomem().render().find("200000000-207ffffff : System RAM (kmem)\n"), std::string::npos);
  EXPECT_EQ(m->firmware_memmap_hotplug().size(), 1u);
  expect_clean(*m);
}

// Scenario: add_memory to node 2 of a one-node machine, online, offline, remove. Expect: nodes 1
// and 2 get a pgdat, node 2 comes online with the add, its Normal zone spans the block once
// onlined; after the removal node 2 goes offline again (no CPUs, nothing spanned, no blocks).
TEST(HotplugRemove, memory_only_node_comes_and_goes) {
  auto m = boot_2g();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(2, PhysAddr(4 * GiB), 128 * MiB));
  ASSERT_EQ(m->nodes().size(), 3u);
  EXPECT_TRUE(m->nodes()[2].online);
  EXPECT_FALSE(m->nodes()[1].online);
  EXPECT_EQ(m->memory_blocks().find(BlockId(32))->nid, 2u);
  ASSERT_TRUE(m->device_online(BlockId(32)));
  EXPECT_EQ(m->nodes()[2].zone(ZoneType::Normal).present_pages.value(), kBlockPages);
  EXPECT_EQ(m->nodes()[2].node_start_pfn.value(), 0x100000u);
  expect_clean(*m);
  ASSERT_TRUE(m->device_offline(BlockId(32)));
  ASSERT_TRUE(m->remove_memory(PhysAddr(4 * GiB), 128 * MiB));
  EXPECT_FALSE(m->nodes()[2].online);
  EXPECT_TRUE(m->nodes()[0].online);
  expect_clean(*m);
}

// A driver callback that keeps the first chunk of every block out of the buddy (virtio-mem style).
void keep_first_chunk_offline(OnlinePageOps& ops, Pfn pfn, unsigned order) {
  if ((pfn.value() & (kBlockPages - 1)) == 0)
    ops.set_page_offline(pfn, order);
  else
    ops.generic_online_page(pfn, order);
}
void other_callback(OnlinePageOps& ops, Pfn pfn, unsigned order) { ops.generic_online_page(pfn, order); }

// Scenario: set_online_page_callback with a callback that fake-offlines the first 1024 pages of a
// block. Expect: a second set and a restore of another callback are -EINVAL; onlining makes those
// pages PageOffline (kpageflags OFFLINE) and unmanaged (managed = 32768 - 1024); offlining the
// block fails -EBUSY "unmovable page" while they hold their reference; after restore, onlining
// another block hands every page to the buddy.
TEST(HotplugCallback, online_page_callback) {
  auto m = boot_2g();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), 256 * MiB));
  ASSERT_TRUE(m->set_online_page_callback(&keep_first_chunk_offline));
  EXPECT_EQ(m->set_online_page_callback(&other_callback).error().code, Errno::Inval);
  EXPECT_EQ(m->restore_online_page_callback(&other_callback).error().code, Errno::Inval);
  ASSERT_TRUE(m->device_online(BlockId(32), OnlineType::OnlineMovable));
  const Zone& mov = m->nodes()[0].zone(ZoneType::Movable);
  EXPECT_EQ(mov.managed_pages.value(), kBlockPages - 1024);
  EXPECT_EQ(mov.present_pages.value(), kBlockPages);
  EXPECT_EQ(*kpageflags(*m, Pfn(0x100000)), kpf_bit(KPF::Offline));
  EXPECT_EQ(*kpagecount(*m, Pfn(0x100000)), 0u);
  EXPECT_EQ(*kpageflags(*m, Pfn(0x100400)), kpf_bit(KPF::Buddy));
  expect_clean(*m);
  const size_t log0 = m->log().size();
  EXPECT_EQ(m->device_offline(BlockId(32)).error().code, Errno::Busy);
  EXPECT_TRUE(log_has(*m, log0, "memory offlining [mem 0x100000000-0x107ffffff] failed due to unmovable page"));
  ASSERT_TRUE(m->restore_online_page_callback(&keep_first_chunk_offline));
  ASSERT_TRUE(m->device_online(BlockId(33), OnlineType::OnlineMovable));
  EXPECT_EQ(mov.managed_pages.value(), 2 * kBlockPages - 1024);
  expect_clean(*m);
}

// Scenario: arm64 4K/48-bit with RAM at 1 GiB: hot-add inside and outside what the linear map
// covers, and an attempt to offline boot memory. Expect: the add lands in memblock too
// (ARCH_KEEP_MEMBLOCK) and leaves it on removal; offlining boot block 8 is -EPERM with "Boot memory
// [40000000 48000000] offlining attempted" and changes nothing; beyond the linear map (PA 2^47 +
// memstart) add_memory is -E2BIG.
TEST(HotplugArm64, memblock_kept_and_mappable_range) {
  MachineConfig c;
  c.arch = &kArm64_4K_48;
  c.memory.regions = {{PhysAddr(GiB), GiB, 0, BootMemKind::Usable}};
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_memory(0, PhysAddr(4 * GiB), 256 * MiB));
  EXPECT_TRUE(m->memblock().is_memory(PhysAddr(4 * GiB)));
  ASSERT_TRUE(m->device_online(BlockId(32)));
  expect_clean(*m);
  ASSERT_TRUE(m->device_offline(BlockId(32)));
  ASSERT_TRUE(m->remove_memory(PhysAddr(4 * GiB), 128 * MiB));
  EXPECT_FALSE(m->memblock().is_memory(PhysAddr(4 * GiB)));
  EXPECT_TRUE(m->memblock().is_memory(PhysAddr(4 * GiB + 128 * MiB)));
  // Boot memory never goes offline on arm64: its notifier vetoes MEM_GOING_OFFLINE with NOTIFY_BAD.
  const size_t log0 = m->log().size();
  const std::string before = hotplug_snapshot(*m);
  auto boot = m->device_offline(BlockId(8));
  ASSERT_FALSE(boot);
  EXPECT_EQ(boot.error().code, Errno::Perm);
  EXPECT_TRUE(log_has(*m, log0, "Boot memory [40000000 48000000] offlining attempted"));
  EXPECT_TRUE(log_has(*m, log0, "memory offlining [mem 0x40000000-0x47ffffff] failed due to notifier failure"));
  EXPECT_EQ(hotplug_snapshot(*m), before);
  const uint64_t beyond = (uint64_t{1} << 47) + GiB;
  auto r = m->add_memory(0, PhysAddr(beyond), 128 * MiB);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errno::TooBig);
  expect_clean(*m);
}

}  // namespace
}  // namespace sparsemem
