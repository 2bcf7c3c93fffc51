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
  std::vector<float> bq, bk, bv;            // qwen2moe biases (empty otherwise)
  std::vector<float> q_norm, k_norm;        // qwen3moe [head_dim], olmoe [n_embd] (empty otherwise)
  MatrixRef ffn_gate, ffn_up, ffn_down;     // dense FFN layers (deepseek2 leading layers)
  MatrixRef gate_inp;                       // router [n_embd -> n_expert]
  std::vector<float> exp_probs_b;           // deepseek2 selection bias [n_expert]
  MatrixRef gate_inp_shexp;                 // qwen2moe shared-expert gate [n_embd -> 1]
  MatrixRef gate_shexp, up_shexp, down_shexp;  // shared expert (qwen2moe, deepseek2)
  bool has_shexp = false;
};

class ModelWeights {
 public:
  // Checks every TensorSpec (presence, shape, type) and reads the non-expert tensors.
  // Throws Error naming the tensor with expected and actual shape/type.
  static std::unique_ptr<ModelWeights> bind(const GgufFile& f, const ModelConfig& cfg);

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

 private:
  std::map<std::string, BoundTensor> tensors_;
  std::map<std::string, std::vector<float>> vecs_;
  size_t bytes_ = 0;
};

// Dequantizes token t's embedding row into out[n_embd].
void embedding_row(const MatrixRef& embd, int32_t t, float* out);

}  // namespace swapmoe
