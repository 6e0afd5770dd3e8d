// Tests for include/sparsemem/resource.h: the iomem tree against the oracle traces and spec §2.7, §3, §4.16, §6.1.
// Expected values come from the traces' /proc/iomem snapshots or are worked out by hand from the spec.
#include "sparsemem/resource.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace sparsemem {

// Readable gtest failure output for the result enums.
void PrintTo(RegionIntersect r, std::ostream* os) {
  static const char* const kNames[] = {"REGION_DISJOINT", "REGION_INTERSECTS", "REGION_MIXED"};
  *os << kNames[static_cast<int>(r)];
}
void PrintTo(AdjustOutcome o, std::ostream* os) {
  static const char* const kNames[] = {"Deleted", "TrimmedStart", "TrimmedEnd", "Split", "NotFound", "ChildInTheWay"};
  *os << kNames[static_cast<int>(o)];
}

namespace {

using nlohmann::json;

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t GiB = uint64_t{1} << 30;

json load_trace(const std::string& name) {
  std::ifstream in(std::string(SPM_TEST_DATA) + "/oracle/" + name + ".json");
  EXPECT_TRUE(in.good()) << name;
  return json::parse(in);
}

const json& snapshot(const json& trace, size_t step) { return trace.at("steps").at(step).at("snapshot"); }

std::vector<std::string> trace_iomem_lines(const json& trace, size_t step) {
  return snapshot(trace, step).at("iomem_raw").get<std::vector<std::string>>();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

uint64_t hex(const std::string& s) { return std::stoull(s, nullptr, 16); }

void expect_same_lines(const std::vector<std::string>& actual, const std::vector<std::string>& expected) {
  for (size_t i = 0; i < std::max(actual.size(), expected.size()); ++i) {
    SCOPED_TRACE("line " + std::to_string(i));
    EXPECT_EQ(i < actual.size() ? actual[i] : "<missing>", i < expected.size() ? expected[i] : "<extra>");
  }
}

void expect_render(const ResourceTree& t, const json& trace, size_t step) {
  SCOPED_TRACE("trace step " + std::to_string(step));
  expect_same_lines(split_lines(t.render()), trace_iomem_lines(trace, step));
}

void expect_invariants_ok(const ResourceTree& t) {
  InvariantReport r;
  t.check_invariants(r);
  EXPECT_TRUE(r.ok()) << r.to_string();
}

// Flags and desc a 6.1 x86 boot gives each firmware or platform resource (e820 marks entries
// below 1 MiB busy and leaves "Reserved" above it and persistent memory non-busy; host bridge
// windows and HPET are not busy; ROMs, APICs and the kernel image are). Test input, not expectation.
struct BootKind {
  ResourceFlags flags;
  IoresDesc desc;
};
BootKind boot_kind(const std::string& name, uint64_t start) {
  if (name == "System RAM" || name.rfind("Kernel ", 0) == 0)
    return {IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY, IoresDesc::None};
  if (name == "Reserved") return {start < MiB ? IORESOURCE_MEM | IORESOURCE_BUSY : IORESOURCE_MEM, IoresDesc::Reserved};
  if (name.rfind("PCI Bus", 0) == 0) return {IORESOURCE_MEM | IORESOURCE_WINDOW, IoresDesc::None};
  if (name == "HPET 0") return {IORESOURCE_MEM, IoresDesc::None};
  if (name == "Persistent Memory") return {IORESOURCE_MEM, IoresDesc::PersistentMemory};
  if (name == "Persistent Memory (legacy)") return {IORESOURCE_MEM, IoresDesc::PersistentMemoryLegacy};
  if (name.find("ROM") != std::string::npos)
    return {IORESOURCE_MEM | IORESOURCE_BUSY | IORESOURCE_READONLY, IoresDesc::None};
  return {IORESOURCE_MEM | IORESOURCE_BUSY, IoresDesc::None};
}

bool is_driver_region(const std::string& name) { return name.rfind("namespace", 0) == 0 || name.rfind("dax", 0) == 0; }

ResourceTree make_x86_tree(unsigned phys_bits = 40, const Behaviour& b = kLinux61, KernelLog* log = nullptr) {
  return ResourceTree(kX86_64, *iomem_root_end(kX86_64, phys_bits), b, log);
}

// Rebuild a step's structured iomem list in pre-order, each entry inserted under the entry it is
// listed under, skipping driver regions (namespaceX.Y, daxX.Y) that the tests request themselves.
// Returns name -> handle of the top-level and nested firmware entries.
std::map<std::string, ResourceId> insert_listed(ResourceTree& t, const json& trace, size_t step,
                                                bool skip_driver_regions) {
  std::map<std::string, ResourceId> ids;
  std::vector<ResourceId> at_depth{t.root()};
  for (const json& e : snapshot(trace, step).at("iomem")) {
    const std::string name = e.at("name");
    const unsigned depth = e.at("depth");
    if (skip_driver_regions && is_driver_region(name)) continue;
    const uint64_t start = hex(e.at("start")), end = hex(e.at("end"));
    at_depth.resize(depth + 1);
    const BootKind k = boot_kind(name, start);
    auto r = t.insert_resource(at_depth[depth], PhysAddr(start), PhysAddr(end), name, k.flags, k.desc);
    EXPECT_TRUE(r.has_value()) << name << ": " << (r ? "" : r.error().message);
    if (!r) continue;
    at_depth.push_back(*r);
    ids.emplace(name, *r);
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Boot layout

// Scenario: rebuild a_baseline's boot /proc/iomem the way a 6.1 x86 boot does: ROMs requested at
// the root first, the kernel image inserted at the root, then the e820 table from the trace's
// "BIOS-e820:" lines (after its "e820: update ... usable ==> reserved" line) and the PCI root bus
// windows from its "root bus resource [mem ...]" lines inserted at the root (adopting the ROM and
// the kernel image), the APICs and HPET inserted, and PNP0103:00 requested under the non-busy HPET.
// Expect: render() equals step 0's iomem_raw line by line.
TEST(IomemBoot, a_baseline_rebuilt_from_firmware_entries) {
  const json trace = load_trace("a_baseline");
  const json& snap = snapshot(trace, 0);

  struct E820 {
    uint64_t start, end;
    std::string type;
  };
  std::vector<E820> e820;
  std::vector<std::pair<uint64_t, uint64_t>> windows;
  const std::regex bios(R"(BIOS-e820: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] (\w+))");
  const std::regex update(R"(e820: update \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] usable ==> reserved)");
  const std::regex window(R"(pci_bus 0000:00: root bus resource \[mem 0x([0-9a-f]+)-0x([0-9a-f]+) window\])");
  for (const std::string& line : snap.at("dmesg").get<std::vector<std::string>>()) {
    std::smatch m;
    if (std::regex_search(line, m, bios)) {
      e820.push_back({hex(m[1]), hex(m[2]), m[3]});
    } else if (std::regex_search(line, m, update)) {
      // Split usable entries around the updated range, which becomes reserved.
      const uint64_t us = hex(m[1]), ue = hex(m[2]);
      std::vector<E820> out;
      for (const E820& x : e820) {
        if (x.type != "usable" || x.end < us || x.start > ue) {
          out.push_back(x);
          continue;
        }
        if (x.start < us) out.push_back({x.start, us - 1, "usable"});
        out.push_back({std::max(x.start, us), std::min(x.end, ue), "reserved"});
        if (x.end > ue) out.push_back({ue + 1, x.end, "usable"});
      }
      e820 = out;
    } else if (std::regex_search(line, m, window)) {
      windows.emplace_back(hex(m[1]), hex(m[2]));
    }
  }
  ASSERT_EQ(e820.size(), 9u);
  ASSERT_EQ(windows.size(), 3u);

  ResourceTree t = make_x86_tree();
  std::vector<json> platform;  // the listed entries that come from neither e820 nor the PCI windows
  for (const json& e : snap.at("iomem")) {
    const std::string name = e.at("name");
    if (name != "System RAM" && name != "Reserved" && name.rfind("PCI Bus", 0) != 0) platform.push_back(e);
  }
  auto add = [&](const json& e, auto how) {
    const std::string name = e.at("name");
    const uint64_t s = hex(e.at("start")), en = hex(e.at("end"));
    const BootKind k = boot_kind(name, s);
    Result<ResourceId> r = how == 0   ? t.request_resource(t.root(), PhysAddr(s), PhysAddr(en), name, k.flags, k.desc)
                           : how == 1 ? t.insert_resource(t.root(), PhysAddr(s), PhysAddr(en), name, k.flags, k.desc)
                                      : t.request_region(t.root(), PhysAddr(s), en - s + 1, name);
    ASSERT_TRUE(r.has_value()) << name << ": " << r.error().message;
  };
  for (const json& e : platform)  // probe_roms()
    if (e.at("name").get<std::string>().find("ROM") != std::string::npos) add(e, 0);
  for (const json& e : platform)  // kernel image
    if (e.at("name").get<std::string>().rfind("Kernel ", 0) == 0) add(e, 1);
  for (const E820& x : e820) {  // e820__reserve_resources()
    const std::string name = x.type == "usable" ? "System RAM" : "Reserved";
    const BootKind k = boot_kind(name, x.start);
    ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(x.start), PhysAddr(x.end), name, k.flags, k.desc).has_value());
  }
  for (auto [s, e] : windows)
    ASSERT_TRUE(
        t.insert_resource(t.root(), PhysAddr(s), PhysAddr(e), "PCI Bus 0000:00", IORESOURCE_MEM | IORESOURCE_WINDOW)
            .has_value());
  for (const json& e : platform) {
    const std::string name = e.at("name");
    if (name.find("ROM") == std::string::npos && name.rfind("Kernel ", 0) != 0 && name.rfind("PNP", 0) != 0) add(e, 1);
  }
  for (const json& e : platform)  // pnp system device reserving its range
    if (e.at("name").get<std::string>().rfind("PNP", 0) == 0) add(e, 2);

  expect_render(t, trace, 0);
  expect_invariants_ok(t);
  // PNP0103:00 landed under the non-busy HPET 0 and is busy itself (spec §2.7 request semantics).
  for (const IomemEntry& e : t.entries()) {
    if (e.resource.name != "HPET 0") continue;
    const auto kids = t.children_of(e.id);
    ASSERT_EQ(kids.size(), 1u);
    EXPECT_EQ(t.find(kids[0])->flags, IORESOURCE_MEM | IORESOURCE_BUSY);
  }
}

// Scenario: every recorded trace's boot layout, inserted entry by entry under the entry it is
// listed under. Expect: render() reproduces each step-0 iomem_raw exactly.
TEST(IomemBoot, every_trace_boot_layout_renders_exactly) {
  for (const char* name : {"a_baseline", "b2_autoonline_policies", "b3_memmap_on_memory", "b_dimm_coldplug",
                           "c2_qmp_hotplug", "c_dimm_hotremove", "d1_nvdimm_devdax", "d2_nvdimm_labelless",
                           "d3_pmem_in_early_section", "e_kmem", "f_errors"}) {
    SCOPED_TRACE(name);
    const json trace = load_trace(name);
    ResourceTree t = make_x86_tree();
    insert_listed(t, trace, 0, false);
    expect_render(t, trace, 0);
    expect_invariants_ok(t);
  }
}

// Scenario: the kernel inserts "System ROM" before the identical e820 "Reserved" range, and
// "Kernel code" before "System RAM". Expect: the later, identical or larger insert becomes the
// parent (f0000-fffff Reserved > System ROM; System RAM > Kernel code), as in every trace.
TEST(IomemBoot, insert_resource_adopts_identical_and_contained_siblings) {
  ResourceTree t = make_x86_tree();
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0xf0000), PhysAddr(0xfffff), "System ROM",
                                IORESOURCE_MEM | IORESOURCE_BUSY));
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0x1000000), PhysAddr(0x1e01d31), "Kernel code",
                                IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY));
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0x2000000), PhysAddr(0x28eafff), "Kernel rodata",
                                IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY));
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0xf0000), PhysAddr(0xfffff), "Reserved",
                                IORESOURCE_MEM | IORESOURCE_BUSY, IoresDesc::Reserved));
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0x100000), PhysAddr(0xbffdefff), "System RAM",
                                IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY));
  // Inserted after its container: lands inside the busy System RAM.
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0x2a00000), PhysAddr(0x2c4897f), "Kernel data",
                                IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY));
  expect_same_lines(split_lines(t.render()), {
                                                 "000f0000-000fffff : Reserved",
                                                 "  000f0000-000fffff : System ROM",
                                                 "00100000-bffdefff : System RAM",
                                                 "  01000000-01e01d31 : Kernel code",
                                                 "  02000000-028eafff : Kernel rodata",
                                                 "  02a00000-02c4897f : Kernel data",
                                             });
  expect_invariants_ok(t);
}

