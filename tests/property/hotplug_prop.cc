// Property tests for memory hotplug: random add/online/offline/remove sequences, allocations and
// notifier injection against a reference model; checker every step, failures unchanged, no tag lost.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <ostream>
#include <variant>

#include "sparsemem/machine.h"
#include "support/hotplug.h"

namespace sparsemem {
namespace {

constexpr uint64_t kBlockPages = 32768;
constexpr uint64_t kBlockBytes = uint64_t{128} << 20;
constexpr uint64_t kFirstSlotBlock = 32;  // hot-add slots start at 4 GiB
constexpr unsigned kSlots = 6;

// ---- Operations (printable, so a shrunk counterexample reads as a test) -----------------------------

struct AddMemory {
  unsigned slot, nblocks;
  bool memmap_on_memory;
  unsigned nid;
};
struct RemoveMemory {
  unsigned add_index;
  bool first_block_only;
};
struct OfflineAndRemove {
  unsigned add_index;
};
struct OnlineBlock {
  unsigned block_index;  // into the existing blocks, in id order
  OnlineType type;
};
struct OfflineBlock {
  unsigned block_index;
};
struct AllocPage {
  ZoneType zone;
  bool movable;
};
struct AllocPageAt {
  unsigned block_index;
  uint64_t offset;  // pfn offset inside the block
  bool movable;
};
struct FreePage {
  unsigned tag_index;
};
struct InjectErrors {
  bool going_online, going_offline;
};
using Op = std::variant<AddMemory, RemoveMemory, OfflineAndRemove, OnlineBlock, OfflineBlock, AllocPage, AllocPageAt,
                        FreePage, InjectErrors>;

void showValue(const Op& op, std::ostream& os) {
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, AddMemory>)
          os << "AddMemory{slot " << o.slot << ", " << o.nblocks << " blocks, memmap_on_memory " << o.memmap_on_memory
             << ", nid " << o.nid << "}";
        else if constexpr (std::is_same_v<T, RemoveMemory>)
          os << "RemoveMemory{add " << o.add_index << (o.first_block_only ? ", first block" : "") << "}";
        else if constexpr (std::is_same_v<T, OfflineAndRemove>)
          os << "OfflineAndRemove{add " << o.add_index << "}";
        else if constexpr (std::is_same_v<T, OnlineBlock>)
          os << "OnlineBlock{" << o.block_index << ", " << online_type_name(o.type) << "}";
        else if constexpr (std::is_same_v<T, OfflineBlock>)
          os << "OfflineBlock{" << o.block_index << "}";
        else if constexpr (std::is_same_v<T, AllocPage>)
          os << "AllocPage{" << zone_name(o.zone) << (o.movable ? ", movable" : ", unmovable") << "}";
        else if constexpr (std::is_same_v<T, AllocPageAt>)
          os << "AllocPageAt{block " << o.block_index << " + " << o.offset << (o.movable ? ", movable" : ", unmovable")
             << "}";
        else if constexpr (std::is_same_v<T, FreePage>)
          os << "FreePage{" << o.tag_index << "}";
        else
          os << "InjectErrors{online " << o.going_online << ", offline " << o.going_offline << "}";
      },
      op);
}

rc::Gen<Op> gen_op() {
  using namespace rc;
  return gen::weightedOneOf<Op>({
      {3, gen::map(gen::tuple(gen::inRange(0u, kSlots), gen::inRange(1u, 4u), gen::arbitrary<bool>(), gen::inRange(0u, 2u)),
               [](auto t) { return Op{AddMemory{std::get<0>(t), std::get<1>(t), std::get<2>(t), std::get<3>(t)}}; })},
      {2, gen::map(gen::tuple(gen::inRange(0u, 8u), gen::arbitrary<bool>()),
                   [](auto t) { return Op{RemoveMemory{std::get<0>(t), std::get<1>(t)}}; })},
      {1, gen::map(gen::inRange(0u, 8u), [](unsigned i) { return Op{OfflineAndRemove{i}}; })},
      {4, gen::map(gen::tuple(gen::inRange(0u, 16u),
                              gen::element(OnlineType::Online, OnlineType::OnlineKernel, OnlineType::OnlineMovable)),
                   [](auto t) { return Op{OnlineBlock{std::get<0>(t), std::get<1>(t)}}; })},
      {4, gen::map(gen::inRange(0u, 16u), [](unsigned i) { return Op{OfflineBlock{i}}; })},
      {1, gen::map(gen::tuple(gen::element(ZoneType::DMA32, ZoneType::Normal, ZoneType::Movable), gen::arbitrary<bool>()),
                   [](auto t) { return Op{AllocPage{std::get<0>(t), std::get<1>(t)}}; })},
      {4, gen::map(gen::tuple(gen::inRange(0u, 16u), gen::inRange<uint64_t>(0, kBlockPages), gen::arbitrary<bool>()),
                   [](auto t) { return Op{AllocPageAt{std::get<0>(t), std::get<1>(t), std::get<2>(t)}}; })},
      {2, gen::map(gen::inRange(0u, 16u), [](unsigned i) { return Op{FreePage{i}}; })},
      {1, gen::map(gen::tuple(gen::arbitrary<bool>(), gen::arbitrary<bool>()),
                   [](auto t) { return Op{InjectErrors{std::get<0>(t), std::get<1>(t)}}; })},
  });
}

