// The guest shell subset: busybox ash's parsing of the lines scenarios use (quotes, ;, &&, ||, !,
// > >> 2> 2>&1 redirections), its builtins and applets over the VirtualFs, the oracle's guest helpers
// (setstate, memblocks, blocks_in, pfnflags, waitfor, acpi_eject_block, acpi_mem, nd_dax_state),
// kmod, and ndctl/daxctl without NVDIMMs. Everything else is reported as unsupported, never skipped.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <regex>

#include <fmt/core.h>

#include "scenario/ndtool.h"
#include "scenario/pytext.h"
#include "scenario/simulation.h"

namespace sparsemem::sim {
namespace {

// The modules the oracle's initramfs carries (guest/lib/build_initramfs.sh) and their dependencies.
constexpr std::string_view kKnownModules[] = {
    "libnvdimm", "nd_btt", "nd_pmem", "nfit", "nd_e820", "dax_pmem", "device_dax", "kmem", "dax_hmem",
    "dax", "memory_notifier_error_inject", "notifier_error_inject", "hwpoison_inject"};
// Modules whose devices only exist with NVDIMMs or e820 persistent memory.
constexpr std::string_view kNvdimmModules[] = {"libnvdimm", "nd_btt", "nd_pmem", "nfit", "nd_e820",
                                               "dax_pmem", "device_dax", "kmem", "dax_hmem", "dax"};

bool contains(std::span<const std::string_view> list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

// busybox's errno text for the open of a redirection target (ash: "can't create %s: %s" with
// "nonexistent directory" for ENOENT).
std::string create_error_text(Errno e) {
  return e == Errno::NoEnt ? "nonexistent directory" : std::string(errno_text(e));
}

std::string strip_final_newline(std::string s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::string join(const std::vector<std::string>& v, size_t from, std::string_view sep) {
  std::string out;
  for (size_t i = from; i < v.size(); ++i) {
    if (i > from) out += sep;
    out += v[i];
  }
  return out;
}

std::string basename_of(std::string_view p) {
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  const size_t i = p.rfind('/');
  return std::string(i == std::string_view::npos ? p : p.substr(i + 1));
}

// Shell arithmetic numbers and strtoul(s, &e, 0): 0x.. hex, leading 0 octal, else decimal.
std::optional<uint64_t> parse_c_number(std::string_view s, std::string_view* rest = nullptr) {
  int base = 10;
  size_t i = 0;
  if (s.size() > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
  } else if (s.size() > 1 && s[0] == '0') {
    base = 8;
    i = 1;
  }
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data() + i, s.data() + s.size(), v, base);
  if (ec != std::errc()) {
    if (base == 8 && i == 1) {  // a lone "0"
      if (rest) *rest = s.substr(1);
      return 0;
    }
    return std::nullopt;
  }
  if (rest)
    *rest = s.substr(static_cast<size_t>(end - s.data()));
  else if (end != s.data() + s.size())
    return std::nullopt;
  return v;
}

// ---- parsing ------------------------------------------------------------------------------------

struct Redirect {
  int fd = 1;            // 1 or 2
  bool append = false;
  bool to_stdout = false;  // 2>&1
  bool to_stderr = false;  // >&2
  std::string path;
};

struct SimpleCommand {
  bool negate = false;
  std::vector<std::string> argv;
  std::vector<Redirect> redirects;
};

enum class Connector { Seq, And, Or };

struct Pipeline {
  Connector before = Connector::Seq;  // how this command is chained to the previous one
  SimpleCommand cmd;
};

struct ParseResult {
  std::vector<Pipeline> commands;
  std::optional<std::string> unsupported;
};

ParseResult parse_line(std::string_view line) {
  ParseResult res;
  auto unsupported = [&](std::string why) {
    res.unsupported = std::move(why);
    return res;
  };
  Pipeline cur;
  std::string word;
  bool in_word = false;       // a word has started (possibly empty, from quotes)
  bool word_quoted = false;   // part of it was quoted
  std::optional<Redirect> pending;  // a redirection waiting for its target word
  Connector next = Connector::Seq;

  auto end_word = [&]() -> bool {
    if (!in_word) return true;
    if (pending) {
      pending->path = word;
      cur.cmd.redirects.push_back(*pending);
      pending.reset();
    } else if (cur.cmd.argv.empty() && !word_quoted && word == "!" && !cur.cmd.negate) {
      cur.cmd.negate = true;
    } else {
      cur.cmd.argv.push_back(word);
    }
    word.clear();
    in_word = word_quoted = false;
    return true;
  };
  auto end_command = [&](Connector following) -> bool {
    end_word();
    if (pending) return false;
    if (cur.cmd.argv.empty() && cur.cmd.redirects.empty() && !cur.cmd.negate) return following == Connector::Seq;
    cur.before = next;
    res.commands.push_back(std::move(cur));
    cur = Pipeline{};
    next = following;
    return true;
  };

  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t') {
      end_word();
      continue;
    }
    if (c == '#' && !in_word) break;
    if (c == '\'') {
      const size_t j = line.find('\'', i + 1);
      if (j == std::string_view::npos) return unsupported("unterminated quote");
      word.append(line.substr(i + 1, j - i - 1));
      in_word = word_quoted = true;
      i = j;
      continue;
    }
    if (c == '"') {
      size_t j = i + 1;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '$' || line[j] == '`') return unsupported("expansion inside double quotes");
        if (line[j] == '\\' && j + 1 < line.size() && std::string_view("\"\\$`").find(line[j + 1]) != std::string_view::npos)
          ++j;
        word += line[j];
      }
      if (j >= line.size()) return unsupported("unterminated quote");
      in_word = word_quoted = true;
      i = j;
      continue;
    }
    if (c == '\\') {
      if (i + 1 < line.size()) word += line[++i];
      in_word = word_quoted = true;
      continue;
    }
    if (c == ';') {
      if (!end_command(Connector::Seq)) return unsupported("redirection without a target");
      continue;
    }
    if (c == '&') {
      if (i + 1 < line.size() && line[i + 1] == '&') {
        ++i;
        if (!end_command(Connector::And)) return unsupported("redirection without a target");
        continue;
      }
      return unsupported("background jobs (&)");
    }
    if (c == '|') {
      if (i + 1 < line.size() && line[i + 1] == '|') {
        ++i;
        if (!end_command(Connector::Or)) return unsupported("redirection without a target");
        continue;
      }
      return unsupported("pipes (|)");
    }
    if (c == '>') {
      Redirect r;
      if (in_word && !word_quoted && (word == "1" || word == "2")) {
        r.fd = word[0] - '0';
        word.clear();
        in_word = false;
      } else {
        end_word();
      }
      if (pending) return unsupported("redirection without a target");
      if (i + 1 < line.size() && line[i + 1] == '>') {
        r.append = true;
        ++i;
      }
      if (i + 1 < line.size() && line[i + 1] == '&') {
        i += 2;
        if (i < line.size() && line[i] == '1' && r.fd == 2) {
          r.to_stdout = true;
        } else if (i < line.size() && line[i] == '2' && r.fd == 1) {
          r.to_stderr = true;
        } else {
          return unsupported("file descriptor duplication other than 2>&1 and >&2");
        }
        cur.cmd.redirects.push_back(r);
        continue;
      }
      pending = r;
      continue;
    }
    if (std::string_view("<$`(){}*?").find(c) != std::string_view::npos)
      return unsupported(fmt::format("'{}' (input redirection, expansion, subshells and globs)", c));
    if (c == '[' && (in_word || (i + 1 < line.size() && line[i + 1] != ' ')))
      return unsupported("glob patterns");
    if (!in_word && !pending && cur.cmd.argv.empty() && word.empty()) {
      // NAME=value before a command is an assignment.
      const size_t eq = line.find('=', i);
      const size_t sp = line.find_first_of(" \t;&|", i);
      if (eq != std::string_view::npos && eq < sp && eq > i) {
        const std::string_view name = line.substr(i, eq - i);
        if (std::all_of(name.begin(), name.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; }))
          return unsupported("variable assignments");
      }
    }
    word += c;
    in_word = true;
  }
  if (!end_command(Connector::Seq)) return unsupported("redirection without a target");
  if (next != Connector::Seq && res.commands.size() > 0 && !res.unsupported) {
    // "a &&" at the end of a line: ash reports a syntax error; no scenario writes one.
    return unsupported("a line ending in && or ||");
  }
  return res;
}