// Scenario: inserts that straddle an existing resource, leave the parent, or are malformed.
// Expect: -EBUSY for overlaps and out-of-parent ranges, -EINVAL for start > end, non-memory
// flags or an unknown parent; render() unchanged after each.
TEST(IomemBoot, failed_inserts_change_nothing) {
  const json trace = load_trace("a_baseline");
  ResourceTree t = make_x86_tree();
  insert_listed(t, trace, 0, false);
  const std::string before = t.render();
  auto expect_err = [&](Result<ResourceId> r, Errno e) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, e) << r.error().message;
    EXPECT_EQ(t.render(), before);
  };
  // Straddles the end of System RAM 100000000-143ffffff.
  expect_err(t.insert_resource(t.root(), PhysAddr(0x140000000), PhysAddr(0x17fffffff), "x", IORESOURCE_MEM),
             Errno::Busy);
  // Beyond the 40-bit root.
  expect_err(t.insert_resource(t.root(), PhysAddr(0xff00000000), PhysAddr(0x10000000000), "x", IORESOURCE_MEM),
             Errno::Busy);
  expect_err(t.request_resource(t.root(), PhysAddr(0x100000000), PhysAddr(0x1000fffff), "x", IORESOURCE_MEM),
             Errno::Busy);
  expect_err(t.insert_resource(t.root(), PhysAddr(0x2000), PhysAddr(0x1000), "x", IORESOURCE_MEM), Errno::Inval);
  expect_err(t.insert_resource(t.root(), PhysAddr(0x200000000), PhysAddr(0x2000fffff), "x", IORESOURCE_IO),
             Errno::Inval);
  expect_err(t.insert_resource(ResourceId(999999), PhysAddr(0x200000000), PhysAddr(0x2000fffff), "x", IORESOURCE_MEM),
             Errno::Inval);
  expect_invariants_ok(t);
}

