// run_scenario(): boots the scenario's platform, loads modules (step 000), runs every step's guest
// commands and host actions, snapshots the guest as guest/init does and checks invariants after each.
#include "sparsemem/run.h"

#include <cmath>

#include <fmt/core.h>

#include "sparsemem/check.h"
#include "scenario/host.h"
#include "scenario/pytext.h"
#include "scenario/simulation.h"

namespace sparsemem {
namespace sim {

Simulation::Simulation(const Scenario& sc, const RunOptions& opts, PlatformDescription p, std::unique_ptr<Machine> m)
    : scenario(sc), options(opts), platform(std::move(p)), machine(std::move(m)), acpi(platform), nd(platform) {
  GuestFsContext ctx;
  ctx.machine = machine.get();
  ctx.acpi = &acpi;
  ctx.cmdline = sc.kernel_cmdline();
  for (const NumaNode& n : platform.numa_nodes)
    if (!n.cpus.empty()) ctx.cpu_nodes.push_back(n.id);
  if (platform.numa_nodes.empty()) ctx.cpu_nodes.push_back(0);
  ctx.notifier_inject_loaded = [this] { return notifier_inject_loaded; };
  // An OSPM-initiated ejection (ACPI_OST_EC_OSPM_EJECT = 0x103): QEMU then removes the DIMM.
  ctx.acpi_eject = [this](unsigned slot) { return eject_slot(slot, 0x103); };
  fs.emplace(make_guest_fs(std::move(ctx)));
  dmesg_debug = sc.kernel_cmdline().find("dyndbg=") != std::string::npos;
}

namespace {

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t j = std::min(text.find('\n', i), text.size());
    out.emplace_back(text.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string timestamp(double t) {
  const auto us = static_cast<uint64_t>(std::llround(t * 1e6));
  return fmt::format("[{:5}.{:06}] ", us / 1000000, us % 1000000);
}

// The snapshot guest/init takes, built from the same helpers a step can call.
Snapshot take_snapshot(Simulation& s, bool boot) {
  Snapshot snap;
  const Machine& m = *s.machine;
  const std::vector<std::string> iomem = lines_of(m.iomem().render());
  snap.iomem = parse_iomem_lines(iomem);
  snap.iomem_raw = iomem;
  snap.memory_blocks = parse_memblocks_lines(lines_of(s.run_shell("memblocks", "snapshot").out));

  std::vector<std::string> global;
  auto first_line = [&](const std::string& path) {
    auto r = s.fs->read(path);
    if (!r) return std::string();
    const auto ls = lines_of(*r);
    return ls.empty() ? std::string() : ls.front();
  };
  for (const char* f : {"block_size_bytes", "auto_online_blocks"})
    global.push_back(fmt::format("{}={}", f, first_line(fmt::format("/sys/devices/system/memory/{}", f))));
  const std::string params = "/sys/module/memory_hotplug/parameters";
  if (auto names = s.fs->list(params))
    for (const std::string& n : *names) global.push_back(fmt::format("memory_hotplug.{}={}", n, first_line(params + "/" + n)));
  for (const char* f : {"possible", "online", "has_memory", "has_normal_memory"})
    global.push_back(fmt::format("nodes.{}={}", f, first_line(fmt::format("/sys/devices/system/node/{}", f))));
  snap.memory_global = parse_kv_lines(global);

  const std::string zoneinfo = render_zoneinfo(m);
  const std::vector<std::string> zlines = s.zoneinfo_full ? lines_of(zoneinfo) : filter_zoneinfo_lines(zoneinfo);
  snap.zones = parse_zoneinfo_lines(zlines);
  snap.zones_raw = zlines;
  snap.meminfo = parse_meminfo_lines(lines_of(render_meminfo(m)));
  if (!s.scenario.pfns.empty()) {
    std::vector<PfnRange> ranges;
    for (const PfnSpec& p : s.scenario.pfns) ranges.push_back(p.range);
    snap.kpageflags = parse_kpageflags_lines(lines_of(render_pfnflags(m, ranges)));
  }
  snap.acpi_memory_devices = parse_acpimem_lines(lines_of(s.run_shell("acpi_mem", "snapshot").out));
  snap.nd_dax = parse_nddax_lines(lines_of(s.run_shell("nd_dax_state", "snapshot").out));

  // dmesg -c: the lines logged since the last snapshot.
  std::vector<std::string> dmesg;
  if (boot)
    for (const std::string& l : s.boot_dmesg) dmesg.push_back(timestamp(0) + l);
  const std::vector<LogLine> log = m.log().lines();
  for (size_t i = s.log_cursor; i < log.size(); ++i) {
    if (log[i].level == LogLevel::Debug && !s.dmesg_debug) continue;
    dmesg.push_back(timestamp(s.uptime) + log[i].text);
  }
  s.log_cursor = log.size();
  snap.dmesg = std::move(dmesg);
  return snap;
}

// The checker's findings after a step: the machine's and the ACPI driver's.
std::vector<std::string> check_step(const Simulation& s) {
  InvariantReport report = s.machine->check();
  s.acpi.check_invariants(report);
  s.nd.check_invariants(*s.machine, report);
  if (s.test_hmm) s.test_hmm->check_invariants(report);
  std::vector<std::string> out;
  for (const Violation& v : report.violations()) out.push_back(v.id + ": " + v.detail);
  return out;
}

CommandRecord command_record(const std::string& cmd, const CmdOutcome& o, double t0, double t1) {
  CommandRecord c;
  c.cmd = cmd;
  c.rc = o.rc;
  c.t0 = std::round(t0 * 100) / 100;
  c.t1 = std::round(t1 * 100) / 100;
  c.out = o.out;
  c.err = o.err;
  return c;
}

// The chardev line every QEMU run of the oracle prints (its control socket waits for the guest).
constexpr std::string_view kQemuChardevInfo =
    "qemu-system-x86_64: -chardev socket,id=ctl,path=$RUNDIR/ctl.sock,server=on,wait=on: info: QEMU waiting for "
    "connection on: disconnected:unix:$RUNDIR/ctl.sock,server=on\n";

std::string where(const Scenario& sc, int line) { return fmt::format("{}:{}", sc.file, line); }

}  // namespace
}  // namespace sim

struct ScenarioSession::Impl {
  Scenario sc;       // the steps run so far; the Simulation refers to it, so it never moves
  RunOptions opts;
  RunResult result;
  std::unique_ptr<sim::Simulation> s;  // null when QEMU refused the command line

