// Vmemmap: the x86-64 and arm64 vmemmap_populate()/vmemmap_free() rules and x86 compound de-duplication of Linux 6.1
// (spec §4.2, §4.14) over the host window of vmemmap_chunks.h. Writers are serialised by the caller; readers lock-free.
#include "sparsemem/memmap.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include <fmt/core.h>

#include "internal/deferred_memmap.h"
#include "internal/vmemmap_chunks.h"

namespace sparsemem {

using vmemmap_detail::Chunk;
using vmemmap_detail::encode;
using vmemmap_detail::Kind;
using vmemmap_detail::kind_of;

const char* origin_name(VmemmapOrigin o) {
  switch (o) {
    case VmemmapOrigin::Boot: return "boot";
    case VmemmapOrigin::Buddy: return "buddy";
    case VmemmapOrigin::Altmap: return "altmap";
    case VmemmapOrigin::Shared: return "shared";
  }
  return "?";
}

const char* map_kind_name(VmemmapMapKind k) {
  switch (k) {
    case VmemmapMapKind::None: return "none";
    case VmemmapMapKind::Base: return "base";
    case VmemmapMapKind::Huge: return "huge";
  }
  return "?";
}

namespace {

// A kernel WARN as the console shows its first line. CPU, PID, source line and symbol offset
// differ per boot and build, so the model prints the part that does not: file and function.
void kernel_warn(KernelLog& log, const char* file, const char* func) {
  log.warn("WARNING: at {} {}", file, func);
}

// One piece of work inside a PMD-aligned block: [seg_start, seg_start + seg_len) of the block
// starting at kernel address `block`. Addresses are modulo 2^64 (seed 003's wrapped ranges).
struct Segment {
  uint64_t block;
  uint64_t seg_start;
  uint64_t seg_len;
};

// Calls f(Segment) for each `unit`-aligned block touched by [start, start + len).
template <class F>
void for_each_block(uint64_t start, uint64_t len, uint64_t unit, F&& f) {
  const uint64_t first = start & ~(unit - 1);
  const uint64_t rel_start = start - first;
  const uint64_t rel_end = rel_start + len;
  for (uint64_t rel = 0; rel < rel_end; rel += unit) {
    const uint64_t s = std::max(rel, rel_start);
    const uint64_t e = std::min(rel + unit, rel_end);
    f(Segment{first + rel, first + s, e - s});
  }
}

// Everything a populate call created, so a failure can take it back (and give altmap pages back).
struct Created {
  Chunk* chunk;
  uint64_t kaddr;  // block or page start
  Kind kind;       // Huge, Base, or Table (a page table this call created)
  uint64_t altmap_pages;
};

struct HostRange {
  std::byte* p;
  uint64_t bytes;
  // Unmapped by replacing the mapping (host_restore) rather than MADV_DONTNEED + PROT_NONE: a
  // MAP_SHARED page of the shared-page file (compound de-duplication), whose file page must not be
  // zapped for its other aliases, or a huge PMD, whose THP hint must go with it so the range merges
  // back into the plain reservation.
  bool replace = false;
};

// A base page whose backing is taken but which is not mapped yet.
struct PendingPage {
  Chunk* chunk;
  uint64_t kaddr;
  VmemmapOrigin origin;
  uint64_t altmap_pages;
};

}  // namespace

struct Vmemmap::Impl {
  Impl(const ArchProfile& a, bool pending)
      : chunks(a.vmemmap_start, a.vmemmap_size, a.page_shift, a.pmd_shift),
        page_shift(a.page_shift),
        pmd_shift(a.pmd_shift),
        pending_host(pending),
        shared_file(a.page_size()) {}

  vmemmap_detail::ChunkTable chunks;
  vmemmap_detail::ReaderGate gate;
  const unsigned page_shift;
  const unsigned pmd_shift;
  // VmemmapConfig::pending_memmaps: compound units are mapped for the model at once and for the host on first access.
  const bool pending_host;
  // Serialises everything that changes the host side of the mapping: populate, depopulate, the
  // checker, and a reader materialising a pending compound PMD (pfn_to_page may run on any thread).
  // Taken after Deferred::mutex when both are held, never before it.
  mutable vmemmap_detail::Mutex host_mutex;

  // Counters readers may load at any time; writers update them beside the state they count.
  std::atomic<uint64_t> base_pages{0};
  std::atomic<uint64_t> huge_pmds{0};
  std::atomic<uint64_t> bytes_by_origin[4] = {};

  // x86 sub-PMD tracking cursor, unused_pmd_start (spec §4.2): the kernel address where the
  // unused tail of the most recently created, partly used huge PMD begins; 0 = none. Writer only.
  uint64_t unused_pmd_start = 0;
  bool warned_misaligned = false;
  bool warned_multi_section = false;
  bool logged_no_pse_altmap = false;

  // Compound de-duplication (spec §4.14) needs one physical page visible at several vmemmap
  // addresses. Such pages live in one memfd, each mapped MAP_SHARED|MAP_FIXED wherever it is
  // used; `at` says which file page backs a vmemmap page, `refs` how many vmemmap pages map it.
  // A file page whose last mapping goes is punched out (memory returned) and reused. Writer only.
  vmemmap_detail::SharedPageFile shared_file;
  std::unordered_map<uint64_t, uint64_t> shared_at;   // vmemmap page kaddr -> file page
  std::unordered_map<uint64_t, uint32_t> shared_refs;  // file page -> mappings
  // Every page the compound path maps is a host mapping of its own (an alias cannot merge with
  // its neighbours). Past vm.max_map_count the host fails mmap and even munmap half-way, which
  // would leave holes in the reservation; the model stops at half the limit instead, with -ENOMEM.
  std::unordered_set<uint64_t> compound_private;  // head vmemmap pages mapped by the compound path
  // Base-page entries marked kHostPending: mapped for the model, one host mapping each once
  // materialised, so they count against the budget from the start.
  std::atomic<uint64_t> pending_pages{0};  // changed under host_mutex; stats() reads it lock-free
  uint64_t compound_budget = vmemmap_detail::host_mapping_budget();
  uint64_t compound_mappings() const {
    return shared_at.size() + compound_private.size() + pending_pages.load(std::memory_order_relaxed);
  }

  uint64_t page_size() const { return uint64_t{1} << page_shift; }
  uint64_t pmd_size() const { return uint64_t{1} << pmd_shift; }
  uint64_t pmd_index(const Chunk& c, uint64_t kaddr) const { return (kaddr - c.kernel_base()) >> pmd_shift; }
  uint64_t page_index(const Chunk& c, uint64_t kaddr) const { return (kaddr - c.kernel_base()) >> page_shift; }
  std::byte* host(const Chunk& c, uint64_t kaddr) const { return c.host() + (kaddr - c.kernel_base()); }

  void account(Kind k, VmemmapOrigin o, bool add) {
    const uint64_t bytes = k == Kind::Huge ? pmd_size() : page_size();
    auto& count = k == Kind::Huge ? huge_pmds : base_pages;
    auto& by_origin = bytes_by_origin[static_cast<unsigned>(o)];
    if (add) {
      count.fetch_add(1, std::memory_order_relaxed);
      by_origin.fetch_add(bytes, std::memory_order_relaxed);
    } else {
      count.fetch_sub(1, std::memory_order_relaxed);
      by_origin.fetch_sub(bytes, std::memory_order_relaxed);
    }
  }

  // Is the vmemmap page holding kernel address kaddr mapped? Lock-free; the acquire loads pair
  // with the release stores that follow host_map().
  bool mapped_at(const Chunk& c, uint64_t kaddr) const {
    const uint8_t pmd = c.pmd(pmd_index(c, kaddr)).load(std::memory_order_acquire);
    if (kind_of(pmd) == Kind::Huge) return true;
    if (kind_of(pmd) != Kind::Table) return false;
    return kind_of(c.page(page_index(c, kaddr)).load(std::memory_order_acquire)) == Kind::Base;
  }

