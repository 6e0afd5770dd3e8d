// libnvdimm (drivers/nvdimm: buses, DIMMs, regions, namespaces, the pfn/dax/btt personalities and
// their info blocks), the dax bus (drivers/dax: device_dax, kmem) of Linux 6.1. The owner serialises calls.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sparsemem/machine.h"
#include "sparsemem/memory_block.h"
#include "sparsemem/pagemap.h"
#include "sparsemem/platform.h"
#include "sparsemem/result.h"
#include "sparsemem/units.h"

namespace sparsemem {

// The modules of the stack; a device binds when its driver's module is loaded (bus probing).
enum class NdModule : uint8_t { Nfit, NdE820, NdPmem, NdBtt, DaxPmem, DeviceDax, Kmem };
std::optional<NdModule> nd_module_from_name(std::string_view name);  // "nfit", "nd_e820", ...

// What the nd_pfn / nd_dax info block says, persisted on the media at namespace offset 4 KiB: a
// region disabled and enabled again finds it and rebuilds the personality (nd_pfn_validate).
enum class PfnMode : uint8_t { None, Ram, Pmem };  // sysfs "mode": none, ram (--map=mem), pmem (--map=dev)
enum class NdClaimKind : uint8_t { Pfn, Dax, Btt };

struct NdInfoBlock {
  NdClaimKind kind = NdClaimKind::Pfn;
  PfnMode mode = PfnMode::Pmem;
  uint64_t align = 0;
  std::string uuid;
};

// One pfn / dax / btt device ("pfn0.1"): ndctl writes namespace, mode, align and uuid, then binds it.
struct NdPersonality {
  NdClaimKind kind = NdClaimKind::Pfn;
  unsigned id = 0;
  std::string name;
  std::string ns;  // the claimed namespace ("" when none)
  PfnMode mode = PfnMode::None;
  uint64_t align = 0;
  std::string uuid;
  bool bound = false;  // nd_pmem (pfn), dax_pmem (dax), nd_btt (btt)
  // The geometry of the info block while bound (spec §4.17).
  uint64_t dataoff = 0, start_pad = 0, end_trunc = 0;
  std::unique_ptr<DevPagemap> pgmap;   // fsdax: nd_pmem's FS_DAX pagemap
  std::optional<PhysRange> reservation;  // the "namespaceX.Y" request (whole ns for fsdax, [start, dataoff) for dax)
};

// One namespace: label-less (nd_namespace_io, covering its region) or labelled (nd_namespace_pmem).
struct NdNamespace {
  unsigned id = 0;
  std::string name;  // "namespace0.1"
  bool io = false;   // nd_namespace_io
  PhysAddr start{0};
  uint64_t size = 0;  // 0: a seed or a destroyed labelled namespace
  std::string uuid;   // labelled only
  std::string alt_name;  // the label's name (ndctl -n), labelled only
  std::string holder;  // the claiming personality's name
  bool force_raw = false;
  bool bound = false;  // nd_pmem bound to the namespace itself (raw / legacy fsdax)
  std::unique_ptr<DevPagemap> pgmap;  // ND_REGION_PAGEMAP raw mapping (e820)
  std::optional<PhysRange> reservation;
  PhysRange range() const { return PhysRange{start, PhysAddr(start.value() + size - 1)}; }
};

struct NdDimm {
  std::string name;  // "nmem0"
  uint32_t handle = 0, serial = 0;
  uint64_t label_size = 0;
  bool labels_valid = false;  // an index written by init-labels
};

// A label: what init-labels and namespace creation persist on the DIMM.
struct NdLabel {
  unsigned ns_id = 0;
  PhysAddr start{0};
  uint64_t size = 0;
  std::string uuid;
  std::string alt_name;
};

struct NdRegion {
  unsigned id = 0;
  std::string name;  // "region0"
  unsigned bus = 0;
  PhysRange range{};
  uint64_t align = 16 * 1024 * 1024;
  unsigned numa_node = 0;
  bool pagemap = false;  // ND_REGION_PAGEMAP: e820 legacy pmem maps raw namespaces
  std::optional<unsigned> dimm;  // NFIT regions have one DIMM
  bool enabled = false;
  bool labelled = false;  // decided when the region was last enabled
  std::vector<NdNamespace> namespaces;
  std::vector<NdPersonality> personalities;
  std::string ns_seed, pfn_seed, dax_seed, btt_seed;
  unsigned init_namespaces = 0;  // namespaces found when the region was enabled
  uint64_t iset_cookie = 0;      // labelled regions' interleave-set cookie
  uint64_t size() const { return range.size(); }
};

struct NdBus {
  unsigned id = 0;
  std::string name;      // "ndbus0"
  std::string provider;  // "ACPI.NFIT", "e820"
};

// A device on the dax bus ("dax0.0"): the static dev_dax of one nd_dax personality.
enum class DaxDriver : uint8_t { None, DeviceDax, Kmem };
struct DevDax {
  std::string name;
  unsigned region = 0;
  std::string personality;  // the nd_dax that created it
  PhysRange range{};        // the data range
  uint64_t align = 0;
  int target_node = 0;
  DaxDriver driver = DaxDriver::None;
  std::unique_ptr<DevPagemap> pgmap;  // device_dax's GENERIC pagemap (copy of the nd_dax geometry)
  PhysRange pgmap_range{};            // includes the metadata area
  VmemAltmap altmap{};
  bool has_altmap = false;
  // kmem while bound
  std::optional<MemoryGroupId> group;
  std::optional<PhysRange> kmem_range;
};

// How a namespace is to be set up (what ndctl create-namespace writes before binding).
struct NdNamespaceConfig {
  enum class Mode : uint8_t { Raw, Fsdax, Devdax, Sector } mode = Mode::Fsdax;
  PfnMode map = PfnMode::Pmem;
  uint64_t align = 2 * 1024 * 1024;
  uint64_t size = 0;
  std::string uuid;      // of the namespace label (labelled) and of the personality
  std::string pfn_uuid;  // personality uuid
  std::string name;      // the namespace label's alt_name ("" for none)
};

class Libnvdimm {
 public:
  explicit Libnvdimm(const PlatformDescription& platform);

