// Tests for BootReservations (include/sparsemem/memblock.h) as Machine::boot() applies them: the x86
// boot's memblock reservations and allocations against traces a_baseline, a2, a3 and f_errors.
#include <gtest/gtest.h>

#include "sparsemem/kpageflags.h"
#include "sparsemem/platform.h"
#include "sparsemem/scenario.h"
#include "support/machines.h"

namespace sparsemem {
namespace {

constexpr uint64_t RESERVED = uint64_t{1} << 32;
constexpr uint64_t PRIVATE = uint64_t{1} << 35;

std::unique_ptr<Machine> boot_pc(const std::string& mem) {
  return testing::boot_qemu_or_die(
      {"-machine", "pc,nvdimm=on", "-m", mem + ",slots=4,maxmem=32G", "-kernel", "vmlinuz"}, std::string(kOracleBaseAppend));
}

uint64_t flags(const Machine& m, uint64_t pfn) {
  auto f = kpageflags(m, Pfn(pfn));
  EXPECT_TRUE(f) << std::hex << pfn;
  return f ? *f : ~uint64_t{0};
}

// Scenario: memblock_alloc top-down on a two-range map with a reservation at the top.
// Expect: the highest aligned fit below the reservation, then the next one below it; a size no
// gap holds is -ENOMEM and changes nothing; a node filter skips other nodes' memory.
TEST(MemblockAlloc, TopDownBelowReservations) {
  Memblock mb(kX86_64);
  ASSERT_TRUE(mb.add_node(PhysAddr(0x100000), 0x3ff00000, 0, MEMBLOCK_NONE));
  ASSERT_TRUE(mb.add_node(PhysAddr(0x100000000), 0x40000000, 1, MEMBLOCK_NONE));
  ASSERT_TRUE(mb.reserve(PhysAddr(0x13ffff000), 0x1000));
  auto a = mb.alloc_top_down(0x200000, 0x200000, PhysAddr(0), PhysAddr(~uint64_t{0}), MAX_NUMNODES);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->value(), 0x13fc00000u);
  auto b = mb.alloc_top_down(0x3000, 0x1000, PhysAddr(0), PhysAddr(~uint64_t{0}), 0);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->value(), 0x3fffd000u);
  const uint64_t reserved = mb.reserved_size();
  EXPECT_EQ(mb.alloc_top_down(0x80000000, 0x1000, PhysAddr(0), PhysAddr(~uint64_t{0}), MAX_NUMNODES).error().code,
            Errno::NoMem);
  EXPECT_EQ(mb.reserved_size(), reserved);
  EXPECT_EQ(mb.alloc_top_down(0x1800, 0x1000, PhysAddr(0), PhysAddr(~uint64_t{0}), 0).error().code, Errno::Inval);
}

// Scenario: the default pc machine (-m 4160M) booted through the platform with the oracle's
// command line (log_buf_len=4M). Expect the kpageflags of trace a2: the first 1 MiB RESERVED, the
// kernel image and its used brk RESERVED except the text/rodata and rodata/data gaps, the init
// sections and the unused decrypted bss (freed late), the top pages of RAM RESERVED,
// NODE_DATA [0x142dd2000, 0x142dfd000) and the vmemmap boot buffer [0x13ea00000, 0x142c00000)
// RESERVED|PRIVATE with free pages around them; pfn 0x100000 in use by the kernel.
TEST(BootReservations, Pc4160mMatchesTraceA2) {
  auto m = boot_pc("4160M");
  ASSERT_TRUE(m);
  for (uint64_t pfn : {0x0, 0x1, 0x9e, 0x9f, 0xa0, 0xff}) EXPECT_EQ(flags(*m, pfn), RESERVED) << std::hex << pfn;
  for (uint64_t pfn : {0x1000, 0x1e01, 0x2000, 0x28ea, 0x2a00, 0x3043, 0x330f, 0x3310, 0x4202, 0x4400, 0x4410})
    EXPECT_TRUE(flags(*m, pfn) & RESERVED) << std::hex << pfn;
  for (uint64_t pfn : {0x100, 0x1e02, 0x1fff, 0x28eb, 0x29ff, 0x3044, 0x330e, 0x4203, 0x43ff, 0x4411})
    EXPECT_FALSE(flags(*m, pfn) & RESERVED) << std::hex << pfn;
  for (uint64_t pfn : {0x143fff, 0x143ffe, 0x143ffd, 0x142dfd}) EXPECT_EQ(flags(*m, pfn), RESERVED) << std::hex << pfn;
  for (uint64_t pfn : {0x142dfc, 0x142dd2, 0x142bff, 0x13fe00, 0x13ea00})
    EXPECT_EQ(flags(*m, pfn), RESERVED | PRIVATE) << std::hex << pfn;
  for (uint64_t pfn : {0x13e9ff, 0x142c00}) EXPECT_FALSE(flags(*m, pfn) & RESERVED) << std::hex << pfn;
  // get_page_bootmem(): section 10's memmap is the 11th 2 MiB block of the buffer (the dump of f_errors
  // step 9: refcount:2 index:0xc, private 0xa).
  const Page* p = m->pfn_to_online_page(Pfn(0x13fe00));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->refcount, 2);
  EXPECT_EQ(p->index, 0xcu);
  EXPECT_EQ(p->private_, 0xau);
  // preallocate_vmalloc_pages(): the first 64 pages of ZONE_NORMAL, each one reference, no flag.
  for (uint64_t pfn : {0x100000, 0x10003f}) {
    const Page* q = m->pfn_to_online_page(Pfn(pfn));
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->refcount, 1);
    EXPECT_EQ(flags(*m, pfn), 0u) << std::hex << pfn;
  }
  EXPECT_EQ(flags(*m, 0x100040), kpf_bit(KPF::Buddy));
  testing::expect_clean(*m);
}

