#pragma once
// Confinement of store reads: a path is resolved with realpath() (every symlink followed)
// and used only if the result lies inside the store's root, itself resolved the same way.
// The canonical path is what callers open afterwards, so a symlink inside the store that
// points outside it is refused before anything is read through it.

#include <cstdint>
#include <string>

namespace swapmoe::store {

// realpath(path), or "" when it does not exist (any other failure throws Error).
std::string real_path_or_empty(const std::string& path);

// The canonical form of `path`, which must exist and lie inside `root_real` (a canonical
// directory). `what` names the file in errors ("the manifest of deepseek-r1:671b").
std::string confined_path(const std::string& root_real, const std::string& path, const std::string& what);

// Reads a whole regular file of at most max_bytes (manifests and params layers are small;
// a huge one is refused rather than read). `path` should be canonical (confined_path).
std::string read_small_file(const std::string& path, uint64_t max_bytes, const std::string& what);

// True when the file starts with the GGUF magic "GGUF".
bool has_gguf_magic(const std::string& path);

// File size in bytes (0 if it cannot be stat'ed).
uint64_t file_size_or_zero(const std::string& path);

}  // namespace swapmoe::store
