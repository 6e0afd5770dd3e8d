// Scenario parser: the oracle driver's parse_scenario() (shared/oracle/run) line for line, with
// its crashes turned into file:line errors. Pure; the only I/O is load_scenario's file read.
#include "sparsemem/scenario.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/core.h>

#include "scenario/pytext.h"

namespace sparsemem {
namespace {

constexpr std::string_view kDefaultModules[] = {"nfit", "nd_pmem", "nd_btt", "dax_pmem", "device_dax", "kmem"};

// "step"/"host" followed by whitespace starts a step header; "steps:" or "host:" is a key.
std::optional<StepKind> header_kind(std::string_view line) {
  // Both keywords are 4 ASCII bytes, so byte 4 starts a character.
  const bool step = line.starts_with("step"), host = line.starts_with("host");
  if ((!step && !host) || pytext::space_len(line, 4) == 0) return std::nullopt;
  return step ? StepKind::Guest : StepKind::Host;
}

bool is_key_char(char c) { return (c >= 'a' && c <= 'z') || c == '_'; }

struct LineError {
  std::string_view path;
  int line;
  tl::unexpected<Error> operator()(const std::string& reason) const {
    return fail(Errno::Inval, fmt::format("{}:{}: {}", path, line, reason));
  }
};

// One pfnflags number: decimal, or hex with 0x. A leading 0 is refused because pfnflags reads it
// with strtoul(..., 0) as octal, which nobody writing "010" means.
std::optional<uint64_t> parse_pfn_number(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  } else if (s.size() > 1 && s[0] == '0') {
    return std::nullopt;
  }
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

Result<PfnSpec> parse_pfn_item(std::string_view item, const LineError& err) {
  auto bad = [&](std::string_view why) {
    return err(fmt::format("pfns: bad item '{}': {}", item, why));
  };
  const size_t op = item.find_first_of("+-");
  const auto first = parse_pfn_number(item.substr(0, op));
  if (!first) return bad("expected PFN, PFN+COUNT or START-END with decimal or 0x numbers");
  uint64_t count = 1;
  if (op != std::string_view::npos) {
    const auto second = parse_pfn_number(item.substr(op + 1));
    if (!second) return bad("expected PFN, PFN+COUNT or START-END with decimal or 0x numbers");
    if (item[op] == '+') {
      count = *second;
    } else {
      if (*second <= *first) return bad("END must be above START (END is exclusive)");
      count = *second - *first;
    }
  }
  if (count == 0) return bad("empty range");
  if (count > kMaxPfnsPerItem) return bad(fmt::format("more than {} pfns", kMaxPfnsPerItem));
  if (*first > UINT64_MAX - count) return bad("range wraps around");
  return PfnSpec{std::string(item), PfnRange{Pfn(*first), NrPages(count)}, err.line};
}

// A host line (run: run_host_actions). Errors are those on which the driver would raise.
Result<HostAction> parse_host_action(std::string_view line, const LineError& err) {
  HostAction a;
  a.text = std::string(line);
  a.line = err.line;
  const size_t sp = line.find(' ');
  a.verb = std::string(line.substr(0, sp));
  a.argument = sp == std::string_view::npos ? std::string() : std::string(line.substr(sp + 1));
  if (a.verb == "qmp") {
    a.kind = HostActionKind::Qmp;
    try {
      a.qmp = OrderedJson::parse(a.argument);
    } catch (const nlohmann::json::exception& e) {
      return err(fmt::format("qmp: malformed JSON: {}", e.what()));
    }
  } else if (a.verb == "hmp") {
    a.kind = HostActionKind::Hmp;
  } else if (a.verb == "sleep") {
    a.kind = HostActionKind::Sleep;
    const auto v = pytext::parse_float(a.argument);
    // time.sleep() raises on negative and NaN values; inf would never return.
    if (!v || !std::isfinite(*v) || *v < 0)
      return err(fmt::format("sleep: '{}' is not a finite, non-negative number of seconds", a.argument));
    a.seconds = *v;
  } else if (a.verb == "wait_event") {
    a.kind = HostActionKind::WaitEvent;
    const auto words = pytext::split(a.argument);
    if (words.empty()) return err("wait_event: missing event name");
    a.event = std::string(words[0]);
    a.seconds = kDefaultWaitEventTimeoutS;
    if (words.size() > 1) {
      const auto v = pytext::parse_float(words[1]);
      // select() raises on a NaN or infinite timeout; negative ones time out at once.
      if (!v || !std::isfinite(*v))
        return err(fmt::format("wait_event: '{}' is not a finite number of seconds", words[1]));
      a.seconds = *v;
    }
  } else {
    a.kind = HostActionKind::Unknown;
  }
  return a;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

}  // namespace

std::string_view step_kind_name(StepKind k) { return k == StepKind::Guest ? "guest" : "host"; }

std::string_view host_action_kind_name(HostActionKind k) {
  switch (k) {
    case HostActionKind::Qmp: return "qmp";
    case HostActionKind::Hmp: return "hmp";
    case HostActionKind::Sleep: return "sleep";
    case HostActionKind::WaitEvent: return "wait_event";
    case HostActionKind::Unknown: return "unknown";
  }
  return "unknown";
}

Result<std::vector<std::string>> shlex_split(std::string_view s) { return pytext::shlex_split(s); }

Result<Scenario> parse_scenario(std::string_view text, std::string_view path) {
  Scenario sc;
  sc.file = std::string(path);
  {
    std::string_view base = path;
    if (const size_t slash = base.rfind('/'); slash != std::string_view::npos) base.remove_prefix(slash + 1);
    if (base.ends_with(".scn")) base.remove_suffix(4);
    sc.name = std::string(base);
  }
  if (const auto bad = pytext::utf8_error(text)) {
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(*bad), '\n');
    return fail(Errno::Inval, fmt::format("{}:{}: not valid UTF-8 (byte offset {})", path, line, *bad));
  }
  sc.source = pytext::universal_newlines(text);

