// Shared test fixtures: the boot memory maps of the oracle machines, written out by hand from the
// traces' e820 lines. Test-only; no test may derive expected values from the code under test.
#pragma once

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sparsemem/machine.h"
#include "sparsemem/platform.h"

namespace sparsemem::testing {

// a_baseline (QEMU pc, -m 4160M): memblock.memory after the kernel trimmed page 0 and the partial
// page below 0xa0000 (e820 usable 0-0x9fbff, 0x100000-0xbffdefff, 0x100000000-0x143ffffff).
inline BootMemoryMap pc_4160m_map() {
  BootMemoryMap m;
  m.regions = {
      {PhysAddr(0x1000), 0x9f000 - 0x1000, 0, BootMemKind::Usable},
      {PhysAddr(0x100000), 0xbffdf000 - 0x100000, 0, BootMemKind::Usable},
      {PhysAddr(0x100000000), 0x44000000, 0, BootMemKind::Usable},
  };
  return m;
}

inline std::unique_ptr<Machine> boot_or_die(MachineConfig cfg) {
  auto m = Machine::boot(std::move(cfg));
  if (!m) {
    ADD_FAILURE() << "boot failed: " << m.error().message;
    return nullptr;
  }
  return std::move(*m);
}

// The machine QEMU would build from `argv` with the kernel command line `cmdline`, booted under
// Linux 6.1; nullptr (and a test failure) when either refuses.
inline std::unique_ptr<Machine> boot_qemu_or_die(const std::vector<std::string>& argv, const std::string& cmdline) {
  auto p = platform_from_qemu(argv, cmdline);
  if (!p) {
    ADD_FAILURE() << "platform refused: " << p.error().message;
    return nullptr;
  }
  auto m = Machine::boot(*p, kLinux61);
  if (!m) {
    ADD_FAILURE() << "boot failed: " << m.error().message;
    return nullptr;
  }
  return std::move(*m);
}

inline nlohmann::json load_trace(const std::string& name) {
  std::ifstream in(std::string(SPM_TEST_DATA) + "/oracle/" + name + ".json");
  return nlohmann::json::parse(in);
}

inline void expect_clean(const Machine& m) {
  const InvariantReport r = m.check();
  EXPECT_TRUE(r.ok()) << r.to_string();
}

}  // namespace sparsemem::testing
