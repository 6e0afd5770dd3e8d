// Tests for include/sparsemem/map_view.h: the text and SVG maps of a booted machine, zooming into
// one section, hot-added sections, the pfn-kind summary, range parsing, colour and purity.
#include "sparsemem/map_view.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "sparsemem/platform.h"
#include "support/machines.h"

namespace sparsemem {
namespace {

// The a_baseline machine, booted from the trace's own QEMU and kernel command lines. Its
// /proc/iomem (trace step 0) has System RAM 00001000-0009fbff, 00100000-bffdefff and
// 100000000-143ffffff: sections 0-23 and 32-40 hold memory, section 40 only up to 0x143ffffff.
std::unique_ptr<Machine> boot_a_baseline() {
  const nlohmann::json t = testing::load_trace("a_baseline");
  return testing::boot_qemu_or_die(t["qemu_cmdline"], t["guest_cmdline"].get<std::string>());
}

struct SectionLine {
  std::string state;
  std::string subsections;
  std::string vmemmap;
};

// Reads the section table of a text map: one entry per section a line covers, keyed by section.
// Only sections below `limit` are expanded (runs of absent sections reach 2^19 on x86).
std::map<uint64_t, SectionLine> section_lines(const std::string& text, uint64_t limit, uint64_t* last_section) {
  std::map<uint64_t, SectionLine> out;
  static const std::regex line(
      R"(^  (\d+)(?:-(\d+))?\s+0x[0-9a-f]+-0x[0-9a-f]+\s+\S+\s+([-PMOET]{5})\s+(\S+)\s+(.*?)\s{2,}\S)");
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (!std::regex_search(l, m, line)) continue;
    const uint64_t first = std::stoull(m[1]);
    const uint64_t last = m[2].matched ? std::stoull(m[2]) : first;
    if (last_section) *last_section = last;
    for (uint64_t s = first; s <= last && s < limit; ++s) out[s] = SectionLine{m[3], m[4], m[5]};
  }
  return out;
}

bool has_line(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

// Scenario: the a_baseline machine (spec §10 A boot part; iomem from the trace), whole address space.
// Expect: sections 0-23 and 32-40 present|memmap|online|early with every subsection but section 40
// (32 of 64: subsections 0-31 populated, 32-63 empty, drawn as a map); sections 24-31 (the PCI hole)
// and 41 up to the last section of the 46-bit space (524287) have no section; the boot memmap is
// one 2 MiB PMD per section.
TEST(MapViewText, a_baseline_sections_runs_and_holes) {
  auto m = boot_a_baseline();
  ASSERT_TRUE(m);
  const std::string text = render_map_text(*m, MapOptions{});
  uint64_t last = 0;
  const auto lines = section_lines(text, 64, &last);
  EXPECT_EQ(last, 524287u);
  for (uint64_t s = 0; s < 64; ++s) {
    SCOPED_TRACE("section " + std::to_string(s));
    ASSERT_TRUE(lines.count(s));
    const SectionLine& l = lines.at(s);
    if (s <= 23 || (s >= 32 && s <= 40)) {
      EXPECT_EQ(l.state, "PMOE-");
      EXPECT_EQ(l.subsections, s == 40 ? "32/64" : "64/64");
      EXPECT_EQ(l.vmemmap, "2M huge [boot]");
    } else {
      EXPECT_EQ(l.state, "-----");
      EXPECT_EQ(l.subsections, "-");
    }
  }
  // Runs are compressed: 0-23 on one line, 32-39 on one line, the mixed 40 on its own.
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\n  0-23 )")));
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\n  32-39 )")));
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\n  40 )")));
  EXPECT_TRUE(has_line(text, "subsections 0-31 populated, 32-63 empty"));
  EXPECT_TRUE(has_line(text, "[" + std::string(32, '#') + std::string(32, '.') + "]"));
  // Zones of the trace (step 0): DMA from pfn 0x1 (4095 spanned), DMA32 from 0x1000, Normal from 0x100000.
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(DMA +0x1000-0xffffff +start_pfn 0x1 +spanned 4095 +present 3998)")));
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(DMA32 .*start_pfn 0x1000 +spanned 1044480 +present 782303)")));
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(Normal .*start_pfn 0x100000 +spanned 278528 +present 278528)")));
  // Blocks (trace: memory0..memory23 and memory32..memory40, all online) and iomem owners.
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\n  0-23 .*DMA/DMA32 +memory0-23 online +Reserved, System RAM)")));
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\n  40 .*Normal +memory40 online +System RAM)")));
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << "plain text by default";
  testing::expect_clean(*m);
}

