// Trace model <-> the oracle's JSON (README "Trace layout"), and the oracle's snapshot parsers.
// Pure; nlohmann exceptions are caught here and returned as Errno::Inval.
#include "sparsemem/trace.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/core.h>

#include "scenario/pytext.h"

namespace sparsemem {
namespace {

using J = OrderedJson;

tl::unexpected<Error> layout_error(const std::string& path, std::string_view what) {
  return fail(Errno::Inval, fmt::format("{}: expected {}", path, what));
}

// Reads one JSON object: typed accessors by key, and the keys nobody asked for (`rest`).
class ObjReader {
 public:
  ObjReader(const J& j, std::string path) : m_j(j), m_path(std::move(path)) {}

  std::string at(std::string_view key) const {
    return m_path.empty() ? std::string(key) : fmt::format("{}.{}", m_path, key);
  }
  const J* find(std::string_view key) {
    const auto it = m_j.find(key);
    if (it == m_j.end()) return nullptr;
    m_used.insert(std::string(key));
    return &*it;
  }

  template <class T, class Conv>
  Result<T> req(std::string_view key, Conv conv) {
    const J* v = find(key);
    if (v == nullptr) return fail(Errno::Inval, fmt::format("{}: missing", at(key)));
    return conv(*v, at(key));
  }
  template <class T, class Conv>
  Result<std::optional<T>> opt(std::string_view key, Conv conv) {
    const J* v = find(key);
    if (v == nullptr) return std::optional<T>();
    SPM_TRY_ASSIGN(T val, conv(*v, at(key)));
    return std::optional<T>(std::move(val));
  }

  J rest() const {
    J out = J::object();
    for (auto it = m_j.begin(); it != m_j.end(); ++it)
      if (!m_used.contains(it.key())) out[it.key()] = it.value();
    return out;
  }

 private:
  const J& m_j;
  std::string m_path;
  std::set<std::string, std::less<>> m_used;
};

Result<std::string> as_string(const J& v, const std::string& path) {
  if (!v.is_string()) return layout_error(path, "a string");
  return v.get<std::string>();
}
Result<int64_t> as_int(const J& v, const std::string& path) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return layout_error(path, "an integer below 2^63");
    return static_cast<int64_t>(u);
  }
  if (!v.is_number_integer()) return layout_error(path, "an integer");
  return v.get<int64_t>();
}
Result<double> as_double(const J& v, const std::string& path) {
  if (!v.is_number()) return layout_error(path, "a number");
  return v.get<double>();
}
Result<bool> as_bool(const J& v, const std::string& path) {
  if (!v.is_boolean()) return layout_error(path, "true or false");
  return v.get<bool>();
}
Result<J> as_json(const J& v, const std::string&) { return v; }
Result<J> as_object(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  return v;
}

template <class T, class Conv>
Result<std::vector<T>> as_list(const J& v, const std::string& path, Conv conv) {
  if (!v.is_array()) return layout_error(path, "a list");
  std::vector<T> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    SPM_TRY_ASSIGN(T item, conv(v[i], fmt::format("{}[{}]", path, i)));
    out.push_back(std::move(item));
  }
  return out;
}
Result<std::vector<std::string>> as_strings(const J& v, const std::string& path) {
  return as_list<std::string>(v, path, as_string);
}
Result<std::vector<J>> as_jsons(const J& v, const std::string& path) {
  return as_list<J>(v, path, as_json);
}

Result<CommandRecord> as_command(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  ObjReader r(v, path);
  CommandRecord c;
  SPM_TRY_ASSIGN(c.cmd, r.opt<std::string>("cmd", as_string));
  SPM_TRY_ASSIGN(c.rc, r.opt<int64_t>("rc", as_int));
  SPM_TRY_ASSIGN(c.t0, r.opt<double>("t0", as_double));
  SPM_TRY_ASSIGN(c.t1, r.opt<double>("t1", as_double));
  SPM_TRY_ASSIGN(c.out, r.opt<std::string>("stdout", as_string));
  SPM_TRY_ASSIGN(c.err, r.opt<std::string>("stderr", as_string));
  c.extra = r.rest();
  return c;
}

Result<HostActionRecord> as_host_action(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  ObjReader r(v, path);
  HostActionRecord a;
  SPM_TRY_ASSIGN(a.action, r.opt<std::string>("action", as_string));
  SPM_TRY_ASSIGN(a.response, r.opt<J>("response", as_json));
  SPM_TRY_ASSIGN(a.events, r.opt<std::vector<J>>("events", as_jsons));
  SPM_TRY_ASSIGN(a.elapsed_s, r.opt<double>("elapsed_s", as_double));
  SPM_TRY_ASSIGN(a.error, r.opt<std::string>("error", as_string));
  a.extra = r.rest();
  return a;
}

