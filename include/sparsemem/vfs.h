// Virtual filesystem: the /proc and /sys files sparsemem shows, as a tree of nodes addressed by
// path, with the errnos a shell meets. Reads render state and change nothing; writes call operations.
#pragma once

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sparsemem/result.h"

namespace sparsemem {

enum class FsKind : uint8_t { File, Dir, Link };

// Permission bits as sysfs and procfs show them. The owner bits decide, because kernfs refuses an
// open for reading without a show method and for writing without a store method, even for root.
inline constexpr unsigned kModeRead = 0444;
inline constexpr unsigned kModeReadWrite = 0644;
inline constexpr unsigned kModeWrite = 0200;

// One node of the tree. Directories answer `list` and `child` on every call, so directories whose
// entries follow state (memoryN, PNP0C80:NN) are rebuilt from that state at each lookup.
struct FsNode {
  using ReadFn = std::function<Result<std::string>()>;
  using WriteFn = std::function<Result<void>(std::string_view)>;
  using ListFn = std::function<std::vector<std::string>()>;
  using ChildFn = std::function<std::optional<FsNode>(std::string_view)>;

  FsKind kind = FsKind::File;
  unsigned mode = kModeRead;
  ReadFn read;    // File with a read bit
  WriteFn write;  // File with a write bit: the data of one write(2) call
  ListFn list;    // Dir: entry names, any order
  ChildFn child;  // Dir: the entry of that name, nullopt when there is none
  std::string target;  // Link: the target as readlink(2) prints it ("../../node/node0")

  bool readable() const { return kind == FsKind::File && (mode & 0400) && read; }
  bool writable() const { return kind == FsKind::File && (mode & 0200) && write; }
};

// Building blocks.
FsNode fs_file(FsNode::ReadFn read);                        // 0444
FsNode fs_file_rw(FsNode::ReadFn read, FsNode::WriteFn write);  // 0644
FsNode fs_file_wo(FsNode::WriteFn write);                   // 0200
FsNode fs_link(std::string target);
// A file whose content never changes.
FsNode fs_const(std::string content);
// A directory of fixed entries; the functions inside the entries may still read live state.
FsNode fs_dir(std::vector<std::pair<std::string, FsNode>> entries);
// A directory whose entries are computed on every call.
FsNode fs_dynamic_dir(FsNode::ListFn list, FsNode::ChildFn child);

// The tree, rooted at "/". Paths are absolute; "." and empty components are skipped, ".." goes up
// (sysfs links are followed only by readlink, never by lookup).
class VirtualFs {
 public:
  explicit VirtualFs(FsNode root) : m_root(std::move(root)) {}

  // Return: -ENOENT when a component is missing or a non-directory has children.
  Result<FsNode> lookup(std::string_view path) const;
  bool exists(std::string_view path) const { return lookup(path).has_value(); }

  // open(O_RDONLY) then read to the end. Return: -ENOENT missing; -EACCES no read method (kernfs
  // refuses at open); -EINVAL for a directory (read(2) says EISDIR, which no scenario reaches);
  // the read method's own errors.
  Result<std::string> read(std::string_view path) const;
  // open(O_WRONLY|O_CREAT|O_TRUNC) as a shell redirection does. Return: -ENOENT when the parent
  // directory is missing; -EACCES when the file exists without a write method, or is missing in
  // an existing directory (sysfs and procfs cannot create files).
  Result<FsNode> open_for_write(std::string_view path) const;
  // open_for_write, then one write(2) of `data`. Errors: the open's, then the write method's.
  Result<void> write(std::string_view path, std::string_view data) const;
  // Directory entries sorted as busybox ls and the shell's globs sort them (strcmp order).
  // Return: -ENOENT missing; -EINVAL not a directory.
  Result<std::vector<std::string>> list(std::string_view path) const;
  // Return: -ENOENT missing; -EINVAL not a link.
  Result<std::string> readlink(std::string_view path) const;

 private:
  FsNode m_root;
};

// Writes the subtree at `path` into the host directory `host_root` under the same path (so
// `path` "/sys/devices/system/memory" lands in HOST_ROOT/sys/devices/system/memory), the way real
// tools expect a --sysroot: directories, readable files with their current content, write-only
// files empty, links as symlinks with their sysfs targets. Files whose read fails (the model has no
// such state) are left out. Return: -ENOENT when `path` is missing, -EIO when the host refuses a
// write (message names the host path).
Result<void> export_tree(const VirtualFs& fs, std::string_view path, const std::string& host_root);

// Splits an absolute path into its components ("/sys/devices/" -> {"sys", "devices"}).
std::vector<std::string> split_fs_path(std::string_view path);

}  // namespace sparsemem