// Scenario: zoom into section 40 of a_baseline, by "section 40" and by its physical range.
// Expect: 64 subsection lines; 0-31 populated with pfn_to_online_page a page, 32-63 empty with
// NULL, pfn_valid 1 for all (early section, spec §10 A); subsection 32's struct page (pfn 0x144000)
// at 0xffffea0005100000; each subsection's 32 KiB of memmap inside the boot huge mapping.
TEST(MapViewText, zoom_into_section_40_lists_every_subsection) {
  auto m = boot_a_baseline();
  ASSERT_TRUE(m);
  auto by_nr = parse_map_range("section 40", m->arch());
  auto by_size = parse_map_range("0x140000000+128M", m->arch());
  auto by_end = parse_map_range("0x140000000-0x147ffffff", m->arch());
  ASSERT_TRUE(by_nr && by_size && by_end);
  EXPECT_EQ(*by_nr, *by_size);
  EXPECT_EQ(*by_nr, *by_end);
  MapOptions o;
  o.range = *by_nr;
  const MapModel model = build_map_model(*m, o);
  ASSERT_EQ(model.runs.size(), 1u);
  EXPECT_EQ(model.runs[0].first, SectionNr(40));
  ASSERT_EQ(model.subsections.size(), 64u);
  const std::string text = render_map_text(*m, o);
  static const std::regex sub(R"(^  (\d+) +0x([0-9a-f]+)-0x[0-9a-f]+ +0x[0-9a-f]+-0x[0-9a-f]+ +(yes|no) +([01]) +(page|NULL) +0x([0-9a-f]+) +(.*)$)");
  std::istringstream in(text);
  unsigned seen = 0;
  for (std::string l; std::getline(in, l);) {
    std::smatch mt;
    if (!std::regex_match(l, mt, sub)) continue;
    const unsigned i = static_cast<unsigned>(std::stoul(mt[1]));
    SCOPED_TRACE(l);
    EXPECT_EQ(i, seen);
    EXPECT_EQ(std::stoull(mt[2], nullptr, 16), 0x140000u + i * 512u);
    EXPECT_EQ(mt[3], i < 32 ? "yes" : "no");
    EXPECT_EQ(mt[4], "1");
    EXPECT_EQ(mt[5], i < 32 ? "page" : "NULL");
    EXPECT_EQ(std::stoull(mt[6], nullptr, 16), 0xffffea0005000000ULL + i * 0x8000ULL);
    EXPECT_EQ(mt[7], "32K huge [boot]");
    ++seen;
  }
  EXPECT_EQ(seen, 64u);
  EXPECT_TRUE(has_line(text, "0xffffea0005100000"));
  // A range inside one section zooms too, listing only the subsections it touches.
  o.range = PhysRange{PhysAddr(0x143f00000), PhysAddr(0x1441fffff)};
  const MapModel part = build_map_model(*m, o);
  ASSERT_EQ(part.subsections.size(), 2u);
  EXPECT_EQ(part.subsections[0].idx, SubsectionIdx(31));
  EXPECT_TRUE(part.subsections[0].populated && part.subsections[0].first_pfn_online);
  EXPECT_FALSE(part.subsections[1].populated || part.subsections[1].first_pfn_online);
}

