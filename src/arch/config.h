#pragma once
// The model configuration: a plain struct filled from GGUF metadata by config_from_gguf()
// (src/arch/arch.cpp) against the architecture's spec (src/arch/<name>.cpp). Every
// architecture uses the same struct; fields an architecture does not have keep their
// defaults. The forward pass, the forge and the planner read these fields and the feature
// flags in `arch`, never the architecture's name: an architecture is the flags it sets.

#include <cstdint>
#include <string>

#include "ops/rope.h"  // RopeType

namespace swapmoe {

struct ArchSpec;  // arch/arch.h

enum class RopeScaling { None, Linear, Yarn };
// GGUF expert_gating_func 1 = softmax, 2 = sigmoid. SoftmaxWeight (llama.cpp's
// SOFTMAX_WEIGHT, gpt-oss): the top-k are chosen on the raw logits and the softmax runs over
// the k chosen logits only.
enum class GatingFunc { Softmax, Sigmoid, SoftmaxWeight };

// How attention is computed. Gqa: q/k/v projections with n_head_kv shared key/value heads
// (model/attention.cpp). Mla: DeepSeek's multi-head latent attention with split
// attn_k_b/attn_v_b (model/attention_mla.h).
enum class AttentionKind { Gqa, Mla };
// RMSNorm of q and k after the projections: PerHead over each head [head_dim] (qwen3moe),
// Full over the whole projection [n_head * head_dim] (olmoe).
enum class QkNorm { None, PerHead, Full };
// How llama.cpp turns the YaRN keys into rope parameters. Deepseek2: the file stores the
// log multiplier x 0.1, and it sets mscale (arch/rope_params.cpp, model/attention_mla.cpp).
enum class YarnRule { Standard, Deepseek2 };
// The shared expert of a MoE layer. Gated: one expert of width n_ff_shexp whose output is
// scaled by sigmoid(ffn_gate_inp_shexp x) (qwen2moe). Plain: n_expert_shared experts of
// width n_ff_exp merged into one FFN, added unweighted (deepseek2).
enum class SharedExpert { None, Gated, Plain };

// What an architecture's layers are made of: set by its spec, copied into every
// ModelConfig of that architecture. The loader refuses combinations the forward pass does not
// run (check_config in arch.cpp, e.g. sinks without grouped-query attention).
struct ArchFeatures {
  // Attention.
  AttentionKind attention = AttentionKind::Gqa;
  QkNorm qk_norm = QkNorm::None;
  bool qkv_bias = false;             // attn_q/k/v.bias, added after the projections
  bool o_bias = false;               // attn_output.bias, added after the output projection
  bool sinks = false;                // attn_sinks [n_head]: a learned logit per head in every softmax's denominator
  // Sliding-window attention: of every n layers the first n - 1 attend only to the last
  // attention.sliding_window positions and the n-th to all (llama.cpp's set_swa_pattern; gpt-oss: 2,
  // so even layers are windowed). 0: none.
  int sliding_window_pattern = 0;
  bool partial_rotary = false;       // rope.dimension_count may be below key_length
  YarnRule yarn = YarnRule::Standard;
  // Routing. The gating function and weight normalisation are resolved per file into
  // ModelConfig::gating / expert_weights_norm (their defaults are the spec's).
  bool routing_keys = false;         // the file states expert_gating_func and expert_weights_norm
  bool weights_scale = false;        // the routed weights are multiplied by expert_weights_scale
  bool sigmoid_selection_bias = false;  // exp_probs_b (added for selection only) when the gating is sigmoid
  bool router_bias = false;          // ffn_gate_inp.bias, added to the router logits
  bool expert_biases = false;        // ffn_{gate,up,down}_exps.bias: each expert's own bias rows (they travel with it)
  // The experts' activation: SwiGLU, or gpt-oss's clamped variant (ops/activation.h swiglu_oai).
  bool swiglu_oai = false;
  // Feed-forward.
  SharedExpert shared_expert = SharedExpert::None;
  bool leading_dense = false;        // leading_dense_block_count: the first layers use a dense FFN
  bool expert_width_in_ff = false;   // feed_forward_length holds the expert width (Mixtral, OLMoE)
  // File layout.
  bool qk_norm_optional = false;     // a file may omit attn_q_norm/attn_k_norm (GLM-4.5-Air): qk_norm is
                                     // then off for that file (config_from_gguf looks at blk.0)
  bool nextn = false;                // NextN/MTP layers may follow the transformer layers (nextn_predict_layers)
  const char* ffn_norm = "ffn_norm"; // the norm before the FFN (glm4moe, gpt-oss: post_attention_norm)
};

struct ModelConfig {
  const ArchSpec* spec = nullptr;  // keys and defaults (arch/arch.h); set with arch_name and arch
  std::string arch_name;           // GGUF general.architecture
  ArchFeatures arch;               // the spec's features

  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;        // transformer layers the forward pass runs
  // NextN/MTP layers (glm4moe: nextn_predict_layers, 1 in GLM-4.5/4.6): blk.n_layer ..
  // blk.n_layer + n_layer_nextn - 1 in the file, counted in its block_count as llama.cpp's
  // converter writes it. They predict a further token for speculative decoding; plain decoding
  // does not run them, so they are validated and skipped (TensorSpec::unused) and cost no memory.
  int64_t n_layer_nextn = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;  // per-head q/k size (attention.key_length, default n_embd/n_head)
  int64_t head_dim_v = 0;  // per-head v size (attention.value_length)
  float rms_eps = 1e-6f;
  // Sliding-window attention (arch.sliding_window_pattern): the window in positions, and the
  // rope base of the windowed layers (rope.freq_base_swa; default rope_freq_base).
  int64_t n_swa = 0;
  float rope_freq_base_swa = 0.0f;

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
  RopeType rope_type = RopeType::Neox;  // the spec's
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
  // The legacy MLA layout (files converted before llama.cpp split attn_kv_b, e.g. every
  // DeepSeek-V3/R1 GGUF of January 2025): one attn_kv_b per layer instead of attn_k_b /
  // attn_v_b, which the loader derives (ops/mla_legacy.h). Such a file states the
  // per-head sizes in key_length / value_length and n_head in head_count_kv, and has no
  // *_mla keys; config_from_gguf moves them to the *_mla fields and sets head_dim_k / v and
  // n_head_kv to the latent cache's shape, as a split file states them. A property of the
  // file, not of the architecture: the same deepseek2 spec reads both layouts.
  bool mla_legacy = false;

  bool has_output = true;  // false: output projection tied to token_embd

  // Whether layer il attends through the sliding window (llama.cpp's hparams.is_swa).
  bool is_swa_layer(int64_t il) const {
    const int64_t n = arch.sliding_window_pattern;
    return n > 0 && n_swa > 0 && il % n < n - 1;
  }
  bool is_moe_layer(int64_t il) const { return n_expert > 0 && il >= n_layer_dense_lead; }
  int64_t n_moe_layers() const { return n_expert > 0 ? n_layer - n_layer_dense_lead : 0; }
};

}  // namespace swapmoe
