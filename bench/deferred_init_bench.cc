// Benchmarks for deferred struct page init at scale (memmap.h DeferredSectionRun): boot and hot-plug
// of a 32 TiB x86-64 machine, with the process's peak RSS beside the fully initialised memmap size.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>

#include "sparsemem/machine.h"

namespace sparsemem {
namespace {

constexpr uint64_t GiB = uint64_t{1} << 30;

// QEMU-like low RAM, then [4G, 32T+1G) on node 0; bare metal, so 2 GiB memory blocks.
MachineConfig machine_32t() {
  MachineConfig c;
  c.hypervisor = false;
  c.memory.regions = {
      {PhysAddr(0x1000), 0x9e000, 0, BootMemKind::Usable},
      {PhysAddr(0x100000), 0xbffdf000 - 0x100000, 0, BootMemKind::Usable},
      {PhysAddr(4 * GiB), (uint64_t{32} << 40) + GiB - 4 * GiB, 0, BootMemKind::Usable},
  };
  return c;
}

double peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) * 1024.0;  // ru_maxrss is in KiB on Linux
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One iteration: boot the 32 TiB machine, add a 2 GiB block at 33 TiB, online it movable, offline
// it, remove it, then offline and online a boot block (which initialises its 16 deferred sections),
// then run the checker. Counters: boot, hot-plug and checker wall time, peak RSS of the process so far (run this benchmark alone:
// ru_maxrss is per process), the memmap the eager boot would write (present pages x 64 bytes) and
// the deferred sections still pending at the end.
void BM_Boot32TiB_Hotplug(benchmark::State& state) {
  double boot_s = 0, hotplug_s = 0, check_s = 0, memmap_bytes = 0, pending = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto m = Machine::boot(machine_32t());
    if (!m) {
      state.SkipWithError(m.error().message.c_str());
      return;
    }
    boot_s += seconds_since(t0);
    Machine& mm = **m;
    t0 = std::chrono::steady_clock::now();
    const PhysAddr hot(uint64_t{33} << 40);
    const BlockId hot_block(hot.value() / mm.memory_block_size());
    const BlockId boot_block((uint64_t{16} << 40) / mm.memory_block_size());
    if (!mm.add_memory(0, hot, 2 * GiB) || !mm.device_online(hot_block, OnlineType::OnlineMovable) ||
        !mm.device_offline(hot_block) || !mm.remove_memory(hot, 2 * GiB) || !mm.device_offline(boot_block) ||
        !mm.device_online(boot_block)) {
      state.SkipWithError("hot-plug step failed");
      return;
    }
    hotplug_s += seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    if (!mm.check().ok()) {
      state.SkipWithError("checker found violations");
      return;
    }
    check_s += seconds_since(t0);
    memmap_bytes = 0;
    for (const Node& n : mm.nodes())
      for (const Zone& z : n.zones) memmap_bytes += static_cast<double>(z.present_pages.value()) * sizeof(Page);
    pending = static_cast<double>(mm.vmemmap().deferred_pending_sections());
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["boot_s"] = boot_s / n;
  state.counters["hotplug_s"] = hotplug_s / n;
  state.counters["check_s"] = check_s / n;
  state.counters["peak_rss_bytes"] = benchmark::Counter(peak_rss_bytes(), benchmark::Counter::kDefaults,
                                                        benchmark::Counter::kIs1024);
  state.counters["full_memmap_bytes"] = benchmark::Counter(memmap_bytes, benchmark::Counter::kDefaults,
                                                           benchmark::Counter::kIs1024);
  state.counters["pending_sections"] = pending;
}
BENCHMARK(BM_Boot32TiB_Hotplug)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
}  // namespace sparsemem