// Scenario: add_pages of one whole section at 0x180000000 (pfn 0x180000, section 48) on the pc
// machine, as memremap_pages does (spec §4.4). Expect: section 48 present with a memmap, neither
// online nor early (spec §12.1 add row), every subsection set, its memmap one 2 MiB huge mapping
// from the page allocator (spec §1.2: PMD maps for full-section requests with PSE); the
// neighbours stay absent. Rendering changes nothing.
TEST(MapViewText, add_pages_section_is_present_offline_and_huge_mapped) {
  MachineConfig cfg;
  cfg.memory = testing::pc_4160m_map();
  auto m = testing::boot_or_die(cfg);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_pages(0, PfnRange{Pfn(0x180000), NrPages(32768)}));
  const VmemmapStats before = m->vmemmap().stats();
  const std::string text = render_map_text(*m, MapOptions{});
  const auto lines = section_lines(text, 64, nullptr);
  ASSERT_TRUE(lines.count(48));
  EXPECT_EQ(lines.at(48).state, "PM---");
  EXPECT_EQ(lines.at(48).subsections, "64/64");
  EXPECT_EQ(lines.at(48).vmemmap, "2M huge [buddy]");
  EXPECT_EQ(lines.at(47).state, "-----");
  EXPECT_EQ(lines.at(49).state, "-----");
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\n  48 +0x0*180000000-0x0*187ffffff )")));
  // Pure: a second rendering is identical and the vmemmap and invariants are untouched.
  EXPECT_EQ(render_map_text(*m, MapOptions{}), text);
  (void)render_map_svg(*m, MapOptions{});
  (void)summarize_pfn_queries(*m);
  const VmemmapStats after = m->vmemmap().stats();
  EXPECT_EQ(after.base_pages, before.base_pages);
  EXPECT_EQ(after.huge_pmds, before.huge_pmds);
  EXPECT_EQ(after.bytes_mapped(), before.bytes_mapped());
  testing::expect_clean(*m);

  // The pfn summary sees it as a hot-added section that is not online: valid, no online page.
  const PfnQuerySummary sum = summarize_pfn_queries(*m);
  bool found = false;
  for (const PfnKindSample& k : sum.kinds)
    if (k.kind == PfnKind::HotplugOffline) {
      found = true;
      EXPECT_EQ(k.sample, Pfn(0x180000));
      EXPECT_EQ(k.pages, NrPages(32768));
      EXPECT_TRUE(k.pfn_valid);
      EXPECT_FALSE(k.online);
      EXPECT_EQ(k.mapping, VmemmapMapKind::Huge);
    }
  EXPECT_TRUE(found);
}

// Scenario: the pfn queries of a_baseline by kind (spec §12.2, §10 A). Expect: RAM in an early
// section from pfn 0x1 (the trace's first System RAM line, 00001000) with as many pages as the
// trace's zones have present (3998 + 782303 + 278528); the whole-hole subsection 32 of section 40
// sampled at 0x144000: valid, NULL, struct page 0xffffea0005100000; the PCI hole from pfn 0xc0000
// (section 24) and the first pfn above RAM's last section (0x148000) not valid. Counts: 33 early
// sections are valid throughout (33 * 32768), and online pages are every populated subsection:
// sections 0-23 and 32-39 whole, plus half of 40.
TEST(MapViewPfnSummary, a_baseline_kinds_and_counts) {
  auto m = boot_a_baseline();
  ASSERT_TRUE(m);
  const PfnQuerySummary sum = summarize_pfn_queries(*m);
  std::map<PfnKind, PfnKindSample> k;
  for (const PfnKindSample& s : sum.kinds) k[s.kind] = s;
  ASSERT_TRUE(k.count(PfnKind::EarlyRam) && k.count(PfnKind::EarlyHoleSubsection) && k.count(PfnKind::NoSection) &&
              k.count(PfnKind::BeyondRam) && k.count(PfnKind::BeyondPhysLimit));
  EXPECT_EQ(k[PfnKind::EarlyRam].sample, Pfn(0x1));
  EXPECT_EQ(k[PfnKind::EarlyRam].pages, NrPages(3998 + 782303 + 278528));
  EXPECT_TRUE(k[PfnKind::EarlyRam].pfn_valid && k[PfnKind::EarlyRam].online);
  EXPECT_EQ(k[PfnKind::EarlyHoleSubsection].sample, Pfn(0x144000));
  EXPECT_EQ(k[PfnKind::EarlyHoleSubsection].pages, NrPages(32 * 512));
  EXPECT_TRUE(k[PfnKind::EarlyHoleSubsection].pfn_valid);
  EXPECT_FALSE(k[PfnKind::EarlyHoleSubsection].online);
  EXPECT_EQ(k[PfnKind::EarlyHoleSubsection].page_addr, VmemmapAddr(0xffffea0005100000ULL));
  EXPECT_EQ(k[PfnKind::EarlyHoleSubsection].mapping, VmemmapMapKind::Huge);
  EXPECT_EQ(k[PfnKind::NoSection].sample, Pfn(0xc0000));
  EXPECT_EQ(k[PfnKind::NoSection].pages, NrPages(8 * 32768));
  EXPECT_FALSE(k[PfnKind::NoSection].pfn_valid || k[PfnKind::NoSection].online);
  EXPECT_EQ(k[PfnKind::BeyondRam].sample, Pfn(0x148000));
  EXPECT_FALSE(k[PfnKind::BeyondRam].pfn_valid);
  EXPECT_EQ(k[PfnKind::BeyondPhysLimit].sample, Pfn(uint64_t{1} << 34));
  EXPECT_FALSE(k[PfnKind::BeyondPhysLimit].pfn_valid);
  EXPECT_TRUE(sum.exact);
  EXPECT_EQ(sum.valid_pfns, NrPages(33 * 32768));
  EXPECT_EQ(sum.online_pfns, NrPages(32 * 32768 + 32 * 512));
  const std::string text = render_pfn_summary(*m, sum);
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(hole subsection of an early section +16384 +0x144000 +1 +NULL +0xffffea0005100000)")));
}

