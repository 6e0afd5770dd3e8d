// Tests for include/sparsemem/platform*.h: every recorded trace's QEMU command line against what the real
// guest printed, the spec's QEMU refusals and layouts, kernel command-line edits, plain maps and arm64 virt.
#include "sparsemem/platform.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sparsemem {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t GiB = uint64_t{1} << 30;

// ---- trace helpers ----

fs::path oracle_dir() { return fs::path(SPM_TEST_DATA) / "oracle"; }

std::vector<std::string> trace_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(oracle_dir())) {
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Traces are read once per test binary: each is parsed by eight tests.
const json& load_trace(const std::string& name) {
  static std::map<std::string, json> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    std::ifstream in(oracle_dir() / (name + ".json"));
    it = cache.emplace(name, json::parse(in)).first;
  }
  return it->second;
}

std::vector<std::string> argv_of(const json& t) { return t.at("qemu_cmdline").get<std::vector<std::string>>(); }

std::optional<std::string> guest_cmdline_of(const json& t) {
  if (!t.contains("guest_cmdline") || t["guest_cmdline"].is_null()) return std::nullopt;
  return t["guest_cmdline"].get<std::string>();
}

bool booted(const json& t) { return !t.at("steps").empty(); }

std::string strip_timestamp(const std::string& line) {
  static const std::regex ts(R"(^\[\s*\d+\.\d+\] )");
  return std::regex_replace(line, ts, "");
}

uint64_t hex(const std::string& s) { return std::stoull(s, nullptr, 16); }

Result<PlatformDescription> platform_of(const json& t) {
  const std::vector<std::string> argv = argv_of(t);
  const std::optional<std::string> guest = guest_cmdline_of(t);
  return platform_from_qemu(argv, guest ? std::optional<std::string_view>(*guest) : std::nullopt);
}

std::vector<std::string> split_argv(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// The oracle harness's fixed part of every command line (shared/oracle README).
std::vector<std::string> harness_argv(const std::string& extra, const std::string& append = "console=ttyS0") {
  std::vector<std::string> argv = {"qemu-system-x86_64", "-smp", "1", "-display", "none", "-nodefaults",
                                   "-no-reboot", "-kernel", "/boot/vmlinuz", "-append", append};
  for (std::string& a : split_argv(extra)) argv.push_back(a);
  return argv;
}

class PlatformTrace : public ::testing::TestWithParam<std::string> {};

// Scenario: the trace directory. Expect: every recorded trace of tests/data/oracle is among the
// parameters below (the list is read from the directory, so a new trace is covered automatically).
TEST(Platform, every_trace_is_covered) {
  const std::vector<std::string> names = trace_names();
  for (const char* n : {"a_baseline", "b2_autoonline_policies", "b3_memmap_on_memory", "b_dimm_coldplug",
                        "c2_qmp_hotplug", "c_dimm_hotremove", "d0_nvdimm_unaligned_addr", "d1_nvdimm_devdax",
                        "d2_nvdimm_labelless", "d3_pmem_in_early_section", "e_kmem", "f_errors"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
}

// Scenario: the trace's QEMU command line and guest kernel command line. Expect: the kernel's e820 lines
// exactly as step 0's dmesg shows them: the BIOS map, the user map (d3's memmap=64M!0x144000000),
// trim_bios_range()'s two edits, the PCI gap and the RAM buffer lines, in that order.
TEST_P(PlatformTrace, e820_lines_match_boot_dmesg) {
  const json& t = load_trace(GetParam());
  if (!booted(t)) GTEST_SKIP() << "QEMU refused this command line";
  auto p = platform_of(t);
  ASSERT_TRUE(p) << p.error().message;
  std::vector<std::string> expected;
  for (const json& raw : t["steps"][0]["snapshot"]["dmesg"]) {
    const std::string line = strip_timestamp(raw.get<std::string>());
    if (line.rfind("BIOS-provided physical RAM map:", 0) == 0 || line.rfind("BIOS-e820: ", 0) == 0 ||
        line.rfind("user-defined physical RAM map:", 0) == 0 || line.rfind("user: ", 0) == 0 ||
        line.rfind("e820: ", 0) == 0 || line.find("available for PCI devices") != std::string::npos) {
      expected.push_back(line);
    }
  }
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(p->e820_log, expected);
}

// Scenario: the same boot. Expect: the SRAT memory-affinity lines of step 0's dmesg (RAM cut at 640K and
// at L, NVDIMM non-volatile entries, the hotplug window on the last node).
TEST_P(PlatformTrace, srat_lines_match_boot_dmesg) {
  const json& t = load_trace(GetParam());
  if (!booted(t)) GTEST_SKIP() << "QEMU refused this command line";
  auto p = platform_of(t);
  ASSERT_TRUE(p) << p.error().message;
  std::vector<std::string> expected;
  for (const json& raw : t["steps"][0]["snapshot"]["dmesg"]) {
    const std::string line = strip_timestamp(raw.get<std::string>());
    if (line.rfind("ACPI: SRAT: Node ", 0) == 0) expected.push_back(line);
  }
  EXPECT_EQ(srat_memory_lines(*p), expected);
}

// Scenario: step 0's /proc/iomem. Expect: every firmware-owned line, with its depth, in order. Excluded
// as later kernel/driver activity: the top-level "System RAM" of each cold-plugged DIMM (added by the ACPI
// memory driver), the top-level "Persistent Memory" of each NVDIMM (nfit, loaded in step 0), and
// "namespaceX.Y"/"daxX.Y"/"pfn"/"btt" children (nd_pmem, device_dax). The excluded DIMM/NVDIMM lines are
// checked against the platform's device placement instead.
TEST_P(PlatformTrace, firmware_iomem_matches_step0) {
  const json& t = load_trace(GetParam());
  if (!booted(t)) GTEST_SKIP() << "QEMU refused this command line";
  auto p = platform_of(t);
  ASSERT_TRUE(p) << p.error().message;

  struct Line {
    unsigned depth;
    uint64_t start, last;
    std::string name;
    bool operator==(const Line&) const = default;
  };
  std::vector<Line> expected, dimm_lines, nvdimm_lines;
  int excluded_depth = -1;
  for (const json& e : t["steps"][0]["snapshot"]["iomem"]) {
    Line l{e["depth"].get<unsigned>(), hex(e["start"]), hex(e["end"]), e["name"].get<std::string>()};
    if (excluded_depth >= 0 && int(l.depth) > excluded_depth) continue;  // child of an excluded line
    excluded_depth = -1;
    bool driver = false;
    for (const char* prefix : {"namespace", "dax", "pfn", "btt", "System RAM (kmem)"}) {
      driver |= l.name.rfind(prefix, 0) == 0;
    }
    for (const MemoryDevice& d : p->memory_devices) {
      const bool same = l.depth == 0 && l.start == d.addr.value() && l.last == d.range().last.value();
      if (same && d.kind == MemoryDeviceKind::Dimm && l.name == "System RAM") {
        dimm_lines.push_back(l);
        driver = true;
      }
      if (same && d.kind == MemoryDeviceKind::Nvdimm && l.name == "Persistent Memory") {
        nvdimm_lines.push_back(l);
        driver = true;
      }
    }
    if (driver) {
      excluded_depth = int(l.depth);
      continue;
    }
    expected.push_back(l);
  }
  std::vector<Line> got;
  for (const FirmwareResource& r : p->iomem) got.push_back(Line{r.depth, r.range.start.value(), r.range.last.value(), r.name});
  EXPECT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < std::max(got.size(), expected.size()); ++i) {
    const Line* g = i < got.size() ? &got[i] : nullptr;
    const Line* x = i < expected.size() ? &expected[i] : nullptr;
    EXPECT_TRUE(g && x && *g == *x) << "line " << i << ": got "
                                    << (g ? fmt::format("{} {:x}-{:x} {}", g->depth, g->start, g->last, g->name) : "-")
                                    << " expected "
                                    << (x ? fmt::format("{} {:x}-{:x} {}", x->depth, x->start, x->last, x->name) : "-");
  }
  // Every cold-plugged device shows up once its driver ran: Linux accepted all of them in these traces.
  size_t dimms = 0, nvdimms = 0;
  for (const MemoryDevice& d : p->memory_devices) (d.kind == MemoryDeviceKind::Dimm ? dimms : nvdimms)++;
  EXPECT_EQ(dimm_lines.size(), dimms);
  EXPECT_EQ(nvdimm_lines.size(), nvdimms);
  // The parent links agree with the depths.
  for (size_t i = 0; i < p->iomem.size(); ++i) {
    const FirmwareResource& r = p->iomem[i];
    if (r.depth == 0) {
      EXPECT_EQ(r.parent, -1);
    } else {
      ASSERT_GE(r.parent, 0);
      EXPECT_EQ(p->iomem[size_t(r.parent)].depth + 1, r.depth);
    }
  }
}

json memory_device_json(const MemoryDevice& d) {
  // query-memory-devices keys, as the traces record them.
  return json{{"type", std::string(memory_device_kind_name(d.kind))},
              {"data",
               {{"memdev", "/objects/" + d.memdev},
                {"hotplugged", d.hotplugged},
                {"addr", d.addr.value()},
                {"hotpluggable", true},
                {"size", d.size},
                {"slot", d.slot},
                {"node", d.node},
                {"id", d.id}}}};
}

json query_memory_devices(const PlatformDescription& p) {
  json out = json::array();
  for (const MemoryDevice* d : memory_devices_by_address(p)) out.push_back(memory_device_json(*d));
  return out;
}

// Scenario: the trace's cold-plugged devices. Expect: each device QEMU still reports at the end
// (final_memory_devices, "hotplugged": false) has the address, size, slot, node and type computed here.
TEST_P(PlatformTrace, cold_plugged_devices_match_final_memory_devices) {
  const json& t = load_trace(GetParam());
  if (!booted(t)) GTEST_SKIP() << "QEMU refused this command line";
  auto p = platform_of(t);
  ASSERT_TRUE(p) << p.error().message;
  for (const json& item : t["final_memory_devices"]["return"]) {
    if (item["data"]["hotplugged"].get<bool>()) continue;
    const MemoryDevice* d = p->find_memory_device(item["data"]["id"].get<std::string>());
    ASSERT_NE(d, nullptr) << item.dump();
    EXPECT_EQ(memory_device_json(*d), item);
  }
}

// Scenario: step 0's ACPI memory devices. Expect: one PNP0C80 per slot, status 15 where a pc-dimm sits
// (never for an NVDIMM's slot), the \_SB_.MHPC.MPxx path.
TEST_P(PlatformTrace, acpi_memory_devices_match_step0) {
  const json& t = load_trace(GetParam());
  if (!booted(t)) GTEST_SKIP() << "QEMU refused this command line";
  auto p = platform_of(t);
  ASSERT_TRUE(p) << p.error().message;
  const std::vector<AcpiMemorySlot> got = acpi_memory_slots(*p);
  const json& want = t["steps"][0]["snapshot"]["acpi_memory_devices"];
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].name, want[i]["name"].get<std::string>());
    EXPECT_EQ(std::to_string(got[i].status), want[i]["status"].get<std::string>());
    EXPECT_EQ(got[i].path, want[i]["path"].get<std::string>());
  }
}

