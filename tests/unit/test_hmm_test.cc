// Tests for include/sparsemem/test_hmm.h: lib/test_hmm's module load, chunk placement (spec §4.16, §10 C/D),
// page allocation and freeing through the free list, teardown, and every failing load leaving the machine as it was.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "sparsemem/machine.h"
#include "sparsemem/pagemap.h"
#include "sparsemem/test_hmm.h"
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
constexpr uint64_t kChunkPages = 65536;  // 256 MiB of 4 KiB pages

// QEMU pc -m 4160M with 46 CPU physical bits (spec §10 C) and the kernel switches given.
MachineConfig hmm_pc_config(bool device_private = true, bool test_hmm = true) {
  MachineConfig c;
  c.memory = pc_4160m_map();
  c.cpu_phys_bits = 46;
  c.kernel.device_private = device_private;
  c.kernel.test_hmm = test_hmm;
  return c;
}

void expect_driver_clean(const TestHmm& hmm) {
  InvariantReport r;
  hmm.check_invariants(r);
  EXPECT_TRUE(r.ok()) << r.to_string();
}

Page read(const Machine& m, Pfn pfn) {
  auto p = m.vmemmap().read_page(pfn);
  EXPECT_TRUE(p) << std::hex << pfn.value();
  return p ? *p : Page{};
}

// Everything but the zones and nodes: what a failed load must give back even after an earlier
// device's chunk was mapped (a ZONE_DEVICE span never shrinks in 6.1, spec §4.15).
std::string state_without_zones(const Machine& m) {
  std::string s;
  const std::string full = devmem_snapshot(m);
  size_t pos = 0;
  while (pos < full.size()) {
    const size_t nl = full.find('\n', pos);
    const std::string line = full.substr(pos, nl - pos);
    if (line.rfind("node ", 0) != 0 && line.rfind("  ", 0) != 0) s += line + "\n";
    pos = nl + 1;
  }
  return s;
}

// Scenario: Debian's 6.1 build (CONFIG_TEST_HMM and CONFIG_DEVICE_PRIVATE off); modprobe test_hmm.
// Expect: -ENOENT "Module test_hmm not found", no dmesg line, nothing changed.
TEST(TestHmmLoad, debian_kernel_has_no_module) {
  MachineConfig c;
  c.memory = pc_4160m_map();
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  const std::string before = devmem_snapshot(*m);
  const size_t lines = m->log().size();
  auto hmm = TestHmm::load(*m);
  ASSERT_FALSE(hmm);
  EXPECT_EQ(hmm.error().code, Errno::NoEnt);
  EXPECT_EQ(hmm.error().message, "Module test_hmm not found");
  EXPECT_EQ(m->log().size(), lines);
  EXPECT_EQ(devmem_snapshot(*m), before);
  expect_clean(*m);
}

// Scenario: TEST_HMM without DEVICE_PRIVATE (a Kconfig the kernel forbids; the model lets it load).
// Expect: device 0's memremap_pages fails -EINVAL "Device private memory not supported"; its
// hmm_dmirror region is released again; nothing changed but the WARN line.
TEST(TestHmmLoad, without_device_private_memremap_refuses_and_the_region_goes) {
  auto m = boot_or_die(hmm_pc_config(/*device_private=*/false, /*test_hmm=*/true));
  ASSERT_TRUE(m);
  const std::string before = devmem_snapshot(*m);
  auto hmm = TestHmm::load(*m);
  ASSERT_FALSE(hmm);
  EXPECT_EQ(hmm.error().code, Errno::Inval);
  EXPECT_EQ(hmm.error().message, "Device private memory not supported");
  EXPECT_EQ(devmem_snapshot(*m), before);
  EXPECT_EQ(m->iomem().render().find("hmm_dmirror"), std::string::npos);
  EXPECT_EQ(log_lines_with(*m, "HMM test module loaded. This is only for testing HMM."), 0u);
  expect_clean(*m);
}