// Scenario: the SVG of a_baseline (whole space and zoomed), and of a machine whose iomem names
// carry XML metacharacters. Expect: an XML document with one <svg> root, escaped text, a legend,
// the same runs as the text form; rsvg-convert (librsvg) renders each to a non-empty PNG.
TEST(MapViewSvg, well_formed_and_rendered_by_rsvg) {
  if (std::system("command -v rsvg-convert >/dev/null 2>&1") != 0) GTEST_SKIP() << "rsvg-convert not installed";
  auto m = boot_a_baseline();
  ASSERT_TRUE(m);
  MachineConfig odd;
  odd.memory = testing::pc_4160m_map();
  odd.iomem = {{PhysAddr(0x1000), PhysAddr(0x9efff), "System RAM & <friends> \"quoted\"", 0, IORESOURCE_SYSTEM_RAM}};
  auto m2 = testing::boot_or_die(odd);
  ASSERT_TRUE(m2);
  MapOptions zoom;
  zoom.range = *parse_map_range("section 40", m->arch());
  const std::string dir = ::testing::TempDir();
  int n = 0;
  for (const auto& [machine, opts] : {std::pair{m.get(), MapOptions{}}, std::pair{m.get(), zoom},
                                       std::pair{m2.get(), MapOptions{}}}) {
    const std::string svg = render_map_svg(*machine, opts);
    SCOPED_TRACE(n);
    EXPECT_EQ(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
    EXPECT_TRUE(svg.ends_with("</svg>\n"));
    EXPECT_TRUE(has_line(svg, ">legend:</text>"));
    EXPECT_FALSE(has_line(svg, "<script")) << "self-contained and static";
    EXPECT_FALSE(has_line(svg, "href")) << "no external references";
    size_t open = 0, close = 0;
    for (size_t p = 0; (p = svg.find("<text ", p)) != std::string::npos; ++p) ++open;
    for (size_t p = 0; (p = svg.find("</text>", p)) != std::string::npos; ++p) ++close;
    EXPECT_EQ(open, close);
    const std::string in = dir + "/map_view_test_" + std::to_string(getpid()) + "_" + std::to_string(n) + ".svg";
    const std::string out = in + ".png";
    std::ofstream(in) << svg;
    EXPECT_EQ(std::system(("rsvg-convert -o '" + out + "' '" + in + "' 2>&1").c_str()), 0) << in;
    EXPECT_GT(std::filesystem::exists(out) ? std::filesystem::file_size(out) : 0u, 1000u);
    std::filesystem::remove(in);
    std::filesystem::remove(out);
    ++n;
  }
  const std::string odd_svg = render_map_svg(*m2, MapOptions{});
  EXPECT_TRUE(has_line(odd_svg, "System RAM &amp; &lt;friends&gt; &quot;quoted&quot;"));
  const std::string base = render_map_svg(*m, MapOptions{});
  EXPECT_TRUE(has_line(base, ">0-23</text>"));
  EXPECT_TRUE(has_line(base, ">32-39</text>"));
  EXPECT_TRUE(has_line(base, ">subsections 0-31 populated, 32-63 empty</text>"));
}

// Scenario: colour asked for and not. Expect: ANSI escapes only with MapOptions::color; the
// text without escapes is the plain rendering.
TEST(MapViewText, colour_only_when_asked) {
  auto m = boot_a_baseline();
  ASSERT_TRUE(m);
  MapOptions c;
  c.color = true;
  const std::string coloured = render_map_text(*m, c);
  EXPECT_TRUE(has_line(coloured, "\x1b[32m"));
  EXPECT_EQ(std::regex_replace(coloured, std::regex("\x1b\\[[0-9;]*m"), ""), render_map_text(*m, MapOptions{}));
}

// Scenario: range texts a user types. Expect: START-END inclusive, START+SIZE with suffixes, "sN";
// -EINVAL for malformed, empty or reversed ranges; -ERANGE at or beyond 2^46 on x86-64.
TEST(MapViewRange, parse_map_range_forms_and_errors) {
  const ArchProfile& a = kX86_64;
  EXPECT_EQ(*parse_map_range("0-0xfff", a), (PhysRange{PhysAddr(0), PhysAddr(0xfff)}));
  EXPECT_EQ(*parse_map_range("4G+1G", a), (PhysRange{PhysAddr(4ULL << 30), PhysAddr((5ULL << 30) - 1)}));
  EXPECT_EQ(*parse_map_range("s1", a), (PhysRange{PhysAddr(128 << 20), PhysAddr((256 << 20) - 1)}));
  for (const char* bad : {"", "foo", "0x10-0x1", "0+0", "1G+", "sectionx", "0x-1"}) {
    auto r = parse_map_range(bad, a);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errno::Inval) << bad;
  }
  for (const char* far : {"0-0x400000000000", "64T+1", "section 524288"}) {
    auto r = parse_map_range(far, a);
    ASSERT_FALSE(r) << far;
    EXPECT_EQ(r.error().code, Errno::Range) << far;
  }
  EXPECT_TRUE(parse_map_range("0-0x3fffffffffff", a));
}