  // modprobe: the module's devices appear or bind. nfit registers the NFIT bus for the platform's
  // NVDIMMs (one DIMM and one region each, "Persistent Memory" inserted in iomem); nd_e820 one
  // region per "Persistent Memory (legacy)" range. Loading a driver probes its unbound devices.
  Result<void> load(Machine& m, NdModule mod);
  bool loaded(NdModule mod) const;

  const std::vector<NdBus>& buses() const { return m_buses; }
  const std::vector<NdDimm>& dimms() const { return m_dimms; }
  const std::vector<NdRegion>& regions() const { return m_regions; }
  const std::vector<std::unique_ptr<DevDax>>& dax_devices() const { return m_dax; }
  const NdRegion* find_region(std::string_view name) const;
  const NdNamespace* find_namespace(std::string_view name, const NdRegion** region = nullptr) const;
  const NdPersonality* find_personality(const NdRegion& r, std::string_view name) const;
  const DevDax* find_dax(std::string_view name) const;
  const NdPersonality* holder_of(const NdRegion& r, const NdNamespace& ns) const;

  // unbind / bind nd_region. Disabling tears down every namespace and personality; it fails
  // -EBUSY (nothing changed) while a dax device of the region is bound to kmem with memory added.
  Result<void> disable_region(Machine& m, std::string_view region);
  Result<void> enable_region(Machine& m, std::string_view region);
  // init-labels: -EBUSY while a region of the DIMM is enabled; -EEXIST labels already valid (unless force).
  Result<void> init_labels(std::string_view dimm, bool force);

  // Region capacity for labelled namespaces (available_size / max_available_extent).
  uint64_t available_size(const NdRegion& r) const;
  uint64_t max_available_extent(const NdRegion& r) const;

