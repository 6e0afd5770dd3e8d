// Tests for include/sparsemem/trace.h: every oracle trace loads and writes back unchanged, the C++
// snapshot parsers rebuild the oracle's structures from its raw lines, and layout errors name the path.
#include "sparsemem/trace.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace sparsemem {
namespace {

namespace fs = std::filesystem;

const fs::path kOracle = fs::path(SPM_TEST_DATA) / "oracle";

std::vector<fs::path> trace_files() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kOracle))
    if (e.path().extension() == ".json") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Scenario: each of the 18 oracle traces loaded into the model and written back.
// Expect: the written JSON equals the file's JSON as a value, and is byte-identical to the file
// (the writer reproduces json.dumps(indent=1) and the driver's key order).
TEST(TraceRoundTrip, EveryOracleTraceIsLossless) {
  const auto files = trace_files();
  ASSERT_EQ(files.size(), 19u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    const std::string text = read_file(f);
    const auto original = OrderedJson::parse(text);
    const auto t = trace_from_json(original);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(trace_to_json(*t), original);
    EXPECT_EQ(dump_trace(*t), text);
    EXPECT_EQ(t->extra, OrderedJson::object()) << "the model leaves a key of the oracle's layout unmodelled";
  }
}

// Scenario: the raw /proc/iomem and /proc/zoneinfo lines every oracle snapshot keeps.
// Expect: parse_iomem_lines and parse_zoneinfo_lines rebuild exactly the structures the oracle's
// Python parsers recorded next to them.
TEST(TraceParsers, RebuildOracleStructuresFromRawLines) {
  size_t snapshots = 0;
  for (const auto& f : trace_files()) {
    const auto t = load_trace(f.string());
    ASSERT_TRUE(t) << t.error().message;
    for (const auto& st : t->steps) {
      SCOPED_TRACE(f.filename().string() + " step " + st.name);
      const Snapshot& s = st.snapshot;
      ASSERT_TRUE(s.iomem && s.iomem_raw && s.zones && s.zones_raw);
      Trace a, b;
      a.steps.resize(1);
      b.steps.resize(1);
      a.steps[0].snapshot.iomem = parse_iomem_lines(*s.iomem_raw);
      b.steps[0].snapshot.iomem = s.iomem;
      a.steps[0].snapshot.zones = parse_zoneinfo_lines(*s.zones_raw);
      b.steps[0].snapshot.zones = s.zones;
      EXPECT_EQ(trace_to_json(a), trace_to_json(b));
      std::vector<std::string> rendered;
      for (const auto& e : *s.iomem) rendered.push_back(iomem_line(e));
      EXPECT_EQ(rendered, *s.iomem_raw);
      ++snapshots;
    }
  }
  EXPECT_EQ(snapshots, 147u);  // every step of every trace
}

