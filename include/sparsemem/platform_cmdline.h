// Kernel command line: Linux 6.1's split of the boot arguments (next_arg() in lib/cmdline.c) and the
// memory-shaping options the platform applies or reports. Pure values; parsing never fails, as in the kernel.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sparsemem/platform_e820.h"

namespace sparsemem {

// memhp_default_state= / memory_hotplug.online_policy= values (mm/memory_hotplug.c).
enum class MemhpDefaultState : uint8_t { Offline, Online, OnlineKernel, OnlineMovable };
enum class MemhpOnlinePolicy : uint8_t { ContigZones, AutoMovable };

struct KernelParam {
  std::string name;
  std::optional<std::string> value;  // nullopt for a bare word ("nokaslr"); quotes already removed
};

struct KernelCmdline {
  std::vector<KernelParam> params;  // every argument in order, as next_arg() splits them

  // The options that shape memory, as the kernel parsed them. A value the kernel would reject leaves the
  // field unset (the kernel keeps its default and at most logs a line).
  std::optional<PhysAddr> mem_limit;                    // mem=: e820 cut and max_mem_size (hot-add ceiling)
  std::optional<MemhpDefaultState> memhp_default_state;  // memhp_default_state=
  std::optional<MemhpOnlinePolicy> online_policy;        // memory_hotplug.online_policy=
  std::optional<bool> memmap_on_memory;                  // memory_hotplug.memmap_on_memory=
  std::optional<unsigned> auto_movable_ratio;            // memory_hotplug.auto_movable_ratio=
  bool movable_node = false;                             // movable_node
  bool nokaslr = false;                                  // nokaslr
  // Whether any of mem= / memmap= was given: the kernel then prints the "user:" table (userdef).
  bool e820_userdef = false;

  // The last value of `name` (parameq(): '-' and '_' are the same), or nullopt.
  std::optional<std::string> find(std::string_view name) const;
  bool has(std::string_view name) const;
};

// Splits like parse_args()/next_arg(): whitespace separates, double quotes group, "--" ends kernel
// parameters (the rest belongs to init and is not kept).
KernelCmdline parse_kernel_cmdline(std::string_view cmdline);

// memparse(): simple_strtoull(base 0) then an optional K/M/G/T/P/E suffix. Returns the value and the
// number of characters consumed (0 when no digit was read). Overflow wraps as in the kernel.
struct MemparseResult {
  uint64_t value = 0;
  size_t consumed = 0;
};
MemparseResult memparse(std::string_view s);

// Applies the x86 early parameters that edit the e820 table, in command-line order: mem= (parse_memopt)
// and every memmap= item (parse_memmap_opt / parse_memmap_one: exactmap, nn@ss, nn#ss, nn$ss, nn!ss,
// nn%ss-from+to, nn). Appends the kernel's log lines to `log`. Returns whether userdef was set.
bool apply_e820_cmdline(E820Table& table, const KernelCmdline& cmdline, std::vector<std::string>* log);

}  // namespace sparsemem
