// Benchmarks for memory hotplug: a 64 GiB add/online/offline/remove cycle per 128 MiB block next to one
// block's memmap initialisation, and memory-block lookup by pfn among 131072 blocks.
#include <benchmark/benchmark.h>

#include <time.h>

#include <cstring>
#include <random>

#include "sparsemem/machine.h"
#include "sparsemem/memory_block.h"

namespace sparsemem {
namespace {

constexpr uint64_t GiB = uint64_t{1} << 30;
constexpr uint64_t kBlockBytes = uint64_t{128} << 20;
constexpr uint64_t kBlockPages = 32768;

std::unique_ptr<Machine> boot_1g() {
  MachineConfig c;
  c.memory.regions = {{PhysAddr(0x1000), GiB - 0x1000, 0, BootMemKind::Usable}};
  auto m = Machine::boot(c);
  if (!m) std::abort();
  return std::move(*m);
}

// Thread CPU time (user + system, so the host's page faults on a fresh memmap count): the machine
// is shared with parallel builds, and wall time would mostly measure them.
double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// One iteration: add_memory of 64 GiB at 4 GiB (512 blocks), online every block movable, offline
// every block, remove_memory. Counters give microseconds per block for each phase, and for the
// whole cycle (thread CPU time), beside memmap_init_us: init_page_range over one block's 32768 descriptors measured
// in the same iteration on memory that is already faulted in (the floor online_pages cannot beat).
void BM_HotplugCycle64G(benchmark::State& state) {
  auto m = boot_1g();
  const uint64_t size = 64 * GiB;
  const uint64_t blocks = size / kBlockBytes;
  const PhysAddr start(4 * GiB);
  std::vector<Page> scratch(kBlockPages);
  double add = 0, online = 0, offline = 0, remove = 0, init = 0;
  for (auto _ : state) {
    double t = cpu_now();
    if (!m->add_memory(0, start, size)) state.SkipWithError("add_memory failed");
    add += cpu_now() - t;
    t = cpu_now();
    for (uint64_t b = 0; b < blocks; ++b)
      if (!m->device_online(BlockId(32 + b), OnlineType::OnlineMovable)) state.SkipWithError("online failed");
    online += cpu_now() - t;
    t = cpu_now();
    for (uint64_t b = 0; b < blocks; ++b)
      if (!m->device_offline(BlockId(32 + b))) state.SkipWithError("offline failed");
    offline += cpu_now() - t;
    t = cpu_now();
    if (!m->remove_memory(start, size)) state.SkipWithError("remove_memory failed");
    remove += cpu_now() - t;
    t = cpu_now();
    init_page_range(scratch.data(), kBlockPages, ZoneType::Movable, 0, VmemmapAddr(0xffffea0004000000), true);
    benchmark::ClobberMemory();
    init += cpu_now() - t;
  }
  const double per = 1e6 / static_cast<double>(state.iterations() * blocks);
  state.counters["add_us_per_block"] = add * per;
  state.counters["online_us_per_block"] = online * per;
  state.counters["offline_us_per_block"] = offline * per;
  state.counters["remove_us_per_block"] = remove * per;
  state.counters["cycle_us_per_block"] = (add + online + offline + remove) * per;
  state.counters["memmap_init_us"] = init * 1e6 / static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * blocks));
}
BENCHMARK(BM_HotplugCycle64G)->Unit(benchmark::kMillisecond)->Iterations(3);

// find_by_pfn() among 131072 blocks (16 TiB of 128 MiB blocks) in a registry sized for x86
// 4-level (2^19 ids): random pfns, half of them in blocks that do not exist.
void BM_BlockLookupByPfn(benchmark::State& state) {
  MemoryBlockRegistry reg;
  reg.reset(uint64_t{1} << 19, NrPages(kBlockPages));
  for (uint64_t id = 0; id < 262144; id += 2) {
    MemoryBlock b;
    b.id = BlockId(id);
    if (!reg.insert(b)) std::abort();
  }
  std::mt19937_64 rng(42);
  std::vector<Pfn> pfns(4096);
  for (Pfn& p : pfns) p = Pfn(rng() % (262144 * kBlockPages));
  size_t i = 0, found = 0;
  for (auto _ : state) {
    const MemoryBlock* b = reg.find_by_pfn(pfns[i++ & 4095]);
    found += b != nullptr;
    benchmark::DoNotOptimize(b);
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["blocks"] = static_cast<double>(reg.size());
}
BENCHMARK(BM_BlockLookupByPfn);

}  // namespace
}  // namespace sparsemem
