// ndctl/daxctl 76.1 text layer (spec ndctl-daxctl.md §1, §3, §4.2, §6, §8-§10): JSON and options.
// Pure, stateless, no exceptions; the command bodies call in; edit with ndtool_text_test.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sparsemem::sim::ndtool {

// ---------------------------------------------------------------------------------------------
// JSON output (§1.5)

// json_object_to_json_string_ext(v, JSON_C_TO_STRING_PRETTY) of json-c 0.16, which both tools use:
// two spaces per level, `"key":value`, one member per line, `/` escaped as `\/`, control bytes as
// `\u00xx` (lowercase hex), other bytes verbatim (no UTF-8 validation), doubles as "%.17g" plus
// ".0" when that looks like an integer. Empty containers print as "{\n<indent>}" / "[\n<indent>]"
// (json-c emits the newline after the opening bracket unconditionally). No trailing newline.
std::string json_c_pretty(const nlohmann::ordered_json& v);

// display_size() of util/json.c: the quoted-string body for v >= 5000 KiB, e.g. 14680064 ->
// "14.00 MiB (14.68 MB)"; below that the decimal digits the tool prints as a bare number.
std::string human_size_text(uint64_t v);

// A "size" key (S in §3/§8): with !human the json-c int64 the tools store (so values above
// INT64_MAX come out negative, as ndctl prints them); with human the string of human_size_text()
// when v >= 5120000, else the plain number.
nlohmann::ordered_json size_value(uint64_t v, bool human);

// A "hex" key (H): with human "%#llx" as a string ("0x1ffe00000", zero -> "0"); else the number.
nlohmann::ordered_json hex_value(uint64_t v, bool human);

// util_display_json_array(): what a list prints for a result array. More than one element, or
// !human: the whole array (an empty array also warns on stderr, which callers avoid by not
// displaying empty results, §1.5); human and one element: that element alone.
struct DisplayText {
  std::string out;  // stdout, without the trailing newline the tool adds (the harness strips it)
  std::string err;  // stderr, as written
};
DisplayText display_json_array(const nlohmann::ordered_json& array, bool human);

// ---------------------------------------------------------------------------------------------
// Enumeration order (§1.6)

// kernfs_name_hash(name, ns = NULL) of fs/kernfs/dir.c, 6.1 (64-bit hash_long). Always in
// [2, 0x7ffffffe].
uint32_t kernfs_name_hash(std::string_view name);

// The order libndctl/libdaxctl list a sysfs directory's entries: readdir returns them sorted by
// (kernfs_name_hash, strcmp name) and the libraries push each at the head of their list, so the
// result is that order reversed. Input order does not matter. Example (§1.6): namespace0.0..0.6 ->
// namespace0.2, 0.4, 0.6, 0.1, 0.3, 0.5, 0.0.
std::vector<std::string> libndctl_order(std::vector<std::string> sysfs_names);

// ---------------------------------------------------------------------------------------------
// Numbers on the command line (§1.4)

// parse_size64() of util/size.c: strtoull(s, 0) (leading white space, an optional sign, 0x hex,
// leading-0 octal), then at most one of kKmMgGtT (x 1024^n), then the end of the string. nullopt
// where the tool gets ULLONG_MAX: trailing junk, strtoull overflow (ERANGE), the literal value
// ULLONG_MAX, or a suffix product smaller than the unscaled number. Reproduced quirks: that product
// test misses wraps that land above the unscaled number (0x7fffffffffffff k), "" and "k" parse as
// 0, and "-2" is 2^64-2.
std::optional<uint64_t> parse_size_arg(std::string_view s);

// The unit __parse_size64() reports for s: 1, or 1024^n for a k/m/g/t suffix.
uint64_t size_arg_units(std::string_view s);

// validate_namespace_options() step 7 message (§4.4), without the "create namespace: " prefix
// err() adds: "'--size=' must align to interleave-width: <ways> and alignment: <align>\n
// did you intend --size=<n><unit>?\n", the size rounded up to max(unit of size_text, align)*ways.
// Requires align*ways > 0.
std::string size_align_hint(uint64_t size, std::string_view size_text, uint64_t align,
                            unsigned ways);