  // The host memory of every host-pending page of PMD `idx` (pending compound mappings, memmap.h):
  // a unit's head gets a private page, its first tail a page of the shared file, and each Shared
  // page the file page of the page below it, as the eager path maps them. Requires host_mutex.
  // The budget was charged when the pages were marked, so the host only refuses on exhaustion.
  void materialize_pmd(Chunk& c, uint64_t idx);
  uint64_t file_page_below(uint64_t kaddr);
  // materialize_pmd() of the PMD holding kaddr (in chunk c) when the page there is host-pending.
  // Thread-safe.
  void ensure_host(Chunk& c, uint64_t kaddr);

  class Writer;
};

void Vmemmap::Impl::ensure_host(Chunk& c, uint64_t kaddr) {
  const uint64_t idx = pmd_index(c, kaddr);
  if (kind_of(c.pmd(idx).load(std::memory_order_acquire)) != Kind::Table) return;
  auto& entry = c.page(page_index(c, kaddr));
  if (!vmemmap_detail::host_pending(entry.load(std::memory_order_acquire))) return;
  vmemmap_detail::MutexLock g(host_mutex);
  if (vmemmap_detail::host_pending(entry.load(std::memory_order_relaxed))) materialize_pmd(c, idx);
}

uint64_t Vmemmap::Impl::file_page_below(uint64_t kaddr) {
  // Pages are materialised in address order within a PMD, so the nearest mapped page below, or
  // else the pending first tail the Shared pages in between alias, is in this PMD or an earlier
  // one (a 1 GiB unit's later sections alias its first): only the PMD holding it is materialised.
  for (uint64_t below = kaddr - page_size();; below -= page_size()) {
    if (auto it = shared_at.find(below); it != shared_at.end()) return it->second;
    Chunk* c = chunks.find(below);
    const uint8_t e = c ? c->page(page_index(*c, below)).load(std::memory_order_relaxed) : 0;
    const bool in_table = c && kind_of(c->pmd(pmd_index(*c, below)).load(std::memory_order_relaxed)) == Kind::Table;
    SPM_CHECK(in_table && vmemmap_detail::host_pending(e) &&
                  (vmemmap_detail::origin_of(e) == VmemmapOrigin::Shared || (e & vmemmap_detail::kPendingFile)),
              "a pending Shared vmemmap page without a shared page below it");
    if (e & vmemmap_detail::kPendingFile) {
      materialize_pmd(*c, pmd_index(*c, below));
      return shared_at.at(below);
    }
  }
}

void Vmemmap::Impl::materialize_pmd(Chunk& c, uint64_t idx) {
  using vmemmap_detail::host_pending;
  const uint64_t ppp = c.pages_per_pmd();
  const uint64_t block = c.kernel_base() + (idx << pmd_shift);
  auto done = [&](uint64_t j) {
    auto& entry = c.page(idx * ppp + j);
    const uint8_t e = entry.load(std::memory_order_relaxed);
    entry.store(static_cast<uint8_t>(e & ~(vmemmap_detail::kHostPending | vmemmap_detail::kPendingFile)),
                std::memory_order_release);
    pending_pages.fetch_sub(1, std::memory_order_relaxed);
  };
  for (uint64_t j = 0; j < ppp;) {
    const uint8_t e = c.page(idx * ppp + j).load(std::memory_order_relaxed);
    const uint64_t kaddr = block + (j << page_shift);
    if (!host_pending(e)) {
      ++j;
      continue;
    }
    if (vmemmap_detail::origin_of(e) == VmemmapOrigin::Shared || (e & vmemmap_detail::kPendingFile)) {
      uint64_t page = 0;
      if (vmemmap_detail::origin_of(e) == VmemmapOrigin::Shared) {
        page = file_page_below(kaddr);
      } else {
        auto fresh = shared_file.allocate();
        SPM_CHECK(fresh.has_value(), "the host refused a page of the shared vmemmap file");
        page = *fresh;
      }
      SPM_CHECK(shared_file.map(host(c, kaddr), page).has_value(), "the host refused a pending vmemmap mapping");
      shared_at[kaddr] = page;
      ++shared_refs[page];
      done(j);
      ++j;
      continue;
    }
    // A run of private pages (a unit's head): one host call.
    uint64_t n = 1;
    while (j + n < ppp) {
      const uint8_t next = c.page(idx * ppp + j + n).load(std::memory_order_relaxed);
      if (!host_pending(next) || vmemmap_detail::origin_of(next) == VmemmapOrigin::Shared ||
          (next & vmemmap_detail::kPendingFile))
        break;
      ++n;
    }
    SPM_CHECK(vmemmap_detail::host_map(host(c, kaddr), n << page_shift).has_value(),
              "the host refused a pending vmemmap mapping");
    for (uint64_t k = 0; k < n; ++k) {
      compound_private.insert(kaddr + (k << page_shift));
      done(j + k);
    }
    j += n;
  }
}

// The writer side of one populate or depopulate call, kept out of the public header.
class Vmemmap::Impl::Writer {
 public:
  Writer(Vmemmap::Impl& m, const ArchProfile& arch, const VmemmapConfig& config, KernelLog& log)
      : m(m), arch(arch), config(config), log(log) {}

  Result<void> populate(uint64_t start, uint64_t len, VmemAltmap* altmap, VmemmapOrigin ram_origin) {
    m_ram_origin = ram_origin;
    Result<void> r = arch.family == ArchFamily::X86_64 ? populate_x86(start, len, altmap)
                                                       : populate_arm64(start, len, altmap);
    if (!r) rollback(altmap);
    return r;
  }

  // Clears the mapping state of [start, start+len) and queues the host ranges that go; the caller
  // unmaps them with unmap_after_grace() once every range of the call is done.
  void depopulate(uint64_t start, uint64_t len, VmemAltmap* altmap) {
    const bool x86 = arch.family == ArchFamily::X86_64;
    for_each_block(start, len, m.pmd_size(), [&](const Segment& s) {
      Chunk* c = m.chunks.find(s.block);
      if (!c) return;
      const uint64_t idx = m.pmd_index(*c, s.block);
      const uint8_t pmd = c->pmd(idx).load(std::memory_order_relaxed);
      if (kind_of(pmd) == Kind::Huge) {
        const bool whole = s.seg_len == m.pmd_size();
        // x86 keeps a partly freed huge PMD until all of it reads PAGE_UNUSED (spec §5.15);
        // arm64 has no sub-PMD tracking and frees every block it touches (spec §4.2).
        if (x86 && !whole && !pmd_is_unused(*c, s.seg_start, s.seg_len)) return;
        c->pmd(idx).store(0, std::memory_order_release);
        m.account(Kind::Huge, vmemmap_detail::origin_of(pmd), false);
        m_unmaps.push_back({m.host(*c, s.block), m.pmd_size(), true});
        if (altmap) altmap->free_pages(NrPages(m.pmd_size() >> m.page_shift));
        return;
      }
      if (kind_of(pmd) != Kind::Table) return;
      // Base pages: every page the range touches goes, even when only part of it is inside
      // (x86 remove_pte_table and arm64 unmap_hotplug_range alike), so freeing one 16K/64K
      // subsection unmaps a page its neighbours still use (spec §9.13).
      for_each_block(s.seg_start, s.seg_len, m.page_size(), [&](const Segment& p) {
        auto& entry = c->page(m.page_index(*c, p.block));
        const uint8_t e = entry.load(std::memory_order_relaxed);
        if (kind_of(e) != Kind::Base) return;
        entry.store(0, std::memory_order_release);
        --c->table_count(idx);
        m.account(Kind::Base, vmemmap_detail::origin_of(e), false);
        if (vmemmap_detail::host_pending(e))
          m.pending_pages.fetch_sub(1, std::memory_order_relaxed);  // nothing on the host to take back
        else
          m_unmaps.push_back(release_base(*c, p.block));
        // x86 maps base pages from RAM only (the altmap is ignored or refused), and its PTE
        // teardown never returns pages to an altmap; arm64 does (free_hotplug_page_range).
        if (altmap && !x86) altmap->free_pages(NrPages(1));
      });
      // Empty page tables are freed: always on x86; on arm64 free_empty_tables() is bounded by
      // [VMEMMAP_START, VMEMMAP_END), so an out-of-window table stays behind, empty.
      if (c->table_count(idx) == 0 && (x86 || m.chunks.in_window(s.block)))
        c->pmd(idx).store(0, std::memory_order_release);
    });
  }