// ---- Reference model ------------------------------------------------------------------------------

struct RefBlock {
  bool online = false;
  std::optional<ZoneType> zone;
  bool vmemmap = false;
  unsigned nid = 0;
  bool boot = false;
  bool holes = false;
};
struct RefTag {
  bool movable;
  uint64_t block;  // where an unmovable page stays for ever
  Pfn pfn;
};
struct RefAdd {
  uint64_t first_block, nblocks;
};

struct Reference {
  std::map<uint64_t, RefBlock> blocks;
  std::map<uint64_t, RefTag> tags;
  std::vector<RefAdd> adds;
  bool inject_online = false, inject_offline = false;
  uint64_t next_tag = 1;

  std::vector<uint64_t> ids() const {
    std::vector<uint64_t> out;
    for (const auto& [id, b] : blocks) out.push_back(id);
    return out;
  }
  bool has_unmovable(uint64_t block) const {
    for (const auto& [t, r] : tags)
      if (!r.movable && r.block == block) return true;
    return false;
  }
  bool zone_populated(unsigned nid, ZoneType z) const {
    for (const auto& [id, b] : blocks)
      if (b.online && b.zone == z && b.nid == nid) return true;
    return false;
  }
  // Why offlining `id` fails, in the kernel's order, or nullopt.
  std::optional<Errno> offline_error(uint64_t id) const {
    const RefBlock& b = blocks.at(id);
    if (b.holes) return Errno::Inval;
    if (has_unmovable(id)) return Errno::Busy;
    if (inject_offline) return Errno::NoMem;
    return std::nullopt;
  }
};

// x86-64 with RAM [16 MiB, 256 MiB): boot block 0 has a hole below 16 MiB, block 1 is whole.
std::unique_ptr<Machine> boot_small() {
  MachineConfig c;
  c.memory.regions = {{PhysAddr(16 << 20), (256 - 16) << 20, 0, BootMemKind::Usable}};
  c.hotplug.memmap_on_memory = true;
  auto m = Machine::boot(c);
  RC_ASSERT(m.has_value());
  return std::move(*m);
}

void expect_matches(const Machine& m, const Reference& ref) {
  const InvariantReport report = m.check();
  RC_ASSERT(report.ok());
  std::vector<uint64_t> ids;
  m.memory_blocks().for_each([&](const MemoryBlock& b) {
    ids.push_back(b.id.value());
    const RefBlock& r = ref.blocks.at(b.id.value());
    RC_ASSERT((b.state == MemoryBlockState::Online) == r.online);
    RC_ASSERT(b.zone == r.zone);
    RC_ASSERT(b.nid == r.nid);
    RC_ASSERT((b.nr_vmemmap_pages.value() == 512) == r.vmemmap);
  });
  RC_ASSERT(ids == ref.ids());
  // Zone counters from the reference: online blocks contribute whole blocks (boot block 0 its
  // 28672 RAM pages); vmemmap pages are present but not managed.
  std::map<std::pair<unsigned, ZoneType>, std::pair<uint64_t, uint64_t>> want;
  for (const auto& [id, b] : ref.blocks) {
    if (!b.online || !b.zone) continue;
    const uint64_t pages = b.holes ? kBlockPages - 4096 : kBlockPages;
    auto& w = want[{b.nid, *b.zone}];
    w.first += pages;
    w.second += pages - (b.vmemmap ? 512 : 0);
  }
  for (const Node& n : m.nodes())
    for (ZoneType z : {ZoneType::DMA, ZoneType::DMA32, ZoneType::Normal, ZoneType::Movable}) {
      const auto w = want.count({n.nid, z}) ? want.at({n.nid, z}) : std::pair<uint64_t, uint64_t>{};
      RC_ASSERT(n.zone(z).present_pages.value() == w.first);
      RC_ASSERT(n.zone(z).managed_pages.value() == w.second);
    }
  // No content tag lost; unmovable pages never move; movable ones live in online memory.
  RC_ASSERT(m.nr_tagged_pages() == ref.tags.size());
  for (const auto& [tag, r] : ref.tags) {
    const std::optional<Pfn> pfn = m.page_of_tag(tag);
    RC_ASSERT(pfn.has_value());
    if (!r.movable) RC_ASSERT(*pfn == r.pfn);
    RC_ASSERT(m.pfn_to_online_page(*pfn) != nullptr);
    RC_ASSERT(m.vmemmap().read_page(*pfn)->private_ == tag);
  }
}