// ---------------------------------------------------------------------------------------------
// /proc/iomem format

// Scenario: a chain nested seven deep and a resource with a null name. Expect (spec §6.1): two
// spaces per depth, capped at depth 5 (10 spaces) for deeper lines; "<BAD>" for the null name.
TEST(IomemRender, indent_capped_at_depth_five_and_bad_name) {
  ResourceTree t = make_x86_tree();
  ResourceId parent = t.root();
  for (uint64_t d = 0; d < 7; ++d) {
    auto r = t.insert_resource(parent, PhysAddr(0x10000000 + d * 0x1000), PhysAddr(0x1fffffff - d * 0x1000),
                               "d" + std::to_string(d), IORESOURCE_MEM);
    ASSERT_TRUE(r.has_value());
    parent = *r;
  }
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0x20000000), PhysAddr(0x20000fff), std::nullopt, IORESOURCE_MEM));
  expect_same_lines(split_lines(t.render()), {
                                                 "10000000-1fffffff : d0",
                                                 "  10001000-1fffefff : d1",
                                                 "    10002000-1fffdfff : d2",
                                                 "      10003000-1fffcfff : d3",
                                                 "        10004000-1fffbfff : d4",
                                                 "          10005000-1fffafff : d5",
                                                 "          10006000-1fff9fff : d6",
                                                 "20000000-20000fff : <BAD>",
                                             });
}

// Scenario: /proc/iomem read without CAP_SYS_ADMIN, and a root ending below 0x10000.
// Expect (spec §6.1): every address prints as 00000000-00000000; a small root pads to 4 digits.
TEST(IomemRender, unprivileged_reader_and_small_root) {
  ResourceTree t = make_x86_tree();
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0x100000000), PhysAddr(0x143ffffff), "System RAM",
                                IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY));
  EXPECT_EQ(t.render(IomemReader::Unprivileged), "00000000-00000000 : System RAM\n");
  EXPECT_EQ(t.render(), "100000000-143ffffff : System RAM\n");

  ResourceTree small(kX86_64, PhysAddr(0xffff));
  ASSERT_TRUE(small.insert_resource(small.root(), PhysAddr(0x60), PhysAddr(0x6f), "keyboard", IORESOURCE_MEM));
  EXPECT_EQ(small.render(), "0060-006f : keyboard\n");
}

// Scenario: iomem root ends for x86 (CPU phys bits) and arm64. Expect (spec §1.5): 2^bits - 1 on
// x86, the whole 64-bit space on arm64; 0 or more than 64 bits refused on x86 with -EINVAL.
TEST(IomemRender, iomem_root_end_per_arch) {
  EXPECT_EQ(iomem_root_end(kX86_64, 46)->value(), 0x3fffffffffffull);
  EXPECT_EQ(iomem_root_end(kX86_64, 40)->value(), 0xffffffffffull);
  EXPECT_EQ(iomem_root_end(kArm64_4K_48, 0)->value(), ~0ull);
  EXPECT_EQ(iomem_root_end(kX86_64, 0).error().code, Errno::Inval);
  EXPECT_EQ(iomem_root_end(kX86_64, 65).error().code, Errno::Inval);
}

// ---------------------------------------------------------------------------------------------
// Driver regions replayed from the traces

