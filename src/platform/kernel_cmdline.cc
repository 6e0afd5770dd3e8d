// Kernel command-line splitting (lib/cmdline.c next_arg), memparse() and the x86 early parameters that
// edit the e820 table (mem=, memmap=), as in Linux 6.1. Pure functions.
#include "sparsemem/platform_cmdline.h"

#include <cctype>

namespace sparsemem {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// parameq(): '-' and '_' are interchangeable in parameter names.
bool param_eq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] == '-' ? '_' : a[i];
    char y = b[i] == '-' ? '_' : b[i];
    if (x != y) return false;
  }
  return true;
}

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

// simple_strtoull(s, &end, base): base 0 picks 16 for "0x<xdigit>", 8 for a leading 0, else 10.
// Overflow wraps, as the kernel's _parse_integer() keeps accumulating.
MemparseResult simple_strtoull(std::string_view s, unsigned base) {
  size_t i = 0;
  if (base == 0) {
    if (s.size() > 0 && s[0] == '0') {
      if (s.size() > 2 && (s[1] == 'x' || s[1] == 'X') && digit_value(s[2]) < 16) {
        base = 16;
        i = 2;
      } else {
        base = 8;
      }
    } else {
      base = 10;
    }
  } else if (base == 16 && s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    i = 2;
  }
  uint64_t v = 0;
  size_t digits_start = i;
  for (; i < s.size(); ++i) {
    int d = digit_value(s[i]);
    if (d >= static_cast<int>(base)) break;
    v = v * base + static_cast<unsigned>(d);
  }
  if (i == digits_start && digits_start == 2) i = 1;  // "0x" without digits: only the "0" counts
  return {v, i};
}

std::optional<bool> kstrtobool(std::string_view s) {
  if (s.empty()) return std::nullopt;
  switch (s[0]) {
    case 'y': case 'Y': case 't': case 'T': case '1': return true;
    case 'n': case 'N': case 'f': case 'F': case '0': return false;
    case 'o': case 'O':
      if (s.size() > 1 && (s[1] == 'n' || s[1] == 'N')) return true;
      if (s.size() > 1 && (s[1] == 'f' || s[1] == 'F')) return false;
      return std::nullopt;
    default: return std::nullopt;
  }
}

// sysfs_streq(): equal, ignoring one trailing newline on either side.
bool sysfs_streq(std::string_view a, std::string_view b) {
  if (!a.empty() && a.back() == '\n') a.remove_suffix(1);
  if (!b.empty() && b.back() == '\n') b.remove_suffix(1);
  return a == b;
}

}  // namespace

MemparseResult memparse(std::string_view s) {
  MemparseResult r = simple_strtoull(s, 0);
  if (r.consumed < s.size()) {
    unsigned shifts = 0;
    switch (s[r.consumed]) {
      case 'E': case 'e': shifts = 6; break;
      case 'P': case 'p': shifts = 5; break;
      case 'T': case 't': shifts = 4; break;
      case 'G': case 'g': shifts = 3; break;
      case 'M': case 'm': shifts = 2; break;
      case 'K': case 'k': shifts = 1; break;
      default: break;
    }
    if (shifts != 0) {
      for (unsigned k = 0; k < shifts; ++k) r.value <<= 10;
      ++r.consumed;
    }
  }
  return r;
}

std::optional<std::string> KernelCmdline::find(std::string_view name) const {
  std::optional<std::string> found;
  for (const KernelParam& p : params) {
    if (param_eq(p.name, name)) found = p.value ? *p.value : std::string();
  }
  return found;
}

bool KernelCmdline::has(std::string_view name) const {
  for (const KernelParam& p : params) {
    if (param_eq(p.name, name)) return true;
  }
  return false;
}

