// QEMU option-string and number parsing (QemuOpts/keyval splitting, qemu_strtosz, qemu_strtou64), private
// to the platform layer. Pure functions; error texts are QEMU 7.2's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sparsemem/result.h"

namespace sparsemem::qemu {

struct Opt {
  std::string key;
  std::string value;
};

// Splits "a,k=v,k2=v2" on ',' (",," is a literal comma). A first element without '=' is the value of
// `implied_key` (QEMU's implied key: "driver", "qom-type", "type", "size", "cpus"); a later element
// without '=' is QemuOpts' short-form boolean ("k" = on). Returns Inval with QEMU's text for an empty
// key.
Result<std::vector<Opt>> split_opts(std::string_view text, std::string_view implied_key);

// The last value of `key`, or nullopt.
std::optional<std::string> find_opt(const std::vector<Opt>& opts, std::string_view key);

// qemu_strtosz(): decimal with optional fraction, or 0x hex without fraction or suffix; suffix
// B/K/M/G/T/P/E (any case, powers of 1024); `default_suffix` applies when none is given.
// Returns the value, or the errno QEMU reports (EINVAL, ERANGE).
struct SizeResult {
  uint64_t value = 0;
  int error = 0;  // 0, EINVAL or ERANGE
};
SizeResult strtosz(std::string_view s, char default_suffix = 'B');

// qemu_strtou64(s, NULL, base 0, ...): the whole string must be a number (0x hex, 0 octal, decimal).
std::optional<uint64_t> strtou64(std::string_view s);
std::optional<int64_t> strtoi64(std::string_view s);

// qapi_bool_parse(): on/yes/true/y, off/no/false/n.
std::optional<bool> parse_bool(std::string_view s);

// id_wellformed(): a letter, then letters, digits, '-', '.', '_'.
bool id_wellformed(std::string_view id);

// QEMU's messages for unparsable numbers.
std::string size_error(std::string_view name, std::string_view value, int err);  // QemuOpts size options
std::string number_error(std::string_view name);                                  // QemuOpts number options

}  // namespace sparsemem::qemu
