// Tests for include/sparsemem/memory_block.h: the block registry, online-type and policy parsing,
// memory groups, the notifier chain, and zone choice / valid_zones as table-driven pure functions.
#include "sparsemem/memory_block.h"

#include <gtest/gtest.h>

namespace sparsemem {
namespace {

constexpr uint64_t kBlockPages = 32768;  // x86 128 MiB blocks

// Scenario: a registry sized for x86 4-level (2^19 section-sized blocks) holding 131072 blocks.
// Expect: lookup by id and by any pfn of a block finds it; ids outside the table are -ERANGE; a
// second insert is -EEXIST; erase frees the slot; iteration is in ascending id order.
TEST(MemoryBlockRegistry, insert_find_erase_iterate) {
  MemoryBlockRegistry reg;
  reg.reset(uint64_t{1} << 19, NrPages(kBlockPages));
  for (uint64_t id = 0; id < 131072; ++id) {
    MemoryBlock b;
    b.id = BlockId(id * 3 % 262144);
    ASSERT_TRUE(reg.insert(b)) << id;
  }
  EXPECT_EQ(reg.size(), 131072u);
  ASSERT_NE(reg.find(BlockId(3)), nullptr);
  EXPECT_EQ(reg.find(BlockId(3))->id.value(), 3u);
  EXPECT_EQ(reg.find(BlockId(4)), nullptr);
  EXPECT_EQ(reg.find_by_pfn(Pfn(3 * kBlockPages + 12345))->id.value(), 3u);
  EXPECT_EQ(reg.block_id_of(Pfn(0x180000)).value(), 48u);
  EXPECT_EQ(reg.block_start_pfn(BlockId(48)).value(), 0x180000u);
  MemoryBlock dup;
  dup.id = BlockId(3);
  EXPECT_EQ(reg.insert(dup).error().code, Errno::Exist);
  MemoryBlock far;
  far.id = BlockId(uint64_t{1} << 19);
  EXPECT_EQ(reg.insert(far).error().code, Errno::Range);
  EXPECT_EQ(reg.find(BlockId(uint64_t{1} << 40)), nullptr);
  EXPECT_TRUE(reg.erase(BlockId(3)));
  EXPECT_FALSE(reg.erase(BlockId(3)));
  EXPECT_EQ(reg.find(BlockId(3)), nullptr);
  uint64_t prev = 0, n = 0;
  bool ordered = true;
  reg.for_each([&](const MemoryBlock& b) {
    ordered &= n == 0 || b.id.value() > prev;
    prev = b.id.value();
    ++n;
  });
  EXPECT_TRUE(ordered);
  EXPECT_EQ(n, 131071u);
  InvariantReport r;
  reg.check_invariants(r);
  EXPECT_TRUE(r.ok()) << r.to_string();
}

// Scenario: the strings userspace writes to memoryN/state and auto_online_blocks (trace f
// garbage_state_writes and auto_online_blocks_writes). Expect: exact names with at most one trailing
// newline; "ONLINE", "online " (trailing blank), "" and "garbage" are refused.
TEST(MemoryBlockNames, online_type_parsing) {
  struct Row {
    const char* text;
    std::optional<OnlineType> want;
  };
  const Row rows[] = {
      {"online", OnlineType::Online},        {"online\n", OnlineType::Online},
      {"online_kernel\n", OnlineType::OnlineKernel}, {"online_movable", OnlineType::OnlineMovable},
      {"offline\n", OnlineType::Offline},    {"ONLINE\n", std::nullopt},
      {"online \n", std::nullopt},           {"\n", std::nullopt},
      {"", std::nullopt},                    {"garbage\n", std::nullopt},
      {"online\n\n", std::nullopt},          {"foo\n", std::nullopt},
  };
  for (const Row& r : rows) EXPECT_EQ(parse_online_type(r.text), r.want) << '"' << r.text << '"';
  EXPECT_STREQ(online_type_name(OnlineType::OnlineMovable), "online_movable");
  EXPECT_STREQ(memory_block_state_name(MemoryBlockState::GoingOffline), "going-offline");
  EXPECT_EQ(parse_online_policy("auto-movable\n"), OnlinePolicy::AutoMovable);
  EXPECT_EQ(parse_online_policy("contig-zones"), OnlinePolicy::ContigZones);
  EXPECT_EQ(parse_online_policy("auto_movable"), std::nullopt);
  EXPECT_STREQ(online_policy_name(OnlinePolicy::AutoMovable), "auto-movable");
}

// Scenario: memory group registration as the ACPI (static) and virtio-mem (dynamic) drivers do it.
// Expect: -EINVAL for max_pages 0, a unit that is not a power of two or smaller than a block, an
// impossible node; ids are the lowest free; unregister is -EINVAL unknown, -EBUSY with blocks.
TEST(MemoryGroups, register_and_unregister) {
  MemoryGroups g;
  EXPECT_EQ(g.register_static(0, NrPages(0)).error().code, Errno::Inval);
  EXPECT_EQ(g.register_static(1024, NrPages(1)).error().code, Errno::Inval);
  EXPECT_EQ(g.register_dynamic(0, NrPages(3 * kBlockPages), NrPages(kBlockPages)).error().code, Errno::Inval);
  EXPECT_EQ(g.register_dynamic(0, NrPages(kBlockPages / 2), NrPages(kBlockPages)).error().code, Errno::Inval);
  EXPECT_EQ(g.register_static(0, NrPages(262144))->value(), 0u);
  EXPECT_EQ(g.register_dynamic(1, NrPages(4 * kBlockPages), NrPages(kBlockPages))->value(), 1u);
  EXPECT_EQ(g.register_static(0, NrPages(1))->value(), 2u);
  ASSERT_TRUE(g.unregister(MemoryGroupId(1)));
  EXPECT_EQ(g.register_static(0, NrPages(1))->value(), 1u);
  EXPECT_EQ(g.unregister(MemoryGroupId(7)).error().code, Errno::Inval);
  g.find(MemoryGroupId(0))->nr_blocks = 2;
  EXPECT_EQ(g.unregister(MemoryGroupId(0)).error().code, Errno::Busy);
  EXPECT_TRUE(g.find(MemoryGroupId(1))->nid == 0 && !g.find(MemoryGroupId(1))->is_dynamic);
}

// Scenario: three notifiers of priorities 0, 5 and 5 (registration order a, b, c), one stopping the
// walk. Expect: calls in descending priority, equal priorities in registration order; a stop value
// ends the walk and is the result; notifier_to_errno maps NOTIFY_BAD to -EPERM and an errno veto
// back to its errno; NOTIFY_OK and NOTIFY_DONE to 0.
TEST(MemoryNotifierChain, order_stop_and_errno) {
  MemoryNotifierChain chain;
  std::string order;
  chain.add([&](MemoryAction, const MemoryNotify&) { order += 'a'; return NOTIFY_OK; }, 0);
  const NotifierId b = chain.add([&](MemoryAction, const MemoryNotify&) { order += 'b'; return NOTIFY_OK; }, 5);
  chain.add([&](MemoryAction a, const MemoryNotify&) {
    order += 'c';
    return a == MemoryAction::GoingOffline ? notifier_from_errno(-16) : NOTIFY_DONE;
  }, 5);
  EXPECT_EQ(notifier_to_errno(chain.call(MemoryAction::GoingOnline, {})), 0);
  EXPECT_EQ(order, "bca");
  order.clear();
  EXPECT_EQ(notifier_to_errno(chain.call(MemoryAction::GoingOffline, {})), -16);
  EXPECT_EQ(order, "bc");
  EXPECT_TRUE(chain.remove(b));
  EXPECT_EQ(chain.size(), 2u);
  EXPECT_EQ(notifier_to_errno(NOTIFY_BAD), -1);
  EXPECT_EQ(notifier_to_errno(NOTIFY_OK), 0);
  EXPECT_EQ(notifier_to_errno(NOTIFY_DONE), 0);
  EXPECT_EQ(notifier_to_errno(NOTIFY_STOP_MASK | NOTIFY_OK), 0);
  EXPECT_EQ(notifier_from_errno(0), NOTIFY_OK);
}

// ---- Zone choice -------------------------------------------------------------------------------

// A node with the given spans [start, end) and present/present_early counts per zone.
struct ZoneSpec {
  ZoneType zone;
  uint64_t start, end, present, early;
};
Node make_node(unsigned nid, std::initializer_list<ZoneSpec> zones) {
  Node n = make_empty_node(nid);
  for (const ZoneSpec& z : zones) {
    Zone& zone = n.zone(z.zone);
    zone.zone_start_pfn = Pfn(z.start);
    zone.spanned_pages = NrPages(z.end - z.start);
    zone.present_pages = NrPages(z.present);
    zone.present_early_pages = NrPages(z.early);
  }
  n.online = true;
  return n;
}

// The boot zones of the oracle's pc machine (trace a_baseline): DMA [1, 0x1000), DMA32 [0x1000,
// 0x100000), Normal [0x100000, 0x144000), with the trace's present counts.
Node pc_node0() {
  return make_node(0, {{ZoneType::DMA, 0x1, 0x1000, 3998, 3998},
                       {ZoneType::DMA32, 0x1000, 0x100000, 782303, 782303},
                       {ZoneType::Normal, 0x100000, 0x144000, 278528, 278528}});
}

struct Choice {
  std::vector<Node> nodes;
  MemoryGroups groups;
  MemoryHotplugConfig config;
  std::map<uint64_t, ZoneType> online_sections;  // pfn -> zone, for the dynamic-group scan

