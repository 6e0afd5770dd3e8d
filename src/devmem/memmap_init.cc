// ZONE_DEVICE memmap initialisation of Linux 6.1 (memmap_init_zone_device, and memmap_init_range for an altmap area):
// writes descriptors through Vmemmap's checked path only. Callers hold the hotplug lock or own the range.
#include <algorithm>
#include <array>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <chrono>
#include <cstring>

#include "sparsemem/pagemap.h"

namespace sparsemem {

namespace {

// The descriptor __init_zone_device_page() leaves behind. Everything in it is the same for every
// page of a pgmap: the self-pointing lru words init_single_page writes are overwritten by the
// pgmap pointer (page->pgmap) and zone_device_data (0). So it is built once and stored whole.
Page zone_device_template(unsigned nid, const DevPagemap& pgmap, const Behaviour& behaviour) {
  Page t{};
  t.set_zone_nid(ZoneType::Device, nid);
  // Seed 001: 6.1 keeps PG_reserved on every ZONE_DEVICE page; the proposal drops it.
  if (behaviour.device_pages_reserved) t.set(PG::reserved);
  t.mapcount = -1;
  t.compound_head = reinterpret_cast<uint64_t>(&pgmap);  // page->pgmap (bit0 clear: not a tail)
  t.lru_prev = 0;                                        // page->zone_device_data
  // PRIVATE and COHERENT pages start free (refcount 0); the driver hands them out with
  // zone_device_page_init. The other types are "1-based": 1 means idle.
  t.refcount = pgmap.type == MemoryType::DevicePrivate || pgmap.type == MemoryType::DeviceCoherent ? 0 : 1;
  return t;
}

// Descriptor stores. Non-temporal 16-byte stores of a template held in registers: a device
// range's memmap is written once and not read back soon, so skipping the read-for-ownership of
// each line is what lets the model keep up with memset (which streams large buffers the same way).
class DescriptorStore {
 public:
  explicit DescriptorStore(const Page& p) {
    static_assert(sizeof(Page) == 64);
#if defined(__SSE2__)
    std::memcpy(static_cast<void*>(m_t), static_cast<const void*>(&p), sizeof(Page));
#else
    m_page = p;
#endif
  }
  void fill(Page* dst, uint64_t n) const {
#if defined(__SSE2__)
    auto* out = reinterpret_cast<__m128i*>(dst);
    for (uint64_t i = 0; i < n; ++i, out += 4) {
      _mm_stream_si128(out, m_t[0]);
      _mm_stream_si128(out + 1, m_t[1]);
      _mm_stream_si128(out + 2, m_t[2]);
      _mm_stream_si128(out + 3, m_t[3]);
    }
#else
    std::fill(dst, dst + n, m_page);
#endif
  }

