// Benchmarks for the devmem operations (include/sparsemem/pagemap.h, the devmem section of machine.h): memremap_pages of a
// large devdax range with 4 KiB, 2 MiB and 1 GiB compound pages — time and vmemmap memory against the undeduplicated memmap.
#include <benchmark/benchmark.h>

#include <cstdio>

#include "sparsemem/machine.h"
#include "sparsemem/pagemap.h"

namespace sparsemem {
namespace {

constexpr uint64_t GiB = uint64_t{1} << 30;

// The a_baseline machine (QEMU pc, -m 4160M); the device range starts at 64 GiB.
std::unique_ptr<Machine> boot_pc() {
  MachineConfig c;
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
// args[1], no altmap (so x86 de-duplicates orders >= 8). Timed: memremap_pages only (population
// and memmap initialisation); memunmap_pages runs untimed between iterations.
// Counters: vmemmap bytes with memory behind them, bytes mapped (aliases included), and the
// backed bytes as a fraction of the undeduplicated memmap (64 bytes per page).
// De-duplication maps one host page per alias, so the host's vm.max_map_count (65530 by default)
// bounds the range: 2 MiB units need about 6 mappings per unit (~10 GiB), 1 GiB units about 4096
// per unit (~15 GiB); beyond that memremap_pages fails -ENOMEM and the run reports it.
void BM_MemremapDevdax(benchmark::State& state) {
  const uint64_t bytes = static_cast<uint64_t>(state.range(0)) * GiB;
  const unsigned shift = static_cast<unsigned>(state.range(1));
  auto m = boot_pc();
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
    ->ArgNames({"GiB", "shift"})
    ->Args({64, 0})
    ->Args({64, 9})
    ->Args({64, 18})
    ->Args({4, 0})
    ->Args({4, 9})
    ->Args({4, 18})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace
}  // namespace sparsemem