// Scenario: up to 30 random operations on a 240 MiB x86 machine with 6 hot-add slots at 4 GiB
// (memmap_on_memory available), notifier injection loaded. Expect: each operation succeeds or fails
// exactly as the reference predicts, with the predicted errno; a failure changes nothing; after
// every step the checker is clean, blocks/zones/counters match the reference and every tag lives.
RC_GTEST_PROP(HotplugProperty, random_sequences_match_the_reference, ()) {
  const auto ops = *rc::gen::resize(30, rc::gen::container<std::vector<Op>>(gen_op()));
  auto m = boot_small();
  RC_ASSERT(m->load_memory_notifier_error_inject().has_value());
  Reference ref;
  ref.blocks[0] = RefBlock{true, ZoneType::DMA32, false, 0, true, true};
  ref.blocks[1] = RefBlock{true, ZoneType::DMA32, false, 0, true, false};
  expect_matches(*m, ref);

  for (const Op& op : ops) {
    std::vector<uint64_t> tag_list;
    for (const auto& [t, r] : ref.tags) tag_list.push_back(t);
    const std::string before = testing::hotplug_snapshot(*m, tag_list);
    std::optional<Errno> want_err;  // the reference's prediction
    Result<void> got;
    std::visit(
        [&](const auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, AddMemory>) {
            const uint64_t first = kFirstSlotBlock + o.slot;
            bool taken = false;
            for (uint64_t b = first; b < first + o.nblocks; ++b) taken |= ref.blocks.count(b) != 0;
            const MhpFlags flags = o.memmap_on_memory ? MHP_MEMMAP_ON_MEMORY : MHP_NONE;
            got = m->add_memory(o.nid, PhysAddr(first * kBlockBytes), o.nblocks * kBlockBytes, flags);
            if (taken)
              want_err = Errno::Exist;
            else if (o.memmap_on_memory && o.nblocks != 1)
              want_err = Errno::Inval;
            if (!want_err) {
              for (uint64_t b = first; b < first + o.nblocks; ++b)
                ref.blocks[b] = RefBlock{false, std::nullopt, o.memmap_on_memory, o.nid, false, false};
              ref.adds.push_back({first, o.nblocks});
            }
          } else if constexpr (std::is_same_v<T, RemoveMemory> || std::is_same_v<T, OfflineAndRemove>) {
            const bool offline_first = std::is_same_v<T, OfflineAndRemove>;
            bool first_only = false;
            if constexpr (std::is_same_v<T, RemoveMemory>) first_only = o.first_block_only;
            RefAdd add{kFirstSlotBlock + kSlots, 1};  // never added: -EINVAL
            if (o.add_index < ref.adds.size()) add = ref.adds[o.add_index];
            const uint64_t n = first_only ? 1 : add.nblocks;
            const PhysAddr start(add.first_block * kBlockBytes);
            got = offline_first ? m->offline_and_remove_memory(start, n * kBlockBytes)
                                : m->remove_memory(start, n * kBlockBytes);
            if (o.add_index >= ref.adds.size()) {
              // offline_and_remove_memory skips missing blocks, then remove_memory refuses them.
              want_err = Errno::Inval;
            } else {
              for (uint64_t b = add.first_block; b < add.first_block + n && !want_err; ++b) {
                const RefBlock& rb = ref.blocks.at(b);
                if (offline_first && rb.online) want_err = ref.offline_error(b);
                if (!offline_first && rb.online) want_err = Errno::Busy;
              }
              if (!want_err) {
                for (uint64_t b = add.first_block; b < add.first_block + n; ++b) ref.blocks.erase(b);
                if (n == add.nblocks)
                  ref.adds.erase(ref.adds.begin() + o.add_index);
                else
                  ref.adds[o.add_index] = {add.first_block + 1, add.nblocks - 1};
              }
            }
          } else if constexpr (std::is_same_v<T, OnlineBlock>) {
            const std::vector<uint64_t> ids = ref.ids();
            const uint64_t id = ids[o.block_index % ids.size()];
            got = m->memory_block_state_store(BlockId(id), o.type);
            RefBlock& rb = ref.blocks.at(id);
            if (rb.online)
              want_err = Errno::Inval;
            else if (ref.inject_online)
              want_err = Errno::NoMem;
            if (!want_err && got) {
              rb.online = true;
              // OnlineMovable is always Movable; a hot-added kernel block is Normal; MMOP_ONLINE and a
              // boot block's kernel zone depend on the spans, so the machine's choice is recorded
              // after checking it is a possible one.
              const ZoneType z = *m->memory_blocks().find(BlockId(id))->zone;
              if (o.type == OnlineType::OnlineMovable) RC_ASSERT(z == ZoneType::Movable);
              if (o.type == OnlineType::OnlineKernel) RC_ASSERT(z != ZoneType::Movable);
              if (o.type == OnlineType::OnlineKernel && !rb.boot) RC_ASSERT(z == ZoneType::Normal);
              rb.zone = z;
            }
          } else if constexpr (std::is_same_v<T, OfflineBlock>) {
            const std::vector<uint64_t> ids = ref.ids();
            const uint64_t id = ids[o.block_index % ids.size()];
            got = m->memory_block_state_store(BlockId(id), OnlineType::Offline);
            RefBlock& rb = ref.blocks.at(id);
            want_err = rb.online ? ref.offline_error(id) : std::optional<Errno>(Errno::Inval);
            if (!want_err) {
              rb.online = false;
              rb.zone.reset();
            }
          } else if constexpr (std::is_same_v<T, AllocPage>) {
            const uint64_t tag = ref.next_tag++;
            auto pfn = m->alloc_page(0, o.zone, o.movable ? Migratability::Movable : Migratability::Unmovable, tag);
            if (!pfn) got = tl::unexpected(pfn.error());
            if (!o.movable && o.zone == ZoneType::Movable)
              want_err = Errno::Inval;
            else if (!ref.zone_populated(0, o.zone))
              want_err = Errno::NoMem;
            if (!want_err && pfn) ref.tags[tag] = RefTag{o.movable, pfn->value() / kBlockPages, *pfn};
          } else if constexpr (std::is_same_v<T, AllocPageAt>) {
            const std::vector<uint64_t> ids = ref.ids();
            const uint64_t id = ids[o.block_index % ids.size()];
            const Pfn pfn(id * kBlockPages + o.offset);
            const uint64_t tag = ref.next_tag++;
            auto r = m->alloc_page_at(pfn, o.movable ? Migratability::Movable : Migratability::Unmovable, tag);
            if (!r) got = tl::unexpected(r.error());
            const RefBlock& rb = ref.blocks.at(id);
            bool taken = false;
            for (const auto& [t, rt] : ref.tags) taken |= m->page_of_tag(t) == pfn;
            if (!rb.online || (rb.holes && o.offset < 4096))
              want_err = Errno::Inval;
            else if (!o.movable && rb.zone == ZoneType::Movable)
              want_err = Errno::Inval;
            else if (taken || (rb.vmemmap && o.offset < 512))
              want_err = Errno::Busy;
            if (!want_err) ref.tags[tag] = RefTag{o.movable, id, pfn};
          } else if constexpr (std::is_same_v<T, FreePage>) {
            if (ref.tags.empty()) {
              got = m->free_page(0);
              want_err = Errno::NoEnt;
            } else {
              auto it = std::next(ref.tags.begin(), o.tag_index % ref.tags.size());
              got = m->free_page(it->first);
              ref.tags.erase(it);
            }
          } else {
            RC_ASSERT(m->set_memory_notifier_error(MemoryAction::GoingOnline, o.going_online ? -12 : 0).has_value());
            RC_ASSERT(m->set_memory_notifier_error(MemoryAction::GoingOffline, o.going_offline ? -12 : 0).has_value());
            ref.inject_online = o.going_online;
            ref.inject_offline = o.going_offline;
          }
        },
        op);
    if (want_err) {
      RC_ASSERT(!got.has_value());
      RC_ASSERT(got.error().code == *want_err);
      RC_ASSERT(testing::hotplug_snapshot(*m, tag_list) == before);
    } else {
      RC_ASSERT(got.has_value());
    }
    expect_matches(*m, ref);
  }
}

}  // namespace
}  // namespace sparsemem
