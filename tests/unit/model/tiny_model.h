#pragma once
// Test helper: writes a small random-weight GGUF for any supported architecture, with
// exactly the tensors tensor_specs(cfg) lists and a byte-level BPE vocabulary of 256 byte
// tokens plus two specials. Weights are drawn from a seeded generator and quantized with
// the scalar reference quantizers, so the same call always writes the same file.

#include <cstdint>
#include <functional>
#include <string>

#include "arch/arch.h"
#include "arch/config.h"
#include "util/ggml_type.h"

namespace swapmoe {

// The architectures the tests forge (test code only: the engine names an architecture by
// its spec, arch/arch.h). arch_name gives the spec's name.
enum class Arch { Qwen3Moe, Qwen2Moe, Llama, Olmoe, Deepseek2, Glm4Moe };
const char* arch_name(Arch a);

}  // namespace swapmoe

namespace swapmoe::test {

// A small config of the given architecture (n_embd 64, 2 layers, 8 experts, top-2).
// deepseek2 variant 1: plain attn_q, softmax gating, no dense leading layer.
// glm4moe variant 0: qk-norm (GLM-4.5/4.6), variant 1: none (GLM-4.5-Air); both with a NextN layer.
ModelConfig tiny_config(Arch arch, int64_t n_embd = 64, int variant = 0);

struct TinyOptions {
  GgmlType matrix_type = GgmlType::F32;  // projections and experts
  GgmlType embd_type = GgmlType::F32;
  uint32_t seed = 1;
  bool tie_output = false;
  bool add_extra = false;  // append an unused tensor (rope_freqs.weight)
  // Optional edits just before writing: (name, ne) may be changed to make broken files.
  std::function<void(std::string& name, std::vector<int64_t>& ne, GgmlType& type)> edit;
};

void write_tiny_model(const std::string& path, const ModelConfig& cfg, const TinyOptions& opt);

// A fresh path under the build's temporary directory.
std::string temp_path(const std::string& stem);

}  // namespace swapmoe::test