// Scenario: offline memory32 and memory39 of the 4160M machine (trace f_errors step 9).
// Expect: both fail -EBUSY after dumping the page the kernel dumps — pfn 0x100000 (refcount 1) and
// pfn 0x13fe00, the first page of the block's last pageblock, which 6.1 isolates second
// (refcount 2, index 0xc) — and leave the blocks online with unchanged zones; memory33 offlines.
TEST(BootReservations, BootMemmapAndFirstAllocationsPinTheirBlocks) {
  auto m = boot_pc("4160M");
  ASSERT_TRUE(m);
  const NrPages total = m->totalram_pages();
  const size_t lines = m->log().size();
  EXPECT_EQ(m->memory_block_state_store(BlockId(32), OnlineType::Offline).error().code, Errno::Busy);
  EXPECT_EQ(m->memory_block_state_store(BlockId(39), OnlineType::Offline).error().code, Errno::Busy);
  std::vector<std::string> dumps;
  const std::vector<LogLine> log = m->log().lines();
  for (size_t i = lines; i < log.size(); ++i)
    if (log[i].text.rfind("page:", 0) == 0) dumps.push_back(log[i].text);
  ASSERT_EQ(dumps.size(), 2u);
  EXPECT_EQ(dumps[0], "page:(____ptrval____) refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x100000");
  EXPECT_EQ(dumps[1], "page:(____ptrval____) refcount:2 mapcount:0 mapping:0000000000000000 index:0xc pfn:0x13fe00");
  EXPECT_EQ(m->memory_blocks().find(BlockId(32))->state, MemoryBlockState::Online);
  EXPECT_EQ(m->memory_blocks().find(BlockId(39))->state, MemoryBlockState::Online);
  EXPECT_EQ(m->totalram_pages(), total);
  EXPECT_TRUE(m->memory_block_state_store(BlockId(33), OnlineType::Offline));
  testing::expect_clean(*m);
}

// Scenario: a pc machine with 8G (3G below 4G, 5G above; 64 present sections), trace a3.
// Expect: NODE_DATA [0x23edd2000, 0x23edfd000) and the 128 MiB boot buffer [0x236c00000,
// 0x23ec00000) RESERVED|PRIVATE, free pages just outside the buffer, the top page RESERVED.
TEST(BootReservations, Pc8gMatchesTraceA3) {
  auto m = boot_pc("8G");
  ASSERT_TRUE(m);
  for (uint64_t pfn : {0x23edfc, 0x23edd2, 0x23ebff, 0x236c00}) EXPECT_EQ(flags(*m, pfn), RESERVED | PRIVATE) << std::hex << pfn;
  for (uint64_t pfn : {0x23ffff, 0x23edfd}) EXPECT_EQ(flags(*m, pfn), RESERVED) << std::hex << pfn;
  for (uint64_t pfn : {0x236bff, 0x23ec00}) EXPECT_FALSE(flags(*m, pfn) & RESERVED) << std::hex << pfn;
  // The last section (section 71, memmap at the buffer's end) and the first (section 0).
  EXPECT_EQ(m->pfn_to_online_page(Pfn(0x23ea00))->private_, 71u);
  EXPECT_EQ(m->pfn_to_online_page(Pfn(0x236c00))->private_, 0u);
  testing::expect_clean(*m);
}

// Scenario: the same memory map booted from a MachineConfig (tests, `sparsemem boot`), which
// describes no kernel image. Expect: no reservation beyond the map's: pfn 1, the image and the top
// of RAM are free, and memory32 and memory39 offline.
TEST(BootReservations, MachineConfigBootsReserveNothing) {
  MachineConfig cfg;
  cfg.memory = testing::pc_4160m_map();
  auto m = testing::boot_or_die(std::move(cfg));
  ASSERT_TRUE(m);
  for (uint64_t pfn : {0x1, 0x1000, 0x13fe00, 0x143fff}) EXPECT_FALSE(flags(*m, pfn) & RESERVED) << std::hex << pfn;
  EXPECT_TRUE(m->memory_block_state_store(BlockId(32), OnlineType::Offline));
  EXPECT_TRUE(m->memory_block_state_store(BlockId(39), OnlineType::Offline));
  testing::expect_clean(*m);
}

}  // namespace
}  // namespace sparsemem