Result<TraceIomemLine> as_iomem(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  ObjReader r(v, path);
  TraceIomemLine e;
  SPM_TRY_ASSIGN(e.depth, r.req<int64_t>("depth", as_int));
  SPM_TRY_ASSIGN(e.start, r.req<std::string>("start", as_string));
  SPM_TRY_ASSIGN(e.end, r.req<std::string>("end", as_string));
  SPM_TRY_ASSIGN(e.name, r.req<std::string>("name", as_string));
  e.extra = r.rest();
  return e;
}

Result<std::optional<std::string>> as_nullable_string(const J& v, const std::string& path) {
  if (v.is_null()) return std::optional<std::string>();
  SPM_TRY_ASSIGN(std::string s, as_string(v, path));
  return std::optional<std::string>(std::move(s));
}
Result<std::optional<int64_t>> as_nullable_int(const J& v, const std::string& path) {
  if (v.is_null()) return std::optional<int64_t>();
  SPM_TRY_ASSIGN(int64_t i, as_int(v, path));
  return std::optional<int64_t>(i);
}

Result<MemoryBlockEntry> as_block(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  ObjReader r(v, path);
  MemoryBlockEntry b;
  SPM_TRY_ASSIGN(b.id, r.req<int64_t>("id", as_int));
  SPM_TRY_ASSIGN(b.state, r.req<std::string>("state", as_string));
  SPM_TRY_ASSIGN(b.phys_index, r.req<std::string>("phys_index", as_string));
  SPM_TRY_ASSIGN(b.valid_zones, r.req<std::string>("valid_zones", as_string));
  SPM_TRY_ASSIGN(b.removable, r.req<std::string>("removable", as_string));
  SPM_TRY_ASSIGN(b.phys_device, r.req<std::string>("phys_device", as_string));
  SPM_TRY_ASSIGN(b.online_type, r.req<std::optional<std::string>>("online_type", as_nullable_string));
  SPM_TRY_ASSIGN(b.nodes, r.req<std::vector<std::string>>("nodes", as_strings));
  b.extra = r.rest();
  return b;
}

template <class V, class Conv>
Result<std::vector<std::pair<std::string, V>>> as_map(const J& v, const std::string& path, Conv conv) {
  if (!v.is_object()) return layout_error(path, "an object");
  std::vector<std::pair<std::string, V>> out;
  for (auto it = v.begin(); it != v.end(); ++it) {
    SPM_TRY_ASSIGN(V val, conv(it.value(), fmt::format("{}.{}", path, it.key())));
    out.emplace_back(it.key(), std::move(val));
  }
  return out;
}
Result<std::vector<std::pair<std::string, std::string>>> as_string_map(const J& v, const std::string& path) {
  return as_map<std::string>(v, path, as_string);
}
Result<std::vector<std::pair<std::string, int64_t>>> as_int_map(const J& v, const std::string& path) {
  return as_map<int64_t>(v, path, as_int);
}

Result<ZoneEntry> as_zone(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  ObjReader r(v, path);
  ZoneEntry z;
  SPM_TRY_ASSIGN(z.node, r.req<int64_t>("node", as_int));
  SPM_TRY_ASSIGN(z.zone, r.req<std::string>("zone", as_string));
  SPM_TRY_ASSIGN(auto start, r.opt<std::optional<int64_t>>("start_pfn", as_nullable_int));
  if (start) z.start_pfn = *start;
  SPM_TRY_ASSIGN(z.pages_free, r.opt<int64_t>("pages_free", as_int));
  SPM_TRY_ASSIGN(z.min, r.opt<int64_t>("min", as_int));
  SPM_TRY_ASSIGN(z.low, r.opt<int64_t>("low", as_int));
  SPM_TRY_ASSIGN(z.high, r.opt<int64_t>("high", as_int));
  SPM_TRY_ASSIGN(z.spanned, r.opt<int64_t>("spanned", as_int));
  SPM_TRY_ASSIGN(z.present, r.opt<int64_t>("present", as_int));
  SPM_TRY_ASSIGN(z.managed, r.opt<int64_t>("managed", as_int));
  SPM_TRY_ASSIGN(z.cma, r.opt<int64_t>("cma", as_int));
  SPM_TRY_ASSIGN(z.end_pfn, r.opt<int64_t>("end_pfn", as_int));
  z.extra = r.rest();
  return z;
}