// Scenario: trace e_kmem: nd_pmem requests the whole namespace under "Persistent Memory"; then
// devdax (dax_pmem requests namespace0.0's metadata, device_dax requests dax0.0); then kmem
// requests 188000000-1bfffffff as "dax0.0", turns it into a non-busy SYSTEM_RAM container and
// registers "System RAM (kmem)" under it; then kmem is unbound (hot-remove releases the kmem
// RAM with release_mem_region_adjustable, remove_resource drops dax0.0) and device_dax rebinds;
// finally the namespace is destroyed.
// Expect: render() equals iomem_raw of steps 0, 1, 2, 6 and 10; the kmem resource is busy,
// driver-managed System RAM with the Persistent Memory desc inherited down the chain.
TEST(ResourceTree, e_kmem_devdax_kmem_and_back_match_trace) {
  const json trace = load_trace("e_kmem");
  ResourceTree t = make_x86_tree();
  insert_listed(t, trace, 0, true);

  auto ns = t.request_mem_region(PhysAddr(0x180000000), 0x37fdfffff - 0x180000000 + 1, "namespace0.0");
  ASSERT_TRUE(ns.has_value());
  expect_render(t, trace, 0);
  EXPECT_EQ(t.find(*ns)->desc, IoresDesc::PersistentMemory);
  EXPECT_TRUE(t.find(*ns)->flags.has(IORESOURCE_MEM | IORESOURCE_BUSY));

  ASSERT_TRUE(t.release_region(t.root(), PhysAddr(0x180000000), 0x37fdfffff - 0x180000000 + 1).has_value());
  ns = t.request_mem_region(PhysAddr(0x180000000), 2 * MiB, "namespace0.0");
  ASSERT_TRUE(ns.has_value());
  auto dax = t.request_mem_region(PhysAddr(0x180200000), 0x1bfffffff - 0x180200000 + 1, "dax0.0");
  ASSERT_TRUE(dax.has_value());
  expect_render(t, trace, 1);

  // kmem: device_dax released its region, kmem requests the block-aligned part.
  ASSERT_TRUE(t.release_resource(*dax).has_value());
  auto kdax = t.request_mem_region(PhysAddr(0x188000000), 0x1bfffffff - 0x188000000 + 1, "dax0.0");
  ASSERT_TRUE(kdax.has_value());
  ASSERT_TRUE(t.set_flags(*kdax, IORESOURCE_SYSTEM_RAM).has_value());
  auto kmem = t.request_region(t.root(), PhysAddr(0x188000000), 0x1bfffffff - 0x188000000 + 1, "System RAM (kmem)",
                               IORESOURCE_SYSTEM_RAM | IORESOURCE_SYSRAM_DRIVER_MANAGED);
  ASSERT_TRUE(kmem.has_value());
  expect_render(t, trace, 2);
  expect_invariants_ok(t);
  const Resource* k = t.find(*kmem);
  EXPECT_EQ(k->flags, IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY | IORESOURCE_SYSRAM_DRIVER_MANAGED);
  EXPECT_EQ(k->desc, IoresDesc::PersistentMemory);
  EXPECT_EQ(t.parent_of(*kmem), *kdax);

  AdjustResult adj = t.release_mem_region_adjustable(PhysAddr(0x188000000), 0x1bfffffff - 0x188000000 + 1);
  EXPECT_EQ(adj.outcome, AdjustOutcome::Deleted);
  EXPECT_EQ(t.find(*kmem), nullptr);
  ASSERT_TRUE(t.remove_resource(*kdax).has_value());
  dax = t.request_mem_region(PhysAddr(0x180200000), 0x1bfffffff - 0x180200000 + 1, "dax0.0");
  ASSERT_TRUE(dax.has_value());
  expect_render(t, trace, 6);

  ASSERT_TRUE(t.release_resource(*dax).has_value());
  ASSERT_TRUE(t.release_resource(*ns).has_value());
  expect_render(t, trace, 10);
  expect_invariants_ok(t);
}

// Scenario: trace d1: two 16 MiB devdax namespaces side by side, then the first reconfigured to
// fsdax (pmem requests the whole namespace), then everything destroyed.
// Expect: render() equals iomem_raw of steps 1, 2, 7, 8 and 10.
TEST(ResourceTree, d1_two_namespaces_and_fsdax_reconfig_match_trace) {
  const json trace = load_trace("d1_nvdimm_devdax");
  ResourceTree t = make_x86_tree();
  insert_listed(t, trace, 0, true);
  auto ns0 = t.request_mem_region(PhysAddr(0x180000000), 0x37fdfffff - 0x180000000 + 1, "namespace0.0");
  ASSERT_TRUE(ns0.has_value());
  expect_render(t, trace, 0);
  ASSERT_TRUE(t.release_resource(*ns0).has_value());
  expect_render(t, trace, 1);

  ns0 = t.request_mem_region(PhysAddr(0x180000000), 2 * MiB, "namespace0.0");
  auto dax0 = t.request_mem_region(PhysAddr(0x180200000), 14 * MiB, "dax0.0");
  ASSERT_TRUE(ns0 && dax0);
  expect_render(t, trace, 2);

  auto ns1 = t.request_mem_region(PhysAddr(0x181000000), 2 * MiB, "namespace0.1");
  auto dax1 = t.request_mem_region(PhysAddr(0x181200000), 14 * MiB, "dax0.1");
  ASSERT_TRUE(ns1 && dax1);
  expect_render(t, trace, 7);

  ASSERT_TRUE(t.release_resource(*dax0).has_value());
  ASSERT_TRUE(t.release_region(t.root(), PhysAddr(0x180000000), 2 * MiB).has_value());
  ns0 = t.request_mem_region(PhysAddr(0x180000000), 16 * MiB, "namespace0.0");
  ASSERT_TRUE(ns0.has_value());
  expect_render(t, trace, 8);

  for (ResourceId id : {*ns0, *ns1, *dax1}) ASSERT_TRUE(t.release_resource(id).has_value());
  expect_render(t, trace, 10);
  expect_invariants_ok(t);
}

// Scenario: requests that hit busy resources, straddle a non-busy container, leave the root, are
// empty or wrap. Expect (spec §2.7): -EBUSY each time and render() unchanged.
TEST(ResourceTree, failed_requests_are_ebusy_and_change_nothing) {
  const json trace = load_trace("e_kmem");
  ResourceTree t = make_x86_tree();
  insert_listed(t, trace, 0, false);
  const std::string before = t.render();
  auto expect_busy = [&](Result<ResourceId> r) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errno::Busy) << r.error().message;
    EXPECT_EQ(t.render(), before);
  };
  expect_busy(t.request_region(t.root(), PhysAddr(0x100000000), 128 * MiB, "System RAM", IORESOURCE_SYSTEM_RAM));
  // Inside Persistent Memory but on the busy namespace0.0.
  expect_busy(t.request_mem_region(PhysAddr(0x188000000), 128 * MiB, "dax0.0"));
  // Straddles the end of the non-busy Persistent Memory container.
  expect_busy(t.request_mem_region(PhysAddr(0x37f000000), 64 * MiB, "x"));
  expect_busy(t.request_mem_region(PhysAddr(0xfff0000000), 512 * MiB, "x"));
  expect_busy(t.request_mem_region(PhysAddr(0x400000000), 0, "x"));
  expect_busy(t.request_mem_region(PhysAddr(~0ull - 0xfff), 0x2000, "x"));
  EXPECT_EQ(t.request_mem_region(PhysAddr(0x400000000), 4096, "x").has_value(), true);
  expect_invariants_ok(t);
}

