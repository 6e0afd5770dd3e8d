// The HMM test driver (lib/test_hmm.c, "hmm_dmirror", Linux 6.1): device-private memory in 256 MiB
// chunks, a per-device free list threaded through the struct pages, teardown on unload. Thread-safe: a per-device lock.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sparsemem/check.h"
#include "sparsemem/invariant.h"
#include "sparsemem/machine.h"
#include "sparsemem/pagemap.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

// lib/test_hmm.c's constants (6.1).
inline constexpr uint64_t DEVMEM_CHUNK_SIZE = uint64_t{256} << 20;
inline constexpr unsigned DMIRROR_NDEVICES = 4;

// Module parameters. Both non-zero: devices 2 and 3 are COHERENT devices whose chunk is the 256 MiB
// at a given address — device 2 takes spm_addr_dev1 and device 3 spm_addr_dev0, as 6.1 picks them
// ("(MINOR(dev) - 2) ? spm_addr_dev0 : spm_addr_dev1"). Either zero: only the two PRIVATE devices.
struct TestHmmParams {
  uint64_t spm_addr_dev0 = 0;
  uint64_t spm_addr_dev1 = 0;
};

class TestHmm;

// A lock clang's -Wthread-safety can reason about (libstdc++'s std::mutex has no annotations);
// the same shape as src/internal's Mutex, which a public header cannot include.
class SPM_CAPABILITY("mutex") DmirrorLock {
 public:
  void lock() SPM_ACQUIRE() { m_mutex.lock(); }
  void unlock() SPM_RELEASE() { m_mutex.unlock(); }

 private:
  std::mutex m_mutex;
};
class SPM_TSA(scoped_lockable) DmirrorLockGuard {
 public:
  explicit DmirrorLockGuard(DmirrorLock& l) SPM_ACQUIRE(l) : m_lock(l) { m_lock.lock(); }
  ~DmirrorLockGuard() SPM_RELEASE() { m_lock.unlock(); }
  DmirrorLockGuard(const DmirrorLockGuard&) = delete;
  DmirrorLockGuard& operator=(const DmirrorLockGuard&) = delete;

 private:
  DmirrorLock& m_lock;
};

// struct dmirror_device: "hmm_dmirror<id>". The free list is the kernel's: the head holds the
// kernel address of a free page's struct page, and each free page's zone_device_data
// (Page::lru_prev) holds the next one's, 0 ending the list. Allocated pages carry
// zone_device_data 0 (the model does not allocate the system "backing" page test_hmm keeps there).
//
// LOCKS: m_devmem_lock (the kernel's devmem_lock mutex) guards the chunk list; m_lock (the
// kernel's spinlock) guards the free list and the counters and is taken by page_free, which may
// run on any thread that drops a page's last reference. Order: devmem_lock, then lock.
//
// INV-HMM-1: every page on the free list lies in a chunk of this device that is not being removed
//            and has refcount 0; the list has no cycle.
// INV-HMM-2: outside teardown, free-list length + pages with refcount > 0 = chunks x 65536 (4K
//            pages): every page is either free or handed out.
// INV-HMM-3: every chunk's pagemap is mapped, of the device's type, owned by the device; a PRIVATE
//            chunk's range is a busy iomem region named "hmm_dmirror".
class DmirrorDevice {
 public:
  DmirrorDevice(TestHmm& driver, unsigned id, MemoryType type);
  DmirrorDevice(const DmirrorDevice&) = delete;
  DmirrorDevice& operator=(const DmirrorDevice&) = delete;

  unsigned id() const { return m_id; }
  const std::string& name() const { return m_name; }  // "hmm_dmirror0"
  MemoryType zone_device_type() const { return m_type; }
  // Snapshots, read under the locks.
  size_t nr_chunks() const SPM_EXCLUDES(m_devmem_lock);
  std::vector<PhysRange> chunk_ranges() const SPM_EXCLUDES(m_devmem_lock);
  uint64_t calloc() const SPM_EXCLUDES(m_lock);  // pages handed out by alloc_page, ever
  uint64_t cfree() const SPM_EXCLUDES(m_lock);   // pages given back through page_free, ever
  uint64_t nr_free_pages() const SPM_EXCLUDES(m_lock);  // walks the free list

  void check_invariants(const Machine& m, InvariantReport& report) const
      SPM_EXCLUDES(m_devmem_lock, m_lock);

