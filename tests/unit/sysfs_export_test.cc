// Tests for export_tree() (vfs.h) with the real util-linux lsmem: the model's sysfs exported as a
// sysroot must give the same lsmem output as a sysroot written from the oracle trace's block list.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "sparsemem/acpi_memory.h"
#include "sparsemem/platform.h"
#include "sparsemem/views.h"
#include "support/machines.h"

namespace sparsemem {
namespace {

namespace stdfs = std::filesystem;

struct TempDir {
  stdfs::path path;
  TempDir() {
    std::string tmpl = (stdfs::temp_directory_path() / "spm-sysroot-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    stdfs::remove_all(path, ec);
  }
};

std::optional<std::string> run(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return std::nullopt;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) return std::nullopt;
  return out;
}

bool have_lsmem() { return run("lsmem --version 2>/dev/null").has_value(); }

void put(const stdfs::path& p, const std::string& content) {
  stdfs::create_directories(p.parent_path());
  std::ofstream(p) << content;
}

// The trace's view of /sys/devices/system/memory at one step, written the way sysfs shows it: the
// reference lsmem reads. Independent of the model: every value comes from the trace.
void write_trace_sysroot(const nlohmann::json& snap, const stdfs::path& root) {
  const stdfs::path mem = root / "sys/devices/system/memory";
  put(mem / "block_size_bytes", snap["memory_global"]["block_size_bytes"].get<std::string>() + "\n");
  for (const auto& b : snap["memory_blocks"]) {
    const stdfs::path d = mem / ("memory" + std::to_string(b["id"].get<int>()));
    for (const char* attr : {"state", "phys_index", "valid_zones", "removable", "phys_device"})
      if (b[attr].is_string()) put(d / attr, b[attr].get<std::string>() + "\n");
    for (const auto& node : b["nodes"]) stdfs::create_directories(d / node.get<std::string>());
  }
}

// The model booted on the trace's QEMU command line, cold-plugged DIMMs added as acpi_memhotplug
// adds them at boot, exported with export_tree().
void write_model_sysroot(const nlohmann::json& trace, const stdfs::path& root) {
  auto platform = platform_from_qemu(trace["qemu_cmdline"].get<std::vector<std::string>>(),
                                     trace["guest_cmdline"].get<std::string>());
  ASSERT_TRUE(platform) << platform.error().message;
  auto m = Machine::boot(*platform, kLinux61);
  ASSERT_TRUE(m) << m.error().message;
  AcpiMemoryHotplug acpi(*platform);
  ASSERT_TRUE(acpi.add_cold_plugged(**m, *platform));
  GuestFsContext ctx;
  ctx.machine = m->get();
  ctx.acpi = &acpi;
  ctx.cpu_nodes = {0};
  const VirtualFs fs = make_guest_fs(std::move(ctx));
  for (const char* path : {"/sys/devices/system/memory", "/sys/devices/system/node"}) {
    auto r = export_tree(fs, path, root.string());
    ASSERT_TRUE(r) << r.error().message;
  }
}

// Scenario: boot the machines of a_baseline (RAM only), b_dimm_coldplug (a cold-plugged DIMM,
// offline) and f_errors (a DIMM onlined by memhp_default_state=online); export the model's sysfs.
// Expect: lsmem's block table (every block, with node and zones) and its summary equal what
// lsmem prints for the trace's step-0 block list.
TEST(SysfsExport, lsmem_on_the_export_equals_lsmem_on_the_trace) {
  if (!have_lsmem()) GTEST_SKIP() << "util-linux lsmem is not installed";
  for (const char* name : {"a_baseline", "b_dimm_coldplug", "f_errors"}) {
    SCOPED_TRACE(name);
    const nlohmann::json trace = testing::load_trace(name);
    TempDir model, oracle;
    write_model_sysroot(trace, model.path);
    write_trace_sysroot(trace["steps"][0]["snapshot"], oracle.path);
    for (const char* opts : {"", " -a -o RANGE,SIZE,STATE,REMOVABLE,BLOCK,NODE,ZONES"}) {
      SCOPED_TRACE(opts);
      const auto want = run("lsmem --sysroot " + oracle.path.string() + opts);
      const auto got = run("lsmem --sysroot " + model.path.string() + opts);
      ASSERT_TRUE(want.has_value());
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(*got, *want);
      EXPECT_NE(want->find("Memory block size:"), std::string::npos);
    }
  }
}

// Scenario: export a path the tree does not have, and into a host directory that cannot be
// created. Expect: -ENOENT and -EIO naming the host path; nothing is written for the missing path.
TEST(SysfsExport, errors) {
  auto m = testing::boot_or_die([] {
    MachineConfig cfg;
    cfg.memory = testing::pc_4160m_map();
    return cfg;
  }());
  ASSERT_NE(m, nullptr);
  GuestFsContext ctx;
  ctx.machine = m.get();
  const VirtualFs fs = make_guest_fs(std::move(ctx));
  TempDir dir;
  auto missing = export_tree(fs, "/sys/devices/system/nothing", dir.path.string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errno::NoEnt);
  EXPECT_TRUE(stdfs::is_empty(dir.path));
  put(dir.path / "file", "x");
  auto blocked = export_tree(fs, "/sys/devices/system/memory", (dir.path / "file").string());
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, Errno::Io);
  EXPECT_NE(blocked.error().message.find((dir.path / "file").string()), std::string::npos);
}

}  // namespace
}  // namespace sparsemem
