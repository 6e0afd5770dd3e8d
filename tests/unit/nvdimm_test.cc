// Tests for include/sparsemem/nvdimm.h: libnvdimm and the dax bus on a booted QEMU NVDIMM machine —
// NFIT load, labels, devdax/fsdax info-block geometry (ndctl-daxctl.md §5, kernel-6.1.md §4.17),
// seeds, kmem, and refusals that leave the machine unchanged.
#include "sparsemem/nvdimm.h"

#include <gtest/gtest.h>

#include "sparsemem/scenario.h"
#include "sparsemem/views.h"
#include "support/devmem.h"
#include "support/machines.h"

namespace sparsemem {
namespace {

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t GiB = uint64_t{1} << 30;
constexpr uint64_t kRegionStart = 0x180000000;
constexpr uint64_t kRegionSize = 8 * GiB - 2 * MiB;  // the 128k label area costs QEMU 2 MiB (qemu-platform.md §6.3)

// The oracle's NVDIMM machine: 8G NVDIMM with a label area at 0x180000000, the default modules loaded.
struct NvMachine {
  PlatformDescription platform;
  std::unique_ptr<Machine> m;
  std::unique_ptr<Libnvdimm> nd;

  NvMachine() {
    const std::vector<std::string> argv{"qemu-system-x86_64", "-machine", "pc,nvdimm=on", "-m", "4160M,maxmem=20G,slots=1",
                                        "-object", "memory-backend-ram,id=mem0,size=8G", "-device",
                                        "nvdimm,id=vm0,memdev=mem0,node=0,label-size=128k"};
    auto p = platform_from_qemu(argv, std::string(kOracleBaseAppend));
    EXPECT_TRUE(p) << (p ? "" : p.error().message);
    if (!p) return;
    platform = *p;
    auto cfg = Machine::config_from_platform(platform, kLinux61);
    EXPECT_TRUE(cfg);
    if (!cfg) return;
    m = testing::boot_or_die(*cfg);
    if (!m) return;
    nd = std::make_unique<Libnvdimm>(platform);
    for (NdModule mod : {NdModule::Nfit, NdModule::NdPmem, NdModule::NdBtt, NdModule::DaxPmem, NdModule::DeviceDax,
                         NdModule::Kmem})
      EXPECT_TRUE(nd->load(*m, mod));
  }
  explicit operator bool() const { return m && nd; }

