// `sparsemem shell [--scenario FILE] [--qemu ...] [--append ...]`: an interactive prompt on a booted
// machine. Each line runs as one scenario step (ScenarioSession); `save FILE` writes the session as a
// scenario file that replays to the same trace. Line editing, history and completion: GNU readline.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <readline/history.h>
#include <readline/readline.h>

#include "commands.h"
#include "machine_args.h"
#include "sparsemem/run.h"
#include "sparsemem/scenario.h"
#include "sparsemem/trace.h"

namespace sparsemem::cli {

namespace {

// Host lines, as a scenario's `host` step writes them; everything else is a guest shell line.
bool is_host_line(std::string_view line) {
  return line.starts_with("hmp ") || line.starts_with("qmp ") || line.starts_with("wait_event ");
}

constexpr std::string_view kHelp =
    "Each line runs as one scenario step on the machine, followed by the snapshot and the invariant checker.\n"
    "  <shell command>        a guest command: echo online > /sys/devices/system/memory/memory40/state, cat, ls,\n"
    "                         setstate, ndctl/daxctl (as far as modelled), ...\n"
    "  hmp <command>          a QEMU monitor command: hmp device_add pc-dimm,id=d1,memdev=m1\n"
    "  qmp <json>             a QMP command: qmp {\"execute\":\"query-memory-devices\"}\n"
    "  wait_event NAME [S]    wait for a QMP event\n"
    "  save FILE              write the session as a scenario file (it replays to the same trace)\n"
    "  help, exit             this text; leave (also Ctrl-D)\n"
    "Tab completes /sys and /proc paths.\n";

// The session readline's completion callback reads (readline's callbacks take no context).
ScenarioSession* g_session = nullptr;
std::vector<std::string> g_matches;

char* completion_generator(const char* /*text*/, int state) {
  if (static_cast<size_t>(state) >= g_matches.size()) return nullptr;
  return strdup(g_matches[static_cast<size_t>(state)].c_str());
}

// Completes an absolute path word against the guest's files; a directory gets a '/' and no space.
char** complete_path(const char* text, int /*start*/, int /*end*/) {
  rl_attempted_completion_over = 1;  // no filename completion from the host's files
  const std::string word(text);
  g_matches.clear();
  if (!g_session || word.empty() || word[0] != '/') return nullptr;
  const size_t slash = word.rfind('/');
  const std::string dir = word.substr(0, slash + 1), prefix = word.substr(slash + 1);
  auto names = g_session->list(dir);
  if (!names) return nullptr;
  for (const std::string& n : *names)
    if (n.starts_with(prefix)) g_matches.push_back(dir + n + (g_session->list(dir + n) ? "/" : ""));
  rl_completion_append_character = g_matches.size() == 1 && g_matches[0].ends_with('/') ? '\0' : ' ';
  return rl_completion_matches(text, completion_generator);
}

std::optional<std::string> read_line(bool interactive, const std::string& prompt) {
  if (interactive) {
    char* raw = readline(prompt.c_str());
    if (!raw) return std::nullopt;
    std::string line(raw);
    std::free(raw);
    if (!line.empty()) add_history(line.c_str());
    return line;
  }
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  return line;
}

void print_step(const TraceStep& step, const RunResult& so_far, size_t unsupported_before) {
  if (step.host_actions)
    for (const HostActionRecord& a : *step.host_actions) {
      if (a.response) std::cout << a.response->dump() << "\n";
      if (a.events)
        for (const OrderedJson& e : *a.events) std::cout << e.dump() << "\n";
      if (a.error) std::cerr << *a.error << "\n";
    }
  for (const CommandRecord& c : step.commands) {
    const std::string out = c.out.value_or(""), err = c.err.value_or("");
    std::cout << out << (out.empty() || out.ends_with('\n') ? "" : "\n") << std::flush;
    std::cerr << err << (err.empty() || err.ends_with('\n') ? "" : "\n");
    if (c.rc.value_or(0) != 0) std::cout << "[rc " << *c.rc << "]\n";
  }
  for (size_t i = unsupported_before; i < so_far.unsupported.size(); ++i)
    std::cerr << "sparsemem shell: " << so_far.unsupported[i] << "\n";
  const auto checker = step.snapshot.extra.find(std::string(kCheckerTraceKey));
  if (checker != step.snapshot.extra.end())
    for (const auto& v : *checker) std::cout << "checker: " << v.get<std::string>() << "\n";
}

}  // namespace

void register_shell(CLI::App& app) {
  struct Args {
    std::string scenario, qemu, append, trace, kconfig;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "shell", "An interactive prompt on a booted machine: each line runs as a scenario step (guest shell "
               "commands, hmp/qmp monitor commands), with history, completion of /sys and /proc paths, and "
               "`save FILE` to write the session as a scenario that replays to the same trace");
  auto* from = sub->add_option("--scenario", args->scenario, "start from this scenario: its machine, then its steps");
  sub->add_option("--qemu", args->qemu, "QEMU memory options (default: the oracle's pc machine)")->excludes(from);
  sub->add_option("--append", args->append, "kernel command-line additions")->excludes(from);
  sub->add_option("--trace", args->trace, "on exit, write the session's trace (JSON, the oracle's layout) here");
  sub->add_option("--kconfig", args->kconfig, kKconfigHelp);
  sub->callback([args] {
    RunOptions opts;
    opts.kernel = kconfig_from_arg(args->kconfig, "shell");
    std::string text;
    std::string path = "shell.scn";
    if (!args->scenario.empty()) {
      std::ifstream in(args->scenario);
      std::stringstream ss;
      ss << in.rdbuf();
      if (!in) {
        std::cerr << "sparsemem shell: cannot read " << args->scenario << "\n";
        throw CLI::RuntimeError(kExitBadInput);
      }
      text = ss.str();
      if (!text.empty() && !text.ends_with('\n')) text += '\n';
      path = args->scenario;
    } else {
      text = "desc: a sparsemem shell session\n";
      if (!args->qemu.empty()) text += "qemu: " + args->qemu + "\n";
      if (!args->append.empty()) text += "append: " + args->append + "\n";
    }
    auto sc = parse_scenario(text, path);
    if (!sc) {
      std::cerr << "sparsemem shell: " << sc.error().message << "\n";
      throw CLI::RuntimeError(kExitBadInput);
    }
    auto started = ScenarioSession::start(*sc, opts);
    if (!started) {
      std::cerr << "sparsemem shell: " << started.error().message << "\n";
      throw CLI::RuntimeError(kExitBadInput);
    }
    std::unique_ptr<ScenarioSession> session = std::move(*started);
    if (!session->booted()) {
      std::cerr << "sparsemem shell: QEMU refuses this machine: " << session->result().trace.qemu_output.value_or("")
                << "\n";
      throw CLI::RuntimeError(kExitBadInput);
    }
    const bool interactive = isatty(STDIN_FILENO);
    if (interactive) {
      g_session = session.get();
      rl_attempted_completion_function = complete_path;
      rl_completer_word_break_characters = const_cast<char*>(" \t\n\"'><=;|&");
    }
    std::cout << "sparsemem shell: booted (" << session->result().trace.steps.size() << " step(s) so far); `help` lists "
                 "the commands\n";
    unsigned n = 0;
    while (true) {
      const std::string prompt = "sparsemem:" + std::to_string(session->scenario().steps.size() + 1) + "# ";
      const std::optional<std::string> raw = read_line(interactive, prompt);
      if (!raw) break;
      std::string line(*raw);
      line.erase(0, line.find_first_not_of(" \t"));
      line.erase(line.find_last_not_of(" \t\r") + 1);
      if (line.empty() || line[0] == '#') continue;
      if (line == "exit" || line == "quit") break;
      if (line == "help") {
        std::cout << kHelp;
        continue;
      }
      if (line.starts_with("save ") || line == "save") {
        const std::string file = line.size() > 5 ? line.substr(5) : "";
        std::ofstream out(file);
        out << text;
        if (file.empty() || !out.flush()) {
          std::cerr << "sparsemem shell: cannot write '" << file << "'\n";
          continue;
        }
        std::cout << "saved " << session->scenario().steps.size() << " step(s) to " << file << "\n";
        continue;
      }
      // The step as a scenario file would hold it; parsed with the file so far, so that a line the
      // scenario format refuses changes nothing and the saved file reads back exactly.
      std::string step_text = is_host_line(line) ? "host shell_" : "step shell_";
      step_text += std::to_string(++n) + "\n    " + line + "\n";
      auto parsed = parse_scenario(text + step_text, path);
      if (!parsed || parsed->steps.size() != session->scenario().steps.size() + 1) {
        std::cerr << "sparsemem shell: " << (parsed ? "not one step" : parsed.error().message) << "\n";
        --n;
        continue;
      }
      text += step_text;
      session->append_source(step_text);
      const size_t unsupported_before = session->result().unsupported.size();
      const TraceStep& step = session->run_step(parsed->steps.back());
      print_step(step, session->result(), unsupported_before);
    }
    g_session = nullptr;
    if (!args->trace.empty()) {
      if (auto w = save_trace(session->finish().trace, args->trace); !w) {
        std::cerr << "sparsemem shell: " << w.error().message << "\n";
        throw CLI::RuntimeError(kExitBadInput);
      }
    }
  });
}

}  // namespace sparsemem::cli
