// Tests for include/sparsemem/acpi_memory.h: DIMMs added through PNP0C80 devices, binding of their
// memory blocks, ejection with and without blocks that refuse to go offline, and unaligned DIMMs.
#include "sparsemem/acpi_memory.h"

#include <gtest/gtest.h>

#include "sparsemem/scenario.h"
#include "support/machines.h"

namespace sparsemem {
namespace {

struct Dimms {
  PlatformDescription platform;
  std::unique_ptr<Machine> machine;

  // QEMU pc with 4160M, `slots` slots and the given -object/-device options; `append` on the cmdline.
  Dimms(std::vector<std::string> extra, std::string append = {}, unsigned slots = 4) {
    std::vector<std::string> argv{"qemu-system-x86_64", "-machine", "pc,nvdimm=on", "-m",
                                  fmt::format("4160M,slots={},maxmem=32G", slots)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = platform_from_qemu(argv, std::string(kOracleBaseAppend) + " " + append);
    EXPECT_TRUE(p) << (p ? "" : p.error().message);
    platform = *p;
    machine = testing::boot_or_die(*Machine::config_from_platform(platform, kLinux61));
  }
  std::vector<uint64_t> ids(const std::vector<BlockId>& v) {
    std::vector<uint64_t> out;
    for (BlockId b : v) out.push_back(b.value());
    return out;
  }
};

std::vector<uint64_t> range_ids(uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(i);
  return out;
}

// Scenario: a 1 GiB DIMM cold-plugged at 0x180000000 (trace b_dimm_coldplug), auto-online off.
// Expect: _STA 15, blocks 48-55 created offline and bound in order, the other slots empty, the
// "configured by ACPI" message, and a clean checker.
TEST(AcpiMemoryHotplug, ColdPluggedDimmIsAddedOffline) {
  Dimms d({"-object", "memory-backend-ram,id=m1,size=1G", "-device", "pc-dimm,id=dimm1,memdev=m1"});
  AcpiMemoryHotplug acpi(d.platform);
  ASSERT_EQ(acpi.devices().size(), 4u);
  EXPECT_EQ(acpi.devices()[0].name, "PNP0C80:00");
  EXPECT_EQ(acpi.devices()[3].path, "\\_SB_.MHPC.MP03");
  const MemoryDevice& dimm = d.platform.memory_devices.at(0);
  ASSERT_TRUE(acpi.device_add(*d.machine, dimm.slot, dimm.range(), dimm.node));
  EXPECT_EQ(acpi.find_slot(0)->status, 15u);
  EXPECT_EQ(acpi.find_slot(1)->status, 0u);
  EXPECT_EQ(d.ids(acpi.physical_nodes(*d.machine, 0)), range_ids(48, 55));
  EXPECT_TRUE(acpi.physical_nodes(*d.machine, 1).empty());
  for (uint64_t id = 48; id <= 55; ++id)
    EXPECT_EQ(d.machine->memory_blocks().find(BlockId(id))->state, MemoryBlockState::Offline);
  EXPECT_EQ(d.machine->log().lines().back().text, "acpi PNP0C80:00: Memory device configured by ACPI");
  testing::expect_clean(*d.machine);
}

// Scenario: eject the DIMM with its blocks online movable (trace c_dimm_hotremove, "eject while
// online"), then eject an empty slot.
// Expect: the driver offlines every block, removes the memory and empties the slot; MemTotal is
// back to the boot value; the empty slot refuses with -ENODEV.
TEST(AcpiMemoryHotplug, EjectOfflinesAndRemoves) {
  Dimms d({"-object", "memory-backend-ram,id=m1,size=1G", "-device", "pc-dimm,id=dimm1,memdev=m1"},
          "memhp_default_state=online_movable");
  const uint64_t boot_pages = d.machine->totalram_pages().value();
  AcpiMemoryHotplug acpi(d.platform);
  const MemoryDevice& dimm = d.platform.memory_devices.at(0);
  ASSERT_TRUE(acpi.device_add(*d.machine, dimm.slot, dimm.range(), dimm.node));
  EXPECT_EQ(d.machine->memory_blocks().find(BlockId(48))->zone, ZoneType::Movable);
  EXPECT_EQ(d.machine->totalram_pages().value(), boot_pages + 8 * 32768);
  ASSERT_TRUE(acpi.eject(*d.machine, 0));
  EXPECT_EQ(acpi.find_slot(0)->status, 0u);
  EXPECT_FALSE(acpi.find_slot(0)->enabled);
  EXPECT_EQ(d.machine->memory_blocks().find(BlockId(48)), nullptr);
  EXPECT_EQ(d.machine->totalram_pages().value(), boot_pages);
  EXPECT_EQ(acpi.eject(*d.machine, 3).error().code, Errno::NoDev);
  testing::expect_clean(*d.machine);
}

// Scenario: the DIMM's blocks online in ZONE_NORMAL with an unmovable page in block 50, then eject.
// Expect: -EBUSY; the blocks offlined by the first pass are online again in their zone, the
// memory stays, the slot stays occupied and bound.
TEST(AcpiMemoryHotplug, EjectRollsBackWhenABlockRefuses) {
  Dimms d({"-object", "memory-backend-ram,id=m1,size=1G", "-device", "pc-dimm,id=dimm1,memdev=m1"},
          "memhp_default_state=online_kernel");
  AcpiMemoryHotplug acpi(d.platform);
  const MemoryDevice& dimm = d.platform.memory_devices.at(0);
  ASSERT_TRUE(acpi.device_add(*d.machine, dimm.slot, dimm.range(), dimm.node));
  const uint64_t pages = d.machine->totalram_pages().value();
  ASSERT_TRUE(d.machine->alloc_page_at(Pfn(50 * 32768 + 7), Migratability::Unmovable, 1));
  EXPECT_EQ(acpi.eject(*d.machine, 0).error().code, Errno::Busy);
  for (uint64_t id = 48; id <= 55; ++id) {
    const MemoryBlock* b = d.machine->memory_blocks().find(BlockId(id));
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->state, MemoryBlockState::Online) << id;
    EXPECT_EQ(b->zone, ZoneType::Normal) << id;
  }
  EXPECT_EQ(d.machine->totalram_pages().value(), pages);
  EXPECT_EQ(acpi.find_slot(0)->status, 15u);
  EXPECT_EQ(d.ids(acpi.physical_nodes(*d.machine, 0)), range_ids(48, 55));
  testing::expect_clean(*d.machine);
}

// Scenario: a 128 MiB DIMM at 0x1c4000000, not aligned to the 128 MiB block (trace c2 d3).
// Expect: add_memory's -EINVAL becomes "add_memory failed" and "acpi_memory_enable_device()
// error"; the device is present but unbound, with no memory; ejecting it still succeeds.
TEST(AcpiMemoryHotplug, UnalignedDimmIsRefused) {
  Dimms d({"-object", "memory-backend-ram,id=m3,size=128M", "-device", "pc-dimm,id=d3,memdev=m3,addr=0x1c4000000"});
  AcpiMemoryHotplug acpi(d.platform);
  const MemoryDevice& dimm = d.platform.memory_devices.at(0);
  EXPECT_EQ(acpi.device_add(*d.machine, dimm.slot, dimm.range(), dimm.node).error().code, Errno::Inval);
  const auto lines = d.machine->log().lines();
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[lines.size() - 3].text, "Block size [0x8000000] unaligned hotplug range: start 0x1c4000000, size 0x8000000");
  EXPECT_EQ(lines[lines.size() - 2].text, "acpi PNP0C80:00: add_memory failed");
  EXPECT_EQ(lines[lines.size() - 1].text, "acpi PNP0C80:00: acpi_memory_enable_device() error");
  EXPECT_EQ(acpi.find_slot(0)->status, 15u);
  EXPECT_FALSE(acpi.find_slot(0)->enabled);
  EXPECT_EQ(d.machine->memory_groups().size(), 0u);
  EXPECT_TRUE(acpi.eject(*d.machine, 0));
  EXPECT_EQ(acpi.find_slot(0)->status, 0u);
  testing::expect_clean(*d.machine);
}

// Scenario: memory_hotplug.memmap_on_memory=1 with a one-block DIMM and a 1 GiB one (trace b3).
// Expect: the predicate holds for exactly one 128 MiB block and not for 1 GiB; the 128 MiB DIMM's
// block carries its own memmap (512 vmemmap pages), the 1 GiB one none.
TEST(AcpiMemoryHotplug, MemmapOnMemoryOnlyForOneBlock) {
  Dimms d({"-object", "memory-backend-ram,id=m1,size=128M", "-device", "pc-dimm,id=dimm1,memdev=m1", "-object",
           "memory-backend-ram,id=m2,size=1G", "-device", "pc-dimm,id=dimm2,memdev=m2"},
          "memory_hotplug.memmap_on_memory=1");
  EXPECT_TRUE(AcpiMemoryHotplug::memmap_on_memory_applies(*d.machine, 128ull << 20));
  EXPECT_FALSE(AcpiMemoryHotplug::memmap_on_memory_applies(*d.machine, 1ull << 30));
  AcpiMemoryHotplug acpi(d.platform);
  for (const MemoryDevice& m : d.platform.memory_devices) ASSERT_TRUE(acpi.device_add(*d.machine, m.slot, m.range(), m.node));
  EXPECT_EQ(d.machine->memory_blocks().find(BlockId(48))->nr_vmemmap_pages.value(), 512u);
  EXPECT_EQ(d.machine->memory_blocks().find(BlockId(49))->nr_vmemmap_pages.value(), 0u);
  testing::expect_clean(*d.machine);
}

}  // namespace
}  // namespace sparsemem