  // ndctl disable-region all; init-labels all; enable-region all.
  void init_labels() {
    ASSERT_TRUE(nd->disable_region(*m, "region0"));
    ASSERT_TRUE(nd->init_labels("nmem0", false));
    ASSERT_TRUE(nd->enable_region(*m, "region0"));
  }
  Result<std::string> create(NdNamespaceConfig::Mode mode, uint64_t size, PfnMode map = PfnMode::Pmem,
                             uint64_t align = 2 * MiB) {
    NdNamespaceConfig cfg;
    cfg.mode = mode;
    cfg.map = map;
    cfg.align = align;
    cfg.size = size;
    cfg.uuid = "11111111-2222-4333-8444-555555555555";
    cfg.pfn_uuid = "66666666-7777-4888-9999-aaaaaaaaaaaa";
    return nd->setup_namespace(*m, "region0", "", cfg);
  }
  const NdRegion& region() const { return *nd->find_region("region0"); }
  const NdPersonality* holder(std::string_view ns) const {
    const NdRegion* r = nullptr;
    const NdNamespace* n = nd->find_namespace(ns, &r);
    return n ? nd->holder_of(*r, *n) : nullptr;
  }
  // Everything a refused operation must leave as it was: sections, zones, pgmaps, /proc/iomem,
  // vmemmap, memory blocks and the nd/dax objects as sysfs shows them.
  std::string snapshot() const {
    std::string s = testing::devmem_snapshot(*m);
    m->memory_blocks().for_each([&](const MemoryBlock& b) {
      s += fmt::format("block {} {}\n", b.id.value(), static_cast<int>(b.state));
    });
    for (const std::string& l : nd_dax_state_lines(*nd)) s += l + "\n";
    return s;
  }
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Scenario: boot the NVDIMM machine and load nfit and nd_pmem (step 000 of every NVDIMM trace).
// Expect (ndctl-daxctl.md §2, trace d1 step 0): bus ndbus0 (ACPI.NFIT), DIMM nmem0 without valid
// labels, region0 = [0x180000000, +8G-2M) with align 16M, label-less: one nd_namespace_io
// namespace0.0 covering the region, bound to nd_pmem (NFIT regions are not ND_REGION_PAGEMAP, so no
// pagemap), seeds namespace0.0/pfn0.0/dax0.0/btt0.0; iomem "Persistent Memory" with "namespace0.0"
// nested; no dax device; checker clean.
TEST(Libnvdimm, NfitLoadGivesLabellessRegionWithBoundIoNamespace) {
  NvMachine v;
  ASSERT_TRUE(v);
  ASSERT_EQ(v.nd->buses().size(), 1u);
  EXPECT_EQ(v.nd->buses()[0].provider, "ACPI.NFIT");
  ASSERT_EQ(v.nd->dimms().size(), 1u);
  EXPECT_EQ(v.nd->dimms()[0].name, "nmem0");
  EXPECT_FALSE(v.nd->dimms()[0].labels_valid);
  const NdRegion& r = v.region();
  EXPECT_EQ(r.range.start.value(), kRegionStart);
  EXPECT_EQ(r.size(), kRegionSize);
  EXPECT_EQ(r.align, 16 * MiB);
  EXPECT_TRUE(r.enabled);
  EXPECT_FALSE(r.labelled);
  EXPECT_FALSE(r.pagemap);
  ASSERT_EQ(r.namespaces.size(), 1u);
  const NdNamespace& ns = r.namespaces[0];
  EXPECT_EQ(ns.name, "namespace0.0");
  EXPECT_TRUE(ns.io);
  EXPECT_TRUE(ns.bound);
  EXPECT_FALSE(ns.pgmap);
  EXPECT_EQ(ns.size, kRegionSize);
  EXPECT_EQ(r.ns_seed, "namespace0.0");
  EXPECT_EQ(r.pfn_seed, "pfn0.0");
  EXPECT_EQ(r.dax_seed, "dax0.0");
  EXPECT_EQ(r.btt_seed, "btt0.0");
  EXPECT_TRUE(v.nd->dax_devices().empty());
  const std::string iomem = v.m->iomem().render();
  EXPECT_TRUE(contains(iomem, "180000000-37fdfffff : Persistent Memory\n  180000000-37fdfffff : namespace0.0\n")) << iomem;
  EXPECT_TRUE(v.m->pgmap_registry().entries().empty());
  testing::expect_clean(*v.m);
}

// Scenario: init-labels while region0 is enabled, then the proper disable / init / enable, then
// init-labels again without and with force.
// Expect (ndctl-daxctl.md §6): -EBUSY "nmem0: regions active, abort label write" and nothing
// changed; after the sequence region0 is labelled with the empty seed namespace0.0 (size 0, no
// uuid, not io) and available_size = the region rounded down to 16M (8573157376); labels already
// valid -> -EEXIST "labels already initialized" (region disabled), force rewrites them.
TEST(Libnvdimm, InitLabelsRefusedWhileRegionEnabled) {
  NvMachine v;
  ASSERT_TRUE(v);
  const std::string before = v.snapshot();
  auto busy = v.nd->init_labels("nmem0", false);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, Errno::Busy);
  EXPECT_EQ(busy.error().message, "nmem0: regions active, abort label write");
  EXPECT_EQ(v.snapshot(), before);
  EXPECT_FALSE(v.nd->dimms()[0].labels_valid);

