// Tests for src/scenario/ndtool_text.h against oracle traces d1, d3, e_kmem and spec texts.
// Expected values come from the traces, the spec's quoted blocks or hand work, never the code.
#include "scenario/ndtool_text.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace sparsemem::sim::ndtool {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

// stdout of steps[step].commands[cmd] in an oracle trace, checking the command line first.
std::string trace_stdout(const std::string& trace, size_t step, size_t cmd,
                         const std::string& cmdline) {
  std::ifstream in(fs::path(SPM_TEST_DATA) / "oracle" / (trace + ".json"));
  EXPECT_TRUE(in.good()) << trace;
  const auto j = nlohmann::json::parse(in, nullptr, false);
  EXPECT_FALSE(j.is_discarded());
  const auto& c = j.at("steps").at(step).at("commands").at(cmd);
  EXPECT_EQ(c.at("cmd").get<std::string>(), cmdline);
  return c.at("stdout").get<std::string>();
}

std::vector<std::string> args(std::initializer_list<const char*> words) {
  return {words.begin(), words.end()};
}

// The dax device object of §8 as the traces show it.
ordered_json dax_device(const char* chardev, uint64_t size, bool human) {
  ordered_json d;
  d["chardev"] = chardev;
  d["size"] = size_value(size, human);
  d["target_node"] = 0;
  d["align"] = size_value(2097152, human);
  d["mode"] = "devdax";
  return d;
}

ordered_json devdax_namespace(const char* dev, const char* map, uint64_t size, const char* uuid) {
  ordered_json ns;
  ns["dev"] = dev;
  ns["mode"] = "devdax";
  ns["map"] = map;
  ns["size"] = size_value(size, false);
  ns["uuid"] = uuid;
  ordered_json region;
  region["id"] = 0;
  region["size"] = size_value(size, false);
  region["align"] = 2097152;
  region["devices"] = ordered_json::array({dax_device("dax0.0", size, false)});
  ns["daxregion"] = region;
  ns["align"] = 2097152;
  return ns;
}

ordered_json d1_dimm() {
  ordered_json dimm;
  dimm["dev"] = "nmem0";
  dimm["id"] = "8680-56341200";
  dimm["handle"] = hex_value(1, true);
  dimm["phys_id"] = hex_value(0, true);
  return dimm;
}

ordered_json d1_region(uint64_t available) {
  ordered_json r;
  r["dev"] = "region0";
  r["size"] = size_value(8587837440, true);
  r["align"] = size_value(16777216, true);
  r["available_size"] = size_value(available, true);
  r["max_available_extent"] = size_value(available, true);
  r["type"] = "pmem";
  r["iset_id"] = hex_value(0x2468ac00123456, true);
  ordered_json mapping;
  mapping["dimm"] = "nmem0";
  mapping["offset"] = hex_value(0, true);
  mapping["length"] = hex_value(0x1ffe00000, true);
  mapping["position"] = 0;
  r["mappings"] = ordered_json::array({mapping});
  r["persistence_domain"] = "unknown";
  return r;
}

// Scenario: d1 `ndctl list -RNDu` right after init-labels. Expect: the trace's stdout byte for byte.
TEST(JsonCPretty, D1ListAfterInitLabels) {
  ordered_json top;
  top["dimms"] = ordered_json::array({d1_dimm()});
  top["regions"] = ordered_json::array({d1_region(8573157376)});
  EXPECT_EQ(json_c_pretty(top), trace_stdout("d1_nvdimm_devdax", 1, 3, "ndctl list -RNDu"));
  EXPECT_EQ(json_c_pretty(top), trace_stdout("d1_nvdimm_devdax", 10, 1, "ndctl list -RNDu"));
}

// Scenario: d1 `ndctl list -RNDu` with two 16M devdax namespaces (namespace0.1 listed first).
// Expect: the trace's stdout, human sizes nested three levels down.
TEST(JsonCPretty, D1ListWithTwoNamespaces) {
  auto ns = [](const char* dev, const char* chardev, const char* uuid) {
    ordered_json n;
    n["dev"] = dev;
    n["mode"] = "devdax";
    n["map"] = "dev";
    n["size"] = size_value(14680064, true);
    n["uuid"] = uuid;
    n["chardev"] = chardev;
    n["align"] = size_value(2097152, true);
    return n;
  };
  ordered_json region = d1_region(8573157376 - 2 * 16777216);
  region["namespaces"] =
      ordered_json::array({ns("namespace0.1", "dax0.1", "a09f69dc-fd9e-4086-bb18-198e97830150"),
                           ns("namespace0.0", "dax0.0", "b6dbd3a0-ac6d-42af-bafd-91950bd1ff37")});
  ordered_json top;
  top["dimms"] = ordered_json::array({d1_dimm()});
  top["regions"] = ordered_json::array({region});
  EXPECT_EQ(json_c_pretty(top), trace_stdout("d1_nvdimm_devdax", 7, 1, "ndctl list -RNDu"));
}

// Scenario: create-namespace outputs of d1 and e_kmem (devdax with daxregion, fsdax, raw).
// Expect: each trace stdout byte for byte.
TEST(JsonCPretty, CreateNamespaceOutputs) {
  EXPECT_EQ(json_c_pretty(devdax_namespace("namespace0.0", "dev", 14680064,
                                           "b0d12f0c-c298-40c2-b2fb-aec13f07189b")),
            trace_stdout("d1_nvdimm_devdax", 2, 0, "ndctl create-namespace --mode=devdax --size=16M"));
  EXPECT_EQ(json_c_pretty(devdax_namespace("namespace0.0", "mem", 1071644672,
                                           "d8393cc8-e83a-11f1-8161-c36f79cc4bf2")),
            trace_stdout("e_kmem", 1, 3, "ndctl create-namespace --mode=devdax --size=1G --map=mem"));

  ordered_json fsdax;
  fsdax["dev"] = "namespace0.0";
  fsdax["mode"] = "fsdax";
  fsdax["map"] = "dev";
  fsdax["size"] = 14680064;
  fsdax["uuid"] = "4d51816b-e670-4f99-bfa1-110fe23eec99";
  fsdax["sector_size"] = 512;
  fsdax["align"] = 2097152;
  fsdax["blockdev"] = "pmem0";
  EXPECT_EQ(json_c_pretty(fsdax),
            trace_stdout("d1_nvdimm_devdax", 8, 0,
                         "ndctl create-namespace --force --reconfig=namespace0.0 --mode=fsdax "
                         "--size=16M"));

  ordered_json raw;
  raw["dev"] = "namespace0.0";
  raw["mode"] = "raw";
  raw["size"] = 16777216;
  raw["uuid"] = "d9e1a470-049c-48b6-909b-a366790e2763";
  raw["sector_size"] = 512;
  raw["blockdev"] = "pmem0";
  EXPECT_EQ(json_c_pretty(raw),
            trace_stdout("d1_nvdimm_devdax", 9, 0,
                         "ndctl create-namespace --force --reconfig=namespace0.0 --mode=raw "
                         "--size=16M"));
}