 private:
  friend class TestHmm;
  // dmirror_allocate_chunk(): a PRIVATE chunk from request_free_mem_region(256 MiB,
  // "hmm_dmirror"), or the COHERENT chunk at spm_addr; memremap_pages on the current node; every
  // pfn pushed on the free list (the last one ends up at the head); with `take`, one page popped
  // for the caller. Logs "added new 256 MB chunk (total %u chunks, %u MB) PFNs [0x%lx 0x%lx)".
  // Return: -ENOMEM when no free region is left (6.1 maps every request_free_mem_region failure to
  // -ENOMEM); -EINVAL for a device of another type; memremap_pages' errno (the region is
  // released again). A failure leaves the machine as it was.
  Result<std::optional<Pfn>> allocate_chunk(bool take) SPM_EXCLUDES(m_devmem_lock, m_lock);
  // dmirror_devmem_free() (ops->page_free): the page goes back on the free list unless its chunk
  // is being removed.
  void page_free(Pfn pfn, Page& page) SPM_EXCLUDES(m_lock);
  // Pops the free list's head, or nothing.
  std::optional<Pfn> pop_free_locked() SPM_REQUIRES(m_lock);
  void push_free_locked(Pfn pfn, Page& page) SPM_REQUIRES(m_lock);
  // dmirror_device_remove_chunks(): each chunk is marked removed and its free pages dropped, then
  // memunmap_pages (which waits for the pages still handed out) and release_mem_region.
  void remove_chunks() SPM_EXCLUDES(m_devmem_lock, m_lock);
  Pfn pfn_of_descriptor(uint64_t kaddr) const;

  TestHmm& m_driver;
  const unsigned m_id;
  const std::string m_name;
  const MemoryType m_type;
  mutable DmirrorLock m_devmem_lock;
  // struct dmirror_chunk is its pagemap here; the kernel's chunk->remove flag is m_removing.
  std::vector<std::unique_ptr<DevPagemap>> m_chunks SPM_GUARDED_BY(m_devmem_lock);
  mutable DmirrorLock m_lock;
  // Chunks being torn down: page_free no longer returns their pages to the free list. Kept under
  // m_lock (page_free cannot take m_devmem_lock: teardown holds it while memunmap_pages waits).
  std::vector<const DevPagemap*> m_removing SPM_GUARDED_BY(m_lock);
  uint64_t m_free_head SPM_GUARDED_BY(m_lock) = 0;  // kernel address of the first free struct page
  uint64_t m_calloc SPM_GUARDED_BY(m_lock) = 0;
  uint64_t m_cfree SPM_GUARDED_BY(m_lock) = 0;
};

// The loaded module: hmm_dmirror_init() to hmm_dmirror_exit().
// LIFETIME: the Machine must outlive the driver. Destroying a loaded driver unloads it first (and,
// like rmmod, waits for every device page still handed out).
class TestHmm {
 public:
  // modprobe test_hmm: two PRIVATE devices (plus two COHERENT ones, see TestHmmParams), each
  // starting with one chunk; logs "HMM test module loaded. This is only for testing HMM.".
  // Return: -ENOENT "Module test_hmm not found" when the kernel is built without CONFIG_TEST_HMM
  // (Debian's 6.1: modprobe finds no such module, nothing is logged); otherwise the first
  // device's allocate_chunk error, after the devices already set up are removed again, so a
  // failed load leaves the machine as it was (log lines aside). CONFIG_TEST_HMM without
  // CONFIG_DEVICE_PRIVATE is no valid Kconfig (TEST_HMM depends on it); the model lets it through,
  // so the load fails -EINVAL "Device private memory not supported" from memremap_pages.
  static Result<std::unique_ptr<TestHmm>> load(Machine& machine, TestHmmParams params = {});
  ~TestHmm();
  TestHmm(const TestHmm&) = delete;
  TestHmm& operator=(const TestHmm&) = delete;

  // rmmod test_hmm (hmm_dmirror_exit): every device's chunks are removed (memunmap_pages, then
  // release_mem_region for PRIVATE ones). Blocks until every allocated page has been put (6.1
  // first migrates mapped pages back to system memory, which frees them; the model has no page
  // tables, so pages a caller holds are released only by put_device_page). Idempotent.
  void unload();
  bool loaded() const { return m_loaded; }

  Machine& machine() const { return m_machine; }
  unsigned nr_devices() const { return static_cast<unsigned>(m_devices.size()); }
  const DmirrorDevice& device(unsigned id) const { return *m_devices.at(id); }

  // dmirror_devmem_alloc_page(): the free list's head, or a new chunk when the list is empty,
  // handed out with zone_device_page_init (refcount 1, one pgmap reference). Free it with
  // Machine::put_device_page, whose page_free puts it back on the list.
  // Return: -ENODEV for a device id that does not exist or after unload; allocate_chunk's errno.
  Result<Pfn> alloc_page(unsigned device_id);
  // Adds one chunk to the device (dmirror_allocate_chunk(mdevice, NULL)); the same errors.
  Result<void> allocate_chunk(unsigned device_id);

  // The pagemap ops every chunk points at (page_free, migrate_to_ram).
  const DevPagemapOps& ops() const { return m_ops; }

  void check_invariants(InvariantReport& report) const;

 private:
  explicit TestHmm(Machine& machine);

  Machine& m_machine;
  TestHmmParams m_params;
  DevPagemapOps m_ops;
  std::vector<std::unique_ptr<DmirrorDevice>> m_devices;
  bool m_loaded = false;
  friend class DmirrorDevice;
};

}  // namespace sparsemem