  v.init_labels();
  const NdRegion& r = v.region();
  EXPECT_TRUE(r.labelled);
  ASSERT_EQ(r.namespaces.size(), 1u);
  EXPECT_EQ(r.namespaces[0].name, "namespace0.0");
  EXPECT_FALSE(r.namespaces[0].io);
  EXPECT_EQ(r.namespaces[0].size, 0u);
  EXPECT_TRUE(r.namespaces[0].uuid.empty());
  EXPECT_EQ(v.nd->available_size(r), 8573157376u);
  EXPECT_EQ(v.nd->max_available_extent(r), 8573157376u);
  // The io namespace's "namespace0.0" is gone from iomem; the container stays.
  const std::string iomem = v.m->iomem().render();
  EXPECT_TRUE(contains(iomem, "180000000-37fdfffff : Persistent Memory\n")) << iomem;
  EXPECT_FALSE(contains(iomem, "namespace0.0")) << iomem;

  ASSERT_TRUE(v.nd->disable_region(*v.m, "region0"));
  auto again = v.nd->init_labels("nmem0", false);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errno::Exist);
  EXPECT_TRUE(v.nd->init_labels("nmem0", true));
  ASSERT_TRUE(v.nd->enable_region(*v.m, "region0"));
  testing::expect_clean(*v.m);
}

// Scenario: a labelled 16M devdax namespace (map=dev, align 2M) — trace d1's create_devdax_16M.
// Expect (§4.17, d1): namespace0.0 at 0x180000000 claimed by dax0.0 with dataoff 2 MiB, no
// truncation; dev_dax dax0.0 = 0x180200000-0x180ffffff bound to device_dax with a GENERIC pagemap
// over the whole namespace, vmemmap_shift 9 and the altmap {base 0x180000, reserve 2, free 510};
// iomem namespace0.0 = [start, +2M) and dax0.0 nested in "Persistent Memory"; seeds advanced to
// namespace0.1 and dax0.1; available_size down by 16M.
TEST(Libnvdimm, LabelledDevdax16MGeometry) {
  NvMachine v;
  ASSERT_TRUE(v);
  v.init_labels();
  auto made = v.create(NdNamespaceConfig::Mode::Devdax, 16 * MiB);
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_EQ(*made, "namespace0.0");
  const NdNamespace* ns = v.nd->find_namespace("namespace0.0");
  ASSERT_TRUE(ns);
  EXPECT_EQ(ns->start.value(), kRegionStart);
  EXPECT_EQ(ns->size, 16 * MiB);
  const NdPersonality* p = v.holder("namespace0.0");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "dax0.0");
  EXPECT_EQ(p->kind, NdClaimKind::Dax);
  EXPECT_TRUE(p->bound);
  EXPECT_EQ(p->dataoff, 2 * MiB);
  EXPECT_EQ(p->end_trunc, 0u);
  const DevDax* d = v.nd->find_dax("dax0.0");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->range.start.value(), 0x180200000u);
  EXPECT_EQ(d->range.last.value(), 0x180ffffffu);
  EXPECT_EQ(d->range.size(), 14680064u);
  EXPECT_EQ(d->driver, DaxDriver::DeviceDax);
  ASSERT_TRUE(d->pgmap);
  EXPECT_TRUE(d->pgmap->mapped());
  EXPECT_EQ(d->pgmap->type, MemoryType::Generic);
  EXPECT_EQ(d->pgmap->vmemmap_shift, 9u);
  ASSERT_EQ(d->pgmap->ranges.size(), 1u);
  EXPECT_EQ(d->pgmap->ranges[0].start.value(), kRegionStart);
  EXPECT_EQ(d->pgmap->ranges[0].last.value(), 0x180ffffffu);
  EXPECT_TRUE(d->pgmap->altmap_valid());
  EXPECT_EQ(d->pgmap->altmap.base_pfn.value(), 0x180000u);
  EXPECT_EQ(d->pgmap->altmap.reserve.value(), 2u);
  EXPECT_EQ(d->pgmap->altmap.free.value(), 510u);
  const std::string iomem = v.m->iomem().render();
  EXPECT_TRUE(contains(iomem,
                       "180000000-37fdfffff : Persistent Memory\n"
                       "  180000000-1801fffff : namespace0.0\n"
                       "  180200000-180ffffff : dax0.0\n"))
      << iomem;
  const NdRegion& r = v.region();
  EXPECT_EQ(r.ns_seed, "namespace0.1");
  EXPECT_EQ(r.dax_seed, "dax0.1");
  EXPECT_EQ(r.pfn_seed, "pfn0.0");
  EXPECT_EQ(v.nd->available_size(r), 8556380160u);
  testing::expect_clean(*v.m);
}

