// QEMU 7.2 machines from their command line (vl.c, machine.c, numa.c, pc*.c + SeaBIOS 1.16.2, arm/virt.c),
// cold-plugged memory devices, then the Linux 6.1 boot view of them. Pure functions.
#include <algorithm>
#include <bit>
#include <cerrno>

#include <fmt/core.h>

#include "platform_internal.h"
#include "qemu_opts.h"

namespace sparsemem {

using namespace platform_detail;

namespace {

// ---- argv ----

struct OptionSpec {
  std::string_view name;
  bool has_arg;
};

// The options QEMU 7.2 knows that the traces and ordinary command lines use. Options that shape memory are
// interpreted below; the rest are accepted and do not change the layout.
constexpr OptionSpec kOptions[] = {
    {"machine", true},   {"M", true},        {"m", true},          {"smp", true},        {"cpu", true},
    {"numa", true},      {"object", true},   {"device", true},     {"append", true},     {"kernel", true},
    {"initrd", true},    {"dtb", true},      {"bios", true},       {"drive", true},      {"pflash", true},
    {"display", true},   {"chardev", true},  {"serial", true},     {"qmp", true},        {"qmp-pretty", true},
    {"monitor", true},   {"mon", true},      {"name", true},       {"pidfile", true},    {"accel", true},
    {"netdev", true},    {"net", true},      {"nic", true},        {"vga", true},        {"global", true},
    {"boot", true},      {"rtc", true},      {"d", true},          {"D", true},          {"trace", true},
    {"L", true},         {"fw_cfg", true},   {"smbios", true},     {"uuid", true},       {"action", true},
    {"overcommit", true}, {"msg", true},     {"incoming", true},   {"icount", true},     {"k", true},
    {"audiodev", true},  {"parallel", true}, {"sandbox", true},    {"hda", true},        {"hdb", true},
    {"hdc", true},       {"hdd", true},      {"cdrom", true},      {"fda", true},        {"fdb", true},
    {"blockdev", true},  {"usbdevice", true}, {"watchdog-action", true}, {"add-fd", true}, {"semihosting-config", true},
    {"nodefaults", false}, {"no-reboot", false}, {"no-shutdown", false}, {"nographic", false}, {"S", false},
    {"enable-kvm", false}, {"no-acpi", false}, {"no-hpet", false}, {"daemonize", false}, {"snapshot", false},
    {"s", false},        {"no-user-config", false}, {"nodefconfig", false}, {"full-screen", false},
    {"no-fd-bootchk", false}, {"semihosting", false}, {"only-migratable", false}, {"preconfig", false},
};

const OptionSpec* find_option(std::string_view name) {
  for (const OptionSpec& o : kOptions) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

struct Args {
  std::vector<std::string> machine;  // every -machine text, merged in order
  std::vector<std::string> memory;   // every -m text, merged in order
  std::optional<std::string> smp;
  std::optional<std::string> cpu;
  std::vector<std::string> numa;
  std::vector<std::string> objects;
  std::vector<std::string> devices;
  std::optional<std::string> append;
  bool kernel = false;
  bool nodefaults = false;
  bool no_acpi = false;
  bool no_hpet = false;
  bool kvm = false;
  bool firmware = false;  // -bios or a pflash drive: virt's UEFI (needed for its ACPI GED)
};

Result<Args> parse_argv(std::span<const std::string> argv, std::vector<std::string>& warnings) {
  Args a;
  size_t i = 0;
  if (!argv.empty() && (argv[0].empty() || argv[0][0] != '-')) i = 1;  // the program name
  for (; i < argv.size(); ++i) {
    std::string_view arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') {
      // QEMU takes a bare argument as the first disk image (-hda); it does not shape memory.
      warnings.push_back(fmt::format("sparsemem: disk image argument '{}' ignored", arg));
      continue;
    }
    std::string_view name = arg.substr(arg[1] == '-' ? 2 : 1);
    const OptionSpec* spec = find_option(name);
    if (!spec) return fail(Errno::Inval, fmt::format("{}: invalid option", arg));
    std::string value;
    if (spec->has_arg) {
      if (i + 1 >= argv.size()) return fail(Errno::Inval, fmt::format("{}: requires an argument", arg));
      value = argv[++i];
    }
    if (name == "machine" || name == "M") a.machine.push_back(value);
    else if (name == "m") a.memory.push_back(value);
    else if (name == "smp") a.smp = value;
    else if (name == "cpu") a.cpu = value;
    else if (name == "numa") a.numa.push_back(value);
    else if (name == "object") a.objects.push_back(value);
    else if (name == "device") a.devices.push_back(value);
    else if (name == "append") a.append = value;
    else if (name == "kernel") a.kernel = true;
    else if (name == "nodefaults") a.nodefaults = true;
    else if (name == "no-acpi") a.no_acpi = true;
    else if (name == "no-hpet") a.no_hpet = true;
    else if (name == "enable-kvm") a.kvm = true;
    else if (name == "bios" || name == "pflash") a.firmware = true;
    else if (name == "drive" && value.find("if=pflash") != std::string::npos) a.firmware = true;
    else if (name == "accel") {
      auto kv = qemu::split_opts(value, "accel");
      if (kv && qemu::find_opt(*kv, "accel").value_or("tcg") != "tcg") a.kvm = true;
    }
  }
  return a;
}

// ---- machine options ----

struct MachineOpts {
  MachineType type = MachineType::Pc;
  std::string qom_type;  // "pc-i440fx-7.2-machine", for QEMU's "Property 'x.y' not found"
  bool nvdimm = false;
  uint64_t max_ram_below_4g = 0;  // 0 = machine default
  bool hpet = true;
  bool acpi = true;
  bool highmem = true;
  std::optional<std::string> memory_backend;
};

bool known_machine_property(MachineType t, std::string_view key) {
  static constexpr std::string_view common[] = {
      "type", "accel", "kernel", "initrd", "append", "dtb", "dumpdtb", "dump-guest-core", "mem-merge", "usb",
      "graphics", "firmware", "suppress-vmdesc", "memory-encryption", "confidential-guest-support", "boot",
      "memory-backend", "nvdimm", "nvdimm-persistence", "hmat", "phandle-start", "dt-compatible", "acpi",
      "kernel-irqchip", "kvm-shadow-mem", "dea-key-wrap", "aes-key-wrap", "default-bus-bypass-iommu"};
  static constexpr std::string_view x86[] = {"max-ram-below-4g", "hpet", "smm", "vmport", "sata", "pit", "i8042",
                                             "smbus", "max-fw-size", "pflash0", "pflash1", "x-oem-id",
                                             "x-oem-table-id", "bus-lock-ratelimit", "pic"};
  static constexpr std::string_view arm[] = {"highmem", "gic-version", "its", "iommu", "secure", "virtualization",
                                             "ras", "mte", "dtb-randomness", "compact-highmem", "highmem-redists",
                                             "highmem-ecam", "highmem-mmio"};
  for (auto k : common) {
    if (k == key) return true;
  }
  for (auto k : (t == MachineType::Virt ? std::span<const std::string_view>(arm) : std::span<const std::string_view>(x86))) {
    if (k == key) return true;
  }
  return false;
}

// An OnOffAuto or bool machine property; nullopt for "auto" (the machine's default).
Result<std::optional<bool>> bool_prop(const qemu::Opt& o) {
  if (o.value == "auto") return std::optional<bool>{};
  auto b = qemu::parse_bool(o.value);
  if (!b) return fail(Errno::Inval, fmt::format("Parameter '{}' expects 'on' or 'off'", o.key));
  return std::optional<bool>{*b};
}

Result<MachineOpts> parse_machine(const Args& a, const PlatformOptions& options, std::vector<std::string>& warnings) {
  std::vector<qemu::Opt> kv;
  for (const std::string& text : a.machine) {
    SPM_TRY_ASSIGN(std::vector<qemu::Opt> part, qemu::split_opts(text, "type"));
    kv.insert(kv.end(), part.begin(), part.end());
  }
  MachineOpts m;
  std::string type;
  if (auto t = qemu::find_opt(kv, "type")) {
    type = *t;
  } else if (options.arch && options.arch->family == ArchFamily::Arm64) {
    return fail(Errno::Inval, "No machine specified, and there is no default\nUse -machine help to list supported "
                              "machines");
  } else {
    type = "pc";
  }
  if (type == "pc" || type == "pc-i440fx-7.2") {
    m.type = MachineType::Pc;
    m.qom_type = "pc-i440fx-7.2-machine";
  } else if (type == "q35" || type == "pc-q35-7.2") {
    m.type = MachineType::Q35;
    m.qom_type = "pc-q35-7.2-machine";
  } else if (type == "virt" || type == "virt-7.2") {
    m.type = MachineType::Virt;
    m.qom_type = "virt-7.2-machine";
  } else {
    return fail(Errno::NotSupp, fmt::format("sparsemem: machine type '{}' is not modelled (pc, q35, virt)", type));
  }
  for (const qemu::Opt& o : kv) {
    if (o.key == "type") continue;
    if (!known_machine_property(m.type, o.key)) {
      return fail(Errno::Inval, fmt::format("Property '{}.{}' not found", m.qom_type, o.key));
    }
    if (o.key == "nvdimm") {
      SPM_TRY_ASSIGN(auto b, bool_prop(o));
      m.nvdimm = b.value_or(false);
    } else if (o.key == "hpet") {
      SPM_TRY_ASSIGN(auto b, bool_prop(o));
      m.hpet = b.value_or(true);
    } else if (o.key == "acpi") {
      SPM_TRY_ASSIGN(auto b, bool_prop(o));
      m.acpi = b.value_or(true);
    } else if (o.key == "highmem") {
      SPM_TRY_ASSIGN(auto b, bool_prop(o));
      m.highmem = b.value_or(true);
    } else if (o.key == "memory-backend") {
      m.memory_backend = o.value;
    } else if (o.key == "accel") {
      if (o.value != "tcg") return fail(Errno::NotSupp, "sparsemem: only TCG is modelled (KVM changes the layout)");
    } else if (o.key == "max-ram-below-4g") {
      qemu::SizeResult s = qemu::strtosz(o.value);
      if (s.error) return fail(Errno::Inval, fmt::format("Parameter '{}' expects size", o.key));
      if (s.value > 4 * GiB) {
        return fail(Errno::Inval, fmt::format("Machine option 'max-ram-below-4g={}' expects size less than or equal "
                                              "to 4G",
                                              s.value));
      }
      if (s.value < MiB) {
        warnings.push_back(fmt::format("warning: Only {} bytes of RAM below the 4GiB boundary,BIOS may not work "
                                       "with less than 1MiB",
                                       s.value));
      }
      m.max_ram_below_4g = s.value;
    }
  }
  if (a.no_acpi) m.acpi = false;
  if (a.no_hpet) m.hpet = false;
  return m;
}

// ---- -m ----

struct MemoryOpts {
  std::optional<uint64_t> size;
  std::optional<uint64_t> maxmem;
  std::optional<uint64_t> slots;
};

Result<MemoryOpts> parse_memory(const Args& a) {
  MemoryOpts mem;
  for (const std::string& text : a.memory) {
    const std::string loc = fmt::format("-m {}: ", text);
    auto kv = qemu::split_opts(text, "size");
    if (!kv) return fail(Errno::Inval, loc + kv.error().message);
    for (const qemu::Opt& o : *kv) {
      if (o.key == "size") {
        qemu::SizeResult s = qemu::strtosz(o.value);
        if (s.error) return fail(Errno::Inval, loc + qemu::size_error("size", o.value, s.error));
        // parse_memory_options(): size 0 keeps the default; a suffix-less value means MiB.
        if (s.value == 0) continue;
        if (!o.value.empty() && o.value.back() >= '0' && o.value.back() <= '9') {
          qemu::SizeResult mib = qemu::strtosz(o.value, 'M');
          if (mib.error) return fail(Errno::Inval, "Parameter 'memory.size' expects size");
          mem.size = mib.value;
        } else {
          mem.size = s.value;
        }
      } else if (o.key == "maxmem") {
        qemu::SizeResult s = qemu::strtosz(o.value);
        if (s.error) return fail(Errno::Inval, loc + qemu::size_error("maxmem", o.value, s.error));
        mem.maxmem = s.value;
      } else if (o.key == "slots") {
        auto n = qemu::strtou64(o.value);
        if (!n) return fail(Errno::Inval, loc + qemu::number_error("slots"));
        mem.slots = *n;
      } else {
        return fail(Errno::Inval, loc + fmt::format("Invalid parameter '{}'", o.key));
      }
    }
  }
  return mem;
}

// ---- -smp / -cpu ----

struct CpuOpts {
  unsigned cpus = 1;
  unsigned threads_per_socket = 1;  // cores * threads * dies * clusters: CPUs per socket
  unsigned phys_bits = 40;          // x86 TCG default (TCG_PHYS_ADDR_BITS); arm64: the CPU's PARange
  bool amd = true;                  // qemu64 reports AuthenticAMD
  bool pse = true;                  // CPUID PSE (2 MiB pages); "-cpu qemu64,pse=off" or ",-pse" clears it
};

Result<CpuOpts> parse_cpu(const Args& a, MachineType machine, std::vector<std::string>& warnings) {
  CpuOpts c;
  if (a.smp) {
    const std::string loc = fmt::format("-smp {}: ", *a.smp);
    auto kv = qemu::split_opts(*a.smp, "cpus");
    if (!kv) return fail(Errno::Inval, loc + kv.error().message);
    uint64_t cpus = 0, sockets = 0, dies = 1, clusters = 1, cores = 0, threads = 1;
    for (const qemu::Opt& o : *kv) {
      auto n = qemu::strtou64(o.value);
      if (!n) return fail(Errno::Inval, loc + qemu::number_error(o.key));
      if (o.key == "cpus") cpus = *n;
      else if (o.key == "sockets") sockets = *n;
      else if (o.key == "dies") dies = *n;
      else if (o.key == "clusters") clusters = *n;
      else if (o.key == "cores") cores = *n;
      else if (o.key == "threads") threads = *n;
      else if (o.key == "maxcpus") continue;
      else return fail(Errno::Inval, loc + fmt::format("Invalid parameter '{}'", o.key));
    }
    // machine_parse_smp_config() for 7.2 machines prefers cores over sockets.
    if (dies == 0) dies = 1;
    if (clusters == 0) clusters = 1;
    if (threads == 0) threads = 1;
    if (sockets == 0) sockets = 1;
    if (cores == 0) {
      const uint64_t per = sockets * dies * clusters * threads;
      cores = cpus ? (cpus + per - 1) / per : 1;
    }
    if (cpus == 0) cpus = sockets * dies * clusters * cores * threads;
    const unsigned max_cpus = machine == MachineType::Pc ? 255 : machine == MachineType::Q35 ? 288 : 512;
    if (cpus > max_cpus || cpus == 0) {
      if (machine == MachineType::Virt) {
        return fail(Errno::Inval, fmt::format("Number of SMP CPUs requested ({}) exceeds max CPUs supported by "
                                              "machine 'mach-virt' ({})",
                                              cpus, max_cpus));
      }
      return fail(Errno::Inval, fmt::format("Invalid SMP CPUs {}. The max CPUs supported by machine '{}' is {}", cpus,
                                            machine == MachineType::Pc ? "pc-i440fx-7.2" : "pc-q35-7.2", max_cpus));
    }
    c.cpus = unsigned(cpus);
    const uint64_t per_socket = dies * clusters * cores * threads;
    c.threads_per_socket = per_socket == 0 || per_socket > 0xffffffffu ? 1u : unsigned(per_socket);
  }
  if (machine == MachineType::Virt) {
    // arm_pamax(): the CPU's ID_AA64MMFR0.PARange.
    std::string model = "cortex-a15";
    if (a.cpu) model = a.cpu->substr(0, a.cpu->find(','));
    if (model == "max") c.phys_bits = 52;
    else if (model == "cortex-a57" || model == "cortex-a72" || model == "neoverse-n1") c.phys_bits = 44;
    else if (model == "cortex-a53" || model == "cortex-a76" || model == "a64fx" || model == "cortex-a55") c.phys_bits = 40;
    else if (model == "host") return fail(Errno::NotSupp, "sparsemem: -cpu host needs KVM, which is not modelled");
    else {
      c.phys_bits = 40;
      warnings.push_back(fmt::format("sparsemem: CPU '{}' cannot run an arm64 kernel; PA size taken as 40 bits", model));
    }
    return c;
  }
  if (a.cpu) {
    const std::string loc = fmt::format("-cpu {}: ", *a.cpu);
    auto kv = qemu::split_opts(*a.cpu, "model");
    if (!kv) return fail(Errno::Inval, loc + kv.error().message);
    const std::string model = qemu::find_opt(*kv, "model").value_or("qemu64");
    if (model == "host") return fail(Errno::NotSupp, "sparsemem: -cpu host needs KVM, which is not modelled");
    // IS_AMD_CPU(): the vendor string. qemu64, max (TCG) and the AMD models report AuthenticAMD.
    c.amd = model == "qemu64" || model == "max" || model == "base" || model.rfind("EPYC", 0) == 0 ||
            model.rfind("Opteron", 0) == 0 || model == "phenom" || model == "athlon";
    for (const qemu::Opt& o : *kv) {
      if (o.key == "phys-bits") {
        auto n = qemu::strtou64(o.value);
        if (!n) return fail(Errno::Inval, loc + fmt::format("Parameter 'phys-bits' expects uint32_t"));
        if (*n != 0 && (*n < 32 || *n > 52)) {
          return fail(Errno::Inval, fmt::format("phys-bits should be between 32 and 52 (but is {})", *n));
        }
        if (*n != 0) c.phys_bits = unsigned(*n);
      } else if (o.key == "host-phys-bits") {
        if (qemu::parse_bool(o.value).value_or(false)) {
          return fail(Errno::NotSupp, "sparsemem: host-phys-bits depends on the host and is not modelled");
        }
      } else if (o.key == "vendor") {
        c.amd = o.value == "AuthenticAMD";
      } else if (o.key == "pse" || o.key == "-pse" || o.key == "+pse") {
        // Seed 004 ran QEMU with "-cpu host,pse=off": the vmemmap then uses 4 KiB pages.
        c.pse = o.key == "+pse" || (o.key == "pse" && qemu::parse_bool(o.value).value_or(true));
      }
    }
  }
  return c;
}

// ---- -numa ----

constexpr unsigned kMaxNodes = 128;  // QEMU MAX_NODES

struct NumaState {
  std::vector<std::optional<NumaNode>> nodes;  // index = node id
  unsigned count = 0;                          // nb_numa_nodes: every -numa node counts
};

// parse_numa_node() and friends; errors carry the option's location.
Result<void> parse_numa(const Args& a, PlatformDescription& p, NumaState& st) {
  for (const std::string& text : a.numa) {
    const std::string loc = fmt::format("-numa {}: ", text);
    auto kv = qemu::split_opts(text, "type");
    if (!kv) return fail(Errno::Inval, loc + kv.error().message);
    const std::string type = qemu::find_opt(*kv, "type").value_or("");
    if (type == "dist" || type == "hmat-lb" || type == "hmat-cache") continue;
    if (type == "cpu") {
      p.warnings.push_back("sparsemem: -numa cpu is not modelled; CPUs stay on their default nodes");
      continue;
    }
    if (type != "node") return fail(Errno::Inval, loc + "Parameter 'type' does not accept value '" + type + "'");
    std::optional<uint64_t> nodeid;
    std::optional<std::string> memdev;
    bool has_mem = false;
    std::vector<unsigned> cpus;
    for (const qemu::Opt& o : *kv) {
      if (o.key == "type") continue;
      if (o.key == "nodeid") {
        auto n = qemu::strtou64(o.value);
        if (!n || *n > 0xffff) return fail(Errno::Inval, loc + "Parameter 'nodeid' expects uint16_t");
        nodeid = *n;
      } else if (o.key == "memdev") {
        memdev = o.value;
      } else if (o.key == "mem") {
        has_mem = true;
      } else if (o.key == "cpus") {
        // "N" or "N-M".
        const size_t dash = o.value.find('-');
        auto lo = qemu::strtou64(o.value.substr(0, dash));
        auto hi = dash == std::string::npos ? lo : qemu::strtou64(o.value.substr(dash + 1));
        if (!lo || !hi || *hi < *lo || *hi >= 4096) return fail(Errno::Inval, loc + "Parameter 'cpus' expects an int64 value or range");
        for (uint64_t c = *lo; c <= *hi; ++c) cpus.push_back(unsigned(c));
      } else if (o.key == "initiator") {
        continue;
      } else {
        return fail(Errno::Inval, loc + fmt::format("Invalid parameter '{}'", o.key));
      }
    }
    const uint64_t id = nodeid.value_or(st.count);
    if (id >= kMaxNodes) return fail(Errno::Inval, loc + fmt::format("Max number of NUMA nodes reached: {}", id));
    if (id < st.nodes.size() && st.nodes[id]) return fail(Errno::Inval, loc + fmt::format("Duplicate NUMA nodeid: {}", id));
    if (has_mem && memdev) return fail(Errno::Inval, loc + "cannot specify both mem= and memdev=");
    if (has_mem) {
      return fail(Errno::Inval, loc + "Parameter -numa node,mem is not supported by this machine type\nUse -numa "
                                      "node,memdev instead");
    }
    NumaNode node;
    node.id = unsigned(id);
    node.cpus = cpus;
    if (memdev) {
      const MemoryBackend* b = p.find_backend(*memdev);
      if (!b) return fail(Errno::Inval, loc + fmt::format("memdev={} is ambiguous", *memdev));
      node.memdev = *memdev;
      node.mem_size = b->size;
    }
    if (st.nodes.size() <= id) st.nodes.resize(id + 1);
    st.nodes[id] = node;
    ++st.count;
  }
  return {};
}

// numa_complete_configuration(): the automatic node, contiguous ids, RAM assignment, the total.
Result<void> complete_numa(PlatformDescription& p, NumaState& st, const CpuOpts& cpu) {
  if (st.count == 0 && (p.ram_slots != 0 || p.maxram_size > p.ram_size)) {
    NumaNode n;
    n.mem_size = p.ram_size;
    st.nodes.assign(1, n);
    st.count = 1;
  }
  if (st.count == 0) return {};
  for (unsigned i = st.count; i-- > 0;) {
    if (i >= st.nodes.size() || !st.nodes[i]) return fail(Errno::Inval, fmt::format("numa: Node ID missing: {}", i));
  }
  bool any_mem = false;
  for (unsigned i = 0; i < st.count; ++i) any_mem |= st.nodes[i]->mem_size != 0;
  if (!any_mem) {
    // numa_default_auto_assign_ram(): equal shares aligned to 8 MiB, the remainder on the last node.
    uint64_t used = 0;
    for (unsigned i = 0; i + 1 < st.count; ++i) {
      st.nodes[i]->mem_size = (p.ram_size / st.count) & ~((uint64_t{1} << 23) - 1);
      used += st.nodes[i]->mem_size;
    }
    st.nodes[st.count - 1]->mem_size = p.ram_size - used;
    p.warnings.push_back("warning: Default splitting of RAM between nodes is deprecated, Use '-numa node,memdev' to "
                         "explicitly define RAM allocation per node");
  }
  uint64_t total = 0;
  for (unsigned i = 0; i < st.count; ++i) total += st.nodes[i]->mem_size;
  if (total != p.ram_size) {
    return fail(Errno::Inval, fmt::format("total memory for NUMA nodes (0x{:x}) should equal RAM size (0x{:x})", total,
                                          p.ram_size));
  }
  // Default CPU placement (x86_get_default_cpu_node_id / virt): socket index modulo the node count.
  std::vector<bool> placed(p.nr_cpus, false);
  for (unsigned i = 0; i < st.count; ++i) {
    for (unsigned c : st.nodes[i]->cpus) {
      if (c < placed.size()) placed[c] = true;
    }
  }
  for (unsigned c = 0; c < p.nr_cpus; ++c) {
    if (!placed[c]) st.nodes[(c / cpu.threads_per_socket) % st.count]->cpus.push_back(c);
  }
  for (unsigned i = 0; i < st.count; ++i) {
    NumaNode& n = *st.nodes[i];
    n.cpus.erase(std::remove_if(n.cpus.begin(), n.cpus.end(), [&](unsigned c) { return c >= p.nr_cpus; }), n.cpus.end());
    std::sort(n.cpus.begin(), n.cpus.end());
    p.numa_nodes.push_back(n);
  }
  for (const NumaNode& n : p.numa_nodes) {
    if (n.memdev.empty()) continue;
    for (MemoryBackend& b : p.backends) {
      if (b.id == n.memdev) b.in_use = true;
    }
  }
  return {};
}

// ---- pc / q35 ----

constexpr uint64_t kAmdHtStart = 0xfd00000000ULL;
constexpr uint64_t kAmdAbove1TbStart = 0x10000000000ULL;  // AMD_HT_END + 1
constexpr uint64_t kAcpiMaxRamSlots = 256;

// pc_get_device_memory_range() and pc_pci_hole64_start() for a given above-4G start, with QEMU's
// unsigned wrap-around.
struct PcRanges {
  uint64_t devmem_base = 0;
  uint64_t devmem_size = 0;
  uint64_t hole64_start = 0;
};

PcRanges pc_ranges(const PlatformDescription& p, uint64_t above_start) {
  PcRanges r;
  const uint64_t above_end = above_start + p.above_4g_mem_size;
  r.devmem_base = align_up_wrap(above_end, GiB);
  r.devmem_size = p.maxram_size - p.ram_size + GiB * p.ram_slots;  // enforce_aligned_dimm: 1 GiB per slot
  const uint64_t hole = p.ram_size < p.maxram_size ? r.devmem_base + r.devmem_size : above_end;
  r.hole64_start = align_up_wrap(hole, GiB);
  return r;
}

// SeaBIOS's changes to QEMU's etc/e820, each overriding what lies below it (add_e820()).
void seabios_set(E820Table& t, uint64_t start, uint64_t size, E820Type type) {
  e820_range_remove(t, PhysAddr(start), size, std::nullopt, nullptr);
  if (type != E820Type{0}) e820_range_add(t, PhysAddr(start), size, type, nullptr);
  e820_update_table(t);
}

// The Debian 6.1.0-56-amd64 image loaded at 16 MiB with nokaslr (trace a_baseline, identical in every trace).
struct ImageRange {
  uint64_t start, last;
  const char* name;
};
constexpr ImageRange kDebianKernelImage[] = {
    {0x01000000, 0x01e01d31, "Kernel code"},
    {0x02000000, 0x028eafff, "Kernel rodata"},
    {0x02a00000, 0x02c4897f, "Kernel data"},
    {0x03310000, 0x043fffff, "Kernel bss"},
};

// What that image frees late inside [_sdata, __bss_stop) (System.map symbols; trace a2 and a probe
// of every page): free_initmem() with the SMP alternatives ([__init_begin, __init_end) and
// alt_smp_*, 2824K + 36K) and mem_encrypt_free_decrypted_mem() ([__start_bss_decrypted_unused,
// __end_bss_decrypted), 2036K). The brk area after the bss stays reserved up to _brk_end.
constexpr PhysRange kDebianImageFreedLate[] = {
    {PhysAddr(0x03044000), PhysAddr(0x0330efff)},
    {PhysAddr(0x04203000), PhysAddr(0x043fffff)},
};
constexpr uint64_t kDebianBrkBytes = 17 * 4096;

// What the modelled x86-64 kernel (Debian 6.1 amd64, nokaslr) reserves and allocates for itself while
// booting (arch/x86/kernel/setup.c, arch/x86/mm/init*.c, kernel/printk/printk.c): derived from the
// image's /proc/iomem lines, the command line and the paging mode. Traces a2/a3 show the result.
BootReservations x86_boot_reservations(const PlatformDescription& p) {
  constexpr uint64_t kPage = 4096;
  BootReservations r;
  r.low_reserve = uint64_t{1} << 20;
  // [_text, __end_of_kernel_reserve) is "Kernel code" .. "Kernel bss"; mark_rodata_ro() frees the
  // page-aligned gaps after _etext and after __end_rodata (the image aligns rodata and data to 2 MiB).
  const FirmwareResource *code = nullptr, *rodata = nullptr, *data = nullptr, *bss = nullptr;
  for (const FirmwareResource& f : p.iomem) {
    if (f.origin != ResourceOrigin::KernelImage) continue;
    if (f.name == "Kernel code") code = &f;
    if (f.name == "Kernel rodata") rodata = &f;
    if (f.name == "Kernel data") data = &f;
    if (f.name == "Kernel bss") bss = &f;
  }
  auto page_end = [&](const FirmwareResource* f) { return PhysAddr(((f->range.last.value() + kPage) & ~(kPage - 1)) - 1); };
  if (code && rodata && data && bss) {
    r.kernel_image.push_back(PhysRange{code->range.start, page_end(code)});
    r.kernel_image.push_back(PhysRange{rodata->range.start, page_end(rodata)});
    // [_sdata, __bss_stop) without what the kernel frees late inside it, then the used brk.
    uint64_t from = data->range.start.value();
    for (const PhysRange& f : kDebianImageFreedLate) {
      if (f.start.value() < from || f.last.value() > page_end(bss).value()) continue;
      if (f.start.value() > from) r.kernel_image.push_back(PhysRange{PhysAddr(from), PhysAddr(f.start.value() - 1)});
      from = f.last.value() + 1;
    }
    if (from <= page_end(bss).value()) r.kernel_image.push_back(PhysRange{PhysAddr(from), page_end(bss)});
    r.kernel_image.push_back(PhysRange{PhysAddr(page_end(bss).value() + 1), PhysAddr(page_end(bss).value() + kDebianBrkBytes)});
  }
  r.early_page_table_pages = 3;
  // log_buf_len_update(): rounded up to a power of two, used only when larger than the static
  // 1 << CONFIG_LOG_BUF_SHIFT (Debian: 18).
  if (const auto v = p.cmdline.find("log_buf_len")) {
    uint64_t len = memparse(*v).value;
    if (len) len = std::bit_ceil(len);
    if (len > (uint64_t{1} << 18)) r.log_buf_len = len;
  }
  r.pgdat_size = 43 * kPage;
  r.sparse_boot_buffer = true;
  // VMALLOC_SIZE_TB (32 TiB, 4-level; 12800 TiB, 5-level) over PGDIR_SIZE (512 GiB; 256 TiB).
  r.vmalloc_pgtable_pages = p.arch->va_bits > 48 ? 50 : 64;
  return r;
}

void build_pc_iomem(PlatformDescription& p, const Args& a, const MachineOpts& m, const PlatformOptions& options,
                    uint64_t hole64_start) {
  using Mode = ResourceTreeBuilder::Mode;
  namespace fw = firmware;
  ResourceTreeBuilder t;
  const uint64_t rom = fw::IORESOURCE_MEM | fw::IORESOURCE_BUSY | fw::IORESOURCE_READONLY;
  const uint64_t mmio = fw::IORESOURCE_MEM | fw::IORESOURCE_BUSY;
  const uint64_t window = fw::IORESOURCE_MEM | fw::IORESOURCE_WINDOW;
  // probe_roms(): the linuxboot_dma.bin option ROM (1536 bytes) that -kernel loads, and the BIOS.
  if (a.kernel) t.add(0xc0000, 0xc05ff, "Video ROM", rom, fw::IoresDesc::None, ResourceOrigin::Rom, Mode::Insert);
  t.add(0xf0000, 0xfffff, "System ROM", rom, fw::IoresDesc::None, ResourceOrigin::Rom, Mode::Insert);
  // e820__reserve_resources() and its _late half.
  for (const E820Entry& e : p.e820_kernel) {
    if (e.size == 0) continue;
    t.add(e.addr.value(), e.last().value(), std::string(e820_type_resource_name(e.type)), e820_resource_flags(e),
          e820_resource_desc(e.type), ResourceOrigin::E820, Mode::Insert);
  }
  if (options.kernel_image_resources) {
    for (const ImageRange& k : kDebianKernelImage) {
      t.add(k.start, k.last, k.name, fw::IORESOURCE_SYSTEM_RAM | fw::IORESOURCE_BUSY, fw::IoresDesc::None,
            ResourceOrigin::KernelImage, Mode::Insert);
    }
  }
  // The host bridge's _CRS windows.
  const uint64_t L = p.below_4g_mem_size;
  t.add(0xa0000, 0xbffff, "PCI Bus 0000:00", window, fw::IoresDesc::None, ResourceOrigin::PciWindow, Mode::Insert);
  if (m.type == MachineType::Pc) {
    if (L < 0xfec00000) {
      t.add(L, 0xfebfffff, "PCI Bus 0000:00", window, fw::IoresDesc::None, ResourceOrigin::PciWindow, Mode::Insert);
    }
  } else {
    if (L < 0xb0000000) {
      t.add(L, 0xafffffff, "PCI Bus 0000:00", window, fw::IoresDesc::None, ResourceOrigin::PciWindow, Mode::Insert);
    }
    t.add(0xc0000000, 0xfebfffff, "PCI Bus 0000:00", window, fw::IoresDesc::None, ResourceOrigin::PciWindow,
          Mode::Insert);
  }
  const uint64_t hole64_size = m.type == MachineType::Pc ? 2 * GiB : 32 * GiB;
  t.add(hole64_start, hole64_start + hole64_size - 1, "PCI Bus 0000:00", window, fw::IoresDesc::None,
        ResourceOrigin::PciWindow, Mode::Insert);
  // The HPET's ACPI platform device registers its range before the HPET driver claims it.
  if (m.hpet) {
    t.add(0xfed00000, 0xfed003ff, "PNP0103:00", fw::IORESOURCE_MEM, fw::IoresDesc::None, ResourceOrigin::Device,
          Mode::Insert);
  }
  if (m.type == MachineType::Q35) {
    // The built-in AHCI controller's BAR, placed by SeaBIOS at the top of the 32-bit window.
    t.add(0xfebff000, 0xfebfffff, "0000:00:1f.2", fw::IORESOURCE_MEM, fw::IoresDesc::None, ResourceOrigin::Device,
          Mode::Request);
  }
  for (const PhysRange& r : e820_ram_buffers(p.e820_kernel)) {
    t.add_in_top_level_gaps(r.start.value(), r.last.value(), "RAM buffer", mmio, ResourceOrigin::RamBuffer);
  }
  if (m.type == MachineType::Q35) {
    t.add(0xb0000000, 0xbfffffff, "pnp 00:05", mmio, fw::IoresDesc::None, ResourceOrigin::Device, Mode::Request);
  }
  if (m.hpet) t.add(0xfed00000, 0xfed003ff, "HPET 0", mmio, fw::IoresDesc::None, ResourceOrigin::Chipset, Mode::Insert);
  t.add(0xfec00000, 0xfec003ff, "IOAPIC 0", mmio, fw::IoresDesc::None, ResourceOrigin::Chipset, Mode::Insert);
  t.add(0xfee00000, 0xfee00fff, "Local APIC", mmio, fw::IoresDesc::None, ResourceOrigin::Chipset, Mode::Insert);
  if (m.type == MachineType::Q35) {
    t.add(0xb0000000, 0xbfffffff, "PCI MMCONFIG 0000 [bus 00-ff]", mmio, fw::IoresDesc::None, ResourceOrigin::Chipset,
          Mode::Insert);
  }
  p.iomem = t.flatten();
}

// QEMU build_srat() for x86: RAM node by node (cut at 640K and at the below-4G limit), NVDIMMs, hotplug.
void build_pc_srat(PlatformDescription& p) {
  p.srat.clear();
  if (!p.acpi_enabled || p.numa_nodes.empty()) return;
  constexpr uint64_t kHole640kStart = 0xa0000, kHole640kEnd = 0x100000;
  const uint64_t below = p.below_4g_mem_size;
  uint64_t next_base = 0;
  for (const NumaNode& n : p.numa_nodes) {
    uint64_t mem_base = next_base;
    uint64_t mem_len = n.mem_size;
    next_base = mem_base + mem_len;
    if (mem_base <= kHole640kStart && next_base > kHole640kStart) {
      mem_len -= next_base - kHole640kStart;
      if (mem_len > 0) p.srat.push_back({PhysAddr(mem_base), mem_len, n.id, false, false});
      if (next_base <= kHole640kEnd) {
        next_base = kHole640kEnd;
        continue;
      }
      mem_base = kHole640kEnd;
      mem_len = next_base - kHole640kEnd;
    }
    if (mem_base <= below && next_base > below) {
      mem_len -= next_base - below;
      if (mem_len > 0) p.srat.push_back({PhysAddr(mem_base), mem_len, n.id, false, false});
      mem_base = p.above_4g_mem_start.value();
      mem_len = next_base - below;
      next_base = mem_base + mem_len;
    }
    if (mem_len > 0) p.srat.push_back({PhysAddr(mem_base), mem_len, n.id, false, false});
  }
  for (const MemoryDevice& d : p.memory_devices) {
    if (d.kind == MemoryDeviceKind::Nvdimm) p.srat.push_back({d.addr, d.size, d.node, false, true});
  }
  if (p.device_memory.present()) {
    p.srat.push_back({p.device_memory.base, p.device_memory.size, unsigned(p.numa_nodes.size() - 1), true, false});
  }
}

Result<void> layout_pc(PlatformDescription& p, const Args& a, const MachineOpts& m, const CpuOpts& cpu,
                       const PlatformOptions& options) {
  p.arch = options.arch && options.arch->family == ArchFamily::X86_64 ? options.arch : &kX86_64;
  p.phys_bits = cpu.phys_bits;
  p.cpu_has_pse = cpu.pse;
  // RAM split (pc_init1 / pc_q35_init).
  uint64_t lowmem;
  if (m.type == MachineType::Pc) {
    const uint64_t max_below = m.max_ram_below_4g ? m.max_ram_below_4g : 0xe0000000;
    lowmem = max_below;
    if (p.ram_size >= max_below) {
      if (lowmem > 0xc0000000) lowmem = 0xc0000000;  // gigabyte_align
      if (lowmem & (GiB - 1)) {
        p.warnings.push_back(fmt::format("warning: Large machine and max_ram_below_4g ({}) not a multiple of 1G; "
                                         "possible bad performance.",
                                         max_below));
      }
    }
  } else {
    lowmem = p.ram_size >= 0xb0000000 ? 0x80000000 : 0xb0000000;
    const uint64_t max_below = m.max_ram_below_4g ? m.max_ram_below_4g : 4 * GiB;
    if (lowmem > max_below) lowmem = max_below;
  }
  if (p.ram_size >= lowmem) {
    p.above_4g_mem_size = p.ram_size - lowmem;
    p.below_4g_mem_size = lowmem;
  } else {
    p.above_4g_mem_size = 0;
    p.below_4g_mem_size = p.ram_size;
  }

  // pc_memory_init(): the AMD HyperTransport hole, phys-bits, then the device-memory checks.
  const uint64_t hole64_size = m.type == MachineType::Pc ? 2 * GiB : 32 * GiB;
  uint64_t above_start = 4 * GiB;
  auto max_used_gpa = [&](uint64_t start) {
    if (cpu.phys_bits <= 32) return (uint64_t{1} << cpu.phys_bits) - 1;
    return pc_ranges(p, start).hole64_start + hole64_size - 1;
  };
  const bool ht_entry = cpu.amd && cpu.phys_bits >= 40;
  if (cpu.amd && max_used_gpa(above_start) >= kAmdHtStart) above_start = kAmdAbove1TbStart;
  const uint64_t maxused = max_used_gpa(above_start);
  const uint64_t maxphys = cpu.phys_bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << cpu.phys_bits) - 1;
  if (maxphys < maxused) {
    return fail(Errno::Inval, fmt::format("Address space limit 0x{:x} < 0x{:x} phys-bits too low ({})", maxphys, maxused,
                                          cpu.phys_bits));
  }
  p.above_4g_mem_start = PhysAddr(above_start);
  const PcRanges ranges = pc_ranges(p, above_start);
  if (p.ram_size < p.maxram_size) {
    if (p.ram_slots > kAcpiMaxRamSlots) {
      return fail(Errno::Inval, fmt::format("unsupported amount of memory slots: {}", p.ram_slots));
    }
    if (p.maxram_size % 4096 != 0) {
      return fail(Errno::Inval, "maximum memory size must by aligned to multiple of 4096 bytes");
    }
    if (ranges.devmem_base + ranges.devmem_size < ranges.devmem_size) {
      return fail(Errno::Inval, fmt::format("unsupported amount of maximum memory: {:x}", p.maxram_size));
    }
    p.device_memory = DeviceMemoryRegion{PhysAddr(ranges.devmem_base), ranges.devmem_size};
    p.device_memory_capacity = p.maxram_size - p.ram_size;
  }

