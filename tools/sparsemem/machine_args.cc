// Machine options shared by `sparsemem boot` and `sparsemem map`: parse them, build the platform
// (QEMU options or a plain memory map) and boot it; errors become exit status 2.
#include "machine_args.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "sparsemem/platform.h"
#include "sparsemem/scenario.h"

#include <fmt/core.h>

namespace sparsemem::cli {
namespace {

std::string names_of_arches() {
  std::string s;
  for (const ArchProfile& a : all_arch_profiles()) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

std::string names_of_behaviours() {
  std::string s;
  for (const Behaviour& b : all_behaviours()) s += (s.empty() ? "" : ", ") + std::string(b.name);
  return s;
}

[[noreturn]] void bad_input(std::string_view cmd, std::string_view msg) {
  std::cerr << "sparsemem " << cmd << ": " << msg << "\n";
  throw CLI::RuntimeError(kExitBadInput);
}

bool has_option(const std::vector<std::string>& argv, std::initializer_list<std::string_view> names) {
  return std::any_of(argv.begin(), argv.end(), [&](const std::string& a) {
    return std::find(names.begin(), names.end(), a) != names.end();
  });
}

}  // namespace

void add_machine_options(CLI::App* sub, MachineArgs& args) {
  sub->add_option("--arch", args.arch, "architecture profile: " + names_of_arches());
  sub->add_option("--behaviour", args.behaviour, "kernel behaviour: " + names_of_behaviours())
      ->default_str("linux-6.1");
  sub->add_option("--qemu", args.qemu,
                  "QEMU options as one string (default: -machine pc,nvdimm=on -m 4160M,slots=4,maxmem=32G -smp 1; "
                  "-machine virt -cpu max for an arm64 --arch)");
  sub->add_option("--append", args.append, "kernel command-line arguments added after the oracle's base line");
  sub->add_option("--map-file", args.map_file, "plain memory map file (ram/nomap/reserved/pmem/hotplug lines)")
      ->excludes(sub->get_option("--qemu"));
  sub->add_option("--kconfig", args.kconfig, kKconfigHelp);
}

KernelConfig kconfig_from_arg(const std::string& text, std::string_view cmd) {
  auto k = parse_kconfig(text);
  if (!k) bad_input(cmd, "--" + k.error().message);  // "--kconfig: ..."
  return *k;
}

BootedMachine boot_from_args(const MachineArgs& args, std::string_view cmd) {
  const ArchProfile* arch = nullptr;
  if (!args.arch.empty()) {
    arch = find_arch_profile(args.arch);
    if (!arch) bad_input(cmd, "unknown --arch '" + args.arch + "' (known: " + names_of_arches() + ")");
  }
  const Behaviour* behaviour = find_behaviour(args.behaviour);
  if (!behaviour) bad_input(cmd, "unknown --behaviour '" + args.behaviour + "' (known: " + names_of_behaviours() + ")");
  const KernelConfig kernel = kconfig_from_arg(args.kconfig, cmd);
  std::string cmdline(kOracleBaseAppend);
  if (!args.append.empty()) cmdline += " " + args.append;

  BootedMachine out;
  Result<PlatformDescription> platform;
  if (!args.map_file.empty()) {
    std::ifstream in(args.map_file);
    if (!in) bad_input(cmd, "cannot read " + args.map_file);
    std::stringstream text;
    text << in.rdbuf();
    const ArchProfile& a = arch ? *arch : kX86_64;
    platform = platform_from_memory_map(text.str(), a, cmdline);
    out.description = "memory map " + args.map_file;
  } else {
    auto words = shlex_split(args.qemu);
    if (!words) bad_input(cmd, "--qemu: " + words.error().message);
    std::vector<std::string> argv;
    const bool arm64 = arch && arch->family == ArchFamily::Arm64;
    // The oracle's defaults (shared/oracle/run) for what the options leave out.
    if (!has_option(*words, {"-machine", "-M"})) argv.insert(argv.end(), {"-machine", arm64 ? "virt" : "pc,nvdimm=on"});
    // QEMU's default CPU for virt is a 32-bit cortex-a15; an arm64 kernel needs a 64-bit one.
    if (arm64 && !has_option(*words, {"-cpu"})) argv.insert(argv.end(), {"-cpu", "max"});
    if (!has_option(*words, {"-m"})) argv.insert(argv.end(), {"-m", "4160M,slots=4,maxmem=32G"});
    if (!has_option(*words, {"-smp"})) argv.insert(argv.end(), {"-smp", "1"});
    if (!has_option(*words, {"-nodefaults"})) argv.emplace_back("-nodefaults");
    // The oracle boots with -kernel, whose linuxboot option ROM is the "Video ROM" line of
    // /proc/iomem; without it the default machine would not be the oracle's.
    if (!has_option(*words, {"-kernel"})) argv.insert(argv.end(), {"-kernel", "vmlinuz"});
    argv.insert(argv.end(), words->begin(), words->end());
    PlatformOptions opts;
    opts.arch = arch;
    platform = platform_from_qemu(argv, cmdline, opts);
    if (platform) {
      out.description = std::string(qemu_program_name(platform->machine));
      for (const std::string& w : argv) out.description += " " + w;
    }
  }
  if (!platform) bad_input(cmd, platform.error().message);
  const std::string k = kconfig_text(kernel);
  out.description += " (" + std::string(platform->arch->name) + ", " + std::string(behaviour->name) +
                     (k.empty() ? "" : ", " + k) + ")";
  out.warnings = platform->warnings;
  auto config = Machine::config_from_platform(*platform, *behaviour);
  if (!config) bad_input(cmd, "boot failed: " + config.error().message);
  config->kernel = kernel;
  auto m = Machine::boot(std::move(*config));
  if (!m) bad_input(cmd, "boot failed: " + m.error().message);
  out.machine = std::move(*m);
  out.platform = std::move(*platform);
  return out;
}

std::unique_ptr<ScenarioSession> run_scenario_steps(const std::string& file, std::optional<size_t> last,
                                                    const MachineArgs& args, std::string_view cmd) {
  auto sc = load_scenario(file);
  if (!sc) bad_input(cmd, sc.error().message);
  if (last) {
    if (*last > sc->steps.size())
      bad_input(cmd, fmt::format("--step {}: {} has {} step(s) after the boot", *last, file, sc->steps.size()));
    sc->steps.resize(*last);
  }
  RunOptions opts;
  if (!args.arch.empty()) {
    opts.arch = find_arch_profile(args.arch);
    if (!opts.arch) bad_input(cmd, "unknown --arch '" + args.arch + "' (known: " + names_of_arches() + ")");
  }
  const Behaviour* behaviour = find_behaviour(args.behaviour);
  if (!behaviour) bad_input(cmd, "unknown --behaviour '" + args.behaviour + "' (known: " + names_of_behaviours() + ")");
  opts.behaviour = *behaviour;
  opts.kernel = kconfig_from_arg(args.kconfig, cmd);
  auto session = ScenarioSession::start(std::move(*sc), opts);
  if (!session) bad_input(cmd, session.error().message);
  if (!(*session)->booted()) bad_input(cmd, "QEMU refuses this scenario's machine");
  if (!(*session)->result().unsupported.empty()) bad_input(cmd, (*session)->result().unsupported.front());
  return std::move(*session);
}

bool stdout_wants_color() {
  const char* no_color = std::getenv("NO_COLOR");
  return isatty(STDOUT_FILENO) && no_color == nullptr;
}

}  // namespace sparsemem::cli