  void note_unsupported(const std::string& text, const std::string& at, const std::string& why) {
    result.unsupported.push_back(fmt::format("unsupported command '{}' at {}: {}", text, at, why));
  }

  void finish_step(TraceStep& step, bool boot) {
    using namespace sim;
    step.snapshot = take_snapshot(*s, boot);
    const std::vector<std::string> v = check_step(*s);
    OrderedJson checker = OrderedJson::array();
    for (const std::string& x : v) {
      checker.push_back(x);
      result.violations.push_back(fmt::format("step {}: {}", step.index, x));
    }
    step.snapshot.extra[std::string(kCheckerTraceKey)] = checker;
    step.t_end = std::round(s->uptime * 100) / 100;
    step.guest_uptime_end = std::round(s->uptime * 100) / 100;
    RunStepSummary sum;
    sum.index = step.index;
    sum.name = step.name;
    sum.type = step.type;
    sum.commands = step.commands.size();
    for (const CommandRecord& c : step.commands) sum.failed_commands += c.rc.value_or(0) != 0;
    sum.host_actions = step.host_actions ? step.host_actions->size() : 0;
    sum.violations = v.size();
    result.steps.push_back(sum);
  }

  void run_command(TraceStep& step, const std::string& cmd, const std::string& at) {
    const double t0 = s->uptime;
    const sim::CmdOutcome o = s->run_shell(cmd, at);
    if (o.unsupported) note_unsupported(cmd, at, *o.unsupported);
    step.commands.push_back(sim::command_record(cmd, o, t0, s->uptime));
  }