// Scenario: release and remove by handle, and by range. Expect: remove_resource moves children
// up into the removed resource's place; release_resource drops the whole subtree; stale handles,
// the root and a range with no exact busy resource give -EINVAL and change nothing, the latter
// logging "Trying to free nonexistent resource <%pa-%pa>".
TEST(ResourceTree, release_and_remove_by_handle_and_range) {
  KernelLog log;
  ResourceTree t = make_x86_tree(40, kLinux61, &log);
  auto pm = t.insert_resource(t.root(), PhysAddr(0x180000000), PhysAddr(0x37fdfffff), "Persistent Memory",
                              IORESOURCE_MEM, IoresDesc::PersistentMemory);
  auto ns = t.request_mem_region(PhysAddr(0x180000000), 2 * MiB, "namespace0.0");
  auto dax = t.request_mem_region(PhysAddr(0x180200000), 14 * MiB, "dax0.0");
  ASSERT_TRUE(pm && ns && dax);

  ASSERT_TRUE(t.remove_resource(*pm).has_value());
  expect_same_lines(split_lines(t.render()), {"180000000-1801fffff : namespace0.0", "180200000-180ffffff : dax0.0"});
  EXPECT_EQ(t.parent_of(*ns), t.root());
  EXPECT_EQ(t.remove_resource(*pm).error().code, Errno::Inval);
  EXPECT_EQ(t.release_resource(t.root()).error().code, Errno::Inval);

  const std::string before = t.render();
  auto r = t.release_region(t.root(), PhysAddr(0x180000000), 4 * MiB);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errno::Inval);
  EXPECT_EQ(t.render(), before);
  ASSERT_FALSE(log.lines().empty());
  EXPECT_EQ(log.lines().back().text, "Trying to free nonexistent resource <0x0000000180000000-0x00000001803fffff>");

  auto child = t.insert_resource(*dax, PhysAddr(0x180400000), PhysAddr(0x1805fffff), "child", IORESOURCE_MEM);
  ASSERT_TRUE(child.has_value());
  ASSERT_TRUE(t.release_resource(*dax).has_value());
  EXPECT_EQ(t.find(*child), nullptr);
  EXPECT_EQ(t.render(), "180000000-1801fffff : namespace0.0\n");
  EXPECT_EQ(t.size(), 1u);
  expect_invariants_ok(t);
}

// ---------------------------------------------------------------------------------------------
// Hot-remove: release_mem_region_adjustable

struct HotplugTree {
  ResourceTree t = make_x86_tree();
  ResourceId ram;  // hot-added 1 GiB at 6 GiB
  HotplugTree() {
    EXPECT_TRUE(t.insert_resource(t.root(), PhysAddr(0x100000000), PhysAddr(0x143ffffff), "System RAM",
                                  IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY));
    ram = *t.request_region(t.root(), PhysAddr(0x180000000), GiB, "System RAM", IORESOURCE_SYSTEM_RAM);
  }
};

// Scenario: remove the first, then the last, then a middle 128 MiB block of a hot-added 1 GiB
// System RAM resource 180000000-1bfffffff, then exactly one remaining part.
// Expect (spec §2.7): trim start, trim end, split into two "System RAM" siblings (the lower part
// keeps the handle), exact match deleted.
TEST(ResourceAdjust, trim_split_and_delete) {
  HotplugTree h;
  ResourceTree& t = h.t;
  EXPECT_EQ(t.release_mem_region_adjustable(PhysAddr(0x180000000), 128 * MiB).outcome, AdjustOutcome::TrimmedStart);
  EXPECT_EQ(t.release_mem_region_adjustable(PhysAddr(0x1b8000000), 128 * MiB).outcome, AdjustOutcome::TrimmedEnd);
  expect_same_lines(split_lines(t.render()), {"100000000-143ffffff : System RAM", "188000000-1b7ffffff : System RAM"});

  AdjustResult split = t.release_mem_region_adjustable(PhysAddr(0x190000000), 128 * MiB);
  EXPECT_EQ(split.outcome, AdjustOutcome::Split);
  ASSERT_TRUE(split.upper.has_value());
  expect_same_lines(split_lines(t.render()), {"100000000-143ffffff : System RAM", "188000000-18fffffff : System RAM",
                                              "198000000-1b7ffffff : System RAM"});
  EXPECT_EQ(t.find(h.ram)->end.value(), 0x18fffffffull);
  EXPECT_EQ(t.find(*split.upper)->start.value(), 0x198000000ull);
  EXPECT_EQ(t.find(*split.upper)->flags, t.find(h.ram)->flags);

  EXPECT_EQ(t.release_mem_region_adjustable(PhysAddr(0x198000000), 0x1b8000000 - 0x198000000).outcome,
            AdjustOutcome::Deleted);
  EXPECT_EQ(t.find(*split.upper), nullptr);
  expect_same_lines(split_lines(t.render()), {"100000000-143ffffff : System RAM", "188000000-18fffffff : System RAM"});
  expect_invariants_ok(t);
}

// Scenario: ranges no busy System RAM contains (a hole, a range straddling two resources, a busy
// non-System-RAM region), and a trim that would cut off a child.
// Expect: NotFound / ChildInTheWay, render() unchanged; the child case WARNs.
TEST(ResourceAdjust, not_found_and_child_in_the_way_change_nothing) {
  KernelLog log;
  ResourceTree t = make_x86_tree(40, kLinux61, &log);
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0x100000), PhysAddr(0xbffdefff), "System RAM",
                                IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY));
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0x1000000), PhysAddr(0x1e01d31), "Kernel code",
                                IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY));
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0x200000000), PhysAddr(0x20fffffff), "hmm",
                                IORESOURCE_MEM | IORESOURCE_BUSY));
  const std::string before = t.render();
  EXPECT_EQ(t.release_mem_region_adjustable(PhysAddr(0x100000000), 128 * MiB).outcome, AdjustOutcome::NotFound);
  EXPECT_EQ(t.release_mem_region_adjustable(PhysAddr(0xbf000000), 0x4000000).outcome, AdjustOutcome::NotFound);
  EXPECT_EQ(t.release_mem_region_adjustable(PhysAddr(0x200000000), 128 * MiB).outcome, AdjustOutcome::NotFound);
  const size_t warns = log.warn_count();
  EXPECT_EQ(t.release_mem_region_adjustable(PhysAddr(0x100000), 0x1800000).outcome, AdjustOutcome::ChildInTheWay);
  EXPECT_EQ(t.release_mem_region_adjustable(PhysAddr(0x1800000), 0x1000000).outcome, AdjustOutcome::ChildInTheWay);
  EXPECT_EQ(log.warn_count(), warns + 2);
  EXPECT_EQ(t.render(), before);
  // A split whose lower part keeps the child is fine.
  EXPECT_EQ(t.release_mem_region_adjustable(PhysAddr(0x8000000), 0x8000000).outcome, AdjustOutcome::Split);
  expect_same_lines(split_lines(t.render()), {"00100000-07ffffff : System RAM", "  01000000-01e01d31 : Kernel code",
                                              "10000000-bffdefff : System RAM", "200000000-20fffffff : hmm"});
  expect_invariants_ok(t);
}

