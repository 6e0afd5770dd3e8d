// Tests for include/sparsemem/scenario.h: the oracle's scenario files parse into what their recorded
// traces show, the defaults and Python splitting rules hold, and bad files fail at the right line.
#include "sparsemem/scenario.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sparsemem/trace.h"

namespace sparsemem {
namespace {

namespace fs = std::filesystem;

const fs::path kData = SPM_TEST_DATA;
const fs::path kScenarios = kData.parent_path() / "scenarios";

std::vector<fs::path> scenario_files() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kScenarios))
    if (e.path().extension() == ".scn") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

Scenario parse_ok(std::string_view text, std::string_view path = "t.scn") {
  auto sc = parse_scenario(text, path);
  EXPECT_TRUE(sc.has_value()) << (sc ? "" : sc.error().message);
  return sc ? *sc : Scenario{};
}

// Scenario: every scenario in tests/scenarios next to the trace the oracle recorded for it, and the
// scenario text each trace carries (scenario_source: exactly what was run) parsed again.
// Expect: the files are the recorded sources (d3 was edited after its trace was recorded); each
// recorded source gives the trace's description, QEMU argv (defaults, fixed part, the scenario's
// arguments last), kernel command line, and every step's type, name, commands and host actions.
TEST(ScenarioOracle, ParsesLikeTheRecordedTraces) {
  const auto files = scenario_files();
  ASSERT_EQ(files.size(), 19u);
  int full_cmdline_matches = 0, sources_as_recorded = 0;
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    auto file_sc = load_scenario(f.string());
    ASSERT_TRUE(file_sc) << file_sc.error().message;
    auto tr = load_trace((kData / "oracle" / (f.stem().string() + ".json")).string());
    ASSERT_TRUE(tr) << tr.error().message;
    EXPECT_EQ(file_sc->name, tr->scenario);
    if (file_sc->source == tr->scenario_source) ++sources_as_recorded;
    auto sc = parse_scenario(tr->scenario_source, tr->scenario_file);
    ASSERT_TRUE(sc) << sc.error().message;
    EXPECT_EQ(sc->name, tr->scenario);
    EXPECT_EQ(sc->description, tr->description);

    // The trace's argv ends with the scenario's own arguments, in order.
    ASSERT_GE(tr->qemu_cmdline.size(), sc->qemu_args.size());
    const std::vector<std::string> tail(tr->qemu_cmdline.end() - static_cast<std::ptrdiff_t>(sc->qemu_args.size()),
                                        tr->qemu_cmdline.end());
    EXPECT_EQ(tail, sc->qemu_args);

    // The whole argv matches, except the -append value when the trace predates the current base.
    auto expected = sc->oracle_qemu_cmdline(tr->kernel);
    auto actual = tr->qemu_cmdline;
    ASSERT_EQ(expected.size(), actual.size());
    const auto append_at = std::find(actual.begin(), actual.end(), "-append") - actual.begin() + 1;
    ASSERT_LT(static_cast<size_t>(append_at), actual.size());
    const std::string recorded_append = actual[static_cast<size_t>(append_at)];
    std::string appended;
    for (const auto& a : sc->append) appended += " " + a;
    EXPECT_TRUE(recorded_append.ends_with(appended)) << recorded_append;
    if (tr->guest_cmdline) EXPECT_EQ(*tr->guest_cmdline, recorded_append);
    if (recorded_append.starts_with(kOracleBaseAppend)) {
      EXPECT_EQ(sc->kernel_cmdline(), recorded_append);
      ++full_cmdline_matches;
    }
    expected[static_cast<size_t>(append_at)] = actual[static_cast<size_t>(append_at)] = "";
    EXPECT_EQ(expected, actual);

    if (!tr->completed) continue;
    ASSERT_EQ(tr->steps.size(), sc->steps.size() + 1);
    // Step 000 loads the modules.
    const auto mods = sc->effective_modules();
    ASSERT_EQ(tr->steps[0].commands.size(), mods.size());
    for (size_t i = 0; i < mods.size(); ++i) EXPECT_EQ(*tr->steps[0].commands[i].cmd, "modprobe " + mods[i]);
    for (size_t i = 0; i < sc->steps.size(); ++i) {
      const auto& st = sc->steps[i];
      const auto& ts = tr->steps[i + 1];
      SCOPED_TRACE(st.name);
      EXPECT_EQ(ts.name, st.name);
      EXPECT_EQ(ts.type, st.kind);
      ASSERT_EQ(ts.commands.size(), st.commands.size());
      for (size_t j = 0; j < st.commands.size(); ++j) EXPECT_EQ(*ts.commands[j].cmd, st.commands[j].text);
      if (st.kind == StepKind::Host) {
        ASSERT_TRUE(ts.host_actions);
        ASSERT_EQ(ts.host_actions->size(), st.actions.size());
        for (size_t j = 0; j < st.actions.size(); ++j) EXPECT_EQ(*(*ts.host_actions)[j].action, st.actions[j].text);
      }
    }
  }
  // Every trace was recorded with the current harness from the scenario as it stands.
  EXPECT_EQ(full_cmdline_matches, 19);
  EXPECT_EQ(sources_as_recorded, 19);
}

