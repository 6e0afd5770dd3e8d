// Machine hotplug state: boot memory blocks (spec §4.1.7), valid_zones, parameters, groups, notifiers
// with error injection, the arm64 boot-memory veto and online page callbacks. Entry points take the lock.
#include <algorithm>

#include "sparsemem/machine.h"

namespace sparsemem {

void Machine::create_boot_blocks_locked(const std::vector<MemRange>& memory) {
  m_block_size = probe_memory_block_size(m_arch, m_arch.pfn_to_phys(m_max_pfn).value(), m_config.hypervisor,
                                         m_config.platform_block_size);
  if (m_arch.family == ArchFamily::X86_64)
    m_log.log(LogLevel::Info, "x86/mm: Memory block size: {}MB", m_block_size >> 20);
  const uint64_t sections_per_block = m_block_size / m_arch.section_size();
  const NrPages n(m_block_size >> m_arch.page_shift);
  m_blocks.reset(m_arch.nr_mem_sections() / sections_per_block, n);
  m_node_has_cpus.assign(m_nodes.size(), false);
  for (const Node& node : m_nodes) m_node_has_cpus[node.nid] = node.online;
  for (const SectionNr nr : m_sections->present_sections()) {
    const BlockId id(nr.value() / sections_per_block);
    if (m_blocks.find(id)) continue;
    // Linked to every node with memory in the block; the zone is the single populated zone of the
    // first node intersecting the block, and none once a second node links (spec §4.1 step 7).
    const Pfn start = m_blocks.block_start_pfn(id);
    MemoryBlock b;
    b.id = id;
    b.state = MemoryBlockState::Online;
    b.boot = true;
    unsigned linked = 0;
    for (const Node& node : m_nodes) {
      bool hit = false;
      for (const MemRange& r : memory)
        hit |= r.nid == node.nid && PfnRange{r.start, r.end - r.start}.overlaps(PfnRange{start, n});
      if (!hit) continue;
      if (++linked == 1) {
        unsigned zones = 0;
        for (const Zone& z : node.zones)
          if (z.populated() && z.intersects(start, n)) {
            ++zones;
            b.zone = z.type;
          }
        if (zones != 1) b.zone.reset();
      } else {
        b.zone.reset();
      }
      b.nid = node.nid;
    }
    // Block ids of present sections are below NR_MEM_SECTIONS / sections_per_block by construction.
    SPM_CHECK(m_blocks.insert(b).has_value(), "boot block id out of range");
  }
  // arm64 (arch/arm64/mm/mmu.c, an early initcall): boot memory must never go offline. A range
  // holding an early section is vetoed at MEM_GOING_OFFLINE (-EPERM) and reported at MEM_OFFLINE.
  // The callback runs inside memory_notify(), under the hotplug lock.
  if (m_arch.family == ArchFamily::Arm64)
    m_memory_chain.add(
        [this](MemoryAction action, const MemoryNotify& arg) {
          if (action != MemoryAction::GoingOffline && action != MemoryAction::Offline) return NOTIFY_OK;
          for (Pfn pfn = arg.start_pfn; pfn < arg.start_pfn + arg.nr_pages; pfn += m_arch.pages_per_section()) {
            const MemSection* ms = m_sections->find(m_arch.pfn_to_section_nr(pfn));
            if (!ms || !ms->flags().has(SectionFlag::Early)) continue;
            const uint64_t start = m_arch.pfn_to_phys(pfn).value(), end = start + m_arch.section_size();
            if (action == MemoryAction::GoingOffline) {
              m_log.log(LogLevel::Warn, "Boot memory [{:x} {:x}] offlining attempted", start, end);
              return NOTIFY_BAD;
            }
            m_log.log(LogLevel::Err, "Boot memory [{:x} {:x}] offlined", start, end);
            return NOTIFY_DONE;
          }
          return NOTIFY_OK;
        },
        0, /*sees_memmap=*/false);
}

ZoneChoiceContext Machine::zone_choice_context() const {
  return ZoneChoiceContext{
      m_nodes, m_groups, m_mhp, m_arch.pages_per_section(), [this](Pfn pfn) -> std::optional<ZoneType> {
        if (!m_sections->pfn_is_online(pfn)) return std::nullopt;
        const Result<Page> p = m_vmemmap->read_page(pfn);
        if (!p) return std::nullopt;
        return p->zone();
      }};
}

NrPages Machine::totalram_pages() const {
  NrPages total(0);
  for (const Node& n : m_nodes)
    for (const Zone& z : n.zones) total += z.managed_pages;
  return total;
}

Result<std::string> Machine::valid_zones(BlockId id) const {
  HotplugGuard g(m_hotplug_lock);
  const MemoryBlock* mem = m_blocks.find(id);
  if (!mem) return fail(Errno::NoEnt, fmt::format("no memory block {}", id.value()));
  // An online block reports the zone recorded when it was onlined (or at boot), not a new choice.
  if (mem->state == MemoryBlockState::Online) return std::string(mem->zone ? zone_name(*mem->zone) : "none");
  const MemoryGroup* group = mem->group ? m_groups.find(*mem->group) : nullptr;
  const PfnRange r = m_blocks.block_range(id);
  return valid_zones_offline(zone_choice_context(), mem->nid, group, r.start, r.nr);
}

void Machine::set_auto_online_blocks(OnlineType type) {
  HotplugGuard g(m_hotplug_lock);
  m_mhp.auto_online_blocks = type;
}

void Machine::set_online_policy(OnlinePolicy policy) {
  HotplugGuard g(m_hotplug_lock);
  m_mhp.online_policy = policy;
}

void Machine::set_auto_movable_ratio(unsigned percent) {
  HotplugGuard g(m_hotplug_lock);
  m_mhp.auto_movable_ratio = percent;
}

void Machine::set_auto_movable_numa_aware(bool numa_aware) {
  HotplugGuard g(m_hotplug_lock);
  m_mhp.auto_movable_numa_aware = numa_aware;
}

Result<MemoryGroupId> Machine::register_static_memory_group(unsigned nid, NrPages max_pages) {
  HotplugGuard g(m_hotplug_lock);
  return m_groups.register_static(nid, max_pages);
}

Result<MemoryGroupId> Machine::register_dynamic_memory_group(unsigned nid, NrPages unit_pages) {
  HotplugGuard g(m_hotplug_lock);
  return m_groups.register_dynamic(nid, unit_pages, m_blocks.pages_per_block());
}

Result<void> Machine::unregister_memory_group(MemoryGroupId id) {
  HotplugGuard g(m_hotplug_lock);
  return m_groups.unregister(id);
}

NotifierId Machine::register_memory_notifier(MemoryNotifierFn fn, int priority, bool sees_memmap) {
  HotplugGuard g(m_hotplug_lock);
  return m_memory_chain.add(std::move(fn), priority, sees_memmap);
}

bool Machine::unregister_memory_notifier(NotifierId id) {
  HotplugGuard g(m_hotplug_lock);
  return m_memory_chain.remove(id);
}

Result<void> Machine::load_memory_notifier_error_inject() {
  HotplugGuard g(m_hotplug_lock);
  if (m_error_inject) return fail(Errno::Exist, "memory_notifier_error_inject is already loaded");
  m_injected_error.fill(0);
  // notifier_err_inject_callback(): a non-zero error for the action is logged and returned as a veto.
  // The callback runs under the hotplug lock (inside memory_notify), which it cannot name.
  m_error_inject = m_memory_chain.add(
      [this](MemoryAction action, const MemoryNotify&) {
        const int err = m_injected_error[static_cast<unsigned>(action)];
        if (!err) return NOTIFY_DONE;
        m_log.log(LogLevel::Info, "Injecting error ({}) to {}", err, memory_action_name(action));
        return notifier_from_errno(err);
      },
      0, /*sees_memmap=*/false);
  return {};
}

Result<void> Machine::set_memory_notifier_error(MemoryAction action, int error) {
  HotplugGuard g(m_hotplug_lock);
  if (!m_error_inject) return fail(Errno::NoEnt, "memory_notifier_error_inject is not loaded");
  if (action != MemoryAction::GoingOnline && action != MemoryAction::GoingOffline)
    return fail(Errno::Inval, fmt::format("no error file for {}", memory_action_name(action)));
  // The debugfs file accepts 0 and -MAX_ERRNO..-1 (errno_fops).
  if (error > 0 || error < -4095) return fail(Errno::Inval, fmt::format("{} is not a negative errno", error));
  m_injected_error[static_cast<unsigned>(action)] = error;
  return {};
}

Result<void> Machine::set_online_page_callback(OnlinePageCallback cb) {
  HotplugGuard g(m_hotplug_lock);
  if (!cb || m_online_page_cb) return fail(Errno::Inval, "an online page callback is already installed");
  m_online_page_cb = cb;
  return {};
}

Result<void> Machine::restore_online_page_callback(OnlinePageCallback cb) {
  HotplugGuard g(m_hotplug_lock);
  if (!cb || m_online_page_cb != cb) return fail(Errno::Inval, "not the installed online page callback");
  m_online_page_cb = nullptr;
  return {};
}

std::vector<BlockId> Machine::memory_blocks_in(PhysRange range) const {
  std::vector<BlockId> out;
  if (m_block_size == 0) return out;
  for (uint64_t id = range.start.value() / m_block_size; id <= range.last.value() / m_block_size; ++id)
    if (m_blocks.find(BlockId(id))) out.emplace_back(id);
  return out;
}

}  // namespace sparsemem
