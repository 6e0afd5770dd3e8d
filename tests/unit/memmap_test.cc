// Tests for include/sparsemem/memmap.h: the vmemmap window, x86-64 and arm64 population rules
// (spec §4.2), the altmap (spec §2.8) and real unmapping. Expected values are worked out by hand.
#include "sparsemem/memmap.h"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cctype>
#include <cstring>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace sparsemem {
namespace {

constexpr uint64_t MiB = uint64_t{1} << 20;

// One Vmemmap with its own log, as a Machine would own them.
struct Env {
  explicit Env(const ArchProfile& arch, VmemmapConfig config = {}, const Behaviour& behaviour = kLinux61)
      : vm(arch, behaviour, log, config) {}
  KernelLog log;
  Vmemmap vm;

  size_t lines_with(const std::string& text) const {
    size_t n = 0;
    for (const LogLine& l : log.lines()) n += l.text == text;
    return n;
  }
  void expect_invariants() const {
    InvariantReport r;
    vm.check_invariants(r);
    EXPECT_TRUE(r.ok()) << r.to_string();
  }
  void expect_nothing_mapped() const {
    const VmemmapStats s = vm.stats();
    EXPECT_EQ(s.base_pages, 0u);
    EXPECT_EQ(s.huge_pmds, 0u);
    EXPECT_EQ(s.bytes_mapped(), 0u);
  }
};

VmemmapConfig no_pse() {
  VmemmapConfig c;
  c.cpu_has_pse = false;
  return c;
}
// spec §10 D: arm64 memstart 0x80_0000_0000 -> memstart_pfn 0x800_0000.
VmemmapConfig seed003_memstart() {
  VmemmapConfig c;
  c.memstart_pfn = Pfn(0x8000000);
  return c;
}

Page read_ok(const Vmemmap& vm, Pfn pfn) {
  auto r = vm.read_page(pfn);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return r ? *r : Page{};
}

// Write a recognisable initialised descriptor through the checked write path.
void init_at(Vmemmap& vm, Pfn pfn) {
  auto p = vm.writable_page(pfn);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  init_single_page(**p, ZoneType::Normal, 0, vm.page_addr(pfn));
}

const std::string kArmWarnPopulate = "WARNING: at arch/arm64/mm/mmu.c vmemmap_populate";
const std::string kArmWarnFree = "WARNING: at arch/arm64/mm/mmu.c vmemmap_free";

// ---------------------------------------------------------------------------------------------
// Address arithmetic

// Scenario: x86-64 4-level, no KASLR (spec §10 A). Expect: struct page of pfn 0x144000 at
// 0xffffea0000000000 + 0x144000 * 64 = 0xffffea0005100000; the last pfn below 2^46 bytes of
// physical memory (0x3ffffffff) at 0xffffeaffffffffc0 is the window's last descriptor; pfn
// 0x400000000 lands on VMEMMAP_END = 0xffffeb0000000000, outside.
TEST(Vmemmap, x86_page_addr_spec_10A) {
  Env env(kX86_64);
  EXPECT_EQ(env.vm.page_addr(Pfn(0x144000)).value(), 0xffffea0005100000ULL);
  EXPECT_EQ(env.vm.page_addr(Pfn(0)).value(), 0xffffea0000000000ULL);
  EXPECT_EQ(env.vm.page_addr(Pfn(0x3ffffffff)).value(), 0xffffeaffffffffc0ULL);
  EXPECT_TRUE(env.vm.in_window(Pfn(0x144000), NrPages(4096)));
  EXPECT_TRUE(env.vm.in_window(Pfn(0x3ffffffff), NrPages(1)));
  EXPECT_FALSE(env.vm.in_window(Pfn(0x3ffffffff), NrPages(2)));
  EXPECT_FALSE(env.vm.in_window(Pfn(0x400000000), NrPages(1)));
  // Host addresses keep the kernel's spacing: 0x4000 descriptors of 64 bytes apart.
  const auto* a = static_cast<const std::byte*>(env.vm.host_address(Pfn(0x140000)));
  const auto* b = static_cast<const std::byte*>(env.vm.host_address(Pfn(0x144000)));
  EXPECT_EQ(b - a, 0x100000);
  EXPECT_EQ(env.vm.page_to_pfn(env.vm.pfn_to_page(Pfn(0x144000))), Pfn(0x144000));
}

// Scenario: arm64 4K pages, 39-bit VA, memstart 0x80_0000_0000 (spec §1.4, §10 D, seed 003).
// Expect: pfn 0x800_0000 at VMEMMAP_START 0xfffffffe00000000; the last in-window pfn 0xbff_ffff
// at 0xfffffffeffffffc0; pfn 0xc00_0000 at VMEMMAP_END (outside); pfn 0x7ff_ffff just below the
// window; the device-private pfn 0xfffff0000 at 0xfffffffe00000000 + 0xff7ff0000 * 64 mod 2^64 =
// 0x3fbffc00000, in the user half.
TEST(Vmemmap, arm64_page_addr_spec_10D_wraps) {
  Env env(kArm64_4K_39, seed003_memstart());
  EXPECT_EQ(env.vm.page_addr(Pfn(0x8000000)).value(), 0xfffffffe00000000ULL);
  EXPECT_EQ(env.vm.page_addr(Pfn(0xbffffff)).value(), 0xfffffffeffffffc0ULL);
  EXPECT_EQ(env.vm.page_addr(Pfn(0xc000000)).value(), 0xffffffff00000000ULL);
  EXPECT_EQ(env.vm.page_addr(Pfn(0x7ffffff)).value(), 0xfffffffdffffffc0ULL);
  EXPECT_EQ(env.vm.page_addr(Pfn(0xfffff0000)).value(), 0x3fbffc00000ULL);
  EXPECT_TRUE(env.vm.in_window(Pfn(0x8000000), NrPages(0x4000000)));
  EXPECT_FALSE(env.vm.in_window(Pfn(0xc000000), NrPages(1)));
  EXPECT_FALSE(env.vm.in_window(Pfn(0x7ffffff), NrPages(1)));
  EXPECT_FALSE(env.vm.in_window(Pfn(0xfffff0000), NrPages(32768)));
  EXPECT_EQ(env.vm.page_to_pfn(env.vm.pfn_to_page(Pfn(0xfffff0000))), Pfn(0xfffff0000));
  EXPECT_EQ(env.vm.page_to_pfn(env.vm.pfn_to_page(Pfn(0x7ffffff))), Pfn(0x7ffffff));
}

// ---------------------------------------------------------------------------------------------
// x86-64

// Scenario: x86 with PSE populates section 40 (pfn 0x140000, 32768 pages) from the buddy.
// Expect: one huge PMD (2 MiB of buddy memory) holding every descriptor of the section and none
// of section 41; descriptors can be written and read back through the checked paths.
TEST(Vmemmap, x86_full_section_is_one_huge_pmd) {
  Env env(kX86_64);
  ASSERT_TRUE(env.vm.populate(Pfn(0x140000), NrPages(32768), nullptr, VmemmapOrigin::Buddy));
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x140000)), VmemmapMapKind::Huge);
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x147fff)), VmemmapMapKind::Huge);
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x148000)), VmemmapMapKind::None);
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x13ffff)), VmemmapMapKind::None);
  EXPECT_EQ(env.vm.origin_of(Pfn(0x144000)), VmemmapOrigin::Buddy);
  const VmemmapStats s = env.vm.stats();
  EXPECT_EQ(s.huge_pmds, 1u);
  EXPECT_EQ(s.base_pages, 0u);
  EXPECT_EQ(s.bytes_by_origin[static_cast<int>(VmemmapOrigin::Buddy)], 2 * MiB);
  EXPECT_EQ(s.bytes_mapped(), 2 * MiB);
  init_at(env.vm, Pfn(0x144000));
  const Page p = read_ok(env.vm, Pfn(0x144000));
  EXPECT_EQ(p.refcount, 1);
  EXPECT_EQ(p.compound_head, 0xffffea0005100008ULL);
  EXPECT_EQ(env.vm.pfn_to_page(Pfn(0x144000))->refcount, 1);
  EXPECT_FALSE(env.vm.read_page(Pfn(0x148000)).has_value());
  env.expect_invariants();
}

