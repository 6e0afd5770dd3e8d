// Subcommands of the sparsemem CLI: each cmd_<name>.cc defines register_<name>(), which adds its
// subcommand to the app and sets its callback; main.cc lists them. Uses only public headers.
#pragma once

#include <CLI/CLI.hpp>

namespace sparsemem::cli {

// Exit statuses shared by all subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitMismatch = 1;  // the command ran and found a difference
inline constexpr int kExitBadInput = 2;  // unreadable or malformed input, usage errors

void register_diff(CLI::App& app);   // sparsemem diff EXPECTED ACTUAL [--verbose]
void register_parse(CLI::App& app);  // sparsemem parse SCENARIO
void register_boot(CLI::App& app), register_map(CLI::App& app);  // sparsemem boot / sparsemem map (machine options)
void register_run(CLI::App& app);   // sparsemem run SCENARIO [--trace OUT] [--arch] [--behaviour]
void register_sysfs(CLI::App& app);  // sparsemem sysfs export DIR (machine options)
void register_shell(CLI::App& app);  // sparsemem shell [--scenario FILE | --qemu ... --append ...]
void register_demo(CLI::App& app);   // sparsemem demo [--color=WHEN] [--no-pse]

}  // namespace sparsemem::cli