  // SeaBIOS's table zone below L: the ACPI blob rounded to 128 KiB, plus the NVDIMM DSM page, plus an
  // SMBIOS page once the type-17 entries outgrow the F-segment (seen for > 64 GiB; an inference).
  uint64_t reserved = 0x20000;
  if (m.nvdimm && p.ram_slots >= 1) reserved += 0x1000;
  if (p.ram_size > 64 * GiB) reserved += 0x1000;
  if (p.ram_size > 49 * GiB && p.ram_size <= 66 * GiB) {
    p.warnings.push_back("sparsemem: SeaBIOS table zone size inferred for this RAM size (spec §4.2)");
  }
  if (p.ram_slots > 64) {
    p.warnings.push_back("sparsemem: SeaBIOS table zone size not confirmed for this many slots (spec §4.2)");
  }
  p.firmware_reserved_size = reserved;
  const uint64_t L = p.below_4g_mem_size;
  if (L < reserved + 2 * MiB) {
    return fail(Errno::NotSupp, "sparsemem: too little RAM below 4 GiB for the modelled SeaBIOS layout");
  }

  // fw_cfg etc/e820 as QEMU fills it, then SeaBIOS's edits.
  E820Table t;
  if (ht_entry) t.push_back(E820Entry{PhysAddr(kAmdHtStart), kAmdAbove1TbStart - kAmdHtStart, E820Type::Reserved});
  t.push_back(E820Entry{PhysAddr(0), L, E820Type::Ram});
  if (p.above_4g_mem_size > 0) t.push_back(E820Entry{PhysAddr(above_start), p.above_4g_mem_size, E820Type::Ram});
  e820_update_table(t);
  seabios_set(t, 0xfffc0000, 0x40000, E820Type::Reserved);
  if (m.type == MachineType::Q35) {
    seabios_set(t, 0xb0000000, 0x10000000, E820Type::Reserved);  // MMCONFIG
    seabios_set(t, 0xfed1c000, 0x4000, E820Type::Reserved);      // ICH9 RCBA
  }
  seabios_set(t, 0xa0000, 0xf0000 - 0xa0000, E820Type{0});
  seabios_set(t, 0xf0000, 0x10000, E820Type::Reserved);
  seabios_set(t, 0x9fc00, 0x400, E820Type::Reserved);
  seabios_set(t, L - reserved, reserved, E820Type::Reserved);