 private:
#if defined(__SSE2__)
  __m128i m_t[4];
#else
  Page m_page;
#endif
};

// Writes the descriptors of [start, start + n), one mapped run at a time through the checked
// path: stores[0] for the first, stores[1] for the second, stores[2] for the rest (a compound
// unit's head, first tail and tails; all three the same for base pages). -EFAULT (with the oops
// text of the first descriptor of an unmapped vmemmap page) stops it there, as the kernel's first
// faulting store would.
Result<void> store_descriptors(Vmemmap& vmemmap, Pfn start, uint64_t n, const DescriptorStore* const (&stores)[3]) {
  uint64_t done = 0;
  while (done < n) {
    SPM_TRY_ASSIGN(const std::span<Page> run, vmemmap.writable_run(start + NrPages(done), n - done));
    uint64_t i = 0;
    for (; i < run.size() && done + i < 2; ++i) stores[done + i]->fill(run.data() + i, 1);
    stores[2]->fill(run.data() + i, run.size() - i);
    done += run.size();
  }
  return {};
}

Result<void> store_descriptors(Vmemmap& vmemmap, Pfn start, uint64_t n, const Page& value) {
  const DescriptorStore st(value);
  const DescriptorStore* const stores[3] = {&st, &st, &st};
  return store_descriptors(vmemmap, start, n, stores);
}

// The streamed stores are ordered before whatever publishes the range (once per initialisation:
// a fence per store_descriptors call would wait for every small run to drain).
void store_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// Fences on every exit of an initialisation, error paths included.
struct StoreFence {
  ~StoreFence() { store_fence(); }
};

}  // namespace

Result<void> memmap_init_altmap_area(Vmemmap& vmemmap, SectionTable& sections, const Behaviour& behaviour,
                                     const DevPagemap& pgmap, unsigned nid) {
  if (!pgmap.altmap_valid()) return {};
  const ArchProfile& arch = vmemmap.arch();
  const VmemAltmap& a = pgmap.altmap;
  Pfn start = pgmap.range_start_pfn(arch, 0);
  // [base, base + reserve) is the driver's (the info block) and is never initialised.
  if (start == a.base_pfn) start = start + a.reserve;
  const Pfn end = a.base_pfn + a.offset();
  for (Pfn pfn = start; pfn < end; ++pfn) {
    SPM_TRY_ASSIGN(Page * p, vmemmap.writable_page(pfn));
    init_single_page(*p, ZoneType::Device, nid, vmemmap.page_addr(pfn));
    if (behaviour.device_pages_reserved) p->set(PG::reserved);
    if (arch.pageblock_aligned(pfn)) sections.set_pageblock_migratetype(pfn, Migratetype::Movable);
  }
  return {};
}

Result<void> memmap_init_zone_device(Vmemmap& vmemmap, SectionTable& sections, const Behaviour& behaviour,
                                     const DevPagemap& pgmap, unsigned range, unsigned nid, KernelLog& log,
                                     bool may_defer) {
  const ArchProfile& arch = vmemmap.arch();
  const Pfn start = pgmap.pfn_first(arch, range);
  const Pfn end = pgmap.range_end_pfn(arch, range);
  if (start >= end) return {};
  const StoreFence fence;
  const auto t0 = std::chrono::steady_clock::now();
  const NrPages per_compound = pgmap.vmemmap_nr();
  const unsigned order = pgmap.vmemmap_shift;
  // Descriptors per unit that are really there to write: a de-duplicated unit has 2 vmemmap
  // pages of its own, the rest alias the second (spec §4.14). Whether a unit was de-duplicated
  // is read from the vmemmap rather than re-derived: an EARLY section's partial add reuses the
  // boot memmap instead of populating it, so its units are whole (6.1.y's early-section rule).
  const uint64_t unique = 2 * (arch.page_size() / STRUCT_PAGE_SIZE);
  const bool may_dedup = vmemmap_can_optimize(arch, pgmap.altmap_valid() ? &pgmap.altmap : nullptr, per_compound);

  const DeviceMemmapRun run{start, end, order, zone_device_template(nid, pgmap, behaviour)};
  if (may_defer && vmemmap.defer_device(run)) {
    // Nothing written: read_page answers from the run, the first access writes it.
  } else if (order == 0) {
    SPM_TRY(store_descriptors(vmemmap, start, (end - start).value(), run.base));
  } else {
    for (Pfn head = start; head < end; head += per_compound) {
      uint64_t k = per_compound.value();
      if (may_dedup && vmemmap.origin_of(head + NrPages(unique)) == VmemmapOrigin::Shared &&
          vmemmap.descriptor_mapped(head + NrPages(unique)))
        k = unique;
      // The head, the first tail (with prep_compound_head()'s metadata in its final form, so the
      // streamed stores are never read back) and every further tail: one template each.
      const VmemmapAddr addr = vmemmap.page_addr(head);
      const Page first_tail = device_memmap_page(run, head + NrPages(1), addr);
      const DescriptorStore h(device_memmap_page(run, head, addr)), f(first_tail),
          t(per_compound.value() > 2 ? device_memmap_page(run, head + NrPages(2), addr) : first_tail);
      const DescriptorStore* const stores[3] = {&h, &f, &t};
      SPM_TRY(store_descriptors(vmemmap, head, k, stores));
    }
  }
  // Every pageblock of the range is MOVABLE, whether or not its descriptors were written.
  const uint64_t pb = arch.pageblock_nr_pages().value();
  for (uint64_t pfn = (start.value() + pb - 1) & ~(pb - 1); pfn < end.value(); pfn += pb)
    sections.set_pageblock_migratetype(Pfn(pfn), Migratetype::Movable);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  log.log(LogLevel::Debug, "memmap_init_zone_device initialised {} pages in {}ms", (end - start).value(), ms);
  return {};
}

}  // namespace sparsemem
