// Tests for the CLI's progress line (tools/sparsemem/progress.h) through the program itself: a run
// longer than a second shows "step N/M" on a terminal's stderr, and a pipe never sees it.
#include <gtest/gtest.h>

#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace sparsemem {
namespace {

namespace stdfs = std::filesystem;

#ifdef SPM_CLI_BINARY
constexpr const char* kCli = SPM_CLI_BINARY;
#else
constexpr const char* kCli = "";
#endif

// A scenario long enough to take well over a second: 600 steps of online/offline of a hot-added
// DIMM's blocks, each followed by a snapshot and the checker.
std::string long_scenario() {
  const stdfs::path p = stdfs::temp_directory_path() / ("spm_progress_" + std::to_string(getpid()) + ".scn");
  std::ofstream f(p);
  f << "qemu: -machine pc -m 4160M,slots=4,maxmem=32G\n"
       "qemu: -object memory-backend-ram,id=m1,size=1G\n"
       "qemu: -device pc-dimm,id=d1,memdev=m1\n";
  for (int i = 0; i < 600; ++i) {
    f << "step cycle" << i << "\n";
    f << "    setstate " << (i % 2 ? "offline" : "online_movable") << " 48 49 50 51\n";
  }
  return p.string();
}

struct Ran {
  std::string out;
  int status = -1;
};

// `sparsemem ARGS` with stdout and stderr on one pseudo-terminal.
Ran run_on_terminal(const std::string& scenario) {
  Ran r;
  int fd = -1;
  const pid_t pid = forkpty(&fd, nullptr, nullptr, nullptr);
  if (pid < 0) return r;
  if (pid == 0) {
    execl(kCli, kCli, "run", scenario.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));  // EIO at the end
  close(fd);
  int st = 0;
  waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

Ran run_piped(const std::string& scenario) {
  Ran r;
  FILE* p = popen((std::string(kCli) + " run " + scenario + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Scenario: `sparsemem run` of a 600-step scenario, on a terminal and through a pipe.
// Expect: both succeed; the terminal gets the erase-line sequence and a "step N/600" text once a
// second has passed; the pipe gets neither, so logs stay clean.
TEST(Progress, shown_on_a_terminal_for_long_runs_never_on_a_pipe) {
  if (std::string(kCli).empty() || !stdfs::exists(kCli)) GTEST_SKIP() << "the sparsemem program is not built here";
  const std::string scenario = long_scenario();
  const Ran tty = run_on_terminal(scenario);
  const Ran piped = run_piped(scenario);
  stdfs::remove(scenario);
  EXPECT_EQ(tty.status, 0) << tty.out.substr(0, 2000);
  EXPECT_EQ(piped.status, 0) << piped.out.substr(0, 2000);
  EXPECT_NE(tty.out.find("\r\033[K"), std::string::npos);
  EXPECT_NE(tty.out.find("/600"), std::string::npos) << tty.out.substr(0, 2000);
  EXPECT_EQ(piped.out.find("\033["), std::string::npos);
}

}  // namespace
}  // namespace sparsemem
