// Vmemmap host window (private to src/memmap): 1 GiB chunks of reserved host memory, their mapping state, the read gate.
// Readers are lock-free once a chunk exists; writers are serialised by Vmemmap's caller; chunks live until ~ChunkTable.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "sparsemem/check.h"
#include "sparsemem/memmap.h"
#include "sparsemem/result.h"

namespace sparsemem::vmemmap_detail {

inline constexpr unsigned kChunkShift = Vmemmap::kChunkShift;
inline constexpr uint64_t kChunkSize = uint64_t{1} << kChunkShift;

// Mapping state, one byte per PMD and one per base vmemmap page: kind in the low nibble, origin
// in the high one. 0 means "nothing mapped" for both.
enum class Kind : uint8_t { None = 0, Table = 1, Huge = 2, Base = 3 };
constexpr uint8_t encode(Kind k, VmemmapOrigin o) {
  return static_cast<uint8_t>(static_cast<uint8_t>(k) | (static_cast<uint8_t>(o) << 4));
}
constexpr Kind kind_of(uint8_t e) { return static_cast<Kind>(e & 0xf); }
constexpr VmemmapOrigin origin_of(uint8_t e) { return static_cast<VmemmapOrigin>((e >> 4) & 3); }
// Base-page entries only: the model maps the page but the host memory is not there yet (a pending
// compound mapping, memmap.h); among those, kPendingFile marks the page that becomes a page of the
// shared file (a unit's first tail, which the following Shared pages alias).
inline constexpr uint8_t kHostPending = 0x80;
inline constexpr uint8_t kPendingFile = 0x40;
constexpr bool host_pending(uint8_t e) { return (e & kHostPending) != 0; }

// Chunk: one 1 GiB-aligned GiB of kernel address space. Its host range is a PROT_NONE,
// MAP_NORESERVE reservation aligned to 1 GiB in the host too, so page_to_pfn finds the chunk
// from the host address alone. The state tables are published before the chunk is, and
// readers load entries with acquire after a writer mapped the memory and stored with release.
class Chunk {
 public:
  // -ENOMEM when the host has no address space left.
  static Result<std::unique_ptr<Chunk>> reserve(uint64_t kernel_base, unsigned page_shift, unsigned pmd_shift);
  ~Chunk();
  Chunk(const Chunk&) = delete;
  Chunk& operator=(const Chunk&) = delete;

  uint64_t kernel_base() const { return m_kernel_base; }
  std::byte* host() const { return m_host; }
  uint64_t nr_pmds() const { return m_nr_pmds; }
  uint64_t pages_per_pmd() const { return m_pages_per_pmd; }

  std::atomic<uint8_t>& pmd(uint64_t i) const { return m_pmd[i]; }
  std::atomic<uint8_t>& page(uint64_t i) const { return m_page[i]; }
  // Writer-only: mapped base pages under PMD i (so an empty page table is noticed in O(1)).
  uint32_t& table_count(uint64_t i) { return m_table_count[i]; }
  uint32_t table_count(uint64_t i) const { return m_table_count[i]; }

 private:
  Chunk() = default;
  uint64_t m_kernel_base = 0;
  std::byte* m_host = nullptr;
  uint64_t m_nr_pmds = 0;
  uint64_t m_pages_per_pmd = 0;
  std::unique_ptr<std::atomic<uint8_t>[]> m_pmd;
  std::unique_ptr<std::atomic<uint8_t>[]> m_page;
  std::unique_ptr<uint32_t[]> m_table_count;
};

// A mutex clang's -Wthread-safety can reason about (libstdc++'s std::mutex carries no annotations).
class SPM_CAPABILITY("mutex") Mutex {
 public:
  void lock() SPM_ACQUIRE() { m_mutex.lock(); }
  void unlock() SPM_RELEASE() { m_mutex.unlock(); }

 private:
  std::mutex m_mutex;
};
class SPM_TSA(scoped_lockable) MutexLock {
 public:
  explicit MutexLock(Mutex& m) SPM_ACQUIRE(m) : m_mutex(m) { m_mutex.lock(); }
  ~MutexLock() SPM_RELEASE() { m_mutex.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& m_mutex;
};

// ChunkTable: kernel address -> Chunk, and host address -> Chunk.
//   In-window chunks: a two-level table (root of 2^39-byte spans, leaves of 512 chunk pointers),
//   so even la57's 2^49-byte window needs a 1024-entry root and leaves only where used.
//   Out-of-window chunks (seed 003's wrapped descriptors): a map under m_mutex.
//   Host lookup: a two-level table keyed by host address >> 30 over the 47-bit user space.
// Chunks and leaves are created under m_mutex, published with release stores and never freed
// before the table is destroyed, so a pointer a reader loaded stays valid.
class ChunkTable {
 public:
  ChunkTable(uint64_t window_start, uint64_t window_size, unsigned page_shift, unsigned pmd_shift);
  ~ChunkTable();
  ChunkTable(const ChunkTable&) = delete;
  ChunkTable& operator=(const ChunkTable&) = delete;

  // The chunk holding kernel address kaddr, or nullptr if it was never reserved. Lock-free for
  // in-window addresses.
  Chunk* find(uint64_t kaddr) const SPM_EXCLUDES(m_mutex);
  // find(), reserving the chunk if needed. Thread-safe. -ENOMEM when the host refuses.
  Result<Chunk*> get_or_reserve(uint64_t kaddr) const SPM_EXCLUDES(m_mutex);
  // The chunk whose host range holds p, or nullptr. Lock-free.
  const Chunk* find_host(const void* p) const;
  // Every chunk, in reservation order (for the checker; takes m_mutex).
  std::vector<const Chunk*> chunks() const SPM_EXCLUDES(m_mutex);
  uint64_t reserved() const { return m_reserved.load(std::memory_order_relaxed); }
  bool in_window(uint64_t kaddr) const { return kaddr - m_window_start < m_window_size; }