// printf's format: %s %d %i %u %x %c %%, escapes \n \t \\ \" \0NNN; arguments reused as printf(1) does.
std::string format_printf(const std::vector<std::string>& argv) {
  if (argv.size() < 2) return {};
  const std::string& fmtstr = argv[1];
  std::string out;
  size_t arg = 2;
  do {
    for (size_t i = 0; i < fmtstr.size(); ++i) {
      const char c = fmtstr[i];
      if (c == '\\' && i + 1 < fmtstr.size()) {
        const char e = fmtstr[++i];
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
        continue;
      }
      if (c == '%' && i + 1 < fmtstr.size()) {
        const char spec = fmtstr[++i];
        if (spec == '%') {
          out += '%';
          continue;
        }
        const std::string a = arg < argv.size() ? argv[arg++] : "";
        if (spec == 'd' || spec == 'i' || spec == 'u') {
          out += fmt::format("{}", static_cast<int64_t>(parse_c_number(a).value_or(0)));
        } else if (spec == 'x') {
          out += fmt::format("{:x}", parse_c_number(a).value_or(0));
        } else if (spec == 'c') {
          if (!a.empty()) out += a[0];
        } else {
          out += a;
        }
        continue;
      }
      out += c;
    }
  } while (arg < argv.size() && arg > 2);
  return out;
}

}  // namespace

