// Progress: a one-line indication on stderr for CLI work that takes longer than a second (long
// scenarios, very large machines). CLI-only; silent when stderr is not a terminal.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace sparsemem::cli {

class Progress {
 public:
  Progress() : m_start(std::chrono::steady_clock::now()), m_tty(isatty(STDERR_FILENO)) {
    // SPARSEMEM_PROGRESS_AFTER_MS moves the one-second threshold (the tests set 0: a scenario long
    // enough to take a second would take minutes under the sanitizers).
    if (const char* ms = std::getenv("SPARSEMEM_PROGRESS_AFTER_MS")) m_after = std::chrono::milliseconds(std::atoll(ms));
  }
  ~Progress() { clear(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Shows `what` (replacing the previous text) once a second has passed since construction;
  // quick work never prints anything, so output stays identical whether or not it is watched.
  void update(const std::string& what) {
    if (!m_tty || std::chrono::steady_clock::now() - m_start < m_after) return;
    std::fprintf(stderr, "\r\033[K%s", what.c_str());
    std::fflush(stderr);
    m_shown = true;
  }
  // Erases the line, so that what follows starts on a clean line.
  void clear() {
    if (!m_shown) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    m_shown = false;
  }

 private:
  std::chrono::steady_clock::time_point m_start;
  std::chrono::milliseconds m_after{1000};
  bool m_tty;
  bool m_shown = false;
};

}  // namespace sparsemem::cli
