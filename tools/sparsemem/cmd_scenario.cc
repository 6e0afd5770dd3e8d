// `sparsemem parse SCENARIO`: parses a scenario file and prints it as JSON (scenario_to_json), to
// check what the parser made of it; errors are printed as "file:line: reason".
#include <iostream>
#include <memory>

#include "commands.h"
#include "sparsemem/scenario.h"

namespace sparsemem::cli {

void register_parse(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("parse", "Parse a scenario file and print it as JSON; exit 2 on a malformed file");
  sub->add_option("SCENARIO", *path, "scenario file (.scn)")->required();
  sub->callback([path] {
    const auto sc = load_scenario(*path);
    if (!sc) {
      std::cerr << "sparsemem parse: " << sc.error().message << "\n";
      throw CLI::RuntimeError(kExitBadInput);
    }
    std::cout << scenario_to_json(*sc).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  });
}

}  // namespace sparsemem::cli