// Scenario: spec §10 C — x86 4-level, 46 physical bits, DEVICE_PRIVATE + TEST_HMM; modprobe.
// Expect: two PRIVATE devices, one chunk each: hmm_dmirror0 at 0x3ffff0000000-0x3fffffffffff (the
// highest free 256 MiB slot below 2^46), hmm_dmirror1 in the slot below; top-level busy
// "hmm_dmirror" iomem entries; sections 0x7fffc-0x7ffff present with memmap, neither online nor
// tainted; node 0's Device zone spans both chunks with no present pages; max_pfn unchanged;
// every page free (refcount 0) on its device's list; the kernel's log lines.
TEST(TestHmmLoad, x86_46bit_two_private_devices_at_the_top_of_the_physical_space) {
  auto m = boot_or_die(hmm_pc_config());
  ASSERT_TRUE(m);
  auto hmm = TestHmm::load(*m);
  ASSERT_TRUE(hmm) << hmm.error().message;
  TestHmm& d = **hmm;
  ASSERT_EQ(d.nr_devices(), 2u);
  EXPECT_EQ(d.device(0).name(), "hmm_dmirror0");
  EXPECT_EQ(d.device(1).name(), "hmm_dmirror1");
  EXPECT_EQ(d.device(0).zone_device_type(), MemoryType::DevicePrivate);
  ASSERT_EQ(d.device(0).chunk_ranges().size(), 1u);
  EXPECT_EQ(d.device(0).chunk_ranges()[0], (PhysRange{PhysAddr(0x3ffff0000000), PhysAddr(0x3fffffffffff)}));
  EXPECT_EQ(d.device(1).chunk_ranges()[0], (PhysRange{PhysAddr(0x3fffe0000000), PhysAddr(0x3fffefffffff)}));
  const std::string iomem = m->iomem().render();
  EXPECT_NE(iomem.find("3fffe0000000-3fffefffffff : hmm_dmirror\n3ffff0000000-3fffffffffff : hmm_dmirror\n"),
            std::string::npos)
      << iomem;
  EXPECT_EQ(log_lines_with(*m, "added new 256 MB chunk (total 1 chunks, 256 MB) PFNs [0x3ffff0000 0x400000000)"), 1u);
  EXPECT_EQ(log_lines_with(*m, "added new 256 MB chunk (total 1 chunks, 256 MB) PFNs [0x3fffe0000 0x3ffff0000)"), 1u);
  EXPECT_EQ(log_lines_with(*m, "HMM test module loaded. This is only for testing HMM."), 1u);
  for (uint64_t nr = 0x7fffc; nr <= 0x7ffff; ++nr) {
    const MemSection* ms = m->sections().find(SectionNr(nr));
    ASSERT_NE(ms, nullptr) << nr;
    EXPECT_TRUE(ms->flags().has(SectionFlag::Present) && ms->flags().has(SectionFlag::HasMemMap)) << nr;
    EXPECT_FALSE(ms->flags().has(SectionFlag::Online) || ms->flags().has(SectionFlag::TaintZoneDevice)) << nr;
  }
  const Zone& dev = m->nodes()[0].zone(ZoneType::Device);
  EXPECT_EQ(dev.zone_start_pfn.value(), 0x3fffe0000u);
  EXPECT_EQ(dev.spanned_pages.value(), 0x20000u);
  EXPECT_EQ(dev.present_pages.value(), 0u);
  EXPECT_EQ(m->max_pfn().value(), 0x144000u);
  EXPECT_EQ(d.device(0).nr_free_pages(), kChunkPages);
  EXPECT_EQ(d.device(1).nr_free_pages(), kChunkPages);
  const Page p = read(*m, Pfn(0x3ffff1234));
  EXPECT_EQ(p.zone(), ZoneType::Device);
  EXPECT_EQ(p.refcount, 0);
  EXPECT_EQ(m->pfn_to_online_page(Pfn(0x3ffff1234)), nullptr);
  expect_clean(*m);
  expect_driver_clean(d);
}

