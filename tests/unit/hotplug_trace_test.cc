// Tests for the hotplug operations of machine.h against the Linux 6.1 traces b, b2, b3, c, c2 and f:
// each step replayed through the API and compared with what the kernel showed.
#include <gtest/gtest.h>

#include "support/hotplug.h"
#include "support/machines.h"

namespace sparsemem {
namespace {
using testing::HotplugReplay;
using testing::hex;

constexpr uint64_t KPF_LRU = uint64_t{1} << 5;

// The kernel's allocations the trace shows at step 0, recreated as tagged pages: LRU pages become
// movable pages (offlining must migrate them), pages without any flag unmovable ones. The boot's own
// allocations (the vmemmap boot buffer, the first page-table pages of ZONE_NORMAL) are modelled by
// the platform boot (BootReservations), so they are in use already and skipped here.
std::vector<uint64_t> recreate_kernel_pages(HotplugReplay& r, const nlohmann::json& trace) {
  std::vector<uint64_t> tags;
  auto take = [&](uint64_t pfn, Migratability kind) {
    if (r.m().page_of_tag(pfn)) return;
    const Page* p = r.m().pfn_to_online_page(Pfn(pfn));
    if (!p) return;
    if (p->zone() == ZoneType::Movable) kind = Migratability::Movable;
    if (r.m().alloc_page_at(Pfn(pfn), kind, pfn)) tags.push_back(pfn);
  };
  for (const auto& k : trace["steps"][0]["snapshot"]["kpageflags"]) {
    if (!k["flags"].is_string() || k["flags"] == "EOF" || k["flags"].get<std::string>().rfind("0x", 0) != 0) continue;
    const uint64_t flags = hex(k["flags"]);
    if (flags & KPF_LRU) take(hex(k["pfn"]), Migratability::Movable);
    if (flags == 0) take(hex(k["pfn"]), Migratability::Unmovable);
  }
  return tags;
}

struct Baseline {
  std::map<std::pair<unsigned, ZoneType>, int64_t> managed;
  int64_t memtotal_kb = 0;
};

Baseline trace_baseline(const nlohmann::json& snap) {
  Baseline b;
  for (const auto& z : snap["zones"])
    b.managed[{z["node"].get<unsigned>(), testing::zone_from_name(z["zone"])}] = z["managed"].get<int64_t>();
  b.memtotal_kb = snap["meminfo"]["MemTotal"].get<int64_t>();
  return b;
}

Baseline model_baseline(const Machine& m) {
  Baseline b;
  for (const Node& n : m.nodes())
    for (const Zone& z : n.zones) b.managed[{n.nid, z.type}] = static_cast<int64_t>(z.managed_pages.value());
  b.memtotal_kb = static_cast<int64_t>(m.totalram_pages().value() * 4);
  return b;
}

// Compares the model with one trace snapshot: blocks (id, state, valid_zones), zone spans and
// present counts exactly, managed and MemTotal as changes since step 0, /proc/iomem, the
// NOPAGE/EOF/page class of each sampled kpageflags pfn, and the hotplug log lines of the step.
void expect_snapshot(const Machine& m, const nlohmann::json& snap, const Baseline& trace0, const Baseline& model0,
                     const std::vector<std::string>& model_log) {
  std::vector<std::string> want, got;
  for (const auto& b : snap["memory_blocks"])
    want.push_back(fmt::format("{} {} {}", b["id"].get<uint64_t>(), b["state"].get<std::string>(),
                               b["valid_zones"].get<std::string>()));
  m.memory_blocks().for_each([&](const MemoryBlock& b) {
    got.push_back(fmt::format("{} {} {}", b.id.value(), memory_block_state_name(b.state), *m.valid_zones(b.id)));
  });
  EXPECT_EQ(got, want) << "memory blocks";

  const Baseline now = model_baseline(m);
  for (const auto& z : snap["zones"]) {
    const unsigned nid = z["node"];
    const ZoneType zt = testing::zone_from_name(z["zone"]);
    SCOPED_TRACE(fmt::format("node {} zone {}", nid, zone_name(zt)));
    ASSERT_LT(nid, m.nodes().size());
    const Zone& zone = m.nodes()[nid].zone(zt);
    EXPECT_EQ(zone.spanned_pages.value(), z["spanned"].get<uint64_t>());
    EXPECT_EQ(zone.present_pages.value(), z["present"].get<uint64_t>());
    if (!z["start_pfn"].is_null()) EXPECT_EQ(zone.zone_start_pfn.value(), z["start_pfn"].get<uint64_t>());
    EXPECT_EQ(now.managed.at({nid, zt}) - model0.managed.at({nid, zt}),
              z["managed"].get<int64_t>() - trace0.managed.at({nid, zt}));
  }
  EXPECT_EQ(now.memtotal_kb - model0.memtotal_kb, snap["meminfo"]["MemTotal"].get<int64_t>() - trace0.memtotal_kb);

  std::string iomem;
  for (const auto& l : snap["iomem_raw"])
    if (!l.get<std::string>().empty()) iomem += l.get<std::string>() + "\n";
  EXPECT_EQ(m.iomem().render(), iomem);

  for (const auto& k : snap["kpageflags"]) {
    if (!k["flags"].is_string()) continue;
    const uint64_t pfn = hex(k["pfn"]);
    const std::string f = k["flags"];
    auto read = read_kpage_file(m, KpageFile::Flags, pfn * 8, 8);
    ASSERT_TRUE(read) << read.error().message;
    if (f == "EOF") {
      EXPECT_TRUE(read->empty()) << "pfn " << std::hex << pfn << " should be EOF";
      continue;
    }
    ASSERT_EQ(read->size(), 1u) << "pfn " << std::hex << pfn << " reads EOF";
    if (hex(k["flags"]) == KPF_NOPAGE_VALUE)
      EXPECT_EQ(read->front(), KPF_NOPAGE_VALUE) << "pfn " << std::hex << pfn;
    else
      EXPECT_NE(read->front(), KPF_NOPAGE_VALUE) << "pfn " << std::hex << pfn;
  }

  std::vector<std::string> trace_log;
  for (const auto& l : snap["dmesg"]) trace_log.push_back(l);
  EXPECT_EQ(testing::hotplug_log_lines(model_log), testing::hotplug_log_lines(trace_log)) << "log lines";
}

std::vector<std::string> log_since(const Machine& m, size_t from) {
  std::vector<std::string> out;
  const std::vector<LogLine> lines = m.log().lines();
  for (size_t i = from; i < lines.size(); ++i) out.push_back(lines[i].text);
  return out;
}

void replay(const std::string& name) {
  const nlohmann::json t = testing::load_trace(name);
  HotplugReplay r(t);
  ASSERT_TRUE(r.ok());
  const std::vector<uint64_t> tags = recreate_kernel_pages(r, t);
  const Baseline trace0 = trace_baseline(t["steps"][0]["snapshot"]);
  const Baseline model0 = model_baseline(r.m());
  size_t log_pos = 0;
  unsigned handled = 0;
  for (const auto& step : t["steps"]) {
    SCOPED_TRACE(fmt::format("{} step {} {}", name, step["index"].get<int>(), step["name"].get<std::string>()));
    if (step.contains("host_actions"))
      for (const auto& a : step["host_actions"]) r.host(a["action"]);
    if (step["index"] != 0)
      for (const auto& c : step["commands"]) {
        const std::string cmd = c["cmd"];
        const std::optional<testing::CommandResult> res = r.run(cmd);
        if (!res) continue;
        ++handled;
        SCOPED_TRACE(cmd);
        EXPECT_EQ(res->rc, c["rc"].get<int>());
        EXPECT_EQ(res->out, testing::split_lines(c["stdout"]));
        EXPECT_EQ(res->err, testing::split_lines(c["stderr"]));
      }
    expect_snapshot(r.m(), step["snapshot"], trace0, model0, log_since(r.m(), log_pos));
    log_pos = r.m().log().size();
    testing::expect_clean(r.m());
  }
  EXPECT_GT(handled, 0u);
  // No content tag is lost: every recreated kernel page still exists somewhere online (the ones in
  // removed memory were migrated away before the removal).
  for (uint64_t tag : tags) {
    const std::optional<Pfn> pfn = r.m().page_of_tag(tag);
    ASSERT_TRUE(pfn) << "tag " << std::hex << tag;
    EXPECT_NE(r.m().pfn_to_online_page(*pfn), nullptr);
  }
}

// Scenario: trace b — a 1 GiB DIMM cold-plugged at 0x180000000 stays offline (blocks 48..55), then
// online_movable 48 49, online_kernel 50 51, online 52, online_movable 54 (a gap), offline 49, 48, 50,
// online 48, offline 48..55. Expect: every command's result, every block state and valid_zones
// string, zone spans/present and managed deltas, iomem and kpageflags classes as recorded.
TEST(HotplugTrace, b_dimm_coldplug) { replay("b_dimm_coldplug"); }

// Scenario: trace b2 — auto-online with online_policy=auto-movable: two cold DIMMs (2 GiB, 1 GiB)
// and a runtime 4 GiB DIMM go Movable, a 512 MiB one online_kernel, another online_movable.
// Expect: the recorded zones of every block and the zone counters.
TEST(HotplugTrace, b2_autoonline_policies) { replay("b2_autoonline_policies"); }

// Scenario: trace b3 — memmap_on_memory=1: the 128 MiB DIMM carries its own memmap (512 pages),
// the 1 GiB one does not; offline, online_kernel and eject of the 128 MiB block.
// Expect: managed = present - 512 on the block, "Offlined Pages 32256", the zone start moving
// past the vmemmap pages, and the recorded blocks and iomem.
TEST(HotplugTrace, b3_memmap_on_memory) { replay("b3_memmap_on_memory"); }

// Scenario: trace c — two cold DIMMs onlined movable at boot; offline dimm1's blocks and eject it,
// then eject dimm2 while its blocks are online (the eject offlines them). Expect: the recorded
// blocks disappearing, iomem lines removed, Movable spans shrinking, kernel LRU pages migrated.
TEST(HotplugTrace, c_dimm_hotremove) { replay("c_dimm_hotremove"); }

// Scenario: trace c2 — DIMMs hot-added by QMP/HMP at runtime (one at an explicit address, two
// unaligned ones refused with "Block size [0x8000000] unaligned hotplug range"), onlined movable
// and kernel, then device_del of each. Expect: the recorded blocks, zones, iomem and log lines.
TEST(HotplugTrace, c2_qmp_hotplug) { replay("c2_qmp_hotplug"); }

// Scenario: trace f — error cases: re-online/re-offline (-EINVAL), garbage state strings, zone-
// spanning block 0, holes in blocks 23 and 40, unmovable pages in blocks 32 and 39 (-EBUSY),
// notifier error injection for MEM_GOING_ONLINE (-ENOMEM) and MEM_GOING_OFFLINE (-EBUSY), eject of
// a DIMM with online kernel blocks. Expect: every recorded errno and log line, state unchanged
// after each failure.
TEST(HotplugTrace, f_errors) { replay("f_errors"); }

}  // namespace
}  // namespace sparsemem
