// `sparsemem demo [--color=WHEN] [--no-pse]`: the first run. Plays a built-in scenario of the seed-004
// machine (pmem sharing the early section 40 with System RAM, devdax reconfigured twice) under linux-6.1
// and then seed004-legacy, one block of at most kDemoMaxBlockLines lines per step. The text is
// deterministic (no timings, no host state), so README.md quotes it verbatim and demo_test checks it.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "machine_args.h"
#include "sparsemem/kpageflags.h"
#include "sparsemem/map_view.h"
#include "sparsemem/run.h"
#include "sparsemem/scenario.h"

namespace sparsemem::cli {
namespace {

// The promise each block keeps: it fits a 24-line terminal with the prompt of the next screen.
// demo_test states the same limit.
constexpr size_t kDemoMaxBlockLines = 24;
// Explanations are wrapped to kWrapColumns; checker examples are cut at kMaxColumns. Only commands and
// the kernel's oops text (quoted whole) may be a little wider.
constexpr size_t kWrapColumns = 96;
constexpr size_t kMaxColumns = 100;

// The seed-004 layout without a patched QEMU (tests/scenarios/d3_pmem_in_early_section.scn, cut down
// to the steps the demonstration needs): RAM above 4G is 0x100000000-0x147ffffff, and memmap=64M!
// turns its last 64M into legacy persistent memory, so System RAM and pmem share section 40.
constexpr std::string_view kDemoScenarioHead =
    "desc: seed 004: legacy pmem in the second half of the early section 40, reconfigured as devdax twice\n"
    "qemu: -machine pc,nvdimm=on -m 4224M,maxmem=20G,slots=1\n";
constexpr std::string_view kDemoScenarioBody =
    "append: memmap=64M!0x144000000\n"
    "modules: none\n"
    "pfns: 0x144000\n"
    "step load_pmem_drivers\n"
    "    modprobe nd_e820 && modprobe nd_pmem && modprobe dax_pmem && modprobe device_dax\n"
    "    ndctl list -N\n"
    "step devdax\n"
    "    ndctl create-namespace --force --reconfig=namespace0.0 --mode=devdax\n"
    "step devdax_again\n"
    "    ndctl create-namespace --force --reconfig=namespace0.0 --mode=devdax\n";
// QEMU's switch for 4K vmemmap pages (seed 004 reproduced the unmapped-memmap fault this way).
constexpr std::string_view kNoPseCpu = "qemu: -cpu qemu64,pse=off\n";

constexpr uint64_t kSection = 40;
constexpr uint64_t kProbePfn = 0x144000;  // the first pfn of the pmem, and of subsection 32

std::string demo_scenario_text(bool no_pse) {
  return std::string(kDemoScenarioHead) + (no_pse ? std::string(kNoPseCpu) : std::string()) +
         std::string(kDemoScenarioBody);
}

// What each step is, and what each kernel does there. The texts state what the model shows; the run
// checks the two claims the summary depends on (6.1 clean, legacy not) and exits 1 if they fail.
struct StepText {
  std::string_view title;
  std::string_view linux61;
  std::string_view legacy;
  std::string_view legacy_no_pse;  // empty: as `legacy`
};

constexpr StepText kStepTexts[] = {
    {"boot",
     "Boot RAM ends at 0x143ffffff, in the middle of section 40, so sparse_init() makes it an early "
     "section and maps its whole memmap (one 2M PMD). The pmem half has descriptors but no memory: "
     "pfn_valid() is 1 there and pfn_to_online_page() is NULL, because 6.1 checks the subsection map.",
     "The same boot. The old pfn_to_online_page() looks only at SECTION_IS_ONLINE, so it returns a page "
     "for the pmem half too, where no memory was ever onlined: pfn walkers (kpageflags, compaction, "
     "memory-failure) read those descriptors.",
     {}},
    {"load the pmem drivers",
     "nd_pmem maps the legacy pmem with memremap_pages() as ZONE_DEVICE. Section 40 is early, so the "
     "add sets subsections 32-63 and reuses the boot memmap; a ZONE_DEVICE range now starts inside the "
     "section, which taints it (T), and pfn_to_online_page() asks for a dev_pagemap there: still NULL.",
     "The same mapping, but the old pfn_to_online_page() sees an online section and hands the "
     "ZONE_DEVICE pages out as online memory: the checker finds them at every 2M subsection.",
     {}},
    {"devdax, the first time",
     "The reconfigure unbinds pmem (memunmap_pages() removes subsections 32-63) and maps the range again "
     "for device-dax. 6.1 never frees part of an early section's memmap (the seed-004 fix), so the re-add "
     "finds it intact. device-dax keeps its first 2M for the info block: memmap_init_zone_device() "
     "initialises the other 15872 pages, and pfn 0x144000 keeps the descriptor the first mapping wrote.",
     "The pre-fix section_deactivate() depopulates the removed half of the early memmap. x86 cannot free "
     "part of a 2M PMD, so it fills it with 0xFD (PAGE_UNUSED); the re-add skips populate because the "
     "section is early. The info-block subsection keeps the 0xFD bytes, and reading kpageflags of pfn "
     "0x144000 follows a compound_head of 0xfdfd...: the walker oopses.",
     "The pre-fix section_deactivate() depopulates the removed half of the early memmap; with 4K vmemmap "
     "pages (pse=off) they are freed. The re-add skips populate (the section is early), so "
     "memmap_init_zone_device() faults on unmapped vmemmap and the pgmap is never mapped (no dax0.0), yet "
     "pfn_to_online_page() still returns pages."},
    {"devdax, the second time",
     "The same remove and re-add: the early memmap stays, the result is the same as the first time. "
     "Reconfiguring can be repeated any number of times.",
     "The same remove and re-add, on a memmap already broken: every reconfigure repeats the damage.",
     {}},
};

// ANSI styling, or nothing (piped, NO_COLOR, --color=never).
class Style {
 public:
  explicit Style(bool on) : m_on(on) {}
  std::string bold(std::string_view s) const { return wrap("\x1b[1m", s); }
  std::string green(std::string_view s) const { return wrap("\x1b[32m", s); }
  std::string red(std::string_view s) const { return wrap("\x1b[31m", s); }
  std::string yellow(std::string_view s) const { return wrap("\x1b[33m", s); }
  std::string magenta(std::string_view s) const { return wrap("\x1b[35m", s); }
  std::string cyan(std::string_view s) const { return wrap("\x1b[36m", s); }
  std::string dim(std::string_view s) const { return wrap("\x1b[2m", s); }