// Scenario: x86 as above; allocate a page from hmm_dmirror0, free it, allocate again.
// Expect: the list's head is the chunk's last pfn (pages are pushed in ascending order), its
// descriptor's zone_device_data links the next free page, 0x3fffffffe; the allocated page has
// refcount 1 and its pgmap one extra reference; put_device_page calls page_free, which returns
// it to the head (cfree 1, pgmap reference dropped), and the next allocation gets it again.
TEST(TestHmmPages, allocate_free_and_reallocate_through_the_free_list) {
  auto m = boot_or_die(hmm_pc_config());
  ASSERT_TRUE(m);
  auto hmm = TestHmm::load(*m);
  ASSERT_TRUE(hmm) << hmm.error().message;
  TestHmm& d = **hmm;
  const Page head = read(*m, Pfn(0x3ffffffff));
  EXPECT_EQ(head.lru_prev, m->vmemmap().page_addr(Pfn(0x3fffffffe)).value());  // zone_device_data
  EXPECT_EQ(read(*m, Pfn(0x3ffff0000)).lru_prev, 0u);                          // the list's tail
  DevPagemap* pgmap = m->get_dev_pagemap(Pfn(0x3ffff0000));
  ASSERT_NE(pgmap, nullptr);
  put_dev_pagemap(pgmap);
  EXPECT_EQ(pgmap->ref_count(), 1u);
  EXPECT_EQ(pgmap->owner, &d.device(0));

  auto pfn = d.alloc_page(0);
  ASSERT_TRUE(pfn) << pfn.error().message;
  EXPECT_EQ(pfn->value(), 0x3ffffffffu);
  EXPECT_EQ(read(*m, *pfn).refcount, 1);
  EXPECT_EQ(read(*m, *pfn).lru_prev, 0u);
  EXPECT_EQ(pgmap->ref_count(), 2u);
  EXPECT_EQ(d.device(0).calloc(), 1u);
  EXPECT_EQ(d.device(0).nr_free_pages(), kChunkPages - 1);
  expect_clean(*m);
  expect_driver_clean(d);

  auto second = d.alloc_page(0);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->value(), 0x3fffffffeu);
  ASSERT_TRUE(m->put_device_page(*pfn));
  EXPECT_EQ(read(*m, *pfn).refcount, 0);
  EXPECT_EQ(pgmap->ref_count(), 2u);  // the second page's reference
  EXPECT_EQ(d.device(0).cfree(), 1u);
  EXPECT_EQ(d.device(0).nr_free_pages(), kChunkPages - 1);
  auto again = d.alloc_page(0);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *pfn);
  ASSERT_TRUE(m->put_device_page(*again));
  ASSERT_TRUE(m->put_device_page(*second));
  EXPECT_EQ(pgmap->ref_count(), 1u);
  EXPECT_EQ(d.device(0).nr_free_pages(), kChunkPages);

  // A double free is the caller's error: -EINVAL, nothing pushed twice.
  auto twice = m->put_device_page(*pfn);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Errno::Inval);
  EXPECT_EQ(d.device(0).nr_free_pages(), kChunkPages);
  expect_clean(*m);
  expect_driver_clean(d);
  auto none = d.alloc_page(7);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errno::NoDev);
}

