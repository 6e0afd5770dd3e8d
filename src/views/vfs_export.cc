// export_tree(): copies a VirtualFs subtree into a host directory as a sysroot for real tools
// (util-linux lsmem --sysroot). Reads only; owns nothing but the files it writes.
#include <filesystem>
#include <fstream>

#include "sparsemem/vfs.h"

namespace sparsemem {

namespace {

namespace stdfs = std::filesystem;

Result<void> host_error(const stdfs::path& p, const std::error_code& ec) {
  return fail(Errno::Io, "cannot write " + p.string() + ": " + ec.message());
}

Result<void> export_node(const VirtualFs& fs, const std::string& path, const stdfs::path& host) {
  SPM_TRY_ASSIGN(const FsNode node, fs.lookup(path));
  std::error_code ec;
  switch (node.kind) {
    case FsKind::Link:
      // The target is relative to the link, as sysfs prints it, so it resolves inside the sysroot.
      stdfs::create_symlink(node.target, host, ec);
      if (ec) return host_error(host, ec);
      return {};
    case FsKind::File: {
      std::string content;
      if (node.readable()) {
        auto r = fs.read(path);
        if (!r) return {};  // the model has no such state to show
        content = std::move(*r);
      }
      std::ofstream out(host, std::ios::binary | std::ios::trunc);
      out << content;
      if (!out.flush()) return host_error(host, std::make_error_code(std::errc::io_error));
      stdfs::permissions(host, static_cast<stdfs::perms>(node.mode), ec);
      if (ec) return host_error(host, ec);
      return {};
    }
    case FsKind::Dir: {
      stdfs::create_directories(host, ec);
      if (ec) return host_error(host, ec);
      SPM_TRY_ASSIGN(const std::vector<std::string> names, fs.list(path));
      for (const std::string& n : names) SPM_TRY(export_node(fs, path + "/" + n, host / n));
      return {};
    }
  }
  return {};
}

}  // namespace

Result<void> export_tree(const VirtualFs& fs, std::string_view path, const std::string& host_root) {
  std::string clean;
  for (const std::string& c : split_fs_path(path)) clean += "/" + c;
  if (clean.empty()) clean = "/";
  stdfs::path host(host_root);
  for (const std::string& c : split_fs_path(path)) host /= c;
  return export_node(fs, clean, host);
}

}  // namespace sparsemem