  // Unmaps what depopulate() queued, after one wait for read_page callers.
  void finish_depopulate() {
    unmap_after_grace(m_unmaps);
    m_unmaps.clear();
  }

 private:
  Result<Chunk*> chunk_for(uint64_t kaddr) { return m.chunks.get_or_reserve(kaddr); }

  void unmap_after_grace(const std::vector<HostRange>& unmaps) {
    if (unmaps.empty()) return;
    // Every read_page that might have seen the old state leaves before the memory goes.
    m.gate.synchronize();
    // Ranges come in address order within a chunk; adjacent ones of one kind go in one call.
    auto unmap = [](const HostRange& r) {
      if (r.replace)
        vmemmap_detail::host_restore(r.p, r.bytes);
      else
        vmemmap_detail::host_unmap(r.p, r.bytes);
    };
    HostRange cur = unmaps.front();
    for (size_t i = 1; i < unmaps.size(); ++i) {
      if (cur.p + cur.bytes == unmaps[i].p && cur.replace == unmaps[i].replace) {
        cur.bytes += unmaps[i].bytes;
        continue;
      }
      unmap(cur);
      cur = unmaps[i];
    }
    unmap(cur);
    // Only now is no vmemmap page left mapping these file pages: give their memory back.
    for (uint64_t page : m_released_file_pages) m.shared_file.release(page);
    m_released_file_pages.clear();
  }

  // The host side of clearing one base-page entry: what to unmap, and for a page of the shared
  // file one mapping fewer of its file page (released after the grace period when it was the last).
  HostRange release_base(const Chunk& c, uint64_t kaddr) {
    m.compound_private.erase(kaddr);
    auto it = m.shared_at.find(kaddr);
    if (it == m.shared_at.end()) return {m.host(c, kaddr), m.page_size(), false};
    const uint64_t page = it->second;
    m.shared_at.erase(it);
    if (--m.shared_refs[page] == 0) {
      m.shared_refs.erase(page);
      m_released_file_pages.push_back(page);
    }
    return {m.host(c, kaddr), m.page_size(), true};
  }

  // Backing for `pages` vmemmap pages: the altmap when given (exhaustion is -ENOMEM), else RAM.
  Result<VmemmapOrigin> take_backing(VmemAltmap* altmap, uint64_t pages) {
    if (!altmap) return m_ram_origin;
    SPM_TRY(altmap->alloc_pages(NrPages(pages)));
    return VmemmapOrigin::Altmap;
  }

  Result<void> map_huge(Chunk& c, uint64_t block, VmemmapOrigin origin, VmemAltmap* altmap) {
    const uint64_t altmap_pages = origin == VmemmapOrigin::Altmap ? m.pmd_size() >> m.page_shift : 0;
    // A PMD's memmap is written whole when it is written at all (a pending section is
    // materialised whole, and on x86 one section's memmap is one PMD), so host huge pages cost no
    // memory the model would not touch anyway and turn 512 first-touch faults per 2 MiB into one.
    auto r = vmemmap_detail::host_map_huge(m.host(c, block), m.pmd_size());
    if (!r) {
      if (altmap_pages) altmap->free_pages(NrPages(altmap_pages));
      return r;
    }
    c.pmd(m.pmd_index(c, block)).store(encode(Kind::Huge, origin), std::memory_order_release);
    m.account(Kind::Huge, origin, true);
    m_created.push_back({&c, block, Kind::Huge, altmap_pages});
    return {};
  }

  // vmemmap_populate_basepages(): one vmemmap page at a time; existing mappings are kept.
  // Consecutive new pages are mapped with one mprotect (a section without PSE is 512 pages).
  Result<void> populate_basepages(uint64_t start, uint64_t len, VmemAltmap* altmap) {
    Result<void> result;
    std::vector<PendingPage> run;
    for_each_block(start, len, m.page_size(), [&](const Segment& s) {
      if (!result) return;
      auto c = chunk_for(s.block);
      if (!c) {
        result = tl::unexpected(c.error());
        return;
      }
      Chunk& chunk = **c;
      auto& pmd = chunk.pmd(m.pmd_index(chunk, s.block));
      const Kind pk = kind_of(pmd.load(std::memory_order_relaxed));
      // A base-page request inside an existing huge PMD keeps the huge mapping: the descriptors
      // are already mapped (x86 reaches this for a subsection re-added after a partial free).
      if (pk == Kind::Huge) return;
      if (pk == Kind::None) {
        pmd.store(encode(Kind::Table, VmemmapOrigin::Boot), std::memory_order_release);
        m_created.push_back({&chunk, s.block & ~(m.pmd_size() - 1), Kind::Table, 0});
      }
      if (kind_of(chunk.page(m.page_index(chunk, s.block)).load(std::memory_order_relaxed)) == Kind::Base) return;
      if (!run.empty() && (run.back().chunk != &chunk || run.back().kaddr + m.page_size() != s.block)) {
        result = flush_run(run, altmap);
        if (!result) return;
      }
      auto origin = take_backing(altmap, 1);
      if (!origin) {
        result = tl::unexpected(origin.error());
        return;
      }
      run.push_back({&chunk, s.block, *origin, *origin == VmemmapOrigin::Altmap ? uint64_t{1} : 0});
    });
    if (result) return flush_run(run, altmap);
    // Pages taken for the unmapped run go back; what was published is undone by rollback().
    for (const PendingPage& p : run)
      if (p.altmap_pages) altmap->free_pages(NrPages(p.altmap_pages));
    return result;
  }

  // Maps a run of host-contiguous pages, then publishes their state (readers see the state only
  // once the memory is accessible).
  Result<void> flush_run(std::vector<PendingPage>& run, VmemAltmap* altmap) {
    if (run.empty()) return {};
    const PendingPage& first = run.front();
    auto r = vmemmap_detail::host_map(m.host(*first.chunk, first.kaddr), run.size() * m.page_size());
    if (!r) {
      for (const PendingPage& p : run)
        if (p.altmap_pages) altmap->free_pages(NrPages(p.altmap_pages));
      run.clear();
      return r;
    }
    for (const PendingPage& p : run) {
      p.chunk->page(m.page_index(*p.chunk, p.kaddr)).store(encode(Kind::Base, p.origin), std::memory_order_release);
      ++p.chunk->table_count(m.pmd_index(*p.chunk, p.kaddr));
      m.account(Kind::Base, p.origin, true);
      m_created.push_back({p.chunk, p.kaddr, Kind::Base, p.altmap_pages});
    }
    run.clear();
    return {};
  }

  // The page-table slot of one vmemmap page for compound population: the chunk, and whether the
  // page is already mapped (a huge PMD or a base page), in which case it is kept as it is.
  Result<Chunk*> pte_slot(uint64_t kaddr, bool& mapped) {
    SPM_TRY_ASSIGN(Chunk * c, chunk_for(kaddr));
    auto& pmd = c->pmd(m.pmd_index(*c, kaddr));
    const Kind pk = kind_of(pmd.load(std::memory_order_relaxed));
    mapped = pk == Kind::Huge;
    if (pk == Kind::None) {
      pmd.store(encode(Kind::Table, VmemmapOrigin::Boot), std::memory_order_release);
      m_created.push_back({c, kaddr & ~(m.pmd_size() - 1), Kind::Table, 0});
    }
    if (pk == Kind::Table)
      mapped = kind_of(c->page(m.page_index(*c, kaddr)).load(std::memory_order_relaxed)) == Kind::Base;
    return c;
  }

  void publish_base(Chunk& c, uint64_t kaddr, VmemmapOrigin origin, uint8_t pending_bits = 0) {
    c.page(m.page_index(c, kaddr)).store(encode(Kind::Base, origin) | pending_bits, std::memory_order_release);
    if (pending_bits) m.pending_pages.fetch_add(1, std::memory_order_relaxed);
    ++c.table_count(m.pmd_index(c, kaddr));
    m.account(Kind::Base, origin, true);
    m_created.push_back({&c, kaddr, Kind::Base, 0});
  }

  Result<void> check_budget() const {
    if (m.compound_mappings() < m.compound_budget) return {};
    return check_budget_failure();
  }
  Result<void> check_budget_failure() const {
    return fail(Errno::NoMem, fmt::format("vmemmap: de-duplicated memmap needs more than {} host mappings (half of "
                                          "vm.max_map_count)",
                                          m.compound_budget));
  }

