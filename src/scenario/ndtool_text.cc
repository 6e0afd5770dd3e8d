// ndctl/daxctl 76.1 text layer (see ndtool_text.h); each part cites the upstream code it mirrors.
// Pure and stateless; the command bodies call in; edit only with tests/unit/ndtool_text_test.cc.
#include "scenario/ndtool_text.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <span>
#include <utility>

#include <fmt/core.h>

namespace sparsemem::sim::ndtool {

namespace {

constexpr uint64_t SZ_1K = 1ULL << 10;
constexpr uint64_t SZ_1M = 1ULL << 20;
constexpr uint64_t SZ_1G = 1ULL << 30;
constexpr uint64_t SZ_1T = 1ULL << 40;

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// ---------------------------------------------------------------------------------------------
// json-c

void indent(std::string& out, int level) { out.append(static_cast<size_t>(level) * 2, ' '); }

// json_escape_str() of json-c 0.16 without JSON_C_TO_STRING_NOSLASHESCAPE.
void escape(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\b': out += "\\b"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\f': out += "\\f"; break;
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '/': out += "\\/"; break;
      default:
        if (c < ' ') {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += ch;
        }
    }
  }
}

// json_object_double_to_json_string_format() with the default "%.17g".
std::string json_c_double(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  std::string s = fmt::format("{:.17g}", d);
  const bool looks_numeric = (!s.empty() && s[0] >= '0' && s[0] <= '9') ||
                             (s.size() > 1 && s[0] == '-' && s[1] >= '0' && s[1] <= '9');
  if (looks_numeric && s.find('.') == std::string::npos && s.find('e') == std::string::npos)
    s += ".0";
  return s;
}

void emit(std::string& out, const nlohmann::ordered_json& v, int level) {
  using Type = nlohmann::ordered_json::value_t;
  switch (v.type()) {
    case Type::object: {
      out += "{\n";
      bool had_children = false;
      for (const auto& [key, val] : v.items()) {
        if (had_children) out += ",\n";
        had_children = true;
        indent(out, level + 1);
        out += '"';
        escape(out, key);
        out += "\":";
        emit(out, val, level + 1);
      }
      if (had_children) out += '\n';
      indent(out, level);
      out += '}';
      return;
    }
    case Type::array: {
      out += "[\n";
      bool had_children = false;
      for (const auto& val : v) {
        if (had_children) out += ",\n";
        had_children = true;
        indent(out, level + 1);
        emit(out, val, level + 1);
      }
      if (had_children) out += '\n';
      indent(out, level);
      out += ']';
      return;
    }
    case Type::string:
      out += '"';
      escape(out, v.get_ref<const std::string&>());
      out += '"';
      return;
    case Type::boolean: out += v.get<bool>() ? "true" : "false"; return;
    case Type::number_integer: out += fmt::format("{}", v.get<int64_t>()); return;
    case Type::number_unsigned: out += fmt::format("{}", v.get<uint64_t>()); return;
    case Type::number_float: out += json_c_double(v.get<double>()); return;
    case Type::null:
    case Type::binary:
    case Type::discarded: out += "null"; return;
  }
  out += "null";
}

}  // namespace

std::string json_c_pretty(const nlohmann::ordered_json& v) {
  std::string out;
  emit(out, v, 0);
  return out;
}

// display_size() of util/json.c (mdadm's human_size_brief): centi-units rounded half up, with the
// tool's unsigned 64-bit arithmetic (bytes * 200 wraps for sizes beyond ~83 PiB, as there).
std::string human_size_text(uint64_t v) {
  if (v < 5000 * SZ_1K) return fmt::format("{}", v);
  uint64_t c_iec = 0, c_jedec = 0;
  std::string_view iec, jedec;
  if (v < 2 * SZ_1G) {
    c_iec = (v * 200 / SZ_1M + 1) / 2;
    c_jedec = (v / 5000 + 1) / 2;
    iec = "MiB", jedec = "MB";
  } else if (v < 2 * SZ_1T) {
    c_iec = (v * 200 / SZ_1G + 1) / 2;
    c_jedec = (v / 5000000 + 1) / 2;
    iec = "GiB", jedec = "GB";
  } else {
    c_iec = (v * 200 / SZ_1T + 1) / 2;
    c_jedec = (v / 5000000000ULL + 1) / 2;
    iec = "TiB", jedec = "TB";
  }
  return fmt::format("{}.{:02} {} ({}.{:02} {})", c_iec / 100, c_iec % 100, iec, c_jedec / 100,
                     c_jedec % 100, jedec);
}

nlohmann::ordered_json size_value(uint64_t v, bool human) {
  if (human && v >= 5000 * SZ_1K) return human_size_text(v);
  return static_cast<int64_t>(v);  // json_object_new_int64() in util_json_object_size()
}

nlohmann::ordered_json hex_value(uint64_t v, bool human) {
  if (!human) return v;  // util_json_new_u64()
  return v == 0 ? std::string("0") : fmt::format("{:#x}", v);  // "%#llx" prints 0 bare
}

