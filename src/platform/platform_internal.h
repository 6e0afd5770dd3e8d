// Helpers shared by the platform builders (QEMU machines, plain maps): the boot-resource tree, the x86
// e820 boot sequence and the arm64 memblock sequence. Private to src/platform; pure functions.
#pragma once

#include <string>
#include <vector>

#include "sparsemem/platform.h"

namespace sparsemem::platform_detail {

inline constexpr uint64_t KiB = uint64_t{1} << 10;
inline constexpr uint64_t MiB = uint64_t{1} << 20;
inline constexpr uint64_t GiB = uint64_t{1} << 30;
inline constexpr uint64_t TiB = uint64_t{1} << 40;

// QEMU_ALIGN_UP / ROUND_UP with wrap-around, as QEMU's unsigned arithmetic does. Requires align != 0.
constexpr uint64_t align_up_wrap(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }
constexpr uint64_t align_down(uint64_t v, uint64_t align) { return v / align * align; }
constexpr bool is_aligned(uint64_t v, uint64_t align) { return align != 0 && v % align == 0; }

// A boot-time resource tree, just enough to nest the firmware resources the way the kernel's
// insert_resource() and __request_region() nest them. Later-inserted equal ranges become parents, so
// callers insert in the kernel's boot order.
class ResourceTreeBuilder {
 public:
  enum class Mode {
    Insert,   // insert_resource(): descend into a container; an equal or enclosed range becomes a child
    Request,  // __request_region(): descend into non-busy containers only
  };
  // Returns false (and inserts nothing) where the kernel's call would fail.
  bool add(uint64_t start, uint64_t last, std::string name, uint64_t flags, firmware::IoresDesc desc,
           ResourceOrigin origin, Mode mode);
  // reserve_region_with_split() at the root: fills only the gaps between top-level resources.
  void add_in_top_level_gaps(uint64_t start, uint64_t last, const std::string& name, uint64_t flags,
                             ResourceOrigin origin);
  std::vector<FirmwareResource> flatten() const;

 private:
  struct Node {
    uint64_t start, last;
    std::string name;
    uint64_t flags;
    firmware::IoresDesc desc;
    ResourceOrigin origin;
    std::vector<size_t> children;  // indices into m_nodes, ascending by start
  };
  std::vector<Node> m_nodes;
  std::vector<size_t> m_roots;
  std::vector<size_t>& children_of(int parent) { return parent < 0 ? m_roots : m_nodes[size_t(parent)].children; }
  void flatten_into(const std::vector<size_t>& list, unsigned depth, int parent,
                    std::vector<FirmwareResource>& out) const;
};

// iomem flags and descriptor of an e820 entry (e820_type_to_iomem_type / _iores_desc / do_mark_busy).
uint64_t e820_resource_flags(const E820Entry& e);
firmware::IoresDesc e820_resource_desc(E820Type t);

// Runs the kernel's e820 boot sequence on `firmware` (the table the firmware hands over): sanitize and
// print it, apply mem=/memmap=, print the user map, trim_bios_range(), the PCI gap line and the RAM buffer
// lines. Fills e820_firmware/_user/_kernel, e820_userdef and e820_log of `p` (p.cmdline must be set).
void run_x86_e820_boot(PlatformDescription& p, E820Table firmware);

// The RAM-buffer ranges of e820__reserve_resources_late(), in table order.
std::vector<PhysRange> e820_ram_buffers(const E820Table& kernel_table);

// memory_map of an x86 platform: e820_kernel entries as BootMemoryRegions, RAM split by SRAT node.
void build_x86_memory_map(PlatformDescription& p);

// The kernel's PXM -> node numbering (acpi_map_pxm_to_node in first-seen order, CPUs first).
std::vector<int> pxm_to_node_table(const PlatformDescription& p);

// arm64 mem=: memblock_mem_limit_remove_map() keeps the first `limit` bytes of memory (RAM and NOMAP)
// in address order.
void apply_arm64_mem_limit(std::vector<BootMemoryRegion>& map, uint64_t limit);

}  // namespace sparsemem::platform_detail
