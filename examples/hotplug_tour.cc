// The library API in one program (docs/api.md walks through it): boot a machine, hot-add a DIMM,
// online one block movable, store a page there, offline it (the page migrates), remove the DIMM.
#include <cstdio>
#include <cstdlib>

#include "sparsemem/machine.h"
#include "sparsemem/views.h"

using namespace sparsemem;

namespace {

// Operations return Result<T>: a value, or a kernel errno with the kernel's message.
template <class T>
T must(Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "%s: %.*s (%s)\n", what, static_cast<int>(errno_name(r.error().code).size()),
                 errno_name(r.error().code).data(), r.error().message.c_str());
    std::exit(1);
  }
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

void expect_clean(const Machine& m, const char* after) {
  const InvariantReport report = m.check();  // the one checker, as tests and the simulator run it
  if (!report.ok()) {
    std::fprintf(stderr, "invariants broken after %s:\n%s", after, report.to_string().c_str());
    std::exit(1);
  }
}

}  // namespace

int main() {
  // A 4 GiB x86-64 machine: RAM below the PCI hole and 1 GiB above 4 GiB, Linux 6.1 behaviour.
  MachineConfig cfg;
  cfg.memory.regions = {
      {PhysAddr(0x100000), 0xbff00000, 0, BootMemKind::Usable},
      {PhysAddr(0x100000000), 0x40000000, 0, BootMemKind::Usable},
  };
  std::unique_ptr<Machine> m = must(Machine::boot(cfg), "boot");
  expect_clean(*m, "boot");
  std::printf("booted: memory blocks of %llu MiB, max_pfn %#llx\n",
              static_cast<unsigned long long>(m->memory_block_size() >> 20),
              static_cast<unsigned long long>(m->max_pfn().value()));

  // A 1 GiB DIMM at 5 GiB: eight offline blocks, sections present with their memmap populated.
  const PhysAddr dimm(0x140000000);
  must(m->add_memory(0, dimm, 1ull << 30), "add_memory");
  const Pfn first = m->arch().phys_to_pfn(dimm);
  const BlockId block = m->memory_blocks().block_id_of(first);
  std::printf("added:  memory%llu valid_zones \"%s\", pfn_valid(%#llx)=%d, online page: %s\n",
              static_cast<unsigned long long>(block.value()), must(m->valid_zones(block), "valid_zones").c_str(),
              static_cast<unsigned long long>(first.value()), m->pfn_valid(first),
              m->pfn_to_online_page(first) ? "yes" : "no");

  // Online it movable, then place a user page there: a tag stands for the page's contents.
  must(m->memory_block_state_store(block, OnlineType::OnlineMovable), "online_movable");
  const Pfn stored = must(m->alloc_page_at(first + NrPages(100), Migratability::Movable, 0xC0FFEE), "alloc");
  std::printf("online: zone %s, tag 0xC0FFEE at pfn %#llx\n", zone_name(m->pfn_to_online_page(first)->zone()),
              static_cast<unsigned long long>(stored.value()));
  expect_clean(*m, "online");

  // Offlining migrates the movable page out of the block; nothing stored is lost.
  must(m->memory_block_state_store(block, OnlineType::Offline), "offline");
  const std::optional<Pfn> moved = m->page_of_tag(0xC0FFEE);
  std::printf("offline: tag 0xC0FFEE now at pfn %#llx, pfn_to_online_page(%#llx) is %s\n",
              static_cast<unsigned long long>(moved ? moved->value() : 0),
              static_cast<unsigned long long>(first.value()), m->pfn_to_online_page(first) ? "a page" : "NULL");
  if (!moved || m->memory_blocks().block_id_of(*moved) == block) return 1;

  // Removing offline memory frees its sections and memmap; the checker still agrees.
  must(m->remove_memory(dimm, 1ull << 30), "remove_memory");
  expect_clean(*m, "remove");
  std::printf("removed: pfn_valid(%#llx)=%d\n", static_cast<unsigned long long>(first.value()), m->pfn_valid(first));
  const std::string meminfo = render_meminfo(*m);
  std::printf("%s", meminfo.substr(0, meminfo.find('\n') + 1).c_str());
  return m->pfn_valid(first) ? 1 : 0;
}