// Scenario: d3 `ndctl list -RNDu` of a label-less e820 region: a single non-empty list prints bare
// (§3), zero sizes stay numbers under -u. Expect: the trace's stdout.
TEST(JsonCPretty, D3LegacyRegionList) {
  ordered_json ns;
  ns["dev"] = "namespace0.0";
  ns["mode"] = "fsdax";
  ns["map"] = "mem";
  ns["size"] = size_value(67108864, true);
  ns["sector_size"] = 512;
  ns["blockdev"] = "pmem0";
  ordered_json r;
  r["dev"] = "region0";
  r["size"] = size_value(67108864, true);
  r["align"] = size_value(16777216, true);
  r["available_size"] = size_value(0, true);
  r["max_available_extent"] = size_value(0, true);
  r["type"] = "pmem";
  r["persistence_domain"] = "unknown";
  r["namespaces"] = ordered_json::array({ns});
  ordered_json top;
  top["regions"] = ordered_json::array({r});
  EXPECT_EQ(json_c_pretty(top), trace_stdout("d3_pmem_in_early_section", 1, 6, "ndctl list -RNDu"));
}

// Scenario: daxctl outputs of e_kmem and d3: reconfigure-device prints a one-element array (no -u),
// `daxctl list -u` the bare object (display_json_array with human). Expect: the traces' stdout.
TEST(JsonCPretty, DaxctlOutputs) {
  ordered_json ram = dax_device("dax0.0", 1071644672, false);
  ram["mode"] = "system-ram";
  ram["online_memblocks"] = 7;
  ram["total_memblocks"] = 7;
  ram["movable"] = true;
  EXPECT_EQ(display_json_array(ordered_json::array({ram}), false).out,
            trace_stdout("e_kmem", 2, 0, "daxctl reconfigure-device --mode=system-ram dax0.0"));

  ordered_json noonline = dax_device("dax0.0", 1071644672, false);
  noonline["mode"] = "system-ram";
  noonline["online_memblocks"] = 0;
  noonline["total_memblocks"] = 7;
  EXPECT_EQ(json_c_pretty(ordered_json::array({noonline})),
            trace_stdout("e_kmem", 7, 0,
                         "daxctl reconfigure-device --mode=system-ram --no-online dax0.0"));

  ordered_json ram_h = dax_device("dax0.0", 1071644672, true);
  ram_h["mode"] = "system-ram";
  ram_h["online_memblocks"] = 7;
  ram_h["total_memblocks"] = 7;
  ram_h["movable"] = true;
  const DisplayText shown = display_json_array(ordered_json::array({ram_h}), true);
  EXPECT_EQ(shown.out, trace_stdout("e_kmem", 2, 1, "daxctl list -u"));
  EXPECT_EQ(shown.err, "");

  EXPECT_EQ(display_json_array(ordered_json::array({dax_device("dax0.0", 1071644672, true)}), true).out,
            trace_stdout("e_kmem", 6, 1, "daxctl list -u"));
  EXPECT_EQ(display_json_array(ordered_json::array({dax_device("dax0.0", 65011712, true)}), true).out,
            trace_stdout("d3_pmem_in_early_section", 3, 1, "daxctl list -u"));
}

// Scenario: json-c details outside the traces: '/' escaping (the daxctl region path of spec §8),
// control bytes, empty containers (json-c 0.16 prints the newline after '{' / '[' even when empty),
// negative and unsigned integers, booleans, null. Expect: the json-c forms worked out by hand.
TEST(JsonCPretty, EscapesAndEdgeForms) {
  EXPECT_EQ(json_c_pretty("/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0/region0/dax0.1"),
            R"("\/LNXSYSTM:00\/LNXSYBUS:00\/ACPI0012:00\/ndbus0\/region0\/dax0.1")");
  EXPECT_EQ(json_c_pretty(std::string("a\"b\\c\n\t\x01\x1f\x7f")), "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\x7f\"");
  EXPECT_EQ(json_c_pretty(ordered_json::object()), "{\n}");
  EXPECT_EQ(json_c_pretty(ordered_json::array()), "[\n]");
  ordered_json nested;
  nested["a"] = ordered_json::array();
  nested["b"] = ordered_json::object();
  EXPECT_EQ(json_c_pretty(nested), "{\n  \"a\":[\n  ],\n  \"b\":{\n  }\n}");
  ordered_json scalars = ordered_json::array({-1, UINT64_MAX, false, nullptr, 1.5, 2.0});
  EXPECT_EQ(json_c_pretty(scalars),
            "[\n  -1,\n  18446744073709551615,\n  false,\n  null,\n  1.5,\n  2.0\n]");
  const DisplayText empty = display_json_array(ordered_json::array(), false);
  EXPECT_EQ(empty.out, "[\n]");
  EXPECT_EQ(empty.err, "  Warning: no matching devices found\n\n");
  EXPECT_EQ(display_json_array(ordered_json::array(), true).out, "");
}

