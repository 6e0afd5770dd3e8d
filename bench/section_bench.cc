// Benchmarks of the lock-free pfn queries on a sparse 64 TiB x86-64 map, each next to the
// physical limit measured in the same run: one bit tested in a flat, preallocated bitmap of every pfn.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "sparsemem/machine.h"

namespace sparsemem {
namespace {

// 512 ranges of 64 MiB spread over the 46-bit (64 TiB) physical space, one every 128 GiB, plus
// 2 GiB at the bottom: 34 GiB of RAM in a 64 TiB span.
struct SparseMap {
  std::unique_ptr<Machine> machine;
  std::vector<uint64_t> bitmap;  // one bit per pfn of the whole 64 TiB: 2 GiB
  std::vector<Pfn> probes;

  SparseMap() {
    MachineConfig cfg;
    cfg.memory.regions.push_back({PhysAddr(0), uint64_t{2} << 30, 0});
    for (uint64_t i = 1; i < 512; ++i)
      cfg.memory.regions.push_back({PhysAddr(i * (uint64_t{128} << 30)), uint64_t{64} << 20, 0});
    machine = std::move(*Machine::boot(cfg));
    const uint64_t nr_pfns = kX86_64.max_pfn_limit();
    bitmap.assign(nr_pfns / 64, 0);
    for (const BootRegion& r : cfg.memory.regions)
      for (uint64_t p = r.start.value() >> 12; p < (r.start.value() + r.size) >> 12; ++p)
        bitmap[p / 64] |= uint64_t{1} << (p % 64);
    std::mt19937_64 rng(42);
    probes.resize(1 << 20);
    for (Pfn& p : probes) {
      // Half the probes land in RAM sections, half anywhere in the 64 TiB.
      const uint64_t r = rng();
      p = (r & 1) ? Pfn((((r >> 1) % 512) * (uint64_t{128} << 30) >> 12) + ((r >> 20) % 16384))
                  : Pfn((r >> 1) % nr_pfns);
    }
  }
};

SparseMap& map() {
  static SparseMap m;
  return m;
}

void BM_flat_bitmap_limit(benchmark::State& state) {
  SparseMap& m = map();
  size_t i = 0;
  for (auto _ : state) {
    const uint64_t p = m.probes[i++ & (m.probes.size() - 1)].value();
    benchmark::DoNotOptimize((m.bitmap[p / 64] >> (p % 64)) & 1);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_flat_bitmap_limit);

void BM_pfn_valid(benchmark::State& state) {
  SparseMap& m = map();
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(m.machine->pfn_valid(m.probes[i++ & (m.probes.size() - 1)]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_pfn_valid);

void BM_pfn_to_online_page(benchmark::State& state) {
  SparseMap& m = map();
  size_t i = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(m.machine->pfn_to_online_page(m.probes[i++ & (m.probes.size() - 1)]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_pfn_to_online_page);

void BM_pfn_to_page(benchmark::State& state) {
  SparseMap& m = map();
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(m.machine->pfn_to_page(m.probes[i++ & (m.probes.size() - 1)]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_pfn_to_page);

}  // namespace
}  // namespace sparsemem