DisplayText display_json_array(const nlohmann::ordered_json& array, bool human) {
  DisplayText t;
  const size_t len = array.is_array() ? array.size() : 0;
  if (len > 1 || !human) {
    if (len == 0) t.err = "  Warning: no matching devices found\n\n";
    t.out = json_c_pretty(array);
  } else if (len == 1) {
    t.out = json_c_pretty(array[0]);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------

uint32_t kernfs_name_hash(std::string_view name) {
  uint64_t h = 0;  // init_name_hash(NULL)
  for (char ch : name) {
    const uint64_t c = static_cast<unsigned char>(ch);
    h = (h + (c << 4) + (c >> 4)) * 11;  // partial_name_hash()
  }
  h = (h * 0x61C8864680B583EBULL) >> 32;  // end_name_hash() = hash_long(h, 32), GOLDEN_RATIO_64
  h &= 0x7fffffffULL;
  if (h < 2) h += 2;  // 0 and 1 are "." and ".." for readdir
  if (h >= 0x7fffffffULL) h = 0x7ffffffe;  // INT_MAX is the end-of-directory cookie
  return static_cast<uint32_t>(h);
}

std::vector<std::string> libndctl_order(std::vector<std::string> sysfs_names) {
  std::vector<std::pair<uint32_t, std::string>> keyed;
  keyed.reserve(sysfs_names.size());
  for (auto& n : sysfs_names) keyed.emplace_back(kernfs_name_hash(n), std::move(n));
  std::sort(keyed.begin(), keyed.end());  // kernfs_name_compare(): hash, then strcmp
  std::vector<std::string> out;
  out.reserve(keyed.size());
  for (auto it = keyed.rbegin(); it != keyed.rend(); ++it) out.push_back(std::move(it->second));
  return out;
}

// ---------------------------------------------------------------------------------------------

namespace {

bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

// glibc strtoull(s, &end, 0): returns the value and the index of *end (0 when no digits).
std::pair<uint64_t, size_t> c_strtoull(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  int base = 10;
  if (i < s.size() && s[i] == '0') {
    // "0x" counts as a prefix only before a hex digit; "0xg" is the number 0 ending at 'x'.
    if (i + 2 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X') && digit_value(s[i + 2]) < 16) {
      base = 16;
      i += 2;
    } else {
      base = 8;
    }
  }
  const size_t first = i;
  uint64_t v = 0;
  bool overflow = false;
  while (i < s.size() && digit_value(s[i]) < base) {
    const auto d = static_cast<uint64_t>(digit_value(s[i]));
    if (v > (UINT64_MAX - d) / static_cast<uint64_t>(base)) overflow = true;
    v = v * static_cast<uint64_t>(base) + d;
    ++i;
  }
  if (i == first) return {0, 0};  // no conversion: *end = s
  if (overflow) return {UINT64_MAX, i};
  return {negative ? 0 - v : v, i};
}

// __parse_size64() of util/size.c; units as it reports them.
std::optional<uint64_t> parse_size64(std::string_view s, uint64_t* units) {
  auto [val, end] = c_strtoull(s);
  if (val == UINT64_MAX) return std::nullopt;
  const uint64_t check = val;
  uint64_t unit = 1;
  if (end < s.size()) {
    switch (s[end]) {
      case 'k': case 'K': unit = SZ_1K; break;
      case 'm': case 'M': unit = SZ_1M; break;
      case 'g': case 'G': unit = SZ_1G; break;
      case 't': case 'T': unit = SZ_1T; break;
      default: break;
    }
  }
  if (unit != 1) {
    val *= unit;
    ++end;
  }
  if (units) *units = unit;
  if (val < check || end != s.size()) return std::nullopt;
  return val;
}

}  // namespace

std::optional<uint64_t> parse_size_arg(std::string_view s) { return parse_size64(s, nullptr); }

uint64_t size_arg_units(std::string_view s) {
  uint64_t units = 1;
  (void)parse_size64(s, &units);
  return units;
}

std::string size_align_hint(uint64_t size, std::string_view size_text, uint64_t align,
                            unsigned ways) {
  const uint64_t units = size_arg_units(size_text);
  std::string_view suffix;
  if (units == SZ_1K) suffix = "K";
  else if (units == SZ_1M) suffix = "M";
  else if (units == SZ_1G) suffix = "G";
  else if (units == SZ_1T) suffix = "T";
  const uint64_t size_align = std::max(units, align) * ways;
  uint64_t hint = size_align ? (size / size_align + 1) * size_align / units : 0;
  return fmt::format(
      "'--size=' must align to interleave-width: {} and alignment: {}\n"
      "did you intend --size={}{}?\n",
      ways, static_cast<int64_t>(align), static_cast<int64_t>(hint), suffix);
}

// ---------------------------------------------------------------------------------------------
// util/parse-options.c

namespace {

enum class OptType : uint8_t { Boolean, Incr, String };

struct OptionSpec {
  char short_name;  // '\0': long only
  std::string_view long_name;
  std::string_view argh;  // String options: the <placeholder>
  std::string_view help;
  OptType type;
};

struct CommandSpec {
  std::string_view usage;
  std::span<const OptionSpec> options;
};

// --- the option tables, in the tools' order (ndctl/namespace.c, region.c, dimm.c, list.c;
// daxctl/device.c, list.c at v76.1); the shared rows are macros as the tools' BASE_OPTIONS() are, so
// a table reads in the order its usage prints ---

#define NS_BASE_OPTIONS                                                                           \
  {'b', "bus", "bus-id", "limit namespace to a bus with an id or provider of <bus-id>",          \
   OptType::String},                                                                              \
      {'r', "region", "region-id",                                                                \
       "limit namespace to a region with an id or name of <region-id>", OptType::String},         \
      {'v', "verbose", "", "emit extra debug messages to stderr", OptType::Boolean}

constexpr OptionSpec kCreateNamespace[] = {
    NS_BASE_OPTIONS,
    {'e', "reconfig", "reconfig namespace", "reconfigure existing namespace", OptType::String},
    {'u', "uuid", "uuid", "specify the uuid for the namespace (default: autogenerate)",
     OptType::String},
    {'n', "name", "name", "specify an optional free form name for the namespace", OptType::String},
    {'s', "size", "size", "specify the namespace size in bytes (default: available capacity)",
     OptType::String},
    {'m', "mode", "operation-mode",
     "specify a mode for the namespace, 'sector', 'fsdax', 'devdax' or 'raw'", OptType::String},
    {'M', "map", "memmap-location", "specify 'mem' or 'dev' for the location of the memmap",
     OptType::String},
    {'l', "sector-size", "lba-size", "specify the logical sector size in bytes", OptType::String},
    {'t', "type", "type", "specify the type of namespace to create 'pmem' or 'blk'",
     OptType::String},
    {'a', "align", "align", "specify the namespace alignment in bytes (default: 2M)",
     OptType::String},
    {'f', "force", "", "reconfigure namespace even if currently active", OptType::Boolean},
    {'L', "autolabel", "", "automatically initialize labels", OptType::Boolean},
    {'c', "continue", "", "continue creating namespaces as long as the filter criteria are met",
     OptType::Boolean},
    {'R', "autorecover", "", "automatically cleanup on failure", OptType::Boolean},
};

constexpr OptionSpec kDestroyNamespace[] = {
    NS_BASE_OPTIONS,
    {'f', "force", "", "destroy namespace even if currently active", OptType::Boolean},
};

constexpr OptionSpec kNamespaceBase[] = {NS_BASE_OPTIONS};
#undef NS_BASE_OPTIONS

constexpr OptionSpec kRegion[] = {
    {'b', "bus", "bus-id", "<region> must be on a bus with an id/provider of <bus-id>",
     OptType::String},
    {'t', "type", "region-type", "<region> must be of the specified type", OptType::String},
};

constexpr OptionSpec kInitLabels[] = {
    {'b', "bus", "bus-id", "<nmem> must be on a bus with an id/provider of <bus-id>",
     OptType::String},
    {'v', "verbose", "", "turn on debug", OptType::Boolean},
    {'f', "force", "", "force initialization even if existing index-block present",
     OptType::Boolean},
    {'V', "label-version", "version-number",
     "namespace label specification version (default: 1.1)", OptType::String},
};

constexpr OptionSpec kNdctlList[] = {
    {'b', "bus", "bus-id", "filter by bus", OptType::String},
    {'r', "region", "region-id", "filter by region", OptType::String},
    {'d', "dimm", "dimm-id", "filter by dimm", OptType::String},
    {'n', "namespace", "namespace-id", "filter by namespace id", OptType::String},
    {'m', "mode", "namespace-mode", "filter by namespace mode", OptType::String},
    {'t', "type", "region-type", "filter by region-type", OptType::String},
    {'U', "numa-node", "numa node", "filter by numa node", OptType::String},
    {'B', "buses", "", "include bus info", OptType::Boolean},
    {'D', "dimms", "", "include dimm info", OptType::Boolean},
    {'F', "firmware", "", "include firmware info", OptType::Boolean},
    {'H', "health", "", "include dimm health", OptType::Boolean},
    {'R', "regions", "", "include region info", OptType::Boolean},
    {'N', "namespaces", "", "include namespace info (default)", OptType::Boolean},
    {'X', "device-dax", "", "include device-dax info", OptType::Boolean},
    {'C', "capabilities", "", "include region capability info", OptType::Boolean},
    {'i', "idle", "", "include idle devices", OptType::Boolean},
    {'c', "configured", "", "include configured namespaces, disabled or not", OptType::Boolean},
    {'M', "media-errors", "", "include media errors", OptType::Boolean},
    {'u', "human", "", "use human friendly number formats ", OptType::Boolean},
    {'v', "verbose", "", "increase output detail", OptType::Incr},
};

constexpr OptionSpec kDaxctlList[] = {
    {'r', "region", "region-id", "filter by region", OptType::String},
    {'d', "dev", "dev-id", "filter by dax device instance name", OptType::String},
    {'D', "devices", "", "include dax device info", OptType::Boolean},
    {'R', "regions", "", "include dax region info", OptType::Boolean},
    {'M', "mappings", "", "include dax mappings info", OptType::Boolean},
    {'i', "idle", "", "include idle devices", OptType::Boolean},
    {'u', "human", "", "use human friendly number formats ", OptType::Boolean},
};

#define DAX_BASE_OPTIONS                                                                          \
  {'r', "region", "region-id", "filter by region", OptType::String},                             \
      {'u', "human", "", "use human friendly number formats", OptType::Boolean},                  \
      {'v', "verbose", "", "emit more debug messages", OptType::Boolean}
#define DAX_ZONE_OPTIONS \
  {'\0', "no-movable", "", "online memory in ZONE_NORMAL", OptType::Boolean}

constexpr OptionSpec kReconfigureDevice[] = {
    DAX_BASE_OPTIONS,
    {'s', "size", "size", "size to switch the device to", OptType::String},
    {'a', "align", "align", "alignment to switch the device to", OptType::String},
    {'\0', "input", "input", "input device JSON file", OptType::String},
    {'m', "mode", "mode", "mode to switch the device to", OptType::String},
    {'N', "no-online", "", "don't auto-online memory sections", OptType::Boolean},
    {'f', "force", "", "attempt to offline memory sections before reconfiguration",
     OptType::Boolean},
    {'C', "check-config", "", "use config files to determine parameters for the operation",
     OptType::Boolean},
    DAX_ZONE_OPTIONS,
};

constexpr OptionSpec kOnlineMemory[] = {DAX_BASE_OPTIONS, DAX_ZONE_OPTIONS};
constexpr OptionSpec kDaxBase[] = {DAX_BASE_OPTIONS};
#undef DAX_BASE_OPTIONS
#undef DAX_ZONE_OPTIONS

CommandSpec command_spec(Subcommand cmd) {
  switch (cmd) {
    case Subcommand::NdctlCreateNamespace:
      return {"ndctl create-namespace [<options>]", kCreateNamespace};
    case Subcommand::NdctlDestroyNamespace:
      return {"ndctl destroy-namespace <namespace> [<options>]", kDestroyNamespace};
    case Subcommand::NdctlDisableNamespace:
      return {"ndctl disable-namespace <namespace> [<options>]", kNamespaceBase};
    case Subcommand::NdctlEnableNamespace:
      return {"ndctl enable-namespace <namespace> [<options>]", kNamespaceBase};
    case Subcommand::NdctlDisableRegion:
      return {"ndctl disable-region <region> [<options>]", kRegion};
    case Subcommand::NdctlEnableRegion:
      return {"ndctl enable-region <region> [<options>]", kRegion};
    case Subcommand::NdctlInitLabels:
      return {"ndctl init-labels <nmem0> [<nmem1>..<nmemN>] [<options>]", kInitLabels};
    case Subcommand::NdctlList: return {"ndctl list [<options>]", kNdctlList};
    case Subcommand::DaxctlList: return {"daxctl list [<options>]", kDaxctlList};
    case Subcommand::DaxctlReconfigureDevice:
      return {"daxctl reconfigure-device <device> [<options>]", kReconfigureDevice};
    case Subcommand::DaxctlOnlineMemory:
      return {"daxctl online-memory <device> [<options>]", kOnlineMemory};
    case Subcommand::DaxctlOfflineMemory:
      return {"daxctl offline-memory <device> [<options>]", kDaxBase};
    case Subcommand::DaxctlEnableDevice: return {"daxctl enable-device <device>", kDaxBase};
    case Subcommand::DaxctlDisableDevice: return {"daxctl disable-device <device>", kDaxBase};
  }
  return {"", {}};
}

// print_option_help(): the left part, then the help at column 27 (USAGE_OPTS_WIDTH 24 + GAP 2),
// or on the next line indented 26 when the left part is wider than 24.
std::string option_help_line(const OptionSpec& o) {
  std::string line = "    ";
  if (o.short_name) {
    line += '-';
    line += o.short_name;
  } else {
    line += "    ";
  }
  if (o.short_name && !o.long_name.empty()) line += ", ";
  if (!o.long_name.empty()) {
    line += "--";
    line += o.long_name;
  }
  if (o.type == OptType::String) line += fmt::format(" <{}>", o.argh);
  if (line.size() <= 24) {
    line.append(24 - line.size() + 2, ' ');
  } else {
    line += '\n';
    line.append(26, ' ');
  }
  line += o.help;
  line += '\n';
  return line;
}

std::string usage_header(const CommandSpec& spec) {
  return fmt::format("\n usage: {}\n\n", spec.usage);
}

std::string full_usage(const CommandSpec& spec) {
  std::string s = usage_header(spec);
  for (const auto& o : spec.options) s += option_help_line(o);
  s += '\n';
  return s;
}

// error() of util/usage.c; most callers' messages end in '\n' themselves.
void error(std::string& err, std::string_view msg) {
  err += "  Error: ";
  err += msg;
  err += '\n';
}

struct OptState {
  bool seen = false;  // given on the command line, possibly negated
  int count = 0;  // Boolean: 0/1; Incr: the count
  std::optional<std::string> str;
};

struct Cmdline {
  std::vector<OptState> st;
  std::vector<std::string> words;  // non-option arguments, in order

  const OptState& get(const CommandSpec& spec, std::string_view long_name) const {
    for (size_t k = 0; k < spec.options.size(); ++k)
      if (spec.options[k].long_name == long_name) return st[k];
    static const OptState none;
    return none;
  }
  bool flag(const CommandSpec& spec, std::string_view long_name) const {
    return get(spec, long_name).count != 0;
  }
  const std::optional<std::string>& str(const CommandSpec& spec,
                                        std::string_view long_name) const {
    return get(spec, long_name).str;
  }
};

constexpr int OPT_SHORT = 1;
constexpr int OPT_UNSET = 2;

// parse_options_step() with flags 0 (internal help on, unknown options fatal).
class OptionParser {
 public:
  OptionParser(const CommandSpec& spec, const std::vector<std::string>& argv, Cmdline& out,
               ParseOutcome& res)
      : m_spec(spec), m_argv(argv), m_out(out), m_res(res) {
    m_out.st.assign(spec.options.size(), OptState{});
  }

  // false: the tool exits here (m_res filled).
  bool run() {
    for (m_i = 2; m_i < m_argv.size(); ++m_i) {
      const std::string_view arg = m_argv[m_i];
      if (arg.size() < 2 || arg[0] != '-') {
        m_out.words.emplace_back(arg);
        continue;
      }
      if (arg[1] != '-') {
        if (!short_cluster(arg)) return false;
        continue;
      }
      if (arg.size() == 2) {  // "--": the rest are words
        for (++m_i; m_i < m_argv.size(); ++m_i) m_out.words.push_back(m_argv[m_i]);
        break;
      }
      const std::string_view name = arg.substr(2);
      if (name == "help-all" || name == "help") return help();
      if (name == "list-opts") {
        for (const auto& o : m_spec.options) m_res.out += fmt::format("--{} ", o.long_name);
        return stop(130);
      }
      if (name == "list-cmds") return stop(130);
      m_opt.reset();
      const int r = long_opt(name);
      if (r == -1) return option_usage(name, false);
      if (r == -2) {
        error(m_res.err, fmt::format("unknown option `{}'", name));
        return unknown();
      }
    }
    return true;
  }

 private:
  bool stop(int rc) {
    m_res.ok = false;
    m_res.rc = rc;
    return false;
  }
  bool help() {
    m_res.err += full_usage(m_spec);
    return stop(129);
  }
  bool unknown() {
    m_res.err += full_usage(m_spec);
    return stop(129);
  }

  // parse_options_usage(): the header and the help line of the option that failed.
  bool option_usage(std::string_view optstr, bool short_opt) {
    m_res.err += usage_header(m_spec);
    for (const auto& o : m_spec.options) {
      const bool hit =
          short_opt ? (!optstr.empty() && o.short_name == optstr[0])
                    : (!o.long_name.empty() &&
                       (starts_with(optstr, o.long_name) ||
                        (starts_with(optstr, "no-") && starts_with(optstr.substr(3), o.long_name))));
      if (hit) {
        m_res.err += option_help_line(o);
        break;
      }
    }
    return stop(129);
  }

  int opterror(const OptionSpec& o, std::string_view reason, int flags) {
    if (flags & OPT_SHORT)
      error(m_res.err, fmt::format("switch `{}' {}", o.short_name, reason));
    else if (flags & OPT_UNSET)
      error(m_res.err, fmt::format("option `no-{}' {}", o.long_name, reason));
    else
      error(m_res.err, fmt::format("option `{}' {}", o.long_name, reason));
    return -1;
  }

  // get_value()
  int get_value(size_t k, int flags) {
    const OptionSpec& o = m_spec.options[k];
    OptState& s = m_out.st[k];
    const bool unset = flags & OPT_UNSET;
    s.seen = true;
    if (unset && m_opt) return opterror(o, "takes no value", flags);
    if (!(flags & OPT_SHORT) && m_opt && o.type != OptType::String)
      return opterror(o, "takes no value", flags);
    switch (o.type) {
      case OptType::Boolean: s.count = unset ? 0 : 1; return 0;
      case OptType::Incr: s.count = unset ? 0 : s.count + 1; return 0;
      case OptType::String:
        if (unset) {
          s.str.reset();
        } else if (m_opt) {
          s.str = std::string(*m_opt);
          m_opt.reset();
        } else if (m_i + 1 < m_argv.size()) {
          s.str = m_argv[++m_i];
        } else {
          return opterror(o, "requires a value", flags);
        }
        return 0;
    }
    return 0;
  }

  // parse_short_opt(): 0 done, -1 error, -2 unknown.
  int short_opt() {
    for (size_t k = 0; k < m_spec.options.size(); ++k) {
      if (m_spec.options[k].short_name == (*m_opt)[0]) {
        m_opt = m_opt->size() > 1 ? std::optional(m_opt->substr(1)) : std::nullopt;
        return get_value(k, OPT_SHORT);
      }
    }
    return -2;
  }

  bool short_cluster(std::string_view arg) {
    m_opt = arg.substr(1);
    if ((*m_opt)[0] == 'h') return help();
    switch (short_opt()) {
      case -1: return option_usage(arg.substr(1), true);
      case -2:
        error(m_res.err, fmt::format("unknown switch `{}'", (*m_opt)[0]));
        return unknown();
      default: break;
    }
    // check_typos(): "-force" is taken for a mistyped "--force" and exits without the usage.
    if (m_opt && arg.size() - 1 >= 3) {
      const std::string_view word = arg.substr(1);
      bool typo = starts_with(word, "no-");
      for (const auto& o : m_spec.options)
        typo = typo || (!o.long_name.empty() && starts_with(o.long_name, word));
      if (typo) {
        error(m_res.err, fmt::format("did you mean `--{}` (with two dashes ?)", word));
        return stop(129);
      }
    }
    while (m_opt) {
      if ((*m_opt)[0] == 'h') return help();
      const std::string_view rest = *m_opt;
      switch (short_opt()) {
        case -1: return option_usage(rest, true);
        case -2:
          // The tool fakes "-<rest>" as the argument; a '-' in the cluster makes it "--...".
          if (rest[0] == '-')
            error(m_res.err, fmt::format("unknown option `{}'", rest.substr(1)));
          else
            error(m_res.err, fmt::format("unknown switch `{}'", rest[0]));
          return unknown();
        default: break;
      }
    }
    return true;
  }

  // parse_long_opt(): exact names, "no-" negation, unambiguous abbreviations.
  int long_opt(std::string_view arg) {
    const size_t arg_end = std::min(arg.find('='), arg.size());
    const std::string_view arg_name = arg.substr(0, arg_end);
    std::optional<size_t> abbrev, ambiguous;
    int abbrev_flags = 0, ambiguous_flags = 0;
    for (size_t k = 0; k < m_spec.options.size(); ++k) {
      const std::string_view name = m_spec.options[k].long_name;
      if (name.empty()) continue;
      int flags = 0;
      std::optional<std::string_view> rest;
      if (starts_with(arg, name)) rest = arg.substr(name.size());
      bool abbreviated = false;
      if (!rest) {
        if (starts_with(name, "no-")) {
          // "--online" negates "--no-online" rather than needing "--no-no-online".
          if (starts_with(arg, name.substr(3))) {
            rest = arg.substr(name.size() - 3);
            flags |= OPT_UNSET;
          } else if (starts_with(name.substr(3), arg)) {
            flags |= OPT_UNSET;
            abbreviated = true;
          }
        }
        if (!rest && !abbreviated) {
          if (name.size() >= arg_name.size() && starts_with(name, arg_name)) {
            abbreviated = true;
          } else if (starts_with("no-", arg)) {
            flags |= OPT_UNSET;
            abbreviated = true;
          } else if (!starts_with(arg, "no-")) {
            continue;
          } else {
            flags |= OPT_UNSET;
            if (starts_with(arg.substr(3), name))
              rest = arg.substr(3 + name.size());
            else if (starts_with(name, arg.substr(3)))
              abbreviated = true;
            else
              continue;
          }
        }
        if (abbreviated) {
          if (abbrev) {
            ambiguous = abbrev;
            ambiguous_flags = abbrev_flags;
          }
          if (!(flags & OPT_UNSET) && arg_end < arg.size()) m_opt = arg.substr(arg_end + 1);
          abbrev = k;
          abbrev_flags = flags;
          continue;
        }
      }
      if (!rest->empty()) {
        if ((*rest)[0] != '=') continue;
        m_opt = rest->substr(1);
      }
      return get_value(k, flags);
    }
    if (ambiguous) {
      error(m_res.err,
            fmt::format("Ambiguous option: {} (could be --{}{} or --{}{})", arg,
                        (ambiguous_flags & OPT_UNSET) ? "no-" : "",
                        m_spec.options[*ambiguous].long_name,
                        (abbrev_flags & OPT_UNSET) ? "no-" : "",
                        m_spec.options[*abbrev].long_name));
      return -1;
    }
    if (abbrev) return get_value(*abbrev, abbrev_flags);
    return -2;
  }

  const CommandSpec& m_spec;
  const std::vector<std::string>& m_argv;
  Cmdline& m_out;
  ParseOutcome& m_res;
  size_t m_i = 0;
  std::optional<std::string_view> m_opt;  // p->opt: the value or the rest of a short cluster
};

// Parses argv against cmd's table; false (with res filled) when the tool exits in parse_options().
bool parse_cmdline(Subcommand cmd, const std::vector<std::string>& argv, Cmdline& cl,
                   ParseOutcome& res) {
  const CommandSpec spec = command_spec(cmd);
  OptionParser p(spec, argv, cl, res);
  return p.run();
}

ParseOutcome usage_error(Subcommand cmd, std::string err) {
  ParseOutcome res;
  res.ok = false;
  res.rc = 129;
  res.err = std::move(err) + full_usage(command_spec(cmd));
  return res;
}

bool ascii_iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

enum class NsMode { Unknown, Fsdax, Devdax, Sector, Raw };

// util_nsmode() of ndctl/filter.c.
NsMode util_nsmode(const std::optional<std::string>& mode) {
  if (!mode) return NsMode::Unknown;
  if (ascii_iequal(*mode, "memory") || ascii_iequal(*mode, "fsdax")) return NsMode::Fsdax;
  if (ascii_iequal(*mode, "sector") || ascii_iequal(*mode, "safe")) return NsMode::Sector;
  if (ascii_iequal(*mode, "dax") || ascii_iequal(*mode, "devdax")) return NsMode::Devdax;
  if (ascii_iequal(*mode, "raw")) return NsMode::Raw;
  return NsMode::Unknown;
}

// uuid_parse() of util-linux libuuid: exactly 36 characters, dashes at 8, 13, 18, 23, hex elsewhere.
bool uuid_parses(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (digit_value(s[i]) >= 16) {
      return false;
    }
  }
  return true;
}

enum class NsAction { Create, Destroy, Disable, Enable };

// parse_namespace_options() + set_defaults() of ndctl/namespace.c.
ParseOutcome parse_namespace(Subcommand cmd, NsAction action, const std::vector<std::string>& argv,
                             CreateNamespaceArgs& p, std::vector<std::string>& words) {
  ParseOutcome res;
  Cmdline cl;
  if (!parse_cmdline(cmd, argv, cl, res)) return res;
  const CommandSpec spec = command_spec(cmd);
  p = CreateNamespaceArgs{};
  p.do_scan = argv.size() <= 2;
  p.bus = cl.str(spec, "bus");
  p.region = cl.str(spec, "region");
  p.verbose = cl.flag(spec, "verbose");
  p.force = cl.flag(spec, "force");
  p.reconfig = cl.str(spec, "reconfig");
  p.uuid = cl.str(spec, "uuid");
  p.name = cl.str(spec, "name");
  p.mode = cl.str(spec, "mode");
  p.map = cl.str(spec, "map");
  p.type = cl.str(spec, "type");
  p.cont = cl.flag(spec, "continue");
  // The tool's param starts with autolabel and autorecover on; only --no-<opt> clears them.
  p.autolabel = !cl.get(spec, "autolabel").seen || cl.flag(spec, "autolabel");
  p.autorecover = !cl.get(spec, "autorecover").seen || cl.flag(spec, "autorecover");
  const auto& size_text = cl.str(spec, "size");
  const auto& align_text = cl.str(spec, "align");
  const auto& sector_text = cl.str(spec, "sector-size");
  const bool create = action == NsAction::Create;

  std::string err;
  bool failed = false;
  if (p.type) {
    if (*p.type != "pmem" && *p.type != "blk") {
      error(err, fmt::format("invalid type '{}', must be either 'pmem' or 'blk'\n", *p.type));
      failed = true;
    }
  } else if (!p.reconfig && create) {
    p.type = "pmem";
  }
  if (p.mode) {
    if (util_nsmode(p.mode) == NsMode::Unknown) {
      error(err, fmt::format("invalid mode '{}'\n", *p.mode));
      failed = true;
    }
  } else if (!p.reconfig && p.type) {
    p.mode = *p.type == "pmem" ? "fsdax" : "sector";
    p.mode_default = true;
  }
  if (p.map) {
    if (*p.map != "mem" && *p.map != "dev") {
      error(err, fmt::format("invalid map location '{}'\n", *p.map));
      failed = true;
    }
    if (!p.reconfig && p.mode && *p.mode != "fsdax" && *p.mode != "devdax") {
      error(err, "--map only valid for an devdax mode pmem namespace\n");
      failed = true;
    }
  } else if (!p.reconfig) {
    p.map = "dev";
  }
  if (p.type && p.mode && *p.type == "blk" && (*p.mode == "fsdax" || *p.mode == "devdax")) {
    error(err, "only 'pmem' namespaces support dax operation\n");
    failed = true;
  }
  if (size_text) {
    p.size_text = *size_text;
    p.size = parse_size_arg(*size_text);
    if (!p.size) {
      error(err, fmt::format("failed to parse namespace size '{}'\n", *size_text));
      failed = true;
    }
  }
  if (align_text) {
    p.align_text = *align_text;
    p.align = parse_size_arg(*align_text);
    if (!p.align) {
      error(err, fmt::format("failed to parse namespace alignment '{}'\n", *align_text));
      failed = true;
    } else if ((*p.align & (*p.align - 1)) != 0 || *p.align < 4096) {
      error(err, "align must be a power-of-2 greater than 4096\n");  // sysconf(_SC_PAGE_SIZE)
      failed = true;
    }
  }
  if (size_text && !p.size) {  // set_defaults() checks --size a second time
    error(err, fmt::format("failed to parse namespace size '{}'\n", *size_text));
    failed = true;
  }
  if (p.uuid && !uuid_parses(*p.uuid)) {
    error(err, fmt::format("failed to parse uuid: '{}'\n", *p.uuid));
    failed = true;
  }
  if (sector_text) {
    p.sector_size_text = *sector_text;
    p.sector_size = parse_size_arg(*sector_text);
    if (!p.sector_size) {
      error(err, fmt::format("invalid sector size: {}\n", *sector_text));
      failed = true;
    }
  } else if ((p.type && *p.type == "blk") || util_nsmode(p.mode) == NsMode::Sector) {
    p.sector_size = 4096;
    p.sector_size_text = "4096";
  }

  if (cl.words.empty() && !create) {
    const char* what = action == NsAction::Destroy   ? "destroy"
                       : action == NsAction::Disable ? "disable"
                                                     : "enable";
    error(err, fmt::format("specify a namespace to {}, or \"all\"\n", what));
    failed = true;
  }
  for (size_t i = create ? 0 : 1; i < cl.words.size(); ++i) {
    error(err, fmt::format("unknown extra parameter \"{}\"\n", cl.words[i]));
    failed = true;
  }
  if (failed) return usage_error(cmd, std::move(err));
  words = std::move(cl.words);
  return res;
}

// dimm_action()'s sscanf(name, "nmem%lu", &id) == 1.
bool is_dimm_name(std::string_view s) {
  if (!starts_with(s, "nmem")) return false;
  size_t i = 4;
  while (i < s.size() && is_space(s[i])) ++i;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  return i < s.size() && s[i] >= '0' && s[i] <= '9';
}

// parse_device_options() of daxctl/device.c, the part common to every action.
enum class DaxAction { Reconfig, Online, Offline, Disable, Enable };

bool parse_dax_device(Subcommand cmd, DaxAction action, const std::vector<std::string>& argv,
                      Cmdline& cl, std::string& device, ParseOutcome& res) {
  if (!parse_cmdline(cmd, argv, cl, res)) return false;
  std::string err;
  bool failed = false;
  if (!cl.words.empty()) {
    const std::string& w = cl.words[0];
    device = w.substr(w.rfind('/') == std::string::npos ? 0 : w.rfind('/') + 1);  // GNU basename
  } else {
    const char* what = action == DaxAction::Reconfig  ? "reconfigure"
                       : action == DaxAction::Online  ? "online memory for"
                       : action == DaxAction::Offline ? "offline memory for"
                       : action == DaxAction::Enable  ? "enable"
                                                      : "disable";
    err += fmt::format("specify a device to {}, or \"all\"\n", what);
    failed = true;
  }
  for (size_t i = 1; i < cl.words.size(); ++i) {
    err += fmt::format("unknown extra parameter \"{}\"\n", cl.words[i]);
    failed = true;
  }
  if (failed) {
    res = usage_error(cmd, std::move(err));
    return false;
  }
  return true;
}

}  // namespace

std::string usage_text(Subcommand cmd) { return full_usage(command_spec(cmd)); }

ParseOutcome parse_create_namespace(const std::vector<std::string>& argv,
                                    CreateNamespaceArgs& out) {
  std::vector<std::string> words;
  CreateNamespaceArgs p;
  ParseOutcome res = parse_namespace(Subcommand::NdctlCreateNamespace, NsAction::Create, argv, p, words);
  if (!res.ok) return res;
  out = std::move(p);
  return res;
}


namespace {

ParseOutcome parse_xable_namespace(Subcommand cmd, NsAction action,
                                   const std::vector<std::string>& argv,
                                   DestroyNamespaceArgs& out) {
  std::vector<std::string> words;
  CreateNamespaceArgs p;
  ParseOutcome res = parse_namespace(cmd, action, argv, p, words);
  if (!res.ok) return res;
  out = DestroyNamespaceArgs{};
  out.target = words[0];  // parse_namespace() fails unless exactly one word was given
  out.bus = std::move(p.bus);
  out.region = std::move(p.region);
  out.force = p.force;
  out.verbose = p.verbose;
  return res;
}

// parse_region_options() of ndctl/region.c.
ParseOutcome parse_region(Subcommand cmd, const std::vector<std::string>& argv, RegionArgs& out) {
  ParseOutcome res;
  Cmdline cl;
  if (!parse_cmdline(cmd, argv, cl, res)) return res;
  const CommandSpec spec = command_spec(cmd);
  std::string err;
  if (cl.words.empty()) error(err, "specify a specific region id to act on, or \"all\"\n");
  for (size_t i = 1; i < cl.words.size(); ++i)
    error(err, fmt::format("unknown extra parameter \"{}\"\n", cl.words[i]));
  if (cl.words.size() != 1) return usage_error(cmd, std::move(err));
  const auto& type = cl.str(spec, "type");
  if (type && *type != "pmem" && *type != "blk") {
    error(err, fmt::format("unknown region type '{}', should be 'pmem' or 'blk'\n", *type));
    return usage_error(cmd, std::move(err));
  }
  out = RegionArgs{};
  out.target = cl.words[0];
  out.bus = cl.str(spec, "bus");
  out.type = type;
  return res;
}

ParseOutcome parse_memory_op(Subcommand cmd, DaxAction action,
                             const std::vector<std::string>& argv, MemoryOpArgs& out) {
  ParseOutcome res;
  Cmdline cl;
  std::string device;
  if (!parse_dax_device(cmd, action, argv, cl, device, res)) return res;
  const CommandSpec spec = command_spec(cmd);
  out = MemoryOpArgs{};
  out.device = std::move(device);
  out.region = cl.str(spec, "region");
  out.no_movable = cl.flag(spec, "no-movable");
  out.human = cl.flag(spec, "human");
  out.verbose = cl.flag(spec, "verbose");
  return res;
}

ParseOutcome parse_device_op(Subcommand cmd, DaxAction action,
                             const std::vector<std::string>& argv, DeviceOpArgs& out) {
  ParseOutcome res;
  Cmdline cl;
  std::string device;
  if (!parse_dax_device(cmd, action, argv, cl, device, res)) return res;
  const CommandSpec spec = command_spec(cmd);
  out = DeviceOpArgs{};
  out.device = std::move(device);
  out.region = cl.str(spec, "region");
  out.human = cl.flag(spec, "human");
  out.verbose = cl.flag(spec, "verbose");
  return res;
}

}  // namespace

ParseOutcome parse_destroy_namespace(const std::vector<std::string>& argv,
                                     DestroyNamespaceArgs& out) {
  return parse_xable_namespace(Subcommand::NdctlDestroyNamespace, NsAction::Destroy, argv, out);
}

ParseOutcome parse_disable_namespace(const std::vector<std::string>& argv,
                                     DestroyNamespaceArgs& out) {
  return parse_xable_namespace(Subcommand::NdctlDisableNamespace, NsAction::Disable, argv, out);
}

ParseOutcome parse_enable_namespace(const std::vector<std::string>& argv,
                                    DestroyNamespaceArgs& out) {
  return parse_xable_namespace(Subcommand::NdctlEnableNamespace, NsAction::Enable, argv, out);
}

ParseOutcome parse_disable_region(const std::vector<std::string>& argv, RegionArgs& out) {
  return parse_region(Subcommand::NdctlDisableRegion, argv, out);
}

ParseOutcome parse_enable_region(const std::vector<std::string>& argv, RegionArgs& out) {
  return parse_region(Subcommand::NdctlEnableRegion, argv, out);
}

// dimm_action() of ndctl/dimm.c up to the DIMM walk, with cmd_init_labels()'s summary for the one
// non-usage stop (a bad label version).
ParseOutcome parse_init_labels(const std::vector<std::string>& argv, InitLabelsArgs& out) {
  constexpr Subcommand cmd = Subcommand::NdctlInitLabels;
  ParseOutcome res;
  Cmdline cl;
  if (!parse_cmdline(cmd, argv, cl, res)) return res;
  const CommandSpec spec = command_spec(cmd);
  if (cl.words.empty()) return usage_error(cmd, "");
  std::string notes;
  size_t invalid = 0;
  std::vector<std::string> targets;
  for (const auto& w : cl.words) {
    if (w == "all") {
      targets.assign(1, "all");
      break;
    }
    if (is_dimm_name(w)) {
      targets.push_back(w);
    } else {
      notes += fmt::format("'{}' is not a valid dimm name\n", w);
      ++invalid;
    }
  }
  // The tool compares the error count with the word count after "all" collapsed the list to one
  // word, so "bogus all" is also a usage error.
  const size_t argc = (!targets.empty() && targets[0] == "all") ? 1 : cl.words.size();
  if (invalid == argc) return usage_error(cmd, std::move(notes));

  const std::string version = cl.str(spec, "label-version").value_or("1.1");
  if (version != "1.1" && version != "v1.1" && version != "1.2" && version != "v1.2") {
    res.ok = false;
    res.rc = 1;  // EXIT_FAILURE from cmd_init_labels()
    res.err = notes + fmt::format("'{}' is not a valid label version\n", version) +
              "initialized 0 nmem\n";
    return res;
  }
  out = InitLabelsArgs{};
  out.targets = std::move(targets);
  out.bus = cl.str(spec, "bus");
  out.force = cl.flag(spec, "force");
  out.verbose = cl.flag(spec, "verbose");
  out.label_version = version;
  out.label_v12 = version == "1.2" || version == "v1.2";
  res.err = std::move(notes);
  return res;
}

NdctlListArgs NdctlListArgs::resolved() const {
  NdctlListArgs r = *this;
  auto num_list_flags = [&r] { return r.buses + r.dimms + r.regions + r.namespaces; };
  if (num_list_flags() == 0) {
    r.buses = r.bus.has_value();
    r.regions = r.region.has_value();
    r.dimms = r.dimm.has_value();
    if (r.dax && !r.mode) r.mode = "dax";
  }
  if (r.verbose >= 3) {
    r.idle = r.firmware = r.health = r.capabilities = true;
  }
  if (r.verbose >= 2) {
    r.dimms = r.buses = r.regions = true;
  }
  if (r.verbose >= 1) {
    r.media_errors = true;
    r.namespaces = true;
    r.dax = true;
  }
  if (num_list_flags() == 0) r.namespaces = true;
  return r;
}

ParseOutcome parse_ndctl_list(const std::vector<std::string>& argv, NdctlListArgs& out) {
  constexpr Subcommand cmd = Subcommand::NdctlList;
  ParseOutcome res;
  Cmdline cl;
  if (!parse_cmdline(cmd, argv, cl, res)) return res;
  const CommandSpec spec = command_spec(cmd);
  if (!cl.words.empty()) {
    std::string err;
    for (const auto& w : cl.words) error(err, fmt::format("unknown parameter \"{}\"\n", w));
    return usage_error(cmd, std::move(err));
  }
  out = NdctlListArgs{};
  out.bus = cl.str(spec, "bus");
  out.region = cl.str(spec, "region");
  out.dimm = cl.str(spec, "dimm");
  out.namespace_id = cl.str(spec, "namespace");
  out.mode = cl.str(spec, "mode");
  out.type = cl.str(spec, "type");
  out.numa_node = cl.str(spec, "numa-node");
  out.buses = cl.flag(spec, "buses");
  out.dimms = cl.flag(spec, "dimms");
  out.firmware = cl.flag(spec, "firmware");
  out.health = cl.flag(spec, "health");
  out.regions = cl.flag(spec, "regions");
  out.namespaces = cl.flag(spec, "namespaces");
  out.dax = cl.flag(spec, "device-dax");
  out.capabilities = cl.flag(spec, "capabilities");
  out.idle = cl.flag(spec, "idle");
  out.configured = cl.flag(spec, "configured");
  out.media_errors = cl.flag(spec, "media-errors");
  out.human = cl.flag(spec, "human");
  out.verbose = cl.get(spec, "verbose").count;
  return res;
}

DaxctlListArgs DaxctlListArgs::resolved() const {
  DaxctlListArgs r = *this;
  if (!r.regions && !r.devices) {
    r.regions = r.region.has_value();
    r.devices = r.dev.has_value();
  }
  if (!r.regions && !r.devices) r.devices = true;
  return r;
}

ParseOutcome parse_daxctl_list(const std::vector<std::string>& argv, DaxctlListArgs& out) {
  constexpr Subcommand cmd = Subcommand::DaxctlList;
  ParseOutcome res;
  Cmdline cl;
  if (!parse_cmdline(cmd, argv, cl, res)) return res;
  const CommandSpec spec = command_spec(cmd);
  if (!cl.words.empty()) {
    std::string err;
    for (const auto& w : cl.words) error(err, fmt::format("unknown parameter \"{}\"\n", w));
    return usage_error(cmd, std::move(err));
  }
  out = DaxctlListArgs{};
  out.region = cl.str(spec, "region");
  out.dev = cl.str(spec, "dev");
  out.devices = cl.flag(spec, "devices");
  out.regions = cl.flag(spec, "regions");
  out.mappings = cl.flag(spec, "mappings");
  out.idle = cl.flag(spec, "idle");
  out.human = cl.flag(spec, "human");
  return res;
}

// parse_device_options() of daxctl/device.c for ACTION_RECONFIG.
ParseOutcome parse_reconfigure_device(const std::vector<std::string>& argv,
                                      ReconfigureDeviceArgs& out) {
  constexpr Subcommand cmd = Subcommand::DaxctlReconfigureDevice;
  ParseOutcome res;
  Cmdline cl;
  std::string device;
  if (!parse_dax_device(cmd, DaxAction::Reconfig, argv, cl, device, res)) return res;
  const CommandSpec spec = command_spec(cmd);
  ReconfigureDeviceArgs p;
  p.device = std::move(device);
  p.mode = cl.str(spec, "mode");
  p.region = cl.str(spec, "region");
  p.input = cl.str(spec, "input");
  p.size_text = cl.str(spec, "size");
  p.align_text = cl.str(spec, "align");
  p.no_online = cl.flag(spec, "no-online");
  p.force = cl.flag(spec, "force");
  p.no_movable = cl.flag(spec, "no-movable");
  p.human = cl.flag(spec, "human");
  p.check_config = cl.flag(spec, "check-config");
  p.verbose = cl.flag(spec, "verbose");
  if (p.check_config && (p.mode || p.no_online || p.no_movable)) {
    return usage_error(
        cmd, fmt::format("{}: -C cannot be used with --mode, --(no-)movable, or --(no-)online\n",
                         p.device));
  }
  if (!p.size_text && !p.align_text && !p.mode)
    return usage_error(cmd, "error: a 'align', 'mode' or 'size' option is required\n");
  if (p.size_text || p.align_text) {
    if (p.size_text) p.size = parse_size_arg(*p.size_text);
    if (p.align_text) p.align = parse_size_arg(*p.align_text);
  } else if (*p.mode == "devdax" && p.no_online) {
    return usage_error(cmd, "--no-online is incompatible with --mode=devdax\n");
  }
  out = std::move(p);
  return res;
}

ParseOutcome parse_online_memory(const std::vector<std::string>& argv, MemoryOpArgs& out) {
  return parse_memory_op(Subcommand::DaxctlOnlineMemory, DaxAction::Online, argv, out);
}

ParseOutcome parse_offline_memory(const std::vector<std::string>& argv, MemoryOpArgs& out) {
  return parse_memory_op(Subcommand::DaxctlOfflineMemory, DaxAction::Offline, argv, out);
}

ParseOutcome parse_enable_device(const std::vector<std::string>& argv, DeviceOpArgs& out) {
  // cmd_enable_device() passes ACTION_DISABLE to parse_device_options().
  return parse_device_op(Subcommand::DaxctlEnableDevice, DaxAction::Disable, argv, out);
}

ParseOutcome parse_disable_device(const std::vector<std::string>& argv, DeviceOpArgs& out) {
  return parse_device_op(Subcommand::DaxctlDisableDevice, DaxAction::Disable, argv, out);
}

}  // namespace sparsemem::sim::ndtool
