#pragma once
// Writes a forged model: architecture keys from config_to_kv, tokenizer keys copied
// from a vocabulary GGUF, and every tensor of tensor_specs(config) filled with seeded
// random weights and quantized with the same per-tensor mix as `swapmoe quantize`.
// Streaming: generation and quantization go one chunk of rows at a time on all
// threads, so memory stays small whatever the model size.

#include <cstdint>
#include <string>
#include <vector>

#include "forge_spec.h"

namespace swapmoe::forge {

struct ForgeResult {
  std::vector<std::string> paths;  // the file, or the parts of a split model
  uint64_t file_bytes = 0;
  size_t n_tensors = 0;
  double seconds = 0;
};

ForgeResult forge_model(const ForgeSpec& spec);

}  // namespace swapmoe::forge