// ---------------------------------------------------------------------------------------------
// Hot-add: merge_system_ram_resource

// Scenario: three touching 128 MiB "System RAM" hot-adds merged as MHP_MERGE_RESOURCE does, the
// middle one added last; a touching "System RAM (kmem)" next to them; boot RAM not marked.
// Expect (spec §2.7): the first two merge into one resource (the earlier handle survives), the
// third merges with both neighbours' survivor, the kmem resource (different name and flags) and
// the boot RAM stay separate; merging a non-System-RAM resource is -EINVAL and changes nothing.
TEST(ResourceMerge, touching_hot_added_system_ram_merges) {
  ResourceTree t = make_x86_tree();
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0x100000000), PhysAddr(0x17fffffff), "System RAM",
                                IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY));
  auto add = [&](uint64_t start, const char* name, ResourceFlags extra) {
    return *t.request_region(t.root(), PhysAddr(start), 128 * MiB, name, IORESOURCE_SYSTEM_RAM | extra);
  };
  ResourceId a = add(0x180000000, "System RAM", IORESOURCE_NONE);
  EXPECT_EQ(*t.merge_system_ram_resource(a), a);  // the boot RAM before it is not MERGEABLE
  ResourceId c = add(0x190000000, "System RAM", IORESOURCE_NONE);
  EXPECT_EQ(*t.merge_system_ram_resource(c), c);  // not touching a
  ResourceId b = add(0x188000000, "System RAM", IORESOURCE_NONE);
  EXPECT_EQ(*t.merge_system_ram_resource(b), a);  // b absorbs c, then a absorbs b
  EXPECT_EQ(t.find(b), nullptr);
  EXPECT_EQ(t.find(c), nullptr);
  ResourceId k = add(0x198000000, "System RAM (kmem)", IORESOURCE_SYSRAM_DRIVER_MANAGED);
  EXPECT_EQ(*t.merge_system_ram_resource(k), k);
  expect_same_lines(split_lines(t.render()), {"100000000-17fffffff : System RAM", "180000000-197ffffff : System RAM",
                                              "198000000-19fffffff : System RAM (kmem)"});
  EXPECT_TRUE(t.find(a)->flags.has(IORESOURCE_SYSRAM_MERGEABLE));

  auto pm =
      t.insert_resource(t.root(), PhysAddr(0x200000000), PhysAddr(0x23fffffff), "Persistent Memory", IORESOURCE_MEM);
  ASSERT_TRUE(pm.has_value());
  const std::string before = t.render();
  EXPECT_EQ(t.merge_system_ram_resource(*pm).error().code, Errno::Inval);
  EXPECT_EQ(t.merge_system_ram_resource(b).error().code, Errno::Inval);
  EXPECT_EQ(t.render(), before);
  EXPECT_FALSE(t.find(*pm)->flags.has(IORESOURCE_SYSRAM_MERGEABLE));
  expect_invariants_ok(t);
}

// ---------------------------------------------------------------------------------------------
// region_intersects

// The e_kmem step-2 layout: Persistent Memory > namespace0.0, dax0.0 (SYSTEM_RAM, not busy) >
// System RAM (kmem); boot System RAM and Reserved around.
ResourceTree kmem_tree(const Behaviour& b = kLinux61) {
  const json trace = load_trace("e_kmem");
  ResourceTree t = make_x86_tree(40, b);
  insert_listed(t, trace, 0, true);
  EXPECT_TRUE(t.request_mem_region(PhysAddr(0x180000000), 2 * MiB, "namespace0.0"));
  auto dax = t.request_mem_region(PhysAddr(0x188000000), 0x38000000, "dax0.0");
  EXPECT_TRUE(dax && t.set_flags(*dax, IORESOURCE_SYSTEM_RAM));
  EXPECT_TRUE(t.request_region(t.root(), PhysAddr(0x188000000), 0x38000000, "System RAM (kmem)",
                               IORESOURCE_SYSTEM_RAM | IORESOURCE_SYSRAM_DRIVER_MANAGED));
  expect_render(t, trace, 2);
  return t;
}

// Scenario: region_intersects(…, IORESOURCE_SYSTEM_RAM, NONE) over the kmem layout, 6.1.y rules.
// Expect (spec §3, worked by hand): a block inside dax0.0 -> INTERSECTS (matching descendants
// cover the overlap from its start); the whole namespace -> MIXED (namespace0.0 comes before the
// first matching descendant); the metadata 2 MiB -> DISJOINT; boot RAM plus the hole after it ->
// INTERSECTS (holes never count); RAM plus the Reserved before it -> MIXED; a pure hole -> DISJOINT.
TEST(ResourceIntersects, nested_kmem_ram_6_1_y) {
  const ResourceTree t = kmem_tree();
  auto ri = [&](uint64_t s, uint64_t n) {
    return t.region_intersects(PhysAddr(s), n, IORESOURCE_SYSTEM_RAM, IoresDesc::None);
  };
  EXPECT_EQ(ri(0x188000000, 128 * MiB), RegionIntersect::Intersects);
  EXPECT_EQ(ri(0x1b8000000, 128 * MiB), RegionIntersect::Intersects);
  EXPECT_EQ(ri(0x180000000, GiB), RegionIntersect::Mixed);
  EXPECT_EQ(ri(0x180000000, 2 * MiB), RegionIntersect::Disjoint);
  EXPECT_EQ(ri(0x140000000, 128 * MiB), RegionIntersect::Intersects);
  EXPECT_EQ(ri(0xbff00000, 0x200000), RegionIntersect::Mixed);
  EXPECT_EQ(ri(0x400000000, 128 * MiB), RegionIntersect::Disjoint);
  // A desc filter: only PERSISTENT_MEMORY-described System RAM (the kmem chain) matches.
  EXPECT_EQ(t.region_intersects(PhysAddr(0x188000000), 128 * MiB, IORESOURCE_SYSTEM_RAM, IoresDesc::PersistentMemory),
            RegionIntersect::Intersects);
  EXPECT_EQ(t.region_intersects(PhysAddr(0x100000000), 128 * MiB, IORESOURCE_SYSTEM_RAM, IoresDesc::PersistentMemory),
            RegionIntersect::Disjoint);
}

