#pragma once
// The architecture table: for each supported architecture, its GGUF name, the metadata
// keys it reads, and the tensors it expects (names, shapes, roles). This is the single
// source of truth: the loader binds exactly these tensors, and swapmoe-forge writes
// exactly these tensors and keys, so the two can never disagree.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/config.h"

namespace swapmoe {

class GgufFile;

// Parses general.architecture; nullopt when unsupported.
std::optional<Arch> arch_from_name(const std::string& name);

// Fills a ModelConfig from metadata; throws Error naming the key when one is missing or
// out of range. Does not look at tensors except to detect a tied output projection.
ModelConfig config_from_gguf(const GgufFile& f);

// A metadata value as config_to_kv emits it.
struct MetaValue {
  enum Kind { U32, F32, Bool, Str } kind = U32;
  uint32_t u = 0;
  float f = 0;
  bool b = false;
  std::string s;
};
// The architecture keys (prefixed "<arch>.") and general.architecture that describe cfg, as
// llama.cpp expects them. config_from_gguf(config_to_kv(cfg)) reproduces cfg.
std::vector<std::pair<std::string, MetaValue>> config_to_kv(const ModelConfig& cfg);

// What a tensor is, so that tools can initialise or quantize it sensibly.
enum class TensorRole {
  TokenEmbd,   // [n_embd, n_vocab]
  Output,      // [n_embd, n_vocab]
  Norm,        // 1-D RMSNorm weight
  Bias,        // 1-D bias
  Matrix,      // 2-D dense projection
  Router,      // ffn_gate_inp [n_embd, n_expert] (kept F32 by quantize, like llama.cpp)
  SharedGate,  // qwen2moe ffn_gate_inp_shexp [n_embd]
  ExpProbsBias,// deepseek2 exp_probs_b [n_expert]
  Experts,     // 3-D [cols, rows, n_expert]: one slice per expert
};

struct TensorSpec {
  std::string name;          // e.g. "blk.3.ffn_up_exps.weight"
  std::vector<int64_t> ne;   // GGUF dims, ne[0] = row length
  TensorRole role = TensorRole::Matrix;
  int layer = -1;            // -1 for global tensors
  bool optional = false;     // absent is fine (e.g. output.weight when tied)
};

// Every tensor the architecture uses, in the canonical file order (llama.cpp's writer
// order: token_embd, output_norm, output, then per layer).
std::vector<TensorSpec> tensor_specs(const ModelConfig& cfg);

// "blk.%d.<base>.weight" style names in one place.
std::string tensor_name(const char* base, int layer = -1, const char* suffix = "weight");

}  // namespace swapmoe
