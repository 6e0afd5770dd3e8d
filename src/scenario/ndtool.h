// The ndctl and daxctl commands (76.1) over the machine's libnvdimm model: what each subcommand
// does to the kernel objects and what it prints. Private to src/scenario (the shell calls in).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace sparsemem::sim {

class Simulation;

struct ToolOutcome {
  int rc = 0;
  std::string out, err;
  std::optional<std::string> unsupported;  // a subcommand or option outside the modelled set
};

// argv[0] is "ndctl" / "daxctl".
ToolOutcome run_ndctl(Simulation& s, const std::vector<std::string>& argv);
ToolOutcome run_daxctl(Simulation& s, const std::vector<std::string>& argv);

}  // namespace sparsemem::sim
