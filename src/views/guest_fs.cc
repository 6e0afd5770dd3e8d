// The guest's file tree: /proc, the memory and node sysfs directories, module parameters, ACPI
// memory devices and debugfs error injection, each file a rendering of state or one operation.
#include <array>
#include <charconv>
#include <memory>
#include <optional>

#include <fmt/core.h>

#include "sparsemem/views.h"

namespace sparsemem {
namespace {

using Ctx = std::shared_ptr<GuestFsContext>;

// One trailing newline is what `echo` adds; the kernel's parsers strip it (sysfs_streq, kstrto*).
std::string_view strip_newline(std::string_view v) {
  if (!v.empty() && v.back() == '\n') v.remove_suffix(1);
  return v;
}

// kstrtobool() (lib/kstrtox.c): the first characters decide.
std::optional<bool> parse_kstrtobool(std::string_view v) {
  if (v.empty()) return std::nullopt;
  switch (v[0]) {
    case 'y': case 'Y': case '1': return true;
    case 'n': case 'N': case '0': return false;
    case 'o': case 'O':
      if (v.size() > 1 && (v[1] == 'n' || v[1] == 'N')) return true;
      if (v.size() > 1 && (v[1] == 'f' || v[1] == 'F')) return false;
      return std::nullopt;
    default: return std::nullopt;
  }
}

// kstrtoull(s, 0, ...) / kstrtoll(s, 0, ...): base from the prefix, one trailing newline, nothing else.
std::optional<int64_t> parse_kstrtoll(std::string_view v, bool allow_negative) {
  v = strip_newline(v);
  bool neg = false;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    neg = v[0] == '-';
    if (neg && !allow_negative) return std::nullopt;
    v.remove_prefix(1);
  }
  int base = 10;
  if (v.size() > 1 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    base = 16;
    v.remove_prefix(2);
  } else if (v.size() > 1 && v[0] == '0') {
    base = 8;
    v.remove_prefix(1);
  }
  if (v.empty()) return std::nullopt;
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value, base);
  if (ec != std::errc() || end != v.data() + v.size() || value > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return neg ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
}

Result<void> einval(std::string why) { return fail(Errno::Inval, std::move(why)); }

std::optional<uint64_t> parse_suffix_number(std::string_view name, std::string_view prefix) {
  if (!name.starts_with(prefix) || name.size() == prefix.size()) return std::nullopt;
  name.remove_prefix(prefix.size());
  if (name.size() > 1 && name[0] == '0') return std::nullopt;
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
  if (ec != std::errc() || end != name.data() + name.size()) return std::nullopt;
  return v;
}

FsNode empty_dir() { return fs_dir({}); }

// ---- /sys/devices/system/memory/memoryN -------------------------------------------------------

FsNode memory_block_dir(const Ctx& c, BlockId id) {
  Machine* m = c->machine;
  auto block = [m, id]() { return m->memory_blocks().find(id); };
  // Built entry by entry on lookup: the guest helpers read a block's attributes one path at a
  // time, and building every entry for each of them was most of a snapshot's cost.
  auto entry = [m, id, block](std::string_view name) -> std::optional<FsNode> {
    if (name == "online")
      return fs_file_rw(
          [block]() -> Result<std::string> {
            const MemoryBlock* b = block();
            if (!b) return fail(Errno::NoDev);
            return b->state == MemoryBlockState::Online ? "1\n" : "0\n";
          },
          [m, id](std::string_view v) -> Result<void> {
            const auto on = parse_kstrtobool(v);
            if (!on) return einval("online: not a boolean");
            return *on ? m->device_online(id) : m->device_offline(id);
          });
    if (name == "phys_device") return fs_const("0\n");
    if (name == "phys_index") return fs_const(fmt::format("{:08x}\n", id.value()));
    if (name == "power") return empty_dir();
    if (name == "removable") return fs_const("1\n");
    if (name == "state")
      return fs_file_rw(
          [block]() -> Result<std::string> {
            const MemoryBlock* b = block();
            if (!b) return fail(Errno::NoDev);
            return std::string(memory_block_state_name(b->state)) + "\n";
          },
          [m, id](std::string_view v) -> Result<void> {
            // state_store(): the string is parsed before any lock is taken.
            const auto type = parse_online_type(v);
            if (!type) return einval("state: unknown online type");
            return m->memory_block_state_store(id, *type);
          });
    if (name == "subsystem") return fs_link("../../../../bus/memory");
    if (name == "uevent")
      return fs_file_rw([]() -> Result<std::string> { return std::string(); },
                        [](std::string_view) -> Result<void> { return {}; });
    if (name == "valid_zones")
      return fs_file([m, id]() -> Result<std::string> {
        SPM_TRY_ASSIGN(std::string z, m->valid_zones(id));
        return z + "\n";
      });
    if (const MemoryBlock* b = block(); b && name == fmt::format("node{}", b->nid))
      return fs_link(fmt::format("../../node/node{}", b->nid));
    return std::nullopt;
  };
  auto names = [block]() {
    std::vector<std::string> v = {"online",    "phys_device", "phys_index", "power",      "removable",
                                  "state",     "subsystem",   "uevent",     "valid_zones"};
    if (const MemoryBlock* b = block()) v.push_back(fmt::format("node{}", b->nid));
    return v;
  };
  return fs_dynamic_dir(std::move(names), std::move(entry));
}

FsNode memory_dir(const Ctx& c) {
  Machine* m = c->machine;
  std::vector<std::pair<std::string, FsNode>> fixed;
  fixed.emplace_back("auto_online_blocks",
                     fs_file_rw(
                         [m]() -> Result<std::string> {
                           return std::string(online_type_name(m->hotplug_config().auto_online_blocks)) + "\n";
                         },
                         [m](std::string_view v) -> Result<void> {
                           const auto type = parse_online_type(v);
                           if (!type) return einval("auto_online_blocks: unknown online type");
                           m->set_auto_online_blocks(*type);
                           return {};
                         }));
  fixed.emplace_back("block_size_bytes",
                     fs_file([m]() -> Result<std::string> { return fmt::format("{:x}\n", m->memory_block_size()); }));
  // soft_offline_page_store() / hard_offline_page_store(): a physical address (kstrtoull base 0),
  // shifted to a pfn. The CAP_SYS_ADMIN check (-EPERM) never fails: the guest shell runs as root.
  // memory_failure()'s -EOPNOTSUPP (hwpoison filter) reads as success; the model's own
  // EOPNOTSUPP means "not modelled" and stays an error, which the shell reports as unsupported.
  auto offline_page = [m](bool hard) {
    return fs_file_wo([m, hard](std::string_view v) -> Result<void> {
      const auto addr = parse_kstrtoll(v, false);
      if (!addr) return einval("not a physical address");
      const Pfn pfn(static_cast<uint64_t>(*addr) >> m->arch().page_shift);
      return hard ? m->memory_failure(pfn) : m->soft_offline_page(pfn);
    });
  };
  fixed.emplace_back("hard_offline_page", offline_page(true));
  fixed.emplace_back("soft_offline_page", offline_page(false));
  fixed.emplace_back("power", empty_dir());
  fixed.emplace_back("uevent", fs_file_rw([]() -> Result<std::string> { return std::string(); },
                                          [](std::string_view) -> Result<void> { return {}; }));
  auto shared = std::make_shared<std::vector<std::pair<std::string, FsNode>>>(std::move(fixed));
  return fs_dynamic_dir(
      [m, shared] {
        std::vector<std::string> names;
        for (const auto& [n, node] : *shared) names.push_back(n);
        m->memory_blocks().for_each([&](const MemoryBlock& b) { names.push_back(fmt::format("memory{}", b.id.value())); });
        return names;
      },
      [c, m, shared](std::string_view name) -> std::optional<FsNode> {
        for (const auto& [n, node] : *shared)
          if (n == name) return node;
        const auto id = parse_suffix_number(name, "memory");
        if (!id || !m->memory_blocks().find(BlockId(*id))) return std::nullopt;
        return memory_block_dir(c, BlockId(*id));
      });
}

// ---- /sys/devices/system/node -------------------------------------------------------------------

FsNode node_dir(const Ctx& c) {
  Machine* m = c->machine;
  auto mask = [c, m](std::vector<unsigned> NodeStates::*which) {
    return fs_file([c, m, which]() -> Result<std::string> {
      return node_list_string(node_states(*m, c->cpu_nodes).*which) + "\n";
    });
  };
  std::vector<std::pair<std::string, FsNode>> fixed;
  fixed.emplace_back("has_cpu", mask(&NodeStates::has_cpu));
  fixed.emplace_back("has_memory", mask(&NodeStates::has_memory));
  fixed.emplace_back("has_normal_memory", mask(&NodeStates::has_normal_memory));
  fixed.emplace_back("online", mask(&NodeStates::online));
  fixed.emplace_back("possible", mask(&NodeStates::possible));
  fixed.emplace_back("power", empty_dir());
  fixed.emplace_back("uevent", fs_const(""));
  auto shared = std::make_shared<std::vector<std::pair<std::string, FsNode>>>(std::move(fixed));
  auto one_node = [m](unsigned nid) {
    return fs_dynamic_dir(
        [m, nid] {
          std::vector<std::string> names;
          m->memory_blocks().for_each([&](const MemoryBlock& b) {
            if (b.nid == nid) names.push_back(fmt::format("memory{}", b.id.value()));
          });
          return names;
        },
        [m, nid](std::string_view name) -> std::optional<FsNode> {
          const auto id = parse_suffix_number(name, "memory");
          const MemoryBlock* b = id ? m->memory_blocks().find(BlockId(*id)) : nullptr;
          if (!b || b->nid != nid) return std::nullopt;
          return fs_link(fmt::format("../../memory/memory{}", *id));
        });
  };
  return fs_dynamic_dir(
      [m, shared] {
        std::vector<std::string> names;
        for (const auto& [n, node] : *shared) names.push_back(n);
        for (const Node& n : m->nodes())
          if (n.online) names.push_back(fmt::format("node{}", n.nid));
        return names;
      },
      [m, shared, one_node](std::string_view name) -> std::optional<FsNode> {
        for (const auto& [n, node] : *shared)
          if (n == name) return node;
        const auto nid = parse_suffix_number(name, "node");
        if (!nid || *nid >= m->nodes().size() || !m->nodes()[*nid].online) return std::nullopt;
        return one_node(static_cast<unsigned>(*nid));
      });
}

// ---- /sys/module/memory_hotplug/parameters -----------------------------------------------------

FsNode memory_hotplug_module(const Ctx& c) {
  Machine* m = c->machine;
  auto yn = [](bool b) -> Result<std::string> { return std::string(b ? "Y\n" : "N\n"); };
  std::vector<std::pair<std::string, FsNode>> params;
  params.emplace_back("auto_movable_numa_aware",
                      fs_file_rw([m, yn]() { return yn(m->hotplug_config().auto_movable_numa_aware); },
                                 [m](std::string_view v) -> Result<void> {
                                   const auto b = parse_kstrtobool(v);
                                   if (!b) return einval("not a boolean");
                                   m->set_auto_movable_numa_aware(*b);
                                   return {};
                                 }));
  params.emplace_back("auto_movable_ratio", fs_file_rw(
                                                [m]() -> Result<std::string> {
                                                  return fmt::format("{}\n", m->hotplug_config().auto_movable_ratio);
                                                },
                                                [m](std::string_view v) -> Result<void> {
                                                  const auto n = parse_kstrtoll(v, false);
                                                  if (!n || *n > UINT32_MAX) return einval("not an unsigned int");
                                                  m->set_auto_movable_ratio(static_cast<unsigned>(*n));
                                                  return {};
                                                }));
  params.emplace_back("memmap_on_memory", fs_file([m, yn]() { return yn(m->hotplug_config().memmap_on_memory); }));
  params.emplace_back("online_policy", fs_file_rw(
                                           [m]() -> Result<std::string> {
                                             return std::string(online_policy_name(m->hotplug_config().online_policy)) + "\n";
                                           },
                                           [m](std::string_view v) -> Result<void> {
                                             const auto p = parse_online_policy(v);
                                             if (!p) return einval("unknown online policy");
                                             m->set_online_policy(*p);
                                             return {};
                                           }));
  return fs_dir({{"parameters", fs_dir(std::move(params))}, {"uevent", fs_const("")}});
}

// ---- /sys/bus/acpi/devices/PNP0C80:NN ----------------------------------------------------------

FsNode acpi_device_dir(const Ctx& c, unsigned slot) {
  Machine* m = c->machine;
  AcpiMemoryHotplug* acpi = c->acpi;
  const AcpiMemoryDeviceState* d = acpi->find_slot(slot);
  std::vector<std::pair<std::string, FsNode>> e;
  e.emplace_back("eject", fs_file_wo([c, slot](std::string_view v) -> Result<void> {
                   // acpi_eject_store(): only "1" ejects, and only a present device with a scan handler;
                   // the ejection itself is queued work, whose failure the writer never sees.
                   if (v.empty() || v[0] != '1') return einval("eject: not 1");
                   if (c->acpi->find_slot(slot)->status == 0) return fail(Errno::NoDev, "no such device");
                   (void)(c->acpi_eject ? c->acpi_eject(slot) : c->acpi->eject(*c->machine, slot));
                   return {};
                 }));
  e.emplace_back("hid", fs_const("PNP0C80\n"));
  e.emplace_back("modalias", fs_const("acpi:PNP0C80:\n"));
  e.emplace_back("path", fs_const(d->path + "\n"));
  e.emplace_back("power", empty_dir());
  e.emplace_back("status", fs_file([acpi, slot]() -> Result<std::string> {
                   return fmt::format("{}\n", acpi->find_slot(slot)->status);
                 }));
  e.emplace_back("uevent", fs_const("MODALIAS=acpi:PNP0C80:\n"));
  // acpi_bind_one(): the first link is "physical_node", the next ones "physical_nodeN".
  const std::vector<BlockId> blocks = acpi->physical_nodes(*m, slot);
  for (size_t i = 0; i < blocks.size(); ++i)
    e.emplace_back(i == 0 ? std::string("physical_node") : fmt::format("physical_node{}", i),
                   fs_link(fmt::format("../../../../system/memory/memory{}", blocks[i].value())));
  return fs_dir(std::move(e));
}

FsNode acpi_devices_dir(const Ctx& c) {
  return fs_dynamic_dir(
      [c] {
        std::vector<std::string> names;
        if (c->acpi)
          for (const AcpiMemoryDeviceState& d : c->acpi->devices()) names.push_back(d.name);
        return names;
      },
      [c](std::string_view name) -> std::optional<FsNode> {
        const AcpiMemoryDeviceState* d = c->acpi ? c->acpi->find(name) : nullptr;
        if (!d) return std::nullopt;
        return acpi_device_dir(c, d->slot);
      });
}

// ---- /sys/kernel/debug/notifier-error-inject/memory (memory_notifier_error_inject) -------------

FsNode notifier_inject_dir(const Ctx& c) {
  // The machine keeps the injected errors write-only; the files read back what was last written.
  auto values = std::make_shared<std::array<int, 2>>();
  auto action = [c, values](MemoryAction a, unsigned idx) {
    return fs_dir({{"error", fs_file_rw(
                                 [values, idx]() -> Result<std::string> { return fmt::format("{}\n", (*values)[idx]); },
                                 [c, values, a, idx](std::string_view v) -> Result<void> {
                                   const auto n = parse_kstrtoll(v, true);
                                   if (!n) return einval("not a number");
                                   // debugfs_errno_set(): clamped to [-MAX_ERRNO, 0].
                                   const int err = static_cast<int>(std::clamp<int64_t>(*n, -4095, 0));
                                   SPM_TRY(c->machine->set_memory_notifier_error(a, err));
                                   (*values)[idx] = err;
                                   return {};
                                 })}});
  };
  return fs_dir({{"actions", fs_dir({{"MEM_GOING_OFFLINE", action(MemoryAction::GoingOffline, 0)},
                                     {"MEM_GOING_ONLINE", action(MemoryAction::GoingOnline, 1)}})},
                 {"priority", fs_const("0\n")}});
}

}  // namespace

