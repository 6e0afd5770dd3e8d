// Vmemmap::Deferred: which sections' memmaps are pending (memmap.h, DeferredSectionRun and
// DeviceMemmapRun), one state word per section in a two-level table. Readers are lock-free; every writer holds `mutex`.
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
  // State word: bit 0 pending, bit 1 reserved, bits 2-4 zone, bit 5 offlined, bit 6 device, bits
  // 8-31 nid (or, for a device section, the index of its DeviceMemmapRun); 0 = written.
  static constexpr uint32_t kPending = 1;
  static constexpr uint32_t kDevice = 64;
  static constexpr unsigned kLeafBits = 12;
  struct Leaf {
    std::atomic<uint32_t> state[1u << kLeafBits] = {};
  };
  // Device runs: append-only, never freed before the table, so a reader holding an index reads a
  // run that stays valid. Indices are 24 bits: 2^14 blocks of 2^10 runs.
  static constexpr unsigned kRunBlockBits = 10;
  static constexpr uint32_t kMaxRuns = uint32_t{1} << 24;

  explicit Deferred(uint64_t nr_sections);

  // The state word of section nr (0 when nothing is pending there). Lock-free (acquire).
  uint32_t word(SectionNr nr) const;
  // The pending run of section nr (one section long), or nullopt (written, or device-pending).
  std::optional<DeferredSectionRun> find(SectionNr nr) const;
  // The run a device-pending state word names.
  const DeviceMemmapRun& device_run(uint32_t word) const;
  // Requires `mutex`. Stores a run and returns its index, or nullopt when the table is full.
  std::optional<uint32_t> add_device_run(const DeviceMemmapRun& run);
  // Requires `mutex`. Publishes with release: the section's bytes are written before a 0 is seen.
  void store(SectionNr nr, uint32_t state);
  static uint32_t encode(const DeferredSectionRun& run) {
    return kPending | (run.reserved ? 2u : 0u) | (static_cast<uint32_t>(run.zone) << 2) | (run.offlined ? 32u : 0u) |
           (run.nid << 8);
  }
  static uint32_t encode_device(uint32_t index) {
    return kPending | kDevice | (static_cast<uint32_t>(ZoneType::Device) << 2) | (index << 8);
  }

  const uint64_t nr_sections;
  std::unique_ptr<std::atomic<Leaf*>[]> roots;  // nr_sections >> kLeafBits, rounded up
  std::vector<std::unique_ptr<Leaf>> leaves;     // owners of the leaves; under `mutex`
  std::unique_ptr<std::atomic<DeviceMemmapRun*>[]> run_blocks;  // kMaxRuns >> kRunBlockBits
  std::vector<std::unique_ptr<DeviceMemmapRun[]>> run_owners;    // under `mutex`
  uint32_t nr_runs = 0;                                          // under `mutex`
  // Each counted on its own, so a reader never derives one from two loads a writer changes between.
  std::atomic<uint64_t> pending{0};         // every pending section (the readers' fast path)
  std::atomic<uint64_t> run_pending{0};     // those pending with a DeferredSectionRun
  std::atomic<uint64_t> device_pending{0};  // those pending with a DeviceMemmapRun
  std::mutex mutex;
};

}  // namespace sparsemem
