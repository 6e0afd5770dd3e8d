// Virtual filesystem: path lookup over FsNode trees and the open/read/write errno rules of kernfs
// and procfs. Holds no state of its own; every answer comes from the nodes' functions.
#include "sparsemem/vfs.h"

#include <algorithm>
#include <memory>

namespace sparsemem {

FsNode fs_file(FsNode::ReadFn read) {
  FsNode n;
  n.mode = kModeRead;
  n.read = std::move(read);
  return n;
}

FsNode fs_file_rw(FsNode::ReadFn read, FsNode::WriteFn write) {
  FsNode n;
  n.mode = kModeReadWrite;
  n.read = std::move(read);
  n.write = std::move(write);
  return n;
}

FsNode fs_file_wo(FsNode::WriteFn write) {
  FsNode n;
  n.mode = kModeWrite;
  n.write = std::move(write);
  return n;
}

FsNode fs_link(std::string target) {
  FsNode n;
  n.kind = FsKind::Link;
  n.mode = 0777;
  n.target = std::move(target);
  return n;
}

FsNode fs_const(std::string content) {
  return fs_file([content = std::move(content)]() -> Result<std::string> { return content; });
}

FsNode fs_dir(std::vector<std::pair<std::string, FsNode>> entries) {
  auto shared = std::make_shared<const std::vector<std::pair<std::string, FsNode>>>(std::move(entries));
  return fs_dynamic_dir(
      [shared] {
        std::vector<std::string> names;
        for (const auto& [name, node] : *shared) names.push_back(name);
        return names;
      },
      [shared](std::string_view name) -> std::optional<FsNode> {
        for (const auto& [n, node] : *shared)
          if (n == name) return node;
        return std::nullopt;
      });
}

FsNode fs_dynamic_dir(FsNode::ListFn list, FsNode::ChildFn child) {
  FsNode n;
  n.kind = FsKind::Dir;
  n.mode = 0755;
  n.list = std::move(list);
  n.child = std::move(child);
  return n;
}

std::vector<std::string> split_fs_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    const size_t j = std::min(path.find('/', i), path.size());
    const std::string_view part = path.substr(i, j - i);
    if (part == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!part.empty() && part != ".") {
      out.emplace_back(part);
    }
    i = j + 1;
  }
  return out;
}

Result<FsNode> VirtualFs::lookup(std::string_view path) const {
  // The root is not copied: only the nodes a lookup creates are owned here.
  const FsNode* cur = &m_root;
  std::optional<FsNode> owned;
  for (const std::string& part : split_fs_path(path)) {
    if (cur->kind != FsKind::Dir || !cur->child) return fail(Errno::NoEnt, std::string(path));
    std::optional<FsNode> next = cur->child(part);
    if (!next) return fail(Errno::NoEnt, std::string(path));
    owned = std::move(next);
    cur = &*owned;
  }
  // The last node a lookup created is handed over, not copied (its functions own captures).
  if (owned) return std::move(*owned);
  return *cur;
}

Result<std::string> VirtualFs::read(std::string_view path) const {
  SPM_TRY_ASSIGN(const FsNode node, lookup(path));
  if (node.kind == FsKind::Dir) return fail(Errno::Inval, "is a directory");
  if (!node.readable()) return fail(Errno::Acces, std::string(path));
  return node.read();
}

Result<FsNode> VirtualFs::open_for_write(std::string_view path) const {
  std::vector<std::string> parts = split_fs_path(path);
  auto node = lookup(path);
  if (!node) {
    if (parts.empty()) return fail(Errno::NoEnt, std::string(path));
    std::string parent;
    for (size_t i = 0; i + 1 < parts.size(); ++i) parent += "/" + parts[i];
    auto dir = lookup(parent.empty() ? "/" : parent);
    if (!dir || dir->kind != FsKind::Dir) return fail(Errno::NoEnt, std::string(path));
    return fail(Errno::Acces, std::string(path));
  }
  if (node->kind == FsKind::Dir) return fail(Errno::Inval, "is a directory");
  if (!node->writable()) return fail(Errno::Acces, std::string(path));
  return node;
}

Result<void> VirtualFs::write(std::string_view path, std::string_view data) const {
  SPM_TRY_ASSIGN(const FsNode node, open_for_write(path));
  return node.write(data);
}

Result<std::vector<std::string>> VirtualFs::list(std::string_view path) const {
  SPM_TRY_ASSIGN(const FsNode node, lookup(path));
  if (node.kind != FsKind::Dir) return fail(Errno::Inval, "not a directory");
  std::vector<std::string> names = node.list ? node.list() : std::vector<std::string>{};
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::string> VirtualFs::readlink(std::string_view path) const {
  SPM_TRY_ASSIGN(const FsNode node, lookup(path));
  if (node.kind != FsKind::Link) return fail(Errno::Inval, "not a link");
  return node.target;
}

}  // namespace sparsemem
