// lib/test_hmm.c (6.1) over the machine: device-private chunks placed by request_free_mem_region and
// memremapped, the per-device free list through zone_device_data, page_free, teardown. Locks as test_hmm.h says.
#include "sparsemem/test_hmm.h"

#include <algorithm>

#include <fmt/core.h>

namespace sparsemem {

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

}  // namespace

DmirrorDevice::DmirrorDevice(TestHmm& driver, unsigned id, MemoryType type)
    : m_driver(driver), m_id(id), m_name(fmt::format("hmm_dmirror{}", id)), m_type(type) {}

size_t DmirrorDevice::nr_chunks() const {
  DmirrorLockGuard g(m_devmem_lock);
  return m_chunks.size();
}

std::vector<PhysRange> DmirrorDevice::chunk_ranges() const {
  DmirrorLockGuard g(m_devmem_lock);
  std::vector<PhysRange> out;
  for (const auto& c : m_chunks) out.push_back(c->ranges[0]);
  return out;
}

uint64_t DmirrorDevice::calloc() const {
  DmirrorLockGuard g(m_lock);
  return m_calloc;
}

uint64_t DmirrorDevice::cfree() const {
  DmirrorLockGuard g(m_lock);
  return m_cfree;
}

uint64_t DmirrorDevice::nr_free_pages() const {
  DmirrorLockGuard g(m_lock);
  uint64_t n = 0;
  const Machine& m = m_driver.machine();
  for (uint64_t a = m_free_head; a != 0; ++n) a = m.pfn_to_page(pfn_of_descriptor(a))->lru_prev;
  return n;
}

// A struct page's kernel address back to its pfn: page_addr(pfn) = page_addr(0) + pfn * 64 modulo
// 2^64 (arm64 descriptors may wrap, seed 003), and a pfn has fewer than 58 bits.
Pfn DmirrorDevice::pfn_of_descriptor(uint64_t kaddr) const {
  const uint64_t base = m_driver.machine().vmemmap().page_addr(Pfn(0)).value();
  return Pfn((kaddr - base) / STRUCT_PAGE_SIZE);
}

void DmirrorDevice::push_free_locked(Pfn pfn, Page& page) {
  page.lru_prev = m_free_head;  // page->zone_device_data = mdevice->free_pages
  m_free_head = m_driver.machine().vmemmap().page_addr(pfn).value();
}

std::optional<Pfn> DmirrorDevice::pop_free_locked() {
  if (m_free_head == 0) return std::nullopt;
  const Pfn pfn = pfn_of_descriptor(m_free_head);
  Page* page = m_driver.machine().pfn_to_page(pfn);
  m_free_head = page->lru_prev;
  // 6.1 stores the page's system "backing" page here next; the model has none.
  page->lru_prev = 0;
  return pfn;
}

Result<std::optional<Pfn>> DmirrorDevice::allocate_chunk(bool take) {
  Machine& m = m_driver.machine();
  auto pgmap = std::make_unique<DevPagemap>();
  PhysRange range{};
  switch (m_type) {
    case MemoryType::DevicePrivate: {
      auto region = m.request_free_mem_region(DEVMEM_CHUNK_SIZE, "hmm_dmirror");
      // dmirror_allocate_chunk() returns its initial -ENOMEM for any failure here.
      if (!region) return fail(Errno::NoMem, fmt::format("{}: {}", m_name, region.error().message));
      range = *region;
      break;
    }
    case MemoryType::DeviceCoherent: {
      // The kernel's choice, with minor = id: device 2 gets spm_addr_dev1, device 3 spm_addr_dev0.
      const uint64_t start = (m_id - 2) ? m_driver.m_params.spm_addr_dev0 : m_driver.m_params.spm_addr_dev1;
      if (start > ~uint64_t{0} - (DEVMEM_CHUNK_SIZE - 1))
        return fail(Errno::Inval, fmt::format("{}: spm address {:#x} wraps", m_name, start));
      range = PhysRange{PhysAddr(start), PhysAddr(start + DEVMEM_CHUNK_SIZE - 1)};
      break;
    }
    default:
      return fail(Errno::Inval, fmt::format("{}: unsupported zone device type", m_name));
  }
  pgmap->type = m_type;
  pgmap->ranges = {range};
  pgmap->ops = &m_driver.m_ops;
  pgmap->owner = this;

  DmirrorLockGuard g(m_devmem_lock);
  // numa_node_id(): the model's CPUs sit on the first online node, which nid -1 selects.
  if (auto r = m.memremap_pages(*pgmap, -1); !r) {
    if (m_type == MemoryType::DevicePrivate) (void)m.release_mem_region(range);
    return tl::unexpected(r.error());
  }
  const Pfn pfn_first = m.arch().phys_to_pfn(range.start);
  const Pfn pfn_last = pfn_first + NrPages(range.size() >> m.arch().page_shift);
  m_chunks.push_back(std::move(pgmap));
  const uint64_t count = m_chunks.size();
  const uint64_t chunk_mb = DEVMEM_CHUNK_SIZE / kMiB;
  m.log().log(LogLevel::Info, "added new {} MB chunk (total {} chunks, {} MB) PFNs [{:#x} {:#x})", chunk_mb, count,
              count * chunk_mb, pfn_first.value(), pfn_last.value());

  DmirrorLockGuard l(m_lock);
  for (Pfn pfn = pfn_first; pfn < pfn_last; ++pfn) push_free_locked(pfn, *m.pfn_to_page(pfn));
  if (!take) return std::optional<Pfn>{};
  const std::optional<Pfn> got = pop_free_locked();
  ++m_calloc;
  return got;
}

