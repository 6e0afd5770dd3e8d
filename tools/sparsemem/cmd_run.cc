// `sparsemem run SCENARIO [--trace OUT] [--arch P] [--behaviour B]`: runs a scenario on the simulator,
// prints one line per step, writes the trace in the oracle's layout; exit 2 for unsupported commands.
#include <iostream>
#include <memory>

#include <fmt/core.h>

#include "commands.h"
#include "machine_args.h"
#include "progress.h"
#include "sparsemem/run.h"
#include "sparsemem/trace.h"

namespace sparsemem::cli {

void register_run(CLI::App& app) {
  struct Args {
    std::string scenario, trace, arch, behaviour = "linux-6.1", kconfig;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "run", "Run a scenario on the simulator and write its trace in the oracle's layout (compare it with `sparsemem "
             "diff`); exit 0 when every command ran, 1 when the invariant checker found a violation, 2 when a "
             "command is outside what the simulator models or the input is bad");
  sub->add_option("SCENARIO", args->scenario, "scenario file (.scn)")->required();
  sub->add_option("--trace", args->trace, "write the trace (JSON) here");
  sub->add_option("--arch", args->arch, "architecture profile (default: the QEMU machine's)");
  sub->add_option("--behaviour", args->behaviour, "kernel behaviour")->default_str("linux-6.1");
  sub->add_option("--kconfig", args->kconfig, kKconfigHelp);
  sub->callback([args] {
    auto sc = load_scenario(args->scenario);
    if (!sc) {
      std::cerr << "sparsemem run: " << sc.error().message << "\n";
      throw CLI::RuntimeError(kExitBadInput);
    }
    RunOptions opts;
    if (!args->arch.empty()) {
      opts.arch = find_arch_profile(args->arch);
      if (!opts.arch) {
        std::cerr << "sparsemem run: unknown --arch '" << args->arch << "'\n";
        throw CLI::RuntimeError(kExitBadInput);
      }
    }
    const Behaviour* b = find_behaviour(args->behaviour);
    if (!b) {
      std::cerr << "sparsemem run: unknown --behaviour '" << args->behaviour << "'\n";
      throw CLI::RuntimeError(kExitBadInput);
    }
    opts.behaviour = *b;
    opts.kernel = kconfig_from_arg(args->kconfig, "run");
    // Step by step, so that a long scenario shows how far it has got.
    Progress progress;
    std::vector<ScenarioStep> steps = std::move(sc->steps);
    sc->steps.clear();
    progress.update("sparsemem run: booting");
    auto session = ScenarioSession::start(*sc, opts);
    if (!session) {
      progress.clear();
      std::cerr << "sparsemem run: " << session.error().message << "\n";
      throw CLI::RuntimeError(kExitBadInput);
    }
    if ((*session)->booted())
      for (size_t i = 0; i < steps.size(); ++i) {
        progress.update(fmt::format("sparsemem run: step {}/{} {}", i + 1, steps.size(), steps[i].name));
        (*session)->run_step(std::move(steps[i]));
      }
    progress.clear();
    const RunResult finished = (*session)->finish();
    const RunResult* r = &finished;
    std::cout << fmt::format("sparsemem run: {} ({} steps{})\n", sc->name, r->trace.steps.size(),
                             r->trace.errors.empty() ? "" : ", QEMU refused to start");
    for (const DriverError& e : r->trace.errors)
      if (e.qemu_output) std::cout << "  " << *e.qemu_output;
    for (const RunStepSummary& s : r->steps) {
      std::cout << fmt::format("  step {:03} {:<5} {:<40} {} command(s), {} failed", s.index, step_kind_name(s.type),
                               s.name, s.commands, s.failed_commands);
      if (s.host_actions) std::cout << fmt::format(", {} host action(s)", s.host_actions);
      std::cout << (s.violations ? fmt::format(", {} invariant violation(s)", s.violations) : std::string()) << "\n";
    }
    for (const std::string& v : r->violations) std::cout << "  checker: " << v << "\n";
    if (!args->trace.empty()) {
      if (auto w = save_trace(r->trace, args->trace); !w) {
        std::cerr << "sparsemem run: " << w.error().message << "\n";
        throw CLI::RuntimeError(kExitBadInput);
      }
      std::cout << "  trace written to " << args->trace << "\n";
    }
    std::cout << std::flush;
    for (const std::string& n : r->notes) std::cerr << "sparsemem run: note: " << n << "\n";
    for (const std::string& u : r->unsupported) std::cerr << "sparsemem run: " << u << "\n";
    if (!r->unsupported.empty()) throw CLI::RuntimeError(kExitBadInput);
    if (!r->violations.empty()) throw CLI::RuntimeError(kExitMismatch);
  });
}

}  // namespace sparsemem::cli
