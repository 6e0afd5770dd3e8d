// Page: the 64-byte page descriptor (struct page) that lives in the vmemmap window, its flag
// layout and the initialisation routines of Linux 6.1. Writers hold the hotplug lock or own the
// range being initialised; readers go through the checked paths in memmap.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "sparsemem/units.h"

namespace sparsemem {

// Zone indices as 6.1 numbers them on x86-64 and arm64 (spec §1.1): 3 zone bits in page->flags.
enum class ZoneType : uint8_t { DMA = 0, DMA32 = 1, Normal = 2, Movable = 3, Device = 4 };
inline constexpr unsigned MAX_NR_ZONES = 5;
const char* zone_name(ZoneType z);  // "DMA", "DMA32", "Normal", "Movable", "Device"

// Page flag bit numbers (include/linux/page-flags.h, 6.1, x86-64/arm64 without UNCACHED).
enum class PG : uint8_t {
  locked = 0, referenced = 1, uptodate = 2, dirty = 3, lru = 4, active = 5, workingset = 6, waiters = 7,
  error = 8, slab = 9, owner_priv_1 = 10, arch_1 = 11, reserved = 12, private_ = 13, private_2 = 14,
  writeback = 15, head = 16, mappedtodisk = 17, reclaim = 18, swapbacked = 19, unevictable = 20,
  mlocked = 21, hwpoison = 22,
  vmemmap_self_hosted = owner_priv_1,  // memmap_on_memory pages alias PG_owner_priv_1
};

// page_type values kept in the _mapcount word (inverted sense, as the kernel does): a typed page
// has PAGE_TYPE_BASE set and its type bit *clear*.
inline constexpr uint32_t PAGE_TYPE_BASE = 0xf0000000u;
inline constexpr uint32_t PG_buddy = 0x00000080u;
inline constexpr uint32_t PG_offline = 0x00000100u;
inline constexpr uint32_t PG_table = 0x00000200u;

// flags word: [63..54] node (NODES_SHIFT 10, Debian) | [53..51] zone | [50..23] unused | [22..0] PG_ bits.
inline constexpr unsigned NODES_SHIFT = 10;
inline constexpr unsigned ZONES_SHIFT = 3;
inline constexpr unsigned NODES_PGSHIFT = 64 - NODES_SHIFT;
inline constexpr unsigned ZONES_PGSHIFT = NODES_PGSHIFT - ZONES_SHIFT;
static_assert((1u << ZONES_SHIFT) >= MAX_NR_ZONES, "zone bits must hold every zone");
static_assert(ZONES_PGSHIFT > static_cast<unsigned>(PG::hwpoison), "flag bits and zone bits must not overlap");

struct DevPagemap;  // devmem layer

// struct page, 64 bytes, trivially copyable so that the vmemmap can hold raw bytes (0xFD, 0xFF,
// device contents) exactly as the kernel's does. Unions are spelled as explicit words.
struct Page {
  uint64_t flags;          // offset 0x00: PG_ bits, zone, node
  uint64_t compound_head;  // offset 0x08: bit0 set => tail page, rest = head's vmemmap address;
                           //              ZONE_DEVICE head/base pages: the DevPagemap* (pgmap)
  uint64_t lru_prev;       // offset 0x10: lru.prev; ZONE_DEVICE: zone_device_data; first tail: order
  uint64_t mapping;        // offset 0x18
  uint64_t index;          // offset 0x20
  uint64_t private_;       // offset 0x28: buddy order while free; the model's content tag otherwise
  int32_t mapcount;        // offset 0x30: _mapcount (-1 = unmapped) / page_type
  int32_t refcount;        // offset 0x34: _refcount
  uint64_t memcg_data;     // offset 0x38

  // -- flag helpers --
  bool test(PG f) const { return (flags >> static_cast<unsigned>(f)) & 1; }
  void set(PG f) { flags |= uint64_t{1} << static_cast<unsigned>(f); }
  void clear(PG f) { flags &= ~(uint64_t{1} << static_cast<unsigned>(f)); }
  ZoneType zone() const { return static_cast<ZoneType>((flags >> ZONES_PGSHIFT) & ((1u << ZONES_SHIFT) - 1)); }
  unsigned nid() const { return static_cast<unsigned>(flags >> NODES_PGSHIFT); }
  void set_zone_nid(ZoneType z, unsigned nid);
  bool is_tail() const { return compound_head & 1; }
  bool has_type(uint32_t type_bit) const {
    const auto t = static_cast<uint32_t>(mapcount);
    return (t & (PAGE_TYPE_BASE | type_bit)) == PAGE_TYPE_BASE;
  }
  void set_type(uint32_t type_bit) { mapcount = static_cast<int32_t>(static_cast<uint32_t>(mapcount) & ~type_bit); }
  void clear_type(uint32_t type_bit) { mapcount = static_cast<int32_t>(static_cast<uint32_t>(mapcount) | type_bit); }
  bool is_buddy() const { return has_type(PG_buddy); }
  // PagePoisoned (DEBUG_VM): every byte of flags 0xFF.
  bool poisoned() const { return flags == ~uint64_t{0}; }
};

static_assert(sizeof(Page) == 64, "struct page is 64 bytes on every in-scope configuration");
static_assert(std::is_trivially_copyable_v<Page> && std::is_standard_layout_v<Page>);
static_assert(offsetof(Page, flags) == 0x00);
static_assert(offsetof(Page, compound_head) == 0x08);
static_assert(offsetof(Page, lru_prev) == 0x10);
static_assert(offsetof(Page, mapping) == 0x18);
static_assert(offsetof(Page, index) == 0x20);
static_assert(offsetof(Page, private_) == 0x28);
static_assert(offsetof(Page, mapcount) == 0x30);
static_assert(offsetof(Page, refcount) == 0x34);
static_assert(offsetof(Page, memcg_data) == 0x38);

// __init_single_page(): zero the descriptor, write zone and node (nid masked to NODES_SHIFT bits,
// as set_page_node does), refcount 1, mapcount -1, lru pointing at itself (so the page is not a
// tail). `self` is the descriptor's own kernel address; the lru list_head sits at offset 0x08,
// so compound_head (lru.next) and lru_prev both read self + 8, bit0 clear.
void init_single_page(Page& p, ZoneType zone, unsigned nid, VmemmapAddr self);
// Boot and hotplug memmap_init_range() for one pfn: single page + PG_reserved (MEMINIT_HOTPLUG,
// init_unavailable_range holes, reserve_bootmem_region).
void init_reserved_page(Page& p, ZoneType zone, unsigned nid, VmemmapAddr self);
// memmap_init_range() over n consecutive descriptors starting at `first` (kernel address
// `first_self`): the same result as init_single_page / init_reserved_page on each, written as
// whole 64-byte stores from a template so it runs at close to memset speed.
void init_page_range(Page* first, uint64_t n, ZoneType zone, unsigned nid, VmemmapAddr first_self, bool reserved);
// init_page_range(reserved) followed by the per-page part of __free_pages_core() (PG_reserved
// cleared, refcount 0) in one pass: the state generic_online_page() leaves each descriptor in
// before the buddy takes the chunk. For an online_pages() whose intermediate state nobody can see.
void init_free_page_range(Page* first, uint64_t n, ZoneType zone, unsigned nid, VmemmapAddr first_self);

}  // namespace sparsemem
