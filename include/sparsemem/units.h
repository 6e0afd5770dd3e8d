// Strong types for frame numbers, addresses and counts (Pfn, PhysAddr, SectionNr, NrPages, ...).
// Header-only values; conversions that depend on the page or section size live in arch.h.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <limits>

#include "sparsemem/check.h"

namespace sparsemem {

// StrongInt<Tag>: an unsigned 64-bit quantity that only mixes with its own kind. Arithmetic that
// would wrap is a bug (SPM_CHECK), never a silent modulo: seed 003's device-private pfn whose
// struct page "wrapped around into user space" is exactly such a wrap.
template <class Tag>
class StrongInt {
 public:
  using Rep = uint64_t;
  constexpr StrongInt() = default;
  constexpr explicit StrongInt(Rep v) : m_value(v) {}
  constexpr Rep value() const { return m_value; }
  constexpr auto operator<=>(const StrongInt&) const = default;

 protected:
  Rep m_value = 0;
};

// Number of pages (a count, not a position).
struct NrPages : StrongInt<NrPages> {
  using StrongInt::StrongInt;
  constexpr NrPages operator+(NrPages o) const {
    SPM_CHECK(m_value <= std::numeric_limits<Rep>::max() - o.m_value, "NrPages overflow");
    return NrPages(m_value + o.m_value);
  }
  constexpr NrPages operator-(NrPages o) const {
    SPM_CHECK(m_value >= o.m_value, "NrPages underflow");
    return NrPages(m_value - o.m_value);
  }
  constexpr NrPages& operator+=(NrPages o) { return *this = *this + o; }
  constexpr NrPages& operator-=(NrPages o) { return *this = *this - o; }
};

// Page frame number: physical address >> PAGE_SHIFT.
struct Pfn : StrongInt<Pfn> {
  using StrongInt::StrongInt;
  constexpr Pfn operator+(NrPages n) const {
    SPM_CHECK(m_value <= std::numeric_limits<Rep>::max() - n.value(), "Pfn overflow");
    return Pfn(m_value + n.value());
  }
  constexpr Pfn operator-(NrPages n) const {
    SPM_CHECK(m_value >= n.value(), "Pfn underflow");
    return Pfn(m_value - n.value());
  }
  // Distance between two pfns; requires *this >= o.
  constexpr NrPages operator-(Pfn o) const {
    SPM_CHECK(m_value >= o.m_value, "Pfn difference underflow");
    return NrPages(m_value - o.m_value);
  }
  constexpr Pfn& operator+=(NrPages n) { return *this = *this + n; }
  constexpr Pfn& operator++() { return *this = *this + NrPages(1); }
};

// Physical byte address.
struct PhysAddr : StrongInt<PhysAddr> {
  using StrongInt::StrongInt;
  constexpr PhysAddr operator+(uint64_t bytes) const {
    SPM_CHECK(m_value <= std::numeric_limits<Rep>::max() - bytes, "PhysAddr overflow");
    return PhysAddr(m_value + bytes);
  }
};

// Memory section number: pfn >> PFN_SECTION_SHIFT.
struct SectionNr : StrongInt<SectionNr> {
  using StrongInt::StrongInt;
  constexpr SectionNr next() const { return SectionNr(m_value + 1); }
};

// Index of a 2 MiB subsection inside its section (bit index in subsection_map).
struct SubsectionIdx : StrongInt<SubsectionIdx> {
  using StrongInt::StrongInt;
};

// A kernel virtual address inside (or, for seed 003's bug, outside) the vmemmap window.
struct VmemmapAddr : StrongInt<VmemmapAddr> {
  using StrongInt::StrongInt;
};

// Memory block id: phys address / memory block size (memoryN in sysfs).
struct BlockId : StrongInt<BlockId> {
  using StrongInt::StrongInt;
};

// Half-open pfn range [start, start + nr).
struct PfnRange {
  Pfn start;
  NrPages nr;

  constexpr Pfn end() const { return start + nr; }
  constexpr bool empty() const { return nr.value() == 0; }
  constexpr bool contains(Pfn p) const { return p >= start && p < end(); }
  constexpr bool overlaps(const PfnRange& o) const {
    return !empty() && !o.empty() && start < o.end() && o.start < end();
  }
  constexpr bool operator==(const PfnRange&) const = default;
};

// Physical byte range with an inclusive end, as struct resource and struct range spell it.
struct PhysRange {
  PhysAddr start;
  PhysAddr last;  // inclusive

  constexpr uint64_t size() const { return last.value() - start.value() + 1; }
  constexpr bool operator==(const PhysRange&) const = default;
};

}  // namespace sparsemem

template <class T>
  requires std::is_base_of_v<sparsemem::StrongInt<T>, T>
struct std::hash<T> {
  size_t operator()(const T& v) const noexcept { return std::hash<uint64_t>{}(v.value()); }
};