// ---------------------------------------------------------------------------------------------
// Option parsing (§1.3, util/parse-options.c)
//
// Every parser takes the whole command line, argv[0] = "ndctl"/"daxctl", argv[1] = the
// subcommand, and accepts what the tool accepts: `--opt=value`, `--opt value`, unambiguous
// abbreviations (`--mod=devdax`), `--no-<opt>` negation, `-s 16M`, `-s16M`, clustered flags
// (`-RNDu`, `-vv`), `--` ending the options, options after positional words, -h/--help.

// !ok: the tool stops before touching any device. rc is its exit status (129 usage, 130
// --list-opts, 1 or 0 for the few non-usage stops noted per parser); err is everything it wrote to
// stderr and out to stdout (only --list-opts writes there). ok: rc is 0 and err holds stderr text the
// tool printed while parsing and then carried on (init-labels' invalid names); print it first.
struct ParseOutcome {
  bool ok = true;
  int rc = 0;
  std::string err;
  std::string out;
};

enum class Subcommand {
  NdctlCreateNamespace,
  NdctlDestroyNamespace,
  NdctlDisableNamespace,
  NdctlEnableNamespace,
  NdctlDisableRegion,
  NdctlEnableRegion,
  NdctlInitLabels,
  NdctlList,
  DaxctlList,
  DaxctlReconfigureDevice,
  DaxctlOnlineMemory,
  DaxctlOfflineMemory,
  DaxctlEnableDevice,
  DaxctlDisableDevice,
};

// usage_with_options(): "\n usage: <line>\n\n", one line per option (§1.3 column rule), "\n".
std::string usage_text(Subcommand cmd);

// ndctl create-namespace (§4.1, §4.2). After a successful parse the fields hold what
// set_defaults() leaves in the tool: without --reconfig, type defaults to "pmem", mode to "fsdax"
// ("sector" for blk; mode_default set) and map to "dev"; sector_size defaults to 4096 for blk or
// sector mode. autolabel and autorecover are on unless negated (--no-autolabel), as in the tool.
// size/align/sector_size are parse_size_arg() of the typed text, which stays in *_text.
struct CreateNamespaceArgs {
  std::optional<std::string> bus, region, reconfig, uuid, name, mode, map, type;
  std::optional<uint64_t> size, align, sector_size;
  bool force = false, verbose = false, autolabel = true, cont = false, autorecover = true;
  bool mode_default = false;  // mode was not typed (the "default mode" of §4.1)
  bool do_scan = false;       // no arguments at all: the tool retries as type blk on failure (§4.5)
  std::string size_text, align_text, sector_size_text;  // as typed ("" if not given)
};
// Errors (all reported, then usage, 129) in the tool's order: type, mode, map, map vs mode,
// blk vs dax, size, align, size again, uuid, sector size, extra words.
ParseOutcome parse_create_namespace(const std::vector<std::string>& argv, CreateNamespaceArgs& out);

// ndctl destroy-namespace / disable-namespace / enable-namespace <namespace|all> (§6). force is
// only an option of destroy. Missing target: `specify a namespace to destroy, or "all"` (resp.
// disable, enable) + usage, 129; extra words: `unknown extra parameter "x"` + usage, 129.
struct DestroyNamespaceArgs {
  std::string target;
  std::optional<std::string> bus, region;
  bool force = false, verbose = false;
};
ParseOutcome parse_destroy_namespace(const std::vector<std::string>& argv,
                                     DestroyNamespaceArgs& out);
ParseOutcome parse_disable_namespace(const std::vector<std::string>& argv,
                                     DestroyNamespaceArgs& out);
ParseOutcome parse_enable_namespace(const std::vector<std::string>& argv,
                                    DestroyNamespaceArgs& out);

// ndctl disable-region / enable-region <region|all> (§6). A --type other than pmem/blk is a usage
// error (`unknown region type 'x', should be 'pmem' or 'blk'`).
struct RegionArgs {
  std::string target;
  std::optional<std::string> bus, type;
};
ParseOutcome parse_disable_region(const std::vector<std::string>& argv, RegionArgs& out);
ParseOutcome parse_enable_region(const std::vector<std::string>& argv, RegionArgs& out);

