// Tests for include/sparsemem/vfs.h: path lookup, kernfs's open rules (EACCES without a show or
// store method, no file creation), sorted listings and links, on a small hand-built tree.
#include "sparsemem/vfs.h"

#include <gtest/gtest.h>

namespace sparsemem {
namespace {

// /a/ro (0444 "x\n"), /a/rw (0644), /a/wo (0200), /a/link -> ../b, /b/ (dynamic: n1, n10, n2).
struct Tree {
  std::string rw_value = "0\n";
  std::vector<std::string> written;
  VirtualFs fs{FsNode{}};

  Tree() {
    FsNode a = fs_dir({
        {"ro", fs_const("x\n")},
        {"rw", fs_file_rw([this]() -> Result<std::string> { return rw_value; },
                          [this](std::string_view v) -> Result<void> {
                            if (v != "1\n" && v != "0\n") return fail(Errno::Inval, "bad");
                            rw_value = std::string(v);
                            return {};
                          })},
        {"wo", fs_file_wo([this](std::string_view v) -> Result<void> {
           written.emplace_back(v);
           return {};
         })},
        {"link", fs_link("../b")},
    });
    FsNode b = fs_dynamic_dir([] { return std::vector<std::string>{"n2", "n10", "n1"}; },
                              [](std::string_view n) -> std::optional<FsNode> {
                                if (n == "n1" || n == "n2" || n == "n10") return fs_const(std::string(n) + "\n");
                                return std::nullopt;
                              });
    fs = VirtualFs(fs_dir({{"a", a}, {"b", b}}));
  }
};

// Scenario: read files of each mode and missing paths.
// Expect: 0444/0644 read their content; 0200 is EACCES (kernfs refuses the open); missing ENOENT.
TEST(VirtualFs, ReadModes) {
  Tree t;
  EXPECT_EQ(*t.fs.read("/a/ro"), "x\n");
  EXPECT_EQ(*t.fs.read("/a/rw"), "0\n");
  EXPECT_EQ(t.fs.read("/a/wo").error().code, Errno::Acces);
  EXPECT_EQ(t.fs.read("/a/nope").error().code, Errno::NoEnt);
  EXPECT_EQ(t.fs.read("/nope/ro").error().code, Errno::NoEnt);
  EXPECT_EQ(t.fs.read("/a/ro/deeper").error().code, Errno::NoEnt);
}

// Scenario: shell redirections into each kind of path.
// Expect: read-only file EACCES, a missing file in an existing directory EACCES (sysfs cannot
// create), a missing directory ENOENT; writes reach the method and its errno comes back; a
// refused write changes nothing.
TEST(VirtualFs, WriteRules) {
  Tree t;
  EXPECT_EQ(t.fs.open_for_write("/a/ro").error().code, Errno::Acces);
  EXPECT_EQ(t.fs.open_for_write("/a/new").error().code, Errno::Acces);
  EXPECT_EQ(t.fs.open_for_write("/missing/new").error().code, Errno::NoEnt);
  EXPECT_TRUE(t.fs.write("/a/rw", "1\n"));
  EXPECT_EQ(t.rw_value, "1\n");
  EXPECT_EQ(t.fs.write("/a/rw", "x\n").error().code, Errno::Inval);
  EXPECT_EQ(t.rw_value, "1\n");
  EXPECT_TRUE(t.fs.write("/a/wo", "abc"));
  EXPECT_EQ(t.written, std::vector<std::string>{"abc"});
}

// Scenario: list directories, read a link, use "." and ".." in paths.
// Expect: entries sorted as strcmp sorts (n1 n10 n2, the shell's glob order); readlink gives the
// target; ".." and "." and doubled slashes resolve; listing a file is EINVAL.
TEST(VirtualFs, ListsLinksAndPaths) {
  Tree t;
  EXPECT_EQ(*t.fs.list("/b"), (std::vector<std::string>{"n1", "n10", "n2"}));
  EXPECT_EQ(*t.fs.list("/a"), (std::vector<std::string>{"link", "ro", "rw", "wo"}));
  EXPECT_EQ(*t.fs.readlink("/a/link"), "../b");
  EXPECT_EQ(t.fs.readlink("/a/ro").error().code, Errno::Inval);
  EXPECT_EQ(*t.fs.read("/a/../b/./n10"), "n10\n");
  EXPECT_EQ(*t.fs.read("//a//ro"), "x\n");
  EXPECT_EQ(t.fs.list("/a/ro").error().code, Errno::Inval);
  EXPECT_TRUE(t.fs.exists("/a/link"));
  EXPECT_FALSE(t.fs.exists("/b/n3"));
}

// Scenario: split paths.
// Expect: empty components and "." dropped, ".." pops, never above the root.
TEST(VirtualFs, SplitPath) {
  EXPECT_EQ(split_fs_path("/sys/devices/"), (std::vector<std::string>{"sys", "devices"}));
  EXPECT_EQ(split_fs_path("/../x/./y/../z"), (std::vector<std::string>{"x", "z"}));
  EXPECT_TRUE(split_fs_path("/").empty());
}

}  // namespace
}  // namespace sparsemem
