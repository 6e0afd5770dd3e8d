// `sparsemem sysfs export DIR [machine options]`: the booted machine's /sys/devices/system/memory
// and /sys/devices/system/node written under DIR in the kernel's layout, for `lsmem --sysroot DIR`.
#include <iostream>
#include <memory>

#include "commands.h"
#include "machine_args.h"
#include "sparsemem/acpi_memory.h"
#include "sparsemem/views.h"

namespace sparsemem::cli {

void register_sysfs(CLI::App& app) {
  struct Args {
    MachineArgs machine;
    std::string dir;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sysfs = app.add_subcommand("sysfs", "The model's sysfs for real tools");
  sysfs->require_subcommand(1);
  CLI::App* sub = sysfs->add_subcommand(
      "export", "Boot a machine (cold-plugged DIMMs added as acpi_memhotplug adds them) and write its "
                "/sys/devices/system/memory and /sys/devices/system/node under DIR, so that util-linux's "
                "`lsmem --sysroot DIR` and `chmem`'s read path work on it");
  add_machine_options(sub, args->machine);
  sub->add_option("DIR", args->dir, "the sysroot to write (created if missing)")->required();
  sub->callback([args] {
    BootedMachine booted = boot_from_args(args->machine, "sysfs export");
    AcpiMemoryHotplug acpi(booted.platform);
    (void)acpi.add_cold_plugged(*booted.machine, booted.platform);
    GuestFsContext ctx;
    ctx.machine = booted.machine.get();
    ctx.acpi = &acpi;
    ctx.cpu_nodes = {0};
    const VirtualFs fs = make_guest_fs(std::move(ctx));
    for (const char* path : {"/sys/devices/system/memory", "/sys/devices/system/node"}) {
      if (auto r = export_tree(fs, path, args->dir); !r) {
        std::cerr << "sparsemem sysfs export: " << r.error().message << "\n";
        throw CLI::RuntimeError(kExitBadInput);
      }
    }
    std::cout << "sparsemem sysfs export: " << booted.description << " -> " << args->dir << "\n";
  });
}

}  // namespace sparsemem::cli