// Scenario: step 0's libnvdimm regions. Expect: each region's resource and size is an NVDIMM's persistent
// area (backend minus label, rounded down to the backend alignment) on its node, or a legacy-pmem range
// of the e820 map.
TEST_P(PlatformTrace, nvdimm_regions_match_nd_dax) {
  const json& t = load_trace(GetParam());
  if (!booted(t)) GTEST_SKIP() << "QEMU refused this command line";
  auto p = platform_of(t);
  ASSERT_TRUE(p) << p.error().message;
  for (const json& o : t["steps"][0]["snapshot"]["nd_dax"]) {
    if (o["kind"] != "region") continue;
    const uint64_t start = hex(o["resource"].get<std::string>());
    const uint64_t size = std::stoull(o["size"].get<std::string>());
    bool found = false;
    for (const MemoryDevice& d : p->memory_devices) {
      if (d.kind == MemoryDeviceKind::Nvdimm && d.addr.value() == start && d.size == size) {
        found = true;
        EXPECT_EQ(std::to_string(d.node), o["numa_node"].get<std::string>());
      }
    }
    for (const BootMemoryRegion& r : p->memory_map) {
      if (r.kind == BootMemoryKind::PersistentLegacy && r.range.start.value() == start && r.range.size() == size) {
        found = true;
      }
    }
    EXPECT_TRUE(found) << o.dump();
  }
}

// Replays the QEMU-side history of a trace: monitor object_add/device_add/device_del (HMP and QMP) and
// guest-initiated ejects, checking every query-memory-devices / info memory-devices reply on the way.
void replay(PlatformDescription& p, const json& t) {
  auto eject_block = [&](uint64_t block) {
    const uint64_t addr = block * 128 * MiB;
    for (const MemoryDevice& d : p.memory_devices) {
      if (d.addr.value() <= addr && addr <= d.range().last.value()) {
        const std::string id = d.id;
        ASSERT_TRUE(remove_memory_device(p, id)) << id;
        return;
      }
    }
    FAIL() << "no device owns block " << block;
  };
  auto guest_commands = [&](const json& step) {
    for (const json& c : step["commands"]) {
      const std::string cmd = c["cmd"];
      if (cmd.rfind("acpi_eject_block ", 0) == 0 && c["rc"] == 0) eject_block(std::stoull(cmd.substr(17)));
    }
  };
  for (const json& step : t["steps"]) {
    if (step["type"] == "guest") {
      guest_commands(step);
      continue;
    }
    for (const json& a : step["host_actions"]) {
      const std::string action = a["action"];
      SCOPED_TRACE(action);
      if (action.rfind("hmp object_add ", 0) == 0) {
        auto b = parse_memory_backend(action.substr(15));
        ASSERT_TRUE(b) << b.error().message;
        ASSERT_TRUE(add_memory_backend(p, *b));
      } else if (action.rfind("hmp device_add ", 0) == 0) {
        auto r = parse_memory_device(action.substr(15));
        ASSERT_TRUE(r) << r.error().message;
        auto d = plug_memory_device(p, *r, true);
        EXPECT_TRUE(d) << d.error().message;
      } else if (action.rfind("hmp device_del ", 0) == 0) {
        const std::string id = action.substr(15);
        ASSERT_TRUE(check_memory_device_unplug(p, id));
        ASSERT_TRUE(remove_memory_device(p, id));
      } else if (action == "hmp info memory-devices") {
        // "addr: 0x..." per device, in query order.
        const std::string text = a["response"]["return"];
        std::vector<uint64_t> addrs;
        static const std::regex re(R"(addr: 0x([0-9a-f]+))");
        for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
          addrs.push_back(hex((*it)[1]));
        }
        std::vector<uint64_t> got;
        for (const MemoryDevice* d : memory_devices_by_address(p)) got.push_back(d->addr.value());
        EXPECT_EQ(got, addrs);
      } else if (action.rfind("qmp ", 0) == 0) {
        const json cmd = json::parse(action.substr(4));
        const std::string exec = cmd["execute"];
        if (exec == "object-add") {
          const json& args = cmd["arguments"];
          auto b = parse_memory_backend(fmt::format("{},id={},size={}", args["qom-type"].get<std::string>(),
                                                    args["id"].get<std::string>(), args["size"].get<uint64_t>()));
          ASSERT_TRUE(b) << b.error().message;
          ASSERT_TRUE(add_memory_backend(p, *b));
        } else if (exec == "device_add") {
          const json& args = cmd["arguments"];
          std::string opts = args["driver"].get<std::string>();
          for (const char* k : {"id", "memdev"}) {
            if (args.contains(k)) opts += fmt::format(",{}={}", k, args[k].get<std::string>());
          }
          for (const char* k : {"addr", "slot", "node"}) {
            if (args.contains(k)) opts += fmt::format(",{}={}", k, args[k].get<uint64_t>());
          }
          auto r = parse_memory_device(opts);
          ASSERT_TRUE(r) << r.error().message;
          auto d = plug_memory_device(p, *r, true);
          EXPECT_TRUE(d) << d.error().message;
        } else if (exec == "query-memory-devices") {
          EXPECT_EQ(query_memory_devices(p), a["response"]["return"]);
        }
      }
    }
    guest_commands(step);
  }
}