// Scenario: x86 PSE; section 40 populated huge; descriptors at 0x143fff and 0x144200 initialised;
// free subsection 32 (pfn 0x144000, 512 pages = 32 KiB of the PMD), then [0x140000, 0x144000),
// then [0x144200, 0x148000). Expect: the first two frees only fill the freed part with 0xFD
// and keep the PMD mapped (the rest is not all 0xFD); the third makes all 2 MiB 0xFD and the PMD
// is freed, so descriptors fault (spec §4.2, §5.15).
TEST(Vmemmap, x86_partial_free_fills_fd_until_whole_pmd_unused) {
  Env env(kX86_64);
  ASSERT_TRUE(env.vm.populate(Pfn(0x140000), NrPages(32768), nullptr, VmemmapOrigin::Buddy));
  init_at(env.vm, Pfn(0x143fff));
  init_at(env.vm, Pfn(0x144200));

  env.vm.depopulate(Pfn(0x144000), NrPages(512), nullptr);
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x144000)), VmemmapMapKind::Huge);
  const Page freed = read_ok(env.vm, Pfn(0x144000));
  EXPECT_EQ(freed.flags, 0xfdfdfdfdfdfdfdfdULL);
  EXPECT_TRUE(freed.is_tail());
  EXPECT_EQ(read_ok(env.vm, Pfn(0x1441ff)).memcg_data, 0xfdfdfdfdfdfdfdfdULL);
  EXPECT_EQ(read_ok(env.vm, Pfn(0x143fff)).refcount, 1);
  EXPECT_EQ(read_ok(env.vm, Pfn(0x144200)).refcount, 1);
  EXPECT_EQ(env.vm.stats().huge_pmds, 1u);

  env.vm.depopulate(Pfn(0x140000), NrPages(0x4000), nullptr);
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x140000)), VmemmapMapKind::Huge);
  EXPECT_EQ(read_ok(env.vm, Pfn(0x143fff)).flags, 0xfdfdfdfdfdfdfdfdULL);
  EXPECT_EQ(read_ok(env.vm, Pfn(0x144200)).refcount, 1);

  env.vm.depopulate(Pfn(0x144200), NrPages(0x3e00), nullptr);
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x144200)), VmemmapMapKind::None);
  EXPECT_FALSE(env.vm.descriptor_mapped(Pfn(0x140000)));
  EXPECT_FALSE(env.vm.read_page(Pfn(0x144200)).has_value());
  env.expect_nothing_mapped();
  env.expect_invariants();
}

// Scenario: x86 PSE; a subsection of a partly freed huge PMD is populated again (what a re-add
// into a non-early section does). Expect: the huge mapping is kept (no base pages), and its
// descriptors still read 0xFD: population does not initialise them.
TEST(Vmemmap, x86_subsection_readd_inside_huge_pmd_keeps_it) {
  Env env(kX86_64);
  ASSERT_TRUE(env.vm.populate(Pfn(0x140000), NrPages(32768), nullptr, VmemmapOrigin::Buddy));
  env.vm.depopulate(Pfn(0x144000), NrPages(512), nullptr);
  ASSERT_TRUE(env.vm.populate(Pfn(0x144000), NrPages(512), nullptr, VmemmapOrigin::Buddy));
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x144000)), VmemmapMapKind::Huge);
  EXPECT_EQ(env.vm.stats().huge_pmds, 1u);
  EXPECT_EQ(env.vm.stats().base_pages, 0u);
  EXPECT_EQ(read_ok(env.vm, Pfn(0x144001)).flags, 0xfdfdfdfdfdfdfdfdULL);
  env.expect_invariants();
}