Result<KpageflagsEntry> as_kpf(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  ObjReader r(v, path);
  KpageflagsEntry e;
  SPM_TRY_ASSIGN(e.note, r.opt<std::string>("note", as_string));
  if (!e.note) {
    SPM_TRY_ASSIGN(e.pfn, r.req<std::string>("pfn", as_string));
    SPM_TRY_ASSIGN(e.flags, r.req<std::string>("flags", as_string));
    const J* c = r.find("count");
    if (c == nullptr) return fail(Errno::Inval, fmt::format("{}: missing", r.at("count")));
    if (c->is_number_unsigned()) {
      e.count = c->get<uint64_t>();
    } else if (c->is_string()) {
      e.count_marker = c->get<std::string>();
    } else {
      return layout_error(r.at("count"), "a non-negative integer or a string");
    }
    SPM_TRY_ASSIGN(e.flag_names, r.opt<std::vector<std::string>>("flag_names", as_strings));
  }
  e.extra = r.rest();
  return e;
}

Result<AcpiMemoryDevice> as_acpi(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  ObjReader r(v, path);
  AcpiMemoryDevice d;
  SPM_TRY_ASSIGN(d.name, r.req<std::string>("name", as_string));
  SPM_TRY_ASSIGN(d.status, r.req<std::string>("status", as_string));
  SPM_TRY_ASSIGN(d.path, r.req<std::string>("path", as_string));
  SPM_TRY_ASSIGN(d.eject, r.req<bool>("eject", as_bool));
  SPM_TRY_ASSIGN(d.physical_nodes, r.req<std::vector<std::string>>("physical_nodes", as_strings));
  d.extra = r.rest();
  return d;
}

Result<NdDaxEntry> as_nddax(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  ObjReader r(v, path);
  NdDaxEntry e;
  SPM_TRY_ASSIGN(e.kind, r.req<std::string>("kind", as_string));
  SPM_TRY_ASSIGN(e.name, r.req<std::string>("name", as_string));
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() == "kind" || it.key() == "name") continue;
    SPM_TRY_ASSIGN(std::string val, as_string(it.value(), fmt::format("{}.{}", path, it.key())));
    e.attrs.emplace_back(it.key(), std::move(val));
  }
  return e;
}

Result<Snapshot> as_snapshot(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  ObjReader r(v, path);
  Snapshot s;
  auto list = [](auto conv) {
    return [conv](const J& x, const std::string& p) {
      using T = typename decltype(conv(x, p))::value_type;
      return as_list<T>(x, p, conv);
    };
  };
  SPM_TRY_ASSIGN(s.iomem, r.opt<std::vector<TraceIomemLine>>("iomem", list(as_iomem)));
  SPM_TRY_ASSIGN(s.iomem_raw, r.opt<std::vector<std::string>>("iomem_raw", as_strings));
  SPM_TRY_ASSIGN(s.memory_blocks, r.opt<std::vector<MemoryBlockEntry>>("memory_blocks", list(as_block)));
  SPM_TRY_ASSIGN(s.memory_global, (r.opt<std::vector<std::pair<std::string, std::string>>>("memory_global", as_string_map)));
  SPM_TRY_ASSIGN(s.zones, r.opt<std::vector<ZoneEntry>>("zones", list(as_zone)));
  SPM_TRY_ASSIGN(s.zones_raw, r.opt<std::vector<std::string>>("zones_raw", as_strings));
  SPM_TRY_ASSIGN(s.meminfo, (r.opt<std::vector<std::pair<std::string, int64_t>>>("meminfo", as_int_map)));
  SPM_TRY_ASSIGN(s.kpageflags, r.opt<std::vector<KpageflagsEntry>>("kpageflags", list(as_kpf)));
  SPM_TRY_ASSIGN(s.acpi_memory_devices, r.opt<std::vector<AcpiMemoryDevice>>("acpi_memory_devices", list(as_acpi)));
  SPM_TRY_ASSIGN(s.nd_dax, r.opt<std::vector<NdDaxEntry>>("nd_dax", list(as_nddax)));
  SPM_TRY_ASSIGN(s.dmesg, r.opt<std::vector<std::string>>("dmesg", as_strings));
  s.extra = r.rest();
  return s;
}

Result<StepKind> as_step_kind(const J& v, const std::string& path) {
  SPM_TRY_ASSIGN(std::string s, as_string(v, path));
  if (s == "guest") return StepKind::Guest;
  if (s == "host") return StepKind::Host;
  return layout_error(path, "\"guest\" or \"host\"");
}

