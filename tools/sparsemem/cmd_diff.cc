// `sparsemem diff EXPECTED ACTUAL [--verbose]`: compares two trace files under the rule table of
// diff.h and prints each difference, then "observations: N matched, M mismatched".
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "sparsemem/diff.h"
#include "sparsemem/trace.h"

namespace sparsemem::cli {

void register_diff(CLI::App& app) {
  struct Args {
    std::string expected, actual;
    bool verbose = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("diff", "Compare a trace (ACTUAL) with the expected one (EXPECTED); exit 0 when "
                                             "nothing differs, 1 when something does, 2 on unreadable input");
  sub->add_option("EXPECTED", args->expected, "expected trace (JSON), usually the oracle's")->required();
  sub->add_option("ACTUAL", args->actual, "actual trace (JSON), usually the simulator's")->required();
  sub->add_flag("-v,--verbose", args->verbose, "per-step totals and complete differing command output");
  sub->callback([args] {
    const auto expected = load_trace(args->expected);
    const auto actual = expected ? load_trace(args->actual) : Result<Trace>();
    for (const auto* r : {&expected, &actual}) {
      if (!*r) {
        std::cerr << "sparsemem diff: " << r->error().message << "\n";
        throw CLI::RuntimeError(kExitBadInput);
      }
    }
    const DiffResult result = diff_traces(*expected, *actual, DiffOptions{args->verbose});
    std::cout << format_diff(result) << std::flush;
    if (result.mismatched != 0) throw CLI::RuntimeError(kExitMismatch);
  });
}

}  // namespace sparsemem::cli