  run_x86_e820_boot(p, std::move(t));
  build_pc_iomem(p, a, m, options, ranges.hole64_start);
  if (options.kernel_image_resources) p.boot_reservations = x86_boot_reservations(p);
  return {};
}

// ---- virt ----

constexpr uint64_t kVirtRamBase = GiB;

Result<void> layout_virt(PlatformDescription& p, const Args& a, const MachineOpts& m, const CpuOpts& cpu,
                         const PlatformOptions& options) {
  p.arch = options.arch && options.arch->family == ArchFamily::Arm64 ? options.arch : &kArm64_4K_48;
  // virt_set_memmap().
  if (p.ram_slots > kAcpiMaxRamSlots) {
    return fail(Errno::Inval, fmt::format("unsupported number of memory slots: {}", p.ram_slots));
  }
  const unsigned pa_bits = m.highmem ? cpu.phys_bits : 32;
  p.phys_bits = pa_bits;
  const uint64_t devmem_base = align_up_wrap(kVirtRamBase + p.ram_size, GiB);
  const uint64_t devmem_size = p.maxram_size - p.ram_size + p.ram_slots * GiB;
  const uint64_t memtop = devmem_base + align_up_wrap(devmem_size, GiB);
  const uint64_t pa_limit = uint64_t{1} << pa_bits;
  if (memtop > pa_limit) {
    // QEMU 7.2's format ends in "\n" as well; error_report() adds the line end itself.
    return fail(Errno::Inval, fmt::format("Addressing limited to {} bits, but memory exceeds it by {} bytes", pa_bits,
                                          memtop - pa_limit));
  }
  if (memtop < devmem_base) return fail(Errno::Inval, "maxmem/slots too huge");
  if (devmem_size > 0) {
    p.device_memory = DeviceMemoryRegion{PhysAddr(devmem_base), devmem_size};
    p.device_memory_capacity = p.maxram_size - p.ram_size;
  }
  // machvirt_init(): the ACPI GED (memory hotplug) exists only with firmware (UEFI) and ACPI.
  p.memory_hotplug_enabled = a.firmware && m.acpi;
  p.below_4g_mem_size = 0;
  p.above_4g_mem_size = p.ram_size;
  p.above_4g_mem_start = PhysAddr(kVirtRamBase);

  // RAM, node by node from 1 GiB (the DT memory nodes, or the SRAT under UEFI).
  p.memory_map.clear();
  uint64_t base = kVirtRamBase;
  if (p.numa_nodes.empty()) {
    p.memory_map.push_back(BootMemoryRegion{PhysRange{PhysAddr(base), PhysAddr(base + p.ram_size - 1)},
                                            BootMemoryKind::Ram, 0});
  } else {
    for (const NumaNode& n : p.numa_nodes) {
      if (n.mem_size == 0) continue;
      p.memory_map.push_back(
          BootMemoryRegion{PhysRange{PhysAddr(base), PhysAddr(base + n.mem_size - 1)}, BootMemoryKind::Ram, n.id});
      if (m.acpi) p.srat.push_back({PhysAddr(base), n.mem_size, n.id, false, false});
      base += n.mem_size;
    }
  }
  return {};
}

void finish_virt(PlatformDescription& p) {
  if (!p.numa_nodes.empty()) {
    for (const MemoryDevice& d : p.memory_devices) {
      if (d.kind == MemoryDeviceKind::Nvdimm) p.srat.push_back({d.addr, d.size, d.node, false, true});
    }
    if (p.device_memory.present() && !p.srat.empty()) {
      p.srat.push_back({p.device_memory.base, p.device_memory.size, unsigned(p.numa_nodes.size() - 1), true, false});
    }
  }
  if (p.cmdline.mem_limit) apply_arm64_mem_limit(p.memory_map, p.cmdline.mem_limit->value());
  // request_standard_resources(): one resource per memblock region.
  ResourceTreeBuilder t;
  for (const BootMemoryRegion& r : p.memory_map) {
    if (r.kind == BootMemoryKind::Ram) {
      t.add(r.range.start.value(), r.range.last.value(), "System RAM",
            firmware::IORESOURCE_SYSTEM_RAM | firmware::IORESOURCE_BUSY, firmware::IoresDesc::None,
            ResourceOrigin::MemoryMap, ResourceTreeBuilder::Mode::Insert);
    }
  }
  p.iomem = t.flatten();
}

}  // namespace