// Scenario: x86 PSE; a full section is populated twice over an existing huge PMD whose first
// descriptor holds 0xAB bytes. Expect: the mapping is shared (still one PMD) and the first
// descriptor of the request is zeroed, marking the PMD used (vmemmap_use_sub_pmd).
TEST(Vmemmap, x86_repopulate_existing_huge_pmd_marks_it_used) {
  Env env(kX86_64);
  ASSERT_TRUE(env.vm.populate(Pfn(0x140000), NrPages(32768), nullptr, VmemmapOrigin::Buddy));
  std::memset(static_cast<void*>(env.vm.pfn_to_page(Pfn(0x140000))), 0xAB, 2 * sizeof(Page));
  ASSERT_TRUE(env.vm.populate(Pfn(0x140000), NrPages(32768), nullptr, VmemmapOrigin::Buddy));
  EXPECT_EQ(env.vm.stats().huge_pmds, 1u);
  EXPECT_EQ(read_ok(env.vm, Pfn(0x140000)).flags, 0u);
  EXPECT_EQ(read_ok(env.vm, Pfn(0x140001)).flags, 0xababababababababULL);
}

// Scenario: x86 without PSE populates a full section from the buddy, then tries section 41
// with an altmap, twice. Expect: the first is 2 MiB / 4 KiB = 512 base pages; both altmap
// requests fail -ENOMEM, "vmemmap_populate: no cpu support for altmap allocations" is logged
// once, the altmap is untouched and nothing of section 41 is mapped.
TEST(Vmemmap, x86_without_pse_base_pages_and_no_altmap) {
  Env env(kX86_64, no_pse());
  ASSERT_TRUE(env.vm.populate(Pfn(0x140000), NrPages(32768), nullptr, VmemmapOrigin::Buddy));
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x140000)), VmemmapMapKind::Base);
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x147fff)), VmemmapMapKind::Base);
  EXPECT_EQ(env.vm.stats().base_pages, 512u);
  EXPECT_EQ(env.vm.stats().huge_pmds, 0u);

  VmemAltmap altmap{Pfn(0x148000), Pfn(0x150000), NrPages(2), NrPages(1024), NrPages(0), NrPages(0)};
  for (int i = 0; i < 2; ++i) {
    auto r = env.vm.populate(Pfn(0x148000), NrPages(32768), &altmap, VmemmapOrigin::Buddy);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errno::NoMem);
  }
  EXPECT_EQ(env.lines_with("vmemmap_populate: no cpu support for altmap allocations"), 1u);
  EXPECT_EQ(altmap.alloc, NrPages(0));
  EXPECT_FALSE(env.vm.descriptor_mapped(Pfn(0x148000)));
  EXPECT_EQ(env.vm.stats().base_pages, 512u);
  env.expect_invariants();
}

// Scenario: x86 PSE; subsection 32 of section 40 (512 pages, 32 KiB of memmap) is populated with
// the seed 004 pmem altmap (base 0x144000, reserve 2, free 510). Expect: the sub-section path
// ignores the altmap: 8 base pages from the buddy, altmap.alloc and align stay 0.
TEST(Vmemmap, x86_subsection_ignores_altmap) {
  Env env(kX86_64);
  VmemAltmap altmap{Pfn(0x144000), Pfn(0x145000), NrPages(2), NrPages(510), NrPages(0), NrPages(0)};
  ASSERT_TRUE(env.vm.populate(Pfn(0x144000), NrPages(512), &altmap, VmemmapOrigin::Buddy));
  EXPECT_EQ(altmap.alloc, NrPages(0));
  EXPECT_EQ(altmap.align, NrPages(0));
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x144000)), VmemmapMapKind::Base);
  EXPECT_EQ(env.vm.origin_of(Pfn(0x1441ff)), VmemmapOrigin::Buddy);
  EXPECT_EQ(env.vm.stats().base_pages, 8u);
  EXPECT_FALSE(env.vm.descriptor_mapped(Pfn(0x144200)));
  env.vm.depopulate(Pfn(0x144000), NrPages(512), &altmap);
  EXPECT_EQ(altmap.alloc, NrPages(0));
  env.expect_nothing_mapped();
}

// Scenario: x86 PSE; section 41 (pfn 0x148000) populated from an altmap with base 0x148000,
// reserve 2, free 1024. Expect: next pfn 0x148002 aligned up to 512 -> 510 pfns of padding; the
// PMD takes 512 altmap pages (alloc 512, align 510) and is recorded as altmap-backed. Freeing
// it with the altmap gives the 512 back (alloc 0; align stays 510, as vmem_altmap_free does).
TEST(Vmemmap, x86_altmap_full_section_takes_512_pages) {
  Env env(kX86_64);
  VmemAltmap altmap{Pfn(0x148000), Pfn(0x150000), NrPages(2), NrPages(1024), NrPages(0), NrPages(0)};
  ASSERT_TRUE(env.vm.populate(Pfn(0x148000), NrPages(32768), &altmap, VmemmapOrigin::Buddy));
  EXPECT_EQ(altmap.alloc, NrPages(512));
  EXPECT_EQ(altmap.align, NrPages(510));
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x148000)), VmemmapMapKind::Huge);
  EXPECT_EQ(env.vm.origin_of(Pfn(0x14ffff)), VmemmapOrigin::Altmap);
  EXPECT_EQ(env.vm.stats().bytes_by_origin[static_cast<int>(VmemmapOrigin::Altmap)], 2 * MiB);
  env.expect_invariants();
  env.vm.depopulate(Pfn(0x148000), NrPages(32768), &altmap);
  EXPECT_EQ(altmap.alloc, NrPages(0));
  EXPECT_EQ(altmap.align, NrPages(510));
  env.expect_nothing_mapped();
}