// Scenario: a scenario without -machine, -m or -smp, one with -m only, one with all three.
// Expect: the driver's defaults for the missing ones, in -machine, -m, -smp order, then the scenario's.
TEST(ScenarioParse, QemuDefaultsOnlyForMissingOptions) {
  EXPECT_EQ(parse_ok("desc: x\n").qemu_args_with_defaults(),
            (std::vector<std::string>{"-machine", "pc,nvdimm=on", "-m", "4160M,slots=4,maxmem=32G", "-smp", "1"}));
  EXPECT_EQ(parse_ok("qemu: -m 2G\n").qemu_args_with_defaults(),
            (std::vector<std::string>{"-machine", "pc,nvdimm=on", "-smp", "1", "-m", "2G"}));
  EXPECT_EQ(parse_ok("qemu: -smp 2 -machine q35\nqemu: -m 1G\n").qemu_args_with_defaults(),
            (std::vector<std::string>{"-smp", "2", "-machine", "q35", "-m", "1G"}));
  // The driver matches whole words: "-machine=q35" is not "-machine".
  EXPECT_EQ(parse_ok("qemu: -machine=q35\n").qemu_args_with_defaults().front(), "-machine");
}

// Scenario: qemu: values with quotes, escapes and characters a shell would treat specially.
// Expect: the words Python's shlex.split gives (worked out from Lib/shlex.py's posix rules).
TEST(ScenarioParse, ShlexSplitsLikePython) {
  struct Row {
    std::string_view in;
    std::vector<std::string> out;
  };
  const Row rows[] = {
      {R"(a "b c" 'd e')", {"a", "b c", "d e"}},
      {R"(a\ b)", {"a b"}},
      {R"("a\"b")", {"a\"b"}},
      {R"("a\b")", {"a\\b"}},   // inside double quotes only \" and \\ are escapes
      {R"('a\b')", {"a\\b"}},   // no escapes inside single quotes
      {R"("\\")", {"\\"}},
      {R"("")", {""}},          // an empty quoted word is a word
      {R"(a""b)", {"ab"}},
      {"x#y #z", {"x#y", "#z"}},  // shlex.split keeps '#': comments are off
      {" \t ", {}},
      {"a\tb\r\nc", {"a", "b", "c"}},
      {R"(-device nvdimm,id=nv0,memdev=m"1")", {"-device", "nvdimm,id=nv0,memdev=m1"}},
  };
  for (const auto& r : rows) {
    auto w = shlex_split(r.in);
    ASSERT_TRUE(w) << r.in;
    EXPECT_EQ(*w, r.out) << r.in;
  }
  EXPECT_EQ(shlex_split("'abc").error().message, "No closing quotation");
  EXPECT_EQ(shlex_split("abc\\").error().message, "No escaped character");
}