  // Disable a namespace: unbind its holder (and the holder's dax device) or nd_pmem. -EBUSY when
  // its dax memory is in system-ram mode with memory added.
  Result<void> disable_namespace(Machine& m, std::string_view ns);
  // Zero the info block and, for labelled namespaces, delete the label (size 0). Requires disabled.
  // Returns true when something was destroyed (an info block or a label).
  Result<bool> destroy_namespace(Machine& m, std::string_view ns);
  // Configure the (disabled) namespace as cfg says and enable it; returns the namespace's name.
  // Labelled: allocates cfg.size at the lowest free region-aligned offset (namespace `ns` or, when
  // empty, the idle namespace 0 or the seed). -ENOSPC no room; -ENXIO enable failed (dataoff >= size).
  Result<std::string> setup_namespace(Machine& m, std::string_view region, std::string_view ns,
                                      const NdNamespaceConfig& cfg);
  // The namespace setup_namespace() configures when given no name: ndctl's region_get_namespace(),
  // namespace 0 when it is idle (labelled, size 0, unclaimed), else the namespace seed.
  std::string idle_namespace(const NdRegion& r) const;
  // Enable a namespace again (nd_pmem or its holder). -ENODEV for a labelled namespace of size 0.
  Result<void> enable_namespace(Machine& m, std::string_view ns);

  // daxctl: the dax device's driver. Binding kmem adds the block-aligned part of its range as
  // "System RAM (kmem)" (auto-onlined as the machine's policy says); -EINVAL nothing aligned.
  // Unbinding kmem removes the memory; -EBUSY (nothing changed) while a block is online.
  Result<void> bind_dax(Machine& m, std::string_view dax, DaxDriver driver);
  // Memory blocks of a kmem dax device (its added range), ascending.
  std::vector<BlockId> dax_memory_blocks(const Machine& m, std::string_view dax) const;

  void check_invariants(const Machine& m, InvariantReport& report) const;

 private:
  NdRegion* region_mut(std::string_view name);
  NdNamespace* ns_mut(std::string_view name, NdRegion** region);
  DevDax* dax_mut(std::string_view name);
  void add_region(Machine& m, unsigned bus, PhysRange range, unsigned node, std::optional<unsigned> dimm, bool pagemap);
  std::string new_seed(NdRegion& r, NdClaimKind kind);
  std::string new_namespace_seed(NdRegion& r);
  void probe_region(Machine& m, NdRegion& r);
  Result<void> probe_namespace(Machine& m, NdRegion& r, NdNamespace& ns);
  Result<void> probe_personality(Machine& m, NdRegion& r, NdPersonality& p);
  void teardown_personality(Machine& m, NdRegion& r, NdPersonality& p);
  void teardown_namespace(Machine& m, NdRegion& r, NdNamespace& ns);
  Result<void> bind_device_dax(Machine& m, DevDax& d);
  void unbind_device_dax(Machine& m, DevDax& d);
  Result<void> bind_kmem(Machine& m, DevDax& d);
  Result<void> unbind_kmem(Machine& m, DevDax& d);
  void advance_seeds(NdRegion& r, const std::string& probed);
  void release_personality_if_unclaimed(NdRegion& r, const std::string& name);
  bool kmem_busy(const NdRegion& r, const NdNamespace& ns) const;
  std::vector<PhysRange> free_extents(const NdRegion& r) const;

  std::vector<MemoryDevice> m_nvdimms;  // the platform's NVDIMMs, for nfit
  std::vector<NdBus> m_buses;
  std::vector<NdDimm> m_dimms;
  std::vector<NdRegion> m_regions;
  std::vector<std::unique_ptr<DevDax>> m_dax;
  std::vector<NdModule> m_loaded;
  std::map<uint64_t, NdInfoBlock> m_info_blocks;  // by namespace start address
  std::map<unsigned, std::vector<NdLabel>> m_labels;  // by DIMM index
};

}  // namespace sparsemem