VirtualFs make_guest_fs(GuestFsContext ctx) {
  const Ctx c = std::make_shared<GuestFsContext>(std::move(ctx));
  Machine* m = c->machine;
  FsNode proc = fs_dir({
      {"cmdline", fs_file([c]() -> Result<std::string> { return c->cmdline + "\n"; })},
      {"iomem", fs_file([m]() -> Result<std::string> { return m->iomem().render(); })},
      {"meminfo", fs_file([m]() -> Result<std::string> { return render_meminfo(*m); })},
      {"zoneinfo", fs_file([m]() -> Result<std::string> { return render_zoneinfo(*m); })},
  });
  FsNode debug = fs_dynamic_dir(
      [c] {
        std::vector<std::string> names;
        if (c->notifier_inject_loaded && c->notifier_inject_loaded()) names.emplace_back("notifier-error-inject");
        return names;
      },
      [c](std::string_view name) -> std::optional<FsNode> {
        if (name != "notifier-error-inject" || !c->notifier_inject_loaded || !c->notifier_inject_loaded())
          return std::nullopt;
        return fs_dir({{"memory", notifier_inject_dir(c)}});
      });
  FsNode sys = fs_dir({
      {"bus", fs_dir({{"acpi", fs_dir({{"devices", acpi_devices_dir(c)}})},
                      {"dax", fs_dir({{"devices", empty_dir()}})},
                      {"memory", fs_dir({{"devices", empty_dir()}})},
                      {"nd", fs_dir({{"devices", empty_dir()}})}})},
      {"devices", fs_dir({{"system", fs_dir({{"memory", memory_dir(c)}, {"node", node_dir(c)}})}})},
      {"kernel", fs_dir({{"debug", debug}})},
      {"module", fs_dir({{"memory_hotplug", memory_hotplug_module(c)}})},
  });
  return VirtualFs(fs_dir({{"proc", proc}, {"sys", sys}}));
}

}  // namespace sparsemem