// Scenario: every host action and guest eject of the trace replayed on the platform. Expect: each
// query-memory-devices / "info memory-devices" reply on the way and final_memory_devices at the end, as
// QEMU gave them (c2: d4 first-fit at 0x1cc000000 between d3 and d2; b2: d3-d5 packed after the cold DIMMs).
TEST_P(PlatformTrace, replay_matches_every_memory_device_reply) {
  const json& t = load_trace(GetParam());
  if (!booted(t)) GTEST_SKIP() << "QEMU refused this command line";
  auto p = platform_of(t);
  ASSERT_TRUE(p) << p.error().message;
  replay(*p, t);
  EXPECT_EQ(query_memory_devices(*p), t["final_memory_devices"]["return"]);
}

// Scenario: a trace whose QEMU refused to start (d0: nvdimm at addr=0x144000000, below the device-memory
// window). Expect: Inval with QEMU's exact stderr line after the "qemu-system-x86_64: " prefix.
TEST_P(PlatformTrace, refused_command_line_matches_qemu_error) {
  const json& t = load_trace(GetParam());
  std::optional<std::string> qemu_line;
  for (const json& e : t["errors"]) {
    if (e["where"] != "qemu-start" || e["rc"] == 0) continue;
    const std::string out = e["qemu_output"];
    size_t pos = 0;
    while (pos < out.size()) {
      size_t nl = out.find('\n', pos);
      if (nl == std::string::npos) nl = out.size();
      const std::string line = out.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.rfind("qemu-system-x86_64: ", 0) == 0 && line.find(": info: ") == std::string::npos) qemu_line = line;
    }
  }
  auto p = platform_of(t);
  if (!qemu_line) {
    EXPECT_TRUE(p) << p.error().message;
    return;
  }
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Errno::Inval);
  EXPECT_EQ(fmt::format("{}: {}", qemu_program_name(MachineType::Pc), p.error().message), *qemu_line);
}

INSTANTIATE_TEST_SUITE_P(PlatformOracle, PlatformTrace, ::testing::ValuesIn(trace_names()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// ---- layouts the spec recorded ([R] rows of shared/spec/qemu-platform.md) ----

struct LayoutRow {
  const char* options;
  uint64_t below, above;  // L, H
  uint64_t dm_base, dm_size;
  uint64_t pci64_start, pci64_last;
};

// Scenario: the RAM split and window placement table of spec §3, §5.1, §5.2. Expect: L/H, DMBASE/DMSIZE and
// the 64-bit PCI window exactly as listed there.
TEST(PlatformLayout, ram_split_and_windows_match_spec_tables) {
  const LayoutRow rows[] = {
      {"-machine pc,nvdimm=on -m 4160M,slots=4,maxmem=32G", 0xc0000000, 0x44000000, 0x180000000, 0x7fc000000,
       0x980000000, 0x9ffffffff},
      {"-machine pc,nvdimm=on -m 4160M,slots=8,maxmem=32G", 0xc0000000, 0x44000000, 0x180000000, 0x8fc000000, 0,
       0},
      {"-machine pc,nvdimm=on -m 4160M,slots=1,maxmem=20G", 0xc0000000, 0x44000000, 0x180000000, 0x43c000000,
       0x5c0000000, 0x63fffffff},
      {"-machine pc,nvdimm=on -m 4224M,slots=1,maxmem=20G", 0xc0000000, 0x48000000, 0x180000000, 0x438000000,
       0x5c0000000, 0x63fffffff},
      {"-machine pc -m 2G,slots=2,maxmem=8G", 0x80000000, 0, 0x100000000, 0x200000000, 0, 0},
      {"-machine q35 -m 4096M,slots=4,maxmem=32G", 0x80000000, 0x80000000, 0x180000000, 0x800000000, 0x980000000,
       0x117fffffff},
      {"-machine pc -m 3584M", 0xc0000000, 0x20000000, 0, 0, 0, 0},
      {"-machine pc -m 3200M", 3200 * MiB, 0, 0, 0, 0, 0},
      {"-machine q35 -m 2816M", 0x80000000, 768 * MiB, 0, 0, 0, 0},
      {"-machine q35 -m 2560M", 2560 * MiB, 0, 0, 0, 0, 0},
      {"-machine pc -m 4160M", 0xc0000000, 0x44000000, 0, 0, 0x180000000, 0x1ffffffff},
  };
  for (const LayoutRow& r : rows) {
    SCOPED_TRACE(r.options);
    auto p = platform_from_qemu(harness_argv(r.options));
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->below_4g_mem_size, r.below);
    EXPECT_EQ(p->above_4g_mem_size, r.above);
    EXPECT_EQ(p->device_memory.base.value(), r.dm_base);
    EXPECT_EQ(p->device_memory.size, r.dm_size);
    if (r.pci64_start) {
      bool found = false;
      for (const FirmwareResource& f : p->iomem) {
        found |= f.depth == 0 && f.name == "PCI Bus 0000:00" && f.range.start.value() == r.pci64_start &&
                 f.range.last.value() == r.pci64_last;
      }
      EXPECT_TRUE(found);
    }
  }
}

// Scenario: q35 with 4096M, slots=4, maxmem=32G (spec §4.2 and §8 q35 template). Expect: the MMCONFIG and
// RCBA e820 lines, R = 0x20000 without nvdimm, and the q35 iomem block: 32-bit window split around
// MMCONFIG, "PCI MMCONFIG 0000 [bus 00-ff]" > "Reserved" > "pnp 00:05", the AHCI BAR, the RCBA "Reserved".
TEST(PlatformLayout, q35_e820_and_iomem_follow_the_q35_template) {
  auto p = platform_from_qemu(harness_argv("-machine q35 -m 4096M,slots=4,maxmem=32G"));
  ASSERT_TRUE(p) << p.error().message;
  const std::vector<std::string> bios = {
      "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
      "BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved",
      "BIOS-e820: [mem 0x00000000000f0000-0x00000000000fffff] reserved",
      "BIOS-e820: [mem 0x0000000000100000-0x000000007ffdffff] usable",
      "BIOS-e820: [mem 0x000000007ffe0000-0x000000007fffffff] reserved",
      "BIOS-e820: [mem 0x00000000b0000000-0x00000000bfffffff] reserved",
      "BIOS-e820: [mem 0x00000000fed1c000-0x00000000fed1ffff] reserved",
      "BIOS-e820: [mem 0x00000000fffc0000-0x00000000ffffffff] reserved",
      "BIOS-e820: [mem 0x0000000100000000-0x000000017fffffff] usable",
      "BIOS-e820: [mem 0x000000fd00000000-0x000000ffffffffff] reserved",
  };
  std::vector<std::string> got;
  for (const std::string& l : p->e820_log) {
    if (l.rfind("BIOS-e820", 0) == 0) got.push_back(l);
  }
  EXPECT_EQ(got, bios);
  // Spec §5.2: "[0xc0000000, 0xfed1c000)" is the largest gap when L = 2G.
  EXPECT_NE(std::find(p->e820_log.begin(), p->e820_log.end(), "[mem 0xc0000000-0xfed1bfff] available for PCI devices"),
            p->e820_log.end());
  std::vector<std::string> lines;
  for (const FirmwareResource& f : p->iomem) {
    lines.push_back(fmt::format("{}{:08x}-{:08x} : {}", std::string(2 * f.depth, ' '), f.range.start.value(),
                                f.range.last.value(), f.name));
  }
  auto at = [&](const std::string& l) { return std::find(lines.begin(), lines.end(), l) - lines.begin(); };
  const auto mmcfg = at("b0000000-bfffffff : PCI MMCONFIG 0000 [bus 00-ff]");
  ASSERT_LT(size_t(mmcfg) + 2, lines.size());
  EXPECT_EQ(lines[size_t(mmcfg) - 1], "80000000-afffffff : PCI Bus 0000:00");
  EXPECT_EQ(lines[size_t(mmcfg) + 1], "  b0000000-bfffffff : Reserved");
  EXPECT_EQ(lines[size_t(mmcfg) + 2], "    b0000000-bfffffff : pnp 00:05");
  EXPECT_EQ(lines[size_t(mmcfg) + 3], "c0000000-febfffff : PCI Bus 0000:00");
  EXPECT_EQ(lines[size_t(mmcfg) + 4], "  febff000-febfffff : 0000:00:1f.2");
  const auto hpet = at("  fed00000-fed003ff : PNP0103:00");
  EXPECT_EQ(lines[size_t(hpet) + 1], "fed1c000-fed1ffff : Reserved");
  EXPECT_NE(at("980000000-117fffffff : PCI Bus 0000:00"), ptrdiff_t(lines.size()));
}

// Scenario: spec §4.2's SeaBIOS reserved block R. Expect: 0x21000 with nvdimm=on and slots, 0x20000
// without nvdimm, 0x21000 for plain pc -m 66G (the SMBIOS page) and 0x20000 for -m 49G.
TEST(PlatformLayout, seabios_table_zone_size) {
  const std::pair<const char*, uint64_t> rows[] = {
      {"-machine pc,nvdimm=on -m 4160M,slots=4,maxmem=32G", 0x21000},
      {"-machine pc -m 4160M,slots=4,maxmem=32G", 0x20000},
      {"-machine pc,nvdimm=on -m 4160M", 0x20000},
      {"-machine pc -m 66G", 0x21000},
      {"-machine pc -m 49G", 0x20000},
  };
  for (auto [opts, r] : rows) {
    SCOPED_TRACE(opts);
    auto p = platform_from_qemu(harness_argv(opts));
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->firmware_reserved_size, r);
    EXPECT_EQ(p->e820_firmware[3].last().value() + 1, p->below_4g_mem_size - r);
  }
}