 private:
  std::string wrap(std::string_view code, std::string_view s) const {
    return m_on ? std::string(code) + std::string(s) + "\x1b[0m" : std::string(s);
  }
  bool m_on;
};

std::string word_wrap(std::string_view text, std::string_view indent, size_t width) {
  std::string out, line(indent);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view word = text.substr(pos, end - pos);
    if (line.size() > indent.size() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line = std::string(indent);
    }
    if (line.size() > indent.size()) line += ' ';
    line += word;
    pos = end + 1;
  }
  if (line.size() > indent.size()) out += line + "\n";
  return out;
}

std::vector<std::string_view> lines_of(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const size_t nl = s.find('\n');
    out.push_back(s.substr(0, nl));
    if (nl == std::string_view::npos) break;
    s.remove_prefix(nl + 1);
  }
  return out;
}

// `s` cut to at most `width` characters, the cut marked " ...".
std::string cut(std::string s, size_t width) {
  s.resize(width - 4);
  while (s.ends_with(' ')) s.pop_back();
  return s + " ...";
}

// ndctl's uuids are random in the real tool; the model draws them from one generator per thread, so
// they would differ between the two parts of the demo. They say nothing about memory: left out.
void drop_uuids(OrderedJson& j) {
  if (j.is_object()) {
    j.erase("uuid");
    for (auto& [key, v] : j.items()) drop_uuids(v);
  } else if (j.is_array()) {
    for (auto& v : j) drop_uuids(v);
  }
}

// A command's output in one line when it is JSON (ndctl, daxctl), else its first lines.
std::string condensed_output(const std::string& text, size_t max_lines) {
  std::string out;
  if (!text.empty() && (text.front() == '{' || text.front() == '[')) {
    auto j = OrderedJson::parse(text, nullptr, false);
    if (!j.is_discarded()) {
      drop_uuids(j);
      std::string one = j.dump();
      constexpr size_t kMax = 92;
      if (one.size() > kMax) one = cut(one, kMax);
      return "  " + one + "\n";
    }
  }
  const auto lines = lines_of(text);
  for (size_t i = 0; i < lines.size() && i < max_lines; ++i) out += "  " + std::string(lines[i]) + "\n";
  if (lines.size() > max_lines) out += fmt::format("  ... ({} more lines)\n", lines.size() - max_lines);
  return out;
}

