// Vmemmap host window: chunk reservation, the chunk tables and the read_page grace gate.
// Owned by the memmap layer; see src/internal/vmemmap_chunks.h for the reader/writer contract.
#include "internal/vmemmap_chunks.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <thread>

#include <fmt/core.h>

namespace sparsemem::vmemmap_detail {

Result<std::unique_ptr<Chunk>> Chunk::reserve(uint64_t kernel_base, unsigned page_shift, unsigned pmd_shift) {
  // Reserve twice the size and trim, so the chunk is 1 GiB aligned in the host as well.
  void* raw = mmap(nullptr, 2 * kChunkSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED)
    return fail(Errno::NoMem, fmt::format("vmemmap: cannot reserve host address space for [{:#x}-{:#x}]",
                                          kernel_base, kernel_base + (kChunkSize - 1)));
  const auto lo = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (lo + kChunkSize - 1) & ~(kChunkSize - 1);
  if (aligned > lo) munmap(raw, aligned - lo);
  const uintptr_t tail = aligned + kChunkSize;
  if (lo + 2 * kChunkSize > tail) munmap(reinterpret_cast<void*>(tail), lo + 2 * kChunkSize - tail);

  std::unique_ptr<Chunk> c(new Chunk());
  c->m_kernel_base = kernel_base;
  c->m_host = reinterpret_cast<std::byte*>(aligned);
  c->m_nr_pmds = kChunkSize >> pmd_shift;
  c->m_pages_per_pmd = uint64_t{1} << (pmd_shift - page_shift);
  c->m_pmd = std::make_unique<std::atomic<uint8_t>[]>(c->m_nr_pmds);
  c->m_page = std::make_unique<std::atomic<uint8_t>[]>(kChunkSize >> page_shift);
  c->m_table_count = std::make_unique<uint32_t[]>(c->m_nr_pmds);
  return c;
}

Chunk::~Chunk() {
  if (m_host) munmap(m_host, kChunkSize);
}

ChunkTable::ChunkTable(uint64_t window_start, uint64_t window_size, unsigned page_shift, unsigned pmd_shift)
    : m_window_start(window_start),
      m_window_size(window_size),
      m_page_shift(page_shift),
      m_pmd_shift(pmd_shift),
      m_nr_roots((window_size + (uint64_t{1} << (kChunkShift + kLeafBits)) - 1) >> (kChunkShift + kLeafBits)),
      m_window_roots(std::make_unique<std::atomic<Leaf*>[]>(m_nr_roots)),
      m_host_roots(std::make_unique<std::atomic<Leaf*>[]>(uint64_t{1} << kHostRootBits)) {
  // Every 1 GiB chunk must be wholly inside or wholly outside the window (true of every profile:
  // the window starts at -2^k, k >= 32, and its size is a multiple of 1 GiB).
  SPM_CHECK((window_start & (kChunkSize - 1)) == 0 && (window_size & (kChunkSize - 1)) == 0,
            "vmemmap window not aligned to the 1 GiB chunk size");
  SPM_CHECK(pmd_shift <= kChunkShift && page_shift <= pmd_shift, "PMD larger than a chunk");
}

ChunkTable::~ChunkTable() = default;

Chunk* ChunkTable::find_window(uint64_t kaddr) const {
  const uint64_t idx = (kaddr - m_window_start) >> kChunkShift;
  Leaf* leaf = m_window_roots[idx >> kLeafBits].load(std::memory_order_acquire);
  if (!leaf) return nullptr;
  return leaf->slot[idx & ((1u << kLeafBits) - 1)].load(std::memory_order_acquire);
}

Chunk* ChunkTable::find_outside(uint64_t kaddr) const {
  MutexLock g(m_mutex);
  auto it = m_outside.find(kaddr >> kChunkShift);
  return it == m_outside.end() ? nullptr : it->second;
}

Chunk* ChunkTable::find(uint64_t kaddr) const {
  return in_window(kaddr) ? find_window(kaddr) : find_outside(kaddr);
}

ChunkTable::Leaf* ChunkTable::leaf_locked(std::atomic<Leaf*>& root_slot) const {
  Leaf* leaf = root_slot.load(std::memory_order_relaxed);
  if (!leaf) {
    m_leaves.push_back(std::make_unique<Leaf>());
    leaf = m_leaves.back().get();
    root_slot.store(leaf, std::memory_order_release);
  }
  return leaf;
}

Result<Chunk*> ChunkTable::get_or_reserve(uint64_t kaddr) const {
  if (in_window(kaddr)) {
    if (Chunk* c = find_window(kaddr)) return c;
  }
  MutexLock g(m_mutex);
  const uint64_t base = kaddr & ~(kChunkSize - 1);
  std::atomic<Chunk*>* slot = nullptr;
  if (in_window(kaddr)) {
    const uint64_t idx = (kaddr - m_window_start) >> kChunkShift;
    slot = &leaf_locked(m_window_roots[idx >> kLeafBits])->slot[idx & ((1u << kLeafBits) - 1)];
    if (Chunk* c = slot->load(std::memory_order_relaxed)) return c;
  } else if (auto it = m_outside.find(kaddr >> kChunkShift); it != m_outside.end()) {
    return it->second;
  }

  SPM_TRY_ASSIGN(std::unique_ptr<Chunk> owned, Chunk::reserve(base, m_page_shift, m_pmd_shift));
  Chunk* c = owned.get();
  const uint64_t host_key = reinterpret_cast<uintptr_t>(c->host()) >> kChunkShift;
  SPM_CHECK(host_key < (uint64_t{1} << kHostKeyBits), "host mapping above the 47-bit user address space");
  leaf_locked(m_host_roots[host_key >> kLeafBits])
      ->slot[host_key & ((1u << kLeafBits) - 1)]
      .store(c, std::memory_order_release);
  m_owned.push_back(std::move(owned));
  if (slot)
    slot->store(c, std::memory_order_release);
  else
    m_outside.emplace(kaddr >> kChunkShift, c);
  m_reserved.fetch_add(1, std::memory_order_relaxed);
  return c;
}

const Chunk* ChunkTable::find_host(const void* p) const {
  const uint64_t key = reinterpret_cast<uintptr_t>(p) >> kChunkShift;
  if (key >= (uint64_t{1} << kHostKeyBits)) return nullptr;
  Leaf* leaf = m_host_roots[key >> kLeafBits].load(std::memory_order_acquire);
  if (!leaf) return nullptr;
  return leaf->slot[key & ((1u << kLeafBits) - 1)].load(std::memory_order_acquire);
}

std::vector<const Chunk*> ChunkTable::chunks() const {
  MutexLock g(m_mutex);
  std::vector<const Chunk*> out;
  out.reserve(m_owned.size());
  for (const auto& c : m_owned) out.push_back(c.get());
  return out;
}

ReaderGate::Guard::Guard(const ReaderGate& g) : m_gate(g) {
  for (;;) {
    const uint64_t e = g.m_epoch.load(std::memory_order_seq_cst);
    m_parity = static_cast<unsigned>(e & 1);
    g.m_readers[m_parity].n.fetch_add(1, std::memory_order_seq_cst);
    // Registered under the parity of the epoch seen now: the writer of the next flip waits for us.
    if ((g.m_epoch.load(std::memory_order_seq_cst) & 1) == m_parity) return;
    g.m_readers[m_parity].n.fetch_sub(1, std::memory_order_release);
  }
}

ReaderGate::Guard::~Guard() { m_gate.m_readers[m_parity].n.fetch_sub(1, std::memory_order_release); }

void ReaderGate::synchronize() const {
  const uint64_t old = m_epoch.fetch_add(1, std::memory_order_seq_cst);
  auto& c = m_readers[old & 1].n;
  while (c.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

Result<void> host_map(std::byte* p, uint64_t bytes) {
  if (mprotect(p, bytes, PROT_READ | PROT_WRITE) != 0)
    return fail(Errno::NoMem, fmt::format("vmemmap: host refused to map {:#x} bytes (errno {})", bytes, errno));
  return {};
}

Result<void> host_map_huge(std::byte* p, uint64_t bytes) {
  SPM_TRY(host_map(p, bytes));
  // Only a hint: a host without THP (or with it set to "never") answers EINVAL and the range
  // simply keeps 4 KiB pages, which behave the same apart from speed.
  (void)madvise(p, bytes, MADV_HUGEPAGE);
  return {};
}

void host_unmap(std::byte* p, uint64_t bytes) {
  // Both calls only fail on arguments we control (page-aligned ranges inside our reservation).
  SPM_CHECK(madvise(p, bytes, MADV_DONTNEED) == 0, "madvise(MADV_DONTNEED) on the vmemmap failed");
  SPM_CHECK(mprotect(p, bytes, PROT_NONE) == 0, "mprotect(PROT_NONE) on the vmemmap failed");
}

uint64_t host_mapping_budget() {
  uint64_t limit = 65536;
  if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    unsigned long long v = 0;
    if (std::fscanf(f, "%llu", &v) == 1 && v > 0) limit = v;
    std::fclose(f);
  }
  return limit / 2;
}

void host_restore(std::byte* p, uint64_t bytes) {
  void* r = mmap(p, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  SPM_CHECK(r == p, "restoring the vmemmap reservation failed");
}

SharedPageFile::~SharedPageFile() {
  if (m_fd >= 0) close(m_fd);
}

Result<uint64_t> SharedPageFile::allocate() {
  if (!m_free.empty()) {
    const uint64_t page = m_free.back();
    m_free.pop_back();
    return page;
  }
  if (m_fd < 0) {
    m_fd = memfd_create("sparsemem-vmemmap-shared", MFD_CLOEXEC);
    if (m_fd < 0) return fail(Errno::NoMem, fmt::format("vmemmap: memfd_create failed (errno {})", errno));
  }
  // Grow in steps so that a large de-duplicated range does not cost one ftruncate per unit.
  const uint64_t grow = m_size_pages < 256 ? 256 : m_size_pages;
  if (ftruncate(m_fd, static_cast<off_t>((m_size_pages + grow) * m_page_size)) != 0)
    return fail(Errno::NoMem, fmt::format("vmemmap: cannot grow the shared page file (errno {})", errno));
  for (uint64_t i = grow; i > 1; --i) m_free.push_back(m_size_pages + i - 1);
  const uint64_t page = m_size_pages;
  m_size_pages += grow;
  return page;
}

Result<void> SharedPageFile::map(std::byte* p, uint64_t page) {
  void* r = mmap(p, m_page_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, m_fd,
                 static_cast<off_t>(page * m_page_size));
  if (r == MAP_FAILED)
    return fail(Errno::NoMem, fmt::format("vmemmap: host refused to map a shared page (errno {}; each alias is one "
                                          "mapping, bounded by vm.max_map_count)",
                                          errno));
  SPM_CHECK(r == p, "MAP_FIXED mapping landed elsewhere");
  return {};
}

void SharedPageFile::release(uint64_t page) {
  // Only fails on arguments we control (a page inside the file).
  SPM_CHECK(fallocate(m_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(page * m_page_size),
                      static_cast<off_t>(m_page_size)) == 0,
            "punching a released shared vmemmap page failed");
  m_free.push_back(page);
}

HostProbe::HostProbe() { SPM_CHECK(pipe(m_fd) == 0, "pipe() for the vmemmap probe failed"); }

HostProbe::~HostProbe() {
  close(m_fd[0]);
  close(m_fd[1]);
}

bool HostProbe::readable(const void* p) {
  if (write(m_fd[1], p, 1) != 1) return false;
  char sink;
  SPM_CHECK(read(m_fd[0], &sink, 1) == 1, "vmemmap probe pipe lost a byte");
  return true;
}

bool HostProbe::all_readable(std::span<const void* const> ps) {
  // At most IOV_MAX (1024) remote vectors per call.
  constexpr size_t kBatch = 1024;
  char sink[kBatch];
  iovec remote[kBatch];
  for (size_t i = 0; i < ps.size(); i += kBatch) {
    const size_t n = std::min(kBatch, ps.size() - i);
    for (size_t k = 0; k < n; ++k) remote[k] = iovec{const_cast<void*>(ps[i + k]), 1};
    const iovec local{sink, n};
    if (process_vm_readv(getpid(), &local, 1, remote, n, 0) != static_cast<ssize_t>(n)) return false;
  }
  return true;
}

}  // namespace sparsemem::vmemmap_detail
