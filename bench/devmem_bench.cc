// Benchmarks for the devmem operations (include/sparsemem/pagemap.h, the devmem section of machine.h): memremap_pages of a
// large devdax range with 4 KiB, 2 MiB and 1 GiB compound pages — time and vmemmap memory against the undeduplicated memmap.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>

#include "sparsemem/machine.h"
#include "sparsemem/pagemap.h"
#include "sparsemem/section.h"

namespace sparsemem {
namespace {

constexpr uint64_t GiB = uint64_t{1} << 30;

// The a_baseline machine (QEMU pc, -m 4160M); the device range starts at 64 GiB. `pending`:
// KernelConfig::deferred_struct_page_init (pending memmaps, memmap.h), the default.
std::unique_ptr<Machine> boot_pc(bool pending = true) {
  MachineConfig c;
  c.kernel.deferred_struct_page_init = pending;
  c.memory.regions = {
      {PhysAddr(0x1000), 0x9f000 - 0x1000, 0, BootMemKind::Usable},
      {PhysAddr(0x100000), 0xbffdf000 - 0x100000, 0, BootMemKind::Usable},
      {PhysAddr(0x100000000), 0x44000000, 0, BootMemKind::Usable},
  };
  auto m = Machine::boot(std::move(c));
  if (!m) std::abort();
  return std::move(*m);
}

// memremap_pages of args[0] GiB of GENERIC (device-dax) memory at 64 GiB with vmemmap_shift
// args[1], no altmap (so x86 de-duplicates orders >= 8), with the memmap written and mapped at once
// (args[2] = 0) or pending (1: described, and mapped on the host at first access). Timed:
// memremap_pages only (population and memmap initialisation); memunmap_pages runs untimed between
// iterations. With args[3] = 1 every section is then touched once (pfn_to_page of its first pfn,
// timed too): the pending memmap's whole cost, paid later.
// Counters: vmemmap bytes with memory behind them, bytes mapped (aliases included), and the
// backed bytes as a fraction of the undeduplicated memmap (64 bytes per page).
// De-duplication maps one host page per alias, so the host's vm.max_map_count (65530 by default)
// bounds the range: 2 MiB units need about 6 mappings per unit (~10 GiB), 1 GiB units about 4096
// per unit (~15 GiB); beyond that memremap_pages fails -ENOMEM and the run reports it.
void BM_MemremapDevdax(benchmark::State& state) {
  const uint64_t bytes = static_cast<uint64_t>(state.range(0)) * GiB;
  const unsigned shift = static_cast<unsigned>(state.range(1));
  const bool touch = state.range(3) != 0;
  auto m = boot_pc(state.range(2) != 0);
  const VmemmapStats before = m->vmemmap().stats();
  VmemmapStats during{};
  for (auto _ : state) {
    DevPagemap pgmap;
    pgmap.type = MemoryType::Generic;
    pgmap.ranges = {PhysRange{PhysAddr(64 * GiB), PhysAddr(64 * GiB + bytes - 1)}};
    pgmap.vmemmap_shift = shift;
    auto r = m->memremap_pages(pgmap, 0);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      break;
    }
    if (touch)
      for (uint64_t off = 0; off < bytes; off += m->arch().section_size())
        benchmark::DoNotOptimize(m->pfn_to_page(Pfn((64 * GiB + off) >> 12)));
    state.PauseTiming();
    during = m->vmemmap().stats();
    m->memunmap_pages(pgmap);
    state.ResumeTiming();
  }
  const uint64_t pages = bytes >> 12;
  const double backed = static_cast<double>(during.bytes_backed() - before.bytes_backed());
  const double mapped = static_cast<double>(during.bytes_mapped() - before.bytes_mapped());
  state.counters["vmemmap_backed_MiB"] = backed / (1 << 20);
  state.counters["vmemmap_mapped_MiB"] = mapped / (1 << 20);
  state.counters["pct_of_no_dedup"] = 100.0 * backed / static_cast<double>(pages * sizeof(Page));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * pages));
}
BENCHMARK(BM_MemremapDevdax)
    ->ArgNames({"GiB", "shift", "pending", "touch"})
    ->ArgsProduct({{64, 4}, {0, 9, 18}, {0, 1}, {0}})
    ->Args({4, 0, 1, 1})
    ->Args({4, 9, 1, 1})
    ->Args({4, 18, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// memmap_init_zone_device() alone over 16 sections (2 GiB of device memory, 32 MiB of memmap)
// already added and faulted in, next to memset of the same descriptors: the stores the kernel's
// initialisation does, without population. Arg: vmemmap_shift (0 = base pages; 9 = 2 MiB compound
// pages, whose memmap is de-duplicated so only the unique descriptors are written — bytes counted
// are those written).
struct AddedDeviceRange {
  static constexpr Pfn kStart{0x1000000};       // 64 GiB
  static constexpr uint64_t kPages = 16 * 32768;  // 16 sections
  KernelLog log;
  Vmemmap vm{kX86_64, kLinux61, log, VmemmapConfig{}};
  SectionTable sections{kX86_64, kLinux61, vm, log};
  DevPagemap pgmap;
  explicit AddedDeviceRange(unsigned shift) {
    pgmap.type = MemoryType::Generic;
    pgmap.vmemmap_shift = shift;
    pgmap.ranges = {PhysRange{PhysAddr(kStart.value() << 12), PhysAddr(((kStart.value() + kPages) << 12) - 1)}};
    if (!sections.add_pages(0, kStart, NrPages(kPages), nullptr, shift)) std::abort();
    if (!memmap_init_zone_device(vm, sections, kLinux61, pgmap, 0, 0, log)) std::abort();  // first touch
  }
};

void BM_MemmapInitZoneDevice(benchmark::State& state) {
  AddedDeviceRange r(static_cast<unsigned>(state.range(0)));
  for (auto _ : state) {
    if (!memmap_init_zone_device(r.vm, r.sections, kLinux61, r.pgmap, 0, 0, r.log)) std::abort();
    benchmark::ClobberMemory();
  }
  // De-duplicated units write their head and the 127 tails of the two unique vmemmap pages.
  const uint64_t written = state.range(0) >= 8 ? (AddedDeviceRange::kPages >> state.range(0)) * 128 : AddedDeviceRange::kPages;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * written * sizeof(Page)));
}
BENCHMARK(BM_MemmapInitZoneDevice)->ArgName("shift")->Arg(0)->Arg(9);

// The floor: memset of the same descriptors (base pages: the whole 32 MiB memmap).
void BM_MemsetZoneDeviceMemmap(benchmark::State& state) {
  AddedDeviceRange r(0);
  Page* first = r.vm.pfn_to_page(AddedDeviceRange::kStart);
  const uint64_t bytes = AddedDeviceRange::kPages * sizeof(Page);
  for (auto _ : state) {
    std::memset(static_cast<void*>(first), 0, bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_MemsetZoneDeviceMemmap);

}  // namespace
}  // namespace sparsemem
