// The checker: runs every structure's check_invariants() and the invariants that span several
// structures, and reports (never aborts). Tests and the simulator run it after every step.
#pragma once

#include "sparsemem/invariant.h"
#include "sparsemem/machine.h"

namespace sparsemem {

// Equivalent to machine.check(): takes the hotplug lock, so it sees a state between operations.
inline InvariantReport check_machine(const Machine& machine) { return machine.check(); }

}  // namespace sparsemem
