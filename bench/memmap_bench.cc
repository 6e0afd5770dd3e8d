// Benchmarks for the memmap layer (include/sparsemem/memmap.h, page.h): memmap initialisation
// against a plain memset of the same bytes, population, and the reader paths. Single-file, no state.
#include <benchmark/benchmark.h>

#include <cstring>

#include "sparsemem/memmap.h"

namespace sparsemem {
namespace {

constexpr Pfn kSection40{0x140000};
constexpr uint64_t kSectionPages = 32768;  // x86-64: 128 MiB / 4 KiB
constexpr uint64_t kSectionMemmapBytes = kSectionPages * sizeof(Page);  // 2 MiB

// One populated x86 section (a huge PMD), its descriptors already faulted in so that the timed
// loops measure stores, not first-touch page faults.
struct PopulatedSection {
  KernelLog log;
  Vmemmap vm{kX86_64, kLinux61, log, VmemmapConfig{}};
  Page* first = nullptr;
  PopulatedSection() {
    if (!vm.populate(kSection40, NrPages(kSectionPages), nullptr, VmemmapOrigin::Buddy)) std::abort();
    first = vm.pfn_to_page(kSection40);
    std::memset(static_cast<void*>(first), 0xFF, kSectionMemmapBytes);
  }
};

// __init_single_page over one section's 32768 descriptors (what memmap_init_range does per
// section), reported as bytes of memmap written so it reads directly against BM_MemsetSection.
void BM_InitSectionMemmap(benchmark::State& state) {
  PopulatedSection s;
  const uint64_t self0 = s.vm.page_addr(kSection40).value();
  for (auto _ : state) {
    for (uint64_t i = 0; i < kSectionPages; ++i)
      init_single_page(s.first[i], ZoneType::Normal, 0, VmemmapAddr(self0 + i * sizeof(Page)));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kSectionMemmapBytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSectionPages));
}
BENCHMARK(BM_InitSectionMemmap);

// The same initialisation as boot and online_pages run it: init_page_range over the section.
void BM_InitSectionMemmapRange(benchmark::State& state) {
  PopulatedSection s;
  const VmemmapAddr self0 = s.vm.page_addr(kSection40);
  for (auto _ : state) {
    init_page_range(s.first, kSectionPages, ZoneType::Normal, 0, self0, false);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kSectionMemmapBytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSectionPages));
}
BENCHMARK(BM_InitSectionMemmapRange);

// The floor for the above: memset of the same 2 MiB.
void BM_MemsetSection(benchmark::State& state) {
  PopulatedSection s;
  for (auto _ : state) {
    std::memset(static_cast<void*>(s.first), 0, kSectionMemmapBytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kSectionMemmapBytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSectionPages));
}
BENCHMARK(BM_MemsetSection);

// populate + depopulate of one section: arg 1 = huge PMD (PSE), 0 = 512 base pages.
void BM_PopulateDepopulateSection(benchmark::State& state) {
  KernelLog log;
  VmemmapConfig cfg;
  cfg.cpu_has_pse = state.range(0) != 0;
  Vmemmap vm(kX86_64, kLinux61, log, cfg);
  for (auto _ : state) {
    if (!vm.populate(kSection40, NrPages(kSectionPages), nullptr, VmemmapOrigin::Buddy)) std::abort();
    vm.depopulate(kSection40, NrPages(kSectionPages), nullptr);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_PopulateDepopulateSection)->Arg(1)->Arg(0);

// The unchecked fast path.
void BM_PfnToPage(benchmark::State& state) {
  PopulatedSection s;
  uint64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.vm.pfn_to_page(kSection40 + NrPages(i)));
    i = (i + 4099) & (kSectionPages - 1);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_PfnToPage);

// The checked read (grace-gate entry and exit, state lookup, 64-byte copy), also from 2 threads
// sharing the gate's counters. The section is shared by the threads and lives for the process.
void BM_ReadPage(benchmark::State& state) {
  static PopulatedSection shared;
  uint64_t i = static_cast<uint64_t>(state.thread_index()) * 977;
  for (auto _ : state) {
    benchmark::DoNotOptimize(shared.vm.read_page(kSection40 + NrPages(i)));
    i = (i + 4099) & (kSectionPages - 1);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ReadPage)->Threads(1)->Threads(2);

void BM_DescriptorMapped(benchmark::State& state) {
  PopulatedSection s;
  uint64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.vm.descriptor_mapped(kSection40 + NrPages(i)));
    i = (i + 4099) & (kSectionPages - 1);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_DescriptorMapped);

}  // namespace
}  // namespace sparsemem