// Scenario: maxmem=1000G vs 1010G with the harness's 4160M,slots=4 (spec §5.4). Expect: 1000G boots; 1010G
// relocates above-4G RAM to 1 TiB and then fails: hole64 start roundup(0x10080000000 + 0xfc7c000000, 1G) =
// 0x1fd00000000, plus 2 GiB - 1 = 0x1fd7fffffff.
TEST(PlatformLayout, amd_one_terabyte_relocation_refused_with_40_phys_bits) {
  EXPECT_TRUE(platform_from_qemu(harness_argv("-machine pc,nvdimm=on -m 4160M,slots=4,maxmem=1000G")));
  auto p = platform_from_qemu(harness_argv("-machine pc,nvdimm=on -m 4160M,slots=4,maxmem=1010G"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Errno::Inval);
  EXPECT_EQ(p.error().message, "Address space limit 0xffffffffff < 0x1fd7fffffff phys-bits too low (40)");
}

// Scenario: spec §7.1's recorded two-node layout: pc 4G as 2G + 2G memdev nodes, a 1G DIMM on node 1 and an
// NVDIMM (1G, 128k label) on node 0, slots=4, maxmem=16G. Expect: the six SRAT lines listed there, and boot
// RAM split between the nodes at 2 GiB.
TEST(PlatformLayout, two_numa_nodes_srat_and_memory_map) {
  auto p = platform_from_qemu(harness_argv(
      "-machine pc,nvdimm=on -m 4G,slots=4,maxmem=16G -object memory-backend-ram,id=r0,size=2G "
      "-object memory-backend-ram,id=r1,size=2G -numa node,nodeid=0,memdev=r0 -numa node,nodeid=1,memdev=r1 "
      "-object memory-backend-ram,id=m1,size=1G -device pc-dimm,id=d1,memdev=m1,node=1 "
      "-object memory-backend-ram,id=m2,size=1G -device nvdimm,id=nv0,memdev=m2,label-size=128k,node=0"));
  ASSERT_TRUE(p) << p.error().message;
  const std::vector<std::string> want = {
      "ACPI: SRAT: Node 0 PXM 0 [mem 0x00000000-0x0009ffff]",
      "ACPI: SRAT: Node 0 PXM 0 [mem 0x00100000-0x7fffffff]",
      "ACPI: SRAT: Node 1 PXM 1 [mem 0x80000000-0xbfffffff]",
      "ACPI: SRAT: Node 1 PXM 1 [mem 0x100000000-0x13fffffff]",
      "ACPI: SRAT: Node 0 PXM 0 [mem 0x180000000-0x1bfdfffff] non-volatile",
      "ACPI: SRAT: Node 1 PXM 1 [mem 0x140000000-0x53fffffff] hotplug",
  };
  EXPECT_EQ(srat_memory_lines(*p), want);
  // The backends behind NUMA nodes are mapped as RAM: a DIMM cannot take them.
  EXPECT_TRUE(p->find_backend("r0")->in_use);
  const std::vector<BootMemoryRegion> ram_tail = {
      {PhysRange{PhysAddr(0x100000), PhysAddr(0x7fffffff)}, BootMemoryKind::Ram, 0},
      {PhysRange{PhysAddr(0x80000000), PhysAddr(0xbffdefff)}, BootMemoryKind::Ram, 1},
  };
  std::vector<BootMemoryRegion> got;
  for (const BootMemoryRegion& r : p->memory_map) {
    if (r.kind == BootMemoryKind::Ram && r.range.start.value() >= 0x100000 && r.range.start.value() < (4 * GiB)) {
      got.push_back(r);
    }
  }
  EXPECT_EQ(got, ram_tail);
}

// ---- QEMU's refusals (spec §2 and §6.4) ----

struct RefusalRow {
  const char* options;
  const char* message;  // QEMU's stderr text after "qemu-system-x86_64: "
};

// Scenario: command lines QEMU 7.2 refuses. Expect: Inval with QEMU's exact text (spec §2, §6.4 tables;
// device errors carry QEMU's "-device <opts>: " location).
TEST(PlatformRefusal, command_lines_qemu_refuses) {
  const RefusalRow rows[] = {
      {"-m 4G,slots=2", "slots specified but no max-size"},
      {"-m 4160M,slots=4,maxmem=4G",
       "invalid value of maxmem: maximum memory size (0x100000000) must be at least the initial memory size "
       "(0x104000000)"},
      {"-m 4160M,slots=257,maxmem=32G", "unsupported amount of memory slots: 257"},
      {"-m 4160M,slots=4,maxmem=34359738369",
       "maximum memory size must by aligned to multiple of 4096 bytes"},
      {"-machine pc -m 4G -object memory-backend-ram,id=m0,size=2G -numa node,mem=2G",
       "-numa node,mem=2G: Parameter -numa node,mem is not supported by this machine type\nUse -numa node,memdev "
       "instead"},
      {"-machine pc -m 4G -object memory-backend-ram,id=m0,size=2G -numa node,memdev=m0",
       "total memory for NUMA nodes (0x80000000) should equal RAM size (0x100000000)"},
      {"-m 4160M -object memory-backend-ram,id=m1,size=1G -device pc-dimm,id=d1,memdev=m1",
       "-device pc-dimm,id=d1,memdev=m1: no slots where allocated, please specify the 'slots' option"},
      {"-m 4160M,slots=1,maxmem=8G -object memory-backend-ram,id=m1,size=1G -object memory-backend-ram,id=m2,size=1G "
       "-device pc-dimm,id=d1,memdev=m1 -device pc-dimm,id=d2,memdev=m2",
       "-device pc-dimm,id=d2,memdev=m2: no free slots available"},
      {"-m 4160M,slots=4,maxmem=32G -object memory-backend-ram,id=m1,size=1G -device pc-dimm,id=d1,memdev=m1,slot=4",
       "-device pc-dimm,id=d1,memdev=m1,slot=4: invalid slot number 4, valid range is [0-3]"},
      {"-m 4160M,slots=4,maxmem=32G -object memory-backend-ram,id=m1,size=1G -object memory-backend-ram,id=m2,size=1G "
       "-device pc-dimm,id=d1,memdev=m1,slot=1 -device pc-dimm,id=d2,memdev=m2,slot=1",
       "-device pc-dimm,id=d2,memdev=m2,slot=1: slot 1 is busy"},
      {"-m 4160M,slots=4,maxmem=32G -object memory-backend-ram,id=m1,size=1G -device pc-dimm,id=d1,memdev=m1 "
       "-device pc-dimm,id=d2,memdev=m1",
       "-device pc-dimm,id=d2,memdev=m1: can't use already busy memdev: m1"},
      {"-m 4160M,slots=4,maxmem=32G -object memory-backend-ram,id=m1,size=1G -device pc-dimm,id=d1,memdev=m1,node=1",
       "-device pc-dimm,id=d1,memdev=m1,node=1: 'DIMM property node has value 1' which exceeds the number of numa "
       "nodes: 1"},
      {"-machine pc -m 4160M,slots=4,maxmem=32G -object memory-backend-ram,id=m1,size=1G -device nvdimm,id=n1,memdev=m1",
       "-device nvdimm,id=n1,memdev=m1: nvdimm is not enabled: missing 'nvdimm' in '-M'"},
      {"-machine pc,nvdimm=on -m 4160M,slots=4,maxmem=32G -object memory-backend-ram,id=m1,size=1G "
       "-device nvdimm,id=n1,memdev=m1,label-size=64k",
       "-device nvdimm,id=n1,memdev=m1,label-size=64k: Property 'nvdimm.label-size' (0x10000) is required at least "
       "0x20000"},
      {"-machine pc,nvdimm=on -m 4160M,slots=4,maxmem=32G -object memory-backend-ram,id=m1,size=2M "
       "-device nvdimm,id=n1,memdev=m1,label-size=128k",
       "-device nvdimm,id=n1,memdev=m1,label-size=128k: the size of memdev m1 (0x200000) is too small to contain "
       "nvdimm label (0x20000) and aligned PMEM (0x200000)"},
      {"-m 3G,slots=1,maxmem=4G -object memory-backend-ram,id=m1,size=2G -device pc-dimm,id=d1,memdev=m1",
       "-device pc-dimm,id=d1,memdev=m1: not enough space, currently 0x0 in use of total space for memory devices "
       "0x40000000"},
      {"-m 4160M,slots=4,maxmem=32G -object memory-backend-ram,id=m1,size=1G "
       "-device pc-dimm,id=d1,memdev=m1,addr=0x180100000",
       "-device pc-dimm,id=d1,memdev=m1,addr=0x180100000: address must be aligned to 0x200000 bytes"},
      {"-m 4160M,slots=4,maxmem=32G -object memory-backend-ram,id=m1,size=1G "
       "-device pc-dimm,id=d1,memdev=m1,addr=0x100000000",
       "-device pc-dimm,id=d1,memdev=m1,addr=0x100000000: can't add memory device [0x100000000:0x40000000], usable "
       "range for memory devices [0x180000000:0x7fc000000]"},
      {"-m 4160M,slots=4,maxmem=32G -object memory-backend-ram,id=m1,size=1G -object memory-backend-ram,id=m2,size=1G "
       "-device pc-dimm,id=dimm1,memdev=m1 -device pc-dimm,id=d2,memdev=m2,addr=0x1a0000000",
       "-device pc-dimm,id=d2,memdev=m2,addr=0x1a0000000: address range conflicts with memory device id='dimm1'"},
      // Window [6G, 12G), capacity 4G: d1 (512M at 9G) leaves gaps of 3G and 2.5G for a 3.5G DIMM.
      {"-m 4160M,slots=2,maxmem=8256M -object memory-backend-ram,id=m1,size=512M "
       "-object memory-backend-ram,id=m2,size=3584M -device pc-dimm,id=d1,memdev=m1,addr=0x240000000 "
       "-device pc-dimm,id=d2,memdev=m2",
       "-device pc-dimm,id=d2,memdev=m2: could not find position in guest address space for memory device - memory "
       "fragmented due to alignments"},
      // DMBASE 0x180000000 (6 GiB) is no multiple of a 4 GiB backend alignment.
      {"-m 4160M,slots=4,maxmem=32G -object memory-backend-file,id=m1,size=4G,mem-path=/tmp/f,align=4G "
       "-device pc-dimm,id=d1,memdev=m1",
       "-device pc-dimm,id=d1,memdev=m1: the alignment (0x100000000) is not supported"},
  };
  for (const RefusalRow& r : rows) {
    SCOPED_TRACE(r.options);
    auto p = platform_from_qemu(harness_argv(r.options));
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().code, Errno::Inval);
    EXPECT_EQ(p.error().message, r.message);
  }
}

