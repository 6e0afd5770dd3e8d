// Python 3 text semantics over UTF-8 (see pytext.h). Pure functions; each cites the CPython
// behaviour it reproduces so the scenario parser splits a file exactly as the oracle driver does.
#include "scenario/pytext.h"

#include <charconv>
#include <cmath>

namespace sparsemem::pytext {
namespace {

// Decodes the code point at s[pos]; requires valid UTF-8. Returns {code point, length}.
struct Decoded {
  uint32_t cp;
  size_t len;
};
Decoded decode(std::string_view s, size_t pos) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) return {b0, 1};
  auto cont = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[pos + i]) & 0x3f); };
  if (b0 < 0xe0) return {((b0 & 0x1fu) << 6) | cont(1), 2};
  if (b0 < 0xf0) return {((b0 & 0x0fu) << 12) | (cont(1) << 6) | cont(2), 3};
  return {((b0 & 0x07u) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3), 4};
}

// Py_UNICODE_ISSPACE: the code points str.isspace(), str.split() and re's \s treat as blank.
bool is_space_cp(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

// Py_UNICODE_ISLINEBREAK: the code points str.splitlines() ends a line at.
bool is_linebreak_cp(uint32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || (cp >= 0x1c && cp <= 0x1e) ||
         cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// digitpart := digit (["_"] digit)*, as in Python's int() and float() literals. Advances pos.
bool digitpart(std::string_view s, size_t& pos, std::string& out) {
  if (pos >= s.size() || !is_digit(s[pos])) return false;
  out += s[pos++];
  while (pos < s.size()) {
    if (is_digit(s[pos])) {
      out += s[pos++];
    } else if (s[pos] == '_' && pos + 1 < s.size() && is_digit(s[pos + 1])) {
      out += s[pos + 1];
      pos += 2;
    } else {
      break;
    }
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

}  // namespace

std::optional<size_t> utf8_error(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      len = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      len = 3;
      if (b0 == 0xe0) lo = 0xa0;  // overlong
      if (b0 == 0xed) hi = 0x9f;  // UTF-16 surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      len = 4;
      if (b0 == 0xf0) lo = 0x90;  // overlong
      if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return i;
    }
    i += len;
  }
  return std::nullopt;
}

std::string universal_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

size_t space_len(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  const Decoded d = decode(s, pos);
  return is_space_cp(d.cp) ? d.len : 0;
}

std::string_view lstrip(std::string_view s) {
  size_t pos = 0;
  while (size_t n = space_len(s, pos)) pos += n;
  return s.substr(pos);
}

std::string_view rstrip(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    // Step back over continuation bytes to the first byte of the last character.
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80) --start;
    if (space_len(s, start) != end - start) break;
    end = start;
  }
  return s.substr(0, end);
}

std::string_view strip(std::string_view s) { return rstrip(lstrip(s)); }

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    while (size_t n = space_len(s, pos)) pos += n;
    if (pos >= s.size()) break;
    const size_t start = pos;
    while (pos < s.size() && space_len(s, pos) == 0) pos += decode(s, pos).len;
    out.push_back(s.substr(start, pos - start));
  }
  return out;
}

std::vector<std::string_view> splitlines(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0, pos = 0;
  while (pos < s.size()) {
    const Decoded d = decode(s, pos);
    if (!is_linebreak_cp(d.cp)) {
      pos += d.len;
      continue;
    }
    out.push_back(s.substr(start, pos - start));
    pos += d.len;
    if (d.cp == '\r' && pos < s.size() && s[pos] == '\n') ++pos;
    start = pos;
  }
  if (start < s.size()) out.push_back(s.substr(start));
  return out;
}

std::optional<int64_t> parse_int(std::string_view s) {
  s = strip(s);
  size_t pos = 0;
  bool neg = false;
  if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) neg = s[pos++] == '-';
  std::string digits;
  if (!digitpart(s, pos, digits) || pos != s.size()) return std::nullopt;
  // Python reads "007" as 7 but rejects a non-zero number with leading zeros only in literals,
  // never in int(): int("007") == 7, which from_chars reproduces.
  uint64_t mag = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), mag);
  if (ec != std::errc() || p != digits.data() + digits.size()) return std::nullopt;
  if (neg) {
    if (mag > static_cast<uint64_t>(INT64_MAX) + 1) return std::nullopt;
    return mag == static_cast<uint64_t>(INT64_MAX) + 1 ? INT64_MIN : -static_cast<int64_t>(mag);
  }
  if (mag > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return static_cast<int64_t>(mag);
}

std::optional<double> parse_float(std::string_view s) {
  s = strip(s);
  size_t pos = 0;
  bool neg = false;
  if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) neg = s[pos++] == '-';
  const std::string_view word = s.substr(pos);
  if (iequals(word, "inf") || iequals(word, "infinity")) return neg ? -HUGE_VAL : HUGE_VAL;
  if (iequals(word, "nan")) return std::nan("");
  std::string text;
  const bool int_part = digitpart(s, pos, text);
  bool frac_part = false;
  if (pos < s.size() && s[pos] == '.') {
    text += '.';
    ++pos;
    frac_part = digitpart(s, pos, text);
  }
  if (!int_part && !frac_part) return std::nullopt;
  if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
    text += 'e';
    ++pos;
    if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) text += s[pos++];
    if (!digitpart(s, pos, text)) return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  if (text.front() == '.') text.insert(text.begin(), '0');
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  // Python's float() saturates to inf and flushes to 0 instead of failing on range.
  if (ec == std::errc::result_out_of_range) {
    const size_t e = text.find('e');
    const bool big = e != std::string::npos && text[e + 1] != '-';
    v = big ? HUGE_VAL : 0.0;
  } else if (ec != std::errc() || p != text.data() + text.size()) {
    return std::nullopt;
  }
  return neg ? -v : v;
}

Result<std::vector<std::string>> shlex_split(std::string_view s) {
  // CPython Lib/shlex.py read_token() with posix=True, whitespace_split=True, commenters='':
  // whitespace ' \t\r\n', quotes '\'"', escape '\\', escapedquotes '"'.
  auto is_ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  std::vector<std::string> words;
  std::string token;
  bool quoted = false;    // the current token had quotes, so it exists even when empty
  char state = ' ';       // ' ' between words, 'a' in a word, '\'' or '"' in quotes, '\\' escaped
  char escaped_state = 'a';
  auto finish = [&] {
    if (!token.empty() || quoted) words.push_back(token);
    token.clear();
    quoted = false;
  };
  for (size_t i = 0;; ++i) {
    const bool eof = i >= s.size();
    const char c = eof ? '\0' : s[i];
    if (state == ' ' || state == 'a') {
      if (eof) {
        finish();
        break;
      }
      if (is_ws(c)) {
        if (state == 'a') finish();
        state = ' ';
      } else if (c == '\\') {
        escaped_state = 'a';
        state = '\\';
      } else if (c == '\'' || c == '"') {
        state = c;
      } else {
        token += c;
        state = 'a';
      }
    } else if (state == '\'' || state == '"') {
      quoted = true;
      if (eof) return fail(Errno::Inval, "No closing quotation");
      if (c == state) {
        state = 'a';
      } else if (c == '\\' && state == '"') {
        escaped_state = state;
        state = '\\';
      } else {
        token += c;
      }
    } else {  // state == '\\'
      if (eof) return fail(Errno::Inval, "No escaped character");
      // Inside double quotes only the quote and the backslash itself can be escaped.
      if (escaped_state == '"' && c != '\\' && c != '"') token += '\\';
      token += c;
      state = escaped_state;
    }
  }
  return words;
}

}  // namespace sparsemem::pytext