// Scenario: trace d1's id sequence at the library level: create 16M devdax (namespace0.0, dax0.0),
// destroy it, create again, create a second one.
// Expect (d1 nd_dax snapshots, ida lowest-free-id reuse): after the destroy the namespace0.0 seed
// is empty again, personality dax0.0 is gone (dax0.1 is the seed); the re-create takes
// namespace0.0 at 0x180000000 through dax0.1 and the freed id 0 comes back as the new dax seed; the
// second namespace is namespace0.1 at 0x181000000 held by dax0.0, its char device dax0.1 at
// 0x181200000, and the seeds are namespace0.2 / dax0.2.
TEST(Libnvdimm, SeedsReuseTheLowestFreeId) {
  NvMachine v;
  ASSERT_TRUE(v);
  v.init_labels();
  ASSERT_TRUE(v.create(NdNamespaceConfig::Mode::Devdax, 16 * MiB));
  ASSERT_TRUE(v.nd->disable_namespace(*v.m, "namespace0.0"));
  auto destroyed = v.nd->destroy_namespace(*v.m, "namespace0.0");
  ASSERT_TRUE(destroyed);
  EXPECT_TRUE(*destroyed);
  {
    const NdRegion& r = v.region();
    EXPECT_EQ(r.ns_seed, "namespace0.1");
    EXPECT_EQ(r.dax_seed, "dax0.1");
    EXPECT_FALSE(v.nd->find_personality(r, "dax0.0"));
    EXPECT_EQ(v.nd->find_namespace("namespace0.0")->size, 0u);
    EXPECT_TRUE(v.nd->dax_devices().empty());
    EXPECT_EQ(v.nd->available_size(r), 8573157376u);
  }
  auto again = v.create(NdNamespaceConfig::Mode::Devdax, 16 * MiB);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, "namespace0.0");
  EXPECT_EQ(v.holder("namespace0.0")->name, "dax0.1");
  EXPECT_EQ(v.region().dax_seed, "dax0.0");
  EXPECT_EQ(v.region().ns_seed, "namespace0.1");
  auto second = v.create(NdNamespaceConfig::Mode::Devdax, 16 * MiB);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, "namespace0.1");
  EXPECT_EQ(v.nd->find_namespace("namespace0.1")->start.value(), 0x181000000u);
  EXPECT_EQ(v.holder("namespace0.1")->name, "dax0.0");
  const DevDax* d1 = v.nd->find_dax("dax0.1");
  ASSERT_TRUE(d1);
  EXPECT_EQ(d1->range.start.value(), 0x181200000u);
  EXPECT_EQ(v.region().ns_seed, "namespace0.2");
  EXPECT_EQ(v.region().dax_seed, "dax0.2");
  testing::expect_clean(*v.m);
}

// fsdax / devdax geometry per ndctl-daxctl.md §5 (every row recorded [R]/[T] on this machine).
struct GeometryCase {
  const char* name;
  NdNamespaceConfig::Mode mode;
  PfnMode map;
  uint64_t align;
  uint64_t size;
  uint64_t pad_before;  // a raw namespace created first, to place this one
  uint64_t expect_start;
  uint64_t expect_data;
  uint64_t expect_dataoff;
};