// Scenario: a file backend whose size is not a multiple of its 2 MiB alignment (align=2M), cold-plugged.
// Expect: QEMU's "backend memory size must be multiple of 0x200000" (spec §6.4).
TEST(PlatformRefusal, backend_size_not_a_multiple_of_its_alignment) {
  auto p = platform_from_qemu(harness_argv("-m 4160M,slots=4,maxmem=32G -object memory-backend-file,id=m1,size=3M,"
                                           "mem-path=/tmp/f,align=2M -device pc-dimm,id=d1,memdev=m1"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "-device pc-dimm,id=d1,memdev=m1: backend memory size must be multiple of 0x200000");
}

// Scenario: options the model does not reproduce. Expect: NotSupp with a "sparsemem: " message, never a
// text that could pass for QEMU's.
TEST(PlatformRefusal, unmodelled_options_are_not_supported) {
  for (const char* opts : {"-machine microvm -m 1G", "-enable-kvm -m 1G", "-machine pc,accel=kvm -m 1G",
                           "-m 4160M,slots=1,maxmem=8G -device virtio-mem-pci,id=vm0"}) {
    SCOPED_TRACE(opts);
    auto p = platform_from_qemu(harness_argv(opts));
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().code, Errno::NotSupp);
    EXPECT_EQ(p.error().message.rfind("sparsemem: ", 0), 0u);
  }
}