// Scenario: as above but free 1021 < 512 + 510. Expect: -ENOMEM (no fallback to RAM on x86),
// altmap unchanged, nothing mapped.
TEST(Vmemmap, x86_altmap_exhausted_fails_without_fallback) {
  Env env(kX86_64);
  VmemAltmap altmap{Pfn(0x148000), Pfn(0x150000), NrPages(2), NrPages(1021), NrPages(0), NrPages(0)};
  auto r = env.vm.populate(Pfn(0x148000), NrPages(32768), &altmap, VmemmapOrigin::Buddy);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errno::NoMem);
  EXPECT_EQ(altmap.alloc, NrPages(0));
  EXPECT_EQ(altmap.align, NrPages(0));
  env.expect_nothing_mapped();
  env.expect_invariants();
}

// Scenario: x86 PSE; subsections 0 and 1 of section 40 populated (16 base pages), subsection 1
// freed. Expect: 32 KiB subsection memmaps are whole 4 KiB pages, so the neighbour stays mapped.
TEST(Vmemmap, x86_subsection_free_leaves_neighbour) {
  Env env(kX86_64);
  ASSERT_TRUE(env.vm.populate(Pfn(0x140000), NrPages(1024), nullptr, VmemmapOrigin::Buddy));
  EXPECT_EQ(env.vm.stats().base_pages, 16u);
  env.vm.depopulate(Pfn(0x140200), NrPages(512), nullptr);
  EXPECT_TRUE(env.vm.descriptor_mapped(Pfn(0x1401ff)));
  EXPECT_FALSE(env.vm.descriptor_mapped(Pfn(0x140200)));
  EXPECT_EQ(env.vm.stats().base_pages, 8u);
  env.expect_invariants();
}

// Scenario: read and write through the checked paths where nothing is mapped.
// Expect: -EFAULT with the kernel's oops line for the descriptor's kernel address:
// x86 pfn 0x144000 -> "BUG: unable to handle page fault for address: ffffea0005100000";
// arm64 4K/39 pfn 0x800_0000 -> "Unable to handle kernel paging request at virtual address
// fffffffe00000000".
TEST(Vmemmap, read_page_unmapped_is_efault_with_oops_text) {
  Env x86(kX86_64);
  auto r = x86.vm.read_page(Pfn(0x144000));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errno::Fault);
  EXPECT_EQ(r.error().message, "BUG: unable to handle page fault for address: ffffea0005100000");
  auto w = x86.vm.writable_page(Pfn(0x144000));
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code, Errno::Fault);

  Env arm(kArm64_4K_39, seed003_memstart());
  auto a = arm.vm.read_page(Pfn(0x8000000));
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().message, "Unable to handle kernel paging request at virtual address fffffffe00000000");
}

// Scenario: populate section 40 huge, write all 2 MiB of descriptors, depopulate; the same with
// 8 base pages (one subsection) without PSE. Expect: mincore() on the host range reports every
// page resident after the writes and none after depopulation — the memory really went back —
// and touching the range would fault (checked through read_page).
TEST(Vmemmap, depopulated_memmap_holds_no_memory) {
  for (bool pse : {true, false}) {
    SCOPED_TRACE(pse ? "huge PMD" : "base pages");
    VmemmapConfig cfg;
    cfg.cpu_has_pse = pse;
    Env env(kX86_64, cfg);
    const NrPages n(pse ? 32768 : 512);
    const uint64_t bytes = n.value() * sizeof(Page);
    ASSERT_TRUE(env.vm.populate(Pfn(0x140000), n, nullptr, VmemmapOrigin::Buddy));
    void* host = const_cast<void*>(env.vm.host_address(Pfn(0x140000)));
    std::memset(host, 0x5A, bytes);
    std::vector<unsigned char> vec(bytes / 4096);
    ASSERT_EQ(mincore(host, bytes, vec.data()), 0);
    size_t resident = 0;
    for (unsigned char v : vec) resident += v & 1;
    EXPECT_EQ(resident, vec.size());

    env.vm.depopulate(Pfn(0x140000), n, nullptr);
    ASSERT_EQ(mincore(host, bytes, vec.data()), 0);
    resident = 0;
    for (unsigned char v : vec) resident += v & 1;
    EXPECT_EQ(resident, 0u);
    EXPECT_FALSE(env.vm.read_page(Pfn(0x140000)).has_value());
  }
}

// Scenario: a populated huge PMD whose first host page is made inaccessible behind the table's
// back. Expect: check_invariants reports INV-VMEMMAP-3 for it; restoring access clears it.
TEST(Vmemmap, invariant_checker_sees_host_protection) {
  Env env(kX86_64);
  ASSERT_TRUE(env.vm.populate(Pfn(0x140000), NrPages(32768), nullptr, VmemmapOrigin::Buddy));
  void* host = const_cast<void*>(env.vm.host_address(Pfn(0x140000)));
  ASSERT_EQ(mprotect(host, 4096, PROT_NONE), 0);
  InvariantReport r;
  env.vm.check_invariants(r);
  ASSERT_EQ(r.violations().size(), 1u) << r.to_string();
  EXPECT_EQ(r.violations()[0].id, "INV-VMEMMAP-3");
  ASSERT_EQ(mprotect(host, 4096, PROT_READ | PROT_WRITE), 0);
  env.expect_invariants();
}