 private:
  static constexpr unsigned kLeafBits = 9;
  struct Leaf {
    std::atomic<Chunk*> slot[1u << kLeafBits] = {};
  };
  static constexpr unsigned kHostKeyBits = 47 - kChunkShift;  // x86-64/arm64 user space without hints
  static constexpr unsigned kHostRootBits = kHostKeyBits - kLeafBits;

  Chunk* find_window(uint64_t kaddr) const;
  Chunk* find_outside(uint64_t kaddr) const SPM_EXCLUDES(m_mutex);
  Leaf* leaf_locked(std::atomic<Leaf*>& root_slot) const SPM_REQUIRES(m_mutex);

  const uint64_t m_window_start;
  const uint64_t m_window_size;
  const unsigned m_page_shift;
  const unsigned m_pmd_shift;
  const uint64_t m_nr_roots;
  std::unique_ptr<std::atomic<Leaf*>[]> m_window_roots;
  std::unique_ptr<std::atomic<Leaf*>[]> m_host_roots;
  mutable std::atomic<uint64_t> m_reserved{0};

  mutable Mutex m_mutex;
  mutable std::vector<std::unique_ptr<Chunk>> m_owned SPM_GUARDED_BY(m_mutex);
  mutable std::vector<std::unique_ptr<Leaf>> m_leaves SPM_GUARDED_BY(m_mutex);
  mutable std::unordered_map<uint64_t, Chunk*> m_outside SPM_GUARDED_BY(m_mutex);
};

// ReaderGate: lets depopulate wait for every read_page that may still be copying from a page it
// is about to unmap (a two-counter epoch scheme, like SRCU). A reader joins the counter of the
// current epoch's parity and re-checks the epoch; the writer clears the mapping state, bumps the
// epoch, and waits for the old parity's counter to drain. With sequentially consistent
// operations either the writer sees the reader's count or the reader sees the cleared state.
// New readers join the other counter, so a stream of readers cannot starve the writer.
class ReaderGate {
 public:
  class Guard {
   public:
    explicit Guard(const ReaderGate& g);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    const ReaderGate& m_gate;
    unsigned m_parity;
  };
  // Returns once every reader that entered before the call has left.
  void synchronize() const;

 private:
  mutable std::atomic<uint64_t> m_epoch{0};
  struct alignas(64) Counter {
    std::atomic<uint64_t> n{0};
  };
  mutable Counter m_readers[2];
};

// SharedPageFile: the memory behind vmemmap pages that appear at several vmemmap addresses
// (compound de-duplication, spec §4.14): pages of one memfd, created on first use. Writer only.
class SharedPageFile {
 public:
  explicit SharedPageFile(uint64_t page_size) : m_page_size(page_size) {}
  ~SharedPageFile();
  SharedPageFile(const SharedPageFile&) = delete;
  SharedPageFile& operator=(const SharedPageFile&) = delete;

  // A file page nobody maps (a released one, or a new one at the end). -ENOMEM when the host
  // refuses to create or grow the file.
  Result<uint64_t> allocate();
  // Maps file page `page` at p (one page, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED), replacing
  // the PROT_NONE reservation there. -ENOMEM when the host refuses (e.g. vm.max_map_count).
  Result<void> map(std::byte* p, uint64_t page);
  // The page's last mapping is gone: its memory goes back to the host and the page is reused.
  void release(uint64_t page);
  uint64_t pages_in_use() const { return m_size_pages - m_free.size(); }

 private:
  uint64_t m_page_size;
  int m_fd = -1;
  uint64_t m_size_pages = 0;
  std::vector<uint64_t> m_free;
};

// Host mappings one Vmemmap may spend on compound de-duplication: half of vm.max_map_count
// (65530 by default), read once; 32768 when it cannot be read.
uint64_t host_mapping_budget();

// Host memory operations on a range of whole host pages inside a chunk's reservation.
// map: PROT_READ|PROT_WRITE (-ENOMEM if the host refuses, e.g. too many mappings).
Result<void> host_map(std::byte* p, uint64_t bytes);
// map_huge: host_map, then ask the host for transparent huge pages there (MADV_HUGEPAGE; a hint
// the host may ignore). Requires: p and bytes 2 MiB aligned. The first touch of each 2 MiB then
// costs one host fault instead of 512. Undo it with host_restore, which drops the hint too.
Result<void> host_map_huge(std::byte* p, uint64_t bytes);
// unmap: MADV_DONTNEED then PROT_NONE, so the memory goes back and a touch faults.
void host_unmap(std::byte* p, uint64_t bytes);
// restore: replace whatever is mapped there (a MAP_SHARED file page, a huge-page hinted range)
// by a fresh PROT_NONE private reservation, so the memory goes back, a touch faults and a later
// host_map works as on never-used space. One system call, whatever the range held.
void host_restore(std::byte* p, uint64_t bytes);
// Can one byte at p be read without faulting? (write(2) of it into a pipe reports EFAULT.)
class HostProbe {
 public:
  HostProbe();
  ~HostProbe();
  HostProbe(const HostProbe&) = delete;
  HostProbe& operator=(const HostProbe&) = delete;
  bool readable(const void* p);
  // readable() of every pointer, in one process_vm_readv(2) of our own memory (it stops at the
  // first unreadable byte); false when any is not, or when the host refuses the call.
  bool all_readable(std::span<const void* const> ps);

 private:
  int m_fd[2] = {-1, -1};
};

}  // namespace sparsemem::vmemmap_detail
