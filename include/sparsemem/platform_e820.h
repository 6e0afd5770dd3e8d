// E820: the x86 firmware memory map as Linux 6.1 keeps it — the table operations of arch/x86/kernel/e820.c
// (add, remove, update, sanitize) and the lines it prints. Pure values and functions; no global table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sparsemem/units.h"

namespace sparsemem {

// enum e820_type (arch/x86/include/asm/e820/types.h). Any 32-bit value is representable: memmap=%
// can write arbitrary types and the kernel prints them as "type N".
enum class E820Type : uint32_t {
  Ram = 1,
  Reserved = 2,
  Acpi = 3,
  Nvs = 4,
  Unusable = 5,
  Pmem = 7,
  Pram = 12,  // legacy persistent memory (memmap=nn!ss)
  ReservedKern = 128,
  SoftReserved = 0xefffffff,
};

// One e820 entry: [addr, addr + size). Sizes are bytes; an entry of size 0 is dropped by sanitize.
struct E820Entry {
  PhysAddr addr;
  uint64_t size = 0;
  E820Type type = E820Type::Ram;

  // Requires: size > 0 and no wrap (every entry this layer builds satisfies both).
  constexpr PhysAddr last() const { return PhysAddr(addr.value() + size - 1); }
  constexpr bool operator==(const E820Entry&) const = default;
};

using E820Table = std::vector<E820Entry>;

// E820_MAX_ENTRIES = E820_MAX_ENTRIES_ZEROPAGE (128) + 3 * MAX_NUMNODES; Debian amd64 has NODES_SHIFT 10.
inline constexpr size_t E820_MAX_ENTRIES = 128 + 3 * 1024;

// e820_print_type(): "usable", "reserved", "soft reserved", "ACPI data", "ACPI NVS", "unusable",
// "persistent (type 12)", "persistent (type 7)", else "type N".
std::string e820_type_text(E820Type type);
// e820_type_to_string(): the /proc/iomem name ("System RAM", "Reserved", "Persistent Memory (legacy)", ...).
std::string_view e820_type_resource_name(E820Type type);
// e820__print_table() line without the printk timestamp: "<who>: [mem 0x%016llx-0x%016llx] <type>".
std::string format_e820_entry(std::string_view who, const E820Entry& e);

// The table operations, each matching its 6.1 namesake. `log` (may be null) receives the KERN_DEBUG /
// pr_err lines the kernel prints. Sizes that would run past 2^64 - 1 are clamped to end there, as
// e820__range_remove/update do; e820__range_add does no such clamp in the kernel, this one does so
// that no entry wraps (a wrapping entry makes the kernel's own sanitize bail out).
//
// __e820__range_add(): appends; refuses (log "too many entries; ignoring ...") when the table is full.
void e820_range_add(E820Table& table, PhysAddr start, uint64_t size, E820Type type, std::vector<std::string>* log);
// e820__range_remove(): removes [start, start+size) from entries of `old_type` (any type when nullopt),
// splitting an entry that strictly contains the range. Returns the bytes removed.
uint64_t e820_range_remove(E820Table& table, PhysAddr start, uint64_t size, std::optional<E820Type> old_type,
                           std::vector<std::string>* log);
// e820__range_update(): retypes the parts of `old_type` entries inside the range to `new_type`.
// Requires: old_type != new_type (the kernel BUG()s). Returns the bytes updated.
uint64_t e820_range_update(E820Table& table, PhysAddr start, uint64_t size, E820Type old_type, E820Type new_type,
                           std::vector<std::string>* log);
// e820__update_table(): sort, resolve overlaps (the numerically larger type wins), merge neighbours of the
// same type (never PRAM or soft-reserved ones: e820_nomerge()). Returns false, leaving the table as it was,
// where the kernel returns -1: fewer than two entries, or an entry whose end wraps.
bool e820_update_table(E820Table& table);

}  // namespace sparsemem