  ZoneChoiceContext ctx() const {
    return ZoneChoiceContext{nodes, groups, config, NrPages(kBlockPages), [this](Pfn pfn) -> std::optional<ZoneType> {
                               auto it = online_sections.find(pfn.value());
                               if (it == online_sections.end()) return std::nullopt;
                               return it->second;
                             }};
  }
};

// Scenario: contig-zones valid_zones for the blocks of traces b and f. Expect: "Normal Movable"
// beyond every zone, "Movable Normal" inside Movable's span only, "Normal Movable" inside Normal's
// span, "DMA32 Movable" for a DMA32 boot block, kernel when both kernel and Movable intersect;
// under movable_node Movable first unless only the kernel zone intersects.
TEST(ZoneChoice, contig_zones_valid_zones) {
  Choice c;
  c.nodes.push_back(pc_node0());
  const PfnRange b48{Pfn(0x180000), NrPages(kBlockPages)};
  EXPECT_EQ(valid_zones_offline(c.ctx(), 0, nullptr, b48.start, b48.nr), "Normal Movable");
  EXPECT_EQ(valid_zones_offline(c.ctx(), 0, nullptr, Pfn(0x8000), NrPages(kBlockPages)), "DMA32 Movable");
  // Trace b step 4: Normal [0x100000, 0x1a8000), Movable [0x180000, 0x1b8000).
  Zone& normal = c.nodes[0].zone(ZoneType::Normal);
  normal.spanned_pages = NrPages(0x1a8000 - 0x100000);
  Zone& movable = c.nodes[0].zone(ZoneType::Movable);
  movable.zone_start_pfn = Pfn(0x180000);
  movable.spanned_pages = NrPages(0x38000);
  movable.present_pages = NrPages(98304);
  EXPECT_EQ(valid_zones_offline(c.ctx(), 0, nullptr, Pfn(0x1a8000), NrPages(kBlockPages)), "Movable Normal");
  EXPECT_EQ(valid_zones_offline(c.ctx(), 0, nullptr, Pfn(0x188000), NrPages(kBlockPages)), "Normal Movable");
  EXPECT_EQ(zone_for_pfn_range(c.ctx(), OnlineType::Online, 0, nullptr, Pfn(0x188000), NrPages(kBlockPages)),
            ZoneType::Normal);
  EXPECT_EQ(zone_for_pfn_range(c.ctx(), OnlineType::OnlineKernel, 0, nullptr, Pfn(0x1a8000), NrPages(kBlockPages)),
            ZoneType::Normal);
  c.config.movable_node = true;
  EXPECT_EQ(valid_zones_offline(c.ctx(), 0, nullptr, Pfn(0x1c0000), NrPages(kBlockPages)), "Movable Normal");
  EXPECT_EQ(valid_zones_offline(c.ctx(), 0, nullptr, Pfn(0x188000), NrPages(kBlockPages)), "Movable Normal");
  EXPECT_EQ(valid_zones_offline(c.ctx(), 0, nullptr, Pfn(0x1a8000), NrPages(kBlockPages)), "Movable Normal");
  EXPECT_EQ(valid_zones_offline(c.ctx(), 0, nullptr, Pfn(0x140000), NrPages(kBlockPages)), "Normal Movable");
}

// Scenario: auto-movable (ratio 301%) on the pc node, kernel early pages 3998 + 782303 + 278528 =
// 1064829, so at most 301 * 1064829 / 100 = 3205135 pages may be MOVABLE (trace b2's limit).
// Expect: a static group of 2 GiB goes Movable; one of exactly 3205135 pages too, one page more
// goes Normal; a group that already has kernel pages goes Normal; ratio 0 goes Normal; no group and
// a single block: Movable.
TEST(ZoneChoice, auto_movable_static_groups) {
  Choice c;
  c.nodes.push_back(pc_node0());
  c.config.online_policy = OnlinePolicy::AutoMovable;
  const Pfn start(0x180000);
  const NrPages n(kBlockPages);
  const MemoryGroupId small = *c.groups.register_static(0, NrPages(524288));
  const MemoryGroupId exact = *c.groups.register_static(0, NrPages(3205135));
  const MemoryGroupId over = *c.groups.register_static(0, NrPages(3205136));
  auto zone = [&](std::optional<MemoryGroupId> g) {
    return zone_for_pfn_range(c.ctx(), OnlineType::Online, 0, g ? c.groups.find(*g) : nullptr, start, n);
  };
  EXPECT_EQ(zone(small), ZoneType::Movable);
  EXPECT_EQ(zone(exact), ZoneType::Movable);
  EXPECT_EQ(zone(over), ZoneType::Normal);
  EXPECT_EQ(zone(std::nullopt), ZoneType::Movable);
  EXPECT_EQ(valid_zones_offline(c.ctx(), 0, c.groups.find(small), start, n), "Movable Normal");
  // Movable memory already online counts against the ratio; the group's own movable pages do not.
  c.nodes[0].zone(ZoneType::Movable).present_pages = NrPages(3205135 - 1000);
  c.nodes[0].zone(ZoneType::Movable).spanned_pages = NrPages(3205135);
  c.nodes[0].zone(ZoneType::Movable).zone_start_pfn = Pfn(0x200000);
  EXPECT_EQ(zone(small), ZoneType::Normal);
  c.groups.find(small)->present_movable_pages = NrPages(524288 - 500);
  EXPECT_EQ(zone(small), ZoneType::Movable);
  c.groups.find(small)->present_kernel_pages = NrPages(kBlockPages);
  EXPECT_EQ(zone(small), ZoneType::Normal);
  c.config.auto_movable_ratio = 0;
  EXPECT_EQ(zone(std::nullopt), ZoneType::Normal);
}

// Scenario: auto-movable on a second node without any kernel memory. Expect: with numa_aware (the
// default) node 1 cannot take MOVABLE memory (its own kernel early pages are 0), without it the
// system-wide ratio decides and allows it.
TEST(ZoneChoice, auto_movable_numa_aware) {
  Choice c;
  c.nodes.push_back(pc_node0());
  c.nodes.push_back(make_empty_node(1));
  c.config.online_policy = OnlinePolicy::AutoMovable;
  const Pfn start(0x400000);
  const NrPages n(kBlockPages);
  EXPECT_EQ(zone_for_pfn_range(c.ctx(), OnlineType::Online, 1, nullptr, start, n), ZoneType::Normal);
  c.config.auto_movable_numa_aware = false;
  EXPECT_EQ(zone_for_pfn_range(c.ctx(), OnlineType::Online, 1, nullptr, start, n), ZoneType::Movable);
}

// Scenario: a dynamic group (virtio-mem) with a unit of 4 blocks. Expect: a block whose unit
// already has an online Normal section goes Normal; with only Movable sections online the unit's
// remaining pages are checked against the ratio (Movable); another dynamic group's MOVABLE pages
// need kernel early pages (present_movable * 100 / ratio) that this group cannot use, so a large
// enough one forces Normal.
TEST(ZoneChoice, auto_movable_dynamic_groups) {
  Choice c;
  c.nodes.push_back(pc_node0());
  c.config.online_policy = OnlinePolicy::AutoMovable;
  const MemoryGroupId dyn = *c.groups.register_dynamic(0, NrPages(4 * kBlockPages), NrPages(kBlockPages));
  const Pfn unit(0x400000);
  const NrPages n(kBlockPages);
  auto zone = [&](Pfn pfn) { return zone_for_pfn_range(c.ctx(), OnlineType::Online, 0, c.groups.find(dyn), pfn, n); };
  EXPECT_EQ(zone(unit + NrPages(kBlockPages)), ZoneType::Movable);
  c.online_sections[unit.value()] = ZoneType::Movable;
  EXPECT_EQ(zone(unit + NrPages(kBlockPages)), ZoneType::Movable);
  c.online_sections[unit.value() + 2 * kBlockPages] = ZoneType::Normal;
  EXPECT_EQ(zone(unit + NrPages(kBlockPages)), ZoneType::Normal);
  c.online_sections.clear();
  // The other group's 3205135 movable pages need 1064829 kernel early pages: nothing is left.
  const MemoryGroupId other = *c.groups.register_dynamic(0, NrPages(4 * kBlockPages), NrPages(kBlockPages));
  c.groups.find(other)->present_movable_pages = NrPages(3205135);
  c.nodes[0].zone(ZoneType::Movable).present_pages = NrPages(3205135);
  c.nodes[0].zone(ZoneType::Movable).spanned_pages = NrPages(3205135);
  c.nodes[0].zone(ZoneType::Movable).zone_start_pfn = Pfn(0x1000000);
  EXPECT_EQ(zone(unit), ZoneType::Normal);
  // Kernel pages of the other group lower its requirement again.
  c.groups.find(other)->present_kernel_pages = NrPages(600000);
  EXPECT_EQ(zone(unit), ZoneType::Movable);
}

// Scenario: default_kernel_zone_for_pfn on the pc node. Expect: DMA for a range touching pfn 1,
// DMA32 for one inside the first 4 GiB, Normal above.
TEST(ZoneChoice, default_kernel_zone) {
  const Node n = pc_node0();
  EXPECT_EQ(default_kernel_zone_for_pfn(n, Pfn(0), NrPages(kBlockPages)), ZoneType::DMA);
  EXPECT_EQ(default_kernel_zone_for_pfn(n, Pfn(0x8000), NrPages(kBlockPages)), ZoneType::DMA32);
  EXPECT_EQ(default_kernel_zone_for_pfn(n, Pfn(0x108000), NrPages(kBlockPages)), ZoneType::Normal);
  EXPECT_EQ(default_kernel_zone_for_pfn(n, Pfn(0x1000000), NrPages(kBlockPages)), ZoneType::Normal);
}

}  // namespace
}  // namespace sparsemem