void DmirrorDevice::page_free(Pfn pfn, Page& page) {
  DmirrorLockGuard l(m_lock);
  const DevPagemap* pgmap = page_pgmap(page);
  if (std::find(m_removing.begin(), m_removing.end(), pgmap) != m_removing.end()) return;
  ++m_cfree;
  push_free_locked(pfn, page);
}

void DmirrorDevice::remove_chunks() {
  Machine& m = m_driver.machine();
  DmirrorLockGuard g(m_devmem_lock);
  for (const auto& chunk : m_chunks) {
    const Pfn first = m.arch().phys_to_pfn(chunk->ranges[0].start);
    const PfnRange pfns{first, NrPages(chunk->ranges[0].size() >> m.arch().page_shift)};
    {
      // dmirror_remove_free_pages(): the chunk's free pages leave the list (6.1's loop only
      // rewrites the head; the model unlinks each of them).
      DmirrorLockGuard l(m_lock);
      m_removing.push_back(chunk.get());
      std::vector<Pfn> kept;
      for (uint64_t a = m_free_head; a != 0;) {
        const Pfn pfn = pfn_of_descriptor(a);
        a = m.pfn_to_page(pfn)->lru_prev;
        if (!pfns.contains(pfn)) kept.push_back(pfn);
      }
      m_free_head = 0;
      for (auto it = kept.rbegin(); it != kept.rend(); ++it) push_free_locked(*it, *m.pfn_to_page(*it));
    }
    // Waits, without m_lock, until every page of the chunk still handed out has been put.
    m.memunmap_pages(*chunk);
    if (m_type == MemoryType::DevicePrivate) (void)m.release_mem_region(chunk->ranges[0]);
    DmirrorLockGuard l(m_lock);
    m_removing.erase(std::find(m_removing.begin(), m_removing.end(), chunk.get()));
  }
  m_chunks.clear();
  DmirrorLockGuard l(m_lock);
  m_free_head = 0;
}

void DmirrorDevice::check_invariants(const Machine& m, InvariantReport& report) const {
  DmirrorLockGuard g(m_devmem_lock);
  DmirrorLockGuard l(m_lock);
  const uint64_t pages_per_chunk = DEVMEM_CHUNK_SIZE >> m.arch().page_shift;
  std::vector<PfnRange> live;
  for (const auto& c : m_chunks) {
    const PhysRange& r = c->ranges[0];
    if (std::find(m_removing.begin(), m_removing.end(), c.get()) == m_removing.end())
      live.push_back(PfnRange{m.arch().phys_to_pfn(r.start), NrPages(pages_per_chunk)});
    if (!c->mapped() || c->type != m_type || c->owner != this)
      report.fail("INV-HMM-3", "{}: chunk {:#x}-{:#x} is {} {} owned by {}", m_name, r.start.value(), r.last.value(),
                  c->mapped() ? "mapped" : "not mapped", memory_type_name(c->type), c->owner);
    if (m_type != MemoryType::DevicePrivate) continue;
    const auto entries = m.iomem().entries();
    const bool found = std::any_of(entries.begin(), entries.end(), [&](const IomemEntry& e) {
      return e.depth == 0 && e.resource.range() == r && e.resource.name == "hmm_dmirror" &&
             e.resource.flags.has(IORESOURCE_BUSY);
    });
    if (!found)
      report.fail("INV-HMM-3", "{}: chunk {:#x}-{:#x} has no busy top-level hmm_dmirror region", m_name,
                  r.start.value(), r.last.value());
  }

  const uint64_t total = pages_per_chunk * m_chunks.size();
  uint64_t free = 0;
  for (uint64_t a = m_free_head; a != 0; ++free) {
    if (free > total) {
      report.fail("INV-HMM-1", "{}: free list longer than its {} pages (a cycle)", m_name, total);
      return;
    }
    const Pfn pfn = pfn_of_descriptor(a);
    const bool in_live = std::any_of(live.begin(), live.end(), [&](const PfnRange& p) { return p.contains(pfn); });
    auto page = in_live ? m.vmemmap().read_page(pfn) : Result<Page>(fail(Errno::NxIO));
    if (!page) {
      report.fail("INV-HMM-1", "{}: free-list entry {:#x} (pfn {:#x}) is not a page of a live chunk", m_name, a,
                  pfn.value());
      return;
    }
    if (page->refcount != 0)
      report.fail("INV-HMM-1", "{}: free pfn {:#x} has refcount {}", m_name, pfn.value(), page->refcount);
    a = page->lru_prev;
  }
  if (!m_removing.empty()) return;
  uint64_t handed_out = 0;
  for (const PfnRange& p : live)
    for (Pfn pfn = p.start; pfn < p.end(); ++pfn) {
      auto page = m.vmemmap().read_page(pfn);
      if (page && page->refcount > 0) ++handed_out;
    }
  if (free + handed_out != total)
    report.fail("INV-HMM-2", "{}: {} free + {} handed out != {} pages in {} chunks", m_name, free, handed_out, total,
                m_chunks.size());
}