  ScenarioStep* cur = nullptr;
  const auto lines = pytext::splitlines(sc.source);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view raw = lines[i];
    const LineError err{path, static_cast<int>(i + 1)};
    const std::string_view line = pytext::rstrip(raw);
    if (pytext::strip(line).empty() || pytext::lstrip(line).starts_with('#')) continue;

    // Indentation is only a space or a tab in column 0 (run: raw[:1] in (" ", "\t")).
    if (raw[0] == ' ' || raw[0] == '\t') {
      if (cur == nullptr) return err("indented line before the first step");
      StepLine sl{std::string(pytext::strip(line)), err.line};
      if (cur->kind == StepKind::Guest) {
        cur->commands.push_back(sl);
      } else if (sl.text.starts_with("guest ")) {
        cur->commands.push_back(StepLine{sl.text.substr(6), err.line});
      } else {
        SPM_TRY_ASSIGN(HostAction a, parse_host_action(sl.text, err));
        cur->actions.push_back(std::move(a));
      }
      cur->lines.push_back(std::move(sl));
      continue;
    }

    // Step header: (step|host)\s+(\S+)\s*$ on the right-stripped line.
    if (const auto kind = header_kind(line)) {
      const auto words = pytext::split(line.substr(4));
      if (words.size() > 1)
        return err(fmt::format("step name must not contain whitespace: '{}'", pytext::strip(line.substr(4))));
      ScenarioStep st;
      st.kind = *kind;
      st.name = std::string(words.at(0));
      st.line = err.line;
      sc.steps.push_back(std::move(st));
      cur = &sc.steps.back();
      continue;
    }
    if (line == "step" || line == "host") return err(fmt::format("{} header without a name", line));

    // key: ([a-z_]+):\s*(.*)$
    size_t k = 0;
    while (k < line.size() && is_key_char(line[k])) ++k;
    if (k == 0 || k >= line.size() || line[k] != ':')
      return err(fmt::format("cannot parse: '{}' (expected 'key: value', 'step NAME' or 'host NAME')", line));
    const std::string key(line.substr(0, k));
    const std::string value(pytext::lstrip(line.substr(k + 1)));
    if (key == "desc") {
      sc.desc.push_back(value);
    } else if (key == "qemu") {
      auto words = pytext::shlex_split(value);
      if (!words) return err(fmt::format("qemu: {}", words.error().message));
      sc.qemu_args.insert(sc.qemu_args.end(), words->begin(), words->end());
    } else if (key == "append") {
      sc.append.push_back(value);
    } else if (key == "modules") {
      // The driver keeps the last modules: line; the guest splits the list on blanks.
      std::vector<std::string> mods;
      if (pytext::strip(value) != "none")
        for (const auto w : pytext::split(value)) mods.emplace_back(w);
      sc.modules = std::move(mods);
    } else if (key == "pfns") {
      for (const auto item : pytext::split(value)) {
        SPM_TRY_ASSIGN(PfnSpec spec, parse_pfn_item(item, err));
        sc.pfns.push_back(std::move(spec));
      }
    } else if (key == "timeout") {
      const auto v = pytext::parse_int(value);
      if (!v) return err(fmt::format("timeout: '{}' is not an integer", value));
      if (*v < 0) return err(fmt::format("timeout: {} is negative", *v));
      sc.timeout_s = *v;
    } else if (key == "qemu_timeout") {
      const auto v = pytext::parse_int(value);
      if (!v) return err(fmt::format("qemu_timeout: '{}' is not an integer", value));
      if (*v < 1) return err(fmt::format("qemu_timeout: {} is not a positive number of seconds", *v));
      sc.qemu_timeout_s = *v;
    } else if (key == "config") {
      sc.config.push_back(value);
    } else {
      return err(fmt::format("unknown key '{}'", key));
    }
  }
  sc.description = join(sc.desc, " ");
  return sc;
}