class LibnvdimmGeometry : public ::testing::TestWithParam<GeometryCase> {};

// Scenario: one namespace of the case's size, mode, map and align on the labelled region, placed
// after an optional raw namespace. Expect: the start, the data size (size - dataoff - end_trunc)
// and dataoff of §5's table; the personality bound with the pagemap (fsdax: FS_DAX on the
// namespace; devdax: the dev_dax range = data); checker clean.
TEST_P(LibnvdimmGeometry, DataSizeMatchesSpecTable) {
  const GeometryCase& c = GetParam();
  NvMachine v;
  ASSERT_TRUE(v);
  v.init_labels();
  if (c.pad_before) ASSERT_TRUE(v.create(NdNamespaceConfig::Mode::Raw, c.pad_before));
  auto made = v.create(c.mode, c.size, c.map, c.align);
  ASSERT_TRUE(made) << c.name << ": " << made.error().message;
  const NdNamespace* ns = v.nd->find_namespace(*made);
  ASSERT_TRUE(ns);
  EXPECT_EQ(ns->start.value(), c.expect_start) << c.name;
  const NdPersonality* p = v.holder(*made);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->bound);
  EXPECT_EQ(p->dataoff, c.expect_dataoff) << c.name;
  EXPECT_EQ(ns->size - p->dataoff - p->end_trunc, c.expect_data) << c.name;
  EXPECT_EQ(p->mode, c.map);
  if (c.mode == NdNamespaceConfig::Mode::Fsdax) {
    ASSERT_TRUE(p->pgmap);
    EXPECT_EQ(p->pgmap->type, MemoryType::FsDax);
    EXPECT_EQ(p->pgmap->altmap_valid(), c.map == PfnMode::Pmem);
  } else {
    const DevDax* d = v.nd->find_dax(fmt::format("dax0.{}", ns->id));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->range.size(), c.expect_data);
    EXPECT_EQ(d->range.start.value(), c.expect_start + c.expect_dataoff);
    EXPECT_EQ(d->has_altmap, c.map == PfnMode::Pmem);
    ASSERT_TRUE(d->pgmap);
    EXPECT_EQ(d->pgmap->vmemmap_shift, c.align == GiB ? 18u : 9u);
  }
  testing::expect_clean(*v.m);
}

using M = NdNamespaceConfig::Mode;
INSTANTIATE_TEST_SUITE_P(
    Spec5, LibnvdimmGeometry,
    ::testing::Values(
        GeometryCase{"devdax_16M", M::Devdax, PfnMode::Pmem, 2 * MiB, 16 * MiB, 0, kRegionStart, 14680064, 2 * MiB},
        GeometryCase{"fsdax_16M", M::Fsdax, PfnMode::Pmem, 2 * MiB, 16 * MiB, 0, kRegionStart, 14680064, 2 * MiB},
        GeometryCase{"fsdax_32M", M::Fsdax, PfnMode::Pmem, 2 * MiB, 32 * MiB, 0, kRegionStart, 31457280, 2 * MiB},
        GeometryCase{"fsdax_32M_align_4K", M::Fsdax, PfnMode::Pmem, 4096, 32 * MiB, 0, kRegionStart, 31457280, 2 * MiB},
        GeometryCase{"fsdax_32M_map_mem", M::Fsdax, PfnMode::Ram, 2 * MiB, 32 * MiB, 0, kRegionStart, 31457280, 2 * MiB},
        GeometryCase{"devdax_512M", M::Devdax, PfnMode::Pmem, 2 * MiB, 512 * MiB, 0, kRegionStart, 526385152, 10 * MiB},
        GeometryCase{"devdax_1G", M::Devdax, PfnMode::Pmem, 2 * MiB, GiB, 0, kRegionStart, 1054867456, 18 * MiB},
        GeometryCase{"devdax_1G_map_mem", M::Devdax, PfnMode::Ram, 2 * MiB, GiB, 0, kRegionStart, 1071644672, 2 * MiB},
        // P = 0x1c0000000 (1 GiB-aligned) after a 1G raw namespace: off = 1 GiB.
        GeometryCase{"fsdax_2G_align_1G", M::Fsdax, PfnMode::Pmem, GiB, 2 * GiB, GiB, 0x1c0000000, GiB, GiB},
        GeometryCase{"devdax_2G_align_1G", M::Devdax, PfnMode::Pmem, GiB, 2 * GiB, GiB, 0x1c0000000, GiB, GiB}),
    [](const ::testing::TestParamInfo<GeometryCase>& i) { return std::string(i.param.name); });