// Scenario: the human size table of §1.5 and values from the traces. Expect: the spec's strings;
// below 5000 KiB the bare number.
TEST(HumanSize, SpecAndTraceValues) {
  EXPECT_EQ(human_size_text(14680064), "14.00 MiB (14.68 MB)");
  EXPECT_EQ(human_size_text(1071644672), "1022.00 MiB (1071.64 MB)");
  EXPECT_EQ(human_size_text(8587837440), "8.00 GiB (8.59 GB)");
  EXPECT_EQ(human_size_text(8573157376), "7.98 GiB (8.57 GB)");
  EXPECT_EQ(human_size_text(8539602944), "7.95 GiB (8.54 GB)");  // d1 available after 2 x 16M
  EXPECT_EQ(human_size_text(16777216), "16.00 MiB (16.78 MB)");
  EXPECT_EQ(human_size_text(67108864), "64.00 MiB (67.11 MB)");
  EXPECT_EQ(human_size_text(65011712), "62.00 MiB (65.01 MB)");
  EXPECT_EQ(human_size_text(4194304), "4194304");
  // Boundaries by hand: 5120000 B = 4.8828 MiB, 5.12 MB; 2 GiB switches to GiB; 2 TiB to TiB.
  EXPECT_EQ(human_size_text(5119999), "5119999");
  EXPECT_EQ(human_size_text(5120000), "4.88 MiB (5.12 MB)");
  EXPECT_EQ(human_size_text((2ULL << 30) - 1), "2048.00 MiB (2147.48 MB)");
  EXPECT_EQ(human_size_text(2ULL << 30), "2.00 GiB (2.15 GB)");
  EXPECT_EQ(human_size_text(2ULL << 40), "2.00 TiB (2.20 TB)");

  EXPECT_EQ(size_value(4194304, true), ordered_json(4194304));
  EXPECT_EQ(size_value(2097152, true), ordered_json(2097152));
  EXPECT_EQ(size_value(14680064, true), ordered_json("14.00 MiB (14.68 MB)"));
  EXPECT_EQ(size_value(14680064, false), ordered_json(14680064));
  EXPECT_EQ(json_c_pretty(size_value(UINT64_MAX, false)), "-1");  // json_object_new_int64
}

// Scenario: hex keys of the d1 DIMM and region objects. Expect: "%#llx" strings, "0" for zero.
TEST(HumanSize, HexValues) {
  EXPECT_EQ(hex_value(0x1ffe00000, true), ordered_json("0x1ffe00000"));
  EXPECT_EQ(hex_value(0x2468ac00123456, true), ordered_json("0x2468ac00123456"));
  EXPECT_EQ(hex_value(1, true), ordered_json("0x1"));
  EXPECT_EQ(hex_value(0, true), ordered_json("0"));
  EXPECT_EQ(hex_value(0x1ffe00000, false), ordered_json(8587837440ULL));
  EXPECT_EQ(json_c_pretty(hex_value(UINT64_MAX, false)), "18446744073709551615");
}

// Scenario: sysfs enumeration of region0's namespaces and DAX devices and of /sys/class/nd (§1.6).
// Expect: the orders the spec records from the traces.
TEST(EnumerationOrder, SpecOrders) {
  EXPECT_EQ(libndctl_order({"namespace0.0", "namespace0.1", "namespace0.2", "namespace0.3",
                            "namespace0.4", "namespace0.5", "namespace0.6"}),
            (std::vector<std::string>{"namespace0.2", "namespace0.4", "namespace0.6",
                                      "namespace0.1", "namespace0.3", "namespace0.5",
                                      "namespace0.0"}));
  EXPECT_EQ(libndctl_order({"dax0.6", "dax0.5", "dax0.4", "dax0.3", "dax0.2", "dax0.1", "dax0.0"}),
            (std::vector<std::string>{"dax0.4", "dax0.6", "dax0.1", "dax0.3", "dax0.5", "dax0.0",
                                      "dax0.2"}));
  EXPECT_EQ(libndctl_order({"namespace0.0", "namespace0.1"}),
            (std::vector<std::string>{"namespace0.1", "namespace0.0"}));  // d1 step 7
  EXPECT_EQ(libndctl_order({"ndctl0", "ndctl1"}), (std::vector<std::string>{"ndctl1", "ndctl0"}));
  EXPECT_TRUE(libndctl_order({}).empty());
}

// Scenario: hash range clamps of kernfs_name_hash(). Expect: "" hashes to 0 and is lifted to 2;
// every hash lies in [2, 0x7ffffffe].
TEST(EnumerationOrder, HashRange) {
  EXPECT_EQ(kernfs_name_hash(""), 2u);
  for (const char* n : {"a", "region0", "namespace0.0", "dax0.0", "ndbus0", "nmem0"}) {
    const uint32_t h = kernfs_name_hash(n);
    EXPECT_GE(h, 2u) << n;
    EXPECT_LE(h, 0x7ffffffeu) << n;
  }
}