// Scenario: unknown options and a missing argument. Expect: QEMU's "-foo: invalid option" and
// "-m: requires an argument".
TEST(PlatformRefusal, unknown_option_and_missing_argument) {
  auto a = platform_from_qemu(harness_argv("-foo"));
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().message, "-foo: invalid option");
  auto b = platform_from_qemu(harness_argv("-m"));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().message, "-m: requires an argument");
}

// ---- runtime device_add / device_del (spec §6.2, §6.4, §10) ----

PlatformDescription baseline() {
  auto p = platform_from_qemu(harness_argv("-machine pc,nvdimm=on -m 4160M,slots=4,maxmem=32G"));
  EXPECT_TRUE(p);
  return *p;
}

// Scenario: spec §6.2's worked example on q35 4096M: DIMM 1G at 0x180000000, NVDIMM 2G-2M, then a 512M
// DIMM. Expect: the NVDIMM at 0x1c0000000 and the DIMM first-fit at 0x23fe00000 (2 MiB aligned only).
TEST(PlatformHotplug, first_fit_after_an_nvdimm_lands_on_a_2m_boundary) {
  auto p = platform_from_qemu(harness_argv("-machine q35,nvdimm=on -m 4096M,slots=4,maxmem=32G"));
  ASSERT_TRUE(p) << p.error().message;
  for (const char* o : {"memory-backend-ram,id=m1,size=1G", "memory-backend-ram,id=m2,size=2G",
                        "memory-backend-ram,id=m3,size=512M"}) {
    ASSERT_TRUE(add_memory_backend(*p, *parse_memory_backend(o)));
  }
  auto d1 = plug_memory_device(*p, *parse_memory_device("pc-dimm,id=d1,memdev=m1"), true);
  ASSERT_TRUE(d1);
  EXPECT_EQ(d1->addr.value(), 0x180000000u);
  // 2G backend minus a 2M label rounds down to 2G - 2M at the backend's 2 MiB alignment.
  auto nv = plug_memory_device(*p, *parse_memory_device("nvdimm,id=nv,memdev=m2,label-size=2M"), true);
  ASSERT_TRUE(nv) << nv.error().message;
  EXPECT_EQ(nv->addr.value(), 0x1c0000000u);
  EXPECT_EQ(nv->size, 2 * GiB - 2 * MiB);
  auto d3 = plug_memory_device(*p, *parse_memory_device("pc-dimm,id=d3,memdev=m3"), true);
  ASSERT_TRUE(d3);
  EXPECT_EQ(d3->addr.value(), 0x23fe00000u);
}

// Scenario: spec §6.3's geometry: 8G RAM backend with label-size=128k. Expect: pmem 0x1ffe00000
// (8 GiB - 2 MiB), NFIT handle 1 and serial 0x123456 for slot 0.
TEST(PlatformHotplug, nvdimm_geometry_and_nfit_facts) {
  auto p = platform_from_qemu(harness_argv("-machine pc,nvdimm=on -m 4160M,maxmem=20G,slots=1 -object "
                                           "memory-backend-ram,id=mem0,size=8G -device "
                                           "nvdimm,id=vm0,memdev=mem0,node=0,label-size=128k"));
  ASSERT_TRUE(p) << p.error().message;
  const MemoryDevice* d = p->find_memory_device("vm0");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->size, 0x1ffe00000u);
  EXPECT_EQ(d->label_size, 128 * 1024u);
  EXPECT_EQ(d->nfit_handle(), 1u);
  EXPECT_EQ(d->nfit_serial(), 0x123456u);
}

// Scenario: refused runtime device_add calls. Expect: QEMU's bare QMP message each time, and the platform
// unchanged after every failure (devices, backends' in-use flags).
TEST(PlatformHotplug, refused_device_add_changes_nothing) {
  PlatformDescription p = baseline();
  ASSERT_TRUE(add_memory_backend(p, *parse_memory_backend("memory-backend-ram,id=m1,size=1G")));
  ASSERT_TRUE(plug_memory_device(p, *parse_memory_device("pc-dimm,id=d1,memdev=m1"), true));
  ASSERT_TRUE(add_memory_backend(p, *parse_memory_backend("memory-backend-ram,id=m2,size=1G")));
  const PlatformDescription before = p;
  const std::pair<const char*, const char*> rows[] = {
      {"pc-dimm,id=d1,memdev=m2", "Duplicate ID 'd1' for device"},
      {"pc-dimm,id=d2,memdev=nope", "Device 'nope' not found"},
      {"pc-dimm,id=d2,memdev=m1", "can't use already busy memdev: m1"},
      {"pc-dimm,id=d2,memdev=m2,addr=0x180000000", "address range conflicts with memory device id='d1'"},
      {"pc-dimm,id=d2,memdev=m2,slot=0", "slot 0 is busy"},
      {"nvdimm,id=n2,memdev=m2,label-size=64k", nullptr},
  };
  for (auto [opts, msg] : rows) {
    SCOPED_TRACE(opts);
    auto req = parse_memory_device(opts);
    if (!msg) {
      ASSERT_FALSE(req);
      EXPECT_EQ(req.error().message, "Property 'nvdimm.label-size' (0x10000) is required at least 0x20000");
      continue;
    }
    if (!req) {
      EXPECT_EQ(req.error().message, msg);
      continue;
    }
    auto d = plug_memory_device(p, *req, true);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().message, msg);
    ASSERT_EQ(p.memory_devices.size(), before.memory_devices.size());
    EXPECT_EQ(p.memory_devices[0].addr, before.memory_devices[0].addr);
    for (size_t i = 0; i < p.backends.size(); ++i) EXPECT_EQ(p.backends[i].in_use, before.backends[i].in_use);
  }
  EXPECT_EQ(add_memory_backend(p, *parse_memory_backend("memory-backend-ram,id=m1,size=1G")).error().message,
            "attempt to add duplicate property 'm1' to object (type 'container')");
}

// Scenario: device_del of an NVDIMM and of an unknown id (spec §10). Expect: "nvdimm device hot unplug is
// not supported yet." and "Device 'x' not found"; a pc-dimm's removal frees its slot and backend.
TEST(PlatformHotplug, device_del_rules) {
  auto p = platform_from_qemu(harness_argv("-machine pc,nvdimm=on -m 4160M,slots=2,maxmem=20G -object "
                                           "memory-backend-ram,id=m0,size=2G -device nvdimm,id=nv0,memdev=m0 "
                                           "-object memory-backend-ram,id=m1,size=1G -device pc-dimm,id=d1,memdev=m1"));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(check_memory_device_unplug(*p, "nv0").error().message, "nvdimm device hot unplug is not supported yet.");
  EXPECT_EQ(check_memory_device_unplug(*p, "x").error().message, "Device 'x' not found");
  auto removed = remove_memory_device(*p, "d1");
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->slot, 1u);
  EXPECT_FALSE(p->find_backend("m1")->in_use);
  auto again = plug_memory_device(*p, *parse_memory_device("pc-dimm,id=d2,memdev=m1"), true);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->slot, 1u);
}

// ---- kernel command line ----

// Scenario: the oracle's base command line. Expect: next_arg() keeps the quoted dyndbg value whole and
// without its quotes; memhp_default_state/online_policy/memmap_on_memory/movable_node are parsed values.
TEST(PlatformCmdline, kernel_params_split_like_next_arg) {
  const KernelCmdline c = parse_kernel_cmdline(
      "console=ttyS0 nokaslr dyndbg=\"file memory_hotplug.c +p; file sparse.c +p\" memhp_default_state=online_movable "
      "memory_hotplug.online_policy=auto-movable memory-hotplug.memmap_on_memory=1 movable_node -- init-arg");
  EXPECT_EQ(c.find("dyndbg"), "file memory_hotplug.c +p; file sparse.c +p");
  EXPECT_TRUE(c.nokaslr);
  EXPECT_EQ(c.memhp_default_state, MemhpDefaultState::OnlineMovable);
  EXPECT_EQ(c.online_policy, MemhpOnlinePolicy::AutoMovable);
  EXPECT_EQ(c.memmap_on_memory, true);
  EXPECT_TRUE(c.movable_node);
  EXPECT_FALSE(c.has("init-arg"));
  EXPECT_FALSE(parse_kernel_cmdline("memhp_default_state=sideways").memhp_default_state.has_value());
}

