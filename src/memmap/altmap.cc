// VmemAltmap: hands out the device pfns that back a device range's own memmap (vmem_altmap).
// Plain value; the caller serialises use (the hotplug lock, like every vmemmap writer).
#include <bit>

#include <fmt/core.h>

#include "sparsemem/memmap.h"

namespace sparsemem {

// altmap_alloc_block_buf() + vmem_altmap_next_pfn(), spec §2.8. Worked example (seed 004 pmem):
// base 0x144000, reserve 2, free 510: next pfn 0x144002; a 512-page request aligns to 512 pfns,
// needs 510 pfns of padding, and 512 + 510 > 510 - 0 fails; a 1-page request returns 0x144002.
Result<Pfn> VmemAltmap::alloc_pages(NrPages n) {
  if (n.value() == 0) return fail(Errno::Inval, "vmem_altmap: request of 0 pages");
  const uint64_t next = base_pfn.value() + reserve.value() + alloc.value() + align.value();
  const uint64_t want_align = uint64_t{1} << std::countr_zero(n.value());
  const uint64_t padding = ((next + want_align - 1) & ~(want_align - 1)) - next;
  const uint64_t used = alloc.value() + align.value();
  // A broken INV-ALTMAP-1 (used > free) leaves nothing to hand out rather than wrapping.
  const uint64_t left = used > free.value() ? 0 : free.value() - used;
  if (n.value() > left || padding > left - n.value())
    return fail(Errno::NoMem, fmt::format("vmem_altmap: {} pages (+{} alignment) do not fit in the {} left of "
                                          "[{:#x}-{:#x}]",
                                          n.value(), padding, left, base_pfn.value() + reserve.value(),
                                          base_pfn.value() + reserve.value() + free.value()));
  alloc += n;
  align += NrPages(padding);
  return Pfn(next + padding);
}

void VmemAltmap::free_pages(NrPages n) { alloc = n > alloc ? NrPages(0) : alloc - n; }

void VmemAltmap::check_invariants(InvariantReport& report) const {
  if (alloc.value() > free.value() || align.value() > free.value() - alloc.value())
    report.fail("INV-ALTMAP-1", "altmap at pfn {:#x}: alloc {} + align {} > free {}", base_pfn.value(), alloc.value(),
                align.value(), free.value());
}

}  // namespace sparsemem
