// Tests for include/sparsemem/p2pdma.h: pci_p2pdma_add_resource's BAR checks (spec §4.17), the P2PDMA
// pagemaps it maps (spec §4.12), release at unbind, and every refusal leaving the machine as it was.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "sparsemem/machine.h"
#include "sparsemem/p2pdma.h"
#include "sparsemem/pagemap.h"
#include "support/devmem.h"
#include "support/machines.h"

namespace sparsemem {
namespace {
using testing::boot_or_die;
using testing::devmem_snapshot;
using testing::expect_clean;
using testing::log_lines_with;
using testing::pc_4160m_map;

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t GiB = uint64_t{1} << 30;

MachineConfig pc_config(bool p2pdma = true) {
  MachineConfig c;
  c.memory = pc_4160m_map();
  c.kernel.pci_p2pdma = p2pdma;
  return c;
}

// An NVMe-like device: BAR 0 a 1 GiB 64-bit memory BAR at 32 GiB, BAR 1 an I/O port BAR, BAR 2 a
// typical small 32-bit memory BAR below 4 GiB, BAR 3 (wrongly) claiming boot RAM, BAR 4 unused.
PciDev test_dev() {
  PciDev d;
  d.name = "0000:01:00.0";
  d.bars[0] = PciBar{PhysAddr(0x800000000), GiB, true};
  d.bars[1] = PciBar{PhysAddr(0xc000), 0x100, false};
  d.bars[2] = PciBar{PhysAddr(0xfe000000), 16 * 1024, true};
  d.bars[3] = PciBar{PhysAddr(0x100000000), 256 * MiB, true};
  return d;
}

void expect_driver_clean(const PciP2pdma& p) {
  InvariantReport r;
  p.check_invariants(r);
  EXPECT_TRUE(r.ok()) << r.to_string();
}

// Scenario: Debian's 6.1 build (CONFIG_PCI_P2PDMA off); add_resource of a good BAR and of a bad one.
// Expect: the inline stub's -EOPNOTSUPP before any check; nothing changed, nothing logged.
TEST(P2pdma, without_config_the_stub_returns_eopnotsupp) {
  auto m = boot_or_die(pc_config(false));
  ASSERT_TRUE(m);
  PciP2pdma p2p(*m, test_dev());
  const std::string before = devmem_snapshot(*m);
  const size_t lines = m->log().size();
  for (unsigned bar : {0u, 1u, 9u}) {
    auto r = p2p.add_resource(bar, 0, 0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errno::NotSupp) << bar;
  }
  EXPECT_EQ(devmem_snapshot(*m), before);
  EXPECT_EQ(m->log().size(), lines);
  EXPECT_TRUE(p2p.pagemaps().empty());
}

// Scenario: CONFIG_PCI_P2PDMA on; each BAR check of spec §4.17 in turn.
// Expect: -EINVAL for an I/O BAR, an unimplemented BAR (4) and an index past the six standard
// BARs, offset == BAR length, offset beyond it, size + offset one byte past the end (also with
// a size that would wrap); each with nothing changed and nothing logged.
TEST(P2pdma, bar_checks_each_einval_and_unchanged) {
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  PciP2pdma p2p(*m, test_dev());
  const std::string before = devmem_snapshot(*m);
  const size_t lines = m->log().size();
  struct Case {
    unsigned bar;
    uint64_t size;
    uint64_t offset;
  };
  for (const Case& c : {Case{1, 0, 0}, Case{4, 0, 0}, Case{6, 0, 0}, Case{0, 0, GiB}, Case{0, 0, 2 * GiB},
                        Case{0, 512 * MiB + 1, 512 * MiB}, Case{0, GiB + 1, 0}, Case{0, ~uint64_t{0}, 2 * MiB}}) {
    auto r = p2p.add_resource(c.bar, c.size, c.offset);
    ASSERT_FALSE(r) << c.bar << " " << c.size << " " << c.offset;
    EXPECT_EQ(r.error().code, Errno::Inval) << r.error().message;
    EXPECT_EQ(devmem_snapshot(*m), before);
  }
  EXPECT_EQ(m->log().size(), lines);
  expect_clean(*m);
}

// Scenario: BAR 0 (1 GiB at 0x800000000): the rest of the BAR from offset 256 MiB (size 0), then
// the first 256 MiB; then 2 MiB at offset 0 again; then release.
// Expect: pagemaps 0x810000000-0x83fffffff and 0x800000000-0x80fffffff, type P2PDMA, on node 0,
// with the kernel's log line each; sections 0x100-0x107 present, not online; node 0's Device
// zone spans [0x800000, +0x40000); pages refcount 1 and one bulk reference per page (0x30000 for
// the first); pfn_to_online_page null. The overlapping third add is refused -ENOMEM ("Conflicting
// mapping in same section") with nothing changed. release unmaps both (sections gone).
TEST(P2pdma, add_two_resources_then_release) {
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  PciDev dev = test_dev();
  dev.driver = "nvme";
  PciP2pdma p2p(*m, dev);
  ASSERT_TRUE(p2p.add_resource(0, 0, 256 * MiB));
  ASSERT_TRUE(p2p.add_resource(0, 256 * MiB, 0));
  EXPECT_EQ(log_lines_with(*m, "nvme 0000:01:00.0: added peer-to-peer DMA memory 0x810000000-0x83fffffff"), 1u);
  EXPECT_EQ(log_lines_with(*m, "nvme 0000:01:00.0: added peer-to-peer DMA memory 0x800000000-0x80fffffff"), 1u);
  const auto maps = p2p.pagemaps();
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[0]->ranges[0], (PhysRange{PhysAddr(0x810000000), PhysAddr(0x83fffffff)}));
  EXPECT_EQ(maps[0]->type, MemoryType::PciP2pdma);
  EXPECT_EQ(maps[0]->bulk_refs(), 0x30000u);
  EXPECT_EQ(maps[0]->ref_count(), 0x30001u);
  EXPECT_EQ(maps[1]->bulk_refs(), 0x10000u);
  for (uint64_t nr = 0x100; nr <= 0x107; ++nr) {
    const MemSection* ms = m->sections().find(SectionNr(nr));
    ASSERT_NE(ms, nullptr) << nr;
    EXPECT_FALSE(ms->flags().has(SectionFlag::Online)) << nr;
  }
  const Zone& z = m->nodes()[0].zone(ZoneType::Device);
  EXPECT_EQ(z.zone_start_pfn.value(), 0x800000u);
  EXPECT_EQ(z.spanned_pages.value(), 0x40000u);
  auto page = m->vmemmap().read_page(Pfn(0x820000));
  ASSERT_TRUE(page);
  EXPECT_EQ(page->zone(), ZoneType::Device);
  EXPECT_EQ(page->refcount, 1);
  EXPECT_EQ(page_pgmap(*page), maps[0]);
  EXPECT_EQ(m->pfn_to_online_page(Pfn(0x820000)), nullptr);
  expect_clean(*m);
  expect_driver_clean(p2p);

