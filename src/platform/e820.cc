// E820 table operations and printing, matching arch/x86/kernel/e820.c of Linux 6.1.
// Pure functions on caller-owned tables; no state.
#include "sparsemem/platform_e820.h"

#include <algorithm>

#include <fmt/core.h>

namespace sparsemem {

namespace {

constexpr uint64_t kU64Max = ~uint64_t{0};

// The kernel clamps "size > ULLONG_MAX - start" so that start + size cannot wrap.
uint64_t clamp_size(uint64_t start, uint64_t size) { return size > kU64Max - start ? kU64Max - start : size; }

// e820_nomerge(): PRAM and soft-reserved neighbours stay separate entries.
bool e820_nomerge(uint32_t type) {
  return type == static_cast<uint32_t>(E820Type::Pram) || type == static_cast<uint32_t>(E820Type::SoftReserved);
}

// "%#010Lx": 0x plus at least 8 hex digits. The kernel's vsprintf keeps the 0x prefix for zero too
// ("e820: update [mem 0x00000000-0x00000fff]"), which is also what fmt's '#' does.
std::string hex010(uint64_t v) { return fmt::format("{:#010x}", v); }

}  // namespace

std::string e820_type_text(E820Type type) {
  switch (type) {
    case E820Type::Ram:
    case E820Type::ReservedKern: return "usable";
    case E820Type::Reserved: return "reserved";
    case E820Type::SoftReserved: return "soft reserved";
    case E820Type::Acpi: return "ACPI data";
    case E820Type::Nvs: return "ACPI NVS";
    case E820Type::Unusable: return "unusable";
    case E820Type::Pmem:
    case E820Type::Pram: return fmt::format("persistent (type {})", static_cast<uint32_t>(type));
  }
  return fmt::format("type {}", static_cast<uint32_t>(type));
}

std::string_view e820_type_resource_name(E820Type type) {
  switch (type) {
    case E820Type::ReservedKern:
    case E820Type::Ram: return "System RAM";
    case E820Type::Acpi: return "ACPI Tables";
    case E820Type::Nvs: return "ACPI Non-volatile Storage";
    case E820Type::Unusable: return "Unusable memory";
    case E820Type::Pram: return "Persistent Memory (legacy)";
    case E820Type::Pmem: return "Persistent Memory";
    case E820Type::Reserved: return "Reserved";
    case E820Type::SoftReserved: return "Soft Reserved";
  }
  return "Unknown E820 type";
}

std::string format_e820_entry(std::string_view who, const E820Entry& e) {
  // "%#018Lx" on both ends: 0x plus 16 digits.
  return fmt::format("{}: [mem {:#018x}-{:#018x}] {}", who, e.addr.value(), e.addr.value() + e.size - 1,
                     e820_type_text(e.type));
}

void e820_range_add(E820Table& table, PhysAddr start, uint64_t size, E820Type type, std::vector<std::string>* log) {
  size = clamp_size(start.value(), size);
  if (table.size() >= E820_MAX_ENTRIES) {
    if (log) {
      log->push_back(fmt::format("too many entries; ignoring [mem {}-{}]", hex010(start.value()),
                                 hex010(start.value() + size - 1)));
    }
    return;
  }
  table.push_back(E820Entry{start, size, type});
}

uint64_t e820_range_remove(E820Table& table, PhysAddr start_addr, uint64_t size, std::optional<E820Type> old_type,
                           std::vector<std::string>* log) {
  const uint64_t start = start_addr.value();
  size = clamp_size(start, size);
  const uint64_t end = start + size;
  if (log) {
    std::string line = fmt::format("e820: remove [mem {}-{}] ", hex010(start), hex010(end - 1));
    if (old_type) line += e820_type_text(*old_type);
    log->push_back(std::move(line));
  }
  uint64_t removed = 0;
  // Index loop: a split appends to the table while it is being walked, as the kernel's does.
  for (size_t i = 0; i < table.size(); ++i) {
    E820Entry& entry = table[i];
    if (old_type && entry.type != *old_type) continue;
    const uint64_t entry_start = entry.addr.value();
    const uint64_t entry_end = entry_start + entry.size;
    if (entry_start >= start && entry_end <= end) {  // completely covered
      removed += entry.size;
      entry = E820Entry{PhysAddr(0), 0, E820Type{0}};
      continue;
    }
    if (entry_start < start && entry_end > end) {  // the range lies strictly inside the entry
      const E820Type t = entry.type;
      entry.size = start - entry_start;
      removed += size;
      e820_range_add(table, PhysAddr(end), entry_end - end, t, log);
      continue;
    }
    const uint64_t final_start = std::max(start, entry_start);
    const uint64_t final_end = std::min(end, entry_end);
    if (final_start >= final_end) continue;
    removed += final_end - final_start;
    // Left range could be head or tail, so the size is updated first.
    table[i].size -= final_end - final_start;
    if (entry_start < final_start) continue;
    table[i].addr = PhysAddr(final_end);
  }
  return removed;
}

uint64_t e820_range_update(E820Table& table, PhysAddr start_addr, uint64_t size, E820Type old_type, E820Type new_type,
                           std::vector<std::string>* log) {
  const uint64_t start = start_addr.value();
  size = clamp_size(start, size);
  const uint64_t end = start + size;
  if (log) {
    log->push_back(fmt::format("e820: update [mem {}-{}] {} ==> {}", hex010(start), hex010(end - 1),
                               e820_type_text(old_type), e820_type_text(new_type)));
  }
  if (old_type == new_type) return 0;  // the kernel BUG()s; callers never ask for it
  uint64_t updated = 0;
  for (size_t i = 0; i < table.size(); ++i) {
    if (table[i].type != old_type) continue;
    const uint64_t entry_start = table[i].addr.value();
    const uint64_t entry_end = entry_start + table[i].size;
    if (entry_start >= start && entry_end <= end) {
      table[i].type = new_type;
      updated += table[i].size;
      continue;
    }
    if (entry_start < start && entry_end > end) {
      const E820Type t = table[i].type;
      table[i].size = start - entry_start;
      e820_range_add(table, PhysAddr(start), size, new_type, log);
      e820_range_add(table, PhysAddr(end), entry_end - end, t, log);
      updated += size;
      continue;
    }
    const uint64_t final_start = std::max(start, entry_start);
    const uint64_t final_end = std::min(end, entry_end);
    if (final_start >= final_end) continue;
    e820_range_add(table, PhysAddr(final_start), final_end - final_start, new_type, log);
    updated += final_end - final_start;
    table[i].size -= final_end - final_start;
    if (entry_start < final_start) continue;
    table[i].addr = PhysAddr(final_end);
  }
  return updated;
}

bool e820_update_table(E820Table& table) {
  if (table.size() < 2) return false;
  for (const E820Entry& e : table) {
    if (e.addr.value() + e.size < e.addr.value()) return false;
  }

  struct ChangePoint {
    uint64_t addr;
    size_t entry;  // index into table
    bool is_start;
  };
  std::vector<ChangePoint> points;
  points.reserve(table.size() * 2);
  for (size_t i = 0; i < table.size(); ++i) {
    if (table[i].size == 0) continue;
    points.push_back({table[i].addr.value(), i, true});
    points.push_back({table[i].addr.value() + table[i].size, i, false});
  }
  // cpcompare(): by address; at equal addresses a start sorts before an end.
  std::stable_sort(points.begin(), points.end(), [](const ChangePoint& a, const ChangePoint& b) {
    if (a.addr != b.addr) return a.addr < b.addr;
    return a.is_start && !b.is_start;
  });

  E820Table out;
  std::vector<size_t> overlap;
  uint32_t last_type = 0;
  uint64_t last_addr = 0;
  E820Entry pending{};
  for (const ChangePoint& cp : points) {
    if (cp.is_start) {
      overlap.push_back(cp.entry);
    } else {
      auto it = std::find(overlap.begin(), overlap.end(), cp.entry);
      if (it != overlap.end()) overlap.erase(it);
    }
    // The numerically larger type wins where entries overlap.
    uint32_t current_type = 0;
    for (size_t idx : overlap) current_type = std::max(current_type, static_cast<uint32_t>(table[idx].type));
    if (current_type != last_type || e820_nomerge(current_type)) {
      if (last_type != 0) {
        pending.size = cp.addr - last_addr;
        if (pending.size != 0) {
          out.push_back(pending);
          if (out.size() >= E820_MAX_ENTRIES) break;
        }
      }
      if (current_type != 0) {
        pending = E820Entry{PhysAddr(cp.addr), 0, static_cast<E820Type>(current_type)};
        last_addr = cp.addr;
      }
      last_type = current_type;
    }
  }
  table = std::move(out);
  return true;
}

}  // namespace sparsemem