// Scenario: 75 GiB of memmap populated with huge PMDs (600 of them, 1200 samples that must be
// readable, more than one process_vm_readv call takes), then PMD 300's last host page and PMD 500's
// first made inaccessible behind the table's back.
// Expect: clean first; then exactly those two INV-VMEMMAP-3 findings, at their addresses.
TEST(Vmemmap, host_protection_probe_covers_more_samples_than_one_batch) {
  Env env(kX86_64);
  const Pfn base(0x140000);
  ASSERT_TRUE(env.vm.populate(base, NrPages(600 * 32768), nullptr, VmemmapOrigin::Buddy));
  env.expect_invariants();
  auto pmd_page = [&](uint64_t pmd, uint64_t page) {
    return const_cast<std::byte*>(static_cast<const std::byte*>(env.vm.host_address(base + NrPages(pmd * 32768)))) +
           page * 4096;
  };
  ASSERT_EQ(mprotect(pmd_page(300, 511), 4096, PROT_NONE), 0);
  ASSERT_EQ(mprotect(pmd_page(500, 0), 4096, PROT_NONE), 0);
  InvariantReport r;
  env.vm.check_invariants(r);
  ASSERT_EQ(r.violations().size(), 2u) << r.to_string();
  const uint64_t k300 = env.vm.page_addr(base + NrPages(300 * 32768)).value() + 511 * 4096;
  const uint64_t k500 = env.vm.page_addr(base + NrPages(500 * 32768)).value();
  EXPECT_NE(r.to_string().find(fmt::format("{:#x}", k300)), std::string::npos) << r.to_string();
  EXPECT_NE(r.to_string().find(fmt::format("{:#x}", k500)), std::string::npos) << r.to_string();
  ASSERT_EQ(mprotect(pmd_page(300, 511), 4096, PROT_READ | PROT_WRITE), 0);
  ASSERT_EQ(mprotect(pmd_page(500, 0), 4096, PROT_READ | PROT_WRITE), 0);
  env.expect_invariants();
}

// Scenario: misaligned populate requests (pfn 0x140001; 100 pages). Expect: -ENOMEM each time
// and one WARN from __populate_section_memmap (WARN_ON_ONCE); nothing mapped.
TEST(Vmemmap, misaligned_populate_warns_once) {
  Env env(kX86_64);
  EXPECT_EQ(env.vm.populate(Pfn(0x140001), NrPages(512), nullptr, VmemmapOrigin::Buddy).error().code, Errno::NoMem);
  EXPECT_EQ(env.vm.populate(Pfn(0x140000), NrPages(100), nullptr, VmemmapOrigin::Buddy).error().code, Errno::NoMem);
  EXPECT_EQ(env.lines_with("WARNING: at mm/sparse-vmemmap.c __populate_section_memmap"), 1u);
  EXPECT_EQ(env.log.warn_count(), 1u);
  env.expect_nothing_mapped();
}

// Scenario: populate asked for altmap- or shared-origin RAM. Expect: -EINVAL, nothing mapped.
TEST(Vmemmap, ram_origin_must_be_boot_or_buddy) {
  Env env(kX86_64);
  EXPECT_EQ(env.vm.populate(Pfn(0x140000), NrPages(512), nullptr, VmemmapOrigin::Altmap).error().code, Errno::Inval);
  EXPECT_EQ(env.vm.populate(Pfn(0x140000), NrPages(512), nullptr, VmemmapOrigin::Shared).error().code, Errno::Inval);
  env.expect_nothing_mapped();
}

// ---------------------------------------------------------------------------------------------
// arm64

// Scenario: seed 003 on arm64 4K/39, memstart 0x80_0000_0000: a 256 MiB device-private chunk at
// 0xfffff0000000 = 2 sections (pfn 0xfffff0000, 0xfffff8000), one populate per section, then one
// free per section. Expect: 2 WARNs from vmemmap_populate and 2 from vmemmap_free (one per
// call, spec §8); the descriptors live at the wrapped address 0x3fbffc00000, are mapped (a 4K
// full section is a PMD block) and writable; afterwards nothing is mapped.
TEST(Vmemmap, arm64_device_private_outside_window_warns_per_call) {
  Env env(kArm64_4K_39, seed003_memstart());
  for (uint64_t pfn : {0xfffff0000ULL, 0xfffff8000ULL})
    ASSERT_TRUE(env.vm.populate(Pfn(pfn), NrPages(32768), nullptr, VmemmapOrigin::Buddy));
  EXPECT_EQ(env.lines_with(kArmWarnPopulate), 2u);
  EXPECT_EQ(env.log.warn_count(), 2u);
  EXPECT_EQ(env.vm.mapping_of(Pfn(0xfffff0000)), VmemmapMapKind::Huge);
  EXPECT_EQ(env.vm.mapping_of(Pfn(0xfffffffff)), VmemmapMapKind::Huge);
  EXPECT_EQ(env.vm.stats().huge_pmds, 2u);
  init_at(env.vm, Pfn(0xfffff0000));
  const Page p = read_ok(env.vm, Pfn(0xfffff0000));
  EXPECT_EQ(p.compound_head, 0x3fbffc00008ULL);
  EXPECT_EQ(env.vm.page_to_pfn(env.vm.pfn_to_page(Pfn(0xfffff8000))), Pfn(0xfffff8000));
  env.expect_invariants();

  for (uint64_t pfn : {0xfffff0000ULL, 0xfffff8000ULL}) env.vm.depopulate(Pfn(pfn), NrPages(32768), nullptr);
  EXPECT_EQ(env.lines_with(kArmWarnFree), 2u);
  EXPECT_EQ(env.log.warn_count(), 4u);
  EXPECT_FALSE(env.vm.descriptor_mapped(Pfn(0xfffff0000)));
  env.expect_nothing_mapped();
  env.expect_invariants();
}