// ---- execution -----------------------------------------------------------------------------------

namespace {

struct Io {
  std::string out, err;
};

class Shell {
 public:
  Shell(Simulation& sim, std::string_view where) : m_sim(sim), m_where(where) {}

  CmdOutcome run_line(std::string_view line) {
    CmdOutcome o;
    ParseResult p = parse_line(line);
    if (p.unsupported) {
      o.unsupported = *p.unsupported;
      return o;
    }
    int rc = 0;
    Io io;
    for (const Pipeline& c : p.commands) {
      if (c.before == Connector::And && rc != 0) continue;
      if (c.before == Connector::Or && rc == 0) continue;
      rc = run_simple(c.cmd, io);
      if (m_unsupported) break;
    }
    o.rc = rc;
    o.out = std::move(io.out);
    o.err = std::move(io.err);
    o.unsupported = m_unsupported;
    return o;
  }

 private:
  const VirtualFs& fs() const { return *m_sim.fs; }
  Machine& machine() { return *m_sim.machine; }

  int unsupported(std::string why) {
    if (!m_unsupported) m_unsupported = std::move(why);
    return 127;
  }

  // Applies the redirections around one command: opens the targets first (a failed open skips the
  // command with rc 1), runs it, then writes what it printed to each target in one write(2).
  int run_simple(const SimpleCommand& c, Io& io) {
    struct Target {
      std::optional<FsNode> node;  // nullopt: /dev/null
    };
    std::optional<Target> out_target, err_target;
    bool err_to_out = false, out_to_err = false;
    for (const Redirect& r : c.redirects) {
      if (r.to_stdout) {
        err_to_out = true;
        continue;
      }
      if (r.to_stderr) {
        out_to_err = true;
        continue;
      }
      Target t;
      if (r.path != "/dev/null") {
        if (!r.path.starts_with("/proc/") && !r.path.starts_with("/sys/"))
          return unsupported(fmt::format("redirection to {} (only /proc, /sys and /dev/null exist)", r.path));
        auto node = fs().open_for_write(r.path);
        if (!node) {
          if (node.error().code == Errno::NotSupp) return unsupported(node.error().message);
          io.err += fmt::format("sh: can't create {}: {}\n", r.path, create_error_text(node.error().code));
          return 1;
        }
        t.node = *node;
      }
      (r.fd == 1 ? out_target : err_target) = t;
    }
    Io local;
    int rc = c.argv.empty() ? 0 : run_argv(c.argv, local);
    if (m_unsupported) return rc;
    if (out_to_err) {
      local.err += local.out;
      local.out.clear();
    }
    if (err_to_out) {
      local.out += local.err;
      local.err.clear();
    }
    auto deliver = [&](std::optional<Target>& t, std::string& data, std::string& fallback) {
      if (!t) {
        fallback += data;
        return;
      }
      if (!t->node || data.empty()) return;
      if (auto w = t->node->write(data); !w) {
        if (w.error().code == Errno::NotSupp) {
          rc = unsupported(w.error().message);
          return;
        }
        // busybox builtins report as the shell; applets by their name.
        const std::string who = c.argv.empty() || c.argv[0] == "echo" || c.argv[0] == "printf" ? "sh" : c.argv[0];
        io.err += fmt::format("{}: write error: {}\n", who, errno_text(w.error().code));
        rc = 1;
      }
    };
    deliver(out_target, local.out, io.out);
    deliver(err_target, local.err, io.err);
    if (c.negate) rc = rc == 0 ? 1 : 0;
    return rc;
  }

