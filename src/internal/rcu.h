// RCU for sparsemem's lock-free readers: liburcu's bulletproof flavour (readers need no thread
// registration), plus the ThreadSanitizer annotations that let TSan see its grace periods.
// Private to src/; the public face is RcuReadGuard in sparsemem/section.h.
#pragma once

// Inline the read-side fast paths, except under UBSan: liburcu's inline reader code reaches its
// 128-byte-aligned reader struct through a pointer the library aligns to less (a liburcu bug
// UBSan reports as misaligned access), so sanitizer builds call the library's functions instead.
#if !defined(_LGPL_SOURCE) && !defined(SPM_URCU_NO_INLINE)
#define _LGPL_SOURCE
#endif
#include <urcu-bp.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPM_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SPM_TSAN 1
#endif

#ifdef SPM_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace sparsemem::rcu {

#ifdef SPM_TSAN
// liburcu orders readers and writers with fences and membarrier(), which TSan cannot see. Every
// read-side unlock releases this token and every completed grace period acquires it, which is the
// happens-before edge RCU guarantees.
inline char g_tsan_grace_token;
inline void tsan_reader_done() { __tsan_release(&g_tsan_grace_token); }
inline void tsan_grace_done() { __tsan_acquire(&g_tsan_grace_token); }
#else
inline void tsan_reader_done() {}
inline void tsan_grace_done() {}
#endif

inline void read_lock() { urcu_bp_read_lock(); }
inline void read_unlock() {
  tsan_reader_done();
  urcu_bp_read_unlock();
}
// Wait until every reader that might see the old state has left its read section.
inline void synchronize() {
  urcu_bp_synchronize_rcu();
  tsan_grace_done();
}

}  // namespace sparsemem::rcu
