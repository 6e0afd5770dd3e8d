// Tests for the CLI's progress line (tools/sparsemem/progress.h) through the program itself: a run
// longer than a second shows "step N/M" on a terminal's stderr, and a pipe never sees it.
#include <gtest/gtest.h>

#include "support/cli.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace sparsemem {
namespace {

namespace stdfs = std::filesystem;

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

// Scenario: `sparsemem run` of a 600-step scenario, on a terminal and through a pipe, with the
// one-second threshold moved to 0 (SPARSEMEM_PROGRESS_AFTER_MS; the run takes well under a second).
// Expect: both succeed; the terminal gets the erase-line sequence and a "step N/600" text; the pipe
// gets neither, so logs stay clean.
TEST(Progress, shown_on_a_terminal_for_long_runs_never_on_a_pipe) {
  if (!testing::cli_built()) GTEST_SKIP() << "the sparsemem program is not built here";
  ASSERT_EQ(setenv("SPARSEMEM_PROGRESS_AFTER_MS", "0", 1), 0);
  const std::string scenario = long_scenario();
  const testing::CliRun tty = testing::run_cli_on_terminal({"run", scenario});
  const testing::CliRun piped = testing::run_cli_piped("run " + scenario + " 2>&1");
  stdfs::remove(scenario);
  unsetenv("SPARSEMEM_PROGRESS_AFTER_MS");
  EXPECT_EQ(tty.status, 0) << tty.out.substr(0, 2000);
  EXPECT_EQ(piped.status, 0) << piped.out.substr(0, 2000);
  EXPECT_NE(tty.out.find("\r\033[K"), std::string::npos);
  EXPECT_NE(tty.out.find("/600"), std::string::npos) << tty.out.substr(0, 2000);
  EXPECT_EQ(piped.out.find("\033["), std::string::npos);
}

}  // namespace
}  // namespace sparsemem