  int run_argv(const std::vector<std::string>& argv, Io& io) {
    const std::string& cmd = argv[0];
    if (cmd == "echo") return cmd_echo(argv, io);
    if (cmd == "printf") {
      io.out += format_printf(argv);
      return 0;
    }
    if (cmd == "cat") return cmd_cat(argv, io);
    if (cmd == "ls") return cmd_ls(argv, io);
    if (cmd == "test" || cmd == "[") return cmd_test(argv, io);
    if (cmd == "true" || cmd == ":") return 0;
    if (cmd == "false") return 1;
    if (cmd == "sleep") return cmd_sleep(argv, io);
    if (cmd == "grep") return cmd_grep(argv, io);
    if (cmd == "readlink") return cmd_readlink(argv, io);
    if (cmd == "modprobe") return cmd_modprobe(argv, io);
    if (cmd == "rmmod") return cmd_rmmod(argv, io);
    if (cmd == "setstate") return cmd_setstate(argv, io);
    if (cmd == "memblocks") return cmd_memblocks(io);
    if (cmd == "blocks_in") return cmd_blocks_in(argv, io);
    if (cmd == "pfnflags") return cmd_pfnflags(argv, io);
    if (cmd == "waitfor") return cmd_waitfor(argv, io);
    if (cmd == "acpi_eject_block") return cmd_acpi_eject_block(argv, io);
    if (cmd == "acpi_mem") return cmd_acpi_mem(io);
    if (cmd == "nd_dax_state") return cmd_nd_dax_state(io);
    if (cmd == "ndctl" || cmd == "daxctl") return cmd_nvdimm_tool(argv, io);
    return unsupported(fmt::format("'{}' is not in the simulator's shell subset", cmd));
  }

  int cmd_echo(const std::vector<std::string>& argv, Io& io) {
    size_t i = 1;
    bool newline = true, escapes = false;
    for (; i < argv.size(); ++i) {
      const std::string& a = argv[i];
      if (a.size() < 2 || a[0] != '-' || a.find_first_not_of("neE", 1) != std::string::npos) break;
      for (size_t k = 1; k < a.size(); ++k) {
        if (a[k] == 'n') newline = false;
        if (a[k] == 'e') escapes = true;
        if (a[k] == 'E') escapes = false;
      }
    }
    std::string text = join(argv, i, " ");
    if (escapes) {
      std::vector<std::string> fake{"printf", text};
      std::string esc;
      for (size_t k = 0; k < text.size(); ++k) esc += text[k] == '%' ? std::string("%%") : std::string(1, text[k]);
      fake[1] = esc;
      text = format_printf(fake);
    }
    io.out += text;
    if (newline) io.out += '\n';
    return 0;
  }

  // open + read of one file as an applet sees it: the open's errors, then the read's.
  enum class ReadFailure { None, Open, Read };
  ReadFailure read_file(std::string_view path, std::string& data, Errno& code) { return read_file(fs(), path, data, code); }
  ReadFailure read_file(const VirtualFs& vfs, std::string_view path, std::string& data, Errno& code) {
    auto node = vfs.lookup(path);
    if (!node) {
      code = node.error().code;
      return ReadFailure::Open;
    }
    if (node->kind == FsKind::Dir) {
      code = Errno::Inval;
      return ReadFailure::Read;
    }
    if (!node->readable()) {
      code = Errno::Acces;
      return ReadFailure::Open;
    }
    auto r = node->read();
    if (!r) {
      code = r.error().code;
      if (code == Errno::NotSupp) unsupported(r.error().message);
      return ReadFailure::Read;
    }
    data = std::move(*r);
    return ReadFailure::None;
  }

  bool check_path(std::string_view path) {
    if (path.starts_with("/proc/") || path.starts_with("/sys/") || path == "/proc" || path == "/sys") return true;
    unsupported(fmt::format("path {} (only /proc and /sys are simulated)", path));
    return false;
  }

  int cmd_cat(const std::vector<std::string>& argv, Io& io) {
    int rc = 0;
    for (size_t i = 1; i < argv.size(); ++i) {
      if (argv[i].starts_with("-")) return unsupported("cat options");
      if (!check_path(argv[i])) return 127;
      std::string data;
      Errno code{};
      switch (read_file(argv[i], data, code)) {
        case ReadFailure::None: io.out += data; break;
        case ReadFailure::Open:
          io.err += fmt::format("cat: can't open '{}': {}\n", argv[i], errno_text(code));
          rc = 1;
          break;
        case ReadFailure::Read:
          if (m_unsupported) return 127;
          io.err += fmt::format("cat: read error: {}\n", code == Errno::Inval && fs().lookup(argv[i])->kind == FsKind::Dir
                                                             ? "Is a directory"
                                                             : errno_text(code));
          rc = 1;
          break;
      }
    }
    return rc;
  }