// Scenario: x86 as above; hmm_dmirror0 hands out all 65536 pages of its chunk, then one more.
// Expect: the empty list makes alloc_page add a second chunk in the next free slot down,
// 0x3fffd0000000 (hmm_dmirror1 holds 0x3fffe0000000), logged "(total 2 chunks, 512 MB)", and the
// page handed out is that chunk's last pfn; every page freed returns to the list.
TEST(TestHmmPages, empty_free_list_adds_a_chunk) {
  auto m = boot_or_die(hmm_pc_config());
  ASSERT_TRUE(m);
  auto hmm = TestHmm::load(*m);
  ASSERT_TRUE(hmm) << hmm.error().message;
  TestHmm& d = **hmm;
  std::vector<Pfn> pages;
  for (uint64_t i = 0; i < kChunkPages; ++i) {
    auto p = d.alloc_page(0);
    ASSERT_TRUE(p) << i << ": " << p.error().message;
    pages.push_back(*p);
  }
  EXPECT_EQ(d.device(0).nr_free_pages(), 0u);
  EXPECT_EQ(pages.back().value(), 0x3ffff0000u);
  expect_driver_clean(d);
  auto extra = d.alloc_page(0);
  ASSERT_TRUE(extra) << extra.error().message;
  EXPECT_EQ(extra->value(), 0x3fffdffffu);
  ASSERT_EQ(d.device(0).nr_chunks(), 2u);
  EXPECT_EQ(d.device(0).chunk_ranges()[1], (PhysRange{PhysAddr(0x3fffd0000000), PhysAddr(0x3fffdfffffff)}));
  EXPECT_EQ(log_lines_with(*m, "added new 256 MB chunk (total 2 chunks, 512 MB) PFNs [0x3fffd0000 0x3fffe0000)"), 1u);
  EXPECT_EQ(d.device(0).calloc(), kChunkPages + 1);
  EXPECT_EQ(d.device(0).nr_free_pages(), kChunkPages - 1);
  expect_clean(*m);
  expect_driver_clean(d);
  pages.push_back(*extra);
  for (const Pfn p : pages) ASSERT_TRUE(m->put_device_page(p));
  EXPECT_EQ(d.device(0).nr_free_pages(), 2 * kChunkPages);
  EXPECT_EQ(d.device(0).cfree(), kChunkPages + 1);
  expect_driver_clean(d);
}

// Scenario: x86 as above; a page of hmm_dmirror0 is held while rmmod runs on another thread.
// Expect: unload blocks in memunmap_pages until the page is put; page_free during teardown does
// not put the page back (cfree unchanged); afterwards the sections and iomem regions are gone,
// the Device zone keeps its span (6.1 never shrinks it), the checker is clean, and a second
// unload or the destructor does nothing.
TEST(TestHmmUnload, waits_for_pages_still_handed_out) {
  auto m = boot_or_die(hmm_pc_config());
  ASSERT_TRUE(m);
  const std::string iomem_before = m->iomem().render();
  auto hmm = TestHmm::load(*m);
  ASSERT_TRUE(hmm) << hmm.error().message;
  TestHmm& d = **hmm;
  auto page = d.alloc_page(0);
  ASSERT_TRUE(page);
  std::atomic<bool> done{false};
  std::thread rmmod([&] {
    d.unload();
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(done.load());
  ASSERT_TRUE(m->put_device_page(*page));
  rmmod.join();
  EXPECT_TRUE(done.load());
  EXPECT_FALSE(d.loaded());
  EXPECT_EQ(d.device(0).cfree(), 0u);
  EXPECT_EQ(d.device(0).nr_chunks(), 0u);
  EXPECT_EQ(d.device(0).nr_free_pages(), 0u);
  EXPECT_EQ(m->iomem().render(), iomem_before);
  EXPECT_EQ(m->sections().find(SectionNr(0x7ffff))->flags().bits(), 0u);
  EXPECT_FALSE(m->pfn_valid(Pfn(0x3ffff0000)));
  EXPECT_TRUE(m->pgmap_registry().entries().empty());
  EXPECT_EQ(m->nodes()[0].zone(ZoneType::Device).spanned_pages.value(), 0x20000u);
  auto after = d.alloc_page(0);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, Errno::NoDev);
  d.unload();
  expect_clean(*m);
  expect_driver_clean(d);
}

// Scenario: x86 with 32 CPU physical bits and 3 GiB of RAM, so only four 256 MiB slots are free
// (0xc0000000-0xffffffff); another driver takes three of them; then modprobe.
// Expect: hmm_dmirror0 gets the last slot, 0xc0000000; hmm_dmirror1 finds none and the load fails
// -ENOMEM (test_hmm's errno for any request_free_mem_region failure); device 0 is removed again:
// iomem, sections, registry, vmemmap and max_pfn as before (only the Device zone span stays).
TEST(TestHmmLoad, second_device_without_a_slot_unwinds_the_first) {
  MachineConfig c;
  c.memory.regions = {{PhysAddr(0x100000), 0xbffdf000 - 0x100000, 0, BootMemKind::Usable}};
  c.cpu_phys_bits = 32;
  c.kernel.device_private = true;
  c.kernel.test_hmm = true;
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  for (uint64_t top : {0xf0000000u, 0xe0000000u, 0xd0000000u}) {
    auto r = m->request_free_mem_region(256 * MiB, "other");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->start.value(), top);
  }
  const std::string before = state_without_zones(*m);
  auto hmm = TestHmm::load(*m);
  ASSERT_FALSE(hmm);
  EXPECT_EQ(hmm.error().code, Errno::NoMem);
  EXPECT_EQ(log_lines_with(*m, "added new 256 MB chunk (total 1 chunks, 256 MB) PFNs [0xc0000 0xd0000)"), 1u);
  EXPECT_EQ(state_without_zones(*m), before);
  expect_clean(*m);
}