uint64_t parse_hex(const std::string& s) { return std::stoull(s, nullptr, 16); }

// The /proc/iomem lines that overlap section 40.
std::string iomem_near_section(const Snapshot& snap, const ArchProfile& a) {
  if (!snap.iomem) return {};
  const uint64_t lo = a.pfn_to_phys(a.section_nr_to_pfn(SectionNr(kSection))).value();
  const uint64_t hi = lo + a.section_size() - 1;
  std::string out;
  for (const TraceIomemLine& e : *snap.iomem)
    if (parse_hex(e.start) <= hi && parse_hex(e.end) >= lo) out += "  " + iomem_line(e) + "\n";
  return out;
}


// Section 40 from the map model: its run line in brief, then one row per question asked of each of
// its 64 subsections (at the subsection's first pfn).
std::string section_view(const Machine& m, const Style& st) {
  const ArchProfile& a = m.arch();
  MapOptions opts;
  opts.range = parse_map_range(fmt::format("section {}", kSection), a).value();
  const MapModel model = build_map_model(m, opts);
  const MapRun& r = model.runs.front();
  std::string blocks = r.blocks.empty() ? "-" : r.blocks.front();
  std::string out = fmt::format("section {}  {:#x}-{:#x}  state {}  subsections {}/{}  {}\n", kSection,
                                opts.range->start.value(), opts.range->last.value(),
                                st.bold(section_state_letters(r.flags)), r.subsections_set, a.subsections_per_section(), blocks);
  std::string ruler;
  for (unsigned i = 0; i < a.subsections_per_section(); i += 8) ruler += fmt::format("{:<8}", i);
  while (ruler.ends_with(' ')) ruler.pop_back();
  out += fmt::format("  {:<20}{}\n", "subsection", st.dim(ruler));
  // Colour by meaning: green as it should be, magenta ZONE_DEVICE, red a page handed out where no
  // online memory is (pfn_to_online_page of an unpopulated or ZONE_DEVICE subsection) or a memmap gone.
  enum class Ink { Good, Device, Bad, None };
  auto paint = [&st](const std::vector<std::pair<char, Ink>>& cells) {
    std::string row;
    for (size_t i = 0; i < cells.size();) {
      size_t j = i;
      std::string run;
      while (j < cells.size() && cells[j].second == cells[i].second) run += cells[j++].first;
      switch (cells[i].second) {
        case Ink::Good: row += st.green(run); break;
        case Ink::Device: row += st.magenta(run); break;
        case Ink::Bad: row += st.red(run); break;
        case Ink::None: row += st.dim(run); break;
      }
      i = j;
    }
    return row;
  };
  std::vector<std::pair<char, Ink>> populated, device, online, mapped;
  for (const MapSubsection& s : model.subsections) {
    const bool dev = m.pgmap_registry().has_live_pagemap(s.start);
    populated.emplace_back(s.populated ? '#' : '.', s.populated ? Ink::Good : Ink::None);
    device.emplace_back(dev ? 'D' : '.', dev ? Ink::Device : Ink::None);
    online.emplace_back(s.first_pfn_online ? '#' : '.',
                        !s.first_pfn_online ? Ink::None : (s.populated && !dev ? Ink::Good : Ink::Bad));
    const bool ok = s.vmemmap.unmapped_bytes == 0;
    mapped.emplace_back(ok ? '#' : 'x', ok ? Ink::Good : Ink::Bad);
  }
  out += fmt::format("  {:<20}{}\n", "subsection_map", paint(populated));
  out += fmt::format("  {:<20}{}\n", "ZONE_DEVICE", paint(device));
  out += fmt::format("  {:<20}{}\n", "pfn_to_online_page", paint(online));
  out += fmt::format("  {:<20}{}\n", "memmap mapped", paint(mapped));
  return out;
}