// Scenario: 1G devdax with align 1G at a 1 GiB-aligned start (0x180000000): dataoff = size.
// Expect (§5 last row [R], §4.17): enable fails -ENXIO; the namespace keeps no holder, the dax seed
// is unchanged (dax0.0, keeping the requested align as the kernel does), no dev_dax, and the
// machine (sections, zones, pgmaps, iomem, blocks) is as before apart from the namespace's label.
TEST(Libnvdimm, DevdaxAlign1GWithoutRoomFailsEnxioUnchanged) {
  NvMachine v;
  ASSERT_TRUE(v);
  v.init_labels();
  const std::string before = testing::devmem_snapshot(*v.m);
  auto made = v.create(NdNamespaceConfig::Mode::Devdax, GiB, PfnMode::Pmem, GiB);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code, Errno::NxIO);
  EXPECT_EQ(testing::devmem_snapshot(*v.m), before);
  EXPECT_FALSE(v.holder("namespace0.0"));
  EXPECT_TRUE(v.nd->dax_devices().empty());
  EXPECT_EQ(v.region().dax_seed, "dax0.0");
  EXPECT_EQ(v.nd->find_personality(v.region(), "dax0.0")->align, GiB);
  testing::expect_clean(*v.m);
}

// Scenario: trace e_kmem at the library level: 1G devdax map=mem (dax0.0 = 0x180200000-0x1bfffffff),
// bind kmem with auto-online off, online the blocks movable, try to unbind kmem, to disable the
// namespace and the region; offline the blocks; unbind.
// Expect (§4.17 kmem, e_kmem): exactly blocks 49..55 (0x188000000-0x1bfffffff) added, offline;
// iomem "dax0.0" trimmed to the block-aligned part with "System RAM (kmem)" nested; with a block
// online the unbind, disable_namespace and disable_region are each -EBUSY and change nothing;
// after offlining, device_dax is back with the full range, the blocks are gone, clean checker.
TEST(Libnvdimm, KmemAddsBlockAlignedPartAndRefusesWhileOnline) {
  NvMachine v;
  ASSERT_TRUE(v);
  v.init_labels();
  ASSERT_TRUE(v.create(NdNamespaceConfig::Mode::Devdax, GiB, PfnMode::Ram));
  const DevDax* d = v.nd->find_dax("dax0.0");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->range.start.value(), 0x180200000u);
  EXPECT_EQ(d->range.last.value(), 0x1bfffffffu);
  const std::string devdax_state = testing::devmem_snapshot(*v.m);

  ASSERT_TRUE(v.nd->bind_dax(*v.m, "dax0.0", DaxDriver::Kmem));
  d = v.nd->find_dax("dax0.0");
  EXPECT_EQ(d->driver, DaxDriver::Kmem);
  ASSERT_TRUE(d->kmem_range);
  EXPECT_EQ(d->kmem_range->start.value(), 0x188000000u);
  EXPECT_EQ(d->kmem_range->last.value(), 0x1bfffffffu);
  std::vector<uint64_t> ids;
  for (BlockId b : v.nd->dax_memory_blocks(*v.m, "dax0.0")) ids.push_back(b.value());
  EXPECT_EQ(ids, (std::vector<uint64_t>{49, 50, 51, 52, 53, 54, 55}));
  for (uint64_t id : ids) EXPECT_EQ(v.m->memory_blocks().find(BlockId(id))->state, MemoryBlockState::Offline);
  EXPECT_FALSE(v.m->memory_blocks().find(BlockId(48)));
  const std::string iomem = v.m->iomem().render();
  EXPECT_TRUE(contains(iomem,
                       "180000000-37fdfffff : Persistent Memory\n"
                       "  180000000-1801fffff : namespace0.0\n"
                       "  188000000-1bfffffff : dax0.0\n"
                       "    188000000-1bfffffff : System RAM (kmem)\n"))
      << iomem;

  ASSERT_TRUE(v.m->memory_block_state_store(BlockId(52), OnlineType::OnlineMovable));
  const std::string before = v.snapshot();
  auto unbind = v.nd->bind_dax(*v.m, "dax0.0", DaxDriver::DeviceDax);
  ASSERT_FALSE(unbind);
  EXPECT_EQ(unbind.error().code, Errno::Busy);
  EXPECT_EQ(v.snapshot(), before);
  EXPECT_EQ(v.nd->find_dax("dax0.0")->driver, DaxDriver::Kmem);
  auto ns_off = v.nd->disable_namespace(*v.m, "namespace0.0");
  ASSERT_FALSE(ns_off);
  EXPECT_EQ(ns_off.error().code, Errno::Busy);
  EXPECT_EQ(v.snapshot(), before);
  auto region_off = v.nd->disable_region(*v.m, "region0");
  ASSERT_FALSE(region_off);
  EXPECT_EQ(region_off.error().code, Errno::Busy);
  EXPECT_EQ(v.snapshot(), before);
  EXPECT_TRUE(v.region().enabled);
  testing::expect_clean(*v.m);

  ASSERT_TRUE(v.m->memory_block_state_store(BlockId(52), OnlineType::Offline));
  ASSERT_TRUE(v.nd->bind_dax(*v.m, "dax0.0", DaxDriver::DeviceDax));
  EXPECT_EQ(v.nd->find_dax("dax0.0")->driver, DaxDriver::DeviceDax);
  for (uint64_t id : ids) EXPECT_FALSE(v.m->memory_blocks().find(BlockId(id)));
  EXPECT_TRUE(contains(v.m->iomem().render(), "  180200000-1bfffffff : dax0.0\n"));
  // Back to the same device mapping; only max_pfn stays where kmem's hot-add raised it (it never
  // shrinks, as in 6.1), and the rebind's pagemap is a new object (its address is left out).
  auto comparable = [](std::string state) {
    const size_t at = state.find("pgmap [");
    if (at != std::string::npos) {
      const size_t ptr = state.find(") ", at) + 1;
      state.erase(ptr, state.find('\n', ptr) - ptr);
    }
    return state;
  };
  std::string expected_state = comparable(devdax_state);
  const std::string old_max = "max_pfn 0x144000 ", new_max = "max_pfn 0x1c0000 ";
  ASSERT_NE(expected_state.find(old_max), std::string::npos);
  expected_state.replace(expected_state.find(old_max), old_max.size(), new_max);
  EXPECT_EQ(comparable(testing::devmem_snapshot(*v.m)), expected_state);
  testing::expect_clean(*v.m);
}