// Scenario: arm64 4K pages, 48-bit VA and PA, RAM at 1 GiB (memstart pfn 0x40000); modprobe.
// Expect: the chunks at 0xfffff0000000 and 0xffffe0000000 (top of the 48-bit PA space; arm64's
// iomem root is unbounded); their descriptors lie beyond VMEMMAP_END 0xfffffe0000000000 — pfn
// 0xfffff0000 at 0xfffffc0000000000 + (0xfffff0000 - 0x40000) x 64 = 0xfffffffffec00000 — with
// one vmemmap_populate WARN per section (4), yet are real and readable; allocation works; unload
// WARNs once per section freed.
TEST(TestHmmArm64, chunks_at_the_top_of_the_pa_space_outside_the_vmemmap_window) {
  MachineConfig c;
  c.arch = &kArm64_4K_48;
  c.kernel.device_private = true;
  c.kernel.test_hmm = true;
  c.memory.regions = {{PhysAddr(0x40000000), GiB, 0, BootMemKind::Usable}};
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  auto hmm = TestHmm::load(*m);
  ASSERT_TRUE(hmm) << hmm.error().message;
  TestHmm& d = **hmm;
  EXPECT_EQ(d.device(0).chunk_ranges()[0], (PhysRange{PhysAddr(0xfffff0000000), PhysAddr(0xffffffffffff)}));
  EXPECT_EQ(d.device(1).chunk_ranges()[0], (PhysRange{PhysAddr(0xffffe0000000), PhysAddr(0xffffefffffff)}));
  EXPECT_EQ(m->vmemmap().page_addr(Pfn(0xfffff0000)).value(), 0xfffffffffec00000u);
  EXPECT_FALSE(m->vmemmap().in_window(Pfn(0xfffff0000), NrPages(1)));
  EXPECT_EQ(log_lines_with(*m, "WARNING: at arch/arm64/mm/mmu.c vmemmap_populate"), 4u);
  EXPECT_EQ(read(*m, Pfn(0xfffff0000)).zone(), ZoneType::Device);
  auto page = d.alloc_page(1);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->value(), 0xffffeffffu);
  EXPECT_EQ(read(*m, *page).refcount, 1);
  expect_clean(*m);
  expect_driver_clean(d);
  ASSERT_TRUE(m->put_device_page(*page));
  d.unload();
  EXPECT_EQ(log_lines_with(*m, "WARNING: at arch/arm64/mm/mmu.c vmemmap_free"), 4u);
  EXPECT_EQ(m->iomem().render().find("hmm_dmirror"), std::string::npos);
  expect_clean(*m);
}