  const std::string before = devmem_snapshot(*m);
  auto overlap = p2p.add_resource(0, 2 * MiB, 0);
  ASSERT_FALSE(overlap);
  EXPECT_EQ(overlap.error().code, Errno::NoMem);
  EXPECT_EQ(overlap.error().message, "Conflicting mapping in same section");
  EXPECT_EQ(devmem_snapshot(*m), before);
  EXPECT_EQ(p2p.pagemaps().size(), 2u);

  p2p.release();
  EXPECT_TRUE(p2p.pagemaps().empty());
  EXPECT_EQ(m->sections().find(SectionNr(0x100))->flags().bits(), 0u);
  EXPECT_TRUE(m->pgmap_registry().entries().empty());
  expect_clean(*m);
  p2p.release();  // idempotent
}

// Scenario: memremap_pages refusals through add_resource: the 16 KiB BAR 2 (not 2 MiB aligned)
// and BAR 3 over boot System RAM.
// Expect: -EINVAL "Misaligned __add_pages ..." and -ENXIO "attempted on ram region ..."; nothing
// changed; no p2pdma log line.
TEST(P2pdma, memremap_refusals_leave_the_machine_unchanged) {
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  PciP2pdma p2p(*m, test_dev());
  const std::string before = devmem_snapshot(*m);
  auto small = p2p.add_resource(2, 0, 0);
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error().code, Errno::Inval);
  EXPECT_EQ(small.error().message.rfind("Misaligned __add_pages", 0), 0u) << small.error().message;
  auto ram = p2p.add_resource(3, 0, 0);
  ASSERT_FALSE(ram);
  EXPECT_EQ(ram.error().code, Errno::NxIO);
  EXPECT_EQ(devmem_snapshot(*m), before);
  EXPECT_TRUE(p2p.pagemaps().empty());
  for (const LogLine& l : m->log().lines()) EXPECT_EQ(l.text.find("peer-to-peer"), std::string::npos) << l.text;
  expect_clean(*m);
}

