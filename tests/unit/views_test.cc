// Tests for include/sparsemem/views.h: the guest's /proc and /sys files on the oracle's machines,
// against values read from the traces and worked out from the memory map, and their write errnos.
#include "sparsemem/views.h"

#include <gtest/gtest.h>

#include "sparsemem/kpageflags.h"
#include "sparsemem/platform.h"
#include "sparsemem/scenario.h"
#include "sparsemem/trace.h"
#include "support/machines.h"

namespace sparsemem {
namespace {

// The oracle's QEMU pc machine (-m 4160M,slots=4,maxmem=32G) plus `extra` QEMU options, booted.
struct Guest {
  PlatformDescription platform;
  std::unique_ptr<Machine> machine;
  std::unique_ptr<AcpiMemoryHotplug> acpi;
  std::optional<VirtualFs> fs;

  explicit Guest(std::vector<std::string> extra = {}, std::string append = {}) {
    std::vector<std::string> argv{"qemu-system-x86_64", "-machine", "pc,nvdimm=on", "-m", "4160M,slots=4,maxmem=32G"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string cmdline(kOracleBaseAppend);
    if (!append.empty()) cmdline += " " + append;
    auto p = platform_from_qemu(argv, cmdline);
    EXPECT_TRUE(p) << (p ? "" : p.error().message);
    platform = *p;
    machine = testing::boot_or_die(*Machine::config_from_platform(platform, kLinux61));
    acpi = std::make_unique<AcpiMemoryHotplug>(platform);
    for (const MemoryDevice& d : platform.memory_devices)
      if (d.kind == MemoryDeviceKind::Dimm) EXPECT_TRUE(acpi->device_add(*machine, d.slot, d.range(), d.node));
    GuestFsContext ctx;
    ctx.machine = machine.get();
    ctx.acpi = acpi.get();
    ctx.cmdline = cmdline;
    ctx.cpu_nodes = {0};
    fs.emplace(make_guest_fs(std::move(ctx)));
  }
};

// Scenario: a_baseline's `ls /sys/devices/system/memory/`.
// Expect: the trace's listing, in its (strcmp) order.
TEST(GuestFs, MemoryDirectoryListing) {
  Guest g;
  const auto trace = testing::load_trace("a_baseline");
  const std::string expected = trace["steps"][1]["commands"][0]["stdout"];
  std::string got;
  const auto names = g.fs->list("/sys/devices/system/memory/");
  for (const std::string& n : *names) got += (got.empty() ? "" : "\n") + n;
  EXPECT_EQ(got, expected);
}

// Scenario: read the root and per-block files of a_baseline.
// Expect: block_size_bytes 8000000, memory0 spans DMA and DMA32 ("none"), memory40 "Normal",
// phys_index 8 hex digits, removable 1, the node0 link, the module parameters' defaults.
TEST(GuestFs, MemoryFiles) {
  Guest g;
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/block_size_bytes"), "8000000\n");
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/auto_online_blocks"), "offline\n");
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/memory0/valid_zones"), "none\n");
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/memory40/valid_zones"), "Normal\n");
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/memory32/phys_index"), "00000020\n");
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/memory32/state"), "online\n");
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/memory32/online"), "1\n");
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/memory32/removable"), "1\n");
  EXPECT_EQ(*g.fs->readlink("/sys/devices/system/memory/memory32/node0"), "../../node/node0");
  EXPECT_FALSE(g.fs->exists("/sys/devices/system/memory/memory24"));
  EXPECT_EQ(*g.fs->read("/sys/module/memory_hotplug/parameters/online_policy"), "contig-zones\n");
  EXPECT_EQ(*g.fs->read("/sys/module/memory_hotplug/parameters/auto_movable_ratio"), "301\n");
  EXPECT_EQ(*g.fs->read("/sys/module/memory_hotplug/parameters/memmap_on_memory"), "N\n");
  EXPECT_EQ(*g.fs->read("/sys/devices/system/node/possible"), "0\n");
  EXPECT_EQ(*g.fs->read("/sys/devices/system/node/has_normal_memory"), "0\n");
  EXPECT_EQ(*g.fs->read("/proc/cmdline"), std::string(kOracleBaseAppend) + "\n");
}

// Scenario: f_errors' invalid writes (trace f_errors steps 3-5).
// Expect: each errno the shell reported — EINVAL for "ONLINE", "online " and "" and for an
// already-online block, EACCES for read-only files, ENOENT for a missing block's directory — and
// nothing changed.
TEST(GuestFs, StateWriteErrors) {
  Guest g;
  const std::string state = "/sys/devices/system/memory/memory32/state";
  for (const char* bad : {"ONLINE\n", "online \n", "\n", "garbage\n", "online\n", "online_movable\n"})
    EXPECT_EQ(g.fs->write(state, bad).error().code, Errno::Inval) << bad;
  EXPECT_EQ(g.fs->open_for_write("/sys/devices/system/memory/memory32/phys_index").error().code, Errno::Acces);
  EXPECT_EQ(g.fs->open_for_write("/sys/devices/system/memory/block_size_bytes").error().code, Errno::Acces);
  EXPECT_EQ(g.fs->open_for_write("/sys/devices/system/memory/memory999/state").error().code, Errno::NoEnt);
  EXPECT_EQ(g.fs->write("/sys/devices/system/memory/auto_online_blocks", "foo\n").error().code, Errno::Inval);
  EXPECT_EQ(*g.fs->read(state), "online\n");
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/auto_online_blocks"), "offline\n");
  testing::expect_clean(*g.machine);
}

// Scenario: a cold-plugged 1 GiB DIMM (trace b_dimm_coldplug): online two blocks through sysfs,
// change auto_online_blocks, read the ACPI device.
// Expect: the writes call the operations (blocks online movable, MemTotal + 256 MiB), printf's
// value without a newline is accepted, the ACPI device lists blocks 48-55 as physical nodes.
TEST(GuestFs, WritesCallOperations) {
  Guest g({"-object", "memory-backend-ram,id=m1,size=1G", "-device", "pc-dimm,id=dimm1,memdev=m1"});
  const uint64_t before = g.machine->totalram_pages().value();
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/memory48/valid_zones"), "Normal Movable\n");
  EXPECT_TRUE(g.fs->write("/sys/devices/system/memory/memory48/state", "online_movable\n"));
  EXPECT_TRUE(g.fs->write("/sys/devices/system/memory/memory49/state", "online_movable"));
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/memory49/valid_zones"), "Movable\n");
  EXPECT_EQ(g.machine->totalram_pages().value() - before, 2 * 32768u);
  EXPECT_TRUE(g.fs->write("/sys/devices/system/memory/auto_online_blocks", "online_kernel\n"));
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/auto_online_blocks"), "online_kernel\n");
  EXPECT_EQ(*g.fs->read("/sys/bus/acpi/devices/PNP0C80:00/status"), "15\n");
  EXPECT_EQ(*g.fs->read("/sys/bus/acpi/devices/PNP0C80:01/status"), "0\n");
  EXPECT_EQ(*g.fs->readlink("/sys/bus/acpi/devices/PNP0C80:00/physical_node7"), "../../../../system/memory/memory55");
  EXPECT_EQ(g.fs->write("/sys/bus/acpi/devices/PNP0C80:03/eject", "1\n").error().code, Errno::NoDev);
  testing::expect_clean(*g.machine);
}

// Scenario: soft_offline_page and hard_offline_page writes on the DIMM machine: garbage, an
// offline block's address, a free page of an online block, the same page again.
// Expect: -EINVAL, -EIO (soft, offline memory) and -ENXIO (hard), then success with
// HardwareCorrupted 4 kB and the page reading HWPOISON; hard offlining it again is -EHWPOISON,
// soft offlining it again succeeds; the counter does not move on failures.
TEST(GuestFs, OfflinePageFiles) {
  Guest g({"-object", "memory-backend-ram,id=m1,size=1G", "-device", "pc-dimm,id=dimm1,memdev=m1"});
  const std::string soft = "/sys/devices/system/memory/soft_offline_page";
  const std::string hard = "/sys/devices/system/memory/hard_offline_page";
  EXPECT_EQ(g.fs->write(soft, "garbage\n").error().code, Errno::Inval);
  EXPECT_EQ(g.fs->write(hard, "-1\n").error().code, Errno::Inval);
  EXPECT_EQ(g.fs->write(soft, "0x1b0000000\n").error().code, Errno::Io);
  EXPECT_EQ(g.fs->write(hard, "0x1b0000000\n").error().code, Errno::NxIO);
  EXPECT_EQ(g.machine->num_poisoned_pages(), 0u);
  ASSERT_TRUE(g.fs->write("/sys/devices/system/memory/memory48/state", "online_movable\n"));
  EXPECT_TRUE(g.fs->write(soft, "0x180000000\n"));
  EXPECT_NE(g.fs->read("/proc/meminfo")->find("HardwareCorrupted:     4 kB\n"), std::string::npos);
  EXPECT_EQ(*kpageflags(*g.machine, Pfn(0x180000)), kpf_bit(KPF::Hwpoison));
  EXPECT_EQ(g.fs->write(hard, "0x180000000\n").error().code, Errno::HwPoison);
  EXPECT_TRUE(g.fs->write(soft, "6442450944\n"));  // the same address in decimal
  EXPECT_EQ(g.machine->num_poisoned_pages(), 1u);
  testing::expect_clean(*g.machine);
}

// Scenario: echo 1 > PNP0C80:00/eject while a block of the DIMM holds an unmovable page, then again
// after the page is freed.
// Expect: both writes succeed (acpi_eject_store() only queues the ejection); the first leaves the
// DIMM in place with its blocks online, the second removes it; "2" is refused with -EINVAL.
TEST(GuestFs, EjectWriteSucceedsWhateverTheOutcome) {
  Guest g({"-object", "memory-backend-ram,id=m1,size=1G", "-device", "pc-dimm,id=dimm1,memdev=m1"},
          "memhp_default_state=online_kernel");
  const std::string eject = "/sys/bus/acpi/devices/PNP0C80:00/eject";
  ASSERT_TRUE(g.machine->alloc_page_at(Pfn(50 * 32768 + 3), Migratability::Unmovable, 7));
  EXPECT_EQ(g.fs->write(eject, "2\n").error().code, Errno::Inval);
  EXPECT_TRUE(g.fs->write(eject, "1\n"));
  EXPECT_EQ(*g.fs->read("/sys/bus/acpi/devices/PNP0C80:00/status"), "15\n");
  EXPECT_EQ(*g.fs->read("/sys/devices/system/memory/memory48/state"), "online\n");
  ASSERT_TRUE(g.machine->free_page(7));
  EXPECT_TRUE(g.fs->write(eject, "1\n"));
  EXPECT_EQ(*g.fs->read("/sys/bus/acpi/devices/PNP0C80:00/status"), "0\n");
  EXPECT_FALSE(g.fs->exists("/sys/devices/system/memory/memory48"));
  testing::expect_clean(*g.machine);
}

// Scenario: /proc/zoneinfo of a_baseline through the oracle's filter.
// Expect: the trace's spanned, present, cma and start_pfn per zone, empty Movable and Device zones
// without a start_pfn line, and rendering twice changes nothing.
TEST(ProcViews, ZoneinfoMatchesTheTrace) {
  Guest g;
  const auto trace = testing::load_trace("a_baseline");
  const std::vector<std::string> lines = filter_zoneinfo_lines(render_zoneinfo(*g.machine));
  size_t nodes = 0;
  for (const std::string& l : lines) nodes += l.starts_with("Node");
  EXPECT_EQ(nodes, trace["steps"][0]["snapshot"]["zones"].size());
  const std::string again = render_zoneinfo(*g.machine);
  EXPECT_EQ(filter_zoneinfo_lines(again), lines);
  // The counters that are exact from the memory map (docs/conformance.md); managed, free pages and
  // watermarks depend on boot-time allocations.
  auto exact = [](const std::string& l) {
    for (const char* k : {"Node", "spanned", "present", "cma", "start_pfn"})
      if (l.find(k) != std::string::npos) return true;
    return false;
  };
  std::vector<std::string> expected_spans, got_spans;
  for (const auto& raw : trace["steps"][0]["snapshot"]["zones_raw"])
    if (exact(raw.get<std::string>())) expected_spans.push_back(raw);
  for (const std::string& l : lines)
    if (exact(l)) got_spans.push_back(l);
  EXPECT_EQ(got_spans, expected_spans);
}

// Scenario: /proc/meminfo of a_baseline.
// Expect: the trace's fields in its order, MemTotal from the managed pages, the constants of a
// guest without swap and hugetlb, and a direct map that grows by exactly a hot-added DIMM.
TEST(ProcViews, Meminfo) {
  Guest g;
  // The trace model keeps meminfo's file order (nlohmann::json objects would sort the keys).
  const auto trace = load_trace(std::string(SPM_TEST_DATA) + "/oracle/a_baseline.json");
  ASSERT_TRUE(trace);
  std::vector<std::string> expected_keys, got_keys;
  for (const auto& [k, v] : *trace->steps[0].snapshot.meminfo) expected_keys.push_back(k);
  const std::string text = render_meminfo(*g.machine);
  size_t i = 0;
  while (i < text.size()) {
    const size_t nl = text.find('\n', i);
    const std::string line = text.substr(i, nl - i);
    got_keys.push_back(line.substr(0, line.find(':')));
    i = nl + 1;
  }
  EXPECT_EQ(got_keys, expected_keys);
  EXPECT_NE(text.find(fmt::format("MemTotal:       {:>8} kB\n", g.machine->totalram_pages().value() * 4)), std::string::npos);
  EXPECT_NE(text.find("VmallocTotal:   34359738367 kB\n"), std::string::npos);
  EXPECT_NE(text.find("Hugepagesize:       2048 kB\n"), std::string::npos);
  EXPECT_NE(text.find("HardwareCorrupted:     0 kB\n"), std::string::npos);
}

// Scenario: node masks as sysfs prints them.
// Expect: ranges collapse, singles are comma separated, duplicates and order do not matter.
TEST(ProcViews, NodeListString) {
  EXPECT_EQ(node_list_string({}), "");
  EXPECT_EQ(node_list_string({0}), "0");
  EXPECT_EQ(node_list_string({1, 0}), "0-1");
  EXPECT_EQ(node_list_string({0, 1, 3, 5, 6, 7, 3}), "0-1,3,5-7");
}

// Scenario: pfnflags over a_baseline's pfns around the end of RAM (trace a_baseline).
// Expect: pfns of the unbacked tail of section 40 read NOPAGE with count 0, pfns at
// round_up(max_pfn, PAGES_PER_SECTION) and beyond read EOF.
TEST(ProcViews, PfnflagsLines) {
  Guest g;
  const PfnRange ranges[] = {{Pfn(0x144000), NrPages(1)}, {Pfn(0x147fff), NrPages(2)}};
  EXPECT_EQ(render_pfnflags(*g.machine, ranges),
            "pfn=0x144000 flags=0x0000000000100000 count=0\n"
            "pfn=0x147fff flags=0x0000000000100000 count=0\n"
            "pfn=0x148000 flags=EOF count=EOF\n");
}

}  // namespace
}  // namespace sparsemem
