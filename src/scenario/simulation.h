// Simulation: one running scenario — platform, machine, ACPI memory devices, the guest's files,
// QEMU's pending events and the guest clock. Private to src/scenario; single-threaded.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sparsemem/acpi_memory.h"
#include "sparsemem/machine.h"
#include "sparsemem/nvdimm.h"
#include "sparsemem/platform.h"
#include "sparsemem/run.h"
#include "sparsemem/scenario.h"
#include "sparsemem/test_hmm.h"
#include "sparsemem/vfs.h"
#include "sparsemem/views.h"

namespace sparsemem::sim {

// What one shell command line produced. `unsupported` is set when the line uses something outside
// the simulator's shell subset or a kernel feature the model lacks; the command then reads rc 127.
struct CmdOutcome {
  int rc = 0;
  std::string out, err;
  std::optional<std::string> unsupported;
};

// mm/page_alloc.c's zonelist messages. The hotplug layer does not print them, so the simulator
// reproduces build_all_zonelists() from the memory notifier chain: online_pages() rebuilds when it
// populates a zone, offline_pages() when it empties one, each before notifying MEM_ONLINE/OFFLINE.
class ZonelistLog {
 public:
  // The boot build: "Fallback order for Node N: ...", "Built N zonelists, ...", "Policy zone: Z".
  std::vector<std::string> build(const Machine& m);
  // Registers the notifier (highest priority, never vetoes).
  void attach(Machine& m);

 private:
  std::set<std::pair<unsigned, ZoneType>> populated(const Machine& m) const;
  std::set<std::pair<unsigned, ZoneType>> m_before;
  ZoneType m_policy_zone = ZoneType::DMA;
};

class Simulation {
 public:
  Simulation(const Scenario& sc, const RunOptions& opts, PlatformDescription platform, std::unique_ptr<Machine> m);

  const Scenario& scenario;
  const RunOptions& options;
  PlatformDescription platform;
  std::unique_ptr<Machine> machine;
  AcpiMemoryHotplug acpi;
  Libnvdimm nd;  // libnvdimm and the dax bus (NVDIMMs, e820 pmem)
  std::optional<VirtualFs> fs;
  ZonelistLog zonelists;
  // modprobe test_hmm (CONFIG_TEST_HMM): the hmm_dmirror devices. Declared after `machine`, so it is
  // destroyed (unloaded) before the machine.
  std::unique_ptr<TestHmm> test_hmm;

  std::set<std::string> loaded_modules;
  bool notifier_inject_loaded = false;
  bool zoneinfo_full = false;  // config: SNAP_ZONEINFO_FULL=1

  double uptime = 2.8;                        // guest seconds since boot
  std::vector<OrderedJson> pending_events;    // QMP events not yet read by the host
  std::vector<std::string> boot_dmesg;        // step 000's log before the machine's later lines
  size_t log_cursor = 0;                      // machine log lines already in a snapshot
  bool dmesg_debug = false;                   // dyndbg= on the command line: pr_debug lines show
  // Commands that ran as the guest's would but whose effect the model only partly has (RunResult::notes).
  std::vector<std::string> notes;

  // The guest's shell: runs one command line (sh -c LINE). `where` names the scenario line.
  CmdOutcome run_shell(std::string_view line, std::string_view where);

  // The platform's DIMM in an ACPI slot is ejected; on success QEMU removes it and reports the
  // events of the given OST source (3 = eject request from QEMU, 0x103 = OSPM-initiated eject).
  Result<void> eject_slot(unsigned slot, unsigned ost_source);
  // ACPI insertion of a DIMM QEMU has just realized (hot-add): the guest driver runs at once.
  void hot_add_dimm(const MemoryDevice& dev);

  OrderedJson qmp_timestamp() const;
  void push_event(OrderedJson event);
  // True when the platform has memory that libnvdimm would expose (NVDIMMs, e820 pmem).
  bool has_nvdimm_memory() const;
};

// The dmesg lines the kernel prints at boot before the machine's own ones that the diff compares:
// e820, SRAT, zone ranges, early node ranges, Initmem. Without timestamps.
std::vector<std::string> boot_prefix_messages(const Scenario& sc, const PlatformDescription& p, const Machine& m,
                                              const std::string& kernel_release);

}  // namespace sparsemem::sim
