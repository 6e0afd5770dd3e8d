// Tests for `sparsemem shell` driven through a pseudo-terminal, as a person at a terminal drives it:
// completion, history, a hot-add, `save`, and the saved scenario replayed by run_scenario().
#include <gtest/gtest.h>

#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "sparsemem/diff.h"
#include "sparsemem/run.h"
#include "sparsemem/scenario.h"
#include "sparsemem/trace.h"

namespace sparsemem {
namespace {

namespace stdfs = std::filesystem;

#ifdef SPM_CLI_BINARY
constexpr const char* kCli = SPM_CLI_BINARY;
#else
constexpr const char* kCli = "";
#endif

class Pty {
 public:
  explicit Pty(const std::vector<std::string>& argv) {
    m_pid = forkpty(&m_fd, nullptr, nullptr, nullptr);
    if (m_pid == 0) {
      setenv("TERM", "dumb", 1);
      std::vector<char*> av;
      for (const std::string& a : argv) av.push_back(const_cast<char*>(a.c_str()));
      av.push_back(nullptr);
      execv(av[0], av.data());
      _exit(127);
    }
  }
  ~Pty() {
    if (m_pid > 0 && !m_reaped) {
      kill(m_pid, SIGKILL);
      waitpid(m_pid, nullptr, 0);
    }
    if (m_fd >= 0) close(m_fd);
  }
  bool started() const { return m_pid > 0; }
  void type(std::string_view keys) { ASSERT_EQ(write(m_fd, keys.data(), keys.size()), static_cast<ssize_t>(keys.size())); }
  // Reads until `needle` appears after the current position (or 20 s pass); returns what was read.
  std::string expect(std::string_view needle) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (m_seen.find(needle, m_pos) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{m_fd, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(m_fd, buf, sizeof buf);
      if (n <= 0) break;
      m_seen.append(buf, static_cast<size_t>(n));
    }
    const size_t at = m_seen.find(needle, m_pos);
    EXPECT_NE(at, std::string::npos) << "waiting for '" << needle << "', got:\n" << m_seen.substr(m_pos);
    std::string chunk = m_seen.substr(m_pos, at == std::string::npos ? std::string::npos : at - m_pos + needle.size());
    if (at != std::string::npos) m_pos = at + needle.size();
    return chunk;
  }
  int wait_exit() {
    int status = 0;
    for (int i = 0; i < 200 && waitpid(m_pid, &status, WNOHANG) == 0; ++i) {
      char buf[4096];
      (void)!read(m_fd, buf, sizeof buf);  // drain, so the child never blocks on a full terminal
      usleep(50000);
    }
    m_reaped = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t m_pid = -1;
  int m_fd = -1;
  bool m_reaped = false;
  std::string m_seen;
  size_t m_pos = 0;
};

// Scenario: start `sparsemem shell`, complete a sysfs path with Tab, hot-add a DIMM through the
// monitor, online a block, repeat the last command with the Up arrow, save, exit.
// Expect: the completed command ran, the block reads online twice, the saved scenario has the six
// steps typed, and run_scenario() of the saved file gives the shell's own trace (nothing differs:
// saved as shell.scn, the file's name is the session's scenario name).
TEST(ShellPty, session_saves_a_scenario_that_replays_to_the_same_trace) {
  if (std::string(kCli).empty() || !stdfs::exists(kCli)) GTEST_SKIP() << "the sparsemem program is not built here";
  const stdfs::path dir = stdfs::temp_directory_path() / ("spm-shell-" + std::to_string(getpid()));
  stdfs::create_directories(dir);
  const std::string scn = (dir / "shell.scn").string(), trace = (dir / "session.json").string();
  {
    Pty sh({kCli, "shell", "--trace", trace});
    ASSERT_TRUE(sh.started());
    sh.expect("sparsemem:1# ");
    sh.type("cat /sys/devices/system/memory/auto_onl\t\n");
    EXPECT_NE(sh.expect("sparsemem:2# ").find("offline"), std::string::npos);
    sh.type("hmp object_add memory-backend-ram,id=m1,size=1G\n");
    sh.expect("sparsemem:3# ");
    sh.type("hmp device_add pc-dimm,id=d1,memdev=m1\n");
    EXPECT_NE(sh.expect("sparsemem:4# ").find("ACPI_DEVICE_OST"), std::string::npos);
    sh.type("echo online_movable > /sys/devices/system/memory/memory48/state\n");
    sh.expect("sparsemem:5# ");
    sh.type("cat /sys/devices/system/memory/memory48/state\n");
    EXPECT_NE(sh.expect("sparsemem:6# ").find("online"), std::string::npos);
    sh.type("\x1b[A\n");  // Up: the previous line again
    EXPECT_NE(sh.expect("sparsemem:7# ").find("online"), std::string::npos);
    sh.type("save " + scn + "\n");
    sh.expect("saved 6 step(s)");
    sh.type("exit\n");
    EXPECT_EQ(sh.wait_exit(), 0);
  }
  auto sc = load_scenario(scn);
  ASSERT_TRUE(sc) << sc.error().message;
  ASSERT_EQ(sc->steps.size(), 6u);
  EXPECT_EQ(sc->steps[0].commands.at(0).text, "cat /sys/devices/system/memory/auto_online_blocks");
  EXPECT_EQ(sc->steps[5].commands.at(0).text, "cat /sys/devices/system/memory/memory48/state");
  auto replay = run_scenario(*sc);
  ASSERT_TRUE(replay);
  auto shell_trace = load_trace(trace);
  ASSERT_TRUE(shell_trace) << shell_trace.error().message;
  const DiffResult d = diff_traces(*shell_trace, replay->trace);
  EXPECT_EQ(d.mismatched, 0u) << format_diff(d);
  EXPECT_GT(d.matched, 1000u);
  stdfs::remove_all(dir);
}

}  // namespace
}  // namespace sparsemem