// Scenario: on every architecture profile, 1 GiB of RAM at 1 GiB. Expect: the sections of
// [1 GiB, 2 GiB) are one run, present|memmap|online|early with every subsection; the lines before
// and after have no section; the SVG has a row per run.
class MapViewArch : public ::testing::TestWithParam<const ArchProfile*> {};

TEST_P(MapViewArch, one_gib_at_one_gib_is_one_early_run) {
  const ArchProfile& a = *GetParam();
  MachineConfig cfg;
  cfg.arch = &a;
  cfg.memory.regions = {{PhysAddr(1ULL << 30), 1ULL << 30, 0, BootMemKind::Usable}};
  auto m = testing::boot_or_die(cfg);
  ASSERT_TRUE(m);
  const MapModel model = build_map_model(*m, MapOptions{});
  const uint64_t first = (1ULL << 30) >> a.section_size_bits, last = (2ULL << 30 >> a.section_size_bits) - 1;
  ASSERT_EQ(model.runs.size(), 3u);
  EXPECT_FALSE(model.runs[0].in_table);
  EXPECT_EQ(model.runs[1].first, SectionNr(first));
  EXPECT_EQ(model.runs[1].last, SectionNr(last));
  const SectionFlags f = model.runs[1].flags;
  EXPECT_TRUE(f.has(SectionFlag::Present) && f.has(SectionFlag::HasMemMap) && f.has(SectionFlag::Online) &&
              f.has(SectionFlag::Early));
  EXPECT_EQ(model.runs[1].fill, SubsectionFill::Full);
  EXPECT_EQ(model.runs[1].subsections_set, a.subsections_per_section());
  EXPECT_EQ(model.runs[1].vmemmap.unmapped_bytes, 0u);
  EXPECT_FALSE(model.runs[2].in_table);
  EXPECT_EQ(model.runs[2].last.value(), a.nr_mem_sections() - 1);
  const std::string svg = render_map_svg(*m, MapOptions{});
  EXPECT_TRUE(has_line(svg, ">" + std::to_string(first) + "-" + std::to_string(last) + "</text>"));
  testing::expect_clean(*m);
}

INSTANTIATE_TEST_SUITE_P(AllProfiles, MapViewArch,
                         ::testing::Values(&kX86_64, &kX86_64_LA57, &kArm64_4K_39, &kArm64_4K_48, &kArm64_16K_47,
                                           &kArm64_64K_42, &kArm64_64K_52),
                         [](const auto& info) {
                           std::string n(info.param->name);
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace sparsemem