// The question the seed-004 walker asked: pfn 0x144000 through pfn_valid, pfn_to_online_page and
// /proc/kpageflags (the snapshot's pfnflags line, and the oops text when the read faults).
std::string probe_view(const Machine& m, const Snapshot& snap, const Style& st, std::optional<std::string>* fault) {
  const Pfn pfn(kProbePfn);
  std::string out = fmt::format("pfn {:#x}: pfn_valid {}, pfn_to_online_page {}, /proc/kpageflags ", kProbePfn,
                                m.pfn_valid(pfn) ? 1 : 0, m.pfn_to_online_page(pfn) ? "page" : "NULL");
  const auto flags = kpageflags(m, pfn);
  if (flags) {
    std::string names;
    if (snap.kpageflags)
      for (const KpageflagsEntry& e : *snap.kpageflags)
        if (!e.note && parse_hex(e.pfn) == kProbePfn && e.flag_names) {
          for (const std::string& n : *e.flag_names) names += (names.empty() ? "" : "|") + n;
        }
    out += fmt::format("{:#018x}{}\n", *flags, names.empty() ? "" : " " + names);
    return out;
  }
  out += st.red("faults") + "\n";
  out += "  " + st.red(flags.error().message) + "\n";
  *fault = flags.error().message;
  return out;
}

// The checker's findings after a step, by invariant: count and the first example.
std::string verdict_view(const Snapshot& snap, const Style& st, size_t* total) {
  std::vector<std::string> found;
  if (auto it = snap.extra.find(std::string(kCheckerTraceKey)); it != snap.extra.end())
    for (const auto& v : *it) found.push_back(v.get<std::string>());
  *total = found.size();
  if (found.empty()) return "checker: " + st.green("clean") + "\n";
  std::vector<std::string> ids;
  std::map<std::string, std::pair<size_t, std::string>> by_id;
  for (const std::string& v : found) {
    const size_t colon = v.find(": ");
    const std::string id = v.substr(0, colon);
    auto [it, fresh] = by_id.try_emplace(id, 0, colon == std::string::npos ? "" : v.substr(colon + 2));
    if (fresh) ids.push_back(id);
    ++it->second.first;
  }
  std::string out = "checker: " + st.red(fmt::format("{} violation(s)", found.size())) + "\n";
  for (const std::string& id : ids) {
    std::string example = by_id[id].second;
    const size_t room = kMaxColumns - std::min(kMaxColumns - 20, id.size() + 20);
    if (example.size() > room) example = cut(example, room);
    out += fmt::format("  {} x{}, first: {}\n", st.red(id), by_id[id].first, example);
  }
  return out;
}

std::string heading(std::string_view behaviour, size_t index, size_t last, std::string_view title, const Style& st) {
  std::string text = fmt::format("== {}, step {} of {}: {} ", behaviour, index, last, title);
  if (text.size() < 80) text += std::string(80 - text.size(), '=');
  return st.bold(st.cyan(text)) + "\n";
}

struct PartResult {
  std::string behaviour;
  size_t violations_total = 0;       // over all steps
  std::optional<size_t> first_violation_step;
  std::optional<std::string> fault;  // the first kpageflags oops of pfn 0x144000
  std::optional<size_t> fault_step;
  std::optional<std::string> oops;   // the first oops line in dmesg
  std::optional<size_t> oops_step;
};