  // A fresh private page (the head's vmemmap page of a unit).
  Result<void> map_fresh_page(uint64_t kaddr) {
    bool mapped = false;
    SPM_TRY_ASSIGN(Chunk * c, pte_slot(kaddr, mapped));
    if (mapped) return {};
    SPM_TRY(check_budget());
    SPM_TRY(vmemmap_detail::host_map(m.host(*c, kaddr), m.page_size()));
    m.compound_private.insert(kaddr);
    publish_base(*c, kaddr, VmemmapOrigin::Buddy);
    return {};
  }

  // Maps file page `page` of the shared file at kaddr (origin Buddy for its first mapping, Shared
  // for every further one). An existing mapping is kept.
  Result<void> map_file_page(uint64_t kaddr, uint64_t page, VmemmapOrigin origin) {
    bool mapped = false;
    SPM_TRY_ASSIGN(Chunk * c, pte_slot(kaddr, mapped));
    if (mapped) return {};
    SPM_TRY(check_budget());
    SPM_TRY(m.shared_file.map(m.host(*c, kaddr), page));
    m.shared_at[kaddr] = page;
    ++m.shared_refs[page];
    publish_base(*c, kaddr, origin);
    return {};
  }

  // The file page a tail vmemmap page is backed by, for reuse; -ENOMEM when it is not a page of
  // the shared file (nothing the model could map a second time).
  Result<uint64_t> reusable_page(uint64_t kaddr) const {
    auto it = m.shared_at.find(kaddr);
    if (it == m.shared_at.end())
      return fail(Errno::NoMem, fmt::format("vmemmap: no reusable tail page at {:#x}", kaddr));
    return it->second;
  }


 public:
  // vmemmap_populate_compound_pages() (spec §4.14) for [start, start+len).
  Result<void> populate_compound(uint64_t start, uint64_t len, uint64_t unit_bytes, bool reuse_below) {
    Result<void> r;
    if (m.pending_host && pending_possible(start, len, reuse_below))
      r = compound_pending(start, len, unit_bytes, reuse_below);
    else
      r = reuse_below ? compound_reuse(start, len) : compound_units(start, len, unit_bytes);
    if (!r) rollback(nullptr);
    return r;
  }

 private:
  // Pending compound mappings (memmap.h) keep the eager layout, so they only apply where the eager
  // path would map every page afresh: nothing of the range mapped yet, and for a reused chunk a
  // page below that is (or will be) a page of the shared file.
  bool pending_possible(uint64_t start, uint64_t len, bool reuse_below) const {
    for (uint64_t a = start; a < start + len;) {
      const Chunk* c = m.chunks.find(a);
      const uint64_t pmd_end = (a | (m.pmd_size() - 1)) + 1;
      if (c) {
        const Kind pk = kind_of(c->pmd(m.pmd_index(*c, a)).load(std::memory_order_relaxed));
        if (pk == Kind::Huge) return false;
        if (pk == Kind::Table) {
          const uint64_t to = std::min(pmd_end, start + len);
          for (uint64_t p = a; p < to; p += m.page_size())
            if (c->page(m.page_index(*c, p)).load(std::memory_order_relaxed) != 0) return false;
        }
      }
      a = pmd_end;
    }
    if (!reuse_below) return true;
    const uint64_t below = start - m.page_size();
    const Chunk* c = m.chunks.find(below);
    if (!c || !m.mapped_at(*c, below)) return false;
    const uint8_t pmd = c->pmd(m.pmd_index(*c, below)).load(std::memory_order_relaxed);
    if (kind_of(pmd) != Kind::Table) return false;
    const uint8_t e = c->page(m.page_index(*c, below)).load(std::memory_order_relaxed);
    if (!vmemmap_detail::host_pending(e)) return m.shared_at.count(below) != 0;
    return vmemmap_detail::origin_of(e) == VmemmapOrigin::Shared || (e & vmemmap_detail::kPendingFile);
  }

  // compound_units()/compound_reuse() for the model only: the same pages, origins and budget,
  // each entry marked host-pending; Impl::materialize_pmd maps them on first access.
  Result<void> compound_pending(uint64_t start, uint64_t len, uint64_t unit_bytes, bool reuse_below) {
    const uint64_t pages = len >> m.page_shift;
    if (m.compound_mappings() + pages > m.compound_budget) return check_budget_failure();
    auto mark = [&](uint64_t kaddr, VmemmapOrigin origin, uint8_t extra) -> Result<void> {
      bool mapped = false;
      SPM_TRY_ASSIGN(Chunk * c, pte_slot(kaddr, mapped));
      SPM_CHECK(!mapped, "pending compound mapping over a mapped page");
      publish_base(*c, kaddr, origin, vmemmap_detail::kHostPending | extra);
      return {};
    };
    const uint64_t end = start + len;
    if (reuse_below) {
      for (uint64_t a = start; a < end; a += m.page_size()) SPM_TRY(mark(a, VmemmapOrigin::Shared, 0));
      return {};
    }
    for (uint64_t addr = start; addr < end; addr += unit_bytes) {
      const uint64_t unit_end = std::min(addr + unit_bytes, end);
      SPM_TRY(mark(addr, VmemmapOrigin::Buddy, 0));
      const uint64_t tail = addr + m.page_size();
      if (tail >= unit_end) continue;
      SPM_TRY(mark(tail, VmemmapOrigin::Buddy, vmemmap_detail::kPendingFile));
      for (uint64_t a = tail + m.page_size(); a < unit_end; a += m.page_size())
        SPM_TRY(mark(a, VmemmapOrigin::Shared, 0));
    }
    return {};
  }

  // Every vmemmap page of the chunk maps the page just below it (a later section of a unit).
  Result<void> compound_reuse(uint64_t start, uint64_t len) {
    const uint64_t below = start - m.page_size();
    Chunk* c = m.chunks.find(below);
    if (!c || !m.mapped_at(*c, below))
      return fail(Errno::NoMem, fmt::format("vmemmap: page below {:#x} to reuse is not mapped", start));
    if (kind_of(c->pmd(m.pmd_index(*c, below)).load(std::memory_order_relaxed)) == Kind::Table &&
        vmemmap_detail::host_pending(c->page(m.page_index(*c, below)).load(std::memory_order_relaxed)))
      m.materialize_pmd(*c, m.pmd_index(*c, below));  // its file page is needed now
    SPM_TRY_ASSIGN(const uint64_t page, reusable_page(below));
    for (uint64_t a = start; a < start + len; a += m.page_size()) SPM_TRY(map_file_page(a, page, VmemmapOrigin::Shared));
    return {};
  }

  // Per unit: a fresh head page, a fresh first-tail page, and the first-tail page again for
  // every further vmemmap page of the unit (2 unique pages per unit).
  Result<void> compound_units(uint64_t start, uint64_t len, uint64_t unit_bytes) {
    const uint64_t end = start + len;
    for (uint64_t addr = start; addr < end; addr += unit_bytes) {
      const uint64_t size = std::min(unit_bytes, end - addr);
      SPM_TRY(map_fresh_page(addr));
      const uint64_t tail = addr + m.page_size();
      uint64_t page = 0;
      if (auto existing = m.shared_at.find(tail); existing != m.shared_at.end()) {
        page = existing->second;
      } else {
        bool mapped = false;
        SPM_TRY(pte_slot(tail, mapped));
        if (mapped) {
          // Already mapped by something the model cannot alias (a huge PMD or a private page):
          // the rest of the unit gets its own pages, as populating without de-duplication would.
          for (uint64_t a = tail + m.page_size(); a < addr + size; a += m.page_size()) SPM_TRY(map_fresh_page(a));
          continue;
        }
        SPM_TRY_ASSIGN(page, m.shared_file.allocate());
        if (auto r = map_file_page(tail, page, VmemmapOrigin::Buddy); !r) {
          m.shared_file.release(page);
          return r;
        }
      }
      for (uint64_t a = tail + m.page_size(); a < addr + size; a += m.page_size())
        SPM_TRY(map_file_page(a, page, VmemmapOrigin::Shared));
    }
    return {};
  }