// Scenario: size arguments of §1.4 (strtoull base 0 plus one binary suffix). Expect: the values by
// hand; junk, overflow and ULLONG_MAX itself rejected.
TEST(ParseSizeArg, Forms) {
  EXPECT_EQ(parse_size_arg("16M"), 16ULL << 20);
  EXPECT_EQ(parse_size_arg("16m"), 16ULL << 20);
  EXPECT_EQ(parse_size_arg("1G"), 1ULL << 30);
  EXPECT_EQ(parse_size_arg("4k"), 4096u);
  EXPECT_EQ(parse_size_arg("2T"), 2ULL << 40);
  EXPECT_EQ(parse_size_arg("4096"), 4096u);
  EXPECT_EQ(parse_size_arg("0x1000000"), 16777216u);
  EXPECT_EQ(parse_size_arg("0X10k"), 16384u);
  EXPECT_EQ(parse_size_arg("010"), 8u);  // octal
  EXPECT_EQ(parse_size_arg("0"), 0u);
  EXPECT_EQ(parse_size_arg(" 16M"), 16ULL << 20);  // strtoull skips leading white space
  EXPECT_EQ(parse_size_arg(""), 0u);               // no digits, nothing left: 0 (tool quirk)
  EXPECT_EQ(parse_size_arg("-2"), UINT64_MAX - 1);
  EXPECT_EQ(parse_size_arg("18446744073709551614"), UINT64_MAX - 1);
  EXPECT_EQ(parse_size_arg("abc"), std::nullopt);
  EXPECT_EQ(parse_size_arg("16MB"), std::nullopt);
  EXPECT_EQ(parse_size_arg("16Q"), std::nullopt);
  EXPECT_EQ(parse_size_arg("08"), std::nullopt);  // '8' is junk after octal "0"
  EXPECT_EQ(parse_size_arg("0x"), std::nullopt);  // "0" then junk 'x'
  EXPECT_EQ(parse_size_arg("-1"), std::nullopt);  // ULLONG_MAX is the error value
  EXPECT_EQ(parse_size_arg("18446744073709551615"), std::nullopt);
  EXPECT_EQ(parse_size_arg("18446744073709551616"), std::nullopt);  // ERANGE
  EXPECT_EQ(parse_size_arg("16777216T"), std::nullopt);             // 2^64 wraps to 0
  EXPECT_EQ(parse_size_arg("0x40000000000000k"), std::nullopt);     // 2^54 * 2^10 wraps to 0
  // (2^55 - 1) * 2^10 wraps to 2^64 - 2^10, above the unscaled number, so the tool accepts it.
  EXPECT_EQ(parse_size_arg("0x7fffffffffffffk"), UINT64_MAX - 1023);

  EXPECT_EQ(size_arg_units("16M"), 1ULL << 20);
  EXPECT_EQ(size_arg_units("2g"), 1ULL << 30);
  EXPECT_EQ(size_arg_units("4096"), 1u);
}

// Scenario: §4.4 step 7, --size=1000M with --align=1G on a one-way region. Expect: the spec's
// "did you intend --size=1024M?" text.
TEST(ParseSizeArg, SizeAlignHint) {
  EXPECT_EQ(size_align_hint(1000ULL << 20, "1000M", 1ULL << 30, 1),
            "'--size=' must align to interleave-width: 1 and alignment: 1073741824\n"
            "did you intend --size=1024M?\n");
  EXPECT_EQ(size_align_hint(3ULL << 20, "3145728", 2ULL << 20, 1),
            "'--size=' must align to interleave-width: 1 and alignment: 2097152\n"
            "did you intend --size=4194304?\n");
}

// --- usage texts ---

constexpr const char* kCreateUsage = R"(
 usage: ndctl create-namespace [<options>]

    -b, --bus <bus-id>    limit namespace to a bus with an id or provider of <bus-id>
    -r, --region <region-id>
                          limit namespace to a region with an id or name of <region-id>
    -v, --verbose         emit extra debug messages to stderr
    -e, --reconfig <reconfig namespace>
                          reconfigure existing namespace
    -u, --uuid <uuid>     specify the uuid for the namespace (default: autogenerate)
    -n, --name <name>     specify an optional free form name for the namespace
    -s, --size <size>     specify the namespace size in bytes (default: available capacity)
    -m, --mode <operation-mode>
                          specify a mode for the namespace, 'sector', 'fsdax', 'devdax' or 'raw'
    -M, --map <memmap-location>
                          specify 'mem' or 'dev' for the location of the memmap
    -l, --sector-size <lba-size>
                          specify the logical sector size in bytes
    -t, --type <type>     specify the type of namespace to create 'pmem' or 'blk'
    -a, --align <align>   specify the namespace alignment in bytes (default: 2M)
    -f, --force           reconfigure namespace even if currently active
    -L, --autolabel       automatically initialize labels
    -c, --continue        continue creating namespaces as long as the filter criteria are met
    -R, --autorecover     automatically cleanup on failure

)";

// Scenario: the create-namespace usage block recorded in spec §1.3. Expect: byte for byte.
TEST(Usage, CreateNamespaceMatchesSpec) {
  EXPECT_EQ(usage_text(Subcommand::NdctlCreateNamespace), kCreateUsage);
}

// Scenario: the other usage lines quoted in spec §1.3. Expect: each appears verbatim in its block,
// after the right usage line.
TEST(Usage, OtherBlocksMatchSpec) {
  const std::string destroy = usage_text(Subcommand::NdctlDestroyNamespace);
  EXPECT_EQ(destroy.rfind("\n usage: ndctl destroy-namespace <namespace> [<options>]\n\n", 0), 0u);
  EXPECT_NE(destroy.find("    -f, --force           destroy namespace even if currently active\n"),
            std::string::npos);

  EXPECT_EQ(usage_text(Subcommand::NdctlDisableRegion),
            "\n usage: ndctl disable-region <region> [<options>]\n\n"
            "    -b, --bus <bus-id>    <region> must be on a bus with an id/provider of <bus-id>\n"
            "    -t, --type <region-type>\n"
            "                          <region> must be of the specified type\n\n");

  EXPECT_EQ(usage_text(Subcommand::DaxctlReconfigureDevice),
            "\n usage: daxctl reconfigure-device <device> [<options>]\n\n"
            R"(    -r, --region <region-id>
                          filter by region
    -u, --human           use human friendly number formats
    -v, --verbose         emit more debug messages
    -s, --size <size>     size to switch the device to
    -a, --align <align>   alignment to switch the device to
        --input <input>   input device JSON file
    -m, --mode <mode>     mode to switch the device to
    -N, --no-online       don't auto-online memory sections
    -f, --force           attempt to offline memory sections before reconfiguration
    -C, --check-config    use config files to determine parameters for the operation
        --no-movable      online memory in ZONE_NORMAL

)");

  const std::string online = usage_text(Subcommand::DaxctlOnlineMemory);
  EXPECT_EQ(online.rfind("\n usage: daxctl online-memory <device> [<options>]\n\n", 0), 0u);
  EXPECT_NE(online.find("        --no-movable      online memory in ZONE_NORMAL\n"), std::string::npos);
  EXPECT_EQ(usage_text(Subcommand::DaxctlOfflineMemory).find("no-movable"), std::string::npos);

  for (auto cmd : {Subcommand::NdctlList, Subcommand::DaxctlList})
    EXPECT_NE(usage_text(cmd).find(
                  "    -u, --human           use human friendly number formats \n"),
              std::string::npos);
}