// Scenario: pfns: with every item form, modules:, timeouts and config lines.
// Expect: ranges as documented (END exclusive), none -> empty list, absent -> the default list,
// timeout 0 -> the default 120, config lines kept verbatim.
TEST(ScenarioParse, KeysAndPfnRanges) {
  const auto sc = parse_ok(
      "pfns: 0x0+2 0x9f 159 0xbffde-0xbffe1\n"
      "modules: a  b\tc\n"
      "timeout: 0\n"
      "qemu_timeout: 1_000\n"
      "config: SNAP_ZONEINFO_FULL=1\n"
      "config: SETTLE_CMD='sleep 1'\n");
  ASSERT_EQ(sc.pfns.size(), 4u);
  EXPECT_EQ(sc.pfns[0].range, (PfnRange{Pfn(0), NrPages(2)}));
  EXPECT_EQ(sc.pfns[1].range, (PfnRange{Pfn(0x9f), NrPages(1)}));
  EXPECT_EQ(sc.pfns[2].range, (PfnRange{Pfn(159), NrPages(1)}));
  EXPECT_EQ(sc.pfns[3].range, (PfnRange{Pfn(0xbffde), NrPages(3)}));
  EXPECT_EQ(sc.pfns[3].text, "0xbffde-0xbffe1");
  EXPECT_EQ(sc.effective_modules(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(sc.command_timeout_s(), 120);
  EXPECT_EQ(sc.qemu_timeout_s, 1000);
  EXPECT_EQ(sc.config, (std::vector<std::string>{"SNAP_ZONEINFO_FULL=1", "SETTLE_CMD='sleep 1'"}));

  EXPECT_TRUE(parse_ok("modules: none\n").effective_modules().empty());
  EXPECT_EQ(parse_ok("desc: x\n").effective_modules(),
            (std::vector<std::string>{"nfit", "nd_pmem", "nd_btt", "dax_pmem", "device_dax", "kmem"}));
  EXPECT_EQ(parse_ok("timeout: 30\n").command_timeout_s(), 30);
  EXPECT_EQ(parse_ok("desc: x\n").qemu_timeout_s, 900);
}

// Scenario: a host step mixing QMP, HMP, sleep, wait_event, guest commands and an unknown verb.
// Expect: actions in order with their arguments parsed; guest lines become the step's commands;
// the unknown verb is kept (the driver records an error response for it and goes on).
TEST(ScenarioParse, HostActions) {
  const auto sc = parse_ok(
      "host plug\n"
      "    qmp {\"execute\":\"device_add\",\"arguments\":{\"driver\":\"pc-dimm\",\"addr\":9663676416}}\n"
      "    guest waitfor 30 test -e /sys/devices/system/memory/memory79\n"
      "    hmp device_add pc-dimm,id=d2,memdev=m2\n"
      "    sleep 0.5\n"
      "    wait_event DEVICE_DELETED\n"
      "    wait_event ACPI_DEVICE_OST 60\n"
      "    frobnicate now\n"
      "    guest echo done\n");
  ASSERT_EQ(sc.steps.size(), 1u);
  const auto& st = sc.steps[0];
  EXPECT_EQ(st.kind, StepKind::Host);
  ASSERT_EQ(st.actions.size(), 6u);
  EXPECT_EQ(st.actions[0].kind, HostActionKind::Qmp);
  EXPECT_EQ(st.actions[0].qmp["arguments"]["addr"], 9663676416u);
  EXPECT_EQ(st.actions[0].line, 2);
  EXPECT_EQ(st.actions[1].kind, HostActionKind::Hmp);
  EXPECT_EQ(st.actions[1].argument, "device_add pc-dimm,id=d2,memdev=m2");
  EXPECT_EQ(st.actions[2].kind, HostActionKind::Sleep);
  EXPECT_DOUBLE_EQ(st.actions[2].seconds, 0.5);
  EXPECT_EQ(st.actions[3].event, "DEVICE_DELETED");
  EXPECT_DOUBLE_EQ(st.actions[3].seconds, 30.0);
  EXPECT_DOUBLE_EQ(st.actions[4].seconds, 60.0);
  EXPECT_EQ(st.actions[5].kind, HostActionKind::Unknown);
  EXPECT_EQ(st.actions[5].text, "frobnicate now");
  ASSERT_EQ(st.commands.size(), 2u);
  EXPECT_EQ(st.commands[0].text, "waitfor 30 test -e /sys/devices/system/memory/memory79");
  EXPECT_EQ(st.commands[1].text, "echo done");
  EXPECT_EQ(st.lines.size(), 8u);
}

// Scenario: CRLF and CR line ends, a form feed (a line break for str.splitlines), comments, blank
// lines, tabs and Unicode blanks around values.
// Expect: scenario_source with universal newlines; lines split where Python splits them.
TEST(ScenarioParse, PythonLineAndBlankRules) {
  const auto sc = parse_ok("desc: a\r\ndesc:\tb \rstep s\f\techo 1\n  # comment\n\n\t echo\xc2\xa0" "2\xc2\xa0\n");
  EXPECT_EQ(sc.source, "desc: a\ndesc:\tb \nstep s\f\techo 1\n  # comment\n\n\t echo\xc2\xa0" "2\xc2\xa0\n");
  EXPECT_EQ(sc.description, "a b");
  ASSERT_EQ(sc.steps.size(), 1u);
  ASSERT_EQ(sc.steps[0].commands.size(), 2u);
  EXPECT_EQ(sc.steps[0].commands[0].text, "echo 1");
  EXPECT_EQ(sc.steps[0].commands[0].line, 4);
  // U+00A0 is whitespace to str.strip(), so the trailing one goes; the inner one stays.
  EXPECT_EQ(sc.steps[0].commands[1].text, "echo\xc2\xa0" "2");
  EXPECT_EQ(sc.steps[0].commands[1].line, 7);
}

// Scenario: malformed files, one per error the parser reports.
// Expect: Errno::Inval with "file:line: reason" naming the offending line.
TEST(ScenarioErrors, ReportFileLineAndReason) {
  struct Row {
    std::string_view text;
    std::string_view message_prefix;
  };
  const Row rows[] = {
      {"# c\n\n  echo\n", "bad.scn:3: indented line before the first step"},
      {"desc: a\nfoo: b\n", "bad.scn:2: unknown key 'foo'"},
      {"desc: a\nstep: b\n", "bad.scn:2: unknown key 'step'"},
      {"step a b\n", "bad.scn:1: step name must not contain whitespace: 'a b'"},
      {"desc: x\nhost\n", "bad.scn:2: host header without a name"},
      {"Desc: x\n", "bad.scn:1: cannot parse: 'Desc: x'"},
      {"desc x\n", "bad.scn:1: cannot parse: 'desc x'"},
      {"host h\n    qmp {\"execute\": \n", "bad.scn:2: qmp: malformed JSON"},
      {"host h\n    qmp\n", "bad.scn:2: qmp: malformed JSON"},
      {"qemu: -m 'x\n", "bad.scn:1: qemu: No closing quotation"},
      {"qemu: -m x\\\n", "bad.scn:1: qemu: No escaped character"},
      {"timeout: 1.5\n", "bad.scn:1: timeout: '1.5' is not an integer"},
      {"timeout: -5\n", "bad.scn:1: timeout: -5 is negative"},
      {"qemu_timeout: 0\n", "bad.scn:1: qemu_timeout: 0 is not a positive number of seconds"},
      {"pfns: 0x10 010\n", "bad.scn:1: pfns: bad item '010'"},
      {"pfns: 5-5\n", "bad.scn:1: pfns: bad item '5-5': END must be above START"},
      {"pfns: 5+0\n", "bad.scn:1: pfns: bad item '5+0': empty range"},
      {"pfns: 0x-1\n", "bad.scn:1: pfns: bad item '0x-1'"},
      {"pfns: 1+0x200000\n", "bad.scn:1: pfns: bad item '1+0x200000': more than 1048576 pfns"},
      {"host h\n  sleep -1\n", "bad.scn:2: sleep: '-1' is not a finite, non-negative number of seconds"},
      {"host h\n  sleep inf\n", "bad.scn:2: sleep: 'inf'"},
      {"host h\n  wait_event\n", "bad.scn:2: wait_event: missing event name"},
      {"host h\n  wait_event X nan\n", "bad.scn:2: wait_event: 'nan' is not a finite number of seconds"},
      {"desc: a\ndesc: b\n\xff\n", "bad.scn:3: not valid UTF-8"},
  };
  for (const auto& r : rows) {
    const auto sc = parse_scenario(r.text, "bad.scn");
    ASSERT_FALSE(sc) << r.text;
    EXPECT_EQ(sc.error().code, Errno::Inval);
    EXPECT_TRUE(sc.error().message.starts_with(r.message_prefix)) << sc.error().message << " <- " << r.text;
  }
}

// Scenario: a path that does not exist, and a real file with an error in it.
// Expect: NoEnt for the missing file; the error of a file names the path as given.
TEST(ScenarioErrors, LoadNamesThePath) {
  EXPECT_EQ(load_scenario("/nonexistent/x.scn").error().code, Errno::NoEnt);
  const fs::path p = fs::temp_directory_path() / "spm_scenario_test_bad.scn";
  std::ofstream(p) << "desc: ok\n\nstep s\n    echo\nbogus: 1\n";
  const auto sc = load_scenario(p.string());
  ASSERT_FALSE(sc);
  EXPECT_EQ(sc.error().message, p.string() + ":5: unknown key 'bogus'");
  fs::remove(p);
}

// Scenario: a parsed scenario printed as JSON (what `sparsemem parse` shows).
// Expect: the derived values appear next to the parsed ones.
TEST(ScenarioParse, JsonView) {
  const auto sc = parse_ok("desc: d\nappend: memhp_default_state=online\nstep s\n  echo\n", "dir/x.scn");
  const auto j = scenario_to_json(sc);
  EXPECT_EQ(j["name"], "x");
  EXPECT_EQ(j["kernel_cmdline"], std::string(kOracleBaseAppend) + " memhp_default_state=online");
  EXPECT_EQ(j["steps"][0]["commands"][0]["cmd"], "echo");
  EXPECT_EQ(j["effective_modules"].size(), 6u);
}

}  // namespace
}  // namespace sparsemem
