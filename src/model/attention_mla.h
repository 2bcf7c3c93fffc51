#pragma once
// Multi-head latent attention (DeepSeek-V2/V3/R1, GGUF architecture "deepseek2") for one
// token, in the "absorbed" form llama.cpp uses when the file has split attn_k_b/attn_v_b
// tensors (src/models/deepseek2.cpp, is_mla path). Per layer and token:
//
//   q        = q_b(rmsnorm(q_a x) * q_a_norm)   or   q x          [n_head][nope | n_rot]
//   kv       = kv_a_mqa x                                          [kv_lora_rank | n_rot]
//   c        = rmsnorm(kv[:kv_lora_rank]) * kv_a_norm              the latent, cached
//   k_pe     = rope(kv[kv_lora_rank:])                             one shared rope key, cached
//   q_pe     = rope(q[h][nope:])                                   (NORM pairing, YaRN)
//   q_abs[h] = k_b[h] q[h][:nope]                                  [kv_lora_rank]
//   score[h][t] = kq_scale * ([q_abs[h] | q_pe[h]] . [c_t | k_pe_t])
//   o_lat[h] = sum_t softmax(score[h])[t] c_t                      [kv_lora_rank]
//   o[h]     = v_b[h] o_lat[h]                                     [head_dim_v]
//   out      = attn_output concat_h(o[h])                          [n_embd]
//
// So attention runs as multi-query attention with a single 576-wide (for V2/V3) "key head"
// [c | k_pe] whose first kv_lora_rank entries double as the value. Only that row is cached
// per position: llama.cpp's MLA cache holds exactly this (K only, V is a view of K).
//
// Precision: llama.cpp's default KV cache type is F16 and the reference harness runs
// without flash attention, so the cached row is rounded to F16, the query is rounded to
// F16 for K.q and the probabilities to F16 for the sum over values (the vec_dot_type of an
// F16 operand). MlaCache's default F16 mode mirrors this through ops/attention's
// attention_f16, exactly like the standard KvCache (src/model/kv_cache.h) does; the F32
// mode skips all three roundings (for tests and for callers that want full precision).

#include <cstdint>
#include <vector>

#include "arch/config.h"
#include "ops/matmul.h"
#include "ops/matvec.h"
#include "ops/rope.h"
#include "util/thread_pool.h"

namespace swapmoe {

// Shapes below are GGUF ne order: [cols (row length), rows, ...].
struct MlaLayerWeights {
  MatrixRef q_a;                     // [n_embd, q_lora_rank]            (q_lora_rank > 0)
  const float* q_a_norm = nullptr;   // [q_lora_rank]                     (q_lora_rank > 0)
  MatrixRef q_b;                     // [q_lora_rank, n_head * (nope + n_rot)]
  MatrixRef q;                       // [n_embd, n_head * (nope + n_rot)] (q_lora_rank == 0)
  MatrixRef kv_a_mqa;                // [n_embd, kv_lora_rank + n_rot]
  const float* kv_a_norm = nullptr;  // [kv_lora_rank]
  // 3-D tensors flattened to 2-D (rows = ne[1] * ne[2]); head h is the block of ne[1] rows
  // starting at row h * ne[1]. Any quantized type matvec supports.
  MatrixRef k_b;                     // [nope, kv_lora_rank, n_head]
  MatrixRef v_b;                     // [kv_lora_rank, head_dim_v, n_head]
  MatrixRef out;                     // attn_output [n_head * head_dim_v, n_embd]
  // Conformance only (SWAPMOE_MLA_LEGACY_REFERENCE, model/weights.h): the latent is rounded
  // through this type before it is cached, as llama.cpp's non-MLA path rounds it for
  // attn_kv_b (ops/mla_legacy.h). F32: no rounding, the absorbed path's own arithmetic.
  GgmlType latent_round = GgmlType::F32;
};

// Everything mla_attention needs from the model configuration, derived once.
struct MlaParams {
  int64_t n_embd = 0;
  int64_t n_head = 0;
  int64_t q_lora_rank = 0;   // 0: plain attn_q
  int64_t kv_lora_rank = 0;
  int64_t nope = 0;          // head_dim_k_mla - n_rot
  int64_t n_rot = 0;
  int64_t head_dim_v = 0;    // head_dim_v_mla
  float rms_eps = 1e-6f;
  RopeParams rope;           // rope_params(cfg): NORM pairing, YaRN for V2/V3
  float kq_scale = 1.0f;     // mla_kq_scale(cfg)
};

// llama.cpp's deepseek2 kq_scale: mscale^2 / sqrt(head_dim_k_mla) with
// mscale = attn_factor * (1 + 0.1 ln(1/freq_scale)) * (1 + 0.1 yarn_log_mul ln(1/freq_scale)).
float mla_kq_scale(const ModelConfig& cfg);

// Throws Error when cfg is not a usable deepseek2 (MLA) configuration.
MlaParams mla_params(const ModelConfig& cfg);

// The per-layer cache of [c | k_pe] rows (kv_lora_rank + n_rot values per position).
class MlaCache {
 public:
  enum class Precision { F16, F32 };