Result<PlatformDescription> platform_from_qemu(std::span<const std::string> argv,
                                               std::optional<std::string_view> kernel_cmdline,
                                               const PlatformOptions& options) {
  PlatformDescription p;
  SPM_TRY_ASSIGN(Args a, parse_argv(argv, p.warnings));
  if (a.kvm) return fail(Errno::NotSupp, "sparsemem: only TCG is modelled (KVM changes the layout)");
  SPM_TRY_ASSIGN(MachineOpts m, parse_machine(a, options, p.warnings));
  // A pc/q35 scenario replayed on an arm64 profile: the same memory options on QEMU's virt machine,
  // so the layout is what virt would make of them (RAM at 1 GiB, its device-memory window), with
  // an arm64 CPU (-cpu max) in place of an x86 one, booted through UEFI firmware: without it virt
  // has no ACPI GED, and the x86 scenario's DIMMs could not be plugged at all.
  if (m.type != MachineType::Virt && options.arch && options.arch->family == ArchFamily::Arm64) {
    p.warnings.push_back(fmt::format("sparsemem: -machine {} replayed as virt with -cpu max and UEFI for the {} profile",
                                     m.type == MachineType::Pc ? "pc" : "q35", options.arch->name));
    m.type = MachineType::Virt;
    m.qom_type = "virt-7.2-machine";
    m.max_ram_below_4g = 0;
    a.cpu = "max";
    a.firmware = true;
  }
  p.machine = m.type;
  p.nvdimm_enabled = m.nvdimm;
  p.acpi_enabled = m.acpi;
  if (m.type == MachineType::Virt && options.arch && options.arch->family != ArchFamily::Arm64) {
    return fail(Errno::NotSupp, "sparsemem: machine virt needs an arm64 profile");
  }
  if (m.type != MachineType::Virt && options.arch && options.arch->family != ArchFamily::X86_64) {
    return fail(Errno::NotSupp, "sparsemem: machines pc and q35 need an x86-64 profile");
  }
  if (!a.nodefaults) {
    p.warnings.push_back("sparsemem: default devices (VGA, NIC) are not modelled; -nodefaults is assumed");
  }

  // machine_set_mem().
  SPM_TRY_ASSIGN(MemoryOpts mem, parse_memory(a));
  const bool custom_ram_size = mem.size.has_value();
  uint64_t size = align_up_wrap(mem.size.value_or(128 * MiB), 8192);
  if (mem.maxmem) {
    if (*mem.maxmem < size) {
      return fail(Errno::Inval, fmt::format("invalid value of maxmem: maximum memory size (0x{:x}) must be at least "
                                            "the initial memory size (0x{:x})",
                                            *mem.maxmem, size));
    }
    if (mem.slots && *mem.slots != 0 && *mem.maxmem == size) {
      return fail(Errno::Inval, fmt::format("invalid value of maxmem: memory slots were specified but maximum memory "
                                            "size (0x{:x}) is equal to the initial memory size (0x{:x})",
                                            *mem.maxmem, size));
    }
  } else if (mem.slots) {
    return fail(Errno::Inval, "slots specified but no max-size");
  }
  p.ram_size = size;
  p.maxram_size = mem.maxmem.value_or(size);
  p.ram_slots = mem.slots.value_or(0);

  SPM_TRY_ASSIGN(CpuOpts cpu, parse_cpu(a, m.type, p.warnings));
  p.nr_cpus = cpu.cpus;

  // Memory backends (-object), created before the machine.
  for (const std::string& text : a.objects) {
    const std::string loc = fmt::format("-object {}: ", text);
    auto kv = qemu::split_opts(text, "qom-type");
    if (!kv) return fail(Errno::Inval, loc + kv.error().message);
    const std::string type = qemu::find_opt(*kv, "qom-type").value_or("");
    if (type.rfind("memory-backend-", 0) != 0) {
      if (type.empty()) return fail(Errno::Inval, loc + "Parameter 'qom-type' is missing");
      continue;  // rng, secrets, iothreads: no memory
    }
    auto b = parse_memory_backend(text);
    if (!b) return fail(b.error().code, b.error().code == Errno::Inval ? loc + b.error().message : b.error().message);
    auto added = add_memory_backend(p, std::move(*b));
    if (!added) return fail(Errno::Inval, loc + added.error().message);
  }

  NumaState numa;
  SPM_TRY(parse_numa(a, p, numa));

  // qemu_resolve_machine_memdev() / machine_run_board_init(): RAM from a named backend.
  if (m.memory_backend) {
    const MemoryBackend* b = p.find_backend(*m.memory_backend);
    if (!b) return fail(Errno::Inval, fmt::format("Memory backend '{}' not found", *m.memory_backend));
    if (!custom_ram_size) {
      p.ram_size = b->size;
      if (!mem.maxmem) p.maxram_size = p.ram_size;
    } else if (b->size != p.ram_size) {
      return fail(Errno::Inval, "Machine memory size does not match the size of the memory backend");
    }
    for (MemoryBackend& mb : p.backends) {
      if (mb.id == *m.memory_backend) mb.in_use = true;
    }
  }
  SPM_TRY(complete_numa(p, numa, cpu));

  p.cmdline = parse_kernel_cmdline(kernel_cmdline ? *kernel_cmdline : std::string_view(a.append.value_or("")));

  if (m.type == MachineType::Virt) {
    SPM_TRY(layout_virt(p, a, m, cpu, options));
  } else {
    p.memory_hotplug_enabled = m.acpi;
    SPM_TRY(layout_pc(p, a, m, cpu, options));
  }

  // Cold-plugged devices, realized in command-line order after the machine.
  for (const std::string& text : a.devices) {
    const std::string loc = fmt::format("-device {}: ", text);
    auto kv = qemu::split_opts(text, "driver");
    if (!kv) return fail(Errno::Inval, loc + kv.error().message);
    const std::string driver = qemu::find_opt(*kv, "driver").value_or("");
    if (driver != "pc-dimm" && driver != "nvdimm" && driver.rfind("virtio-mem", 0) != 0 &&
        driver.rfind("virtio-pmem", 0) != 0) {
      p.warnings.push_back(fmt::format("sparsemem: -device {} does not shape memory and is not modelled", driver));
      continue;
    }
    auto req = parse_memory_device(text);
    if (!req) {
      return fail(req.error().code, req.error().code == Errno::Inval ? loc + req.error().message : req.error().message);
    }
    auto d = plug_memory_device(p, *req, false);
    if (!d) return fail(Errno::Inval, loc + d.error().message);
  }

  if (m.type == MachineType::Virt) {
    finish_virt(p);
  } else {
    build_pc_srat(p);
    build_x86_memory_map(p);
  }
  return p;
}

}  // namespace sparsemem