// Scenario: arm64 4K/39 (spec §10 D's machine) under seed 003's hard-error proposal; modprobe.
// Expect: device 0's chunk at 0xfffff0000000 is refused by memremap_pages -ERANGE (descriptors
// outside the vmemmap window); the region is released; nothing changed.
TEST(TestHmmArm64, seed003_hard_error_refuses_the_first_chunk) {
  MachineConfig c;
  c.arch = &kArm64_4K_39;
  c.behaviour = *find_behaviour("seed003-hard-error");
  c.kernel.device_private = true;
  c.kernel.test_hmm = true;
  c.memory.regions = {{PhysAddr(0x8000000000), GiB, 0, BootMemKind::Usable}};
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  const std::string before = devmem_snapshot(*m);
  auto hmm = TestHmm::load(*m);
  ASSERT_FALSE(hmm);
  EXPECT_EQ(hmm.error().code, Errno::Range);
  EXPECT_EQ(devmem_snapshot(*m), before);
  expect_clean(*m);
}

// Scenario: x86 pc with spm_addr_dev0 = 0x200000000 and spm_addr_dev1 = 0x210000000 (above RAM).
// Expect: four devices; 2 and 3 COHERENT, device 2 at spm_addr_dev1 and device 3 at
// spm_addr_dev0 (6.1's "(MINOR - 2) ? dev0 : dev1"); no iomem region for them; a page of device
// 2 is 0x21ffff. A second chunk for device 2 maps the same address again: memremap_pages refuses
// it -ENOMEM ("Conflicting mapping in same section") and nothing changes.
TEST(TestHmmCoherent, spm_addresses_swap_and_a_second_chunk_conflicts) {
  auto m = boot_or_die(hmm_pc_config());
  ASSERT_TRUE(m);
  auto hmm = TestHmm::load(*m, TestHmmParams{0x200000000, 0x210000000});
  ASSERT_TRUE(hmm) << hmm.error().message;
  TestHmm& d = **hmm;
  ASSERT_EQ(d.nr_devices(), 4u);
  EXPECT_EQ(d.device(2).zone_device_type(), MemoryType::DeviceCoherent);
  EXPECT_EQ(d.device(2).chunk_ranges()[0].start.value(), 0x210000000u);
  EXPECT_EQ(d.device(3).chunk_ranges()[0].start.value(), 0x200000000u);
  EXPECT_EQ(m->iomem().render().find("200000000"), std::string::npos);
  auto page = d.alloc_page(2);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->value(), 0x21ffffu);
  expect_clean(*m);
  expect_driver_clean(d);
  const std::string before = devmem_snapshot(*m);
  auto again = d.allocate_chunk(2);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errno::NoMem);
  EXPECT_EQ(again.error().message, "Conflicting mapping in same section");
  EXPECT_EQ(devmem_snapshot(*m), before);
  ASSERT_TRUE(m->put_device_page(*page));
  expect_clean(*m);
  expect_driver_clean(d);
}

// Scenario: coherent devices whose spm address is boot RAM (0x100000000).
// Expect: device 3's memremap_pages fails -ENXIO (System RAM); devices 0-2 are removed again;
// everything but the Device zone span as before.
TEST(TestHmmCoherent, spm_address_on_ram_fails_the_load) {
  auto m = boot_or_die(hmm_pc_config());
  ASSERT_TRUE(m);
  const std::string before = state_without_zones(*m);
  auto hmm = TestHmm::load(*m, TestHmmParams{0x100000000, 0x210000000});
  ASSERT_FALSE(hmm);
  EXPECT_EQ(hmm.error().code, Errno::NxIO);
  EXPECT_EQ(state_without_zones(*m), before);
  expect_clean(*m);
}

}  // namespace
}  // namespace sparsemem
