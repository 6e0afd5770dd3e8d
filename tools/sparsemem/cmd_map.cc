// `sparsemem map [machine options] [--range R | --section N] [--svg FILE] [--color]`: the picture of a
// booted machine's physical address space (map_view.h) as text on stdout, and as SVG into FILE.
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "commands.h"
#include "machine_args.h"
#include "sparsemem/map_view.h"

namespace sparsemem::cli {

void register_map(CLI::App& app) {
  struct Args {
    MachineArgs machine;
    std::string range;
    std::optional<uint64_t> section;
    std::string svg;
    bool color = false;
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
  sub->add_flag("--color", args->color, "ANSI colour, when stdout is a terminal and NO_COLOR is unset");
  sub->callback([args] {
    const BootedMachine booted = boot_from_args(args->machine, "map");
    const Machine& m = *booted.machine;
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
    opts.color = args->color && stdout_wants_color();
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
