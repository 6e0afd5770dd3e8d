// sparsemem command line: builds the CLI11 app from the subcommand list below and maps outcomes to
// exit statuses (0 ok, 1 difference found, 2 bad input). A new subcommand adds one line to kCommands.
#include <cstdio>

#include "commands.h"

namespace {

using Register = void (*)(CLI::App&);
// One entry per cmd_<name>.cc.
constexpr Register kCommands[] = {
    sparsemem::cli::register_diff,
    sparsemem::cli::register_parse,
    sparsemem::cli::register_boot, sparsemem::cli::register_map,
    sparsemem::cli::register_run,
    sparsemem::cli::register_sysfs,
    sparsemem::cli::register_shell,
    sparsemem::cli::register_demo,
};

}  // namespace

int main(int argc, char** argv) {
  // The name is fixed rather than argv[0] so that help text, and docs/commands.md made from it,
  // read the same wherever the binary lives.
  CLI::App app{"sparsemem: Linux 6.1's sparse memory model, memory hotplug and ZONE_DEVICE, simulated", "sparsemem"};
  app.require_subcommand(1);
  for (const Register reg : kCommands) reg(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    // Subcommands report their status by throwing RuntimeError(status) from the callback.
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or the usage error
    return code == 0 ? sparsemem::cli::kExitOk : sparsemem::cli::kExitBadInput;
  }
  return sparsemem::cli::kExitOk;
}