Result<TraceStep> as_step(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  ObjReader r(v, path);
  TraceStep st;
  SPM_TRY_ASSIGN(st.index, r.req<int64_t>("index", as_int));
  SPM_TRY_ASSIGN(st.type, r.req<StepKind>("type", as_step_kind));
  SPM_TRY_ASSIGN(st.name, r.req<std::string>("name", as_string));
  SPM_TRY_ASSIGN(st.commands, r.req<std::vector<CommandRecord>>("commands", [](const J& x, const std::string& p) {
    return as_list<CommandRecord>(x, p, as_command);
  }));
  SPM_TRY_ASSIGN(st.snapshot, r.req<Snapshot>("snapshot", as_snapshot));
  SPM_TRY_ASSIGN(st.t_start, r.req<double>("t_start", as_double));
  SPM_TRY_ASSIGN(st.guest_uptime_start, r.opt<double>("guest_uptime_start", as_double));
  SPM_TRY_ASSIGN(st.host_actions, r.opt<std::vector<HostActionRecord>>("host_actions", [](const J& x, const std::string& p) {
    return as_list<HostActionRecord>(x, p, as_host_action);
  }));
  SPM_TRY_ASSIGN(st.t_end, r.opt<double>("t_end", as_double));
  SPM_TRY_ASSIGN(st.guest_uptime_end, r.opt<double>("guest_uptime_end", as_double));
  st.extra = r.rest();
  return st;
}

Result<DriverError> as_driver_error(const J& v, const std::string& path) {
  if (!v.is_object()) return layout_error(path, "an object");
  ObjReader r(v, path);
  DriverError e;
  SPM_TRY_ASSIGN(e.where, r.req<std::string>("where", as_string));
  SPM_TRY_ASSIGN(e.rc, r.opt<int64_t>("rc", as_int));
  SPM_TRY_ASSIGN(e.qemu_output, r.opt<std::string>("qemu_output", as_string));
  SPM_TRY_ASSIGN(e.error, r.opt<std::string>("error", as_string));
  e.extra = r.rest();
  return e;
}

