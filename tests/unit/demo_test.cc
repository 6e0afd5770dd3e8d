// Tests for `sparsemem demo`, the README's first run, through the program itself: exit status, colour
// rules (pipe, --color, NO_COLOR on a terminal), what each kernel shows, one screen per step, and
// that the excerpt README.md quotes is the program's actual output.
#include <gtest/gtest.h>

#include "support/cli.h"

#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace sparsemem {
namespace {

namespace stdfs = std::filesystem;

using testing::cli_built;
using Ran = testing::CliRun;

// The demo's promise (kDemoMaxBlockLines in cmd_demo.cc): every block fits a 24-line terminal.
constexpr size_t kMaxBlockLines = 24;

Ran run_piped(const std::string& args, const std::string& env = "") { return testing::run_cli_piped(args, env); }
Ran run_on_terminal(bool no_color) { return testing::run_cli_on_terminal({"demo"}, no_color); }

bool has_escape(const std::string& s) { return s.find('\x1b') != std::string::npos; }

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The blocks of the output: the text before the first heading, then one per "== " heading, each
// without the blank lines that separate it from the next.
std::vector<std::string> blocks_of(const std::string& out) {
  std::vector<std::string> blocks(1);
  for (const std::string& l : lines_of(out)) {
    if (l.starts_with("== ")) blocks.emplace_back();
    blocks.back() += l + "\n";
  }
  for (std::string& b : blocks)
    while (b.ends_with("\n\n")) b.pop_back();
  return blocks;
}

std::vector<std::string> blocks_of(const std::string& out, const std::string& heading_prefix) {
  std::vector<std::string> picked;
  for (const std::string& b : blocks_of(out))
    if (b.starts_with(heading_prefix)) picked.push_back(b);
  return picked;
}

class DemoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cli_built()) GTEST_SKIP() << "the sparsemem program is not built here";
  }
  // One run shared by the tests that only read the plain output.
  static const Ran& plain() {
    static const Ran r = run_piped("demo");
    return r;
  }
};

TEST_F(DemoTest, piped_output_is_plain_and_the_demo_exits_0) {
  EXPECT_EQ(plain().status, 0);
  EXPECT_FALSE(has_escape(plain().out));
  EXPECT_NE(plain().out.find("== summary"), std::string::npos) << plain().out;
}

TEST_F(DemoTest, color_always_colours_a_pipe_and_never_keeps_it_plain) {
  const Ran always = run_piped("demo --color=always");
  EXPECT_EQ(always.status, 0);
  EXPECT_TRUE(has_escape(always.out));
  const Ran never = run_piped("demo --color=never");
  EXPECT_FALSE(has_escape(never.out));
  EXPECT_EQ(never.out, plain().out);
}

TEST_F(DemoTest, a_terminal_gets_colour_unless_NO_COLOR_is_set) {
  const Ran tty = run_on_terminal(false);
  EXPECT_EQ(tty.status, 0);
  EXPECT_TRUE(has_escape(tty.out));
  const Ran no_color = run_on_terminal(true);
  EXPECT_EQ(no_color.status, 0);
  EXPECT_FALSE(has_escape(no_color.out));
  EXPECT_NE(no_color.out.find("== summary"), std::string::npos);
}

TEST_F(DemoTest, the_output_is_deterministic) { EXPECT_EQ(run_piped("demo").out, plain().out); }

TEST_F(DemoTest, linux_61_is_clean_after_every_step) {
  const auto blocks = blocks_of(plain().out, "== linux-6.1, step ");
  ASSERT_EQ(blocks.size(), 4u) << plain().out;
  for (const std::string& b : blocks) {
    EXPECT_NE(b.find("\nchecker: clean\n"), std::string::npos) << b;
    EXPECT_EQ(b.find("fault"), std::string::npos) << b;
  }
}