  int cmd_ls(const std::vector<std::string>& argv, Io& io) {
    std::vector<std::string> paths;
    for (size_t i = 1; i < argv.size(); ++i) {
      if (argv[i] == "-1") continue;
      if (argv[i].starts_with("-")) return unsupported("ls options other than -1");
      paths.push_back(argv[i]);
    }
    if (paths.empty()) return unsupported("ls of the working directory");
    int rc = 0;
    std::vector<std::string> files, dirs;
    for (const std::string& p : paths) {
      if (!check_path(p)) return 127;
      auto node = fs().lookup(p);
      if (!node) {
        io.err += fmt::format("ls: {}: No such file or directory\n", p);
        rc = 1;
      } else if (node->kind == FsKind::Dir) {
        dirs.push_back(p);
      } else {
        files.push_back(p);
      }
    }
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) io.out += f + "\n";
    const bool headers = paths.size() > 1;
    for (size_t i = 0; i < dirs.size(); ++i) {
      if (headers) io.out += (i > 0 || !files.empty() ? "\n" : "") + dirs[i] + ":\n";
      const auto names = fs().list(dirs[i]);
      for (const std::string& n : *names) io.out += n + "\n";
    }
    return rc;
  }

  int cmd_test(const std::vector<std::string>& argv_in, Io& io) {
    std::vector<std::string> a(argv_in.begin() + 1, argv_in.end());
    if (argv_in[0] == "[") {
      if (a.empty() || a.back() != "]") {
        io.err += "sh: [: missing ]\n";
        return 2;
      }
      a.pop_back();
    }
    bool negate = false;
    while (!a.empty() && a[0] == "!") {
      negate = !negate;
      a.erase(a.begin());
    }
    std::optional<bool> result;
    if (a.empty()) {
      result = false;
    } else if (a.size() == 1) {
      result = !a[0].empty();
    } else if (a.size() == 2) {
      const std::string& op = a[0];
      const std::string& path = a[1];
      if (op == "-n") result = !path.empty();
      else if (op == "-z") result = path.empty();
      else if (op == "-e" || op == "-f" || op == "-d" || op == "-h" || op == "-L" || op == "-r" || op == "-w" || op == "-s") {
        if (!check_path(path)) return 127;
        auto node = fs().lookup(path);
        if (!node) result = false;
        else if (op == "-f") result = node->kind == FsKind::File;
        else if (op == "-d") result = node->kind == FsKind::Dir;
        else if (op == "-h" || op == "-L") result = node->kind == FsKind::Link;
        else result = true;
      }
    } else if (a.size() == 3) {
      const std::string& op = a[1];
      if (op == "=" || op == "==") result = a[0] == a[2];
      else if (op == "!=") result = a[0] != a[2];
      else {
        const auto x = pytext::parse_int(a[0]), y = pytext::parse_int(a[2]);
        if (x && y) {
          if (op == "-eq") result = *x == *y;
          else if (op == "-ne") result = *x != *y;
          else if (op == "-lt") result = *x < *y;
          else if (op == "-le") result = *x <= *y;
          else if (op == "-gt") result = *x > *y;
          else if (op == "-ge") result = *x >= *y;
        }
      }
    }
    if (!result) return unsupported("test expression outside -e/-f/-d/-L/-n/-z/=/!=/-eq..");
    return (*result != negate) ? 0 : 1;
  }

  int cmd_sleep(const std::vector<std::string>& argv, Io& io) {
    if (argv.size() != 2) {
      io.err += "sleep: usage error\n";
      return 1;
    }
    const auto s = pytext::parse_float(argv[1]);
    if (!s || *s < 0 || !std::isfinite(*s)) {
      io.err += fmt::format("sleep: invalid number '{}'\n", argv[1]);
      return 1;
    }
    m_sim.uptime += *s;
    return 0;
  }

  int cmd_grep(const std::vector<std::string>& argv, Io& io) {
    bool quiet = false, extended = false;
    size_t i = 1;
    for (; i < argv.size() && argv[i].starts_with("-") && argv[i].size() > 1; ++i) {
      for (size_t k = 1; k < argv[i].size(); ++k) {
        if (argv[i][k] == 'q') quiet = true;
        else if (argv[i][k] == 'E') extended = true;
        else return unsupported("grep options other than -q and -E");
      }
    }
    if (i >= argv.size()) {
      io.err += "grep: no pattern\n";
      return 2;
    }
    std::regex re;
    try {
      re = std::regex(argv[i], extended ? std::regex::extended : std::regex::basic);
    } catch (const std::regex_error&) {
      // std::regex reports a bad pattern by throwing; the shell's grep prints an error instead.
      io.err += fmt::format("grep: bad regex '{}'\n", argv[i]);
      return 2;
    }
    ++i;
    if (i >= argv.size()) return 1;  // stdin is /dev/null
    bool any = false;
    int rc_err = 0;
    const bool many = argv.size() - i > 1;
    for (; i < argv.size(); ++i) {
      if (!check_path(argv[i])) return 127;
      std::string data;
      Errno code{};
      if (read_file(argv[i], data, code) != ReadFailure::None) {
        if (m_unsupported) return 127;
        io.err += fmt::format("grep: {}: {}\n", argv[i], errno_text(code));
        rc_err = 2;
        continue;
      }
      for (const std::string_view l : pytext::splitlines(data)) {
        const std::string line(l);
        if (!std::regex_search(line, re)) continue;
        any = true;
        if (!quiet) io.out += (many ? argv[i] + ":" : "") + line + "\n";
      }
    }
    if (rc_err && !any) return rc_err;
    return any ? 0 : 1;
  }

