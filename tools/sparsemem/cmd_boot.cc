// `sparsemem boot [--arch] [--behaviour] [--qemu OPTS | --map-file MAP] [--append CMDLINE]`: boots a
// machine and prints /proc/iomem, the compact section map, the pfn queries by kind and the checker's verdict.
#include <iostream>
#include <memory>

#include "commands.h"
#include "machine_args.h"
#include "sparsemem/map_view.h"

namespace sparsemem::cli {

void register_boot(CLI::App& app) {
  auto args = std::make_shared<MachineArgs>();
  CLI::App* sub = app.add_subcommand(
      "boot", "Boot a machine (default: the oracle's QEMU pc, 4160M, nvdimm) and print /proc/iomem, its sections, "
              "the pfn queries by kind and the invariant checker's verdict; exit 1 when the checker finds a violation");
  add_machine_options(sub, *args);
  sub->callback([args] {
    const BootedMachine booted = boot_from_args(*args, "boot");
    const Machine& m = *booted.machine;
    std::cout << "sparsemem boot: " << booted.description << "\n";
    for (const std::string& w : booted.warnings) std::cout << "  warning: " << w << "\n";
    std::cout << "\n/proc/iomem\n" << m.iomem().render();
    std::cout << "\nmemory map\n" << render_map_text(m, MapOptions{});
    std::cout << "\npfn queries (one sample pfn per kind; pages of each kind below 2^MAX_PHYSMEM_BITS)\n"
              << render_pfn_summary(m, summarize_pfn_queries(m));
    const InvariantReport report = m.check();
    if (report.ok()) {
      std::cout << "\ninvariant checker: clean\n";
      return;
    }
    std::cout << "\ninvariant checker: " << report.violations().size() << " violation(s)\n";
    for (const Violation& v : report.violations()) std::cout << "  " << v.id << ": " << v.detail << "\n";
    std::cout << std::flush;
    throw CLI::RuntimeError(kExitMismatch);
  });
}

}  // namespace sparsemem::cli