// -------------------------------------------------------------------------------------------------

TestHmm::TestHmm(Machine& machine) : m_machine(machine) {
  // dmirror_devmem_ops: page_free returns the page to its device (the pgmap's owner);
  // migrate_to_ram is required by memremap_pages but never called (the model has no CPU faults).
  m_ops.page_free = [](Pfn pfn, Page& page) {
    const DevPagemap* pgmap = page_pgmap(page);
    SPM_CHECK(pgmap && pgmap->owner, "page_free of a page without its pgmap");
    const_cast<DmirrorDevice*>(static_cast<const DmirrorDevice*>(pgmap->owner))->page_free(pfn, page);
  };
  m_ops.migrate_to_ram = [](Pfn) { return 0; };
}

Result<std::unique_ptr<TestHmm>> TestHmm::load(Machine& machine, TestHmmParams params) {
  // Debian's 6.1 is built without CONFIG_TEST_HMM: modprobe finds no module and the kernel logs nothing.
  if (!machine.kernel_config().test_hmm) return fail(Errno::NoEnt, "Module test_hmm not found");
  std::unique_ptr<TestHmm> d(new TestHmm(machine));
  d->m_params = params;
  std::vector<MemoryType> types = {MemoryType::DevicePrivate, MemoryType::DevicePrivate};
  if (params.spm_addr_dev0 && params.spm_addr_dev1) {
    types.push_back(MemoryType::DeviceCoherent);
    types.push_back(MemoryType::DeviceCoherent);
  }
  for (unsigned id = 0; id < types.size(); ++id) {
    d->m_devices.push_back(std::make_unique<DmirrorDevice>(*d, id, types[id]));
    if (auto r = d->m_devices.back()->allocate_chunk(false); !r) {
      // err_chrdev: the devices set up before this one are removed again.
      for (unsigned j = id; j-- > 0;) d->m_devices[j]->remove_chunks();
      return tl::unexpected(r.error());
    }
  }
  machine.log().log(LogLevel::Info, "HMM test module loaded. This is only for testing HMM.");
  d->m_loaded = true;
  return d;
}

TestHmm::~TestHmm() { unload(); }

void TestHmm::unload() {
  if (!m_loaded) return;
  for (auto& dev : m_devices) dev->remove_chunks();
  m_loaded = false;
}

Result<Pfn> TestHmm::alloc_page(unsigned device_id) {
  if (!m_loaded || device_id >= m_devices.size())
    return fail(Errno::NoDev, fmt::format("no hmm_dmirror{}", device_id));
  DmirrorDevice& dev = *m_devices[device_id];
  std::optional<Pfn> pfn;
  {
    DmirrorLockGuard l(dev.m_lock);
    pfn = dev.pop_free_locked();
    if (pfn) ++dev.m_calloc;
  }
  if (!pfn) {
    SPM_TRY_ASSIGN(pfn, dev.allocate_chunk(true));
  }
  SPM_CHECK(pfn.has_value(), "a new chunk always has a page to take");
  // zone_device_page_init(): a popped page is free (INV-HMM-1) and its chunk live, so this fails
  // only if a caller races alloc_page with unload; the page then goes back on the list.
  if (auto r = m_machine.zone_device_page_init(*pfn); !r) {
    DmirrorLockGuard l(dev.m_lock);
    --dev.m_calloc;
    dev.push_free_locked(*pfn, *m_machine.pfn_to_page(*pfn));
    return tl::unexpected(r.error());
  }
  return *pfn;
}

Result<void> TestHmm::allocate_chunk(unsigned device_id) {
  if (!m_loaded || device_id >= m_devices.size())
    return fail(Errno::NoDev, fmt::format("no hmm_dmirror{}", device_id));
  SPM_TRY(m_devices[device_id]->allocate_chunk(false));
  return {};
}

void TestHmm::check_invariants(InvariantReport& report) const {
  for (const auto& dev : m_devices) dev->check_invariants(m_machine, report);
}

}  // namespace sparsemem