  // x86-64 vmemmap_populate() (spec §4.2).
  Result<void> populate_x86(uint64_t start, uint64_t len, VmemAltmap* altmap) {
    // Less than one section's memmap: base pages from RAM; the altmap is ignored (6.1 passes
    // NULL here whatever the caller gave).
    if (len < arch.section_memmap_bytes()) return populate_basepages(start, len, nullptr);
    if (!config.cpu_has_pse) {
      if (altmap) {
        if (!m.logged_no_pse_altmap) log.log(LogLevel::Err, "vmemmap_populate: no cpu support for altmap allocations");
        m.logged_no_pse_altmap = true;
        return fail(Errno::NoMem, "vmemmap_populate: no cpu support for altmap allocations");
      }
      return populate_basepages(start, len, nullptr);
    }
    Result<void> result;
    for_each_block(start, len, m.pmd_size(), [&](const Segment& s) {
      if (!result) return;
      auto c = chunk_for(s.block);
      if (!c) {
        result = tl::unexpected(c.error());
        return;
      }
      Chunk& chunk = **c;
      const Kind pk = kind_of(chunk.pmd(m.pmd_index(chunk, s.block)).load(std::memory_order_relaxed));
      const uint64_t seg_end = s.seg_start + s.seg_len;
      if (pk == Kind::None) {
        // A 2 MiB block from the altmap, or from RAM (which the model never runs out of, so the
        // kernel's RAM-failure fallback to base pages does not arise). No altmap fallback.
        auto origin = take_backing(altmap, m.pmd_size() >> m.page_shift);
        if (!origin) {
          result = tl::unexpected(origin.error());
          return;
        }
        if (auto r = map_huge(chunk, s.block, *origin, altmap); !r) {
          result = r;
          return;
        }
        if (s.seg_len != m.pmd_size()) use_new_sub_pmd(chunk, s.seg_start, seg_end);
      } else if (pk == Kind::Huge) {
        use_sub_pmd(chunk, s.seg_start, seg_end);
      } else {
        result = populate_basepages(s.seg_start, s.seg_len, nullptr);
      }
    });
    return result;
  }

  // arm64 vmemmap_populate() (spec §4.2).
  Result<void> populate_arm64(uint64_t start, uint64_t len, VmemAltmap* altmap) {
    // 16K/64K pages, or less than a section's memmap: base pages, and these do use the altmap.
    if (!arch.vmemmap_pmd_mappable || len < arch.section_memmap_bytes())
      return populate_basepages(start, len, altmap);
    Result<void> result;
    for_each_block(start, len, m.pmd_size(), [&](const Segment& s) {
      if (!result) return;
      auto c = chunk_for(s.block);
      if (!c) {
        result = tl::unexpected(c.error());
        return;
      }
      Chunk& chunk = **c;
      // An existing block or page table is only verified, never extended (vmemmap_verify).
      if (kind_of(chunk.pmd(m.pmd_index(chunk, s.block)).load(std::memory_order_relaxed)) != Kind::None) return;
      auto origin = take_backing(altmap, m.pmd_size() >> m.page_shift);
      if (!origin) {
        // The block allocation failed: base pages for this PMD, still from the altmap.
        result = populate_basepages(s.seg_start, s.seg_len, altmap);
        return;
      }
      result = map_huge(chunk, s.block, *origin, altmap);
    });
    return result;
  }

  // -- x86 sub-PMD tracking (spec §4.2) --
  void fill_unused(const Chunk& c, uint64_t start, uint64_t end) {
    std::memset(m.host(c, start), PAGE_UNUSED, end - start);
  }
  void flush_unused_pmd() {
    const uint64_t cursor = m.unused_pmd_start;
    m.unused_pmd_start = 0;
    if (!cursor) return;
    // The cursor only ever points into a huge PMD this object created; if that block has since
    // been freed whole there is nothing left to mark.
    const Chunk* c = m.chunks.find(cursor);
    if (!c || kind_of(c->pmd(m.pmd_index(*c, cursor)).load(std::memory_order_relaxed)) != Kind::Huge) return;
    fill_unused(*c, cursor, (cursor & ~(m.pmd_size() - 1)) + m.pmd_size());
  }
  void zero_first_page(const Chunk& c, uint64_t start) { std::memset(m.host(c, start), 0, sizeof(Page)); }
  bool pmd_aligned(uint64_t a) const { return (a & (m.pmd_size() - 1)) == 0; }

  // vmemmap_use_new_sub_pmd(): a fresh huge PMD of which only [start, end) is wanted.
  void use_new_sub_pmd(const Chunk& c, uint64_t start, uint64_t end) {
    flush_unused_pmd();
    zero_first_page(c, start);
    if (!pmd_aligned(start)) fill_unused(c, start & ~(m.pmd_size() - 1), start);
    if (!pmd_aligned(end)) m.unused_pmd_start = end;
  }
  // vmemmap_use_sub_pmd(): [start, end) of an existing huge PMD is wanted again.
  void use_sub_pmd(const Chunk& c, uint64_t start, uint64_t end) {
    if (m.unused_pmd_start == start) {
      m.unused_pmd_start = pmd_aligned(end) ? 0 : end;
      return;
    }
    flush_unused_pmd();
    // Marking the first descriptor used is enough to keep the whole PMD from reading unused.
    zero_first_page(c, start);
  }
  // vmemmap_pmd_is_unused(): mark [start, start+len) unused; is the whole PMD unused now?
  bool pmd_is_unused(const Chunk& c, uint64_t start, uint64_t len) {
    flush_unused_pmd();
    fill_unused(c, start, start + len);
    const auto* p = reinterpret_cast<const uint8_t*>(m.host(c, start & ~(m.pmd_size() - 1)));
    return std::all_of(p, p + m.pmd_size(), [](uint8_t b) { return b == PAGE_UNUSED; });
  }

  // Takes back, newest first, everything this call created.
  void rollback(VmemAltmap* altmap) {
    std::vector<HostRange> unmaps;
    for (auto it = m_created.rbegin(); it != m_created.rend(); ++it) {
      Chunk& c = *it->chunk;
      const uint64_t idx = m.pmd_index(c, it->kaddr);
      if (it->kind == Kind::Huge) {
        m.account(Kind::Huge, vmemmap_detail::origin_of(c.pmd(idx).load(std::memory_order_relaxed)), false);
        c.pmd(idx).store(0, std::memory_order_release);
        unmaps.push_back({m.host(c, it->kaddr), m.pmd_size(), true});
      } else if (it->kind == Kind::Base) {
        auto& entry = c.page(m.page_index(c, it->kaddr));
        const uint8_t e = entry.load(std::memory_order_relaxed);
        m.account(Kind::Base, vmemmap_detail::origin_of(e), false);
        entry.store(0, std::memory_order_release);
        --c.table_count(idx);
        if (vmemmap_detail::host_pending(e))
          m.pending_pages.fetch_sub(1, std::memory_order_relaxed);
        else
          unmaps.push_back(release_base(c, it->kaddr));
      } else if (c.table_count(idx) == 0) {
        c.pmd(idx).store(0, std::memory_order_release);
      }
      if (it->altmap_pages) altmap->free_pages(NrPages(it->altmap_pages));
    }
    m_created.clear();
    unmap_after_grace(unmaps);
  }