// --- create-namespace ---

// Scenario: the create-namespace command lines of d1 and e_kmem. Expect: the typed values plus the
// defaults of §4.1 (type pmem, map dev) only when not reconfiguring.
TEST(ParseCreateNamespace, TraceCommandLines) {
  CreateNamespaceArgs a;
  ParseOutcome r = parse_create_namespace(
      args({"ndctl", "create-namespace", "--mode=devdax", "--size=16M"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(a.mode, "devdax");
  EXPECT_FALSE(a.mode_default);
  EXPECT_EQ(a.size, 16ULL << 20);
  EXPECT_EQ(a.size_text, "16M");
  EXPECT_EQ(a.type, "pmem");
  EXPECT_EQ(a.map, "dev");
  EXPECT_FALSE(a.reconfig);
  EXPECT_FALSE(a.force);
  EXPECT_TRUE(a.autolabel);
  EXPECT_TRUE(a.autorecover);
  EXPECT_FALSE(a.do_scan);
  EXPECT_FALSE(a.sector_size);

  r = parse_create_namespace(args({"ndctl", "create-namespace", "--force",
                                   "--reconfig=namespace0.0", "--mode=devdax", "--size=16M"}),
                             a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.reconfig, "namespace0.0");
  EXPECT_TRUE(a.force);
  EXPECT_FALSE(a.type);  // reconfigure keeps the namespace's own type and map
  EXPECT_FALSE(a.map);

  r = parse_create_namespace(
      args({"ndctl", "create-namespace", "--mode=devdax", "--size=1G", "--map=mem"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.map, "mem");
  EXPECT_EQ(a.size, 1ULL << 30);

  r = parse_create_namespace(args({"ndctl", "create-namespace"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_TRUE(a.do_scan);
  EXPECT_EQ(a.mode, "fsdax");
  EXPECT_TRUE(a.mode_default);
}

// Scenario: the same options in short, clustered, separate-value and abbreviated forms.
// Expect: the same parse.
TEST(ParseCreateNamespace, OptionForms) {
  CreateNamespaceArgs a;
  ParseOutcome r = parse_create_namespace(
      args({"ndctl", "create-namespace", "-fe", "namespace0.0", "-m", "devdax", "-s16M", "-a",
            "4k", "--no-autolabel", "--mod", "fsdax"}),
      a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_TRUE(a.force);
  EXPECT_EQ(a.reconfig, "namespace0.0");
  EXPECT_EQ(a.mode, "fsdax");  // the later --mod (abbreviated --mode) wins
  EXPECT_EQ(a.size, 16ULL << 20);
  EXPECT_EQ(a.align, 4096u);
  EXPECT_EQ(a.align_text, "4k");
  EXPECT_FALSE(a.autolabel);

  r = parse_create_namespace(args({"ndctl", "create-namespace", "-t", "blk", "-m", "sector"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.sector_size, 4096u);  // default for sector mode
  EXPECT_EQ(a.map, "dev");

  r = parse_create_namespace(args({"ndctl", "create-namespace", "-l", "512", "--", "-x"}), a);
  EXPECT_FALSE(r.ok);  // "--" makes "-x" an extra word
  EXPECT_NE(r.err.find("  Error: unknown extra parameter \"-x\"\n\n"), std::string::npos);
}

// Scenario: each §4.2 argument check alone. Expect: "  Error: <msg>\n\n" then the usage, exit 129.
TEST(ParseCreateNamespace, ArgumentChecks) {
  struct Row {
    std::vector<std::string> extra;
    std::string errors;
  };
  const std::vector<Row> rows = {
      {{"--type=x"}, "  Error: invalid type 'x', must be either 'pmem' or 'blk'\n\n"},
      {{"--mode=bogus"}, "  Error: invalid mode 'bogus'\n\n"},
      {{"--mode=bogus", "--map=mem"},
       "  Error: invalid mode 'bogus'\n\n"
       "  Error: --map only valid for an devdax mode pmem namespace\n\n"},
      {{"--map=bogus"}, "  Error: invalid map location 'bogus'\n\n"},
      {{"--mode=dax", "--map=mem"},
       "  Error: --map only valid for an devdax mode pmem namespace\n\n"},
      {{"-t", "blk", "-m", "devdax"}, "  Error: only 'pmem' namespaces support dax operation\n\n"},
      {{"--size=abc"},
       "  Error: failed to parse namespace size 'abc'\n\n"
       "  Error: failed to parse namespace size 'abc'\n\n"},
      {{"--align=x"}, "  Error: failed to parse namespace alignment 'x'\n\n"},
      {{"--align=3000"}, "  Error: align must be a power-of-2 greater than 4096\n\n"},
      {{"--align=0"}, "  Error: align must be a power-of-2 greater than 4096\n\n"},
      {{"--uuid=x"}, "  Error: failed to parse uuid: 'x'\n\n"},
      {{"--sector-size=x"}, "  Error: invalid sector size: x\n\n"},
      {{"foo"}, "  Error: unknown extra parameter \"foo\"\n\n"},
  };
  for (const auto& row : rows) {
    std::vector<std::string> argv = {"ndctl", "create-namespace"};
    argv.insert(argv.end(), row.extra.begin(), row.extra.end());
    CreateNamespaceArgs a;
    const ParseOutcome r = parse_create_namespace(argv, a);
    EXPECT_FALSE(r.ok) << row.extra[0];
    EXPECT_EQ(r.rc, 129) << row.extra[0];
    EXPECT_EQ(r.err, row.errors + kCreateUsage) << row.extra[0];
  }
  // All failing checks are reported, in the tool's order.
  CreateNamespaceArgs a;
  const ParseOutcome r = parse_create_namespace(
      args({"ndctl", "create-namespace", "--sector-size=y", "--uuid=u", "--size=s", "--type=t"}),
      a);
  EXPECT_EQ(r.err, std::string("  Error: invalid type 't', must be either 'pmem' or 'blk'\n\n"
                               "  Error: failed to parse namespace size 's'\n\n"
                               "  Error: failed to parse namespace size 's'\n\n"
                               "  Error: failed to parse uuid: 'u'\n\n"
                               "  Error: invalid sector size: y\n\n") +
                       kCreateUsage);
  EXPECT_TRUE(parse_create_namespace(
                  args({"ndctl", "create-namespace", "-u", "a09f69dc-fd9e-4086-bb18-198e97830150"}),
                  a)
                  .ok);
}

// Scenario: parse-options errors (util/parse-options.c). Expect: the error line, then the full
// usage for unknown options or only the failing option's line for value errors; exit 129.
TEST(ParseCreateNamespace, ParseOptionsErrors) {
  CreateNamespaceArgs a;
  ParseOutcome r = parse_create_namespace(args({"ndctl", "create-namespace", "--bogus=1"}), a);
  EXPECT_EQ(r.rc, 129);
  EXPECT_EQ(r.err, std::string("  Error: unknown option `bogus=1'\n") + kCreateUsage);

  r = parse_create_namespace(args({"ndctl", "create-namespace", "-fZ"}), a);
  EXPECT_EQ(r.err, std::string("  Error: unknown switch `Z'\n") + kCreateUsage);

  r = parse_create_namespace(args({"ndctl", "create-namespace", "--size"}), a);
  EXPECT_EQ(r.rc, 129);
  EXPECT_EQ(r.err,
            "  Error: option `size' requires a value\n"
            "\n usage: ndctl create-namespace [<options>]\n\n"
            "    -s, --size <size>     specify the namespace size in bytes (default: available "
            "capacity)\n");

  r = parse_create_namespace(args({"ndctl", "create-namespace", "-s"}), a);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n') + 1), "  Error: switch `s' requires a value\n");

  r = parse_create_namespace(args({"ndctl", "create-namespace", "--force=1"}), a);
  EXPECT_EQ(r.err,
            "  Error: option `force' takes no value\n"
            "\n usage: ndctl create-namespace [<options>]\n\n"
            "    -f, --force           reconfigure namespace even if currently active\n");

  r = parse_create_namespace(args({"ndctl", "create-namespace", "--s=16M"}), a);
  EXPECT_EQ(r.err,
            "  Error: Ambiguous option: s=16M (could be --size or --sector-size)\n"
            "\n usage: ndctl create-namespace [<options>]\n\n");

  r = parse_create_namespace(args({"ndctl", "create-namespace", "-force"}), a);
  EXPECT_EQ(r.rc, 129);
  EXPECT_EQ(r.err, "  Error: did you mean `--force` (with two dashes ?)\n");

  r = parse_create_namespace(args({"ndctl", "create-namespace", "-h"}), a);
  EXPECT_EQ(r.rc, 129);
  EXPECT_EQ(r.err, kCreateUsage);

  r = parse_create_namespace(args({"ndctl", "create-namespace", "--list-opts"}), a);
  EXPECT_EQ(r.rc, 130);
  EXPECT_EQ(r.out,
            "--bus --region --verbose --reconfig --uuid --name --size --mode --map --sector-size "
            "--type --align --force --autolabel --continue --autorecover ");
}

// --- destroy / disable / enable namespace, regions, labels ---

// Scenario: destroy-namespace as d1 and e_kmem run it, and without a target. Expect: target and
// force parsed; the missing-target error of §6 then usage.
TEST(ParseNamespaceActions, DestroyDisableEnable) {
  DestroyNamespaceArgs a;
  ParseOutcome r =
      parse_destroy_namespace(args({"ndctl", "destroy-namespace", "--force", "namespace0.0"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.target, "namespace0.0");
  EXPECT_TRUE(a.force);
  r = parse_destroy_namespace(args({"ndctl", "destroy-namespace", "all", "-f"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.target, "all");

  r = parse_destroy_namespace(args({"ndctl", "destroy-namespace", "--force"}), a);
  EXPECT_EQ(r.rc, 129);
  EXPECT_EQ(r.err, "  Error: specify a namespace to destroy, or \"all\"\n\n" +
                       usage_text(Subcommand::NdctlDestroyNamespace));
  r = parse_destroy_namespace(args({"ndctl", "destroy-namespace", "a", "b"}), a);
  EXPECT_EQ(r.err, "  Error: unknown extra parameter \"b\"\n\n" +
                       usage_text(Subcommand::NdctlDestroyNamespace));

  r = parse_disable_namespace(args({"ndctl", "disable-namespace"}), a);
  EXPECT_EQ(r.err, "  Error: specify a namespace to disable, or \"all\"\n\n" +
                       usage_text(Subcommand::NdctlDisableNamespace));
  r = parse_enable_namespace(args({"ndctl", "enable-namespace"}), a);
  EXPECT_EQ(r.err, "  Error: specify a namespace to enable, or \"all\"\n\n" +
                       usage_text(Subcommand::NdctlEnableNamespace));
  r = parse_enable_namespace(args({"ndctl", "enable-namespace", "-f", "all"}), a);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n') + 1), "  Error: unknown switch `f'\n");
  r = parse_enable_namespace(args({"ndctl", "enable-namespace", "-r", "region0", "all"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.region, "region0");
}

// Scenario: disable-region / enable-region all (d1), no target, two targets, bad --type.
// Expect: the §6 message, "unknown extra parameter", the region-type message, each with usage.
TEST(ParseNamespaceActions, Regions) {
  RegionArgs a;
  ParseOutcome r = parse_disable_region(args({"ndctl", "disable-region", "all"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.target, "all");
  r = parse_enable_region(args({"ndctl", "enable-region", "-t", "pmem", "region0"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.type, "pmem");

  r = parse_disable_region(args({"ndctl", "disable-region"}), a);
  EXPECT_EQ(r.rc, 129);
  EXPECT_EQ(r.err, "  Error: specify a specific region id to act on, or \"all\"\n\n" +
                       usage_text(Subcommand::NdctlDisableRegion));
  r = parse_enable_region(args({"ndctl", "enable-region", "region0", "region1"}), a);
  EXPECT_EQ(r.err, "  Error: unknown extra parameter \"region1\"\n\n" +
                       usage_text(Subcommand::NdctlEnableRegion));
  r = parse_enable_region(args({"ndctl", "enable-region", "--type=nvm", "all"}), a);
  EXPECT_EQ(r.err, "  Error: unknown region type 'nvm', should be 'pmem' or 'blk'\n\n" +
                       usage_text(Subcommand::NdctlEnableRegion));
}

// Scenario: init-labels all (d1, e_kmem), no target, bad names, a bad label version.
// Expect: dimm_action()'s texts; the bad version is exit 1 with "initialized 0 nmem".
TEST(ParseNamespaceActions, InitLabels) {
  InitLabelsArgs a;
  ParseOutcome r = parse_init_labels(args({"ndctl", "init-labels", "all"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.targets, std::vector<std::string>{"all"});
  EXPECT_EQ(a.label_version, "1.1");
  EXPECT_FALSE(a.label_v12);

  r = parse_init_labels(args({"ndctl", "init-labels", "nmem0", "bogus", "-f", "-V", "v1.2"}), a);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.err, "'bogus' is not a valid dimm name\n");
  EXPECT_EQ(a.targets, std::vector<std::string>{"nmem0"});
  EXPECT_TRUE(a.force);
  EXPECT_TRUE(a.label_v12);

  const std::string usage = usage_text(Subcommand::NdctlInitLabels);
  EXPECT_EQ(usage.rfind("\n usage: ndctl init-labels <nmem0> [<nmem1>..<nmemN>] [<options>]\n\n", 0),
            0u);
  r = parse_init_labels(args({"ndctl", "init-labels"}), a);
  EXPECT_EQ(r.rc, 129);
  EXPECT_EQ(r.err, usage);
  r = parse_init_labels(args({"ndctl", "init-labels", "bogus"}), a);
  EXPECT_EQ(r.err, "'bogus' is not a valid dimm name\n" + usage);
  r = parse_init_labels(args({"ndctl", "init-labels", "bogus", "all"}), a);
  EXPECT_EQ(r.rc, 129);  // "all" collapses the count the errors are compared with

  r = parse_init_labels(args({"ndctl", "init-labels", "--label-version=1.3", "all"}), a);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "'1.3' is not a valid label version\ninitialized 0 nmem\n");
}

// --- list ---

// Scenario: `ndctl list -RNDu` (d1), `-RNDBu` (a_baseline), -v counts, filters alone, -X alone.
// Expect: the typed flags, and resolved() per §3 "Defaults".
TEST(ParseList, NdctlList) {
  NdctlListArgs a;
  ParseOutcome r = parse_ndctl_list(args({"ndctl", "list", "-RNDu"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_TRUE(a.regions && a.namespaces && a.dimms && a.human);
  EXPECT_FALSE(a.buses);
  r = parse_ndctl_list(args({"ndctl", "list", "-RNDBu"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_TRUE(a.buses);

  r = parse_ndctl_list(args({"ndctl", "list"}), a);
  ASSERT_TRUE(r.ok);
  NdctlListArgs d = a.resolved();
  EXPECT_TRUE(d.namespaces);
  EXPECT_FALSE(d.regions || d.dimms || d.buses || d.dax || d.media_errors);

  r = parse_ndctl_list(args({"ndctl", "list", "-vv"}), a);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(a.verbose, 2);
  d = a.resolved();
  EXPECT_TRUE(d.buses && d.dimms && d.regions && d.namespaces && d.dax && d.media_errors);
  EXPECT_FALSE(d.idle || d.firmware || d.health || d.capabilities);
  r = parse_ndctl_list(args({"ndctl", "list", "-v", "--verbose", "-v"}), a);
  EXPECT_EQ(a.verbose, 3);
  d = a.resolved();
  EXPECT_TRUE(d.idle && d.firmware && d.health && d.capabilities);

  r = parse_ndctl_list(args({"ndctl", "list", "-r", "0"}), a);
  d = a.resolved();
  EXPECT_TRUE(d.regions);
  EXPECT_FALSE(d.namespaces);
  EXPECT_EQ(d.region, "0");

  r = parse_ndctl_list(args({"ndctl", "list", "-X"}), a);
  d = a.resolved();
  EXPECT_TRUE(d.namespaces && d.dax);
  EXPECT_EQ(d.mode, "dax");
  r = parse_ndctl_list(args({"ndctl", "list", "-X", "-N", "--mode=fsdax"}), a);
  EXPECT_EQ(a.resolved().mode, "fsdax");

  r = parse_ndctl_list(args({"ndctl", "list", "foo", "bar"}), a);
  EXPECT_EQ(r.rc, 129);
  EXPECT_EQ(r.err, "  Error: unknown parameter \"foo\"\n\n  Error: unknown parameter \"bar\"\n\n" +
                       usage_text(Subcommand::NdctlList));
}

// Scenario: `daxctl list` (a_baseline), `-u` (e_kmem), a bare -r / -d, extra words.
// Expect: devices by default; -r selects regions (§8).
TEST(ParseList, DaxctlList) {
  DaxctlListArgs a;
  ParseOutcome r = parse_daxctl_list(args({"daxctl", "list", "-u"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_TRUE(a.human);
  EXPECT_TRUE(a.resolved().devices);
  EXPECT_FALSE(a.resolved().regions);

  r = parse_daxctl_list(args({"daxctl", "list", "-r", "0"}), a);
  EXPECT_TRUE(a.resolved().regions);
  EXPECT_FALSE(a.resolved().devices);
  r = parse_daxctl_list(args({"daxctl", "list", "--dev=dax0.0"}), a);
  EXPECT_TRUE(a.resolved().devices);
  r = parse_daxctl_list(args({"daxctl", "list", "-RDM"}), a);
  EXPECT_TRUE(a.regions && a.devices && a.mappings);

  r = parse_daxctl_list(args({"daxctl", "list", "x"}), a);
  EXPECT_EQ(r.err, "  Error: unknown parameter \"x\"\n\n" + usage_text(Subcommand::DaxctlList));
}

// --- daxctl device commands ---

// Scenario: the reconfigure-device command lines of e_kmem and d3. Expect: device, mode and flags.
TEST(ParseDaxctl, ReconfigureTraceCommandLines) {
  ReconfigureDeviceArgs a;
  ParseOutcome r = parse_reconfigure_device(
      args({"daxctl", "reconfigure-device", "--mode=system-ram", "dax0.0"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.device, "dax0.0");
  EXPECT_EQ(a.mode, "system-ram");
  EXPECT_FALSE(a.force || a.no_online || a.no_movable);

  r = parse_reconfigure_device(
      args({"daxctl", "reconfigure-device", "--mode=devdax", "--force", "dax0.0"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_TRUE(a.force);
  r = parse_reconfigure_device(args({"daxctl", "reconfigure-device", "--mode=system-ram",
                                     "--no-online", "dax0.0"}),
                               a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_TRUE(a.no_online);

  r = parse_reconfigure_device(
      args({"daxctl", "reconfigure-device", "-m", "system-ram", "-N", "--no-movable", "all"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.device, "all");
  EXPECT_TRUE(a.no_online && a.no_movable);

  r = parse_reconfigure_device(
      args({"daxctl", "reconfigure-device", "--mode=bogus", "/dev/dax0.0"}), a);
  ASSERT_TRUE(r.ok) << r.err;  // the mode is checked by the command, not the parser (§9)
  EXPECT_EQ(a.device, "dax0.0");

  // "--online" negates "--no-online".
  r = parse_reconfigure_device(args({"daxctl", "reconfigure-device", "--mode=devdax",
                                     "--no-online", "--online", "dax0.0"}),
                               a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_FALSE(a.no_online);

  r = parse_reconfigure_device(args({"daxctl", "reconfigure-device", "-s", "1G", "dax0.0"}), a);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(a.size, 1ULL << 30);
  EXPECT_EQ(a.size_text, "1G");
}

// Scenario: the usage errors of §9. Expect: daxctl's unprefixed messages, then the usage, 129.
TEST(ParseDaxctl, ReconfigureErrors) {
  const std::string usage = usage_text(Subcommand::DaxctlReconfigureDevice);
  ReconfigureDeviceArgs a;
  ParseOutcome r = parse_reconfigure_device(args({"daxctl", "reconfigure-device", "dax0.0"}), a);
  EXPECT_EQ(r.rc, 129);
  EXPECT_EQ(r.err, "error: a 'align', 'mode' or 'size' option is required\n" + usage);
  r = parse_reconfigure_device(args({"daxctl", "reconfigure-device", "--mode=system-ram"}), a);
  EXPECT_EQ(r.err, "specify a device to reconfigure, or \"all\"\n" + usage);
  r = parse_reconfigure_device(
      args({"daxctl", "reconfigure-device", "--mode=devdax", "-N", "dax0.0"}), a);
  EXPECT_EQ(r.err, "--no-online is incompatible with --mode=devdax\n" + usage);
  r = parse_reconfigure_device(
      args({"daxctl", "reconfigure-device", "-m", "devdax", "dax0.0", "dax0.1"}), a);
  EXPECT_EQ(r.err, "unknown extra parameter \"dax0.1\"\n" + usage);
  r = parse_reconfigure_device(
      args({"daxctl", "reconfigure-device", "-C", "-m", "devdax", "dax0.0"}), a);
  EXPECT_EQ(r.err,
            "dax0.0: -C cannot be used with --mode, --(no-)movable, or --(no-)online\n" + usage);
}

// Scenario: online-memory / offline-memory / enable-device / disable-device as e_kmem runs them,
// and without a device. Expect: §10's messages; --no-movable is unknown to offline-memory.
TEST(ParseDaxctl, MemoryAndDeviceOps) {
  MemoryOpArgs m;
  ParseOutcome r = parse_online_memory(args({"daxctl", "online-memory", "--no-movable", "dax0.0"}), m);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_TRUE(m.no_movable);
  EXPECT_EQ(m.device, "dax0.0");
  r = parse_offline_memory(args({"daxctl", "offline-memory", "dax0.0"}), m);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_FALSE(m.no_movable);

  r = parse_online_memory(args({"daxctl", "online-memory"}), m);
  EXPECT_EQ(r.err, "specify a device to online memory for, or \"all\"\n" +
                       usage_text(Subcommand::DaxctlOnlineMemory));
  r = parse_offline_memory(args({"daxctl", "offline-memory"}), m);
  EXPECT_EQ(r.err, "specify a device to offline memory for, or \"all\"\n" +
                       usage_text(Subcommand::DaxctlOfflineMemory));
  r = parse_offline_memory(args({"daxctl", "offline-memory", "--no-movable", "dax0.0"}), m);
  EXPECT_EQ(r.err, "  Error: unknown option `no-movable'\n" +
                       usage_text(Subcommand::DaxctlOfflineMemory));

  DeviceOpArgs d;
  r = parse_enable_device(args({"daxctl", "enable-device", "-u", "all"}), d);
  ASSERT_TRUE(r.ok) << r.err;
  EXPECT_EQ(d.device, "all");
  EXPECT_TRUE(d.human);
  r = parse_disable_device(args({"daxctl", "disable-device"}), d);
  EXPECT_EQ(r.err, "specify a device to disable, or \"all\"\n" +
                       usage_text(Subcommand::DaxctlDisableDevice));
  EXPECT_EQ(usage_text(Subcommand::DaxctlDisableDevice).rfind("\n usage: daxctl disable-device <device>\n\n", 0), 0u);
  // cmd_enable_device() parses with the disable action, so it says "disable" too.
  r = parse_enable_device(args({"daxctl", "enable-device"}), d);
  EXPECT_EQ(r.err, "specify a device to disable, or \"all\"\n" +
                       usage_text(Subcommand::DaxctlEnableDevice));
}

}  // namespace
}  // namespace sparsemem::sim::ndtool
