// Simulator speed against the real kernel (issue 6): each public scenario run by run_scenario()
// next to the wall time the oracle recorded for it under QEMU (`timing.total_s` of its trace).
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "sparsemem/diff.h"
#include "sparsemem/run.h"
#include "sparsemem/scenario.h"
#include "sparsemem/trace.h"

namespace sparsemem {
namespace {

constexpr const char* kScenarios[] = {
    "a_baseline",     "b2_autoonline_policies", "b3_memmap_on_memory", "b_dimm_coldplug",
    "c2_qmp_hotplug", "c_dimm_hotremove",       "d0_nvdimm_unaligned_addr", "d1_nvdimm_devdax",
    "d2_nvdimm_labelless", "d3_pmem_in_early_section", "e_kmem", "f_errors",
};

std::string scenario_path(const std::string& name) { return std::string(SPM_SOURCE_DIR) + "/tests/scenarios/" + name + ".scn"; }
std::string trace_path(const std::string& name) { return std::string(SPM_SOURCE_DIR) + "/tests/data/oracle/" + name + ".json"; }

double recorded_total_s(const Trace& t) {
  if (!t.timing || !t.timing->contains("total_s")) return 0;
  return (*t.timing)["total_s"].get<double>();
}

// One scenario: parse + boot + every step + snapshots. Counter `x_faster` is the oracle's recorded
// wall time over the simulator's mean wall time (goal >= 1000).
void BM_RunScenario(benchmark::State& state, const std::string& name) {
  auto sc = load_scenario(scenario_path(name));
  auto oracle = load_trace(trace_path(name));
  if (!sc || !oracle) {
    state.SkipWithError("scenario or trace missing");
    return;
  }
  double wall = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run_scenario(*sc);
    benchmark::DoNotOptimize(r);
    wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double mean = wall / static_cast<double>(state.iterations());
  state.counters["kernel_s"] = recorded_total_s(*oracle);
  state.counters["x_faster"] = mean > 0 ? recorded_total_s(*oracle) / mean : 0;
}

// The whole conformance suite as the tests run it: every scenario simulated and diffed against its
// trace (goal: under 2 s).
void BM_ConformanceSuite(benchmark::State& state) {
  std::vector<Scenario> scenarios;
  std::vector<Trace> traces;
  for (const char* n : kScenarios) {
    auto sc = load_scenario(scenario_path(n));
    auto t = load_trace(trace_path(n));
    if (!sc || !t) {
      state.SkipWithError("scenario or trace missing");
      return;
    }
    scenarios.push_back(std::move(*sc));
    traces.push_back(std::move(*t));
  }
  for (auto _ : state) {
    uint64_t matched = 0;
    for (size_t i = 0; i < scenarios.size(); ++i) {
      auto r = run_scenario(scenarios[i]);
      if (r) matched += diff_traces(traces[i], r->trace).matched;
    }
    benchmark::DoNotOptimize(matched);
  }
}

const bool kRegistered = [] {
  for (const char* n : kScenarios)
    benchmark::RegisterBenchmark(("BM_RunScenario/" + std::string(n)).c_str(), BM_RunScenario, std::string(n))
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  benchmark::RegisterBenchmark("BM_ConformanceSuite", BM_ConformanceSuite)->Unit(benchmark::kMillisecond)->UseRealTime();
  return true;
}();

}  // namespace
}  // namespace sparsemem