// Scenario: a P2PDMA pagemap with a get_dev_pagemap reference held (a DMA user) while the device
// unbinds on another thread.
// Expect: release blocks until the reference is put, then the pagemap is gone.
TEST(P2pdma, release_waits_for_pagemap_references) {
  auto m = boot_or_die(pc_config());
  ASSERT_TRUE(m);
  PciP2pdma p2p(*m, test_dev());
  ASSERT_TRUE(p2p.add_resource(0, 64 * MiB, 0));
  DevPagemap* ref = m->get_dev_pagemap(Pfn(0x800000));
  ASSERT_NE(ref, nullptr);
  std::atomic<bool> done{false};
  std::thread unbind([&] {
    p2p.release();
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(done.load());
  put_dev_pagemap(ref);
  unbind.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(m->get_dev_pagemap(Pfn(0x800000)), nullptr);
  expect_clean(*m);
}

// Scenario: arm64 4K/39 (linear map of 256 GiB from memstart 0x80_0000_0000); one BAR at 1 TiB,
// beyond the linear map, and one at 0x90_0000_0000, inside it.
// Expect: the first is refused -EINVAL by mhp_range_allowed (P2PDMA needs a mapping) with nothing
// changed; the second is mapped with its descriptors inside the vmemmap window.
TEST(P2pdma, arm64_bar_must_lie_in_the_linear_map) {
  MachineConfig c;
  c.arch = &kArm64_4K_39;
  c.kernel.pci_p2pdma = true;
  c.memory.regions = {{PhysAddr(0x8000000000), GiB, 0, BootMemKind::Usable}};
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  PciDev dev;
  dev.name = "0000:00:02.0";
  dev.bars[0] = PciBar{PhysAddr(0x10000000000), 256 * MiB, true};
  dev.bars[2] = PciBar{PhysAddr(0x9000000000), 256 * MiB, true};
  PciP2pdma p2p(*m, dev);
  const std::string before = devmem_snapshot(*m);
  auto far = p2p.add_resource(0, 0, 0);
  ASSERT_FALSE(far);
  EXPECT_EQ(far.error().code, Errno::Inval);
  EXPECT_EQ(far.error().message.rfind("Hotplug memory [0x10000000000-0x10010000000] exceeds maximum addressable range", 0),
            0u)
      << far.error().message;
  EXPECT_EQ(devmem_snapshot(*m), before);
  ASSERT_TRUE(p2p.add_resource(2, 0, 0));
  EXPECT_TRUE(m->vmemmap().in_window(Pfn(0x9000000), NrPages(65536)));
  EXPECT_EQ(log_lines_with(*m, "pci 0000:00:02.0: added peer-to-peer DMA memory 0x9000000000-0x900fffffff"), 1u);
  expect_clean(*m);
  expect_driver_clean(p2p);
}

}  // namespace
}  // namespace sparsemem