Result<Scenario> load_scenario(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errno::NoEnt, fmt::format("{}: cannot open", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return fail(Errno::NoEnt, fmt::format("{}: read error", path));
  return parse_scenario(buf.str(), path);
}

std::vector<std::string> Scenario::effective_modules() const {
  if (modules) return *modules;
  return {std::begin(kDefaultModules), std::end(kDefaultModules)};
}

int64_t Scenario::command_timeout_s() const {
  // run: `if sc["timeout"]:` — 0 is falsy, so it leaves the guest's default in place.
  return timeout_s && *timeout_s != 0 ? *timeout_s : kDefaultCommandTimeoutS;
}

std::vector<std::string> Scenario::qemu_args_with_defaults() const {
  static const std::pair<std::string_view, std::string_view> kDefaults[] = {
      {"-machine", "pc,nvdimm=on"}, {"-m", "4160M,slots=4,maxmem=32G"}, {"-smp", "1"}};
  std::vector<std::string> out;
  for (const auto& [opt, val] : kDefaults) {
    if (std::find(qemu_args.begin(), qemu_args.end(), opt) == qemu_args.end()) {
      out.emplace_back(opt);
      out.emplace_back(val);
    }
  }
  out.insert(out.end(), qemu_args.begin(), qemu_args.end());
  return out;
}

std::string Scenario::kernel_cmdline() const {
  std::string out(kOracleBaseAppend);
  for (const auto& a : append) {
    out += ' ';
    out += a;
  }
  return out;
}

std::vector<std::string> Scenario::oracle_qemu_cmdline(std::string_view kernel_version) const {
  std::vector<std::string> cmd{"qemu-system-x86_64"};
  const auto with_defaults = qemu_args_with_defaults();
  // Defaults come first, the scenario's own arguments last (run: build_qemu_cmd).
  const size_t n_defaults = with_defaults.size() - qemu_args.size();
  cmd.insert(cmd.end(), with_defaults.begin(), with_defaults.begin() + static_cast<std::ptrdiff_t>(n_defaults));
  const std::vector<std::string> fixed{
      "-display", "none", "-nodefaults", "-no-reboot",
      "-kernel", fmt::format("/boot/vmlinuz-{}", kernel_version),
      "-initrd", "$RUNDIR/initrd.cpio.gz",
      "-append", kernel_cmdline(),
      "-chardev", fmt::format("file,id=con,path=logs/{}.console.log", name), "-serial", "chardev:con",
      "-chardev", "socket,id=ctl,path=$RUNDIR/ctl.sock,server=on,wait=on", "-serial", "chardev:ctl",
      "-qmp", "unix:$RUNDIR/qmp.sock,server=on,wait=off"};
  cmd.insert(cmd.end(), fixed.begin(), fixed.end());
  cmd.insert(cmd.end(), qemu_args.begin(), qemu_args.end());
  return cmd;
}

OrderedJson scenario_to_json(const Scenario& sc) {
  OrderedJson j;
  j["name"] = sc.name;
  j["file"] = sc.file;
  j["description"] = sc.description;
  j["desc"] = sc.desc;
  j["qemu"] = sc.qemu_args;
  j["qemu_with_defaults"] = sc.qemu_args_with_defaults();
  j["append"] = sc.append;
  j["kernel_cmdline"] = sc.kernel_cmdline();
  j["modules"] = sc.modules ? OrderedJson(*sc.modules) : OrderedJson(nullptr);
  j["effective_modules"] = sc.effective_modules();
  OrderedJson pfns = OrderedJson::array();
  for (const auto& p : sc.pfns)
    pfns.push_back({{"text", p.text}, {"start", p.range.start.value()}, {"count", p.range.nr.value()}, {"line", p.line}});
  j["pfns"] = std::move(pfns);
  j["timeout"] = sc.timeout_s ? OrderedJson(*sc.timeout_s) : OrderedJson(nullptr);
  j["command_timeout"] = sc.command_timeout_s();
  j["qemu_timeout"] = sc.qemu_timeout_s;
  j["config"] = sc.config;
  OrderedJson steps = OrderedJson::array();
  for (const auto& st : sc.steps) {
    OrderedJson s;
    s["type"] = step_kind_name(st.kind);
    s["name"] = st.name;
    s["line"] = st.line;
    OrderedJson cmds = OrderedJson::array();
    for (const auto& c : st.commands) cmds.push_back({{"line", c.line}, {"cmd", c.text}});
    s["commands"] = std::move(cmds);
    if (st.kind == StepKind::Host) {
      OrderedJson acts = OrderedJson::array();
      for (const auto& a : st.actions) {
        OrderedJson aj{{"line", a.line}, {"kind", host_action_kind_name(a.kind)}, {"action", a.text}};
        switch (a.kind) {
          case HostActionKind::Qmp: aj["qmp"] = a.qmp; break;
          case HostActionKind::Hmp: aj["command_line"] = a.argument; break;
          case HostActionKind::Sleep: aj["seconds"] = a.seconds; break;
          case HostActionKind::WaitEvent:
            aj["event"] = a.event;
            aj["timeout"] = a.seconds;
            break;
          case HostActionKind::Unknown: aj["verb"] = a.verb; break;
        }
        acts.push_back(std::move(aj));
      }
      s["actions"] = std::move(acts);
    }
    steps.push_back(std::move(s));
  }
  j["steps"] = std::move(steps);
  return j;
}

}  // namespace sparsemem
