// The table of architecture profiles and lookup by name. Immutable data.
#include "sparsemem/arch.h"

#include <array>

namespace sparsemem {

namespace {
constexpr std::array kProfiles = {kX86_64,       kX86_64_LA57,  kArm64_4K_39, kArm64_4K_48,
                                  kArm64_16K_47, kArm64_64K_42, kArm64_64K_52};
}

std::span<const ArchProfile> all_arch_profiles() { return kProfiles; }

const ArchProfile* find_arch_profile(std::string_view name) {
  for (const ArchProfile& p : kProfiles)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace sparsemem