TEST_F(DemoTest, seed004_legacy_shows_the_violations_and_the_walker_oops) {
  const auto blocks = blocks_of(plain().out, "== seed004-legacy, step ");
  ASSERT_EQ(blocks.size(), 4u) << plain().out;
  EXPECT_NE(blocks[0].find("\nchecker: clean\n"), std::string::npos) << blocks[0];
  for (size_t i = 1; i < blocks.size(); ++i) {
    EXPECT_NE(blocks[i].find("\nchecker: 33 violation(s)\n"), std::string::npos) << blocks[i];
    EXPECT_NE(blocks[i].find("  INV-X-1 x32, first: "), std::string::npos) << blocks[i];
    EXPECT_NE(blocks[i].find("  INV-PGMAP-3 x1, first: ZONE_DEVICE pfn 0x144000 is online"), std::string::npos);
  }
  // The reconfigure leaves 0xFD in the info block's descriptors; kpageflags follows one as compound_head.
  const std::string gpf = "general protection fault, probably for non-canonical address 0xfdfdfdfdfdfdfdfc";
  EXPECT_EQ(blocks[1].find(gpf), std::string::npos) << blocks[1];
  EXPECT_NE(blocks[2].find(gpf), std::string::npos) << blocks[2];
  EXPECT_NE(blocks[3].find(gpf), std::string::npos) << blocks[3];
}

TEST_F(DemoTest, no_pse_shows_the_fault_in_memmap_init) {
  const Ran r = run_piped("demo --no-pse");
  EXPECT_EQ(r.status, 0);
  const auto now = blocks_of(r.out, "== linux-6.1, step ");
  ASSERT_EQ(now.size(), 4u) << r.out;
  for (const std::string& b : now) EXPECT_NE(b.find("\nchecker: clean\n"), std::string::npos) << b;
  const auto old = blocks_of(r.out, "== seed004-legacy, step ");
  ASSERT_EQ(old.size(), 4u) << r.out;
  EXPECT_NE(old[2].find("kernel: BUG: unable to handle page fault for address: ffffea0005100080"), std::string::npos)
      << old[2];
  EXPECT_NE(old[2].find("INV-SEC-3 x32"), std::string::npos) << old[2];
  for (const std::string& b : blocks_of(r.out)) EXPECT_LE(lines_of(b).size(), kMaxBlockLines) << b;
}

TEST_F(DemoTest, every_block_fits_one_screen) {
  const auto blocks = blocks_of(plain().out);
  ASSERT_EQ(blocks.size(), 1u + 8u + 1u);  // introduction, 2 x 4 steps, summary
  for (const std::string& b : blocks) EXPECT_LE(lines_of(b).size(), kMaxBlockLines) << b;
}

// A document quotes the demo's output in the code block whose first line is `command`; lines of
// "..." stand for output left out. Each quoted piece must start a line of `out`, in order. Returns
// how many lines the document quotes.
size_t expect_quoted(const std::string& doc, const std::string& command, const std::string& out) {
  std::ifstream in(stdfs::path(SPM_TEST_DATA) / ".." / ".." / doc);
  EXPECT_TRUE(in) << doc << " not found next to tests/";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::vector<std::string> text = lines_of(ss.str());
  size_t at = 0;
  while (at < text.size() && text[at] != command) ++at;
  if (at == text.size() || at == 0 || text[at - 1] != "```") {
    ADD_FAILURE() << doc << " has no code block starting with '" << command << "'";
    return 0;
  }
  std::vector<std::string> pieces(1);
  size_t quoted = 0;
  for (++at; at < text.size() && text[at] != "```"; ++at) {
    if (text[at] == "...") {
      pieces.emplace_back();
      continue;
    }
    pieces.back() += text[at] + "\n";
    ++quoted;
  }
  size_t pos = 0;
  for (const std::string& piece : pieces) {
    if (piece.empty()) continue;
    size_t found = out.find(piece, pos);
    while (found != std::string::npos && found != 0 && out[found - 1] != '\n') found = out.find(piece, found + 1);
    if (found == std::string::npos) {
      ADD_FAILURE() << doc << " quotes text `" << command << "` does not print (at or after offset " << pos << "):\n"
                    << piece;
      return quoted;
    }
    pos = found + piece.size();
  }
  return quoted;
}

// This keeps the README's first-run excerpt true.
TEST_F(DemoTest, the_readme_quotes_the_actual_output) {
  EXPECT_GE(expect_quoted("README.md", "$ scripts/run", plain().out), 20u)
      << "the README should show a real part of the demo";
}

TEST_F(DemoTest, the_guide_quotes_the_actual_no_pse_output) {
  EXPECT_GE(expect_quoted("docs/guide.md", "$ sparsemem demo --no-pse", run_piped("demo --no-pse").out), 20u);
}

}  // namespace
}  // namespace sparsemem
