#include "ops/attention.h"

#include <algorithm>
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

void attention_f16(const float* q, const uint16_t* k, int64_t k_stride, const uint16_t* v, int64_t v_stride,
                   int64_t n_pos, const AttentionShape& s, float scale, float* out, ThreadPool& pool) {
  const int64_t group = s.n_head / s.n_head_kv;
  pool.parallel_for(s.n_head, [&](int64_t h0, int64_t h1, int) {
    std::vector<float> qh(s.head_dim_k);
    std::vector<float> p(n_pos);
    for (int64_t h = h0; h < h1; ++h) {
      const int64_t kvh = h / group;
      // The query is rounded to F16, as ggml converts it for the F16 K cache.
      for (int64_t d = 0; d < s.head_dim_k; ++d) qh[d] = fp16_to_fp32(fp32_to_fp16(q[h * s.head_dim_k + d]));
      const uint16_t* kh = k + kvh * s.head_dim_k;
      float mx = -INFINITY;
      for (int64_t t = 0; t < n_pos; ++t) {
        p[t] = dot_f16_f32(kh + t * k_stride, qh.data(), s.head_dim_k) * scale;
        mx = std::max(mx, p[t]);
      }
      double sum = 0.0;
      for (int64_t t = 0; t < n_pos; ++t) {
        p[t] = std::exp(p[t] - mx);
        sum += static_cast<double>(p[t]);
      }
      const float inv = static_cast<float>(1.0 / sum);
      float* o = out + h * s.head_dim_v;
      std::fill(o, o + s.head_dim_v, 0.0f);
      const uint16_t* vh = v + kvh * s.head_dim_v;
      for (int64_t t = 0; t < n_pos; ++t) {
        // Probabilities are rounded to F16 for the product with the F16 V cache.
        const float pt = fp16_to_fp32(fp32_to_fp16(p[t] * inv));
        axpy_f16(pt, vh + t * v_stride, o, s.head_dim_v);
      }
    }
  });
}

}  // namespace swapmoe