// Scenario: the same first section under Ard's rule (behaviour "seed003-hard-error").
// Expect: -ERANGE naming the window, no WARN, no mapping and no host reservation; the matching
// free does nothing.
TEST(Vmemmap, arm64_hard_error_refuses_out_of_window) {
  const Behaviour* hard = find_behaviour("seed003-hard-error");
  ASSERT_NE(hard, nullptr);
  Env env(kArm64_4K_39, seed003_memstart(), *hard);
  auto r = env.vm.populate(Pfn(0xfffff0000), NrPages(32768), nullptr, VmemmapOrigin::Buddy);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errno::Range);
  EXPECT_NE(r.error().message.find("outside the vmemmap window [0xfffffffe00000000-0xfffffffeffffffff]"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(env.log.warn_count(), 0u);
  EXPECT_EQ(env.vm.stats().reserved_chunks, 0u);
  env.vm.depopulate(Pfn(0xfffff0000), NrPages(32768), nullptr);
  EXPECT_EQ(env.log.warn_count(), 0u);
  env.expect_nothing_mapped();
  // In-window ranges are unaffected.
  EXPECT_TRUE(env.vm.populate(Pfn(0x8000000), NrPages(32768), nullptr, VmemmapOrigin::Buddy));
}

// Scenario: arm64 4K, memstart 0, section 1 (pfn 0x8000) with an altmap whose next pfn 0x8001
// makes a 2 MiB block need 511 pfns of padding: base 0x8000, reserve 1, free 600.
// Expect: 512 + 511 > 599, so the block allocation fails and the PMD falls back to base pages
// that still come from the altmap, one pfn each (alloc 512, align 0); freeing with the altmap
// returns all 512 (arm64 frees base pages to the altmap).
TEST(Vmemmap, arm64_block_alloc_failure_falls_back_to_altmap_base_pages) {
  Env env(kArm64_4K_48);
  VmemAltmap altmap{Pfn(0x8000), Pfn(0x10000), NrPages(1), NrPages(600), NrPages(0), NrPages(0)};
  ASSERT_TRUE(env.vm.populate(Pfn(0x8000), NrPages(32768), &altmap, VmemmapOrigin::Buddy));
  EXPECT_EQ(env.vm.mapping_of(Pfn(0x8000)), VmemmapMapKind::Base);
  EXPECT_EQ(env.vm.origin_of(Pfn(0xffff)), VmemmapOrigin::Altmap);
  EXPECT_EQ(env.vm.stats().base_pages, 512u);
  EXPECT_EQ(altmap.alloc, NrPages(512));
  EXPECT_EQ(altmap.align, NrPages(0));
  env.expect_invariants();
  env.vm.depopulate(Pfn(0x8000), NrPages(32768), &altmap);
  EXPECT_EQ(altmap.alloc, NrPages(0));
  env.expect_nothing_mapped();
}

// Scenario: as above but free 300: 300 base pages succeed, the 301st fails.
// Expect: -ENOMEM and the call takes back everything it created: no mapping, alloc 0.
TEST(Vmemmap, failed_populate_rolls_back) {
  Env env(kArm64_4K_48);
  VmemAltmap altmap{Pfn(0x8000), Pfn(0x10000), NrPages(1), NrPages(300), NrPages(0), NrPages(0)};
  auto r = env.vm.populate(Pfn(0x8000), NrPages(32768), &altmap, VmemmapOrigin::Buddy);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errno::NoMem);
  EXPECT_EQ(altmap.alloc, NrPages(0));
  EXPECT_FALSE(env.vm.descriptor_mapped(Pfn(0x8000)));
  env.expect_nothing_mapped();
  env.expect_invariants();
}

// Scenario: arm64 4K, one subsection (512 pages) populated with an altmap (base 0, free 100).
// Expect: unlike x86 the sub-section path uses the altmap: 8 base pages, alloc 8.
TEST(Vmemmap, arm64_subsection_uses_altmap) {
  Env env(kArm64_4K_48);
  VmemAltmap altmap{Pfn(0), Pfn(0x8000), NrPages(0), NrPages(100), NrPages(0), NrPages(0)};
  ASSERT_TRUE(env.vm.populate(Pfn(0), NrPages(512), &altmap, VmemmapOrigin::Buddy));
  EXPECT_EQ(env.vm.stats().base_pages, 8u);
  EXPECT_EQ(altmap.alloc, NrPages(8));
  EXPECT_EQ(env.vm.origin_of(Pfn(0)), VmemmapOrigin::Altmap);
}

// Scenario: arm64 16K pages: subsections 0 and 1 (128 pages each, 8 KiB of memmap = half a 16K
// vmemmap page) populated by two calls, then subsection 1 freed (spec §9.13).
// Expect: both share one vmemmap page; freeing subsection 1 frees that page, so subsection 0's
// descriptors are gone too.
TEST(Vmemmap, arm64_16k_subsection_free_frees_shared_page) {
  Env env(kArm64_16K_47);
  ASSERT_TRUE(env.vm.populate(Pfn(0), NrPages(128), nullptr, VmemmapOrigin::Buddy));
  ASSERT_TRUE(env.vm.populate(Pfn(128), NrPages(128), nullptr, VmemmapOrigin::Buddy));
  EXPECT_EQ(env.vm.stats().base_pages, 1u);
  init_at(env.vm, Pfn(5));
  env.vm.depopulate(Pfn(128), NrPages(128), nullptr);
  EXPECT_FALSE(env.vm.descriptor_mapped(Pfn(5)));
  EXPECT_FALSE(env.vm.read_page(Pfn(5)).has_value());
  env.expect_nothing_mapped();
  env.expect_invariants();
}

// Scenario: arm64 64K pages: the 32 subsections of pfns [0, 1024) (32 pages = 2 KiB of memmap
// each) populated one by one; subsection 5 freed. Expect: all 32 share one 64K vmemmap page,
// and freeing one subsection unmaps the descriptors of all 32.
TEST(Vmemmap, arm64_64k_subsection_free_frees_shared_page) {
  Env env(kArm64_64K_42);
  for (uint64_t i = 0; i < 32; ++i)
    ASSERT_TRUE(env.vm.populate(Pfn(i * 32), NrPages(32), nullptr, VmemmapOrigin::Buddy));
  EXPECT_EQ(env.vm.stats().base_pages, 1u);
  env.vm.depopulate(Pfn(5 * 32), NrPages(32), nullptr);
  EXPECT_FALSE(env.vm.descriptor_mapped(Pfn(0)));
  EXPECT_FALSE(env.vm.descriptor_mapped(Pfn(1023)));
  env.expect_nothing_mapped();
}

