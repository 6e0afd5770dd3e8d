// drivers/pci/p2pdma.c (6.1) over the machine: BAR checks, a P2PDMA pagemap per added resource,
// and the devm teardown at unbind. Not locked: the owner serialises calls.
#include "sparsemem/p2pdma.h"

#include <fmt/core.h>

namespace sparsemem {

PciP2pdma::PciP2pdma(Machine& machine, PciDev dev) : m_machine(machine), m_dev(std::move(dev)) {}

PciP2pdma::~PciP2pdma() { release(); }

Result<void> PciP2pdma::add_resource(unsigned bar, uint64_t size, uint64_t offset) {
  if (!m_machine.kernel_config().pci_p2pdma)
    return fail(Errno::NotSupp, "pci_p2pdma_add_resource: CONFIG_PCI_P2PDMA is not set");
  const PciBar b = bar < PCI_STD_NUM_BARS ? m_dev.bars[bar] : PciBar{};
  if (!b.is_mem) return fail(Errno::Inval, fmt::format("{}: BAR {} is not a memory BAR", m_dev.name, bar));
  if (offset >= b.length)
    return fail(Errno::Inval, fmt::format("{}: offset {:#x} beyond BAR {} ({:#x} bytes)", m_dev.name, offset, bar,
                                          b.length));
  if (size == 0) size = b.length - offset;
  if (size > b.length - offset)
    return fail(Errno::Inval, fmt::format("{}: {:#x} bytes at offset {:#x} exceed BAR {} ({:#x} bytes)", m_dev.name,
                                          size, offset, bar, b.length));

  auto pgmap = std::make_unique<DevPagemap>();
  pgmap->type = MemoryType::PciP2pdma;
  const PhysAddr start(b.start.value() + offset);
  pgmap->ranges = {PhysRange{start, PhysAddr(start.value() + size - 1)}};
  // devm_memremap_pages(): the device's node; NUMA_NO_NODE is the current CPU's node.
  SPM_TRY(m_machine.memremap_pages(*pgmap, m_dev.node));
  const PhysRange& r = pgmap->ranges[0];
  m_machine.log().log(LogLevel::Info, "{} {}: added peer-to-peer DMA memory {:#x}-{:#x}",
                      m_dev.driver.empty() ? "pci" : m_dev.driver, m_dev.name, r.start.value(), r.last.value());
  m_pagemaps.push_back(Pagemap{bar, std::move(pgmap)});
  return {};
}

void PciP2pdma::release() {
  // devres actions run newest first.
  for (auto it = m_pagemaps.rbegin(); it != m_pagemaps.rend(); ++it) m_machine.memunmap_pages(*it->pgmap);
  m_pagemaps.clear();
}

std::vector<const DevPagemap*> PciP2pdma::pagemaps() const {
  std::vector<const DevPagemap*> out;
  for (const Pagemap& p : m_pagemaps) out.push_back(p.pgmap.get());
  return out;
}

void PciP2pdma::check_invariants(InvariantReport& report) const {
  for (const Pagemap& p : m_pagemaps) {
    const PciBar& b = m_dev.bars[p.bar];
    const PhysRange& r = p.pgmap->ranges[0];
    const bool inside = b.is_mem && r.start >= b.start && r.last.value() - b.start.value() < b.length;
    if (!p.pgmap->mapped() || p.pgmap->type != MemoryType::PciP2pdma || !inside)
      report.fail("INV-P2P-1", "{}: pagemap {:#x}-{:#x} of BAR {} is {} {}{}", m_dev.name, r.start.value(),
                  r.last.value(), p.bar, p.pgmap->mapped() ? "mapped" : "not mapped",
                  memory_type_name(p.pgmap->type), inside ? "" : " outside its BAR");
  }
}

}  // namespace sparsemem
