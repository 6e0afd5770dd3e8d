// Python 3 text semantics the oracle driver (shared/oracle/run) relies on: str.isspace, strip,
// split, splitlines, universal newlines, int(), float() and shlex.split. Pure functions over UTF-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sparsemem/result.h"

namespace sparsemem::pytext {

// Byte offset of the first byte that makes `s` invalid for Python's strict UTF-8 decoder
// (overlong forms, surrogates, code points above U+10FFFF, truncated sequences); nullopt if valid.
std::optional<size_t> utf8_error(std::string_view s);

// open(path).read() in text mode: "\r\n" and lone "\r" become "\n". Requires valid UTF-8.
std::string universal_newlines(std::string_view s);

// Bytes taken by the str.isspace() character starting at s[pos]; 0 if it is not whitespace.
// Requires valid UTF-8.
size_t space_len(std::string_view s, size_t pos);

std::string_view lstrip(std::string_view s);
std::string_view rstrip(std::string_view s);
std::string_view strip(std::string_view s);
// str.split() without arguments: runs of whitespace separate, no empty items.
std::vector<std::string_view> split(std::string_view s);
// str.splitlines(): \n \r \r\n \v \f \x1c \x1d \x1e U+0085 U+2028 U+2029 end a line; a final
// line ending does not start another line.
std::vector<std::string_view> splitlines(std::string_view s);

// int(s) restricted to ASCII digits: surrounding whitespace, optional sign, '_' between digits.
// nullopt when Python would raise or the value does not fit in int64_t.
std::optional<int64_t> parse_int(std::string_view s);
// float(s): surrounding whitespace, optional sign, decimal or exponent form with '_' between
// digits, "inf"/"infinity"/"nan" in any case. nullopt when Python would raise ValueError.
std::optional<double> parse_float(std::string_view s);

// shlex.split(s) (posix mode, no comments): the words, or the message Python's ValueError carries
// ("No closing quotation", "No escaped character") as Errno::Inval.
Result<std::vector<std::string>> shlex_split(std::string_view s);

}  // namespace sparsemem::pytext
