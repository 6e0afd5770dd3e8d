// Vmemmap::Deferred: which sections' memmaps are pending (memmap.h, DeferredSectionRun), one state
// word per section in a two-level table. Readers are lock-free; every writer holds `mutex`.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "sparsemem/memmap.h"

namespace sparsemem {

struct Vmemmap::Deferred {
  // State word: bit 0 pending, bit 1 reserved, bits 2-4 zone, bit 5 offlined, bits 8-31 nid;
  // 0 = written.
  static constexpr unsigned kLeafBits = 12;
  struct Leaf {
    std::atomic<uint32_t> state[1u << kLeafBits] = {};
  };

  explicit Deferred(uint64_t nr_sections);

  // The pending run of section nr (one section long), or nullopt. Lock-free (acquire).
  std::optional<DeferredSectionRun> find(SectionNr nr) const;
  // Requires `mutex`. Publishes with release: the section's bytes are written before a 0 is seen.
  void store(SectionNr nr, uint32_t state);
  static uint32_t encode(const DeferredSectionRun& run) {
    return 1u | (run.reserved ? 2u : 0u) | (static_cast<uint32_t>(run.zone) << 2) | (run.offlined ? 32u : 0u) |
           (run.nid << 8);
  }

  const uint64_t nr_sections;
  std::unique_ptr<std::atomic<Leaf*>[]> roots;  // nr_sections >> kLeafBits, rounded up
  std::vector<std::unique_ptr<Leaf>> leaves;     // owners of the leaves; under `mutex`
  std::atomic<uint64_t> pending{0};
  std::mutex mutex;
};

}  // namespace sparsemem
