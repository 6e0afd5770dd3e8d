// Trace: what one scenario run showed, in the oracle's JSON layout (shared/oracle/README.md, "Trace
// layout"). Plain values; loading and writing are pure, and load(write(t)) == t for every trace.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sparsemem/result.h"
#include "sparsemem/scenario.h"

namespace sparsemem {

// Every record keeps the keys it does not model in `extra` (an object, in file order), so a trace
// written by a newer driver still round-trips; the writer puts them after the modelled keys.

// One guest command. Each field is absent when the guest died before reporting it.
struct CommandRecord {
  std::optional<std::string> cmd;
  std::optional<int64_t> rc;  // 124: killed by the per-command timeout
  std::optional<double> t0, t1;  // guest uptime (s) at start and end
  std::optional<std::string> out, err;  // "stdout" / "stderr", without the final newline
  OrderedJson extra = OrderedJson::object();
};

// One host action: {"action", "response", "events", "elapsed_s"}, or {"error": "no QMP connection"}.
struct HostActionRecord {
  std::optional<std::string> action;
  std::optional<OrderedJson> response;  // absent for sleep
  std::optional<std::vector<OrderedJson>> events;
  std::optional<double> elapsed_s;
  std::optional<std::string> error;
  OrderedJson extra = OrderedJson::object();
};

// One /proc/iomem line.
struct TraceIomemLine {
  int64_t depth = 0;  // nesting level, 0 = top
  std::string start;  // "0x..." as printed (zero-padded to the field width /proc/iomem used)
  std::string end;    // inclusive
  std::string name;
  OrderedJson extra = OrderedJson::object();
};
// The /proc/iomem line an entry came from: "  " per level, "start-end : name" without 0x.
std::string iomem_line(const TraceIomemLine& e);

// /sys/devices/system/memory/memoryN.
struct MemoryBlockEntry {
  int64_t id = 0;
  std::string state, phys_index, valid_zones, removable, phys_device;
  std::optional<std::string> online_type;  // null: no such attribute in 6.1
  std::vector<std::string> nodes;          // nodeN links in the block directory
  OrderedJson extra = OrderedJson::object();
};

// One zone of /proc/zoneinfo. Page counts are absent when their line was not printed.
struct ZoneEntry {
  int64_t node = 0;
  std::string zone;
  std::optional<int64_t> start_pfn;  // null for an empty zone
  std::optional<int64_t> pages_free, min, low, high, spanned, present, managed, cma;
  std::optional<int64_t> end_pfn;    // start_pfn + spanned, present only with start_pfn
  OrderedJson extra = OrderedJson::object();
};

// One pfnflags line: a sampled pfn, or {"note": line} for a line pfnflags did not print per pfn.
struct KpageflagsEntry {
  std::optional<std::string> note;
  std::string pfn;    // "0x..."
  std::string flags;  // "0x%016x", or "EOF" / "ERR:..." / "SHORT:n"
  std::optional<uint64_t> count;  // numeric /proc/kpagecount value, else count_marker
  std::string count_marker;
  std::optional<std::vector<std::string>> flag_names;  // only for numeric flags
  OrderedJson extra = OrderedJson::object();
};

// One PNP0C80 ACPI memory device.
struct AcpiMemoryDevice {
  std::string name, status, path;
  bool eject = false;
  std::vector<std::string> physical_nodes;
  OrderedJson extra = OrderedJson::object();
};

// One libnvdimm / device-dax object: kind (region, namespace, dax, pfn, btt, nd, daxdev), name,
// then its attributes in the order nd_dax_state printed them (all strings, "driver" included).
struct NdDaxEntry {
  std::string kind, name;
  std::vector<std::pair<std::string, std::string>> attrs;
};

// The state at the end of a step. A part is absent when the guest did not report it (no pfns:
// leaves kpageflags out; a guest that died mid-snapshot leaves the rest out).
struct Snapshot {
  std::optional<std::vector<TraceIomemLine>> iomem;
  std::optional<std::vector<std::string>> iomem_raw;
  std::optional<std::vector<MemoryBlockEntry>> memory_blocks;
  std::optional<std::vector<std::pair<std::string, std::string>>> memory_global;
  std::optional<std::vector<ZoneEntry>> zones;
  std::optional<std::vector<std::string>> zones_raw;
  std::optional<std::vector<std::pair<std::string, int64_t>>> meminfo;  // kB, HugePages_* counts
  std::optional<std::vector<KpageflagsEntry>> kpageflags;
  std::optional<std::vector<AcpiMemoryDevice>> acpi_memory_devices;
  std::optional<std::vector<NdDaxEntry>> nd_dax;
  std::optional<std::vector<std::string>> dmesg;  // lines added since the previous snapshot
  OrderedJson extra = OrderedJson::object();
};

struct TraceStep {
  int64_t index = 0;  // 0 = boot
  StepKind type = StepKind::Guest;
  std::string name;
  std::vector<CommandRecord> commands;
  Snapshot snapshot;
  double t_start = 0;  // host seconds since QEMU start
  std::optional<double> guest_uptime_start;  // absent for step 0
  std::optional<std::vector<HostActionRecord>> host_actions;  // host steps only
  std::optional<double> t_end, guest_uptime_end;
  OrderedJson extra = OrderedJson::object();
};

// A driver-level problem: where = qemu-start (rc, qemu_output), qmp-connect or driver (error).
struct DriverError {
  std::string where;
  std::optional<int64_t> rc;
  std::optional<std::string> qemu_output;
  std::optional<std::string> error;
  OrderedJson extra = OrderedJson::object();
};

struct Trace {
  std::string scenario, scenario_file, description, scenario_source, kernel, qemu_version;
  std::vector<std::string> qemu_cmdline;
  bool completed = false;
  std::vector<TraceStep> steps;
  std::vector<DriverError> errors;
  std::optional<OrderedJson> qemu_greeting;
  std::optional<std::string> guest_kernel, guest_cmdline;
  std::optional<double> boot_to_init_s;
  std::optional<OrderedJson> final_memory_devices;
  std::optional<std::vector<OrderedJson>> trailing_qmp_events;
  std::optional<int64_t> qemu_exit;
  std::optional<std::string> qemu_output;
  std::optional<std::vector<std::string>> console_alerts;
  std::optional<std::vector<std::string>> console_tail;
  std::optional<OrderedJson> timing;  // {"total_s", "qemu_s"}
  OrderedJson extra = OrderedJson::object();
};

// Builds a Trace from parsed JSON. Errno::Inval with the JSON path of the first key that is
// missing or has the wrong type ("steps[3].snapshot.zones[1].spanned: expected an integer").
Result<Trace> trace_from_json(const OrderedJson& j);
// Parses JSON text; Errno::Inval for malformed JSON (with the parser's message) or layout errors.
Result<Trace> parse_trace(std::string_view text);
// Reads a trace file; Errno::NoEnt when it cannot be read.
Result<Trace> load_trace(const std::string& path);

// The trace as JSON, keys in the order the oracle driver writes them.
OrderedJson trace_to_json(const Trace& t);
// JSON text as the oracle writes it: json.dumps(indent=1) (ASCII-only, one space per level) and a
// final newline. Invalid UTF-8 in a string is written as U+FFFD.
std::string dump_trace(const Trace& t);
// Writes dump_trace(t) to path; Errno::NoEnt when the file cannot be written.
Result<void> save_trace(const Trace& t, const std::string& path);

// The oracle's parsers for the guest's raw snapshot text (run: parse_iomem, parse_blocks,
// parse_kv, parse_zoneinfo, parse_meminfo, parse_kpageflags, parse_acpimem, parse_nddax), so an
// executor that renders the kernel's files builds exactly the structures the oracle records.
std::vector<TraceIomemLine> parse_iomem_lines(const std::vector<std::string>& lines);
std::vector<MemoryBlockEntry> parse_memblocks_lines(const std::vector<std::string>& lines);
std::vector<std::pair<std::string, std::string>> parse_kv_lines(const std::vector<std::string>& lines);
std::vector<ZoneEntry> parse_zoneinfo_lines(const std::vector<std::string>& lines);
std::vector<std::pair<std::string, int64_t>> parse_meminfo_lines(const std::vector<std::string>& lines);
std::vector<KpageflagsEntry> parse_kpageflags_lines(const std::vector<std::string>& lines);
std::vector<AcpiMemoryDevice> parse_acpimem_lines(const std::vector<std::string>& lines);
std::vector<NdDaxEntry> parse_nddax_lines(const std::vector<std::string>& lines);
// KPF bit names of a /proc/kpageflags value ("bitN" for bits without a name), lowest bit first.
std::vector<std::string> kpageflags_names(uint64_t flags);

}  // namespace sparsemem
