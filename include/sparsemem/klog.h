// KernelLog: the machine's dmesg — the lines Linux would print, in order. Appended to by every
// layer (under the machine's hotplug lock or during boot); read by views and the simulator.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include <fmt/core.h>

namespace sparsemem {

enum class LogLevel : unsigned char { Debug, Info, Warn, Err };

struct LogLine {
  LogLevel level;
  std::string text;  // without timestamp, e.g. "x86/mm: Memory block size: 128MB"
};

class KernelLog {
 public:
  template <class... Args>
  void log(LogLevel lvl, fmt::format_string<Args...> f, Args&&... args) {
    append(lvl, fmt::format(f, std::forward<Args>(args)...));
  }
  // A kernel WARN: the line plus the "WARNING:" marker a console shows.
  template <class... Args>
  void warn(fmt::format_string<Args...> f, Args&&... args) {
    append(LogLevel::Warn, fmt::format(f, std::forward<Args>(args)...));
    std::lock_guard g(m_mutex);
    ++m_warn_count;
  }
  void append(LogLevel lvl, std::string text) {
    std::lock_guard g(m_mutex);
    m_lines.push_back(LogLine{lvl, std::move(text)});
  }
  std::vector<LogLine> lines() const {
    std::lock_guard g(m_mutex);
    return m_lines;
  }
  size_t size() const {
    std::lock_guard g(m_mutex);
    return m_lines.size();
  }
  size_t warn_count() const {
    std::lock_guard g(m_mutex);
    return m_warn_count;
  }

 private:
  mutable std::mutex m_mutex;
  std::vector<LogLine> m_lines;
  size_t m_warn_count = 0;
};

}  // namespace sparsemem
