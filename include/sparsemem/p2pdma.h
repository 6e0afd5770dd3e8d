// PCI peer-to-peer DMA memory (drivers/pci/p2pdma.c, Linux 6.1): a PCI device's BARs and the
// MEMORY_DEVICE_PCI_P2PDMA pagemaps pci_p2pdma_add_resource() memremaps over them. Not locked: the owner serialises calls.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparsemem/invariant.h"
#include "sparsemem/machine.h"
#include "sparsemem/pagemap.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

inline constexpr unsigned PCI_STD_NUM_BARS = 6;

// One BAR as the PCI core assigned it: pci_resource_start / pci_resource_len / IORESOURCE_MEM.
// An unimplemented BAR is {0, 0, false}.
struct PciBar {
  PhysAddr start{0};
  uint64_t length = 0;
  bool is_mem = false;  // memory BAR (IORESOURCE_MEM); false: I/O port BAR or unimplemented
};

// The parts of a struct pci_dev that p2pdma reads.
struct PciDev {
  std::string name = "0000:00:00.0";  // pci_name(): domain:bus:slot.function
  std::string driver;                 // bound driver ("nvme"); empty: dev_info prints the bus, "pci"
  int node = -1;                      // dev_to_node(); -1 (NUMA_NO_NODE): memremap's current node
  std::array<PciBar, PCI_STD_NUM_BARS> bars{};
};

// pdev->p2pdma of one device, with the pagemaps its devm actions own.
// LIFETIME: the Machine must outlive it; destroying it runs release() (the driver unbinding).
// INV-P2P-1: every pagemap is mapped, of type P2PDMA, and its range lies inside the BAR it came from.
class PciP2pdma {
 public:
  explicit PciP2pdma(Machine& machine, PciDev dev);
  ~PciP2pdma();
  PciP2pdma(const PciP2pdma&) = delete;
  PciP2pdma& operator=(const PciP2pdma&) = delete;

  const PciDev& dev() const { return m_dev; }

  // pci_p2pdma_add_resource(pdev, bar, size, offset). A kernel built without CONFIG_PCI_P2PDMA
  // (Debian's 6.1) has only the inline stub of include/linux/pci-p2pdma.h: -EOPNOTSUPP before any
  // check (memremap_pages itself accepts P2PDMA pagemaps either way). Otherwise, in the kernel's
  // order: the BAR must be a memory BAR, offset < BAR length, and (size 0 meaning the rest of the
  // BAR) offset + size <= BAR length — each -EINVAL (offset + size is compared without wrapping);
  // then a P2PDMA pagemap over [BAR start + offset, + size - 1] (nr_range 1, no ops — 6.1 has
  // none for P2PDMA —, no altmap) is memremapped on the device's node, and
  // "<driver> <name>: added peer-to-peer DMA memory %#llx-%#llx" is logged.
  // Return: also memremap_pages' errno: -EINVAL for a range that is not subsection (2 MiB on x86)
  // aligned ("Misaligned __add_pages") or outside the pluggable range, -ENXIO over System RAM,
  // -EEXIST / -ENOMEM over memory already mapped. A bar index >= PCI_STD_NUM_BARS reads as an
  // unimplemented BAR (-EINVAL). Every failure leaves the machine as it was (log lines aside).
  Result<void> add_resource(unsigned bar, uint64_t size, uint64_t offset);

  // The devm teardown at unbind (pci_p2pdma_release and the devm_memremap_pages actions, newest
  // first): memunmap_pages of every pagemap, which waits until the references taken on them
  // (get_dev_pagemap) are gone. Idempotent.
  void release();

  // The mapped pagemaps, oldest first.
  std::vector<const DevPagemap*> pagemaps() const;

  void check_invariants(InvariantReport& report) const;

 private:
  struct Pagemap {
    unsigned bar;
    std::unique_ptr<DevPagemap> pgmap;
  };
  Machine& m_machine;
  PciDev m_dev;
  std::vector<Pagemap> m_pagemaps;
};

}  // namespace sparsemem
