// libFuzzer target for the scenario parser (parse_scenario, shlex_split): any byte string either
// parses into a scenario whose source re-parses to the same scenario, or fails with "file:line: why".

// Seed corpus: tests/scenarios/*.scn. A broken property traps; the sanitizers catch the rest.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sparsemem/scenario.h"

namespace {

void require(bool cond) {
  if (!cond) __builtin_trap();
}

bool has_blank(std::string_view s) {
  return s.find_first_of(" \t\n\r\f\v") != std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sparsemem;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)shlex_split(text);

  const auto sc = parse_scenario(text, "fuzz.scn");
  if (!sc) {
    // Every refusal is an input error that names its line: "fuzz.scn:N: reason".
    const std::string& m = sc.error().message;
    require(sc.error().code == Errno::Inval);
    require(m.starts_with("fuzz.scn:"));
    size_t i = 9, digits = 0;
    while (i < m.size() && m[i] >= '0' && m[i] <= '9') ++i, ++digits;
    require(digits > 0 && i + 2 < m.size() && m[i] == ':' && m[i + 1] == ' ');
    return 0;
  }
  int last_line = 0;
  for (const auto& st : sc->steps) {
    require(!st.name.empty() && !has_blank(st.name));
    require(st.line > last_line);
    last_line = st.line;
    for (const auto& c : st.commands) require(c.line > st.line);
    for (const auto& a : st.actions) require(a.line > st.line && (a.kind != HostActionKind::Sleep || a.seconds >= 0));
  }
  for (const auto& p : sc->pfns) require(!p.range.empty() && p.range.nr.value() <= kMaxPfnsPerItem);
  require(sc->command_timeout_s() > 0 && sc->qemu_timeout_s > 0);
  // The derived views are total, and the kept source is a fixed point: parsing it again (it is the
  // text after universal-newline translation) gives the same scenario.
  (void)sc->oracle_qemu_cmdline("fuzz");
  const std::string dumped = scenario_to_json(*sc).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto again = parse_scenario(sc->source, "fuzz.scn");
  require(again.has_value());
  require(scenario_to_json(*again).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) == dumped);
  return 0;
}
