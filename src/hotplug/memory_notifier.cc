// The memory notifier chain (register_memory_notifier / memory_notify, spec §11). Pure data
// structure; the owner serialises callers (the hotplug lock), as the kernel's blocking chain does.
#include <algorithm>

#include "sparsemem/memory_block.h"

namespace sparsemem {

const char* memory_action_name(MemoryAction a) {
  switch (a) {
    case MemoryAction::GoingOnline: return "MEM_GOING_ONLINE";
    case MemoryAction::Online: return "MEM_ONLINE";
    case MemoryAction::CancelOnline: return "MEM_CANCEL_ONLINE";
    case MemoryAction::GoingOffline: return "MEM_GOING_OFFLINE";
    case MemoryAction::Offline: return "MEM_OFFLINE";
    case MemoryAction::CancelOffline: return "MEM_CANCEL_OFFLINE";
  }
  return "?";
}

NotifierId MemoryNotifierChain::add(MemoryNotifierFn fn, int priority, bool sees_memmap) {
  const NotifierId id(m_next_id++);
  // notifier_chain_register(): in front of the first entry with a lower priority.
  auto pos = std::find_if(m_entries.begin(), m_entries.end(), [&](const Entry& e) { return e.priority < priority; });
  m_entries.insert(pos, Entry{id, priority, std::move(fn), sees_memmap});
  return id;
}

bool MemoryNotifierChain::remove(NotifierId id) {
  auto it = std::find_if(m_entries.begin(), m_entries.end(), [&](const Entry& e) { return e.id == id; });
  if (it == m_entries.end()) return false;
  m_entries.erase(it);
  return true;
}

bool MemoryNotifierChain::any_sees_memmap() const {
  return std::any_of(m_entries.begin(), m_entries.end(), [](const Entry& e) { return e.sees_memmap; });
}

int MemoryNotifierChain::call(MemoryAction action, const MemoryNotify& arg) const {
  int ret = NOTIFY_DONE;
  for (const Entry& e : m_entries) {
    ret = e.fn(action, arg);
    if (ret & NOTIFY_STOP_MASK) break;
  }
  return ret;
}

}  // namespace sparsemem
