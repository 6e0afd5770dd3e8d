// Vmemmap::Deferred: the pending-section state of deferred struct page init (memmap.h,
// DeferredSectionRun). `runs` is immutable after defer_init; `done` bits and `pending` are atomics
// read lock-free and written only under `mutex`, after the section's descriptors are written.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "sparsemem/memmap.h"

namespace sparsemem {

struct Vmemmap::Deferred {
  std::vector<DeferredSectionRun> runs;  // sorted by first section, disjoint
  std::vector<uint64_t> first_bit;       // runs[i]'s first section is bit first_bit[i] of `done`
  // Bit b set: the section is initialised (published with release, read with acquire).
  std::unique_ptr<std::atomic<uint64_t>[]> done;
  std::atomic<uint64_t> pending{0};
  std::mutex mutex;  // serialises the writers of deferred sections

  // The run holding section nr and nr's bit, or nullptr.
  const DeferredSectionRun* find(SectionNr nr, uint64_t& bit) const;
  bool is_done(uint64_t bit) const {
    return (done[bit / 64].load(std::memory_order_acquire) >> (bit % 64)) & 1;
  }
};

}  // namespace sparsemem