// One step's block: title, commands and their output, new kernel messages (or the boot command line
// and iomem for step 0), section 40, pfn 0x144000, what the kernel does, the checker's verdict.
std::string step_block(const Scenario& sc, const TraceStep& step, const Machine& m, const Behaviour& b, bool no_pse,
                       const Style& st, PartResult& part) {
  const size_t last = std::size(kStepTexts) - 1;
  const StepText& t = kStepTexts[step.index];
  std::string out = heading(b.name, step.index, last, t.title, st);
  if (step.index == 0) {
    std::string cmd = "$ qemu-system-x86_64";
    for (const std::string& q : sc.qemu_args) cmd += " " + q;
    out += st.bold(cmd + " \\") + "\n";
    for (const std::string& ap : sc.append) out += st.bold("    -append '" + ap + "'") + "\n";
  }
  for (const CommandRecord& c : step.commands) {
    out += st.bold("$ " + c.cmd.value_or("")) + "\n";
    out += condensed_output(c.out.value_or(""), 3);
    if (c.err && !c.err->empty()) out += st.yellow(condensed_output(*c.err, 3));
    if (c.rc.value_or(0) != 0) out += st.yellow(fmt::format("  (exit status {})", *c.rc)) + "\n";
  }
  if (step.index != 0 && step.snapshot.dmesg)
    for (const std::string& l : *step.snapshot.dmesg) {
      const size_t close = l.find("] ");
      const std::string msg = close == std::string::npos ? l : l.substr(close + 2);
      // Its "in Nms" is the host's time, which would make the demo's output vary from run to run.
      if (msg.starts_with("memmap_init_zone_device initialised")) continue;
      const bool bad = msg.starts_with("BUG:") || msg.find("fault") != std::string::npos;
      out += "kernel: " + (bad ? st.red(msg) : msg) + "\n";
      if (bad && !part.oops) {
        part.oops = msg;
        part.oops_step = step.index;
      }
    }
  out += "/proc/iomem around section 40:\n" + iomem_near_section(step.snapshot, m.arch());
  out += section_view(m, st);
  std::optional<std::string> fault;
  out += probe_view(m, step.snapshot, st, &fault);
  if (fault && !part.fault) {
    part.fault = fault;
    part.fault_step = step.index;
  }
  const bool legacy = b.name != kLinux61.name;
  const std::string_view why = !legacy ? t.linux61 : (no_pse && !t.legacy_no_pse.empty() ? t.legacy_no_pse : t.legacy);
  out += word_wrap(fmt::format("{}: {}", b.name, why), "", kWrapColumns);
  size_t n = 0;
  out += verdict_view(step.snapshot, st, &n);
  part.violations_total += n;
  if (n && !part.first_violation_step) part.first_violation_step = step.index;
  return out;
}