// Scenario: memmap=32M$0x110000000 on the baseline (spec §4.3, §8 [R]). Expect: the user map splits the
// above-4G RAM around a reserved entry, and iomem shows a top-level "Reserved" between two "System RAM".
TEST(PlatformCmdline, memmap_dollar_reserves_and_splits_system_ram) {
  auto p = platform_from_qemu(harness_argv("-machine pc,nvdimm=on -m 4160M,slots=4,maxmem=32G",
                                           "console=ttyS0 memmap=32M$0x110000000"));
  ASSERT_TRUE(p) << p.error().message;
  const std::vector<std::string> user_tail = {
      "user: [mem 0x0000000100000000-0x000000010fffffff] usable",
      "user: [mem 0x0000000110000000-0x0000000111ffffff] reserved",
      "user: [mem 0x0000000112000000-0x0000000143ffffff] usable",
      "user: [mem 0x000000fd00000000-0x000000ffffffffff] reserved",
  };
  std::vector<std::string> user;
  for (const std::string& l : p->e820_log) {
    if (l.rfind("user: ", 0) == 0) user.push_back(l);
  }
  ASSERT_GE(user.size(), user_tail.size());
  EXPECT_TRUE(std::equal(user_tail.begin(), user_tail.end(), user.end() - long(user_tail.size())));
  std::vector<std::string> top;
  for (const FirmwareResource& f : p->iomem) {
    if (f.depth == 0 && f.range.start.value() >= 0x100000000 && f.range.start.value() < 0x200000000) {
      top.push_back(fmt::format("{:x}-{:x} : {}", f.range.start.value(), f.range.last.value(), f.name));
    }
  }
  EXPECT_EQ(top, (std::vector<std::string>{"100000000-10fffffff : System RAM", "110000000-111ffffff : Reserved",
                                           "112000000-143ffffff : System RAM"}));
}

// Scenario: mem=4100M on the baseline (spec §4.3 log line, §9 hot-add ceiling, §4.4 RAM buffer [U]).
// Expect: "e820: remove [mem 0x100400000-0xfffffffffffffffe] usable", usable RAM ending at 0x1003fffff,
// mem_limit 4100M, and a top-level "RAM buffer" 0x100400000-0x103ffffff (to the next 64 MiB).
TEST(PlatformCmdline, mem_equals_cuts_ram_and_sets_the_hot_add_limit) {
  auto p = platform_from_qemu(harness_argv("-machine pc,nvdimm=on -m 4160M,slots=4,maxmem=32G", "mem=4100M"));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_NE(std::find(p->e820_log.begin(), p->e820_log.end(),
                      "e820: remove [mem 0x100400000-0xfffffffffffffffe] usable"),
            p->e820_log.end());
  ASSERT_TRUE(p->cmdline.mem_limit);
  EXPECT_EQ(p->cmdline.mem_limit->value(), 4100 * MiB);
  bool ram = false, buffer = false;
  for (const FirmwareResource& f : p->iomem) {
    ram |= f.name == "System RAM" && f.range.start.value() == 0x100000000 && f.range.last.value() == 0x1003fffff;
    buffer |= f.name == "RAM buffer" && f.depth == 0 && f.range.start.value() == 0x100400000 &&
              f.range.last.value() == 0x103ffffff;
  }
  EXPECT_TRUE(ram);
  EXPECT_TRUE(buffer);
}

// Scenario: e820 sanitize on overlapping and adjacent entries (e820__update_table). Expect: the larger type
// wins an overlap, same-type neighbours merge, adjacent PRAM entries stay separate (e820_nomerge).
TEST(PlatformE820, sanitize_resolves_overlaps_and_keeps_pram_apart) {
  E820Table t = {
      {PhysAddr(0x0), 0x100000, E820Type::Ram},
      {PhysAddr(0x100000), 0x100000, E820Type::Ram},
      {PhysAddr(0x180000), 0x10000, E820Type::Reserved},
      {PhysAddr(0x400000), 0x100000, E820Type::Pram},
      {PhysAddr(0x500000), 0x100000, E820Type::Pram},
  };
  ASSERT_TRUE(e820_update_table(t));
  const E820Table want = {
      {PhysAddr(0x0), 0x180000, E820Type::Ram},
      {PhysAddr(0x180000), 0x10000, E820Type::Reserved},
      {PhysAddr(0x190000), 0x70000, E820Type::Ram},
      {PhysAddr(0x400000), 0x100000, E820Type::Pram},
      {PhysAddr(0x500000), 0x100000, E820Type::Pram},
  };
  EXPECT_EQ(t, want);
  EXPECT_EQ(format_e820_entry("user", want[3]), "user: [mem 0x0000000000400000-0x00000000004fffff] persistent (type 12)");
  EXPECT_EQ(e820_type_text(E820Type{99}), "type 99");
}

// Scenario: memparse() suffixes and bases (lib/cmdline.c). Expect: 64M, 0x144000000, 1G and the count of
// characters consumed.
TEST(PlatformE820, memparse_suffixes_and_bases) {
  EXPECT_EQ(memparse("64M!0x1").value, 64 * MiB);
  EXPECT_EQ(memparse("64M!0x1").consumed, 3u);
  EXPECT_EQ(memparse("0x144000000").value, 0x144000000u);
  EXPECT_EQ(memparse("1g").value, GiB);
  EXPECT_EQ(memparse("x").consumed, 0u);
}

// ---- plain maps ----

// Scenario: an arm64 4K/48 map with RAM on two nodes, a NOMAP hole, a pmem range and a hotplug window.
// Expect: memory_map in address order with kinds and nodes, iomem "System RAM" and "reserved" (arm64's name
// for NOMAP memory), a device-memory window of 16 GiB with 4 slots.
TEST(PlatformPlainMap, arm64_map_parses_into_a_description) {
  const char* text =
      "# two nodes\n"
      "ram      0x40000000-0x7fffffff node=0\n"
      "nomap    0x80000000+2M\n"
      "ram      0x80200000+1022M node=1   # rest of the second GiB\n"
      "pmem     0x100000000+1G node=1\n"
      "hotplug  0x200000000+16G slots=4\n";
  auto p = platform_from_memory_map(text, kArm64_4K_48);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->machine, MachineType::Plain);
  EXPECT_EQ(p->arch, &kArm64_4K_48);
  const std::vector<BootMemoryRegion> want = {
      {PhysRange{PhysAddr(0x40000000), PhysAddr(0x7fffffff)}, BootMemoryKind::Ram, 0},
      {PhysRange{PhysAddr(0x80000000), PhysAddr(0x801fffff)}, BootMemoryKind::Nomap, 0},
      {PhysRange{PhysAddr(0x80200000), PhysAddr(0xbfffffff)}, BootMemoryKind::Ram, 1},
      {PhysRange{PhysAddr(0x100000000), PhysAddr(0x13fffffff)}, BootMemoryKind::PersistentLegacy, 1},
  };
  EXPECT_EQ(p->memory_map, want);
  ASSERT_EQ(p->iomem.size(), 3u);
  EXPECT_EQ(p->iomem[1].name, "reserved");
  EXPECT_EQ(p->device_memory.base.value(), 0x200000000u);
  EXPECT_EQ(p->device_memory.size, 16 * GiB);
  EXPECT_EQ(p->ram_slots, 4u);
  EXPECT_EQ(p->numa_nodes.size(), 2u);
  // The window takes DIMMs like QEMU's: first fit at the backend's alignment.
  ASSERT_TRUE(add_memory_backend(*p, *parse_memory_backend("memory-backend-ram,id=m1,size=1G")));
  auto d = plug_memory_device(*p, *parse_memory_device("pc-dimm,id=d1,memdev=m1,node=1"), true);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->addr.value(), 0x200000000u);
}

