// Names and texts of the errnos in result.h. Pure functions.
#include "sparsemem/result.h"

#include <cstring>

namespace sparsemem {

std::string_view errno_name(Errno e) {
  switch (e) {
    case Errno::Perm: return "EPERM";
    case Errno::NoEnt: return "ENOENT";
    case Errno::Intr: return "EINTR";
    case Errno::Io: return "EIO";
    case Errno::NxIO: return "ENXIO";
    case Errno::TooBig: return "E2BIG";
    case Errno::NoMem: return "ENOMEM";
    case Errno::Acces: return "EACCES";
    case Errno::Fault: return "EFAULT";
    case Errno::Busy: return "EBUSY";
    case Errno::Exist: return "EEXIST";
    case Errno::NoDev: return "ENODEV";
    case Errno::Inval: return "EINVAL";
    case Errno::NoSpc: return "ENOSPC";
    case Errno::Range: return "ERANGE";
    case Errno::NotSupp: return "EOPNOTSUPP";
    case Errno::HwPoison: return "EHWPOISON";
  }
  return "E?";
}

std::string_view errno_text(Errno e) {
  // glibc's strerror texts are what a shell prints after "write error: ".
  return std::strerror(static_cast<int>(e));
}

}  // namespace sparsemem
