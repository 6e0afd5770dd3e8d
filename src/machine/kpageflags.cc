// /proc/kpageflags and /proc/kpagecount: stable_page_flags(), the pfn_to_online_page() gate and the
// max_dump_pfn EOF rule of fs/proc/page.c (spec §6.4). Pure reads through the checked descriptor path.
#include "sparsemem/kpageflags.h"

namespace sparsemem {

namespace {
// The PG_ bits /proc/kpageflags copies unchanged.
constexpr std::pair<PG, KPF> kCopied[] = {
    {PG::locked, KPF::Locked},         {PG::slab, KPF::Slab},
    {PG::error, KPF::Error},           {PG::dirty, KPF::Dirty},
    {PG::uptodate, KPF::Uptodate},     {PG::writeback, KPF::Writeback},
    {PG::lru, KPF::Lru},               {PG::referenced, KPF::Referenced},
    {PG::active, KPF::Active},         {PG::reclaim, KPF::Reclaim},
    {PG::swapbacked, KPF::Swapbacked}, {PG::unevictable, KPF::Unevictable},
    {PG::mlocked, KPF::Mlocked},       {PG::hwpoison, KPF::Hwpoison},
    {PG::reserved, KPF::Reserved},     {PG::mappedtodisk, KPF::Mappedtodisk},
    {PG::private_, KPF::Private},      {PG::private_2, KPF::Private2},
    {PG::owner_priv_1, KPF::OwnerPrivate}, {PG::arch_1, KPF::Arch},
};

bool is_typed(const Page& p) { return p.has_type(PG_buddy) || p.has_type(PG_offline) || p.has_type(PG_table); }

// is_free_buddy_page(): a PG_buddy head at pfn aligned down to some order whose free block covers pfn.
Result<bool> in_free_block(const Machine& m, Pfn pfn) {
  for (unsigned order = 0; order < m.arch().max_order; ++order) {
    const Pfn head(pfn.value() & ~((uint64_t{1} << order) - 1));
    SPM_TRY_ASSIGN(const Page h, m.vmemmap().read_page(head));
    if (h.is_buddy() && h.private_ >= order) return true;
  }
  return false;
}
}  // namespace

uint64_t stable_page_flags(const Page& page, bool free_block) {
  uint64_t u = 0;
  // page_mapped(): a mapcount >= 0 on an untyped page (typed pages keep their type there).
  if (!is_typed(page) && page.mapcount >= 0 && !page.test(PG::slab)) u |= kpf_bit(KPF::Mmap);
  if (page.mapping & 1) u |= kpf_bit(KPF::Anon);  // PAGE_MAPPING_ANON
  if (page.test(PG::head)) u |= kpf_bit(KPF::CompoundHead);
  if (page.is_tail()) u |= kpf_bit(KPF::CompoundTail);
  if (page.is_buddy() || (page.refcount == 0 && free_block)) u |= kpf_bit(KPF::Buddy);
  if (page.has_type(PG_offline)) u |= kpf_bit(KPF::Offline);
  if (page.has_type(PG_table)) u |= kpf_bit(KPF::Pgtable);
  for (const auto& [pg, kpf] : kCopied)
    if (page.test(pg)) u |= kpf_bit(kpf);
  return u;
}

Result<uint64_t> kpageflags(const Machine& m, Pfn pfn) {
  if (!m.pfn_is_online(pfn)) return KPF_NOPAGE_VALUE;
  SPM_TRY_ASSIGN(const Page page, m.vmemmap().read_page(pfn));
  // page_mapped() -> page_folio() -> compound_head(): a tail's head is dereferenced first, so a
  // garbage compound_head (seed 004: 0xfdfdfdfdfdfdfdfd) oopses the walker here.
  if (page.is_tail()) SPM_TRY(m.vmemmap().read_page_at(page.compound_head - 1));
  bool free_block = false;
  if (page.refcount == 0 && !page.is_buddy()) {
    SPM_TRY_ASSIGN(free_block, in_free_block(m, pfn));
  }
  return stable_page_flags(page, free_block);
}

Result<uint64_t> kpagecount(const Machine& m, Pfn pfn) {
  if (!m.pfn_is_online(pfn)) return uint64_t{0};
  SPM_TRY_ASSIGN(const Page page, m.vmemmap().read_page(pfn));
  if (page.test(PG::slab) || is_typed(page)) return uint64_t{0};
  const int mapcount = page.mapcount + 1;
  return static_cast<uint64_t>(mapcount < 0 ? 0 : mapcount);
}

Pfn max_dump_pfn(const Machine& m) {
  const uint64_t pps = m.arch().pages_per_section().value();
  return Pfn((m.max_pfn().value() + pps - 1) & ~(pps - 1));
}

Result<std::vector<uint64_t>> read_kpage_file(const Machine& m, KpageFile file, uint64_t offset, uint64_t count) {
  if (offset % 8 || count % 8) return fail(Errno::Inval, "kpage* reads must be 8-byte aligned");
  const uint64_t end_pfn = max_dump_pfn(m).value();
  std::vector<uint64_t> out;
  const uint64_t first = offset / 8;
  if (first >= end_pfn) return out;
  const uint64_t n = std::min(count / 8, end_pfn - first);
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    const Pfn pfn(first + i);
    SPM_TRY_ASSIGN(const uint64_t v, file == KpageFile::Flags ? kpageflags(m, pfn) : kpagecount(m, pfn));
    out.push_back(v);
  }
  return out;
}

}  // namespace sparsemem