// ---------------------------------------------------------------------------------------------
// Every profile and behaviour

struct ProfileCase {
  const char* name;
  bool high_in_window;  // is the last section below 2^MAX_PHYSMEM_BITS covered by the window?
  bool huge;            // is a full section one PMD (else base pages)?
  uint64_t maps_per_section;
};
// Last section: pfn 2^(MAX_PHYSMEM_BITS - PAGE_SHIFT) - PAGES_PER_SECTION. Window capacity in
// pfns = VMEMMAP_SIZE / 64 (memstart 0): x86 2^40/64 = 2^34 (physmem 2^34 pfns: covered); la57
// 2^43 >= 2^40; arm64 4K/39 2^26 < 2^36; 4K/48 2^35 < 2^36; 16K/47 2^32 < 2^34; 64K/42 2^25 <
// 2^32; 64K/52 2^36 - 2^31 < 2^36 - 2^13. A section's memmap: 2 MiB = 1 PMD (x86, arm64 4K), or
// 512 KiB = 32 pages of 16K / 8 pages of 64K.
const ProfileCase kProfileCases[] = {
    {"x86-64", true, true, 1},         {"x86-64-la57", true, true, 1},    {"arm64-4k-39", false, true, 1},
    {"arm64-4k-48", false, true, 1},   {"arm64-16k-47", false, false, 32}, {"arm64-64k-42", false, false, 8},
    {"arm64-64k-52", false, false, 8},
};

class VmemmapEveryProfile : public ::testing::TestWithParam<std::tuple<ProfileCase, const Behaviour*>> {};

// Scenario: every profile under every named behaviour populates the section at pfn 0 and the
// last section of the physical address space, writes their first and last descriptors, frees
// both. Expect: per the table above; arm64 WARNs once per call for the out-of-window high
// section (populate + free = 2), x86 never; under the hard-error behaviour that section is
// refused with -ERANGE instead; exactly the two touched 1 GiB chunks get reserved.
TEST_P(VmemmapEveryProfile, populate_and_free_low_and_high_section) {
  const auto& [pc, behaviour] = GetParam();
  const ArchProfile* arch = find_arch_profile(pc.name);
  ASSERT_NE(arch, nullptr);
  Env env(*arch, {}, *behaviour);
  const NrPages n = arch->pages_per_section();
  const Pfn low(0);
  const Pfn high(arch->max_pfn_limit() - n.value());
  const bool refused = !pc.high_in_window && behaviour->out_of_window == OutOfWindowRule::HardError;
  EXPECT_EQ(env.vm.in_window(high, n), pc.high_in_window);

  ASSERT_TRUE(env.vm.populate(low, n, nullptr, VmemmapOrigin::Boot));
  auto r = env.vm.populate(high, n, nullptr, VmemmapOrigin::Buddy);
  ASSERT_EQ(r.has_value(), !refused);
  if (refused) EXPECT_EQ(r.error().code, Errno::Range);
  const VmemmapStats s = env.vm.stats();
  const uint64_t sections = refused ? 1 : 2;
  EXPECT_EQ(pc.huge ? s.huge_pmds : s.base_pages, sections * pc.maps_per_section);
  EXPECT_EQ(s.bytes_mapped(), sections * arch->section_memmap_bytes());
  EXPECT_EQ(s.bytes_by_origin[static_cast<int>(VmemmapOrigin::Boot)], arch->section_memmap_bytes());

  std::vector<Pfn> pfns{low, low + (n - NrPages(1))};
  if (!refused) pfns.insert(pfns.end(), {high, high + (n - NrPages(1))});
  for (Pfn p : pfns) {
    SCOPED_TRACE(p.value());
    EXPECT_EQ(env.vm.mapping_of(p), pc.huge ? VmemmapMapKind::Huge : VmemmapMapKind::Base);
    init_at(env.vm, p);
    EXPECT_EQ(read_ok(env.vm, p).compound_head, env.vm.page_addr(p).value() + 8);
    EXPECT_EQ(env.vm.page_to_pfn(env.vm.pfn_to_page(p)), p);
  }
  env.expect_invariants();

  env.vm.depopulate(low, n, nullptr);
  env.vm.depopulate(high, n, nullptr);
  for (Pfn p : pfns) EXPECT_FALSE(env.vm.descriptor_mapped(p));
  env.expect_nothing_mapped();
  env.expect_invariants();
  const bool warns = arch->family == ArchFamily::Arm64 && !pc.high_in_window && !refused;
  EXPECT_EQ(env.log.warn_count(), warns ? 2u : 0u);
  EXPECT_EQ(env.vm.stats().reserved_chunks, refused ? 1u : 2u);
}

