// Tests for include/sparsemem/pagemap.h: the pgmap registry, the reference count and its wait, the pure validation
// table of memremap_pages, the pluggable range and the §10 A pfn arithmetic. Expected values are worked out by hand.
#include "sparsemem/pagemap.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace sparsemem {
namespace {

// A section table with nothing in it: enough for the registry to attach to.
struct Env {
  KernelLog log;
  Vmemmap vm{kX86_64, kLinux61, log, VmemmapConfig{}};
  SectionTable sections{kX86_64, kLinux61, vm, log};
  PgmapRegistry registry{kX86_64};
  Env() { registry.attach(sections); }
};

void start_live(DevPagemap& p, uint64_t start, uint64_t size) {
  p.ranges = {PhysRange{PhysAddr(start), PhysAddr(start + size - 1)}};
  PagemapLifecycle::start(p);
  PagemapLifecycle::set_mapped(p, true);
}
void finish(DevPagemap& p) {
  PagemapLifecycle::kill(p);
  PagemapLifecycle::drop_initial_and_bulk(p);
  PagemapLifecycle::wait_for_zero(p);
  PagemapLifecycle::set_mapped(p, false);
}

// Scenario: pgmap A stored for pfns 0x1000-0x1fff, then B stored over 0x1800-0x27ff (6.1's
// xa_store_range overwrites), then 0x1c00-0x1fff erased. Expect: lookups follow each step; the
// intervals stay disjoint; get_dev_pagemap takes a reference only on a live pgmap.
TEST(PgmapRegistry, store_overwrites_and_erase_cuts) {
  Env e;
  DevPagemap a, b;
  start_live(a, 0x1000000, 0x1000000);
  start_live(b, 0x1800000, 0x1000000);
  e.registry.store(PfnRange{Pfn(0x1000), NrPages(0x1000)}, &a);
  EXPECT_EQ(e.registry.lookup_racy(Pfn(0x1000)), &a);
  EXPECT_EQ(e.registry.lookup_racy(Pfn(0x1fff)), &a);
  EXPECT_EQ(e.registry.lookup_racy(Pfn(0x2000)), nullptr);
  EXPECT_EQ(e.registry.lookup_racy(Pfn(0xfff)), nullptr);
  e.registry.store(PfnRange{Pfn(0x1800), NrPages(0x1000)}, &b);
  EXPECT_EQ(e.registry.lookup_racy(Pfn(0x17ff)), &a);
  EXPECT_EQ(e.registry.lookup_racy(Pfn(0x1800)), &b);
  EXPECT_EQ(e.registry.lookup_racy(Pfn(0x27ff)), &b);
  e.registry.erase(PfnRange{Pfn(0x1c00), NrPages(0x400)});
  EXPECT_EQ(e.registry.lookup_racy(Pfn(0x1bff)), &b);
  EXPECT_EQ(e.registry.lookup_racy(Pfn(0x1c00)), nullptr);
  EXPECT_EQ(e.registry.lookup_racy(Pfn(0x2000)), &b);
  ASSERT_EQ(e.registry.entries().size(), 3u);
  InvariantReport r;
  e.registry.check_invariants(r);
  EXPECT_TRUE(r.ok()) << r.to_string();

  EXPECT_TRUE(e.registry.has_live_pagemap(Pfn(0x1000)));
  DevPagemap* got = e.registry.get_dev_pagemap(Pfn(0x1000));
  EXPECT_EQ(got, &a);
  EXPECT_EQ(a.ref_count(), 2u);
  put_dev_pagemap(got);
  PagemapLifecycle::kill(a);
  EXPECT_FALSE(e.registry.has_live_pagemap(Pfn(0x1000)));
  EXPECT_EQ(e.registry.get_dev_pagemap(Pfn(0x1000)), nullptr);
  EXPECT_EQ(a.ref_count(), 1u);
  PagemapLifecycle::drop_initial_and_bulk(a);
  PagemapLifecycle::wait_for_zero(a);
  PagemapLifecycle::set_mapped(a, false);
  e.registry.erase(PfnRange{Pfn(0), NrPages(0x10000)});
  EXPECT_TRUE(e.registry.entries().empty());
  finish(b);
}

// Scenario: memunmap's wait with two references outstanding on other threads.
// Expect: wait_for_zero returns only after both are put; tryget_live fails once killed.
TEST(DevPagemapRef, wait_for_zero_blocks_until_the_last_put) {
  DevPagemap p;
  start_live(p, 0x1000000, 0x200000);
  PagemapLifecycle::add_bulk(p, 7);
  EXPECT_EQ(p.ref_count(), 8u);
  EXPECT_EQ(p.bulk_refs(), 7u);
  ASSERT_TRUE(p.tryget_live());
  ASSERT_TRUE(p.tryget_live());
  PagemapLifecycle::kill(p);
  EXPECT_FALSE(p.tryget_live());
  PagemapLifecycle::drop_initial_and_bulk(p);
  EXPECT_EQ(p.ref_count(), 2u);
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    PagemapLifecycle::wait_for_zero(p);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(done.load());
  std::thread putter([&] { put_dev_pagemap(&p); });
  putter.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(done.load());
  put_dev_pagemap(&p);
  waiter.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(p.ref_count(), 0u);
  PagemapLifecycle::set_mapped(p, false);
}

// -------------------------------------------------------------------------------------------------
// validate_dev_pagemap(): one row per refusal, in the kernel's order.

struct ValidateRow {
  const char* name;
  std::function<void(DevPagemap&, KernelConfig&, Behaviour&)> setup;
  bool ok;
  const char* message;  // error text, or the WARN line of an accepted row ("" = none)
};

TEST(ValidateDevPagemap, table) {
  static const DevPagemapOps full{[](Pfn, Page&) {}, [](Pfn) { return 0; }, {}};
  static const DevPagemapOps no_migrate{[](Pfn, Page&) {}, {}, {}};
  static const DevPagemapOps no_free{{}, [](Pfn) { return 0; }, {}};
  static int owner;
  auto priv = [](DevPagemap& p, KernelConfig& c) {
    c.device_private = true;
    p.type = MemoryType::DevicePrivate;
    p.ops = &full;
    p.owner = &owner;
  };
  const std::vector<ValidateRow> rows = {
      {"generic", [](DevPagemap&, KernelConfig&, Behaviour&) {}, true, ""},
      {"no ranges", [](DevPagemap& p, KernelConfig&, Behaviour&) { p.ranges.clear(); }, false,
       "nr_range must be specified"},
      {"private, Debian config",
       [&](DevPagemap& p, KernelConfig& c, Behaviour&) {
         priv(p, c);
         c.device_private = false;
       },
       false, "Device private memory not supported"},
      {"private ok", [&](DevPagemap& p, KernelConfig& c, Behaviour&) { priv(p, c); }, true, ""},
      {"private, no ops",
       [&](DevPagemap& p, KernelConfig& c, Behaviour&) {
         priv(p, c);
         p.ops = nullptr;
       },
       false, "Missing migrate_to_ram method"},
      {"private, no migrate_to_ram",
       [&](DevPagemap& p, KernelConfig& c, Behaviour&) {
         priv(p, c);
         p.ops = &no_migrate;
       },
       false, "Missing migrate_to_ram method"},
      {"private, no page_free",
       [&](DevPagemap& p, KernelConfig& c, Behaviour&) {
         priv(p, c);
         p.ops = &no_free;
       },
       false, "Missing page_free method"},
      {"private, no owner",
       [&](DevPagemap& p, KernelConfig& c, Behaviour&) {
         priv(p, c);
         p.owner = nullptr;
       },
       false, "Missing owner"},
      {"private with altmap (6.1 accepts)",
       [&](DevPagemap& p, KernelConfig& c, Behaviour&) {
         priv(p, c);
         p.flags = PGMAP_ALTMAP_VALID;
       },
       true, ""},
      {"private with altmap, seed 002",
       [&](DevPagemap& p, KernelConfig& c, Behaviour& b) {
         priv(p, c);
         p.flags = PGMAP_ALTMAP_VALID;
         b.reject_private_altmap = true;
       },
       false, "Device private memory cannot use an altmap"},
      {"coherent, null ops",
       [](DevPagemap& p, KernelConfig&, Behaviour&) { p.type = MemoryType::DeviceCoherent; }, false,
       "Missing page_free method"},
      {"coherent, no owner",
       [](DevPagemap& p, KernelConfig&, Behaviour&) {
         p.type = MemoryType::DeviceCoherent;
         p.ops = &full;
       },
       false, "Missing owner"},
      {"fsdax", [](DevPagemap& p, KernelConfig&, Behaviour&) { p.type = MemoryType::FsDax; }, true, ""},
      {"fsdax limited",
       [](DevPagemap& p, KernelConfig& c, Behaviour&) {
         p.type = MemoryType::FsDax;
         c.fs_dax_limited = true;
       },
       false, "File system DAX not supported"},
      {"p2pdma", [](DevPagemap& p, KernelConfig&, Behaviour&) { p.type = MemoryType::PciP2pdma; }, true, ""},
      {"invalid type warns and goes on",
       [](DevPagemap& p, KernelConfig&, Behaviour&) { p.type = static_cast<MemoryType>(9); }, true,
       "Invalid pgmap type 9"},
      {"type 0 warns and goes on",
       [](DevPagemap& p, KernelConfig&, Behaviour&) { p.type = MemoryType::Invalid; }, true,
       "Invalid pgmap type 0"},
      {"2 MiB units over 2 MiB", [](DevPagemap& p, KernelConfig&, Behaviour&) { p.vmemmap_shift = 9; }, true, ""},
      {"4 MiB units over 2 MiB", [](DevPagemap& p, KernelConfig&, Behaviour&) { p.vmemmap_shift = 10; }, false,
       "not a whole number of 1024-page compound units"},
      {"shift too large", [](DevPagemap& p, KernelConfig&, Behaviour&) { p.vmemmap_shift = 52; }, false,
       "vmemmap_shift 52 is too large"},
  };
  for (const ValidateRow& row : rows) {
    DevPagemap p;
    p.type = MemoryType::Generic;
    p.ranges = {PhysRange{PhysAddr(0x180000000), PhysAddr(0x1801fffff)}};
    KernelConfig config;
    Behaviour behaviour = kLinux61;
    row.setup(p, config, behaviour);
    KernelLog log;
    WarnOnce once;
    auto r = validate_dev_pagemap(p, kX86_64, config, behaviour, log, once);
    EXPECT_EQ(r.has_value(), row.ok) << row.name;
    const std::string msg = r ? (log.size() ? log.lines().back().text : "") : r.error().message;
    if (*row.message)
      EXPECT_NE(msg.find(row.message), std::string::npos) << row.name << ": " << msg;
    else
      EXPECT_EQ(msg, "") << row.name;
    if (!r) EXPECT_EQ(r.error().code, Errno::Inval) << row.name;
  }
}

// Scenario: "nr_range must be specified" twice on one machine. Expect: one WARN line (WARN_ONCE).
TEST(ValidateDevPagemap, nr_range_warns_once) {
  KernelLog log;
  WarnOnce once;
  DevPagemap p;
  EXPECT_FALSE(validate_dev_pagemap(p, kX86_64, KernelConfig{}, kLinux61, log, once));
  EXPECT_FALSE(validate_dev_pagemap(p, kX86_64, KernelConfig{}, kLinux61, log, once));
  EXPECT_EQ(log.size(), 1u);
}

// Scenario: mhp_get_pluggable_range / mhp_range_allowed on x86 (no arch range) and arm64 4K/39
// with memstart 0x80_0000_0000 (linear map 256 GiB). Expect the hand-computed bounds and the
// kernel's message with the exclusive end.
TEST(MhpRange, pluggable_ranges_and_message) {
  struct Row {
    const ArchProfile* arch;
    uint64_t memstart_pfn;
    bool need_mapping;
    uint64_t start, last;
  };
  const Row rows[] = {
      {&kX86_64, 0, true, 0, 0x3fffffffffff},
      {&kX86_64, 0, false, 0, 0x3fffffffffff},
      {&kX86_64_LA57, 0, true, 0, 0xfffffffffffff},
      {&kArm64_4K_39, 0x8000000, true, 0x8000000000, 0xbfffffffff},
      {&kArm64_4K_39, 0x8000000, false, 0, 0xffffffffffff},
      {&kArm64_4K_48, 0x40000, true, 0x40000000, 0x40000000 + (uint64_t{1} << 47) - 1},
  };
  for (const Row& r : rows) {
    const PhysRange got = mhp_get_pluggable_range(*r.arch, Pfn(r.memstart_pfn), r.need_mapping);
    EXPECT_EQ(got.start.value(), r.start) << r.arch->name << " " << r.need_mapping;
    EXPECT_EQ(got.last.value(), r.last) << r.arch->name << " " << r.need_mapping;
  }
  KernelLog log;
  EXPECT_TRUE(mhp_range_allowed(kArm64_4K_39, Pfn(0x8000000), PhysAddr(0xbff0000000), 256 << 20, true, log));
  auto bad = mhp_range_allowed(kArm64_4K_39, Pfn(0x8000000), PhysAddr(0xfffff0000000), 256 << 20, true, log);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "Hotplug memory [0xfffff0000000-0x1000000000000] exceeds maximum addressable range "
            "[0x8000000000-0xbfffffffff]");
  EXPECT_TRUE(mhp_range_allowed(kArm64_4K_39, Pfn(0x8000000), PhysAddr(0xfffff0000000), 256 << 20, false, log));
  EXPECT_FALSE(mhp_range_allowed(kX86_64, Pfn(0), PhysAddr(0x1000), 0, true, log));
}