  int cmd_readlink(const std::vector<std::string>& argv, Io& io) {
    if (argv.size() != 2) return unsupported("readlink options");
    if (!check_path(argv[1])) return 127;
    auto t = fs().readlink(argv[1]);
    if (!t) return 1;
    io.out += *t + "\n";
    return 0;
  }

  int cmd_modprobe(const std::vector<std::string>& argv, Io& io) {
    bool remove = false;
    std::vector<std::string> names;
    for (size_t i = 1; i < argv.size(); ++i) {
      if (argv[i] == "-r") remove = true;
      else if (argv[i] == "-q" || argv[i] == "-v") continue;
      else if (argv[i].starts_with("-")) return unsupported("modprobe options other than -r, -q, -v");
      else if (names.empty()) names.push_back(argv[i]);
      else return unsupported("module parameters");
    }
    if (names.empty()) {
      io.err += "modprobe: FATAL: Module name not given.\n";
      return 1;
    }
    std::string name = names[0];
    std::replace(name.begin(), name.end(), '-', '_');
    // lib/test_hmm.ko exists only in a kernel built with CONFIG_TEST_HMM (`--kconfig`); Debian's has none.
    const bool known = contains(kKnownModules, name) || (name == "test_hmm" && machine().kernel_config().test_hmm);
    if (!known) {
      io.err += fmt::format("modprobe: FATAL: Module {} not found in directory /lib/modules/{}\n", names[0],
                            m_sim.options.kernel_release);
      return 1;
    }
    if (remove) return unload(name, io, "modprobe -r");
    return load(name, io);
  }

  int load(const std::string& name, Io& io) {
    if (name == "test_hmm" && !m_sim.test_hmm) {
      auto d = TestHmm::load(machine());
      if (!d) {
        // kmod's insmod failure: init_module's errno (hmm_dmirror_init's return).
        io.err += fmt::format("modprobe: ERROR: could not insert 'test_hmm': {}\n", errno_text(d.error().code));
        return 1;
      }
      m_sim.test_hmm = std::move(*d);
    }
    if (name == "memory_notifier_error_inject" && !m_sim.notifier_inject_loaded) {
      if (auto r = machine().load_memory_notifier_error_inject(); !r && r.error().code != Errno::Exist)
        return unsupported("memory_notifier_error_inject: " + r.error().message);
      m_sim.notifier_inject_loaded = true;
      m_sim.loaded_modules.insert("notifier_error_inject");
    }
    if (contains(kNvdimmModules, name)) {
      m_sim.loaded_modules.insert("libnvdimm");
      if (auto mod = nd_module_from_name(name))
        if (auto r = m_sim.nd.load(machine(), *mod); !r) return unsupported(fmt::format("modprobe {}: {}", name, r.error().message));
    }
    m_sim.loaded_modules.insert(name);
    return 0;
  }

  int unload(const std::string& name, Io& io, std::string_view tool) {
    if (!m_sim.loaded_modules.count(name)) {
      if (tool == "rmmod") {
        io.err += fmt::format("rmmod: ERROR: Module {} is not currently loaded\n", name);
        return 1;
      }
      return 0;
    }
    if (name == "memory_notifier_error_inject")
      return unsupported("unloading memory_notifier_error_inject (the machine has no unregister for it)");
    if (name == "test_hmm" && m_sim.test_hmm) {
      // hmm_dmirror_exit: every chunk is unmapped and its iomem region released.
      m_sim.test_hmm->unload();
      m_sim.test_hmm.reset();
    }
    m_sim.loaded_modules.erase(name);
    return 0;
  }

  int cmd_rmmod(const std::vector<std::string>& argv, Io& io) {
    if (argv.size() != 2 || argv[1].starts_with("-")) return unsupported("rmmod options");
    std::string name = argv[1];
    std::replace(name.begin(), name.end(), '-', '_');
    return unload(name, io, "rmmod");
  }

