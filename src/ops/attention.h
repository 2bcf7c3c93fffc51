#pragma once
// Scaled dot-product attention of one query token over the KV cache, as llama.cpp
// computes it without flash attention and with its default F16 KV cache:
//   - K and V are stored as F16; ggml converts the F32 query to F16 before K.q
//     (the vec_dot_type of F16 is F16), so the query is rounded to F16 here too;
//   - scores are scaled, soft-maxed in F32 (sum in double);
//   - the probabilities are rounded to F16 before the product with V (again the
//     vec_dot_type of the F16 V cache).
// Mirroring these roundings keeps logits close enough to llama.cpp that greedy
// continuations agree.

#include <cstdint>

#include "util/thread_pool.h"

namespace swapmoe {

struct AttentionShape {
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // grouped-query attention: n_head / n_head_kv q heads share a kv head
  int64_t head_dim_k = 0;
  int64_t head_dim_v = 0;
};

// q:   [n_head * head_dim_k] F32 (already roped).
// k:   n_pos rows, row t at k + t * k_stride, each [n_head_kv * head_dim_k] F16 bits.
// v:   n_pos rows, row t at v + t * v_stride, each [n_head_kv * head_dim_v] F16 bits.
// out: [n_head * head_dim_v] F32.
// Work is split over heads; the result does not depend on the thread count.
void attention_f16(const float* q, const uint16_t* k, int64_t k_stride, const uint16_t* v, int64_t v_stride,
                   int64_t n_pos, const AttentionShape& s, float scale, float* out, ThreadPool& pool);

// Causal attention of n_tok query tokens at positions pos0, pos0+1, ...: token i attends
// to positions [0, pos0 + i] (their K/V rows must already be stored). Query row i is at
// q + i * q_stride, its output at out + i * out_stride. Each (token, head) is computed
// exactly as attention_f16 computes that head for that token alone (bitwise equal).
void attention_f16_causal(const float* q, int64_t q_stride, int64_t n_tok, int64_t pos0, const uint16_t* k,
                          int64_t k_stride, const uint16_t* v, int64_t v_stride, const AttentionShape& s, float scale,
                          float* out, int64_t out_stride, ThreadPool& pool);

// attention_f16_causal with gpt-oss's two additions. sinks (nullable, [n_head]): a logit per
// head that joins every softmax's maximum and denominator but has no value row (ggml_soft_max_ext
// with sinks). window (0: none): token i attends only to positions [pos - window + 1, pos]
// (llama.cpp's LLAMA_SWA_TYPE_STANDARD mask). Each (token, head) gets what the one-head scalar
// path gives it (the multi-head kernels take the sinks the same way), so the result does not
// depend on n_tok, the thread count or the kernel variant.
void attention_f16_window(const float* q, int64_t q_stride, int64_t n_tok, int64_t pos0, const uint16_t* k,
                          int64_t k_stride, const uint16_t* v, int64_t v_stride, const AttentionShape& s, float scale,
                          const float* sinks, int64_t window, float* out, int64_t out_stride, ThreadPool& pool);

// Plain kernels (dispatch to AVX2+F16C when the CPU has it).
// sum_i f16(a[i]) * b[i] with b already F16-representable floats.
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n);
// y[i] += s * f16(x[i])
void axpy_f16(float s, const uint16_t* x, float* y, int64_t n);
// dst[i] = f16 bits of src[i]
void f32_to_f16_row(const float* src, uint16_t* dst, int64_t n);

}  // namespace swapmoe
