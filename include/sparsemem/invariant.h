// InvariantReport: where every check_invariants() records what it found broken. Plain value; the
// checker (checker.h) owns one per run, structures only append to it.
#pragma once

#include <string>
#include <vector>

#include <fmt/core.h>

namespace sparsemem {

struct Violation {
  std::string id;      // the invariant's short ID as written beside its data, e.g. "INV-SEC-2"
  std::string detail;  // what was seen, with the pfn/section/block it concerns
};

class InvariantReport {
 public:
  template <class... Args>
  void fail(std::string id, fmt::format_string<Args...> f, Args&&... args) {
    m_violations.push_back(Violation{std::move(id), fmt::format(f, std::forward<Args>(args)...)});
  }
  bool ok() const { return m_violations.empty(); }
  const std::vector<Violation>& violations() const { return m_violations; }
  std::string to_string() const {
    std::string s;
    for (const auto& v : m_violations) s += v.id + ": " + v.detail + "\n";
    return s;
  }

 private:
  std::vector<Violation> m_violations;
};

}  // namespace sparsemem
