// The README's picture is the program's output: docs/img/d3_devdax_sections_32_47.svg must be what
// `sparsemem map` draws today for trace d3's machine after its first devdax reconfigure.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/cli.h"

namespace sparsemem {
namespace {

namespace stdfs = std::filesystem;

std::string read_file(const stdfs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Scenario: `sparsemem map --scenario d3 --step 3 --range 0x100000000-0x17fffffff --svg -`.
// Expect: byte for byte the SVG the README shows, and the README links it.
TEST(Readme, map_svg_is_the_programs_output) {
  if (!testing::cli_built()) GTEST_SKIP() << "the sparsemem program is not built here";
  const stdfs::path root = stdfs::path(SPM_TEST_DATA).parent_path().parent_path();
  const testing::CliRun r = testing::run_cli_piped(
      "map --scenario " + (root / "tests/scenarios/d3_pmem_in_early_section.scn").string() +
      " --step 3 --range 0x100000000-0x17fffffff --svg - --color=never");
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.out, read_file(root / "docs/img/d3_devdax_sections_32_47.svg"));
  EXPECT_NE(read_file(root / "README.md").find("(docs/img/d3_devdax_sections_32_47.svg)"), std::string::npos);
}

}  // namespace
}  // namespace sparsemem