  MlaCache() = default;
  MlaCache(int64_t n_layer, int64_t n_ctx, int64_t kv_lora_rank, int64_t n_rot, Precision prec = Precision::F16);

  int64_t n_layer() const { return n_layer_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t row() const { return row_; }  // kv_lora_rank + n_rot
  int64_t kv_lora_rank() const { return kv_lora_rank_; }
  Precision precision() const { return prec_; }
  size_t bytes() const;

  // Writes the row for position pos of layer il (rounded to F16 in F16 mode).
  void store(int64_t il, int64_t pos, const float* row);
  // Row storage of one layer: n_ctx rows of row() values (F16 bits or floats by mode).
  const uint16_t* f16(int64_t il) const { return f16_[static_cast<size_t>(il)].data(); }
  const float* f32(int64_t il) const { return f32_[static_cast<size_t>(il)].data(); }
  // Reads position pos back as floats (for tests and debugging).
  void load(int64_t il, int64_t pos, float* row) const;

 private:
  int64_t n_layer_ = 0, n_ctx_ = 0, kv_lora_rank_ = 0, row_ = 0;
  Precision prec_ = Precision::F16;
  std::vector<std::vector<uint16_t>> f16_;
  std::vector<std::vector<float>> f32_;
};

// Buffers of mla_attention_tokens for n tokens (grown as needed, then reused).
struct MlaScratch {
  std::vector<float> qa, q, kv, qfull, lat, heads;  // [T][q_lora], [T][H][nope+rot], [T][R+rot], [T][H][R+rot], [T][H][R], [T][H][hd_v]
  QuantizedActivations act, act_q;                  // a projection's input, converted (act_q: for q when its type differs)
};

// The attention block of layer il for n tokens at positions pos0, pos0 + 1, ...: x holds
// their attn_norm outputs [n][n_embd] (positions before pos0 of this layer must already be
// cached; this call caches the n new ones). out [n][n_embd] receives attn_output's result
// (before the residual add). The projections run over all n tokens (the matrix-vector
// kernels for one), the absorption by k_b / v_b per head over the tokens, the attention per
// (token, head) over the cached rows. Each token's result is bitwise equal whatever n is,
// and does not depend on the pool's thread count.
void mla_attention_tokens(const MlaParams& p, const MlaLayerWeights& w, MlaCache& cache, int64_t il, const float* x,
                          int64_t n, int64_t pos0, float* out, MlaScratch& s, ThreadPool& pool);

// One token: mla_attention_tokens with n = 1 and its own scratch.
void mla_attention(const MlaParams& p, const MlaLayerWeights& w, MlaCache& cache, int64_t il, const float* x,
                   int64_t pos, float* out, ThreadPool& pool);

}  // namespace swapmoe
