// QEMU's side of a simulation: memory backends and DIMMs through QMP and HMP (object-add,
// device_add, device_del, query-memory-devices, info memory-devices), ACPI insertion and ejection
// of DIMMs with their ACPI_DEVICE_OST / DEVICE_DELETED events.
#include <cmath>

#include <fmt/core.h>

#include "scenario/host.h"

namespace sparsemem::sim {
namespace {

// QEMU 7.2's fixed epoch for the simulated event clock: events carry wall-clock time, which the
// diff masks; any monotonic value will do.
constexpr int64_t kEventEpoch = 1795547000;

// j[key] when it is a string, else "" (nlohmann's value() throws for a key of another type, and a
// scenario's QMP line may hold anything).
std::string string_field(const OrderedJson& j, const char* key) {
  if (!j.is_object()) return {};
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

OrderedJson generic_error(std::string_view desc) {
  return OrderedJson{{"error", OrderedJson{{"class", "GenericError"}, {"desc", std::string(desc)}}}};
}

OrderedJson ost_event(const Simulation& s, std::optional<std::string> device, unsigned source, unsigned status, unsigned slot) {
  OrderedJson info = OrderedJson::object();
  if (device) info["device"] = *device;
  info["source"] = source;
  info["status"] = status;
  info["slot"] = fmt::format("{}", slot);
  info["slot-type"] = "DIMM";
  return OrderedJson{{"timestamp", s.qmp_timestamp()}, {"event", "ACPI_DEVICE_OST"}, {"data", OrderedJson{{"info", info}}}};
}

// "memory-backend-ram,id=m1,size=1073741824" from QMP object-add arguments.
std::string backend_opts_from_qmp(const OrderedJson& args) {
  std::string s = string_field(args, "qom-type");
  for (const auto& [k, v] : args.items()) {
    if (k == "qom-type") continue;
    s += "," + k + "=" + (v.is_string() ? v.get<std::string>() : v.is_boolean() ? (v.get<bool>() ? "on" : "off") : v.dump());
  }
  return s;
}

std::string device_opts_from_qmp(const OrderedJson& args) {
  std::string s = string_field(args, "driver");
  for (const auto& [k, v] : args.items()) {
    if (k == "driver") continue;
    s += "," + k + "=" + (v.is_string() ? v.get<std::string>() : v.is_boolean() ? (v.get<bool>() ? "on" : "off") : v.dump());
  }
  return s;
}

}  // namespace

OrderedJson Simulation::qmp_timestamp() const {
  const double t = uptime;
  const auto secs = static_cast<int64_t>(std::floor(t));
  return OrderedJson{{"seconds", kEventEpoch + secs}, {"microseconds", static_cast<int64_t>((t - std::floor(t)) * 1e6)}};
}

void Simulation::push_event(OrderedJson event) {
  pending_events.push_back(std::move(event));
  uptime += 0.001;
}

bool Simulation::has_nvdimm_memory() const {
  for (const MemoryDevice& d : platform.memory_devices)
    if (d.kind == MemoryDeviceKind::Nvdimm) return true;
  for (const BootMemoryRegion& r : platform.memory_map)
    if (r.kind == BootMemoryKind::Persistent || r.kind == BootMemoryKind::PersistentLegacy) return true;
  return false;
}

void Simulation::hot_add_dimm(const MemoryDevice& dev) {
  // The ACPI insertion notify: the guest's acpi_memhotplug driver adds the memory, then _OST(0).
  (void)acpi.device_add(*machine, dev.slot, dev.range(), dev.node);
  push_event(ost_event(*this, dev.id, 1, 0, dev.slot));
}

Result<void> Simulation::eject_slot(unsigned slot, unsigned ost_source) {
  const AcpiMemoryDeviceState* d = acpi.find_slot(slot);
  std::optional<std::string> id;
  for (const MemoryDevice& m : platform.memory_devices)
    if (m.kind == MemoryDeviceKind::Dimm && m.slot == slot) id = m.id;
  if (!d || d->status == 0) return fail(Errno::NoDev, "no such device");
  // acpi_device_hotplug(): _OST(EJECT_REQUEST, EJECT_IN_PROGRESS), the removal, then _OST(src, code).
  push_event(ost_event(*this, id, 3, 0x84, slot));
  auto r = acpi.eject(*machine, slot);
  if (!r) {
    push_event(ost_event(*this, id, ost_source, r.error().code == Errno::Busy ? 0x82 : 0x01, slot));
    return r;
  }
  if (id) {
    (void)remove_memory_device(platform, *id);
    push_event(OrderedJson{{"timestamp", qmp_timestamp()},
                           {"event", "DEVICE_DELETED"},
                           {"data", OrderedJson{{"device", *id}, {"path", "/machine/peripheral/" + *id}}}});
  }
  // QEMU reports the final _OST of a slot that no longer has a device without a device id.
  push_event(ost_event(*this, std::nullopt, ost_source, 0, slot));
  return {};
}

OrderedJson query_memory_devices(const PlatformDescription& p) {
  OrderedJson list = OrderedJson::array();
  for (const MemoryDevice* d : memory_devices_by_address(p)) {
    OrderedJson data{{"memdev", "/objects/" + d->memdev}, {"hotplugged", d->hotplugged},
                     {"addr", d->addr.value()},            {"hotpluggable", true},
                     {"size", d->size},                   {"slot", d->slot},
                     {"node", d->node},                   {"id", d->id}};
    list.push_back(OrderedJson{{"type", std::string(memory_device_kind_name(d->kind))}, {"data", data}});
  }
  return OrderedJson{{"return", list}};
}

namespace {

std::string info_memory_devices(const PlatformDescription& p) {
  std::string out;
  for (const MemoryDevice* d : memory_devices_by_address(p)) {
    out += fmt::format("Memory device [{}]: \"{}\"\r\n", memory_device_kind_name(d->kind), d->id);
    out += fmt::format("  addr: {:#x}\r\n  slot: {}\r\n  node: {}\r\n  size: {}\r\n  memdev: /objects/{}\r\n", d->addr.value(),
                       d->slot, d->node, d->size, d->memdev);
    out += fmt::format("  hotplugged: {}\r\n  hotpluggable: true\r\n", d->hotplugged ? "true" : "false");
  }
  return out;
}

struct MonitorResult {
  std::optional<std::string> error;   // QEMU's message
  OrderedJson value;                  // QMP return value
  std::optional<std::string> unsupported;
};

MonitorResult object_add(Simulation& s, std::string_view opts) {
  auto b = parse_memory_backend(opts);
  if (!b) return {b.error().message, {}, b.error().code == Errno::NotSupp ? std::optional(b.error().message) : std::nullopt};
  if (auto r = add_memory_backend(s.platform, *b); !r) return {r.error().message, {}, {}};
  return {std::nullopt, OrderedJson::object(), {}};
}

MonitorResult device_add(Simulation& s, std::string_view opts) {
  auto req = parse_memory_device(opts);
  if (!req) {
    if (req.error().code == Errno::NotSupp) return {std::nullopt, {}, req.error().message};
    return {req.error().message, {}, {}};
  }
  if (req->kind == MemoryDeviceKind::Nvdimm) return {std::nullopt, {}, std::string("NVDIMM hot-plug (NFIT update) is not modelled")};
  auto dev = plug_memory_device(s.platform, *req, /*hotplugged=*/true);
  if (!dev) return {dev.error().message, {}, {}};
  s.hot_add_dimm(*dev);
  return {std::nullopt, OrderedJson::object(), {}};
}

MonitorResult device_del(Simulation& s, std::string_view id) {
  auto dev = check_memory_device_unplug(s.platform, id);
  if (!dev) return {dev.error().message, {}, {}};
  // QEMU sends the eject request; the guest offlines, removes and evaluates _EJ0 at once.
  (void)s.eject_slot((*dev)->slot, 3);
  return {std::nullopt, OrderedJson::object(), {}};
}

}  // namespace

HostActionOutcome run_host_action(Simulation& s, const HostAction& a, std::vector<std::pair<OrderedJson, bool>>& seen) {
  HostActionOutcome o;
  HostActionRecord& r = o.record;
  r.action = a.text;
  const double t0 = s.uptime;
  auto unsupported = [&](std::string why) {
    o.unsupported = std::move(why);
    r.response = OrderedJson{{"error", OrderedJson{{"class", "sparsemem"}, {"desc", "unsupported: " + *o.unsupported}}}};
  };
  switch (a.kind) {
    case HostActionKind::Qmp: {
      const std::string exec = string_field(a.qmp, "execute");
      const OrderedJson args =
          a.qmp.is_object() && a.qmp.contains("arguments") && a.qmp["arguments"].is_object() ? a.qmp["arguments"] : OrderedJson::object();
      MonitorResult m;
      if (exec == "query-memory-devices") {
        r.response = query_memory_devices(s.platform);
        break;
      }
      if (exec == "query-memory-size-summary") {
        uint64_t plugged = 0;
        for (const MemoryDevice& d : s.platform.memory_devices) plugged += d.size;
        r.response = OrderedJson{{"return", OrderedJson{{"base-memory", s.platform.ram_size}, {"plugged-memory", plugged}}}};
        break;
      }
      if (exec == "object-add") m = object_add(s, backend_opts_from_qmp(args));
      else if (exec == "device_add") m = device_add(s, device_opts_from_qmp(args));
      else if (exec == "device_del") m = device_del(s, string_field(args, "id"));
      else m.unsupported = fmt::format("QMP command '{}'", exec);
      if (m.unsupported) unsupported(*m.unsupported);
      else r.response = m.error ? generic_error(*m.error) : OrderedJson{{"return", m.value}};
      break;
    }
    case HostActionKind::Hmp: {
      const std::string& line = a.argument;
      const size_t sp = line.find(' ');
      const std::string verb = line.substr(0, sp);
      const std::string rest = sp == std::string::npos ? std::string() : line.substr(sp + 1);
      if (line == "info memory-devices") {
        r.response = OrderedJson{{"return", info_memory_devices(s.platform)}};
        break;
      }
      MonitorResult m;
      if (verb == "object_add") m = object_add(s, rest);
      else if (verb == "device_add") m = device_add(s, rest);
      else if (verb == "device_del") m = device_del(s, rest);
      else m.unsupported = fmt::format("HMP command '{}'", line);
      // HMP prints errors as text in the reply ("Error: ...").
      if (m.unsupported) unsupported(*m.unsupported);
      else r.response = OrderedJson{{"return", m.error ? "Error: " + *m.error + "\r\n" : std::string()}};
      break;
    }
    case HostActionKind::Sleep: s.uptime += std::max(0.0, a.seconds); break;
    case HostActionKind::WaitEvent: {
      for (auto& [ev, claimed] : seen) {
        if (!claimed && string_field(ev, "event") == a.event) {
          claimed = true;
          r.response = ev;
          break;
        }
      }
      if (r.response) break;
      for (size_t i = 0; i < s.pending_events.size(); ++i) {
        if (string_field(s.pending_events[i], "event") == a.event) {
          r.response = s.pending_events[i];
          s.pending_events.erase(s.pending_events.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
      }
      if (!r.response) {
        s.uptime += std::max(0.0, a.seconds);
        r.response = OrderedJson{{"error", OrderedJson{{"class", "oracle-timeout"}, {"desc", "no " + a.event + " event"}}}};
      }
      break;
    }
    case HostActionKind::Unknown:
      r.response = OrderedJson{{"error", OrderedJson{{"class", "oracle"}, {"desc", "unknown host action " + a.verb}}}};
      break;
  }
  // The driver reads events for 0.3 s after each action.
  s.uptime += 0.3;
  r.events = std::move(s.pending_events);
  s.pending_events.clear();
  for (const OrderedJson& e : *r.events) seen.emplace_back(e, false);
  r.elapsed_s = std::round((s.uptime - t0) * 1000) / 1000;
  return o;
}

}  // namespace sparsemem::sim
