#include "model/footprint.h"

#include <thread>

#include <algorithm>

namespace swapmoe {

uint64_t prefill_bytes_per_token(const ModelConfig& c) {
  const int64_t E = c.n_embd;
  // Dense FFN rows: leading dense layers (or a dense model), the qwen2moe shared expert,
  // deepseek2's shared experts.
  const bool dense_layers = c.n_expert == 0 || c.n_layer_dense_lead > 0;
  const int64_t ff_dense = std::max({dense_layers ? c.n_ff : 0, c.n_ff_shexp, c.n_ff_exp * c.n_expert_shared});
  const int64_t used = std::max<int64_t>(c.n_expert_used, 1);
  int64_t floats = 4 * E                                             // x, xn, proj, ffn_out
                   + 2 * ff_dense                                    // gate, up
                   + c.n_expert + 3 * used + 1                       // logits, weights, ids/rows, shexp
                   + used * (2 * c.n_ff_exp + E);                    // moe_gate, moe_up, moe_out
  int64_t widest = std::max({E, ff_dense, c.n_ff_exp});
  if (c.arch.attention == AttentionKind::Mla) {
    const int64_t dq = c.kv_lora_rank + c.n_rot;
    floats += c.q_lora_rank + dq + c.n_head * (c.head_dim_k_mla + dq + c.kv_lora_rank + c.head_dim_v_mla);
    widest = std::max({widest, c.q_lora_rank, c.n_head * c.head_dim_v_mla});
  } else {
    floats += c.n_head * (c.head_dim_k + c.head_dim_v) + c.n_head_kv * (c.head_dim_k + c.head_dim_v);  // q, attn, k, v
    widest = std::max(widest, c.n_head * c.head_dim_v);
  }
  // Converted rows, at 4 bytes per element (F32 weights convert to F32; the quantized
  // vec_dot_types take ~1.1): the layer input in up to two types, the gathered rows of
  // every (token, expert) pair for gate/up and for down, the dense FFN's down input.
  const int64_t converted = 4 * (2 * widest + used * (E + c.n_ff_exp) + ff_dense);
  return static_cast<uint64_t>(4 * floats + converted);
}

ModelFootprint model_footprint(const ModelConfig& cfg, int64_t n_ctx, int n_threads) {
  ModelFootprint fp;
  // KV cache per token (F16, as kv_cache.h and MlaCache store it).
  if (cfg.arch.attention == AttentionKind::Mla && cfg.kv_lora_rank > 0)
    fp.kv_bytes_per_token = static_cast<uint64_t>(cfg.n_layer * (cfg.kv_lora_rank + cfg.n_rot) * 2);
  else
    fp.kv_bytes_per_token = static_cast<uint64_t>(cfg.n_layer * cfg.n_head_kv * (cfg.head_dim_k + cfg.head_dim_v) * 2);

  // Scratch: the forward pass's float buffers for one token, with a 2x margin. Widest
  // head-related row first.
  const int64_t head = std::max({cfg.head_dim_k, cfg.head_dim_v, cfg.head_dim_k_mla, cfg.head_dim_v_mla, cfg.kv_lora_rank + cfg.n_rot});
  const int64_t ff = std::max({cfg.n_ff, cfg.n_ff_exp, cfg.n_ff_shexp, cfg.n_ff_exp * std::max<int64_t>(cfg.n_expert_shared, 1)});
  const int64_t widest = std::max({cfg.n_embd, ff, cfg.n_head * head});
  int64_t floats = 8 * cfg.n_embd                                   // residual, norms, projections
                   + 4 * cfg.n_head * head                          // q, k, v, attention output
                   + cfg.n_head * n_ctx                             // attention scores
                   + cfg.n_vocab                                    // logits
                   + 2 * cfg.n_expert                               // router
                   + cfg.n_expert_used * (3 * cfg.n_ff_exp + cfg.n_embd)  // routed expert buffers
                   + 3 * ff                                         // dense / shared expert FFN
                   + 6 * widest;                                    // converted activations
  fp.scratch_bytes = 2 * 4 * static_cast<uint64_t>(std::max<int64_t>(floats, 0)) +
                     // Every hardware thread at least, whatever -t says, so that the plan
                     // (SwapMoE's slot count, hence its output) does not follow -t (issue 15).
                     static_cast<uint64_t>(std::max({n_threads, 1, static_cast<int>(std::thread::hardware_concurrency())})) *
                         64 * 1024;
  fp.prefill_bytes_per_token = prefill_bytes_per_token(cfg);
  return fp;
}

}  // namespace swapmoe
