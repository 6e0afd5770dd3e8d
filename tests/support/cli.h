// Running the sparsemem program from tests: on a pipe (popen) or on a pseudo-terminal (forkpty).
// Test-only; the binary is SPM_CLI_BINARY, which sanitizer flavours do not build (tests skip there).
#pragma once

#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace sparsemem::testing {

#ifdef SPM_CLI_BINARY
inline constexpr const char* kCliBinary = SPM_CLI_BINARY;
#else
inline constexpr const char* kCliBinary = "";
#endif

inline bool cli_built() { return *kCliBinary && std::filesystem::exists(kCliBinary); }

struct CliRun {
  std::string out;
  int status = -1;  // exit status, -1 when killed or not started
};

// `sparsemem ARGS` through sh with stdout on a pipe; `env` ("NAME=value ...") is prepended with env(1).
inline CliRun run_cli_piped(const std::string& args, const std::string& env = "") {
  CliRun r;
  const std::string cmd = (env.empty() ? "" : "env " + env + " ") + kCliBinary + " " + args;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// `sparsemem ARGS...` with stdout and stderr on one pseudo-terminal (TERM=xterm); NO_COLOR set
// when no_color, removed otherwise.
inline CliRun run_cli_on_terminal(const std::vector<std::string>& args, bool no_color = false) {
  CliRun r;
  int fd = -1;
  const pid_t pid = forkpty(&fd, nullptr, nullptr, nullptr);
  if (pid < 0) return r;
  if (pid == 0) {
    setenv("TERM", "xterm", 1);
    if (no_color)
      setenv("NO_COLOR", "1", 1);
    else
      unsetenv("NO_COLOR");
    std::vector<char*> argv{const_cast<char*>(kCliBinary)};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(kCliBinary, argv.data());
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

}  // namespace sparsemem::testing