size_t line_count(std::string_view s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

[[noreturn]] void fail_demo(const std::string& why) {
  std::cerr << "sparsemem demo: " << why << "\n";
  throw CLI::RuntimeError(kExitBadInput);
}

PartResult play(const Behaviour& b, bool no_pse, const Style& st) {
  PartResult part;
  part.behaviour = std::string(b.name);
  auto sc = parse_scenario(demo_scenario_text(no_pse), "seed004-demo.scn");
  if (!sc) fail_demo("built-in scenario: " + sc.error().message);
  std::vector<ScenarioStep> steps = std::move(sc->steps);
  sc->steps.clear();
  if (steps.size() + 1 != std::size(kStepTexts)) fail_demo("built-in scenario and step texts disagree");
  RunOptions opts;
  opts.behaviour = b;
  auto session = ScenarioSession::start(*sc, opts);
  if (!session) fail_demo(session.error().message);
  if (!(*session)->booted()) fail_demo("QEMU refuses the built-in machine");
  ScenarioSession& s = **session;
  auto emit = [&](const TraceStep& step) {
    const std::string block = step_block(s.scenario(), step, *s.machine(), b, no_pse, st, part);
    // The limit is a promise to the reader; a block that breaks it is a bug in this file.
    if (line_count(block) > kDemoMaxBlockLines)
      fail_demo(fmt::format("step {} takes {} lines (more than {})", step.index, line_count(block), kDemoMaxBlockLines));
    std::cout << "\n" << block;
  };
  emit(s.result().trace.steps.front());
  for (ScenarioStep& step : steps) emit(s.run_step(std::move(step)));
  if (!s.result().unsupported.empty()) fail_demo(s.result().unsupported.front());
  return part;
}

std::string intro(bool no_pse, const Style& st) {
  std::string out = st.bold("sparsemem demo: seed 004, persistent memory in an early section") + "\n\n";
  out += word_wrap(
      "The machine: QEMU pc with 4224M of RAM, and memmap=64M!0x144000000, which turns the last 64M of "
      "the RAM above 4G into legacy persistent memory. System RAM 0x100000000-0x143ffffff and the pmem "
      "0x144000000-0x147ffffff then share section 40 (128M, pfns 0x140000-0x147fff, 64 subsections of "
      "2M). Boot memory makes section 40 early: sparse_init() gave it its whole memmap. The pmem half "
      "becomes ZONE_DEVICE memory when the pmem driver maps it, and reconfiguring the namespace as "
      "devdax removes that half and adds it back: a partial hot-remove and hot-add inside an early "
      "section, the case of the seed-004 thread (\"mm/sparse: never partially remove memmap for early "
      "section\", 2020).",
      "", kWrapColumns);
  out += "\n";
  out += word_wrap(fmt::format("The same {} steps run twice: under linux-6.1, then under seed004-legacy, the kernel "
                               "before the fix{}. Each step shows the commands, /proc/iomem, section 40 (state "
                               "P present, M memmap, O online, E early, T ZONE_DEVICE taint; one column per 2M "
                               "subsection: # yes, . no, D ZONE_DEVICE, x memmap unmapped), pfn 0x144000 and the "
                               "invariant checker's verdict.",
                               std::size(kStepTexts), no_pse ? " (QEMU -cpu qemu64,pse=off: 4K vmemmap pages)" : ""),
                   "", kWrapColumns);
  return out;
}

std::string summary(const PartResult& now, const PartResult& old, bool no_pse, const Style& st) {
  std::string out = st.bold(st.cyan(std::string("== summary ") + std::string(69, '='))) + "\n";
  out += "linux-6.1:      " + (now.violations_total == 0 ? st.green("clean after every step") : st.red("violations")) +
         fmt::format("; pfn {:#x} reads as NOPAGE throughout.\n", kProbePfn);
  out += "seed004-legacy: " +
         st.red(fmt::format("checker violations from step {} on", old.first_violation_step.value_or(0))) + "\n";
  constexpr std::string_view kIndent = "                ";
  if (old.oops)
    out += fmt::format("{}the devdax re-add oopses in step {}:\n{}  {}\n", kIndent, *old.oops_step, kIndent,
                       st.red(*old.oops));
  if (old.fault)
    out += fmt::format("{}reading /proc/kpageflags of pfn {:#x} oopses from step {}:\n{}  {}\n", kIndent, kProbePfn,
                       *old.fault_step, kIndent, st.red(old.fault->substr(0, old.fault->find(": 0000"))));
  out += "\n";
  out += word_wrap(
      "The difference is one rule: 6.1 never removes part of an early section's memmap, and its "
      "pfn_to_online_page() checks the subsection map and ZONE_DEVICE, so a walker never reaches pmem "
      "descriptors. The pre-fix kernel removed the memmap under a section that pfn_valid() and "
      "section_activate() still trusted whole.",
      "", kWrapColumns);
  out += "\n";
  out += "Read more: docs/guide.md (\"The first run\", \"Another kernel behaviour\"), docs/design.md\n";
  out += "(\"One mechanism per concept\": the early-section rule), and the thread in ../shared/seeds/004_*.\n";
  out += no_pse ? "Replay with 2M vmemmap mappings: sparsemem demo\n"
                : "Replay with 4K vmemmap pages, where the re-add itself faults: sparsemem demo --no-pse\n";
  out += "The whole scenario, with fsdax, raw and kmem steps:\n";
  out += "  sparsemem run tests/scenarios/d3_pmem_in_early_section.scn --behaviour seed004-legacy\n";
  return out;
}

}  // namespace

void register_demo(CLI::App& app) {
  struct Args {
    std::string color = "auto";
    bool no_pse = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "demo", "The first run: the seed-004 machine (pmem sharing the early section 40 with System RAM), devdax "
              "reconfigured twice under linux-6.1 and then under seed004-legacy, one screen per step; exit 1 if "
              "the two kernels do not differ as the text says");
  sub->add_option("--color", args->color,
                  "ANSI colour: auto (when stdout is a terminal and NO_COLOR is unset), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->default_str("auto");
  sub->add_flag("--no-pse", args->no_pse,
                "boot QEMU with -cpu qemu64,pse=off: 4K vmemmap pages, where the legacy re-add faults in memmap "
                "init");
  sub->callback([args] {
    const Style st(args->color == "always" || (args->color == "auto" && stdout_wants_color()));
    std::cout << intro(args->no_pse, st);
    const Behaviour* legacy = find_behaviour("seed004-legacy");
    if (!legacy) fail_demo("behaviour seed004-legacy is missing");
    const PartResult now = play(kLinux61, args->no_pse, st);
    const PartResult old = play(*legacy, args->no_pse, st);
    std::cout << "\n" << summary(now, old, args->no_pse, st) << std::flush;
    if (now.violations_total != 0 || old.violations_total == 0) throw CLI::RuntimeError(kExitMismatch);
  });
}

}  // namespace sparsemem::cli
