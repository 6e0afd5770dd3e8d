// `sparsemem map [machine options] [--range R | --section N] [--svg FILE] [--color=WHEN]`: the picture of a
// booted machine's physical address space (map_view.h) as text on stdout, and as SVG into FILE.
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "commands.h"
#include "machine_args.h"
#include "sparsemem/map_view.h"
#include "sparsemem/run.h"

namespace sparsemem::cli {

void register_map(CLI::App& app) {
  struct Args {
    MachineArgs machine;
    std::string range;
    std::optional<uint64_t> section;
    std::string svg;
    std::string color = "auto";
    std::string scenario;
    std::optional<size_t> step;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "map", "Draw a booted machine's physical address space: sections and their state, subsection maps, zones, "
             "memory blocks, iomem owners and vmemmap population");
  add_machine_options(sub, args->machine);
  auto* range = sub->add_option("--range", args->range,
                                "physical range to draw: START-END (inclusive), START+SIZE (K/M/G/T suffixes) or "
                                "'section N'; one section lists each subsection");
  sub->add_option("--section", args->section, "draw one section: each subsection and its vmemmap mapping")
      ->excludes(range);
  sub->add_option("--svg", args->svg, "also write the map as a self-contained SVG to FILE ('-': SVG on stdout instead)");
  sub->add_option("--color", args->color,
                  "ANSI colour: auto (when stdout is a terminal and NO_COLOR is unset), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->default_str("auto");
  auto* scenario = sub->add_option("--scenario", args->scenario,
                                   "draw the machine of this scenario after its steps have run (with --arch and "
                                   "--behaviour; excludes --qemu, --append and --map-file)");
  for (const char* o : {"--qemu", "--append", "--map-file"}) scenario->excludes(sub->get_option(o));
  sub->add_option("--step", args->step, "with --scenario: stop after this step (0 = just booted; default: the last)")
      ->needs(scenario);
  sub->callback([args] {
    BootedMachine booted;
    std::unique_ptr<ScenarioSession> session;
    if (!args->scenario.empty()) {
      session = run_scenario_steps(args->scenario, args->step, args->machine, "map");
      booted.description = "scenario " + session->scenario().name + " after step " +
                           std::to_string(session->scenario().steps.size());
    } else {
      booted = boot_from_args(args->machine, "map");
    }
    const Machine& m = session ? *session->machine() : *booted.machine;
    MapOptions opts;
    const std::string range_text = args->section ? "section " + std::to_string(*args->section) : args->range;
    if (!range_text.empty()) {
      auto r = parse_map_range(range_text, m.arch());
      if (!r) {
        std::cerr << "sparsemem map: " << r.error().message << "\n";
        throw CLI::RuntimeError(kExitBadInput);
      }
      opts.range = *r;
    }
    opts.color = args->color == "always" || (args->color == "auto" && stdout_wants_color());
    if (args->svg == "-") {
      std::cout << render_map_svg(m, opts) << std::flush;
      return;
    }
    if (!args->svg.empty()) {
      std::ofstream out(args->svg);
      out << render_map_svg(m, opts);
      if (!out.flush()) {
        std::cerr << "sparsemem map: cannot write " << args->svg << "\n";
        throw CLI::RuntimeError(kExitBadInput);
      }
    }
    std::cout << "sparsemem map: " << booted.description << "\n\n" << render_map_text(m, opts) << std::flush;
  });
}

}  // namespace sparsemem::cli
