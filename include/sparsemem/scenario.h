// Scenario: one .scn file as the oracle driver (shared/oracle/run, parse_scenario) reads it, plus
// the QEMU and kernel command lines it implies. Plain value; parsing is pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

// JSON that keeps object keys in file order, so traces and QMP commands round-trip unchanged.
using OrderedJson = nlohmann::ordered_json;

// The oracle's defaults (run: DEFAULT_QEMU, BASE_APPEND, guest/init).
inline constexpr std::string_view kOracleBaseAppend =
    "console=ttyS0 panic=-1 log_buf_len=4M nokaslr dyndbg=\"file memory_hotplug.c +p; file "
    "page_isolation.c +p; file drivers/base/memory.c +p; file acpi_memhotplug.c +p; file "
    "memremap.c +p; file sparse.c +p\"";
inline constexpr int64_t kDefaultCommandTimeoutS = 120;
inline constexpr int64_t kDefaultQemuTimeoutS = 900;
inline constexpr double kDefaultWaitEventTimeoutS = 30.0;
// Largest range one pfns: item may name. The guest prints one line per pfn at every snapshot, so a
// larger range is a typo, not a sample.
inline constexpr uint64_t kMaxPfnsPerItem = uint64_t{1} << 20;

// One item of a `pfns:` line: PFN, PFN+COUNT or START-END (END exclusive), numbers decimal or 0x hex.
struct PfnSpec {
  std::string text;  // as written; the guest hands it to pfnflags unchanged
  PfnRange range;    // never empty
  int line = 0;
};

enum class StepKind { Guest, Host };
std::string_view step_kind_name(StepKind k);  // "guest" / "host", as in the trace's "type"

enum class HostActionKind { Qmp, Hmp, Sleep, WaitEvent, Unknown };
std::string_view host_action_kind_name(HostActionKind k);  // "qmp", "hmp", "sleep", ...

// One host-side line of a `host` step. `Unknown` keeps a verb the driver does not know: the driver
// runs such a scenario and records {"error": {"class": "oracle", "desc": "unknown host action V"}},
// so an executor must reproduce that, not refuse the file.
struct HostAction {
  HostActionKind kind = HostActionKind::Unknown;
  std::string text;      // the whole (stripped) line: the trace's "action"
  std::string verb;      // text before the first space
  std::string argument;  // text after the first space (HMP command line, QMP JSON, ...)
  OrderedJson qmp;       // Qmp: the parsed command object or value
  double seconds = 0;    // Sleep: duration; WaitEvent: timeout (negative waits behave as 0)
  std::string event;     // WaitEvent: the QMP event name
  int line = 0;
};

struct StepLine {
  std::string text;  // stripped of surrounding whitespace
  int line = 0;
};

struct ScenarioStep {
  StepKind kind = StepKind::Guest;
  std::string name;
  int line = 0;                     // the header line
  std::vector<StepLine> lines;      // every indented line, in order
  std::vector<StepLine> commands;   // guest commands: all lines of a `step`, the `guest ` lines of a `host`
  std::vector<HostAction> actions;  // `host` steps: the other lines, in order
};

struct Scenario {
  std::string name;    // file name without directory and ".scn"
  std::string file;    // path as given (messages only)
  std::string source;  // file text after universal-newline translation: the trace's scenario_source
  std::vector<std::string> desc;         // desc: values in order
  std::string description;               // desc values joined with ' '
  std::vector<std::string> qemu_args;    // qemu: values, shlex-split and concatenated
  std::vector<std::string> append;       // append: values in order
  std::optional<std::vector<std::string>> modules;  // nullopt: default list; empty: `none`
  std::vector<PfnSpec> pfns;
  std::optional<int64_t> timeout_s;      // timeout: as written (0 means the default, as in the driver)
  int64_t qemu_timeout_s = kDefaultQemuTimeoutS;
  std::vector<std::string> config;       // raw shell lines for /scenario/config
  std::vector<ScenarioStep> steps;       // in file order; trace step i+1 is steps[i]

  // Modules step 000 loads, in order (the default list when no `modules:` line).
  std::vector<std::string> effective_modules() const;
  // Per-command timeout in seconds: timeout_s, or 120 when absent or 0.
  int64_t command_timeout_s() const;
  // The defaults for -machine, -m and -smp that the scenario does not give (matched as whole
  // argv words, as the driver does), followed by qemu_args.
  std::vector<std::string> qemu_args_with_defaults() const;
  // The guest kernel command line: kOracleBaseAppend and the append: values, joined with ' '.
  std::string kernel_cmdline() const;
  // The argv the oracle would record as qemu_cmdline for this scenario and host kernel version,
  // with the per-run directory written as $RUNDIR and logs under logs/ (run: build_qemu_cmd).
  std::vector<std::string> oracle_qemu_cmdline(std::string_view kernel_version) const;
};

// Parses scenario text. `path` names the file in messages and gives the scenario name.
// Accepts every file the oracle driver runs and refuses every file it stops on, except where
// noted; errors are Errno::Inval with "path:line: reason":
//   - not valid UTF-8 (the driver's read() raises);
//   - "indented line before the first step";
//   - "unknown key 'k'"; "cannot parse: '...'" for a line that is neither key, step nor comment;
//   - "step name must not contain whitespace", "step header without a name";
//   - qemu: values shlex cannot split ("No closing quotation", "No escaped character");
//   - timeout:/qemu_timeout: that int() rejects; also a negative timeout and a qemu_timeout
//     below 1, which the driver accepts but which cannot run a step;
//   - pfns: items that are not PFN, PFN+COUNT or START-END with decimal or 0x numbers, empty
//     ranges, ranges above kMaxPfnsPerItem, numbers with a leading 0 (pfnflags' strtoul would read
//     them as octal); the driver passes such items on unchecked;
//   - host lines: qmp without valid JSON, sleep without a finite non-negative number,
//     wait_event without a name or with a timeout float() rejects or that is inf/nan.
Result<Scenario> parse_scenario(std::string_view text, std::string_view path);
// Reads and parses a file. Errno::NoEnt when it cannot be read.
Result<Scenario> load_scenario(const std::string& path);

// shlex.split(s) in posix mode, exactly as Python 3 splits (quotes, backslash escapes, no
// comments). Errno::Inval with Python's message when the text ends inside quotes or after '\'.
Result<std::vector<std::string>> shlex_split(std::string_view s);

// The parsed scenario as JSON (what `sparsemem parse` prints): every field above, with derived
// values (effective modules, qemu args with defaults, kernel command line) alongside.
OrderedJson scenario_to_json(const Scenario& sc);

}  // namespace sparsemem