INSTANTIATE_TEST_SUITE_P(Vmemmap, VmemmapEveryProfile,
                         ::testing::Combine(::testing::ValuesIn(kProfileCases), ::testing::ValuesIn([] {
                                              std::vector<const Behaviour*> v;
                                              for (const Behaviour& b : all_behaviours()) v.push_back(&b);
                                              return v;
                                            }())),
                         [](const auto& info) {
                           std::string s = std::string(std::get<0>(info.param).name) + "_" +
                                           std::string(std::get<1>(info.param)->name);
                           for (char& c : s)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

// ---------------------------------------------------------------------------------------------
// Concurrency

// Scenario: two reader threads call descriptor_mapped() and read_page() on section 40 and its
// first subsection while the writer populates and depopulates them (huge PMD, and base pages
// without PSE) 50 times, waiting after each populate until a reader got in. Expect: no fault,
// reads do succeed, each sees the zero bytes a fresh mapping holds (or -EFAULT), and the final
// state is empty and consistent (run under TSan too).
TEST(Vmemmap, concurrent_readers_during_populate_depopulate) {
  for (bool pse : {true, false}) {
    SCOPED_TRACE(pse ? "huge" : "base");
    VmemmapConfig cfg;
    cfg.cpu_has_pse = pse;
    Env env(kX86_64, cfg);
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> reads{0}, bad{0};
    auto reader = [&](uint64_t salt) {
      uint64_t i = salt;
      while (!stop.load(std::memory_order_relaxed)) {
        // Odd steps stay in the first subsection so the base-page phase is hit as often.
        const Pfn pfn(0x140000 + (i * 7919) % (i % 2 ? 512 : 32768));
        ++i;
        const bool mapped = env.vm.descriptor_mapped(pfn);
        auto p = env.vm.read_page(pfn);
        if (p) {
          reads.fetch_add(1, std::memory_order_relaxed);
          if (p->flags != 0 || p->refcount != 0) bad.fetch_add(1, std::memory_order_relaxed);
        } else if (p.error().code != Errno::Fault) {
          bad.fetch_add(1, std::memory_order_relaxed);
        }
        (void)mapped;
      }
    };
    std::thread r1(reader, 1), r2(reader, 2);
    // Keep each mapping up until a reader has used it (bounded, so a starved reader cannot hang us).
    auto let_readers_in = [&] {
      const uint64_t before = reads.load();
      for (int k = 0; k < 100000 && reads.load() == before; ++k) std::this_thread::yield();
    };
    for (int round = 0; round < 50; ++round) {
      ASSERT_TRUE(env.vm.populate(Pfn(0x140000), NrPages(32768), nullptr, VmemmapOrigin::Buddy));
      let_readers_in();
      env.vm.depopulate(Pfn(0x140000), NrPages(32768), nullptr);
      ASSERT_TRUE(env.vm.populate(Pfn(0x140000), NrPages(512), nullptr, VmemmapOrigin::Buddy));
      let_readers_in();
      env.vm.depopulate(Pfn(0x140000), NrPages(512), nullptr);
    }
    stop = true;
    r1.join();
    r2.join();
    EXPECT_GT(reads.load(), 0u);
    EXPECT_EQ(bad.load(), 0u);
    env.expect_nothing_mapped();
    env.expect_invariants();
  }
}

// ---------------------------------------------------------------------------------------------
// VmemAltmap

// Scenario: the seed 004 pmem altmap (spec §10 A, §2.8): base 0x144000, reserve 2, free 510.
// Expect: 512 pages need padding to 0x144200 (510) and 512 + 510 > 510 -> -ENOMEM, unchanged;
// 1 page -> 0x144002 (alloc 1); 2 pages align to 2: next 0x144003 -> padding 1 -> 0x144004
// (alloc 3, align 1); freeing 2 -> alloc 1; freeing 5 stops at 0.
TEST(VmemmapAltmap, alloc_aligns_to_lowest_set_bit) {
  VmemAltmap a{Pfn(0x144000), Pfn(0x145000), NrPages(2), NrPages(510), NrPages(0), NrPages(0)};
  EXPECT_EQ(a.offset(), NrPages(512));
  auto big = a.alloc_pages(NrPages(512));
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code, Errno::NoMem);
  EXPECT_EQ(a.alloc, NrPages(0));
  EXPECT_EQ(a.align, NrPages(0));
  EXPECT_EQ(a.alloc_pages(NrPages(1)).value(), Pfn(0x144002));
  EXPECT_EQ(a.alloc_pages(NrPages(2)).value(), Pfn(0x144004));
  EXPECT_EQ(a.alloc, NrPages(3));
  EXPECT_EQ(a.align, NrPages(1));
  EXPECT_EQ(a.next_pfn(), Pfn(0x144006));
  a.free_pages(NrPages(2));
  EXPECT_EQ(a.alloc, NrPages(1));
  a.free_pages(NrPages(5));
  EXPECT_EQ(a.alloc, NrPages(0));
  EXPECT_EQ(a.alloc_pages(NrPages(0)).error().code, Errno::Inval);
}

// Scenario: free 10, used 4 + 2: a request of 4 (align 4 from next 0x106 -> padding 2) needs 6 >
// 4 left; a request of 4 with exactly 6 left fits. Expect: the boundary "request + padding <=
// free - (alloc + align)" is inclusive.
TEST(VmemmapAltmap, exhaustion_boundary) {
  VmemAltmap a{.base_pfn = Pfn(0x100), .end_pfn = Pfn(0x200), .reserve = NrPages(0), .free = NrPages(10),
               .align = NrPages(2), .alloc = NrPages(4)};
  EXPECT_FALSE(a.alloc_pages(NrPages(4)).has_value());
  a.free = NrPages(12);
  EXPECT_EQ(a.alloc_pages(NrPages(4)).value(), Pfn(0x108));
  EXPECT_EQ(a.alloc, NrPages(8));
  EXPECT_EQ(a.align, NrPages(4));
}

// Scenario: altmap states checked against INV-ALTMAP-1. Expect: alloc + align == free is fine;
// alloc + align > free is reported, and alloc_pages then refuses instead of wrapping.
TEST(VmemmapAltmap, invariant) {
  VmemAltmap a{.base_pfn = Pfn(0), .end_pfn = Pfn(0x1000), .reserve = NrPages(0), .free = NrPages(512),
               .align = NrPages(2), .alloc = NrPages(510)};
  InvariantReport ok;
  a.check_invariants(ok);
  EXPECT_TRUE(ok.ok());
  a.alloc = NrPages(511);
  InvariantReport bad;
  a.check_invariants(bad);
  ASSERT_EQ(bad.violations().size(), 1u);
  EXPECT_EQ(bad.violations()[0].id, "INV-ALTMAP-1");
  EXPECT_EQ(a.alloc_pages(NrPages(1)).error().code, Errno::NoMem);
}

}  // namespace
}  // namespace sparsemem