KernelCmdline parse_kernel_cmdline(std::string_view cmdline) {
  KernelCmdline out;
  std::string args(cmdline);
  size_t pos = 0;
  auto skip_spaces = [&] {
    while (pos < args.size() && is_space(args[pos])) ++pos;
  };
  skip_spaces();
  while (pos < args.size()) {
    // next_arg(): one argument, honouring double quotes; '=' splits name from value.
    size_t start = pos;
    bool in_quote = false, quoted = false;
    if (args[start] == '"') {
      ++start;
      in_quote = quoted = true;
    }
    // `equals` is relative to the argument: an '=' at its first character leaves it 0, which the kernel
    // reads as "no value" while still accepting a later '='.
    size_t i = start, equals = 0;
    for (; i < args.size(); ++i) {
      if (is_space(args[i]) && !in_quote) break;
      if (equals == 0 && args[i] == '=') equals = i - start;
      if (args[i] == '"') in_quote = !in_quote;
    }
    size_t end = i;  // one past the argument
    KernelParam param;
    if (equals == 0) {
      size_t name_end = end;
      if (quoted && name_end > start && args[name_end - 1] == '"') --name_end;
      param.name = args.substr(start, name_end - start);
    } else {
      param.name = args.substr(start, equals);
      size_t vstart = start + equals + 1, vend = end;
      if (vstart < vend && args[vstart] == '"') {
        ++vstart;
        if (vend > vstart && args[vend - 1] == '"') --vend;
      } else if (quoted && vend > vstart && args[vend - 1] == '"') {
        --vend;
      }
      param.value = args.substr(vstart, vend > vstart ? vend - vstart : 0);
    }
    pos = end < args.size() ? end + 1 : end;
    skip_spaces();
    if (!param.value && param.name == "--") break;  // the rest is init's
    out.params.push_back(std::move(param));
  }

  for (const KernelParam& p : out.params) {
    if (param_eq(p.name, "mem") || param_eq(p.name, "memmap")) {
      // userdef follows the same rules apply_e820_cmdline() applies; recorded here for non-x86 callers.
      if (param_eq(p.name, "mem")) {
        if (p.value && *p.value != "nopentium") {
          out.e820_userdef = true;
          MemparseResult m = memparse(*p.value);
          if (m.value != 0) out.mem_limit = PhysAddr(m.value);
        }
      } else if (p.value) {
        // Each comma-separated item that parses a size (or is exactmap) sets userdef.
        std::string_view rest = *p.value;
        while (true) {
          size_t comma = rest.find(',');
          std::string_view item = rest.substr(0, comma);
          if (item.substr(0, 8) == "exactmap" || memparse(item).consumed != 0) out.e820_userdef = true;
          if (comma == std::string_view::npos) break;
          rest.remove_prefix(comma + 1);
        }
      }
    } else if (param_eq(p.name, "memhp_default_state") && p.value) {
      if (sysfs_streq(*p.value, "offline")) out.memhp_default_state = MemhpDefaultState::Offline;
      else if (sysfs_streq(*p.value, "online")) out.memhp_default_state = MemhpDefaultState::Online;
      else if (sysfs_streq(*p.value, "online_kernel")) out.memhp_default_state = MemhpDefaultState::OnlineKernel;
      else if (sysfs_streq(*p.value, "online_movable")) out.memhp_default_state = MemhpDefaultState::OnlineMovable;
    } else if (param_eq(p.name, "memory_hotplug.online_policy") && p.value) {
      if (sysfs_streq(*p.value, "contig-zones")) out.online_policy = MemhpOnlinePolicy::ContigZones;
      else if (sysfs_streq(*p.value, "auto-movable")) out.online_policy = MemhpOnlinePolicy::AutoMovable;
    } else if (param_eq(p.name, "memory_hotplug.memmap_on_memory")) {
      // param_set_bool(): a bare name means true.
      if (!p.value) out.memmap_on_memory = true;
      else if (auto b = kstrtobool(*p.value)) out.memmap_on_memory = *b;
    } else if (param_eq(p.name, "memory_hotplug.auto_movable_ratio") && p.value) {
      MemparseResult m = simple_strtoull(*p.value, 0);
      if (m.consumed == p.value->size() && m.consumed != 0 && m.value <= 0xffffffffu) {
        out.auto_movable_ratio = static_cast<unsigned>(m.value);
      }
    } else if (param_eq(p.name, "movable_node")) {
      out.movable_node = true;
    } else if (param_eq(p.name, "nokaslr")) {
      out.nokaslr = true;
    }
  }
  return out;
}

