// Machine options shared by the subcommands that boot a machine (boot, map): --arch, --behaviour,
// --qemu, --append, --map-file, --kconfig, and the boot itself. CLI-only; uses public headers.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "sparsemem/machine.h"
#include "sparsemem/platform.h"
#include "sparsemem/run.h"

namespace sparsemem::cli {

struct MachineArgs {
  std::string arch;       // profile name; empty: the platform's default (x86-64, or arm64-4k-48 for virt)
  std::string behaviour = "linux-6.1";
  std::string qemu;       // QEMU options, shell-quoted as one string
  std::string append;     // kernel command-line additions after the oracle's base command line
  std::string map_file;   // a plain memory map (platform_from_memory_map) instead of QEMU options
  std::string kconfig;    // --kconfig: kernel config options (parse_kconfig), e.g. CONFIG_DEVICE_PRIVATE=y,CONFIG_TEST_HMM=y
};

// The --kconfig option's help text, shared with `run` and `shell`.
inline constexpr const char* kKconfigHelp =
    "kernel config options that differ from Debian 6.1's, comma-separated: CONFIG_DEVICE_PRIVATE=y, "
    "CONFIG_TEST_HMM=m (needs CONFIG_DEVICE_PRIVATE; makes `modprobe test_hmm` load), CONFIG_PCI_P2PDMA=y, "
    "CONFIG_FS_DAX_LIMITED=y, CONFIG_DEFERRED_STRUCT_PAGE_INIT=n";

// parse_kconfig(text); on error prints "sparsemem <cmd>: --kconfig: <reason>" and throws
// CLI::RuntimeError(kExitBadInput).
KernelConfig kconfig_from_arg(const std::string& text, std::string_view cmd);

// Adds --arch, --behaviour, --qemu, --append, --map-file and --kconfig to `sub`, writing into `args`.
void add_machine_options(CLI::App* sub, MachineArgs& args);

struct BootedMachine {
  std::unique_ptr<Machine> machine;
  PlatformDescription platform;  // what was booted: its memory devices (cold-plugged DIMMs) included
  std::string description;  // one line: what was booted ("qemu-system-x86_64 -machine pc,... (x86-64)")
  std::vector<std::string> warnings;  // the platform layer's warnings (QEMU's, and what is not modelled)
};

// Builds the platform and boots it. The default machine is the oracle's: QEMU pc with
// `-machine pc,nvdimm=on -m 4160M,slots=4,maxmem=32G -smp 1` (-machine virt -cpu max for an arm64
// --arch), kernel command line kOracleBaseAppend plus --append. On failure prints
// "sparsemem <cmd>: <reason>" to stderr and throws CLI::RuntimeError(kExitBadInput).
BootedMachine boot_from_args(const MachineArgs& args, std::string_view cmd);

// Runs the scenario FILE up to and including step `last` (all steps when nullopt) with the --arch and
// --behaviour and --kconfig of `args`; the session holds the machine as it is after that step. On failure prints
// "sparsemem <cmd>: <reason>" and throws CLI::RuntimeError(kExitBadInput); so does a step the
// simulator cannot run (the picture would show a machine the scenario never reached).
std::unique_ptr<ScenarioSession> run_scenario_steps(const std::string& file, std::optional<size_t> last,
                                                    const MachineArgs& args, std::string_view cmd);

// Colour on stdout only for a terminal, and never when NO_COLOR is set (https://no-color.org).
bool stdout_wants_color();

}  // namespace sparsemem::cli
