// Views: the /proc and /sys files of a Linux 6.1 guest rendered from a Machine and its ACPI memory
// devices, and the VirtualFs that serves them. Renderings read only; write handlers call operations.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sparsemem/acpi_memory.h"
#include "sparsemem/machine.h"
#include "sparsemem/nvdimm.h"
#include "sparsemem/units.h"
#include "sparsemem/vfs.h"

namespace sparsemem {

// ---- renderings (pure: call between operations) ------------------------------------------------

// /proc/zoneinfo of every online node, every zone (mm/vmstat.c zoneinfo_show_print, 6.1): counters
// the model keeps (spanned, present, managed, cma, start_pfn) are exact; per-node and vm statistics
// the model does not keep print as 0; watermarks follow setup_per_zone_wmarks() with Debian's
// THP-raised min_free_kbytes; "pages free" is the managed count (the model does not track the
// free lists as counts).
std::string render_zoneinfo(const Machine& m);
// The lines of /proc/zoneinfo the oracle keeps (guest/init's awk filter).
std::vector<std::string> filter_zoneinfo_lines(const std::string& zoneinfo);

// /proc/meminfo in 6.1's order (fs/proc/meminfo.c, x86-64 Debian build): MemTotal from
// totalram_pages(); the constants of a machine without swap, hugetlb pool or KVM guests;
// VmallocTotal and Hugepagesize from the profile; DirectMap4k/2M (x86 only) split so that their
// sum is the direct map, which grows and shrinks by whole subsections as memory is added and
// removed. Page-cache, slab and userspace counters, which depend on what runs in a guest, print
// fixed plausible values (docs/conformance.md excludes them).
std::string render_meminfo(const Machine& m);

// A node mask as sysfs prints it ("%*pbl": "0", "0-1", "0,2-3"); empty for no node.
std::string node_list_string(const std::vector<unsigned>& nodes);

// Node masks the node sysfs directory shows (drivers/base/node.c).
struct NodeStates {
  std::vector<unsigned> possible, online, has_memory, has_normal_memory, has_cpu;
};
NodeStates node_states(const Machine& m, const std::vector<unsigned>& cpu_nodes);

// pfnflags (the oracle's guest helper) over [range.start, range.end()) for each range: one line per
// pfn, "pfn=0x%lx flags=0x%016lx count=%lu", "EOF" for both at or beyond max_dump_pfn, "ERR:<text>"
// when reading faults. Each line ends with '\n'.
std::string render_pfnflags(const Machine& m, std::span<const PfnRange> ranges);

// ---- the guest's file tree --------------------------------------------------------------------

// What the files need beyond the Machine. The pointed-to objects outlive the VirtualFs.
struct GuestFsContext {
  Machine* machine = nullptr;
  AcpiMemoryHotplug* acpi = nullptr;  // nullptr: no /sys/bus/acpi/devices/PNP0C80:*
  std::string cmdline;                // /proc/cmdline without the newline
  std::vector<unsigned> cpu_nodes;    // nodes with CPUs (has_cpu)
  // memory_notifier_error_inject is loaded: its debugfs directory exists.
  std::function<bool()> notifier_inject_loaded;
  // Writing 1 to a PNP0C80 eject file of a present device. Default (unset): acpi->eject(). The
  // simulator sets it so that the host side (QEMU removing the DIMM, its events) follows. As in
  // acpi_eject_store(), the write succeeds whatever the ejection's outcome (queued work in 6.1);
  // only an empty slot fails it (-ENODEV).
  std::function<Result<void>(unsigned slot)> acpi_eject;
};

// /proc (iomem, zoneinfo, meminfo, cmdline), /sys/devices/system/memory (block_size_bytes,
// auto_online_blocks, soft/hard_offline_page, memoryN/{online,phys_device,phys_index,removable,
// state,valid_zones,uevent,power,subsystem,nodeN}), /sys/devices/system/node, the memory_hotplug
// module parameters, /sys/bus/acpi/devices/PNP0C80:NN, empty /sys/bus/nd and /sys/bus/dax device
// lists, and the memory notifier-error-inject debugfs files. Errors of writes: -EINVAL for values
// the kernel's parsers refuse, the operations' errnos otherwise; -EOPNOTSUPP (with a message
// starting "sparsemem: ") for files whose kernel code the model does not have (memory failure).
VirtualFs make_guest_fs(GuestFsContext ctx);

// The guest helper nd_dax_state over libnvdimm and the dax bus: "kind name key=value ..." per
// device of /sys/bus/nd/devices and /sys/bus/dax/devices, in the shell's glob order.
std::vector<std::string> nd_dax_state_lines(const Libnvdimm& nd);

}  // namespace sparsemem