// ndctl init-labels <nmemN...|all> (§6). targets keeps the valid names in order, or just "all"
// (the tool stops scanning at "all"). No target: usage alone, 129; every word invalid: the
// `'x' is not a valid dimm name` lines then usage, 129; some invalid: ok with those lines in err. An
// unknown --label-version (1.1, v1.1, 1.2, v1.2 accepted) is !ok with rc 1 and err ending in
// "initialized 0 nmem\n", exactly what the tool prints.
struct InitLabelsArgs {
  std::vector<std::string> targets;
  std::optional<std::string> bus;
  bool force = false, verbose = false;
  std::string label_version = "1.1";  // as typed
  bool label_v12 = false;             // label_version names v1.2
};
ParseOutcome parse_init_labels(const std::vector<std::string>& argv, InitLabelsArgs& out);

// ndctl list (§3). The fields are the options as typed; resolved() applies cmd_list()'s defaults.
struct NdctlListArgs {
  std::optional<std::string> bus, region, dimm, namespace_id, mode, type, numa_node;
  bool buses = false, dimms = false, firmware = false, health = false, regions = false,
       namespaces = false, dax = false, capabilities = false, idle = false, configured = false,
       media_errors = false, human = false;
  int verbose = 0;  // -v count
  // With none of -B -D -R -N: -b/-r/-d turn on their list and -X alone filters mode "dax"; -v adds
  // media errors, namespaces and dax, -vv buses, DIMMs and regions, -vvv idle, firmware, health
  // and capabilities; still no list -> namespaces (NDCTL_LIST_LINT unset).
  NdctlListArgs resolved() const;
};
ParseOutcome parse_ndctl_list(const std::vector<std::string>& argv, NdctlListArgs& out);

// daxctl list (§8); resolved(): with neither -D nor -R, -r selects regions and -d devices; still
// nothing -> devices.
struct DaxctlListArgs {
  std::optional<std::string> region, dev;
  bool devices = false, regions = false, mappings = false, idle = false, human = false;
  DaxctlListArgs resolved() const;
};
ParseOutcome parse_daxctl_list(const std::vector<std::string>& argv, DaxctlListArgs& out);

// daxctl reconfigure-device <dev|all> (§9). device is basename() of the word ("/dev/dax0.0" ->
// "dax0.0"). mode is not validated (the command fails later with "unknown mode requested").
// size/align are parse_size_arg() of the text; an unparsable one is nullopt, as the tool then
// holds its "not given" value -1. With -C and no conflicting option the config-file lookup is the
// caller's (this model has no daxctl config files).
struct ReconfigureDeviceArgs {
  std::string device;
  std::optional<std::string> mode, region, input;
  std::optional<std::string> size_text, align_text;
  std::optional<uint64_t> size, align;
  bool no_online = false, force = false, no_movable = false, human = false,
       check_config = false, verbose = false;
};
ParseOutcome parse_reconfigure_device(const std::vector<std::string>& argv,
                                      ReconfigureDeviceArgs& out);

// daxctl online-memory / offline-memory <dev|all> (§10); --no-movable exists only for online.
struct MemoryOpArgs {
  std::string device;
  std::optional<std::string> region;
  bool no_movable = false, human = false, verbose = false;
};
ParseOutcome parse_online_memory(const std::vector<std::string>& argv, MemoryOpArgs& out);
ParseOutcome parse_offline_memory(const std::vector<std::string>& argv, MemoryOpArgs& out);

// daxctl enable-device / disable-device <dev|all> (§10). Both report a missing device as
// `specify a device to disable, or "all"`: cmd_enable_device() parses with the disable action.
struct DeviceOpArgs {
  std::string device;
  std::optional<std::string> region;
  bool human = false, verbose = false;
};
ParseOutcome parse_enable_device(const std::vector<std::string>& argv, DeviceOpArgs& out);
ParseOutcome parse_disable_device(const std::vector<std::string>& argv, DeviceOpArgs& out);

}  // namespace sparsemem::sim::ndtool
