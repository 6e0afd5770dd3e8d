// Test support for hotplug: a printable snapshot of everything an operation may change, and a replayer
// of the oracle traces' hotplug steps (with the ACPI PNP0C80 driver). Test-only; expectations come from traces.
#pragma once

#include <fmt/core.h>

#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparsemem/kpageflags.h"
#include "sparsemem/machine.h"
#include "sparsemem/platform.h"
#include "support/machines.h"

namespace sparsemem::testing {

// ---- Snapshot ------------------------------------------------------------------------------------

// Blocks, nodes and zones, section words and subsection maps, iomem, max_pfn, the firmware memmap,
// tagged pages and kpageflags of sampled pfns, rendered as text so a failing comparison prints a diff.
inline std::string hotplug_snapshot(const Machine& m, const std::vector<uint64_t>& tags = {},
                                    const std::vector<Pfn>& pfns = {}) {
  std::string s;
  m.memory_blocks().for_each([&](const MemoryBlock& b) {
    s += fmt::format("block {} {} nid {} zone {} vmemmap {} group {} valid_zones '{}'\n", b.id.value(),
                     memory_block_state_name(b.state), b.nid, b.zone ? zone_name(*b.zone) : "none",
                     b.nr_vmemmap_pages.value(), b.group ? static_cast<int64_t>(b.group->value()) : -1,
                     m.valid_zones(b.id).value_or("?"));
  });
  m.memory_groups().for_each([&](const MemoryGroup& g) {
    s += fmt::format("group {} nid {} blocks {} kernel {} movable {}\n", g.id.value(), g.nid, g.nr_blocks,
                     g.present_kernel_pages.value(), g.present_movable_pages.value());
  });
  for (const Node& n : m.nodes()) {
    s += fmt::format("node {} online {} start {:#x} spanned {} present {}\n", n.nid, n.online, n.node_start_pfn.value(),
                     n.node_spanned_pages.value(), n.node_present_pages.value());
    for (const Zone& z : n.zones)
      s += fmt::format("  zone {} start {:#x} spanned {} present {} early {} managed {}\n", zone_name(z.type),
                       z.zone_start_pfn.value(), z.spanned_pages.value(), z.present_pages.value(),
                       z.present_early_pages.value(), z.managed_pages.value());
  }
  {
    RcuReadGuard g;
    for (const SectionNr nr : m.sections().present_sections()) {
      const MemSection* ms = m.sections().find(nr);
      const MemSectionUsage* u = ms->usage();
      s += fmt::format("section {} flags {:#x} subsections {}\n", nr.value(), ms->flags().bits(), u ? u->weight() : 0);
    }
  }
  s += m.iomem().render();
  s += fmt::format("max_pfn {:#x} totalram {}\n", m.max_pfn().value(), m.totalram_pages().value());
  for (const FirmwareMemmapEntry& e : m.firmware_memmap_hotplug())
    s += fmt::format("firmware {:#x}-{:#x} {}\n", e.start.value(), e.last.value(), e.type);
  for (uint64_t tag : tags) {
    const std::optional<Pfn> pfn = m.page_of_tag(tag);
    s += fmt::format("tag {:#x} at {:#x}\n", tag, pfn ? pfn->value() : 0);
  }
  for (Pfn pfn : pfns) {
    auto f = kpageflags(m, pfn);
    s += fmt::format("kpageflags {:#x} {:#x}\n", pfn.value(), f ? *f : ~uint64_t{0});
  }
  return s;
}

// ---- Trace helpers ---------------------------------------------------------------------------------

inline uint64_t hex(const nlohmann::json& j) { return std::stoull(j.get<std::string>(), nullptr, 16); }

inline ZoneType zone_from_name(const std::string& name) {
  if (name == "DMA") return ZoneType::DMA;
  if (name == "DMA32") return ZoneType::DMA32;
  if (name == "Normal") return ZoneType::Normal;
  if (name == "Movable") return ZoneType::Movable;
  return ZoneType::Device;
}

// The hotplug log lines a trace step and the model are compared on (lines that depend on what
// the kernel happened to allocate, such as migration retries and page dumps, are left out).
inline std::vector<std::string> hotplug_log_lines(const std::vector<std::string>& lines) {
  static const std::regex kLine(
      "(Offlined Pages \\d+|memory offlining \\[mem 0x[0-9a-f]+-0x[0-9a-f]+\\] failed due to [a-z ]+|"
      "online_pages \\[mem 0x[0-9a-f]+-0x[0-9a-f]+\\] failed|Injecting error \\(-?\\d+\\) to MEM_[A-Z_]+|"
      "Block size \\[0x[0-9a-f]+\\] unaligned hotplug range: start 0x[0-9a-f]+, size 0x[0-9a-f]+|"
      "page dumped because: unmovable page|removing memory fails, because memory .* is onlined)$");
  std::vector<std::string> out;
  for (const std::string& l : lines) {
    std::smatch mm;
    if (std::regex_search(l, mm, kLine)) out.push_back(mm.str(1));
  }
  return out;
}

struct CommandResult {
  int rc = 0;
  std::vector<std::string> out;
  std::vector<std::string> err;
};

inline std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Shell words of a busybox command line: whitespace separated, single quotes group.
inline std::vector<std::string> shell_words(const std::string& cmd) {
  std::vector<std::string> out;
  std::string cur;
  bool in_quote = false, have = false;
  for (char c : cmd) {
    if (c == '\'') {
      in_quote = !in_quote;
      have = true;
    } else if (!in_quote && (c == ' ' || c == '\t')) {
      if (have) out.push_back(cur);
      cur.clear();
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) out.push_back(cur);
  return out;
}

// ---- Replay ----------------------------------------------------------------------------------------

// One oracle trace's machine driven through the Machine API: boot from the trace's QEMU command line
// and kernel command line, cold-plugged DIMMs attached by the ACPI memory driver, guest commands and
// QMP/HMP host actions of the hotplug scenarios executed, everything else skipped.
class HotplugReplay {
 public:
  struct Dimm {
    MemoryDevice device;
    std::optional<MemoryGroupId> group;
    bool enabled = false;  // add_memory succeeded (or -EEXIST): the range is bound to the device
  };

  explicit HotplugReplay(const nlohmann::json& trace) {
    std::vector<std::string> argv = trace["qemu_cmdline"];
    auto platform = platform_from_qemu(argv, trace["guest_cmdline"].get<std::string>());
    if (!platform) {
      ADD_FAILURE() << platform.error().message;
      return;
    }
    m_platform = *platform;
    auto m = Machine::boot(m_platform, kLinux61);
    if (!m) {
      ADD_FAILURE() << m.error().message;
      return;
    }
    m_machine = std::move(*m);
    // acpi_memory_device_add() runs for every occupied slot during boot.
    for (const MemoryDevice& d : m_platform.memory_devices)
      if (d.kind == MemoryDeviceKind::Dimm) acpi_attach(d);
  }

  Machine& m() { return *m_machine; }
  bool ok() const { return m_machine != nullptr; }

  // acpi_memory_enable_device(): one static group for the device, one __add_memory per range with
  // MHP_NID_IS_MGID (and MHP_MEMMAP_ON_MEMORY when supported for its size); -EEXIST counts as enabled.
  void acpi_attach(const MemoryDevice& d) {
    Dimm dimm{d, std::nullopt, false};
    auto g = m_machine->register_static_memory_group(d.node, NrPages(d.size >> 12));
    if (g) {
      dimm.group = *g;
      MhpFlags flags = MHP_NID_IS_MGID;
      if (m_machine->mhp_supports_memmap_on_memory(d.size)) flags = flags | MHP_MEMMAP_ON_MEMORY;
      auto r = m_machine->add_memory(static_cast<unsigned>(g->value()), d.addr, d.size, flags);
      dimm.enabled = r || r.error().code == Errno::Exist;
      if (!dimm.enabled) {
        (void)m_machine->unregister_memory_group(*g);
        dimm.group.reset();
      }
    }
    m_dimms.push_back(dimm);
  }

  // The ACPI eject of a DIMM: device_offline() every bound block (already offline is fine); when one
  // fails, re-online those it offlined and fail -EBUSY; else remove each range and the group.
  Result<void> acpi_eject(Dimm& dimm) {
    if (dimm.enabled) {
      const uint64_t bs = m_machine->memory_block_size();
      std::vector<std::pair<BlockId, OnlineType>> offlined;
      for (uint64_t a = dimm.device.addr.value(); a < dimm.device.addr.value() + dimm.device.size; a += bs) {
        const BlockId id(a / bs);
        const MemoryBlock* b = m_machine->memory_blocks().find(id);
        if (!b) continue;
        const OnlineType was = b->state != MemoryBlockState::Online ? OnlineType::Offline
                               : b->zone == ZoneType::Movable      ? OnlineType::OnlineMovable
                                                                   : OnlineType::OnlineKernel;
        if (auto r = m_machine->device_offline(id); !r) {
          for (const auto& [oid, t] : offlined) (void)m_machine->device_online(oid, t);
          return fail(Errno::Busy, r.error().message);
        }
        if (was != OnlineType::Offline) offlined.emplace_back(id, was);
      }
      if (auto r = m_machine->remove_memory(dimm.device.addr, dimm.device.size); !r) return r;
    }
    if (dimm.group) (void)m_machine->unregister_memory_group(*dimm.group);
    dimm.enabled = false;
    dimm.group.reset();
    return {};
  }

  Dimm* dimm_of_block(uint64_t block) {
    const uint64_t a = block * m_machine->memory_block_size();
    for (Dimm& d : m_dimms)
      if (d.enabled && a >= d.device.addr.value() && a < d.device.addr.value() + d.device.size) return &d;
    return nullptr;
  }

  // A guest command of the hotplug scenarios; nullopt for commands outside the hotplug API.
  std::optional<CommandResult> run(const std::string& cmd) {
    const std::vector<std::string> w = shell_words(cmd);
    if (w.empty()) return std::nullopt;
    CommandResult res;
    static const std::string kMem = "/sys/devices/system/memory/";
    if (w[0] == "setstate") {
      const std::optional<OnlineType> t = parse_online_type(w[1]);
      for (size_t i = 2; i < w.size(); ++i) {
        auto r = m_machine->memory_block_state_store(BlockId(std::stoull(w[i])), *t);
        if (r) {
          res.out.push_back(fmt::format("memory{}: {} ok", w[i], w[1]));
        } else {
          res.err.push_back(fmt::format("sh: write error: {}", errno_text(r.error().code)));
          res.err.push_back(fmt::format("memory{}: {} FAILED", w[i], w[1]));
          res.rc = 1;
        }
      }
      return res;
    }
    if (w[0] == "cat") {
      for (size_t i = 1; i < w.size(); ++i) {
        const std::string& f = w[i];
        if (f == kMem + "auto_online_blocks") {
          res.out.push_back(online_type_name(m_machine->hotplug_config().auto_online_blocks));
          continue;
        }
        std::smatch mm;
        static const std::regex kAttr("/sys/devices/system/memory/memory(\\d+)/(state|valid_zones)");
        if (!std::regex_match(f, mm, kAttr)) return std::nullopt;
        const BlockId id(std::stoull(mm.str(1)));
        const MemoryBlock* b = m_machine->memory_blocks().find(id);
        if (!b) return std::nullopt;
        res.out.push_back(mm.str(2) == "state" ? memory_block_state_name(b->state) : *m_machine->valid_zones(id));
      }
      return res;
    }
    if ((w[0] == "echo" || w[0] == "printf") && w.size() >= 3 && w[w.size() - 2] == ">") {
      std::string text;
      for (size_t i = 1; i + 2 < w.size(); ++i) text += (i > 1 ? " " : "") + w[i];
      if (w[0] == "echo") text += "\n";
      const std::string& f = w.back();
      auto write_error = [&](Errno e) {
        res.rc = 1;
        res.err.push_back(fmt::format("sh: write error: {}", errno_text(e)));
      };
      std::smatch mm;
      static const std::regex kState("/sys/devices/system/memory/memory(\\d+)/state");
      static const std::regex kInject("/sys/kernel/debug/notifier-error-inject/memory/actions/(MEM_GOING_ONLINE|MEM_GOING_OFFLINE)/error");
      if (std::regex_match(f, mm, kState)) {
        const BlockId id(std::stoull(mm.str(1)));
        if (!m_machine->memory_blocks().find(id)) return std::nullopt;  // a sysfs path error, not hotplug
        const std::optional<OnlineType> t = parse_online_type(text);
        if (!t) {
          write_error(Errno::Inval);
          return res;
        }
        if (auto r = m_machine->memory_block_state_store(id, *t); !r) write_error(r.error().code);
        return res;
      }
      if (f == kMem + "auto_online_blocks") {
        const std::optional<OnlineType> t = parse_online_type(text);
        if (!t)
          write_error(Errno::Inval);
        else
          m_machine->set_auto_online_blocks(*t);
        return res;
      }
      if (std::regex_match(f, mm, kInject)) {
        const MemoryAction a = mm.str(1) == "MEM_GOING_ONLINE" ? MemoryAction::GoingOnline : MemoryAction::GoingOffline;
        if (auto r = m_machine->set_memory_notifier_error(a, std::stoi(text)); !r) write_error(r.error().code);
        return res;
      }
      return std::nullopt;
    }
    if (w[0] == "modprobe" && w.size() == 2 && w[1] == "memory_notifier_error_inject") {
      if (auto r = m_machine->load_memory_notifier_error_inject(); !r) res.rc = 1;
      return res;
    }
    if (w[0] == "ls" && w.size() == 2 && w[1] == "/sys/kernel/debug/notifier-error-inject/memory/actions/") {
      res.out = {"MEM_GOING_OFFLINE", "MEM_GOING_ONLINE"};
      return res;
    }
    if (w[0] == "acpi_eject_block" && w.size() == 2) {
      Dimm* d = dimm_of_block(std::stoull(w[1]));
      if (!d) {
        res.rc = 2;
        return res;
      }
      res.out.push_back(fmt::format("ejecting PNP0C80:{:02X} (\\_SB_.MHPC.MP{:02X})", d->device.slot, d->device.slot));
      // The eject request runs asynchronously: its outcome is not the helper's exit status.
      if (acpi_eject(*d)) remove_device(d->device.id);
      return res;
    }
    return std::nullopt;
  }

  // A host action of the hotplug scenarios (QMP/HMP memory-device commands); others are ignored.
  void host(const std::string& action) {
    std::string opts;
    if (action.rfind("hmp object_add ", 0) == 0) {
      add_backend(action.substr(15));
    } else if (action.rfind("hmp device_add ", 0) == 0) {
      add_device(action.substr(15));
    } else if (action.rfind("hmp device_del ", 0) == 0) {
      del_device(action.substr(15));
    } else if (action.rfind("qmp ", 0) == 0) {
      const nlohmann::json j = nlohmann::json::parse(action.substr(4));
      const std::string exec = j["execute"];
      if (exec == "object-add" || exec == "device_add") {
        const nlohmann::json& a = j["arguments"];
        opts = exec == "object-add" ? a["qom-type"].get<std::string>() : a["driver"].get<std::string>();
        for (const auto& [k, v] : a.items()) {
          if (k == "qom-type" || k == "driver") continue;
          opts += "," + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
        }
        if (exec == "object-add")
          add_backend(opts);
        else
          add_device(opts);
      } else if (exec == "device_del") {
        del_device(j["arguments"]["id"]);
      }
    }
  }

 private:
  void add_backend(const std::string& opts) {
    auto b = parse_memory_backend(opts);
    ASSERT_TRUE(b) << b.error().message;
    ASSERT_TRUE(add_memory_backend(m_platform, *b));
  }
  void add_device(const std::string& opts) {
    auto req = parse_memory_device(opts);
    ASSERT_TRUE(req) << req.error().message;
    auto d = plug_memory_device(m_platform, *req, true);
    ASSERT_TRUE(d) << d.error().message;
    acpi_attach(*d);
  }
  // device_del: QEMU asks the guest to eject; the guest's ACPI driver offlines and removes.
  void del_device(const std::string& id) {
    for (Dimm& d : m_dimms)
      if (d.device.id == id) {
        if (acpi_eject(d)) remove_device(id);
        return;
      }
  }
  void remove_device(const std::string& id) {
    (void)remove_memory_device(m_platform, id);
    std::erase_if(m_dimms, [&](const Dimm& d) { return d.device.id == id; });
  }

  PlatformDescription m_platform;
  std::unique_ptr<Machine> m_machine;
  std::vector<Dimm> m_dimms;
};

}  // namespace sparsemem::testing