// Scenario: the same queries under 6.1.0's top-level-only region_intersects, chosen explicitly
// and through the "linux-6.1.0" behaviour. Expect (spec §3, §9.6): the nested kmem RAM is
// invisible: DISJOINT inside the namespace; top-level RAM answers are unchanged.
TEST(ResourceIntersects, nested_kmem_ram_invisible_in_6_1_0) {
  const ResourceTree t = kmem_tree();
  const Behaviour* old = find_behaviour("linux-6.1.0");
  ASSERT_NE(old, nullptr);
  const ResourceTree t0 = kmem_tree(*old);
  for (const ResourceTree* tree : {&t, &t0}) {
    auto ri = [&](uint64_t s, uint64_t n) {
      return tree == &t ? tree->region_intersects(PhysAddr(s), n, IORESOURCE_SYSTEM_RAM, IoresDesc::None,
                                                  RegionIntersectsScope::TopLevelOnly)
                        : tree->region_intersects(PhysAddr(s), n, IORESOURCE_SYSTEM_RAM, IoresDesc::None);
    };
    EXPECT_EQ(ri(0x188000000, 128 * MiB), RegionIntersect::Disjoint);
    EXPECT_EQ(ri(0x180000000, GiB), RegionIntersect::Disjoint);
    EXPECT_EQ(ri(0x140000000, 128 * MiB), RegionIntersect::Intersects);
    EXPECT_EQ(ri(0xbff00000, 0x200000), RegionIntersect::Mixed);
  }
}

// ---------------------------------------------------------------------------------------------
// walk_system_ram_range

// Scenario: walk the whole a_baseline boot RAM window, pfn 0 .. 0x144000.
// Expect (spec §3, trace step 0 lines): one callback per busy top-level System RAM, whole pages
// only: 00001000-0009fbff -> pfn 0x1 + 0x9e; 00100000-bffdefff -> 0x100 + 0xbfedf;
// 100000000-143ffffff -> 0x100000 + 0x44000; the nested kernel image adds nothing.
// page_is_ram: pfn 0 (Reserved) no, pfn 1 yes, pfn 0x9f (only 0x9f000-0x9fbff is RAM) no.
TEST(ResourceWalk, boot_ram_in_whole_pages) {
  const json trace = load_trace("a_baseline");
  ResourceTree t = make_x86_tree();
  insert_listed(t, trace, 0, false);
  std::vector<std::pair<uint64_t, uint64_t>> got;
  int ret = t.walk_system_ram_range(Pfn(0), NrPages(0x144000), [&](Pfn p, NrPages n) {
    got.emplace_back(p.value(), n.value());
    return 0;
  });
  EXPECT_EQ(ret, 0);
  const std::vector<std::pair<uint64_t, uint64_t>> want = {{0x1, 0x9e}, {0x100, 0xbfedf}, {0x100000, 0x44000}};
  EXPECT_EQ(got, want);
  EXPECT_FALSE(t.page_is_ram(Pfn(0)));
  EXPECT_TRUE(t.page_is_ram(Pfn(1)));
  EXPECT_FALSE(t.page_is_ram(Pfn(0x9f)));
  EXPECT_TRUE(t.page_is_ram(Pfn(0x143fff)));
  EXPECT_FALSE(t.page_is_ram(Pfn(0x144000)));

  // A window starting inside RAM is clipped to it; a non-zero callback value stops the walk.
  got.clear();
  ret = t.walk_system_ram_range(Pfn(0x143000), NrPages(0x2000), [&](Pfn p, NrPages n) {
    got.emplace_back(p.value(), n.value());
    return 7;
  });
  EXPECT_EQ(ret, 7);
  EXPECT_EQ(got, (std::vector<std::pair<uint64_t, uint64_t>>{{0x143000, 0x1000}}));
}

// Scenario: the e_kmem namespace window pfn 0x180000 .. 0x1c0000, before and after kmem adds
// "System RAM (kmem)" under the non-busy SYSTEM_RAM "dax0.0".
// Expect (spec §3): before, no callback and -EINVAL (the container is not busy); after, exactly
// the kmem range pfn 0x188000 + 0x38000.
TEST(ResourceWalk, busy_nested_kmem_counts_container_does_not) {
  const json trace = load_trace("e_kmem");
  ResourceTree t = make_x86_tree();
  insert_listed(t, trace, 0, true);
  auto dax = t.request_mem_region(PhysAddr(0x188000000), 0x38000000, "dax0.0");
  ASSERT_TRUE(dax && t.set_flags(*dax, IORESOURCE_SYSTEM_RAM));
  std::vector<std::pair<uint64_t, uint64_t>> got;
  auto cb = [&](Pfn p, NrPages n) {
    got.emplace_back(p.value(), n.value());
    return 0;
  };
  EXPECT_EQ(t.walk_system_ram_range(Pfn(0x180000), NrPages(0x40000), cb), -EINVAL);
  EXPECT_TRUE(got.empty());

  ASSERT_TRUE(t.request_region(t.root(), PhysAddr(0x188000000), 0x38000000, "System RAM (kmem)",
                               IORESOURCE_SYSTEM_RAM | IORESOURCE_SYSRAM_DRIVER_MANAGED));
  EXPECT_EQ(t.walk_system_ram_range(Pfn(0x180000), NrPages(0x40000), cb), 0);
  EXPECT_EQ(got, (std::vector<std::pair<uint64_t, uint64_t>>{{0x188000, 0x38000}}));
  EXPECT_TRUE(t.page_is_ram(Pfn(0x188000)));
  EXPECT_FALSE(t.page_is_ram(Pfn(0x180200)));
}

// ---------------------------------------------------------------------------------------------
// request_free_mem_region (device-private placement)

// Scenario: x86 4-level, CPU phys bits 46, ceiling PHYSMEM_END = 2^46 - 1: test_hmm's 256 MiB
// chunks, then a 100 MiB request. Expect (spec §4.16, §6.1, §10.C): first chunk
// 3ffff0000000-3fffffffffff named hmm_dmirror, busy, desc DEVICE_PRIVATE; the second one size
// step lower at 3fffe0000000; 100 MiB rounds up to one 128 MiB section and lands in the first
// free 128 MiB slot counting down from the top, 3fffd8000000.
TEST(ResourceFreeRegion, device_private_top_of_46_bit_space) {
  ResourceTree t = make_x86_tree(46);
  const PhysAddr ceiling(kX86_64.physmem_end());
  auto a = t.request_free_mem_region(t.root(), 256 * MiB, "hmm_dmirror", ceiling);
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(t.render(), "3ffff0000000-3fffffffffff : hmm_dmirror\n");
  EXPECT_EQ(t.find(*a)->desc, IoresDesc::DevicePrivateMemory);
  EXPECT_EQ(t.find(*a)->flags, IORESOURCE_MEM | IORESOURCE_BUSY);
  auto b = t.request_free_mem_region(t.root(), 256 * MiB, "hmm_dmirror", ceiling);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(t.find(*b)->start.value(), 0x3fffe0000000ull);
  auto c = t.request_free_mem_region(t.root(), 100 * MiB, "small", ceiling);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(t.find(*c)->start.value(), 0x3fffd8000000ull);
  EXPECT_EQ(t.find(*c)->size(), 128 * MiB);
  expect_invariants_ok(t);
}