// Scenario: kmem on a 16M devdax namespace (dax0.0 = 0x180200000-0x180ffffff, inside block 48).
// Expect (§4.17 kmem, trace d3): -EINVAL "nothing left after alignment", the dmesg lines "mapping0:
// ... too small after alignment" and "rejecting DAX region without any memory after alignment",
// device_dax no longer bound (the unbind happened first) and no memory block or iomem change
// other than dax0.0's own request going away.
TEST(Libnvdimm, KmemRejectsDeviceWithoutAlignedBlock) {
  NvMachine v;
  ASSERT_TRUE(v);
  v.init_labels();
  ASSERT_TRUE(v.create(NdNamespaceConfig::Mode::Devdax, 16 * MiB));
  size_t blocks = 0;
  v.m->memory_blocks().for_each([&](const MemoryBlock&) { ++blocks; });
  auto bound = v.nd->bind_dax(*v.m, "dax0.0", DaxDriver::Kmem);
  ASSERT_FALSE(bound);
  EXPECT_EQ(bound.error().code, Errno::Inval);
  EXPECT_EQ(testing::log_lines_with(*v.m, "kmem dax0.0: rejecting DAX region without any memory after alignment"), 1u);
  size_t after = 0;
  v.m->memory_blocks().for_each([&](const MemoryBlock&) { ++after; });
  EXPECT_EQ(after, blocks);
  EXPECT_EQ(v.nd->find_dax("dax0.0")->driver, DaxDriver::None);
  EXPECT_FALSE(contains(v.m->iomem().render(), ": dax0.0\n"));
  testing::expect_clean(*v.m);
}