  Vmemmap::Impl& m;
  const ArchProfile& arch;
  const VmemmapConfig& config;
  KernelLog& log;
  VmemmapOrigin m_ram_origin = VmemmapOrigin::Buddy;
  std::vector<Created> m_created;
  std::vector<uint64_t> m_released_file_pages;  // file pages whose last mapping is being removed
  std::vector<HostRange> m_unmaps;               // host ranges depopulate() cleared, not yet unmapped
};

Vmemmap::Vmemmap(const ArchProfile& arch, const Behaviour& behaviour, KernelLog& log, VmemmapConfig config)
    : m_arch(arch), m_behaviour(behaviour), m_log(log), m_config(config),
      m_impl(std::make_unique<Impl>(arch, config.pending_memmaps)),
      m_deferred(std::make_unique<Deferred>(arch.nr_mem_sections())) {
  const long host_page = sysconf(_SC_PAGESIZE);
  SPM_CHECK(host_page > 0 && arch.page_size() % static_cast<uint64_t>(host_page) == 0,
            "the model's page size must be a multiple of the host page size");
}

Vmemmap::~Vmemmap() = default;

VmemmapAddr Vmemmap::page_addr(Pfn pfn) const {
  // Unsigned arithmetic modulo 2^64 on purpose: arm64 pfns below memstart or far above the
  // linear map wrap exactly as vmemmap[pfn] does in the kernel (seed 003).
  const uint64_t index = m_arch.vmemmap_from_memstart ? pfn.value() - m_config.memstart_pfn.value() : pfn.value();
  return VmemmapAddr(m_arch.vmemmap_start + index * STRUCT_PAGE_SIZE);
}

bool Vmemmap::in_window(Pfn start, NrPages n) const {
  const uint64_t off = page_addr(start).value() - m_arch.vmemmap_start;
  if (off >= m_arch.vmemmap_size) return false;
  return n.value() <= (m_arch.vmemmap_size - off) / STRUCT_PAGE_SIZE;
}

bool vmemmap_can_optimize(const ArchProfile& arch, const VmemAltmap* altmap, NrPages pages_per_compound) {
  return arch.compound_vmemmap_dedup && !altmap && pages_per_compound.value() <= (UINT64_MAX / STRUCT_PAGE_SIZE) &&
         pages_per_compound.value() * STRUCT_PAGE_SIZE > 2 * arch.page_size();
}

Result<void> Vmemmap::populate(Pfn start, NrPages n, VmemAltmap* altmap, VmemmapOrigin ram_origin,
                               const CompoundMemmap* compound) {
  if (compound && vmemmap_can_optimize(m_arch, altmap, compound->pages_per_compound))
    return populate_compound(start, n, *compound);
  if (ram_origin != VmemmapOrigin::Boot && ram_origin != VmemmapOrigin::Buddy)
    return fail(Errno::Inval,
                fmt::format("vmemmap: RAM-backed memmap cannot have origin '{}'", origin_name(ram_origin)));
  const uint64_t sub = m_arch.pages_per_subsection().value();
  if (start.value() % sub != 0 || n.value() % sub != 0) {
    // __populate_section_memmap(): WARN_ON_ONCE and NULL, which sparse_add_section reports as -ENOMEM.
    if (!m_impl->warned_misaligned) kernel_warn(m_log, "mm/sparse-vmemmap.c", "__populate_section_memmap");
    m_impl->warned_misaligned = true;
    return fail(Errno::NoMem, fmt::format("__populate_section_memmap: pfn {:#x} + {:#x} is not subsection aligned",
                                          start.value(), n.value()));
  }
  if (n.value() == 0) return {};
  if (n.value() > UINT64_MAX / STRUCT_PAGE_SIZE)
    return fail(Errno::Inval, fmt::format("vmemmap: {:#x} pages of memmap overflow the address space", n.value()));
  const uint64_t addr = page_addr(start).value();
  const uint64_t len = n.value() * STRUCT_PAGE_SIZE;
  if (!in_window(start, n)) {
    // Seed 003: the window covers the linear map only. Ard's rule refuses such a range; 6.1
    // (and the placement proposal, which only changes where ranges are put) maps it anyway.
    if (m_behaviour.out_of_window == OutOfWindowRule::HardError)
      return fail(Errno::Range,
                  fmt::format("vmemmap: struct pages of pfn {:#x}-{:#x} at [{:#x}-{:#x}] lie outside the vmemmap "
                              "window [{:#x}-{:#x}]",
                              start.value(), start.value() + n.value() - 1, addr, addr + len - 1,
                              m_arch.vmemmap_start, m_arch.vmemmap_start + m_arch.vmemmap_size - 1));
    if (m_arch.family == ArchFamily::Arm64) kernel_warn(m_log, "arch/arm64/mm/mmu.c", "vmemmap_populate");
  }
  if (m_arch.family == ArchFamily::Arm64 && n > m_arch.pages_per_section()) {
    if (!m_impl->warned_multi_section) kernel_warn(m_log, "arch/arm64/mm/mmu.c", "vmemmap_populate");
    m_impl->warned_multi_section = true;
  }
  vmemmap_detail::MutexLock g(m_impl->host_mutex);
  return Impl::Writer(*m_impl, m_arch, m_config, m_log).populate(addr, len, altmap, ram_origin);
}

Result<void> Vmemmap::populate_compound(Pfn start, NrPages n, const CompoundMemmap& compound) {
  const uint64_t ppc = compound.pages_per_compound.value();
  if (!vmemmap_can_optimize(m_arch, nullptr, compound.pages_per_compound) || (ppc & (ppc - 1)))
    return fail(Errno::Inval, fmt::format("vmemmap: {} has no compound de-duplication for units of {} pages",
                                          m_arch.name, ppc));
  const uint64_t sub = m_arch.pages_per_subsection().value();
  if (start.value() % sub != 0 || n.value() % sub != 0 || n.value() == 0 || start < compound.range_start) {
    if (!m_impl->warned_misaligned) kernel_warn(m_log, "mm/sparse-vmemmap.c", "__populate_section_memmap");
    m_impl->warned_misaligned = true;
    return fail(Errno::NoMem, fmt::format("__populate_section_memmap: pfn {:#x} + {:#x} is not subsection aligned",
                                          start.value(), n.value()));
  }
  if (n.value() > UINT64_MAX / STRUCT_PAGE_SIZE)
    return fail(Errno::Inval, fmt::format("vmemmap: {:#x} pages of memmap overflow the address space", n.value()));
  // reuse_compound_section(): a chunk that starts inside a unit larger than a subsection.
  const uint64_t offset = (start - compound.range_start).value();
  const bool reuse_below = (offset & (ppc - 1)) != 0 && ppc > sub;
  vmemmap_detail::MutexLock g(m_impl->host_mutex);
  return Impl::Writer(*m_impl, m_arch, m_config, m_log)
      .populate_compound(page_addr(start).value(), n.value() * STRUCT_PAGE_SIZE, ppc * STRUCT_PAGE_SIZE, reuse_below);
}

void Vmemmap::depopulate(Pfn start, NrPages n, VmemAltmap* altmap) {
  const FreeRange r{start, n, altmap};
  depopulate(std::span<const FreeRange>(&r, 1));
}

void Vmemmap::depopulate(std::span<const FreeRange> ranges) {
  // Nothing can be mapped for a range whose memmap would not fit in the address space, nor out of
  // window under the hard-error rule.
  auto may_be_mapped = [&](const FreeRange& r) {
    if (r.n.value() == 0 || r.n.value() > UINT64_MAX / STRUCT_PAGE_SIZE) return false;
    return in_window(r.start, r.n) || m_behaviour.out_of_window != OutOfWindowRule::HardError;
  };
  // A pending section must never be written after its memmap is gone (or re-populated for new
  // memory): a wholly unmapped one is forgotten, one unmapped in part written while still mapped.
  for (const FreeRange& r : ranges)
    if (may_be_mapped(r)) forget_pending(r.start, r.n);
  vmemmap_detail::MutexLock g(m_impl->host_mutex);
  Impl::Writer w(*m_impl, m_arch, m_config, m_log);
  for (const FreeRange& r : ranges) {
    if (!may_be_mapped(r)) continue;
    if (!in_window(r.start, r.n) && m_arch.family == ArchFamily::Arm64)
      kernel_warn(m_log, "arch/arm64/mm/mmu.c", "vmemmap_free");
    w.depopulate(page_addr(r.start).value(), r.n.value() * STRUCT_PAGE_SIZE, r.altmap);
  }
  // The state of every range is cleared before any host memory goes, so a range's later pieces
  // never read memory an earlier piece unmapped; one grace period and coalesced unmaps for all.
  w.finish_depopulate();
}

Page* Vmemmap::pfn_to_page(Pfn pfn) const {
  deferred_init_range(pfn, NrPages(1));
  return raw_page(pfn);
}

Page* Vmemmap::raw_page(Pfn pfn) const {
  const uint64_t kaddr = page_addr(pfn).value();
  Chunk* c = m_impl->chunks.find(kaddr);
  if (!c) {
    auto r = m_impl->chunks.get_or_reserve(kaddr);
    SPM_CHECK(r.has_value(), "host address space exhausted reserving a vmemmap chunk");
    c = *r;
  }
  // A pointer is about to be handed out: a pending compound PMD gets its host memory now.
  m_impl->ensure_host(*c, kaddr);
  return reinterpret_cast<Page*>(m_impl->host(*c, kaddr));
}

Pfn Vmemmap::page_to_pfn(const Page* page) const {
  const Chunk* c = m_impl->chunks.find_host(page);
  SPM_CHECK(c != nullptr, "page_to_pfn of a pointer outside this vmemmap");
  const uint64_t kaddr = c->kernel_base() + static_cast<uint64_t>(reinterpret_cast<const std::byte*>(page) - c->host());
  // Inverse of page_addr modulo 2^64: the index is (kaddr - start) / 64 modulo 2^58.
  const uint64_t index = (kaddr - m_arch.vmemmap_start) / STRUCT_PAGE_SIZE;
  const uint64_t base = m_arch.vmemmap_from_memstart ? m_config.memstart_pfn.value() : 0;
  return Pfn((base + index) & ((uint64_t{1} << (64 - STRUCT_PAGE_SHIFT)) - 1));
}

bool Vmemmap::descriptors_mapped(Pfn start, NrPages n) const {
  if (n.value() == 0) return true;
  const uint64_t first = page_addr(start).value();
  const uint64_t last = page_addr(start + NrPages(n.value() - 1)).value() + STRUCT_PAGE_SIZE - 1;
  if (last < first) return false;  // wraps: never one mapped run
  for (uint64_t kaddr = first; kaddr <= last;) {
    const Chunk* c = m_impl->chunks.find(kaddr);
    if (!c || !m_impl->mapped_at(*c, kaddr)) return false;
    const bool huge = kind_of(c->pmd(m_impl->pmd_index(*c, kaddr)).load(std::memory_order_acquire)) == Kind::Huge;
    const uint64_t span = huge ? m_impl->pmd_size() : m_impl->page_size();
    const uint64_t next = (kaddr | (span - 1)) + 1;
    if (next == 0) break;
    kaddr = next;
  }
  return true;
}

bool Vmemmap::descriptor_mapped(Pfn pfn) const {
  const uint64_t kaddr = page_addr(pfn).value();
  const Chunk* c = m_impl->chunks.find(kaddr);
  return c && m_impl->mapped_at(*c, kaddr);
}

namespace {
std::string oops_text(const ArchProfile& arch, uint64_t kaddr) {
  if (arch.family == ArchFamily::Arm64)
    return fmt::format("Unable to handle kernel paging request at virtual address {:016x}", kaddr);
  return fmt::format("BUG: unable to handle page fault for address: {:016x}", kaddr);
}
}  // namespace

Result<Page> Vmemmap::read_page_at(uint64_t kaddr) const {
  // x86: a non-canonical address is a #GP, not a page fault (the seed 004 walker's oops).
  const unsigned top = m_arch.va_bits - 1;
  const uint64_t upper = kaddr >> top;
  if (m_arch.family == ArchFamily::X86_64 && upper != 0 && upper != (~uint64_t{0} >> top))
    return fail(Errno::Fault, fmt::format("general protection fault, probably for non-canonical address {:#x}: 0000 [#1] "
                                          "SMP NOPTI", kaddr));
  const uint64_t base = page_addr(Pfn(0)).value();
  const uint64_t off = kaddr - base;
  if (off % STRUCT_PAGE_SIZE || kaddr < m_arch.vmemmap_start || kaddr - m_arch.vmemmap_start >= m_arch.vmemmap_size)
    return fail(Errno::Fault, oops_text(m_arch, kaddr));
  return read_page(Pfn(off / STRUCT_PAGE_SIZE));
}

Result<Page> Vmemmap::read_page(Pfn pfn) const {
  const uint64_t kaddr = page_addr(pfn).value();
  vmemmap_detail::ReaderGate::Guard guard(m_impl->gate);
  const Chunk* c = m_impl->chunks.find(kaddr);
  if (!c) return fail(Errno::Fault, oops_text(m_arch, kaddr));
  // mapped_at(), keeping the page entry for the host-pending test below.
  const uint8_t pmd = c->pmd(m_impl->pmd_index(*c, kaddr)).load(std::memory_order_acquire);
  const uint8_t entry =
      kind_of(pmd) == Kind::Table ? c->page(m_impl->page_index(*c, kaddr)).load(std::memory_order_acquire) : 0;
  if (kind_of(pmd) != Kind::Huge && kind_of(entry) != Kind::Base) return fail(Errno::Fault, oops_text(m_arch, kaddr));
  // A reader needs the bytes, not their memory: a pending section answers from its run, and a
  // host-pending page holds what fresh memory would (nothing writes one before materialising it).
  if (const std::optional<Page> pending = pending_descriptor(pfn)) return *pending;
  // Loaded again after the section's word: a materialiser clears the page's mark before it writes
  // the section and clears the word, so an entry loaded first could be stale here.
  if (vmemmap_detail::host_pending(entry) &&
      vmemmap_detail::host_pending(c->page(m_impl->page_index(*c, kaddr)).load(std::memory_order_acquire)))
    return Page{};
  // Word-sized relaxed loads: a pfn walker's read races with descriptor writers by design.
  using AliasedWord = uint64_t __attribute__((may_alias));
  const auto* src = reinterpret_cast<const AliasedWord*>(m_impl->host(*c, kaddr));
  uint64_t words[sizeof(Page) / sizeof(uint64_t)];
  for (size_t i = 0; i < std::size(words); ++i) words[i] = __atomic_load_n(src + i, __ATOMIC_RELAXED);
  Page page;
  std::memcpy(static_cast<void*>(&page), words, sizeof(Page));
  return page;
}

Result<Page*> Vmemmap::writable_page(Pfn pfn) {
  const uint64_t kaddr = page_addr(pfn).value();
  deferred_init_range(pfn, NrPages(1));
  Chunk* c = m_impl->chunks.find(kaddr);
  if (!c || !m_impl->mapped_at(*c, kaddr)) return fail(Errno::Fault, oops_text(m_arch, kaddr));
  m_impl->ensure_host(*c, kaddr);
  return reinterpret_cast<Page*>(m_impl->host(*c, kaddr));
}

Result<std::span<Page>> Vmemmap::writable_run(Pfn pfn, uint64_t max_pages) {
  const uint64_t kaddr = page_addr(pfn).value();
  Chunk* c = m_impl->chunks.find(kaddr);
  if (!c || !m_impl->mapped_at(*c, kaddr)) return fail(Errno::Fault, oops_text(m_arch, kaddr));
  // A huge PMD maps its whole 2 MiB at once; a base mapping only its own page.
  const bool huge = kind_of(c->pmd(m_impl->pmd_index(*c, kaddr)).load(std::memory_order_acquire)) == Kind::Huge;
  const uint64_t span = huge ? m_impl->pmd_size() : m_impl->page_size();
  const uint64_t left = (span - (kaddr - c->kernel_base()) % span) / STRUCT_PAGE_SIZE;
  const uint64_t n = std::min(left, max_pages);
  deferred_init_range(pfn, NrPages(n));
  m_impl->ensure_host(*c, kaddr);
  return std::span<Page>(reinterpret_cast<Page*>(m_impl->host(*c, kaddr)), n);
}

VmemmapMapKind Vmemmap::mapping_of(Pfn pfn) const {
  const uint64_t kaddr = page_addr(pfn).value();
  const Chunk* c = m_impl->chunks.find(kaddr);
  if (!c) return VmemmapMapKind::None;
  const Kind k = kind_of(c->pmd(m_impl->pmd_index(*c, kaddr)).load(std::memory_order_acquire));
  if (k == Kind::Huge) return VmemmapMapKind::Huge;
  if (k == Kind::Table &&
      kind_of(c->page(m_impl->page_index(*c, kaddr)).load(std::memory_order_acquire)) == Kind::Base)
    return VmemmapMapKind::Base;
  return VmemmapMapKind::None;
}

VmemmapOrigin Vmemmap::origin_of(Pfn pfn) const {
  const uint64_t kaddr = page_addr(pfn).value();
  const Chunk* c = m_impl->chunks.find(kaddr);
  if (!c) return VmemmapOrigin::Boot;
  const uint8_t pmd = c->pmd(m_impl->pmd_index(*c, kaddr)).load(std::memory_order_acquire);
  if (kind_of(pmd) == Kind::Huge) return vmemmap_detail::origin_of(pmd);
  return vmemmap_detail::origin_of(c->page(m_impl->page_index(*c, kaddr)).load(std::memory_order_acquire));
}

VmemmapStats Vmemmap::stats() const {
  VmemmapStats s;
  s.base_pages = m_impl->base_pages.load(std::memory_order_relaxed);
  s.huge_pmds = m_impl->huge_pmds.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < 4; ++i) s.bytes_by_origin[i] = m_impl->bytes_by_origin[i].load(std::memory_order_relaxed);
  s.reserved_chunks = m_impl->chunks.reserved();
  s.host_pending_pages = m_impl->pending_pages.load(std::memory_order_relaxed);
  return s;
}