// Scenario: arm64 4K, PA 48 bits: the root spans 2^64, the ceiling is 2^48 - 1.
// Expect (spec §10.D): the first 256 MiB chunk at 0xfffff0000000.
TEST(ResourceFreeRegion, arm64_lands_below_pa_ceiling) {
  ResourceTree t(kArm64_4K_39, *iomem_root_end(kArm64_4K_39, 0));
  auto a = t.request_free_mem_region(t.root(), 256 * MiB, "hmm_dmirror", PhysAddr(kArm64_4K_39.physmem_end()));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(t.find(*a)->start.value(), 0xfffff0000000ull);
  EXPECT_EQ(t.find(*a)->end.value(), 0xffffffffffffull);
}

// Scenario: no slot: a top-level resource covering the whole 46-bit space; a ceiling so low
// that the only candidate is 0 (the search requires candidate > size); size 0; an unknown base.
// Expect (spec §4.16): -ERANGE (the unknown base -EINVAL), render() unchanged.
TEST(ResourceFreeRegion, erange_when_full_and_tree_unchanged) {
  ResourceTree t = make_x86_tree(46);
  ASSERT_TRUE(t.insert_resource(t.root(), PhysAddr(0), PhysAddr(0x3fffffffffff), "Reserved", IORESOURCE_MEM));
  const std::string before = t.render();
  const PhysAddr ceiling(kX86_64.physmem_end());
  auto r = t.request_free_mem_region(t.root(), 256 * MiB, "hmm_dmirror", ceiling);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errno::Range);
  EXPECT_EQ(t.render(), before);

  ResourceTree e = make_x86_tree(46);
  EXPECT_EQ(e.request_free_mem_region(e.root(), 256 * MiB, "x", PhysAddr(0x0fffffff)).error().code, Errno::Range);
  EXPECT_EQ(e.request_free_mem_region(e.root(), 256 * MiB, "x", PhysAddr(0x1fffffff)).error().code, Errno::Range);
  EXPECT_EQ(e.request_free_mem_region(e.root(), 0, "x", ceiling).error().code, Errno::Range);
  EXPECT_EQ(e.request_free_mem_region(ResourceId(4242), 256 * MiB, "x", ceiling).error().code, Errno::Inval);
  EXPECT_EQ(e.render(), "");
  // Below a 0x3fffffff ceiling the first candidate, 0x30000000, is above the size and free.
  auto ok = e.request_free_mem_region(e.root(), 256 * MiB, "x", PhysAddr(0x3fffffff));
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(e.find(*ok)->start.value(), 0x30000000ull);
}

// Scenario: with hmm_dmirror placed, a hot-add requests System RAM over it.
// Expect (spec §2.7): -EBUSY, tree unchanged, and the log line
// "Unaddressable device hmm_dmirror [mem 0x3ffff0000000-0x3fffffffffff] conflicts with [mem
// 0x3ffff0000000-0x3ffff7ffffff]".
TEST(ResourceFreeRegion, conflict_with_device_private_is_logged) {
  KernelLog log;
  ResourceTree t = make_x86_tree(46, kLinux61, &log);
  ASSERT_TRUE(t.request_free_mem_region(t.root(), 256 * MiB, "hmm_dmirror", PhysAddr(kX86_64.physmem_end())));
  const std::string before = t.render();
  auto r = t.request_region(t.root(), PhysAddr(0x3ffff0000000), 128 * MiB, "System RAM", IORESOURCE_SYSTEM_RAM);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errno::Busy);
  EXPECT_EQ(t.render(), before);
  ASSERT_EQ(log.lines().size(), 1u);
  EXPECT_EQ(log.lines()[0].text,
            "Unaddressable device hmm_dmirror [mem 0x3ffff0000000-0x3fffffffffff] conflicts with "
            "[mem 0x3ffff0000000-0x3ffff7ffffff]");
}

// Scenario: %pR formatting of a resource as log lines show it. Expect: the trace's own
// "root bus resource [mem 0x000a0000-0x000bffff window]" spelling (8-digit minimum, " window").
TEST(ResourceFreeRegion, format_resource_matches_kernel_pR) {
  Resource w{PhysAddr(0xa0000), PhysAddr(0xbffff), "PCI Bus 0000:00", IORESOURCE_MEM | IORESOURCE_WINDOW,
             IoresDesc::None};
  EXPECT_EQ(format_resource(w), "[mem 0x000a0000-0x000bffff window]");
  Resource big{PhysAddr(0x980000000), PhysAddr(0x9ffffffff), "PCI Bus 0000:00", IORESOURCE_MEM | IORESOURCE_WINDOW,
               IoresDesc::None};
  EXPECT_EQ(format_resource(big), "[mem 0x980000000-0x9ffffffff window]");
}

// Scenario: set_flags on the root, a stale handle, or with non-memory flags.
// Expect: -EINVAL and nothing changes.
TEST(ResourceTree, set_flags_refusals) {
  ResourceTree t = make_x86_tree();
  auto r = t.insert_resource(t.root(), PhysAddr(0x180000000), PhysAddr(0x1bfffffff), "dax0.0",
                             IORESOURCE_MEM | IORESOURCE_BUSY);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(t.set_flags(t.root(), IORESOURCE_SYSTEM_RAM).error().code, Errno::Inval);
  EXPECT_EQ(t.set_flags(ResourceId(777), IORESOURCE_SYSTEM_RAM).error().code, Errno::Inval);
  EXPECT_EQ(t.set_flags(*r, IORESOURCE_SYSRAM).error().code, Errno::Inval);
  EXPECT_EQ(t.find(*r)->flags, IORESOURCE_MEM | IORESOURCE_BUSY);
}

}  // namespace
}  // namespace sparsemem
