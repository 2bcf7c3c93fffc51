#include "ops/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "ops/f16_kernels.h"
#include "util/cpu.h"
#include "util/fp16.h"

namespace swapmoe {

namespace {
bool use_avx2() {
  static const bool v = best_isa() >= Isa::Avx2;
  return v;
}
}  // namespace

float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) {
  if (use_avx2()) return detail::dot_f16_f32_avx2(a, b, n);
  float r = 0.0f;
  for (int64_t i = 0; i < n; ++i) r += fp16_to_fp32(a[i]) * b[i];
  return r;
}

void axpy_f16(float s, const uint16_t* x, float* y, int64_t n) {
  if (use_avx2()) return detail::axpy_f16_avx2(s, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] += s * fp16_to_fp32(x[i]);
}

void f32_to_f16_row(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}

namespace {

// One query head over n_pos cached positions: the body shared by attention_f16 and
// attention_f16_causal, so that the per-token and the batched paths run the same
// instructions and agree bit for bit. qh and p are scratch of head_dim_k and n_pos floats.
void attend_head(const float* q, const uint16_t* k, int64_t k_stride, const uint16_t* v, int64_t v_stride,
                 int64_t n_pos, const AttentionShape& s, float scale, int64_t h, float* out, float* qh, float* p) {
  const int64_t group = s.n_head / s.n_head_kv;
  const int64_t kvh = h / group;
  // The query is rounded to F16, as ggml converts it for the F16 K cache.
  for (int64_t d = 0; d < s.head_dim_k; ++d) qh[d] = fp16_to_fp32(fp32_to_fp16(q[h * s.head_dim_k + d]));
  const uint16_t* kh = k + kvh * s.head_dim_k;
  float mx = -INFINITY;
  int64_t t0 = 0;
  if (use_avx2()) {
    // Four positions per call: the same per-position results, four independent chains.
    for (; t0 + 4 <= n_pos; t0 += 4) {
      float d[4];
      detail::dot_f16_f32_x4_avx2(kh + t0 * k_stride, k_stride, qh, s.head_dim_k, d);
      for (int j = 0; j < 4; ++j) p[t0 + j] = d[j] * scale;
    }
  }
  for (int64_t t = t0; t < n_pos; ++t) p[t] = dot_f16_f32(kh + t * k_stride, qh, s.head_dim_k) * scale;
  for (int64_t t = 0; t < n_pos; ++t) mx = std::max(mx, p[t]);
  double sum = 0.0;
  for (int64_t t = 0; t < n_pos; ++t) {
    p[t] = std::exp(p[t] - mx);
    sum += static_cast<double>(p[t]);
  }
  const float inv = static_cast<float>(1.0 / sum);
  float* o = out + h * s.head_dim_v;
  std::fill(o, o + s.head_dim_v, 0.0f);
  const uint16_t* vh = v + kvh * s.head_dim_v;
  // Probabilities are rounded to F16 for the product with the F16 V cache.
  for (int64_t t = 0; t < n_pos; ++t) p[t] = fp16_to_fp32(fp32_to_fp16(p[t] * inv));
  if (use_avx2()) {
    detail::weighted_sum_f16_avx2(p, vh, v_stride, n_pos, o, s.head_dim_v);
  } else {
    for (int64_t t = 0; t < n_pos; ++t) axpy_f16(p[t], vh + t * v_stride, o, s.head_dim_v);
  }
}

}  // namespace

void attention_f16(const float* q, const uint16_t* k, int64_t k_stride, const uint16_t* v, int64_t v_stride,
                   int64_t n_pos, const AttentionShape& s, float scale, float* out, ThreadPool& pool) {
  pool.parallel_for(s.n_head, [&](int64_t h0, int64_t h1, int) {
    std::vector<float> qh(s.head_dim_k);
    std::vector<float> p(n_pos);
    for (int64_t h = h0; h < h1; ++h) attend_head(q, k, k_stride, v, v_stride, n_pos, s, scale, h, out, qh.data(), p.data());
  });
}

void attention_f16_causal(const float* q, int64_t q_stride, int64_t n_tok, int64_t pos0, const uint16_t* k,
                          int64_t k_stride, const uint16_t* v, int64_t v_stride, const AttentionShape& s, float scale,
                          float* out, int64_t out_stride, ThreadPool& pool) {
  if (n_tok <= 0) return;
  // Work items are (token, head) pairs; a later token attends to more positions, so the
  // items are handed out dynamically in small runs instead of one contiguous range per
  // thread (which would give the last thread all the long rows).
  const int64_t n_items = n_tok * s.n_head;
  const int64_t run = std::max<int64_t>(1, s.n_head / 4);
  std::atomic<int64_t> next{0};
  pool.run_on_all([&](int, int) {
    std::vector<float> qh(static_cast<size_t>(s.head_dim_k));
    std::vector<float> p(static_cast<size_t>(pos0 + n_tok));
    for (;;) {
      const int64_t i0 = next.fetch_add(run, std::memory_order_relaxed);
      if (i0 >= n_items) break;
      for (int64_t i = i0; i < std::min(n_items, i0 + run); ++i) {
        const int64_t t = i / s.n_head, h = i % s.n_head;
        attend_head(q + t * q_stride, k, k_stride, v, v_stride, pos0 + t + 1, s, scale, h, out + t * out_stride,
                    qh.data(), p.data());
      }
    }
  });
}

}  // namespace swapmoe
