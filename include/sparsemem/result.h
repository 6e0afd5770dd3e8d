// Result<T>: a value or a kernel errno with a message. The core library reports every failure
// through it and throws nothing; header-only, usable from every layer.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace sparsemem {

// The kernel errnos sparsemem returns. <cerrno> defines EINVAL & co. as macros, so the
// enumerators cannot carry the kernel spelling; errno_name() gives it back ("EINVAL").
enum class Errno : int {
  Perm = EPERM,
  NoEnt = ENOENT,
  Intr = EINTR,
  Io = EIO,  // soft_offline_page() of memory that is not online; the host refusing a write (export_tree)
  NxIO = ENXIO,
  TooBig = E2BIG,
  NoMem = ENOMEM,
  Acces = EACCES,
  Fault = EFAULT,
  Busy = EBUSY,
  Exist = EEXIST,
  NoDev = ENODEV,
  Inval = EINVAL,
  NoSpc = ENOSPC,
  Range = ERANGE,
  NotSupp = EOPNOTSUPP,
  HwPoison = EHWPOISON,  // memory_failure() of a page already poisoned
};

// "EINVAL", "ENOMEM", ...
std::string_view errno_name(Errno e);
// The C library's text for the errno, as a shell prints it: "Invalid argument".
std::string_view errno_text(Errno e);

struct Error {
  Errno code;
  std::string message;  // why, in the kernel's words where the kernel logs something

  bool operator==(const Error& o) const { return code == o.code; }
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(Errno e, std::string message = {}) {
  return tl::unexpected<Error>(Error{e, std::move(message)});
}

}  // namespace sparsemem

// Propagate the error of a Result-returning expression; evaluates to nothing.
#define SPM_TRY(expr)                                          \
  do {                                                         \
    auto spm_try_r_ = (expr);                                  \
    if (!spm_try_r_) return tl::unexpected(spm_try_r_.error()); \
  } while (0)

#define SPM_CONCAT_(a, b) a##b
#define SPM_CONCAT(a, b) SPM_CONCAT_(a, b)
// SPM_TRY_ASSIGN(auto x, expr): declare x from a Result's value or propagate its error.
#define SPM_TRY_ASSIGN(decl, expr) SPM_TRY_ASSIGN_(SPM_CONCAT(spm_try_v_, __LINE__), decl, expr)
#define SPM_TRY_ASSIGN_(tmp, decl, expr)                   \
  auto tmp = (expr);                                       \
  if (!tmp) return tl::unexpected(std::move(tmp).error()); \
  decl = std::move(*tmp)