namespace {

// parse_memmap_one(): one comma-separated memmap= item. Returns whether it set userdef.
bool parse_memmap_one(E820Table& table, std::string_view p, std::vector<std::string>* log) {
  if (p.substr(0, 8) == "exactmap") {
    table.clear();
    return true;
  }
  MemparseResult size = memparse(p);
  if (size.consumed == 0) return false;
  p.remove_prefix(size.consumed);
  const uint64_t mem_size = size.value;
  const char op = p.empty() ? '\0' : p[0];
  auto start_at = [&] {
    MemparseResult s = memparse(p.substr(1));
    p.remove_prefix(1 + s.consumed);
    return PhysAddr(s.value);
  };
  switch (op) {
    case '@': e820_range_add(table, start_at(), mem_size, E820Type::Ram, log); break;
    case '#': e820_range_add(table, start_at(), mem_size, E820Type::Acpi, log); break;
    case '$': e820_range_add(table, start_at(), mem_size, E820Type::Reserved, log); break;
    case '!': e820_range_add(table, start_at(), mem_size, E820Type::Pram, log); break;
    case '%': {
      const PhysAddr start = start_at();
      uint32_t from = 0, to = 0;
      if (!p.empty() && p[0] == '-') {
        MemparseResult f = simple_strtoull(p.substr(1), 0);
        from = static_cast<uint32_t>(f.value);
        p.remove_prefix(1 + f.consumed);
      }
      if (!p.empty() && p[0] == '+') {
        MemparseResult t = simple_strtoull(p.substr(1), 0);
        to = static_cast<uint32_t>(t.value);
        p.remove_prefix(1 + t.consumed);
      }
      if (!p.empty()) break;  // -EINVAL: trailing characters, nothing applied
      if (from && to) {
        if (from != to) e820_range_update(table, start, mem_size, E820Type{from}, E820Type{to}, log);
      } else if (to) {
        e820_range_add(table, start, mem_size, E820Type{to}, log);
      } else if (from) {
        e820_range_remove(table, start, mem_size, E820Type{from}, log);
      } else {
        e820_range_remove(table, start, mem_size, std::nullopt, log);
      }
      break;
    }
    default:
      // "memmap=nn": like mem=nn for the e820 table (it does not set the hot-add limit).
      e820_range_remove(table, PhysAddr(mem_size), ~uint64_t{0} - mem_size, E820Type::Ram, log);
      break;
  }
  return true;
}

}  // namespace

bool apply_e820_cmdline(E820Table& table, const KernelCmdline& cmdline, std::vector<std::string>* log) {
  bool userdef = false;
  for (const KernelParam& p : cmdline.params) {
    if (param_eq(p.name, "mem")) {
      // parse_memopt(): userdef is set before the value is checked.
      if (!p.value) continue;
      if (*p.value == "nopentium") {
        if (log) log->push_back("mem=nopentium ignored! (only supported on x86_32)");
        continue;
      }
      userdef = true;
      const uint64_t mem_size = memparse(*p.value).value;
      if (mem_size == 0) continue;  // "Don't remove all memory when getting mem={invalid}"
      e820_range_remove(table, PhysAddr(mem_size), ~uint64_t{0} - mem_size, E820Type::Ram, log);
    } else if (param_eq(p.name, "memmap")) {
      if (!p.value) continue;
      std::string_view rest = *p.value;
      while (true) {
        size_t comma = rest.find(',');
        if (parse_memmap_one(table, rest.substr(0, comma), log)) userdef = true;
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
  }
  return userdef;
}

}  // namespace sparsemem
