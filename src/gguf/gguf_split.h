#pragma once
// Split GGUF models, as llama.cpp's gguf-split writes them and Hugging Face ships big
// models: NAME-00001-of-00009.gguf ... NAME-00009-of-00009.gguf. Every part is a complete
// GGUF file holding some of the tensors (each tensor in exactly one part, never split
// across two) and three keys:
//   split.no             u16  the part's index, 0-based (the name counts from 1)
//   split.count          u16  the number of parts
//   split.tensors.count  i32  the number of tensors in all parts together
// The first part also holds all of the model's metadata; the others only the split keys
// (and general.alignment when it is not the default 32). gguf-split may leave the first
// part without tensors (--no-tensor-first-split).
//
// Reading: GgufFile::open(first part) finds and validates the set (gguf_join_split,
// declared in gguf.h); a tensor's location is then (part, offset).

#include <cstdint>
#include <string>

namespace swapmoe {

inline constexpr const char* kSplitNoKey = "split.no";
inline constexpr const char* kSplitCountKey = "split.count";
inline constexpr const char* kSplitTensorsCountKey = "split.tensors.count";
inline constexpr uint32_t kMaxSplitCount = 65535;  // split.count is a u16

// "PREFIX-%05d-of-%05d.gguf" for the 0-based part `no` of `count` (llama.cpp's naming).
std::string gguf_split_path(const std::string& prefix, uint32_t no, uint32_t count);

// The inverse: when `path` ends in "-NNNNN-of-MMMMM.gguf" (at least five digits each,
// 1 <= NNNNN <= MMMMM), sets prefix, the 0-based no and count and returns true.
bool gguf_split_name(const std::string& path, std::string* prefix, uint32_t* no, uint32_t* count);

}  // namespace swapmoe
