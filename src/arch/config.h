#pragma once
// The model configuration: a plain struct filled from GGUF metadata by config_from_gguf()
// (src/model/arch.cpp). Every architecture uses the same struct; fields an architecture
// does not have keep their defaults.

#include <cstdint>
#include <string>

namespace swapmoe {

enum class Arch { Qwen3Moe, Qwen2Moe, Llama, Olmoe, Deepseek2 };

enum class RopeType { Norm, Neox };          // Norm: adjacent pairs; Neox: pairs offset by n_rot/2
enum class RopeScaling { None, Linear, Yarn };
enum class GatingFunc { Softmax, Sigmoid };  // GGUF expert_gating_func 1 = softmax, 2 = sigmoid

struct ModelConfig {
  Arch arch = Arch::Qwen3Moe;
  std::string arch_name;  // GGUF general.architecture

  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;  // per-head q/k size (attention.key_length, default n_embd/n_head)
  int64_t head_dim_v = 0;  // per-head v size (attention.value_length)
  float rms_eps = 1e-6f;

  // Feed-forward. n_ff: dense FFN width (deepseek2 leading dense layers; Mixtral/OLMoE
  // also store their expert width here, which config_from_gguf copies into n_ff_exp).
  int64_t n_ff = 0;
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t n_ff_exp = 0;           // routed expert FFN width
  int64_t n_ff_shexp = 0;         // qwen2moe shared expert width (0: none)
  int64_t n_expert_shared = 0;    // deepseek2 shared experts (width n_ff_exp * count)
  int64_t n_layer_dense_lead = 0; // deepseek2: the first layers use a dense FFN
  GatingFunc gating = GatingFunc::Softmax;
  bool expert_weights_norm = false;  // renormalise the chosen experts' weights to sum 1
  float expert_weights_scale = 1.0f;
  int64_t n_expert_groups = 0;       // deepseek2 group-limited routing (0/1: off)
  int64_t n_expert_groups_used = 0;

  // Rotary embeddings.
  RopeType rope_type = RopeType::Neox;
  int64_t n_rot = 0;  // rope.dimension_count (deepseek2: the rope part of a head)
  float rope_freq_base = 10000.0f;
  RopeScaling rope_scaling = RopeScaling::None;
  float rope_scaling_factor = 1.0f;
  int64_t rope_orig_ctx = 0;       // rope.scaling.original_context_length
  float rope_yarn_log_mul = 0.0f;  // as llama.cpp uses it (GGUF value / 0.1 for deepseek2)

  // Multi-head latent attention (deepseek2).
  int64_t q_lora_rank = 0;   // 0: plain attn_q
  int64_t kv_lora_rank = 0;
  int64_t head_dim_k_mla = 0;  // nope + rope part of a "decompressed" key head (e.g. 192)
  int64_t head_dim_v_mla = 0;  // "decompressed" value head (e.g. 128)

  bool has_output = true;  // false: output projection tied to token_embd

  bool is_moe_layer(int64_t il) const { return n_expert > 0 && il >= n_layer_dense_lead; }
  int64_t n_moe_layers() const { return n_expert > 0 ? n_layer - n_layer_dense_lead : 0; }
};

const char* arch_name(Arch a);

}  // namespace swapmoe