const void* Vmemmap::host_address(Pfn pfn) const { return pfn_to_page(pfn); }

void Vmemmap::check_invariants(InvariantReport& report) const {
  const Impl& m = *m_impl;
  vmemmap_detail::MutexLock g(m.host_mutex);
  uint64_t pending_recount = 0;
  vmemmap_detail::HostProbe probe;
  VmemmapStats recount;
  // INV-VMEMMAP-3's samples, probed after the walk: the readable ones in one system call.
  std::vector<std::pair<uint64_t, const void*>> must_read, must_fault;
  const bool huge_possible =
      m_arch.vmemmap_pmd_mappable && (m_arch.family != ArchFamily::X86_64 || m_config.cpu_has_pse);
  for (const Chunk* c : m.chunks.chunks()) {
    const uint64_t ppp = c->pages_per_pmd();
    for (uint64_t i = 0; i < c->nr_pmds(); ++i) {
      const uint64_t block = c->kernel_base() + (i << m.pmd_shift);
      const uint8_t pmd = c->pmd(i).load(std::memory_order_acquire);
      const Kind pk = kind_of(pmd);
      uint64_t mapped = 0, first_mapped = ppp, first_unmapped = ppp;
      bool first_mapped_pending = false;
      // Fast path: a PMD's entries are nearly always all empty (huge or unused) or all one kind of
      // base mapping; memcmp against itself shifted by one tests that without a branch per entry.
      // The checker is a writer, so no entry changes under it.
      static_assert(sizeof(std::atomic<uint8_t>) == 1);
      const auto* entries = reinterpret_cast<const uint8_t*>(&c->page(i * ppp));
      const uint8_t e0 = entries[0];
      const bool uniform = std::memcmp(entries, entries + 1, ppp - 1) == 0;
      const bool fast = uniform && (e0 == 0 || e0 == encode(Kind::Base, vmemmap_detail::origin_of(e0)));
      if (fast && e0 == 0) {
        first_unmapped = 0;
      } else if (fast) {
        mapped = ppp;
        first_mapped = 0;
        recount.bytes_by_origin[static_cast<unsigned>(vmemmap_detail::origin_of(e0))] += ppp * m.page_size();
      }
      for (uint64_t j = 0; j < ppp && !fast; ++j) {
        const uint8_t e = c->page(i * ppp + j).load(std::memory_order_acquire);
        if (kind_of(e) == Kind::Base) {
          ++mapped;
          recount.bytes_by_origin[static_cast<unsigned>(vmemmap_detail::origin_of(e))] += m.page_size();
          if (first_mapped == ppp) first_mapped_pending = vmemmap_detail::host_pending(e);
          first_mapped = std::min(first_mapped, j);
          if (vmemmap_detail::host_pending(e)) {
            ++pending_recount;
            const VmemmapOrigin o = vmemmap_detail::origin_of(e);
            const bool file = (e & vmemmap_detail::kPendingFile) != 0;
            if ((o != VmemmapOrigin::Buddy && o != VmemmapOrigin::Shared) || (file && o != VmemmapOrigin::Buddy))
              report.fail("INV-VMEMMAP-5", "host-pending vmemmap page at {:#x} has state {:#x}",
                          block + (j << m.page_shift), e);
          } else if (e & vmemmap_detail::kPendingFile) {
            report.fail("INV-VMEMMAP-5", "vmemmap page at {:#x} is marked a pending file page but is mapped",
                        block + (j << m.page_shift));
          }
        } else {
          if (e != 0)
            report.fail("INV-VMEMMAP-4", "vmemmap page at {:#x} has state {:#x}", block + (j << m.page_shift), e);
          first_unmapped = std::min(first_unmapped, j);
        }
      }
      recount.base_pages += mapped;
      if (pk == Kind::Huge) {
        ++recount.huge_pmds;
        recount.bytes_by_origin[static_cast<unsigned>(vmemmap_detail::origin_of(pmd))] += m.pmd_size();
        if (!huge_possible)
          report.fail("INV-VMEMMAP-1", "huge vmemmap PMD at {:#x} on a configuration without PMD mappings", block);
        if (mapped)
          report.fail("INV-VMEMMAP-1", "huge vmemmap PMD at {:#x} also holds {} base-page entries", block, mapped);
      } else if (pk == Kind::Table) {
        if (mapped != c->table_count(i))
          report.fail("INV-VMEMMAP-4", "page table at {:#x} counts {} mapped pages, recount {}", block,
                      c->table_count(i), mapped);
      } else if (pk == Kind::None) {
        if (mapped) report.fail("INV-VMEMMAP-4", "{} base pages mapped under the empty PMD at {:#x}", mapped, block);
      } else {
        report.fail("INV-VMEMMAP-4", "vmemmap PMD at {:#x} has state {:#x}", block, pmd);
      }

      // INV-VMEMMAP-3 on samples: both ends of a huge block, the first mapped and first
      // unmapped page of a table, and the first page of an empty block beside a used one.
      auto expect = [&](uint64_t page, bool want) {
        const uint64_t kaddr = block + (page << m.page_shift);
        (want ? must_read : must_fault).push_back({kaddr, m.host(*c, kaddr)});
      };
      if (pk == Kind::Huge) {
        expect(0, true);
        expect(ppp - 1, true);
      } else if (pk == Kind::Table) {
        // A host-pending page has no host memory yet: touching it must fault.
        if (first_mapped < ppp) expect(first_mapped, !first_mapped_pending);
        if (first_unmapped < ppp) expect(first_unmapped, false);
      } else {
        const bool beside_used = (i > 0 && c->pmd(i - 1).load(std::memory_order_acquire) != 0) ||
                                 (i + 1 < c->nr_pmds() && c->pmd(i + 1).load(std::memory_order_acquire) != 0);
        if (beside_used) expect(0, false);
      }
    }
  }
  auto probe_fail = [&](uint64_t kaddr, bool want) {
    report.fail("INV-VMEMMAP-3", "vmemmap page at {:#x} is {} but the table says {}", kaddr,
                want ? "not accessible" : "accessible", want ? "mapped" : "unmapped");
  };
  std::vector<const void*> readable;
  for (const auto& [kaddr, host] : must_read) readable.push_back(host);
  if (!probe.all_readable(readable))  // find which, one by one
    for (const auto& [kaddr, host] : must_read)
      if (!probe.readable(host)) probe_fail(kaddr, true);
  for (const auto& [kaddr, host] : must_fault)
    if (probe.readable(host)) probe_fail(kaddr, false);
  if (const uint64_t counted = m.pending_pages.load(std::memory_order_relaxed); pending_recount != counted)
    report.fail("INV-VMEMMAP-5", "{} vmemmap pages are host-pending, the count says {}", pending_recount, counted);
  const VmemmapStats s = stats();
  if (s.base_pages != recount.base_pages || s.huge_pmds != recount.huge_pmds)
    report.fail("INV-VMEMMAP-2", "stats say {} base pages and {} huge PMDs, the table holds {} and {}", s.base_pages,
                s.huge_pmds, recount.base_pages, recount.huge_pmds);
  for (unsigned o = 0; o < 4; ++o)
    if (s.bytes_by_origin[o] != recount.bytes_by_origin[o])
      report.fail("INV-VMEMMAP-2", "stats say {} bytes from {}, the table holds {}", s.bytes_by_origin[o],
                  origin_name(static_cast<VmemmapOrigin>(o)), recount.bytes_by_origin[o]);
}

}  // namespace sparsemem