// Scenario: pfnflags, memblocks, acpi_mem, nd_dax_state, key=value and meminfo output lines as the
// guest helpers print them, including markers and malformed lines.
// Expect: the structures the oracle's parsers produce for the same lines.
TEST(TraceParsers, HelperOutputLines) {
  const auto kpf = parse_kpageflags_lines({"pfn=0x100000 flags=0x0000000100000400 count=0",
                                           "pfn=0x148000 flags=EOF count=EOF", "open_kpagecount_error=Permission denied",
                                           "pfn=0x1 flags=0x0000000008000000 count=ERR:Input/output error"});
  ASSERT_EQ(kpf.size(), 4u);
  EXPECT_EQ(kpf[0].flag_names, (std::vector<std::string>{"BUDDY", "RESERVED"}));
  EXPECT_EQ(kpf[0].count, 0u);
  EXPECT_EQ(kpf[1].flags, "EOF");
  EXPECT_FALSE(kpf[1].flag_names);
  EXPECT_EQ(kpf[1].count_marker, "EOF");
  EXPECT_EQ(kpf[2].note, "open_kpagecount_error=Permission denied");
  EXPECT_EQ(kpf[3].flag_names, (std::vector<std::string>{"bit27"}));
  // "ERR:Input/output" stops at the first blank, as the driver's (\S+) does.
  EXPECT_EQ(kpf[3].count_marker, "ERR:Input/output");

  const auto blocks = parse_memblocks_lines({"41|online|00000029|Normal|1|0|-|node0", "3|offline|00000003|DMA32 Normal|1|0|-|",
                                             "too|few|fields"});
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].id, 3);  // sorted by id
  EXPECT_TRUE(blocks[0].nodes.empty());
  EXPECT_FALSE(blocks[1].online_type);
  EXPECT_EQ(blocks[1].nodes, (std::vector<std::string>{"node0"}));

  const auto acpi = parse_acpimem_lines({"PNP0C80:00|15|\\_SB_.MHPC.MP00|yes|memory48 memory49"});
  ASSERT_EQ(acpi.size(), 1u);
  EXPECT_TRUE(acpi[0].eject);
  EXPECT_EQ(acpi[0].physical_nodes.size(), 2u);

  const auto nd = parse_nddax_lines({"region region0 size=8587837440 align=0x1000000 driver=nd_region", "x"});
  ASSERT_EQ(nd.size(), 1u);
  EXPECT_EQ(nd[0].attrs[1], (std::pair<std::string, std::string>{"align", "0x1000000"}));

  const auto kv = parse_kv_lines({"block_size_bytes=8000000", "nodes.online=0", "block_size_bytes=1"});
  EXPECT_EQ(kv, (std::vector<std::pair<std::string, std::string>>{{"block_size_bytes", "1"}, {"nodes.online", "0"}}));

  const auto mi = parse_meminfo_lines({"MemTotal:        4054448 kB", "HugePages_Total:       0", "Bogus line"});
  EXPECT_EQ(mi, (std::vector<std::pair<std::string, int64_t>>{{"MemTotal", 4054448}, {"HugePages_Total", 0}}));
}

// Scenario: traces with a missing key, a wrong type deep inside, malformed JSON, and an unknown key.
// Expect: Errno::Inval naming the JSON path; unknown keys survive a round trip in `extra`.
TEST(TraceLoad, ErrorsNameThePathAndUnknownKeysSurvive) {
  const auto original = OrderedJson::parse(read_file(kOracle / "a_baseline.json"));

  auto broken = original;
  broken["steps"][1]["snapshot"]["zones"][2]["spanned"] = "many";
  auto r = trace_from_json(broken);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errno::Inval);
  EXPECT_EQ(r.error().message, "steps[1].snapshot.zones[2].spanned: expected an integer");

  broken = original;
  broken.erase("completed");
  EXPECT_EQ(trace_from_json(broken).error().message, "completed: missing");

  EXPECT_EQ(parse_trace("{\"scenario\": ").error().code, Errno::Inval);
  EXPECT_EQ(load_trace("/nonexistent.json").error().code, Errno::NoEnt);

  auto extended = original;
  extended["new_top_key"] = {1, 2};
  extended["steps"][0]["snapshot"]["numa_maps"] = {"line"};
  extended["steps"][1]["commands"][0]["cpu"] = 0;
  const auto t = trace_from_json(extended);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->extra["new_top_key"], OrderedJson({1, 2}));
  EXPECT_EQ(trace_to_json(*t), extended);
}

// Scenario: a trace saved to a file and loaded again.
// Expect: the same JSON value.
TEST(TraceLoad, SaveAndLoad) {
  const auto t = load_trace((kOracle / "c2_qmp_hotplug.json").string());
  ASSERT_TRUE(t);
  const fs::path p = fs::temp_directory_path() / "spm_trace_test.json";
  ASSERT_TRUE(save_trace(*t, p.string()));
  const auto u = load_trace(p.string());
  ASSERT_TRUE(u);
  EXPECT_EQ(trace_to_json(*u), trace_to_json(*t));
  fs::remove(p);
  EXPECT_EQ(save_trace(*t, "/nonexistent/dir/x.json").error().code, Errno::NoEnt);
}

}  // namespace
}  // namespace sparsemem
