// QEMU option-string and number parsing as QEMU 7.2 does it (util/qemu-option.c, util/keyval.c,
// util/cutils.c). Pure functions.
#include "qemu_opts.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/core.h>

namespace sparsemem::qemu {

Result<std::vector<Opt>> split_opts(std::string_view text, std::string_view implied_key) {
  // Split on single commas; ",," stands for one literal comma inside a value.
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ',') {
      if (i + 1 < text.size() && text[i + 1] == ',') {
        parts.back() += ',';
        ++i;
        continue;
      }
      parts.emplace_back();
      continue;
    }
    parts.back() += text[i];
  }
  std::vector<Opt> out;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p.empty() && i + 1 == parts.size() && i != 0) break;  // a trailing comma is ignored
    size_t eq = p.find('=');
    if (eq == std::string::npos) {
      if (i == 0 && !implied_key.empty()) {
        out.push_back(Opt{std::string(implied_key), p});
      } else if (p.empty()) {
        return fail(Errno::Inval, "Invalid parameter ''");
      } else {
        out.push_back(Opt{p, "on"});
      }
      continue;
    }
    if (eq == 0) return fail(Errno::Inval, "Invalid parameter ''");
    out.push_back(Opt{p.substr(0, eq), p.substr(eq + 1)});
  }
  return out;
}

std::optional<std::string> find_opt(const std::vector<Opt>& opts, std::string_view key) {
  std::optional<std::string> v;
  for (const Opt& o : opts) {
    if (o.key == key) v = o.value;
  }
  return v;
}

namespace {

int digit(char c, unsigned base) {
  int d = 99;
  if (c >= '0' && c <= '9') d = c - '0';
  else if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
  else if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
  return d < static_cast<int>(base) ? d : -1;
}

// strtoull-like prefix parse in `base`; reports overflow. Returns consumed characters (0 = none).
size_t parse_u64_prefix(std::string_view s, unsigned base, uint64_t& out, bool& overflow) {
  uint64_t v = 0;
  size_t i = 0;
  overflow = false;
  for (; i < s.size(); ++i) {
    int d = digit(s[i], base);
    if (d < 0) break;
    if (v > (~uint64_t{0} - static_cast<uint64_t>(d)) / base) overflow = true;
    v = v * base + static_cast<uint64_t>(d);
  }
  out = v;
  return i;
}

int64_t suffix_mul(char c) {
  switch (c) {
    case 'b': case 'B': return 1;
    case 'k': case 'K': return int64_t{1} << 10;
    case 'm': case 'M': return int64_t{1} << 20;
    case 'g': case 'G': return int64_t{1} << 30;
    case 't': case 'T': return int64_t{1} << 40;
    case 'p': case 'P': return int64_t{1} << 50;
    case 'e': case 'E': return int64_t{1} << 60;
    default: return -1;
  }
}

}  // namespace

SizeResult strtosz(std::string_view s, char default_suffix) {
  // do_strtosz(): the integral part is decimal; "0x" reparses as hex and then allows neither a fraction
  // nor a suffix; a fraction needs a suffix other than B; the result must fit in 64 bits.
  if (s.empty() || s[0] == '-' || s[0] == '+' || s[0] == ' ') return {0, EINVAL};
  uint64_t val = 0;
  bool overflow = false;
  size_t n = parse_u64_prefix(s, 10, val, overflow);
  if (n == 0) return {0, EINVAL};
  if (overflow) return {0, ERANGE};
  size_t pos = n;
  double fraction = 0;
  if (val == 0 && pos < s.size() && (s[pos] == 'x' || s[pos] == 'X')) {
    size_t h = parse_u64_prefix(s.substr(pos + 1), 16, val, overflow);
    if (h == 0) return {0, EINVAL};
    if (overflow) return {0, ERANGE};
    pos += 1 + h;
    if (pos < s.size() && (s[pos] == '.' || suffix_mul(s[pos]) > 0)) return {0, EINVAL};
  } else if (pos < s.size() && s[pos] == '.') {
    size_t f = pos + 1;
    while (f < s.size() && s[f] >= '0' && s[f] <= '9') ++f;
    if (f < s.size() && (s[f] == 'e' || s[f] == 'E') && f + 1 < s.size() && (s[f + 1] == '+' || s[f + 1] == '-' ||
                                                                           (s[f + 1] >= '0' && s[f + 1] <= '9'))) {
      return {0, EINVAL};  // an exponent makes the whole input invalid
    }
    std::string frac = "0" + std::string(s.substr(pos, f - pos));
    fraction = std::strtod(frac.c_str(), nullptr);
    if (!(fraction >= 0 && fraction < 1)) fraction = 0;
    pos = f;
  }
  int64_t mul = pos < s.size() ? suffix_mul(s[pos]) : -1;
  if (mul > 0) {
    ++pos;
  } else {
    mul = suffix_mul(default_suffix);
  }
  if (pos != s.size()) return {0, EINVAL};
  if (mul == 1) {
    if (fraction != 0) return {0, EINVAL};
    return {val, 0};
  }
  const uint64_t m = static_cast<uint64_t>(mul);
  if (val > ~uint64_t{0} / m) return {0, ERANGE};
  uint64_t result = val * m;
  // 64.64 fixed-point fraction times the multiplier, rounded half up.
  const long double extra = std::floor(static_cast<long double>(fraction) * static_cast<long double>(m) + 0.5L);
  const uint64_t add = static_cast<uint64_t>(extra);
  if (result > ~uint64_t{0} - add) return {0, ERANGE};
  return {result + add, 0};
}

std::optional<uint64_t> strtou64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  unsigned base = 10;
  size_t pos = 0;
  if (s.size() > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    pos = 2;
  } else if (s[0] == '0') {
    base = 8;
  }
  uint64_t v = 0;
  bool overflow = false;
  size_t n = parse_u64_prefix(s.substr(pos), base, v, overflow);
  if (n == 0 && base == 16) return std::nullopt;
  if (overflow || pos + n != s.size()) return std::nullopt;
  return v;
}

std::optional<int64_t> strtoi64(std::string_view s) {
  bool neg = !s.empty() && s[0] == '-';
  auto v = strtou64(neg ? s.substr(1) : s);
  if (!v) return std::nullopt;
  if (neg) {
    if (*v > uint64_t{1} << 63) return std::nullopt;
    return static_cast<int64_t>(~*v + 1);
  }
  if (*v > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return static_cast<int64_t>(*v);
}

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "on" || s == "yes" || s == "true" || s == "y") return true;
  if (s == "off" || s == "no" || s == "false" || s == "n") return false;
  return std::nullopt;
}

bool id_wellformed(std::string_view id) {
  if (id.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(id[0])) return false;
  for (char c : id.substr(1)) {
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

std::string size_error(std::string_view name, std::string_view value, int err) {
  if (err == ERANGE) return fmt::format("Value '{}' is out of range for parameter '{}'", value, name);
  return fmt::format(
      "Parameter '{}' expects a non-negative number below 2^64\n"
      "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
      "and exabytes, respectively.",
      name);
}

std::string number_error(std::string_view name) { return fmt::format("Parameter '{}' expects a number", name); }

}  // namespace sparsemem::qemu
