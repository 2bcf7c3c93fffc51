#pragma once
// The non-expert weights of a model, bound by name and shape against tensor_specs(cfg)
// and read (pread) into memory the engine owns. 1-D tensors (norms, biases, exp_probs_b)
// are converted to F32 once at load; matrices stay in their file type and are used
// through MatrixRef views. Expert tensors are not read here: only their infos are kept,
// for the ExpertStore.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "arch/arch.h"
#include "arch/config.h"
#include "expert/expert_store.h"
#include "ops/matvec.h"
#include "util/aligned_buffer.h"
#include "util/thread_pool.h"

namespace swapmoe {

// One bound non-expert tensor, bytes exactly as in the file.
struct BoundTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;
  AlignedBuffer bytes;
  // 2-D (or 3-D, rows = ne[1] * ne[2]) view: ne[0] columns per row.
  MatrixRef matrix() const;
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;   // [n_embd]
  MatrixRef wq, wk, wv, wo;                 // standard attention
  std::vector<float> bq, bk, bv;            // qwen2moe, gpt-oss biases (empty otherwise)
  std::vector<float> bo;                    // gpt-oss attn_output.bias [n_embd]
  std::vector<float> sinks;                 // gpt-oss attn_sinks [n_head]
  std::vector<float> gate_inp_b;            // gpt-oss router bias [n_expert]
  std::vector<float> q_norm, k_norm;        // qwen3moe [head_dim], olmoe [n_embd] (empty otherwise)
  MatrixRef ffn_gate, ffn_up, ffn_down;     // dense FFN layers (deepseek2 leading layers)
  MatrixRef gate_inp;                       // router [n_embd -> n_expert]
  std::vector<float> exp_probs_b;           // deepseek2 selection bias [n_expert]
  MatrixRef gate_inp_shexp;                 // qwen2moe shared-expert gate [n_embd -> 1]
  MatrixRef gate_shexp, up_shexp, down_shexp;  // shared expert (qwen2moe, deepseek2)
  bool has_shexp = false;
};

// What deriving attn_k_b / attn_v_b from a legacy attn_kv_b cost at load (cfg.mla_legacy).
struct MlaLegacyLoad {
  int64_t layers = 0;
  GgmlType kv_b_type = GgmlType::F32, k_b_type = GgmlType::F32;  // v_b keeps kv_b's type
  uint64_t kv_b_bytes = 0;     // read from the file, then dropped
  uint64_t derived_bytes = 0;  // k_b + v_b kept as dense weights
  double seconds = 0;          // dequantize, transpose, re-encode (excludes the reads)
  // SWAPMOE_MLA_LEGACY_REFERENCE=1 (conformance only): llama.cpp's non-MLA arithmetic instead of
  // the absorbed path's. k_b and v_b are derived in F32, the MLA cache is F32, and each layer's
  // latent is rounded through latent_types[layer] (ops/mla_legacy.h) before it is cached.
  // Not for use with --mem: the budget counts F16 k_b, source-type v_b and an F16 cache.
  bool reference = false;
  std::vector<GgmlType> latent_types;  // per layer (F32: no rounding); set in reference mode
};

// Whether SWAPMOE_MLA_LEGACY_REFERENCE is set to 1 (read once).
bool mla_legacy_reference_requested();

class ModelWeights {
 public:
  // Checks every TensorSpec (presence, shape, type) and reads the non-expert tensors.
  // Throws Error naming the tensor with expected and actual shape/type. A legacy MLA file's
  // attn_kv_b is split into attn_k_b / attn_v_b as it is read (ops/mla_legacy.h), on the
  // pool when one is given; tensor() then finds those names, not attn_kv_b.
  static std::unique_ptr<ModelWeights> bind(const GgufFile& f, const ModelConfig& cfg, ThreadPool* pool = nullptr);

  MatrixRef token_embd;  // [n_embd, n_vocab]: row t is token t's embedding
  MatrixRef output;      // [n_embd -> n_vocab] (token_embd when tied)
  std::vector<float> output_norm;
  std::vector<LayerWeights> layers;
  std::vector<ExpertTensors> experts;  // per layer; all null for dense layers

  // Any bound tensor by name (for architecture code that binds its own, e.g. MLA);
  // nullptr when absent. F32 copies of 1-D tensors by name likewise.
  const BoundTensor* tensor(const std::string& name) const;
  const std::vector<float>* vec(const std::string& name) const;
  size_t bytes() const { return bytes_; }
  const MlaLegacyLoad& mla_legacy() const { return legacy_; }

 private:
  std::map<std::string, BoundTensor> tensors_;
  std::map<std::string, std::vector<float>> vecs_;
  size_t bytes_ = 0;
  MlaLegacyLoad legacy_;
};

// Dequantizes token t's embedding row into out[n_embd].
void embedding_row(const MatrixRef& embd, int32_t t, float* out);

}  // namespace swapmoe