  // guest/bin/setstate: `echo "$v" > .../memory$b/state` per block.
  int cmd_setstate(const std::vector<std::string>& argv, Io& io) {
    if (argv.size() < 2) return 0;
    const std::string& v = argv[1];
    int rc = 0;
    for (size_t i = 2; i < argv.size(); ++i) {
      SimpleCommand echo;
      echo.argv = {"echo", v};
      echo.redirects.push_back(Redirect{1, false, false, false, "/sys/devices/system/memory/memory" + argv[i] + "/state"});
      Io inner;
      const int r = run_simple(echo, inner);
      if (m_unsupported) return 127;
      io.err += inner.err;
      if (r == 0) {
        io.out += fmt::format("memory{}: {} ok\n", argv[i], v);
      } else {
        io.err += fmt::format("memory{}: {} FAILED\n", argv[i], v);
        rc = 1;
      }
    }
    return rc;
  }

  // `read -r v < FILE`: the first line, or nullopt when the open or read fails.
  std::optional<std::string> read_first_line(std::string_view path) { return read_first_line(fs(), path); }
  std::optional<std::string> read_first_line(const VirtualFs& vfs, std::string_view path) {
    std::string data;
    Errno code{};
    if (read_file(vfs, path, data, code) != ReadFailure::None) return std::nullopt;
    const size_t nl = data.find('\n');
    return nl == std::string::npos ? data : data.substr(0, nl);
  }

  // A shell glob over one directory: sorted names starting with `prefix` (and, for digits_after,
  // followed by a digit).
  std::vector<std::string> glob(std::string_view dir, std::string_view prefix, bool digit_after = false) {
    return glob(fs(), dir, prefix, digit_after);
  }
  std::vector<std::string> glob(const VirtualFs& vfs, std::string_view dir, std::string_view prefix, bool digit_after) {
    std::vector<std::string> out;
    auto names = vfs.list(dir);
    if (!names) return out;
    for (const std::string& n : *names) {
      if (!n.starts_with(prefix)) continue;
      if (digit_after && (n.size() <= prefix.size() || !std::isdigit(static_cast<unsigned char>(n[prefix.size()]))))
        continue;
      out.push_back(n);
    }
    return out;
  }

  int cmd_memblocks(Io& io) {
    const std::string base = "/sys/devices/system/memory/";
    for (const std::string& d : glob(base, "memory", true)) {
      // The block's directory is looked up once and read as a root of its own: the helper's
      // paths all start with it, and resolving it again per attribute was most of the cost.
      auto dir_node = fs().lookup(base + d);
      const VirtualFs block(dir_node ? std::move(*dir_node) : FsNode{});  // gone: every attribute reads <err>
      auto attr = [&](const char* f) { return read_first_line(block, std::string("/") + f).value_or("<err>"); };
      const std::string st = attr("state"), pi = attr("phys_index"), vz = attr("valid_zones"), rm = attr("removable"),
                        pd = attr("phys_device");
      std::string ot = "-";
      if (block.exists("/online_type")) ot = attr("online_type");
      std::string nodes;
      for (const std::string& n : glob(block, "/", "node", true)) nodes += n + " ";
      if (!nodes.empty()) nodes.pop_back();
      io.out += fmt::format("{}|{}|{}|{}|{}|{}|{}|{}\n", d.substr(6), st, pi, vz, rm, pd, ot, nodes);
    }
    return 0;
  }

  int cmd_blocks_in(const std::vector<std::string>& argv, Io& io) {
    if (argv.size() < 3) return unsupported("blocks_in without START and SIZE");
    const auto bs_text = read_first_line("/sys/devices/system/memory/block_size_bytes");
    const auto start = parse_c_number(argv[1]), size = parse_c_number(argv[2]);
    if (!bs_text || !start || !size) return unsupported("blocks_in arguments that are not numbers");
    const auto bs = parse_c_number("0x" + *bs_text);
    if (!bs || *bs == 0) return unsupported("block_size_bytes");
    for (uint64_t s = *start / *bs, e = (*start + *size + *bs - 1) / *bs; s < e; ++s) io.out += fmt::format("{}\n", s);
    return 0;
  }