// Scenario: sixteen-megabyte fsdax namespaces packed into one section (sub-section.sh at the library
// level): ten of them, each disabled and enabled again, then destroyed in order.
// Expect: starts 0x180000000 + k*16M (k = 0..9, sections 48 and 49 shared sub-section-wise), each
// with 14 MiB of data and a mapped FS_DAX pagemap; every cycle ends with a clean checker; after
// the destroys no pagemap and no "namespace0.N" request is left and the region's capacity is whole again.
TEST(Libnvdimm, SubsectionFsdaxNamespacesCycle) {
  NvMachine v;
  ASSERT_TRUE(v);
  v.init_labels();
  for (unsigned k = 0; k < 10; ++k) {
    auto made = v.create(NdNamespaceConfig::Mode::Fsdax, 16 * MiB);
    ASSERT_TRUE(made) << k << ": " << made.error().message;
    EXPECT_EQ(*made, fmt::format("namespace0.{}", k));
    EXPECT_EQ(v.nd->find_namespace(*made)->start.value(), kRegionStart + k * 16 * MiB);
    const NdPersonality* p = v.holder(*made);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->name, fmt::format("pfn0.{}", k));
    EXPECT_EQ(16 * MiB - p->dataoff - p->end_trunc, 14680064u);
    ASSERT_TRUE(p->pgmap);
    EXPECT_TRUE(p->pgmap->mapped());
  }
  EXPECT_EQ(v.m->pgmap_registry().entries().size(), 10u);
  testing::expect_clean(*v.m);
  for (unsigned k = 0; k < 10; ++k) {
    const std::string ns = fmt::format("namespace0.{}", k);
    ASSERT_TRUE(v.nd->disable_namespace(*v.m, ns)) << ns;
    EXPECT_FALSE(v.holder(ns)->bound);
    ASSERT_TRUE(v.nd->enable_namespace(*v.m, ns)) << ns;
    EXPECT_TRUE(v.holder(ns)->bound);
    testing::expect_clean(*v.m);
    ASSERT_TRUE(v.nd->disable_namespace(*v.m, ns));
    auto destroyed = v.nd->destroy_namespace(*v.m, ns);
    ASSERT_TRUE(destroyed);
    EXPECT_TRUE(*destroyed);
    testing::expect_clean(*v.m);
  }
  EXPECT_TRUE(v.m->pgmap_registry().entries().empty());
  EXPECT_EQ(v.nd->available_size(v.region()), 8573157376u);
  EXPECT_FALSE(contains(v.m->iomem().render(), ": namespace0.")) << v.m->iomem().render();
}

}  // namespace
}  // namespace sparsemem
