// /proc/kpageflags and /proc/kpagecount (fs/proc/page.c, spec §6.4, §12.2) as pure functions of a
// Machine. Readers: call between operations or under a guard that keeps the memmap (see machine.h).
#pragma once

#include <cstdint>
#include <vector>

#include "sparsemem/machine.h"
#include "sparsemem/page.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

// KPF_* bit numbers (include/uapi/linux/kernel-page-flags.h and the kernel-internal ones above 31).
enum class KPF : uint8_t {
  Locked = 0, Error = 1, Referenced = 2, Uptodate = 3, Dirty = 4, Lru = 5, Active = 6, Slab = 7,
  Writeback = 8, Reclaim = 9, Buddy = 10, Mmap = 11, Anon = 12, Swapcache = 13, Swapbacked = 14,
  CompoundHead = 15, CompoundTail = 16, Huge = 17, Unevictable = 18, Hwpoison = 19, Nopage = 20, Ksm = 21,
  Thp = 22, Offline = 23, ZeroPage = 24, Idle = 25, Pgtable = 26,
  Reserved = 32, Mlocked = 33, Mappedtodisk = 34, Private = 35, Private2 = 36, OwnerPrivate = 37, Arch = 38,
  Uncached = 39, Softdirty = 40, Arch2 = 41,
};
constexpr uint64_t kpf_bit(KPF f) { return uint64_t{1} << static_cast<unsigned>(f); }
inline constexpr uint64_t KPF_NOPAGE_VALUE = kpf_bit(KPF::Nopage);  // 0x100000

// stable_page_flags() of one readable descriptor. `in_free_block` says whether a page with refcount 0
// lies in a free buddy block (is_free_buddy_page), which the descriptor alone cannot tell.
uint64_t stable_page_flags(const Page& page, bool in_free_block);

// The /proc/kpageflags entry of pfn: KPF_NOPAGE unless pfn_to_online_page(pfn) finds a page, else
// that page's stable flags. Return: -EFAULT with the oops text when the descriptor of an online pfn
// is not mapped (only under seed 004's legacy behaviour).
// Worked values (trace b3): a memmap_on_memory vmemmap pfn of an online block reads
// RESERVED|OWNER_PRIVATE = 0x2100000000; a free page BUDDY = 0x400; an offline block NOPAGE.
Result<uint64_t> kpageflags(const Machine& machine, Pfn pfn);
// The /proc/kpagecount entry: 0 without an online page or for slab and typed (buddy, offline,
// table) pages, else page_mapcount().
Result<uint64_t> kpagecount(const Machine& machine, Pfn pfn);

// max_dump_pfn: round_up(max_pfn, PAGES_PER_SECTION). Entries at or beyond it read as EOF.
Pfn max_dump_pfn(const Machine& machine);

// read(2) of /proc/kpageflags (or kpagecount) at byte `offset` for `count` bytes: -EINVAL unless
// both are multiples of 8; an empty vector at or beyond max_dump_pfn (EOF); a read straddling it is
// truncated; -EFAULT as kpageflags().
enum class KpageFile : uint8_t { Flags, Count };
Result<std::vector<uint64_t>> read_kpage_file(const Machine& machine, KpageFile file, uint64_t offset, uint64_t count);

}  // namespace sparsemem