  int cmd_pfnflags(const std::vector<std::string>& argv, Io& io) {
    std::vector<PfnRange> ranges;
    for (size_t i = 1; i < argv.size(); ++i) {
      // strtoul(s, &e, 0), then '+' COUNT or '-' END as guest/pfnflags.c reads them.
      std::string_view rest;
      const auto a = parse_c_number(argv[i], &rest).value_or(0);
      uint64_t b = a + 1;
      if (!rest.empty() && rest[0] == '+') b = a + parse_c_number(rest.substr(1)).value_or(0);
      else if (!rest.empty() && rest[0] == '-') b = parse_c_number(rest.substr(1)).value_or(0);
      if (b > a) {
        if (b - a > kMaxPfnsPerItem) return unsupported("a pfnflags range above 2^20 pfns");
        ranges.push_back(PfnRange{Pfn(a), NrPages(b - a)});
      }
    }
    io.out += render_pfnflags(machine(), ranges);
    return 0;
  }

  // guest/bin/waitfor: the state changes of the model are synchronous, so one try decides; a
  // failing condition waits the whole timeout.
  int cmd_waitfor(const std::vector<std::string>& argv, Io& io) {
    if (argv.size() < 3) return unsupported("waitfor without SECONDS and COMMAND");
    const auto t = pytext::parse_int(argv[1]);
    if (!t) return unsupported("waitfor SECONDS that is not an integer");
    const std::string inner = join(argv, 2, " ");
    Shell sub(m_sim, m_where);
    CmdOutcome o = sub.run_line(inner);
    if (o.unsupported) return unsupported(*o.unsupported);
    io.out += o.out;
    io.err += o.err;
    if (o.rc == 0) return 0;
    m_sim.uptime += static_cast<double>(*t);
    io.err += fmt::format("waitfor: timeout after {}s: {}\n", *t, inner);
    return 1;
  }

  int cmd_acpi_eject_block(const std::vector<std::string>& argv, Io& io) {
    const std::string want = "memory" + (argv.size() > 1 ? argv[1] : std::string());
    const std::string base = "/sys/bus/acpi/devices/";
    for (const std::string& d : glob(base, "PNP0C80:")) {
      for (const std::string& x : glob(base + d, "physical_node")) {
        auto target = fs().readlink(base + d + "/" + x);
        if (!target || basename_of(*target) != want) continue;
        io.out += fmt::format("ejecting {} ({})\n", d, read_first_line(base + d + "/path").value_or(""));
        SimpleCommand echo;
        echo.argv = {"echo", "1"};
        echo.redirects.push_back(Redirect{1, false, false, false, base + d + "/eject"});
        return run_simple(echo, io);
      }
    }
    io.err += fmt::format("no PNP0C80 device owns {}\n", want);
    return 2;
  }

  int cmd_acpi_mem(Io& io) {
    const std::string base = "/sys/bus/acpi/devices/";
    for (const std::string& d : glob(base, "PNP0C80:")) {
      auto dir_node = fs().lookup(base + d);  // once, as in cmd_memblocks
      const VirtualFs dev(dir_node ? std::move(*dir_node) : FsNode{});
      const std::string st = dev.exists("/status") ? read_first_line(dev, "/status").value_or("") : "-";
      const std::string p = dev.exists("/path") ? read_first_line(dev, "/path").value_or("") : "-";
      const std::string ej = dev.exists("/eject") ? "yes" : "no";
      std::string pn;
      for (const std::string& x : glob(dev, "/", "physical_node", false)) {
        if (auto t = dev.readlink("/" + x)) pn += " " + basename_of(*t);
      }
      io.out += fmt::format("{}|{}|{}|{}|{}\n", d, st, p, ej, pn.empty() ? "" : pn.substr(1));
    }
    return 0;
  }

  int cmd_nd_dax_state(Io& io) {
    for (const std::string& l : nd_dax_state_lines(m_sim.nd)) io.out += l + "\n";
    return 0;
  }

  int cmd_nvdimm_tool(const std::vector<std::string>& argv, Io& io) {
    ToolOutcome t = argv[0] == "ndctl" ? run_ndctl(m_sim, argv) : run_daxctl(m_sim, argv);
    if (t.unsupported) return unsupported(*t.unsupported);
    io.out += t.out;
    io.err += t.err;
    return t.rc;
  }

  Simulation& m_sim;
  std::string_view m_where;
  std::optional<std::string> m_unsupported;
};

}  // namespace

CmdOutcome Simulation::run_shell(std::string_view line, std::string_view where) {
  Shell sh(*this, where);
  CmdOutcome o = sh.run_line(line);
  uptime += 0.01;
  if (o.unsupported) {
    o.rc = 127;
    o.err += fmt::format("sparsemem: unsupported command '{}' at {}: {}\n", line, where, *o.unsupported);
    o.out.clear();
  }
  o.out = strip_final_newline(std::move(o.out));
  o.err = strip_final_newline(std::move(o.err));
  return o;
}

}  // namespace sparsemem::sim
