// libFuzzer target for the platform layer: random QEMU argv, kernel command lines, plain maps and monitor
// device_add/device_del sequences. Nothing may crash; every accepted description must be self-consistent.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sparsemem/platform.h"

namespace {

using namespace sparsemem;

// A violated invariant is a bug in the layer: stop the fuzzer with a crash it can minimise.
void require(bool ok) {
  if (!ok) std::abort();
}

void check_description(const PlatformDescription& p) {
  // iomem: pre-order with consistent parents, children inside parents, siblings ascending and disjoint.
  for (size_t i = 0; i < p.iomem.size(); ++i) {
    const FirmwareResource& r = p.iomem[i];
    require(r.range.start <= r.range.last);
    if (r.parent >= 0) {
      require(size_t(r.parent) < i);
      const FirmwareResource& up = p.iomem[size_t(r.parent)];
      require(up.depth + 1 == r.depth);
      require(up.range.start <= r.range.start && r.range.last <= up.range.last);
    } else {
      require(r.depth == 0);
    }
  }
  for (size_t i = 0; i < p.iomem.size(); ++i) {
    for (size_t j = i + 1; j < p.iomem.size(); ++j) {
      if (p.iomem[j].parent != p.iomem[i].parent) continue;
      require(p.iomem[i].range.last < p.iomem[j].range.start);
      break;  // the next sibling; later ones follow by transitivity
    }
  }
  // Sanitized e820 tables are sorted and disjoint.
  for (const E820Table* t : {&p.e820_firmware, &p.e820_kernel}) {
    for (size_t i = 1; i < t->size(); ++i) {
      require((*t)[i - 1].addr.value() + (*t)[i - 1].size <= (*t)[i].addr.value());
    }
  }
  // Devices lie in the window, do not overlap, use distinct slots below ram_slots.
  for (size_t i = 0; i < p.memory_devices.size(); ++i) {
    const MemoryDevice& d = p.memory_devices[i];
    require(p.device_memory.present());
    require(d.size != 0 && d.slot < p.ram_slots);
    require(d.addr >= p.device_memory.base && d.range().last <= p.device_memory.range().last);
    for (size_t j = i + 1; j < p.memory_devices.size(); ++j) {
      const MemoryDevice& e = p.memory_devices[j];
      require(d.slot != e.slot);
      require(d.range().last < e.addr || e.range().last < d.addr);
    }
  }
}

std::vector<std::string> split(std::string_view s, char sep, size_t max_parts) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size() && out.size() < max_parts) {
    size_t e = s.find(sep, pos);
    if (e == std::string_view::npos) e = s.size();
    out.emplace_back(s.substr(pos, e - pos));
    pos = e + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  // Input layout: argv (arguments separated by '\n') '\x01' kernel command line '\x01' monitor lines.
  std::vector<std::string> sections = split(rest, '\x01', 3);
  sections.resize(3);

  Result<PlatformDescription> p = fail(Errno::Inval);
  if (mode % 3 == 2) {
    const auto profiles = all_arch_profiles();
    const ArchProfile& arch = profiles[(mode / 3) % profiles.size()];
    p = platform_from_memory_map(sections[0], arch, sections[1]);
  } else {
    std::vector<std::string> argv = split(sections[0], '\n', 256);
    PlatformOptions o;
    if (mode % 3 == 1) o.arch = &kArm64_4K_48;
    p = platform_from_qemu(argv, sections[1], o);
  }
  if (!p) return 0;
  check_description(*p);

  // Monitor commands: "+opts" object_add, "=opts" device_add, "-id" device_del, "~id" object_del.
  for (const std::string& line : split(sections[2], '\n', 64)) {
    if (line.empty()) continue;
    const std::string arg = line.substr(1);
    switch (line[0]) {
      case '+':
        if (auto b = parse_memory_backend(arg)) (void)add_memory_backend(*p, *b);
        break;
      case '=':
        if (auto r = parse_memory_device(arg)) (void)plug_memory_device(*p, *r, true);
        break;
      case '-': (void)remove_memory_device(*p, arg); break;
      case '~': (void)remove_memory_backend(*p, arg); break;
      default: break;
    }
    check_description(*p);
  }
  (void)acpi_memory_slots(*p);
  (void)srat_memory_lines(*p);
  return 0;
}
