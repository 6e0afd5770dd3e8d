// Scenario interpreter: runs a parsed scenario on the simulator — platform, boot, module loading,
// guest shell commands, QMP/HMP host actions, a snapshot after every step — into an oracle-layout Trace.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sparsemem/arch.h"
#include "sparsemem/behaviour.h"
#include "sparsemem/machine.h"
#include "sparsemem/pagemap.h"
#include "sparsemem/result.h"
#include "sparsemem/scenario.h"
#include "sparsemem/trace.h"

namespace sparsemem {

struct RunOptions {
  // nullptr: the profile the QEMU machine implies (x86-64 for pc/q35, arm64-4k-48 for virt).
  const ArchProfile* arch = nullptr;
  Behaviour behaviour = kLinux61;
  // The guest kernel's release as `uname -r` and `modprobe` print it, and the host kernel the
  // oracle's QEMU command line names (-kernel /boot/vmlinuz-<release>).
  std::string kernel_release = "6.1.0-56-amd64";
  // The guest kernel's build switches (MachineConfig::kernel). Default: Debian's 6.1 amd64, whose
  // kernel has no CONFIG_DEVICE_PRIVATE and no test_hmm module. parse_kconfig() reads the
  // `--kconfig` text of `sparsemem run/shell/boot/map`. Not part of the scenario file (the oracle
  // boots Debian's kernel, whose config a scenario cannot change) and not recorded in the trace
  // beyond its qemu_version text, which names the options that differ from Debian's.
  KernelConfig kernel = kDebianAmd64Config;
};

// Reads Kconfig assignments, separated by commas or whitespace: CONFIG_DEVICE_PRIVATE=y|n,
// CONFIG_TEST_HMM=y|m|n, CONFIG_PCI_P2PDMA=y|n, CONFIG_FS_DAX_LIMITED=y|n,
// CONFIG_DEFERRED_STRUCT_PAGE_INIT=y|n, applied in order over `base`.
// Return: -EINVAL naming the first unknown option or value, or CONFIG_TEST_HMM set without
// CONFIG_DEVICE_PRIVATE (lib/Kconfig.debug: TEST_HMM depends on DEVICE_PRIVATE).
Result<KernelConfig> parse_kconfig(std::string_view text, KernelConfig base = kDebianAmd64Config);
// The options of `c` that differ from Debian's, as parse_kconfig() reads them
// ("CONFIG_DEVICE_PRIVATE=y,CONFIG_TEST_HMM=y"); empty for Debian's config.
std::string kconfig_text(const KernelConfig& c);

// What one step did, for a one-line summary.
struct RunStepSummary {
  int64_t index = 0;
  std::string name;
  StepKind type = StepKind::Guest;
  size_t commands = 0;
  size_t failed_commands = 0;  // rc != 0
  size_t host_actions = 0;
  size_t violations = 0;       // invariant checker findings after the step
};

struct RunResult {
  Trace trace;
  std::vector<RunStepSummary> steps;
  // One line per command or host action the simulator cannot run: "unsupported command 'ndctl
  // create-namespace ...' at tests/scenarios/d1.scn:17 (libnvdimm is not modelled)". Each is also
  // recorded in the trace as rc 127 with the same text on stderr, and makes `completed` false.
  std::vector<std::string> unsupported;
  // Commands that ran with the guest's result but whose effect the model has only in part, e.g.
  // "modprobe nfit at FILE:LINE: ... not modelled" on a machine with NVDIMMs. The trace is still
  // completed; the differences show in its snapshots.
  std::vector<std::string> notes;
  // Every invariant violation the checker reported, prefixed by its step ("step 3: INV-...").
  std::vector<std::string> violations;
};

// The trace key of our own that holds the checker's findings per step (diff ignores it: a key the
// oracle never writes is not an observation of the expected trace).
inline constexpr std::string_view kCheckerTraceKey = "sparsemem_checker";

// Runs `sc`. The trace has the oracle's layout; timings are simulated (a monotonic guest clock).
// A QEMU command line the platform refuses is an observation, as in the oracle: a trace with
// completed false, no steps and the "qemu-start" error.
// Return: -EINVAL when the platform is valid but the model cannot boot it (the boot's message),
// or for an unknown arch/behaviour combination the platform rejects as not modelled (-EOPNOTSUPP).
Result<RunResult> run_scenario(const Scenario& sc, const RunOptions& opts = {});

// A scenario run one step at a time — what run_scenario() does, kept open so that more steps can
// follow (`sparsemem shell`). Single-threaded; not copyable.
class ScenarioSession {
 public:
  // Boots sc's platform, runs step 000 (config, modules, the first snapshot) and then sc's steps.
  // A QEMU command line the platform refuses gives a session that is not booted() and whose
  // finish() is the refused-start trace. Errors as run_scenario().
  static Result<std::unique_ptr<ScenarioSession>> start(Scenario sc, RunOptions opts = {});
  ~ScenarioSession();
  ScenarioSession(const ScenarioSession&) = delete;
  ScenarioSession& operator=(const ScenarioSession&) = delete;

  bool booted() const;
  // The simulated machine, for views of it between steps (`sparsemem map` after a step); nullptr
  // when not booted(). Valid until the session is destroyed.
  const Machine* machine() const;
  // Runs one more step as trace step scenario().steps.size() + 1, with a snapshot and the checker
  // after it; the step joins scenario().steps. Requires: booted().
  const TraceStep& run_step(ScenarioStep step);
  // The scenario so far: start()'s header and every step run.
  const Scenario& scenario() const;
  // Appends to scenario().source, the file text the trace's scenario_source shows: a caller that
  // adds steps (the shell) adds their text, so that the trace is the one its saved file gives.
  void append_source(std::string_view text);
  // The result so far (trace steps, unsupported lines, checker findings).
  const RunResult& result() const;
  // The guest's directory entries at `path` (as `ls` lists them), for completion.
  Result<std::vector<std::string>> list(std::string_view path) const;
  // Completes the trace as run_scenario() returns it. Call once; the session is spent after.
  RunResult finish();

 private:
  ScenarioSession();
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace sparsemem