// Scenario: an x86 plain map with legacy pmem and the kernel's memmap= edit on top. Expect: the e820
// boot sequence runs on it (BIOS map, user map, trim of page 0), "Persistent Memory (legacy)" in iomem.
TEST(PlatformPlainMap, x86_map_becomes_an_e820_table) {
  auto p = platform_from_memory_map("ram 0x0-0x7fffffff\npmem 0x100000000+64M\n", kX86_64, "memmap=16M$0x10000000");
  ASSERT_TRUE(p) << p.error().message;
  const std::vector<std::string> want = {
      "BIOS-provided physical RAM map:",
      "BIOS-e820: [mem 0x0000000000000000-0x000000007fffffff] usable",
      "BIOS-e820: [mem 0x0000000100000000-0x0000000103ffffff] persistent (type 12)",
      "user-defined physical RAM map:",
      "user: [mem 0x0000000000000000-0x000000000fffffff] usable",
      "user: [mem 0x0000000010000000-0x0000000010ffffff] reserved",
      "user: [mem 0x0000000011000000-0x000000007fffffff] usable",
      "user: [mem 0x0000000100000000-0x0000000103ffffff] persistent (type 12)",
      "e820: update [mem 0x00000000-0x00000fff] usable ==> reserved",
      "e820: remove [mem 0x000a0000-0x000fffff] usable",
      "[mem 0x80000000-0xffffffff] available for PCI devices",
  };
  EXPECT_EQ(p->e820_log, want);
  bool legacy = false;
  for (const FirmwareResource& f : p->iomem) legacy |= f.name == "Persistent Memory (legacy)";
  EXPECT_TRUE(legacy);
}

// Scenario: plain maps the parser must refuse. Expect: Inval naming the line for syntax, alignment,
// overlap, x86 nomap and missing RAM; Range for an address beyond the physical limit or a huge node id.
TEST(PlatformPlainMap, refusals_name_the_line) {
  const struct {
    const char* text;
    Errno code;
    const char* message;
  } rows[] = {
      {"ram 0x0-0x7fffffff\nram 0x40000000+1G\n", Errno::Inval, "line 2: [0x40000000-0x7fffffff] overlaps line 1"},
      {"ram 0x0-0x7fffefff\nram 0x1000+4K\n", Errno::Inval, "line 2: [0x1000-0x1fff] overlaps line 1"},
      {"ram 0x800-0x7fffffff\n", Errno::Inval, "line 1: [0x800-0x7fffffff] is not aligned to the page size 0x1000"},
      {"ram 0x0-0x7fffffff\nflash 0x0+4K\n", Errno::Inval,
       "line 2: unknown item 'flash' (ram, nomap, reserved, pmem, hotplug)"},
      {"ram 0x0-0x7fffffff\nnomap 0x80000000+4K\n", Errno::Inval,
       "line 2: nomap is an arm64 memblock flag; use reserved on x86"},
      {"ram 0x0-0x7fffffff\nram 0x400000000000+1G\n", Errno::Range,
       "line 2: [0x400000000000-0x40003fffffff] lies beyond the physical address limit 0x3fffffffffff of x86-64"},
      {"ram 0x0-0x7fffffff node=1024\n", Errno::Range, "line 1: node 1024 out of range (MAX_NUMNODES 1024)"},
      {"reserved 0x0+4K\n", Errno::Inval, "plain map: no ram line"},
      {"ram 0x0-0x7fffffff\nhotplug 0x100000000+1G\nhotplug 0x200000000+1G\n", Errno::Inval,
       "line 3: a second hotplug window (the first is on line 2)"},
      {"ram 0x7fffffff-0x0\n", Errno::Inval, "line 1: range '0x7fffffff-0x0' ends before it starts"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.text);
    auto p = platform_from_memory_map(r.text, kX86_64);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().code, r.code);
    EXPECT_EQ(p.error().message, r.message);
  }
}

// ---- arm64 virt (spec §13, source reading) ----

std::vector<std::string> virt_argv(const std::string& extra) {
  std::vector<std::string> argv = {"qemu-system-aarch64", "-machine", "virt", "-cpu", "max", "-nodefaults",
                                   "-kernel", "Image"};
  for (std::string& a : split_argv(extra)) argv.push_back(a);
  return argv;
}

// Scenario: virt with -m 2G,slots=2,maxmem=8G and a 4K/48 arm64 profile. Expect: RAM [1G, 3G), device
// memory at roundup(1G + 2G, 1G) = 0xc0000000 of (8G - 2G) + 2 x 1G = 8 GiB, no e820, one "System RAM".
TEST(PlatformVirt, ram_at_one_gib_and_device_memory_after_it) {
  PlatformOptions o;
  o.arch = &kArm64_4K_48;
  auto p = platform_from_qemu(virt_argv("-m 2G,slots=2,maxmem=8G"), std::nullopt, o);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->machine, MachineType::Virt);
  EXPECT_TRUE(p->e820_firmware.empty());
  ASSERT_EQ(p->memory_map.size(), 1u);
  EXPECT_EQ(p->memory_map[0].range, (PhysRange{PhysAddr(0x40000000), PhysAddr(0xbfffffff)}));
  EXPECT_EQ(p->device_memory.base.value(), 0xc0000000u);
  EXPECT_EQ(p->device_memory.size, 8 * GiB);
  ASSERT_EQ(p->iomem.size(), 1u);
  EXPECT_EQ(p->iomem[0].name, "System RAM");
}

// Scenario: a DIMM on virt booted without firmware, then with -bios (UEFI gives the ACPI GED). Expect:
// "memory hotplug is not enabled: missing acpi-ged device"; with firmware the DIMM lands at 0xc0000000.
TEST(PlatformVirt, dimms_need_the_acpi_ged) {
  PlatformOptions o;
  o.arch = &kArm64_4K_48;
  const std::string dimm = "-m 2G,slots=2,maxmem=8G -object memory-backend-ram,id=m1,size=1G -device pc-dimm,id=d1,memdev=m1";
  auto p = platform_from_qemu(virt_argv(dimm), std::nullopt, o);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "-device pc-dimm,id=d1,memdev=m1: memory hotplug is not enabled: missing acpi-ged device");
  auto q = platform_from_qemu(virt_argv("-bios QEMU_EFI.fd " + dimm), std::nullopt, o);
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ(q->find_memory_device("d1")->addr.value(), 0xc0000000u);
}

// Scenario: virt with a 40-bit PA CPU (cortex-a53) and maxmem=1T. Expect: "Addressing limited to 40 bits,
// but memory exceeds it by N bytes" with N = 0xc0000000 + roundup(1T - 2G + 0, 1G) - 2^40 = 1 GiB.
TEST(PlatformVirt, pa_size_limit) {
  PlatformOptions o;
  o.arch = &kArm64_4K_48;
  std::vector<std::string> argv = {"qemu-system-aarch64", "-machine", "virt", "-cpu", "cortex-a53", "-m",
                                   "2G,maxmem=1T"};
  auto p = platform_from_qemu(argv, std::nullopt, o);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "Addressing limited to 40 bits, but memory exceeds it by 1073741824 bytes");
}

}  // namespace
}  // namespace sparsemem