  // QEMU refuses the command line: the oracle records the failed start, not an error of its own.
  void record_refused_start(const Error& e) {
    Trace& t = result.trace;
    const std::string out = std::string(sim::kQemuChardevInfo) + "qemu-system-x86_64: " + e.message + "\n";
    t.errors.push_back(DriverError{"qmp-connect", std::nullopt, std::nullopt,
                                   "ConnectionRefusedError(111, 'Connection refused')", OrderedJson::object()});
    t.errors.push_back(DriverError{"qemu-start", 1, out, std::nullopt, OrderedJson::object()});
    t.qemu_exit = 1;
    t.qemu_output = out;
    t.console_alerts = std::vector<std::string>{};
    t.console_tail = std::vector<std::string>{};
    t.completed = false;
  }

  // Boot log, cold-plugged DIMMs, then step 000: configuration, module loading, the first snapshot.
  void boot_step() {
    using namespace sim;
    Trace& t = result.trace;
    t.qemu_greeting = OrderedJson{{"QMP", OrderedJson{{"version", OrderedJson{{"qemu", OrderedJson{{"micro", 22}, {"minor", 2}, {"major", 7}}},
                                                                         {"package", "sparsemem"}}},
                                                      {"capabilities", OrderedJson::array({"oob"})}}}};
    t.guest_kernel = opts.kernel_release;
    t.guest_cmdline = sc.kernel_cmdline();
    t.boot_to_init_s = 0.0;

    // The layout messages, the machine's boot lines with the first zonelist build before the
    // memory block size line (build_all_zonelists() runs before memory_dev_init()).
    {
      std::vector<std::string> boot = boot_prefix_messages(sc, s->platform, *s->machine, opts.kernel_release);
      std::vector<std::string> zl = s->zonelists.build(*s->machine);
      bool placed = false;
      for (const LogLine& l : s->machine->log().lines()) {
        if (!placed && l.text.starts_with("x86/mm: Memory block size")) {
          boot.insert(boot.end(), zl.begin(), zl.end());
          placed = true;
        }
        if (l.level != LogLevel::Debug || s->dmesg_debug) boot.push_back(l.text);
      }
      if (!placed) boot.insert(boot.end(), zl.begin(), zl.end());
      s->boot_dmesg = std::move(boot);
      s->log_cursor = s->machine->log().size();
    }
    s->zonelists.attach(*s->machine);
    // acpi_memhotplug at boot: every cold-plugged DIMM's PNP0C80 device is present and added.
    (void)s->acpi.add_cold_plugged(*s->machine, s->platform);

    TraceStep step;
    step.index = 0;
    step.type = StepKind::Guest;
    step.name = "boot";
    step.t_start = 0;
    std::optional<std::string> settle;
    for (const std::string& c : sc.config) {
      const std::string_view line = pytext::strip(c);
      if (line == "SNAP_ZONEINFO_FULL=1") {
        s->zoneinfo_full = true;
      } else if (line.starts_with("SETTLE_CMD=")) {
        auto words = pytext::shlex_split(line.substr(11));
        if (words && words->size() == 1) settle = words->front();
        else note_unsupported(std::string(line), sc.file + " (config:)", "SETTLE_CMD= must be one shell word");
      } else {
        note_unsupported(std::string(line), sc.file + " (config:)", "config lines other than SNAP_ZONEINFO_FULL= and SETTLE_CMD=");
      }
    }
    const std::string modules_at = sc.modules ? sc.file + " (modules:)" : sc.file + " (default modules)";
    for (const std::string& mod : sc.effective_modules()) run_command(step, "modprobe " + mod, modules_at);
    if (settle) run_command(step, *settle, sc.file + " (SETTLE_CMD)");
    finish_step(step, true);
    t.steps.push_back(std::move(step));
  }
};

Result<std::unique_ptr<ScenarioSession>> ScenarioSession::start(Scenario sc, RunOptions opts) {
  using namespace sim;
  std::unique_ptr<ScenarioSession> session(new ScenarioSession());
  Impl& im = *session->m_impl;
  std::vector<ScenarioStep> steps = std::move(sc.steps);
  sc.steps.clear();
  im.sc = std::move(sc);
  im.opts = std::move(opts);
  Trace& t = im.result.trace;
  t.scenario = im.sc.name;
  t.scenario_file = "scenarios/" + im.sc.name + ".scn";
  t.description = im.sc.description;
  t.scenario_source = im.sc.source;
  t.kernel = im.opts.kernel_release;
  t.qemu_version = fmt::format("sparsemem platform model (QEMU 7.2 machines), behaviour {}", im.opts.behaviour.name);
  if (const std::string k = kconfig_text(im.opts.kernel); !k.empty()) t.qemu_version += ", kconfig " + k;
  t.qemu_cmdline = im.sc.oracle_qemu_cmdline(im.opts.kernel_release);
  t.timing = OrderedJson{{"total_s", 0.0}, {"qemu_s", 0.0}};

  PlatformOptions popts;
  popts.arch = im.opts.arch;
  auto platform = platform_from_qemu(im.sc.oracle_qemu_cmdline(im.opts.kernel_release), im.sc.kernel_cmdline(), popts);
  if (!platform) {
    if (platform.error().code != Errno::Inval) return tl::unexpected(platform.error());
    im.record_refused_start(platform.error());
    return session;
  }
  auto config = Machine::config_from_platform(*platform, im.opts.behaviour);
  if (!config) return fail(config.error().code, "the model cannot boot this platform: " + config.error().message);
  config->kernel = im.opts.kernel;
  auto booted = Machine::boot(std::move(*config));
  if (!booted) return fail(booted.error().code, "the model cannot boot this platform: " + booted.error().message);
  im.s = std::make_unique<Simulation>(im.sc, im.opts, std::move(*platform), std::move(*booted));
  im.boot_step();
  for (ScenarioStep& st : steps) session->run_step(std::move(st));
  return session;
}

ScenarioSession::ScenarioSession() : m_impl(std::make_unique<Impl>()) {}
ScenarioSession::~ScenarioSession() = default;

bool ScenarioSession::booted() const { return m_impl->s != nullptr; }
const Machine* ScenarioSession::machine() const { return m_impl->s ? m_impl->s->machine.get() : nullptr; }
const Scenario& ScenarioSession::scenario() const { return m_impl->sc; }
const RunResult& ScenarioSession::result() const { return m_impl->result; }
void ScenarioSession::append_source(std::string_view text) { m_impl->sc.source += text; }

Result<std::vector<std::string>> ScenarioSession::list(std::string_view path) const {
  if (!m_impl->s) return fail(Errno::NoEnt, "the machine did not start");
  return m_impl->s->fs->list(path);
}

const TraceStep& ScenarioSession::run_step(ScenarioStep st) {
  using namespace sim;
  Impl& im = *m_impl;
  SPM_CHECK(im.s != nullptr, "run_step on a machine QEMU refused to start");
  im.sc.steps.push_back(std::move(st));
  const ScenarioStep& step_in = im.sc.steps.back();
  Simulation& s = *im.s;
  TraceStep step;
  step.index = static_cast<int64_t>(im.sc.steps.size());
  step.type = step_in.kind;
  step.name = step_in.name;
  step.t_start = std::round(s.uptime * 100) / 100;
  step.guest_uptime_start = step.t_start;
  if (step_in.kind == StepKind::Host) {
    std::vector<HostActionRecord> actions;
    std::vector<std::pair<OrderedJson, bool>> seen;
    for (const HostAction& a : step_in.actions) {
      HostActionOutcome o = run_host_action(s, a, seen);
      if (o.unsupported) im.note_unsupported(a.text, where(im.sc, a.line), *o.unsupported);
      actions.push_back(std::move(o.record));
    }
    step.host_actions = std::move(actions);
  }
  for (const StepLine& c : step_in.commands) im.run_command(step, c.text, where(im.sc, c.line));
  im.finish_step(step, false);
  im.result.trace.steps.push_back(std::move(step));
  return im.result.trace.steps.back();
}

RunResult ScenarioSession::finish() {
  using namespace sim;
  Impl& im = *m_impl;
  if (!im.s) return std::move(im.result);
  Simulation& s = *im.s;
  Trace& t = im.result.trace;
  t.scenario_source = im.sc.source;
  t.completed = im.result.unsupported.empty();
  im.result.notes = s.notes;
  t.final_memory_devices = query_memory_devices(s.platform);
  // trailing_qmp_events stays absent: the guest powers off after its last step, QEMU exits and the
  // driver's final drain meets a closed socket, so the oracle never records it.
  t.qemu_exit = 0;
  t.qemu_output = std::string(kQemuChardevInfo);
  // A kernel WARN prints a "WARNING:" line on the console; the diff compares only the markers.
  std::vector<std::string> alerts;
  for (size_t i = 0; i < s.machine->log().warn_count(); ++i)
    alerts.push_back(timestamp(s.uptime) + "WARNING: CPU: 0 PID: 1 (sparsemem model WARN)");
  t.console_alerts = alerts;
  if (!t.completed) t.console_tail = std::vector<std::string>{};
  t.timing = OrderedJson{{"total_s", std::round(s.uptime * 100) / 100}, {"qemu_s", std::round(s.uptime * 100) / 100}};
  return std::move(im.result);
}

namespace {

struct KconfigOption {
  std::string_view name;
  bool KernelConfig::*field;
  bool tristate;
};
constexpr KconfigOption kKconfigOptions[] = {
    {"CONFIG_DEVICE_PRIVATE", &KernelConfig::device_private, false},
    {"CONFIG_TEST_HMM", &KernelConfig::test_hmm, true},
    {"CONFIG_PCI_P2PDMA", &KernelConfig::pci_p2pdma, false},
    {"CONFIG_FS_DAX_LIMITED", &KernelConfig::fs_dax_limited, false},
    {"CONFIG_DEFERRED_STRUCT_PAGE_INIT", &KernelConfig::deferred_struct_page_init, false},
};

}  // namespace

Result<KernelConfig> parse_kconfig(std::string_view text, KernelConfig base) {
  KernelConfig c = base;
  size_t i = 0;
  while (i < text.size()) {
    const size_t end = text.find_first_of(", \t\n", i);
    const std::string_view word = text.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    i = end == std::string_view::npos ? text.size() : end + 1;
    if (word.empty()) continue;
    const size_t eq = word.find('=');
    if (eq == std::string_view::npos) return fail(Errno::Inval, fmt::format("kconfig: '{}' is not CONFIG_NAME=VALUE", word));
    const std::string_view name = word.substr(0, eq), value = word.substr(eq + 1);
    const KconfigOption* opt = nullptr;
    for (const KconfigOption& o : kKconfigOptions)
      if (o.name == name) opt = &o;
    if (!opt) {
      std::string known;
      for (const KconfigOption& o : kKconfigOptions) known += (known.empty() ? "" : ", ") + std::string(o.name);
      return fail(Errno::Inval, fmt::format("kconfig: unknown option {} (known: {})", name, known));
    }
    if (value == "y" || (value == "m" && opt->tristate)) c.*(opt->field) = true;
    else if (value == "n") c.*(opt->field) = false;
    else return fail(Errno::Inval, fmt::format("kconfig: {}={} (values: y, {}n)", name, value, opt->tristate ? "m, " : ""));
  }
  if (c.test_hmm && !c.device_private)
    return fail(Errno::Inval, "kconfig: CONFIG_TEST_HMM depends on CONFIG_DEVICE_PRIVATE");
  return c;
}

std::string kconfig_text(const KernelConfig& c) {
  std::string out;
  for (const KconfigOption& o : kKconfigOptions)
    if (c.*(o.field) != kDebianAmd64Config.*(o.field))
      out += fmt::format("{}{}={}", out.empty() ? "" : ",", o.name, c.*(o.field) ? "y" : "n");
  return out;
}

Result<RunResult> run_scenario(const Scenario& sc, const RunOptions& opts) {
  SPM_TRY_ASSIGN(std::unique_ptr<ScenarioSession> session, ScenarioSession::start(sc, opts));
  return session->finish();
}

}  // namespace sparsemem
