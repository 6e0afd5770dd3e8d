// Assertions for sparsemem's own bugs; never for input a caller, scenario or CLI user can produce.
// Header-only; any layer may include it.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace sparsemem::detail {
[[noreturn]] inline void check_failed(const char* file, int line, const char* cond, const char* msg) {
  std::fprintf(stderr, "sparsemem: %s:%d: check failed: %s: %s\n", file, line, cond, msg);
  std::abort();
}
}  // namespace sparsemem::detail

// Always on: a broken internal invariant must never be silently continued.
#define SPM_CHECK(cond, msg)                                                        \
  do {                                                                              \
    if (!(cond)) [[unlikely]]                                                       \
      ::sparsemem::detail::check_failed(__FILE__, __LINE__, #cond, msg);           \
  } while (0)

// Debug-only, but always compiled so it cannot rot (the `true ||` form keeps it type-checked).
#ifdef NDEBUG
#define SPM_DCHECK(cond, msg) \
  do {                        \
    if (true || (cond)) {     \
    }                         \
  } while (0)
#else
#define SPM_DCHECK(cond, msg) SPM_CHECK(cond, msg)
#endif

#define SPM_UNREACHABLE(msg) ::sparsemem::detail::check_failed(__FILE__, __LINE__, "unreachable", msg)

// Clang thread-safety annotations; empty elsewhere.
#if defined(__clang__)
#define SPM_TSA(x) __attribute__((x))
#else
#define SPM_TSA(x)
#endif
#define SPM_CAPABILITY(x) SPM_TSA(capability(x))
#define SPM_GUARDED_BY(x) SPM_TSA(guarded_by(x))
#define SPM_REQUIRES(...) SPM_TSA(requires_capability(__VA_ARGS__))
#define SPM_ACQUIRE(...) SPM_TSA(acquire_capability(__VA_ARGS__))
#define SPM_RELEASE(...) SPM_TSA(release_capability(__VA_ARGS__))
#define SPM_EXCLUDES(...) SPM_TSA(locks_excluded(__VA_ARGS__))
#define SPM_NO_TSA SPM_TSA(no_thread_safety_analysis)