// Writers: keys in the order the driver inserts them, then the unmodelled ones.
void put_extra(J& j, const J& extra) {
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
}
template <class T>
void put_opt(J& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

J to_json(const CommandRecord& c) {
  J j = J::object();
  put_opt(j, "cmd", c.cmd);
  put_opt(j, "rc", c.rc);
  put_opt(j, "t0", c.t0);
  put_opt(j, "t1", c.t1);
  put_opt(j, "stdout", c.out);
  put_opt(j, "stderr", c.err);
  put_extra(j, c.extra);
  return j;
}

J to_json(const HostActionRecord& a) {
  J j = J::object();
  put_opt(j, "action", a.action);
  put_opt(j, "response", a.response);
  put_opt(j, "events", a.events);
  put_opt(j, "elapsed_s", a.elapsed_s);
  put_opt(j, "error", a.error);
  put_extra(j, a.extra);
  return j;
}

J to_json(const Snapshot& s) {
  J j = J::object();
  if (s.iomem) {
    J a = J::array();
    for (const auto& e : *s.iomem) {
      J x{{"depth", e.depth}, {"start", e.start}, {"end", e.end}, {"name", e.name}};
      put_extra(x, e.extra);
      a.push_back(std::move(x));
    }
    j["iomem"] = std::move(a);
  }
  put_opt(j, "iomem_raw", s.iomem_raw);
  if (s.memory_blocks) {
    J a = J::array();
    for (const auto& b : *s.memory_blocks) {
      J x{{"id", b.id}, {"state", b.state}, {"phys_index", b.phys_index}, {"valid_zones", b.valid_zones},
          {"removable", b.removable}, {"phys_device", b.phys_device},
          {"online_type", b.online_type ? J(*b.online_type) : J(nullptr)}, {"nodes", b.nodes}};
      put_extra(x, b.extra);
      a.push_back(std::move(x));
    }
    j["memory_blocks"] = std::move(a);
  }
  if (s.memory_global) {
    J m = J::object();
    for (const auto& [k, v] : *s.memory_global) m[k] = v;
    j["memory_global"] = std::move(m);
  }
  if (s.zones) {
    J a = J::array();
    for (const auto& z : *s.zones) {
      J x{{"node", z.node}, {"zone", z.zone}, {"start_pfn", z.start_pfn ? J(*z.start_pfn) : J(nullptr)}};
      put_opt(x, "pages_free", z.pages_free);
      put_opt(x, "min", z.min);
      put_opt(x, "low", z.low);
      put_opt(x, "high", z.high);
      put_opt(x, "spanned", z.spanned);
      put_opt(x, "present", z.present);
      put_opt(x, "managed", z.managed);
      put_opt(x, "cma", z.cma);
      put_opt(x, "end_pfn", z.end_pfn);
      put_extra(x, z.extra);
      a.push_back(std::move(x));
    }
    j["zones"] = std::move(a);
  }
  put_opt(j, "zones_raw", s.zones_raw);
  if (s.meminfo) {
    J m = J::object();
    for (const auto& [k, v] : *s.meminfo) m[k] = v;
    j["meminfo"] = std::move(m);
  }
  if (s.kpageflags) {
    J a = J::array();
    for (const auto& e : *s.kpageflags) {
      J x = J::object();
      if (e.note) {
        x["note"] = *e.note;
      } else {
        x["pfn"] = e.pfn;
        x["flags"] = e.flags;
        x["count"] = e.count ? J(*e.count) : J(e.count_marker);
        put_opt(x, "flag_names", e.flag_names);
      }
      put_extra(x, e.extra);
      a.push_back(std::move(x));
    }
    j["kpageflags"] = std::move(a);
  }
  if (s.acpi_memory_devices) {
    J a = J::array();
    for (const auto& d : *s.acpi_memory_devices) {
      J x{{"name", d.name}, {"status", d.status}, {"path", d.path}, {"eject", d.eject},
          {"physical_nodes", d.physical_nodes}};
      put_extra(x, d.extra);
      a.push_back(std::move(x));
    }
    j["acpi_memory_devices"] = std::move(a);
  }
  if (s.nd_dax) {
    J a = J::array();
    for (const auto& e : *s.nd_dax) {
      J x{{"kind", e.kind}, {"name", e.name}};
      for (const auto& [k, v] : e.attrs) x[k] = v;
      a.push_back(std::move(x));
    }
    j["nd_dax"] = std::move(a);
  }
  put_opt(j, "dmesg", s.dmesg);
  put_extra(j, s.extra);
  return j;
}

J to_json(const TraceStep& st) {
  J j = J::object();
  j["index"] = st.index;
  j["type"] = step_kind_name(st.type);
  j["name"] = st.name;
  J cmds = J::array();
  for (const auto& c : st.commands) cmds.push_back(to_json(c));
  j["commands"] = std::move(cmds);
  j["snapshot"] = to_json(st.snapshot);
  j["t_start"] = st.t_start;
  put_opt(j, "guest_uptime_start", st.guest_uptime_start);
  if (st.host_actions) {
    J a = J::array();
    for (const auto& h : *st.host_actions) a.push_back(to_json(h));
    j["host_actions"] = std::move(a);
  }
  put_opt(j, "t_end", st.t_end);
  put_opt(j, "guest_uptime_end", st.guest_uptime_end);
  put_extra(j, st.extra);
  return j;
}

// Python's str.isdigit() on pfnflags output, which is ASCII.
bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<int64_t> to_i64(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Consumes \s+ then \d+ from `rest`; nullopt when either is missing.
std::optional<int64_t> space_then_number(std::string_view rest) {
  size_t i = 0;
  while (i < rest.size() && is_ascii_space(rest[i])) ++i;
  if (i == 0) return std::nullopt;
  size_t j = i;
  while (j < rest.size() && rest[j] >= '0' && rest[j] <= '9') ++j;
  if (j == i) return std::nullopt;
  return to_i64(rest.substr(i, j - i));
}

std::vector<std::string> split_char(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t p = s.find(sep, start);
    out.emplace_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

std::vector<std::string> py_split(std::string_view s) {
  std::vector<std::string> out;
  for (const auto w : pytext::split(s)) out.emplace_back(w);
  return out;
}

template <class V>
void dict_set(std::vector<std::pair<std::string, V>>& d, std::string key, V value) {
  for (auto& [k, v] : d) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  d.emplace_back(std::move(key), std::move(value));
}

}  // namespace

std::string iomem_line(const TraceIomemLine& e) {
  auto hex = [](const std::string& s) { return s.starts_with("0x") ? s.substr(2) : s; };
  std::string out(static_cast<size_t>(std::max<int64_t>(e.depth, 0)) * 2, ' ');
  return out + hex(e.start) + "-" + hex(e.end) + " : " + e.name;
}

Result<Trace> trace_from_json(const OrderedJson& j) {
  if (!j.is_object()) return layout_error("trace", "an object");
  ObjReader r(j, "");
  Trace t;
  SPM_TRY_ASSIGN(t.scenario, r.req<std::string>("scenario", as_string));
  SPM_TRY_ASSIGN(t.scenario_file, r.req<std::string>("scenario_file", as_string));
  SPM_TRY_ASSIGN(t.description, r.req<std::string>("description", as_string));
  SPM_TRY_ASSIGN(t.scenario_source, r.req<std::string>("scenario_source", as_string));
  SPM_TRY_ASSIGN(t.kernel, r.req<std::string>("kernel", as_string));
  SPM_TRY_ASSIGN(t.qemu_version, r.req<std::string>("qemu_version", as_string));
  SPM_TRY_ASSIGN(t.qemu_cmdline, r.req<std::vector<std::string>>("qemu_cmdline", as_strings));
  SPM_TRY_ASSIGN(t.completed, r.req<bool>("completed", as_bool));
  SPM_TRY_ASSIGN(t.steps, r.req<std::vector<TraceStep>>("steps", [](const J& x, const std::string& p) {
    return as_list<TraceStep>(x, p, as_step);
  }));
  SPM_TRY_ASSIGN(t.errors, r.req<std::vector<DriverError>>("errors", [](const J& x, const std::string& p) {
    return as_list<DriverError>(x, p, as_driver_error);
  }));
  SPM_TRY_ASSIGN(t.qemu_greeting, r.opt<J>("qemu_greeting", as_json));
  SPM_TRY_ASSIGN(t.guest_kernel, r.opt<std::string>("guest_kernel", as_string));
  SPM_TRY_ASSIGN(t.guest_cmdline, r.opt<std::string>("guest_cmdline", as_string));
  SPM_TRY_ASSIGN(t.boot_to_init_s, r.opt<double>("boot_to_init_s", as_double));
  SPM_TRY_ASSIGN(t.final_memory_devices, r.opt<J>("final_memory_devices", as_json));
  SPM_TRY_ASSIGN(t.trailing_qmp_events, r.opt<std::vector<J>>("trailing_qmp_events", as_jsons));
  SPM_TRY_ASSIGN(t.qemu_exit, r.opt<int64_t>("qemu_exit", as_int));
  SPM_TRY_ASSIGN(t.qemu_output, r.opt<std::string>("qemu_output", as_string));
  SPM_TRY_ASSIGN(t.console_alerts, r.opt<std::vector<std::string>>("console_alerts", as_strings));
  SPM_TRY_ASSIGN(t.console_tail, r.opt<std::vector<std::string>>("console_tail", as_strings));
  SPM_TRY_ASSIGN(t.timing, r.opt<J>("timing", as_object));
  t.extra = r.rest();
  return t;
}

Result<Trace> parse_trace(std::string_view text) {
  J j;
  try {
    j = J::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return fail(Errno::Inval, fmt::format("malformed JSON: {}", e.what()));
  }
  return trace_from_json(j);
}

Result<Trace> load_trace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errno::NoEnt, fmt::format("{}: cannot open", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  auto t = parse_trace(buf.str());
  if (!t) return fail(t.error().code, fmt::format("{}: {}", path, t.error().message));
  return t;
}

OrderedJson trace_to_json(const Trace& t) {
  J j = J::object();
  j["scenario"] = t.scenario;
  j["scenario_file"] = t.scenario_file;
  j["description"] = t.description;
  j["scenario_source"] = t.scenario_source;
  j["kernel"] = t.kernel;
  j["qemu_version"] = t.qemu_version;
  j["qemu_cmdline"] = t.qemu_cmdline;
  j["completed"] = t.completed;
  J steps = J::array();
  for (const auto& st : t.steps) steps.push_back(to_json(st));
  j["steps"] = std::move(steps);
  J errors = J::array();
  for (const auto& e : t.errors) {
    J x{{"where", e.where}};
    put_opt(x, "rc", e.rc);
    put_opt(x, "qemu_output", e.qemu_output);
    put_opt(x, "error", e.error);
    put_extra(x, e.extra);
    errors.push_back(std::move(x));
  }
  j["errors"] = std::move(errors);
  put_opt(j, "qemu_greeting", t.qemu_greeting);
  put_opt(j, "guest_kernel", t.guest_kernel);
  put_opt(j, "guest_cmdline", t.guest_cmdline);
  put_opt(j, "boot_to_init_s", t.boot_to_init_s);
  put_opt(j, "final_memory_devices", t.final_memory_devices);
  put_opt(j, "trailing_qmp_events", t.trailing_qmp_events);
  put_opt(j, "qemu_exit", t.qemu_exit);
  put_opt(j, "qemu_output", t.qemu_output);
  put_opt(j, "console_alerts", t.console_alerts);
  put_opt(j, "console_tail", t.console_tail);
  put_opt(j, "timing", t.timing);
  put_extra(j, t.extra);
  return j;
}

std::string dump_trace(const Trace& t) {
  // json.dumps(indent=1) escapes every non-ASCII character (ensure_ascii), as dump(..., true) does.
  return trace_to_json(t).dump(1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<void> save_trace(const Trace& t, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return fail(Errno::NoEnt, fmt::format("{}: cannot create", path));
  out << dump_trace(t);
  out.close();
  if (!out) return fail(Errno::NoEnt, fmt::format("{}: write error", path));
  return {};
}

std::vector<TraceIomemLine> parse_iomem_lines(const std::vector<std::string>& lines) {
  // ^( *)([0-9a-f]+)-([0-9a-f]+) : (.*)$
  auto hexrun = [](std::string_view s, size_t i) {
    size_t j = i;
    while (j < s.size() && ((s[j] >= '0' && s[j] <= '9') || (s[j] >= 'a' && s[j] <= 'f'))) ++j;
    return j;
  };
  std::vector<TraceIomemLine> out;
  for (const std::string_view l : lines) {
    size_t i = 0;
    while (i < l.size() && l[i] == ' ') ++i;
    const size_t a_end = hexrun(l, i);
    if (a_end == i || a_end >= l.size() || l[a_end] != '-') continue;
    const size_t b_end = hexrun(l, a_end + 1);
    if (b_end == a_end + 1 || l.substr(b_end, 3) != " : ") continue;
    out.push_back(TraceIomemLine{static_cast<int64_t>(i / 2), "0x" + std::string(l.substr(i, a_end - i)),
                             "0x" + std::string(l.substr(a_end + 1, b_end - a_end - 1)),
                             std::string(l.substr(b_end + 3)), J::object()});
  }
  return out;
}

std::vector<MemoryBlockEntry> parse_memblocks_lines(const std::vector<std::string>& lines) {
  std::vector<MemoryBlockEntry> out;
  for (const auto& l : lines) {
    const auto f = split_char(l, '|');
    if (f.size() < 8) continue;
    const auto id = pytext::parse_int(f[0]);
    if (!id) continue;  // the driver's int() would raise; memblocks never prints such a line
    out.push_back(MemoryBlockEntry{*id, f[1], f[2], f[3], f[4], f[5],
                                   f[6] == "-" ? std::nullopt : std::optional<std::string>(f[6]),
                                   py_split(f[7]), J::object()});
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_kv_lines(const std::vector<std::string>& lines) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& l : lines) {
    const size_t eq = l.find('=');
    dict_set(out, l.substr(0, eq), eq == std::string::npos ? std::string() : l.substr(eq + 1));
  }
  return out;
}

std::vector<ZoneEntry> parse_zoneinfo_lines(const std::vector<std::string>& lines) {
  std::vector<ZoneEntry> zones;
  for (const std::string_view l : lines) {
    if (l.starts_with("Node ")) {  // ^Node (\d+), zone\s+(\S+)
      size_t i = 5, j = 5;
      while (j < l.size() && l[j] >= '0' && l[j] <= '9') ++j;
      if (j > i && l.substr(j, 6) == ", zone") {
        size_t k = j + 6, m;
        while (k < l.size() && is_ascii_space(l[k])) ++k;
        for (m = k; m < l.size() && !is_ascii_space(l[m]);) ++m;
        if (k > j + 6 && m > k) {
          ZoneEntry z;
          z.node = to_i64(l.substr(i, j - i)).value_or(0);
          z.zone = std::string(l.substr(k, m - k));
          zones.push_back(std::move(z));
          continue;
        }
      }
    }
    if (zones.empty()) continue;
    ZoneEntry& z = zones.back();
    size_t i = 0;
    while (i < l.size() && is_ascii_space(l[i])) ++i;
    if (i == 0) continue;  // every field line is indented (^\s+)
    const std::string_view rest = l.substr(i);
    if (rest.starts_with("pages free")) {
      if (auto v = space_then_number(rest.substr(10))) z.pages_free = v;
      continue;
    }
    bool matched = false;
    for (auto [name, field] : {std::pair{"min", &ZoneEntry::min}, std::pair{"low", &ZoneEntry::low},
                               std::pair{"high", &ZoneEntry::high}, std::pair{"spanned", &ZoneEntry::spanned},
                               std::pair{"present", &ZoneEntry::present}, std::pair{"managed", &ZoneEntry::managed},
                               std::pair{"cma", &ZoneEntry::cma}}) {
      const std::string_view n(name);
      if (!rest.starts_with(n)) continue;
      if (auto v = space_then_number(rest.substr(n.size()))) {
        z.*field = v;
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (rest.starts_with("start_pfn:"))
      if (auto v = space_then_number(rest.substr(10))) z.start_pfn = v;
  }
  for (auto& z : zones)
    if (z.start_pfn) z.end_pfn = *z.start_pfn + z.spanned.value_or(0);
  return zones;
}

std::vector<std::pair<std::string, int64_t>> parse_meminfo_lines(const std::vector<std::string>& lines) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const std::string_view l : lines) {  // ^([^:]+):\s+(\d+)
    const size_t colon = l.find(':');
    if (colon == 0 || colon == std::string_view::npos) continue;
    if (auto v = space_then_number(l.substr(colon + 1))) dict_set(out, std::string(l.substr(0, colon)), *v);
  }
  return out;
}

std::vector<std::string> kpageflags_names(uint64_t flags) {
  static constexpr std::pair<int, std::string_view> kNames[] = {
      {0, "LOCKED"}, {1, "ERROR"}, {2, "REFERENCED"}, {3, "UPTODATE"}, {4, "DIRTY"}, {5, "LRU"},
      {6, "ACTIVE"}, {7, "SLAB"}, {8, "WRITEBACK"}, {9, "RECLAIM"}, {10, "BUDDY"}, {11, "MMAP"},
      {12, "ANON"}, {13, "SWAPCACHE"}, {14, "SWAPBACKED"}, {15, "COMPOUND_HEAD"},
      {16, "COMPOUND_TAIL"}, {17, "HUGE"}, {18, "UNEVICTABLE"}, {19, "HWPOISON"}, {20, "NOPAGE"},
      {21, "KSM"}, {22, "THP"}, {23, "OFFLINE"}, {24, "ZERO_PAGE"}, {25, "IDLE"}, {26, "PGTABLE"},
      {32, "RESERVED"}, {33, "MLOCKED"}, {34, "MAPPEDTODISK"}, {35, "PRIVATE"}, {36, "PRIVATE_2"},
      {37, "OWNER_PRIVATE"}, {38, "ARCH"}, {39, "UNCACHED"}, {40, "SOFTDIRTY"}, {41, "ARCH_2"}};
  std::vector<std::string> out;
  for (int b = 0; b < 64; ++b) {
    if (((flags >> b) & 1) == 0) continue;
    const auto it = std::find_if(std::begin(kNames), std::end(kNames), [b](const auto& p) { return p.first == b; });
    out.push_back(it != std::end(kNames) ? std::string(it->second) : fmt::format("bit{}", b));
  }
  return out;
}

std::vector<KpageflagsEntry> parse_kpageflags_lines(const std::vector<std::string>& lines) {
  std::vector<KpageflagsEntry> out;
  for (const std::string_view l : lines) {
    // ^pfn=(\S+) flags=(\S+) count=(\S+)
    auto field = [&](size_t& pos, std::string_view label) -> std::optional<std::string> {
      if (l.substr(pos, label.size()) != label) return std::nullopt;
      size_t j = pos + label.size(), k = j;
      while (k < l.size() && !is_ascii_space(l[k])) ++k;
      if (k == j) return std::nullopt;
      pos = k;
      return std::string(l.substr(j, k - j));
    };
    size_t pos = 0;
    auto pfn = field(pos, "pfn=");
    auto flags = pfn ? field(pos, " flags=") : std::nullopt;
    auto count = flags ? field(pos, " count=") : std::nullopt;
    KpageflagsEntry e;
    if (!count) {
      e.note = std::string(l);
      out.push_back(std::move(e));
      continue;
    }
    e.pfn = *pfn;
    e.flags = *flags;
    if (e.flags.starts_with("0x")) {
      uint64_t v = 0;
      const char* b = e.flags.data() + 2;
      auto [p, ec] = std::from_chars(b, e.flags.data() + e.flags.size(), v, 16);
      if (ec == std::errc() && p == e.flags.data() + e.flags.size() && p != b) e.flag_names = kpageflags_names(v);
    }
    uint64_t c = 0;
    auto [p, ec] = std::from_chars(count->data(), count->data() + count->size(), c);
    if (all_digits(*count) && ec == std::errc() && p == count->data() + count->size()) {
      e.count = c;
    } else {
      e.count_marker = *count;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<AcpiMemoryDevice> parse_acpimem_lines(const std::vector<std::string>& lines) {
  std::vector<AcpiMemoryDevice> out;
  for (const auto& l : lines) {
    const auto f = split_char(l, '|');
    if (f.size() < 5) continue;
    out.push_back(AcpiMemoryDevice{f[0], f[1], f[2], f[3] == "yes", py_split(f[4]), J::object()});
  }
  return out;
}

std::vector<NdDaxEntry> parse_nddax_lines(const std::vector<std::string>& lines) {
  std::vector<NdDaxEntry> out;
  for (const auto& l : lines) {
    const auto f = split_char(l, ' ');
    if (f.size() < 2) continue;
    NdDaxEntry e{f[0], f[1], {}};
    for (size_t i = 2; i < f.size(); ++i) {
      const size_t eq = f[i].find('=');
      std::string k = f[i].substr(0, eq);
      std::string v = eq == std::string::npos ? std::string() : f[i].substr(eq + 1);
      // The driver builds a dict: a repeated kind/name key replaces those, others keep first place.
      if (k == "kind") {
        e.kind = std::move(v);
      } else if (k == "name") {
        e.name = std::move(v);
      } else {
        dict_set(e.attrs, std::move(k), std::move(v));
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace sparsemem
