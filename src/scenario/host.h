// Host actions of a simulated scenario (QMP, HMP, sleep, wait_event) and QEMU's memory-device
// queries. Private to src/scenario; single-threaded, changes the Simulation it is given.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "scenario/simulation.h"
#include "sparsemem/trace.h"

namespace sparsemem::sim {

struct HostActionOutcome {
  HostActionRecord record;
  std::optional<std::string> unsupported;  // set: the action needs what the simulator lacks
};

// Runs one host line as the oracle's run_host_actions() does: the reply, then the QMP events that
// arrived (all events are synchronous here), each remembered in `seen` (event, claimed) so that a
// later wait_event of the same step may claim it.
HostActionOutcome run_host_action(Simulation& s, const HostAction& a, std::vector<std::pair<OrderedJson, bool>>& seen);

// QMP query-memory-devices: {"return": [{"type": "dimm", "data": {...}}, ...]} by address.
OrderedJson query_memory_devices(const PlatformDescription& p);

}  // namespace sparsemem::sim