// Scenario: spec §10 A's pgmap arithmetic. Expect: pfn_first 0x144200 (base + reserve 2 + free
// 510); pfn_len 3584 base pages, or 7 units of 2 MiB; the reserve pfns are not "pgmap valid".
TEST(DevPagemapPfns, spec_example_a) {
  DevPagemap p;
  p.ranges = {PhysRange{PhysAddr(0x144000000), PhysAddr(0x144ffffff)}};
  p.flags = PGMAP_ALTMAP_VALID;
  p.altmap.base_pfn = Pfn(0x144000);
  p.altmap.reserve = NrPages(2);
  p.altmap.free = NrPages(510);
  EXPECT_EQ(p.pfn_first(kX86_64, 0).value(), 0x144200u);
  EXPECT_EQ(p.range_end_pfn(kX86_64, 0).value(), 0x145000u);
  EXPECT_EQ(p.pfn_len(kX86_64, 0), 3584u);
  p.vmemmap_shift = 9;
  EXPECT_EQ(p.pfn_len(kX86_64, 0), 7u);
  EXPECT_FALSE(p.pfn_valid_in(kX86_64, Pfn(0x144001)));
  EXPECT_FALSE(p.pfn_valid_in(kX86_64, Pfn(0x1441ff)));
  EXPECT_TRUE(p.pfn_valid_in(kX86_64, Pfn(0x144200)));
  EXPECT_FALSE(p.pfn_valid_in(kX86_64, Pfn(0x145000)));
}

// Scenario: vmemmap_can_optimize() on each profile. Expect: x86 only, no altmap, units above
// 128 pages (two vmemmap pages of descriptors).
TEST(VmemmapCanOptimize, rule) {
  VmemAltmap altmap{};
  EXPECT_FALSE(vmemmap_can_optimize(kX86_64, nullptr, NrPages(128)));
  EXPECT_TRUE(vmemmap_can_optimize(kX86_64, nullptr, NrPages(256)));
  EXPECT_TRUE(vmemmap_can_optimize(kX86_64_LA57, nullptr, NrPages(uint64_t{1} << 18)));
  EXPECT_FALSE(vmemmap_can_optimize(kX86_64, &altmap, NrPages(512)));
  EXPECT_FALSE(vmemmap_can_optimize(kArm64_4K_48, nullptr, NrPages(512)));
}

}  // namespace
}  // namespace sparsemem
