#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "ops/f16_kernels.h"
#include "ops/f16_reduce.inc"
#include "util/fp16.h"

namespace swapmoe::detail {

float dot_f16_f32_avx2(const uint16_t* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    const __m256 a1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 8)));
    acc0 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 a0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    acc0 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b + i), acc0);
  }
  float r = reduce_f16_dot(acc0, acc1);
  for (; i < n; ++i) r += fp16_to_fp32(a[i]) * b[i];
  return r;
}

void axpy_f16_avx2(float s, const uint16_t* x, float* y, int64_t n) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(xv, vs, _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += s * fp16_to_fp32(x[i]);
}

void dot_f16_f32_x4_avx2(const uint16_t* a, int64_t a_stride, const float* b, int64_t n, float* out) {
  // Four rows at once: each row runs dot_f16_f32_avx2's exact sequence (two accumulators
  // over 16-element steps, one 8-element step, the same reduction, the same scalar tail),
  // so every result is bitwise equal to it; the four chains are independent, which hides
  // the FMA latency that bounds the single-row loop.
  const uint16_t* r0 = a;
  const uint16_t* r1 = a + a_stride;
  const uint16_t* r2 = a + 2 * a_stride;
  const uint16_t* r3 = a + 3 * a_stride;
  auto cvt = [](const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); };
  __m256 x0 = _mm256_setzero_ps(), y0 = _mm256_setzero_ps();
  __m256 x1 = _mm256_setzero_ps(), y1 = _mm256_setzero_ps();
  __m256 x2 = _mm256_setzero_ps(), y2 = _mm256_setzero_ps();
  __m256 x3 = _mm256_setzero_ps(), y3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 b0 = _mm256_loadu_ps(b + i), b1 = _mm256_loadu_ps(b + i + 8);
    x0 = _mm256_fmadd_ps(cvt(r0 + i), b0, x0);
    y0 = _mm256_fmadd_ps(cvt(r0 + i + 8), b1, y0);
    x1 = _mm256_fmadd_ps(cvt(r1 + i), b0, x1);
    y1 = _mm256_fmadd_ps(cvt(r1 + i + 8), b1, y1);
    x2 = _mm256_fmadd_ps(cvt(r2 + i), b0, x2);
    y2 = _mm256_fmadd_ps(cvt(r2 + i + 8), b1, y2);
    x3 = _mm256_fmadd_ps(cvt(r3 + i), b0, x3);
    y3 = _mm256_fmadd_ps(cvt(r3 + i + 8), b1, y3);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 b0 = _mm256_loadu_ps(b + i);
    x0 = _mm256_fmadd_ps(cvt(r0 + i), b0, x0);
    x1 = _mm256_fmadd_ps(cvt(r1 + i), b0, x1);
    x2 = _mm256_fmadd_ps(cvt(r2 + i), b0, x2);
    x3 = _mm256_fmadd_ps(cvt(r3 + i), b0, x3);
  }
  float r[4] = {reduce_f16_dot(x0, y0), reduce_f16_dot(x1, y1), reduce_f16_dot(x2, y2), reduce_f16_dot(x3, y3)};
  const uint16_t* rows[4] = {r0, r1, r2, r3};
  for (int k = 0; k < 4; ++k) {
    for (int64_t j = i; j < n; ++j) r[k] += fp16_to_fp32(rows[k][j]) * b[j];
    out[k] = r[k];
  }
}

void weighted_sum_f16_avx2(const float* w, const uint16_t* x, int64_t x_stride, int64_t n_rows, float* y, int64_t n) {
  // y[i] += w[t] * x[t][i] for t = 0, 1, ... in that order, per element exactly as
  // axpy_f16_avx2 does it row after row; but 32 elements of y stay in registers across all
  // rows instead of being loaded and stored once per row.
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 a0 = _mm256_loadu_ps(y + i), a1 = _mm256_loadu_ps(y + i + 8);
    __m256 a2 = _mm256_loadu_ps(y + i + 16), a3 = _mm256_loadu_ps(y + i + 24);
    const uint16_t* xr = x + i;
    for (int64_t t = 0; t < n_rows; ++t, xr += x_stride) {
      const __m256 vs = _mm256_set1_ps(w[t]);
      a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xr))), vs, a0);
      a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xr + 8))), vs, a1);
      a2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xr + 16))), vs, a2);
      a3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xr + 24))), vs, a3);
    }
    _mm256_storeu_ps(y + i, a0);
    _mm256_storeu_ps(y + i + 8, a1);
    _mm256_storeu_ps(y + i + 16, a2);
    _mm256_storeu_ps(y + i + 24, a3);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 a0 = _mm256_loadu_ps(y + i);
    const uint16_t* xr = x + i;
    for (int64_t t = 0; t < n_rows; ++t, xr += x_stride)
      a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xr))), _mm256_set1_ps(w[t]), a0);
    _mm256_storeu_ps(y + i, a0);
  }
  // The scalar tail through axpy itself, so its rounding is whatever axpy's is.
  if (i < n)
    for (int64_t t = 0; t < n_rows; ++t) axpy_f16_avx2(w[t], x + t * x_stride + i, y + i, n - i);
}

void round_f16_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
  for (; i < n; ++i) y[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
}

namespace {

inline __m256 cvt8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }


}  // namespace

void dot_f16_f32_h2p2_avx2(const uint16_t* rows, int64_t stride, const float* q, int64_t q_stride, int64_t n,
                           float scale, float* out, int64_t out_stride) {
  // x[h][p]: elements [i, i+8) of each 16-element step, y[h][p]: [i+8, i+16), exactly the
  // two accumulators of the single-head kernel for each (head, position).
  const uint16_t* r0 = rows;
  const uint16_t* r1 = rows + stride;
  const float* q0 = q;
  const float* q1 = q + q_stride;
  __m256 x00 = _mm256_setzero_ps(), y00 = _mm256_setzero_ps(), x01 = _mm256_setzero_ps(), y01 = _mm256_setzero_ps();
  __m256 x10 = _mm256_setzero_ps(), y10 = _mm256_setzero_ps(), x11 = _mm256_setzero_ps(), y11 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a0 = cvt8(r0 + i), a1 = cvt8(r1 + i);
    __m256 qv = _mm256_loadu_ps(q0 + i);
    x00 = _mm256_fmadd_ps(a0, qv, x00);
    x01 = _mm256_fmadd_ps(a1, qv, x01);
    qv = _mm256_loadu_ps(q1 + i);
    x10 = _mm256_fmadd_ps(a0, qv, x10);
    x11 = _mm256_fmadd_ps(a1, qv, x11);
    const __m256 b0 = cvt8(r0 + i + 8), b1 = cvt8(r1 + i + 8);
    qv = _mm256_loadu_ps(q0 + i + 8);
    y00 = _mm256_fmadd_ps(b0, qv, y00);
    y01 = _mm256_fmadd_ps(b1, qv, y01);
    qv = _mm256_loadu_ps(q1 + i + 8);
    y10 = _mm256_fmadd_ps(b0, qv, y10);
    y11 = _mm256_fmadd_ps(b1, qv, y11);
  }
  if (i + 8 <= n) {
    const __m256 a0 = cvt8(r0 + i), a1 = cvt8(r1 + i);
    __m256 qv = _mm256_loadu_ps(q0 + i);
    x00 = _mm256_fmadd_ps(a0, qv, x00);
    x01 = _mm256_fmadd_ps(a1, qv, x01);
    qv = _mm256_loadu_ps(q1 + i);
    x10 = _mm256_fmadd_ps(a0, qv, x10);
    x11 = _mm256_fmadd_ps(a1, qv, x11);
  }
  out[0] = reduce_f16_dot(x00, y00) * scale;
  out[1] = reduce_f16_dot(x01, y01) * scale;
  out[out_stride] = reduce_f16_dot(x10, y10) * scale;
  out[out_stride + 1] = reduce_f16_dot(x11, y11) * scale;
}

void weighted_sum_f16_h2_avx2(const float* w, int64_t w_stride, const uint16_t* x, int64_t x_stride, int64_t n_rows,
                              float* y, int64_t y_stride, int64_t n) {
  const float* w0 = w;
  const float* w1 = w + w_stride;
  float* y0 = y;
  float* y1 = y + y_stride;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    // 2 heads x 32 outputs in 8 registers, per element the single-head kernel's chain.
    __m256 a0 = _mm256_loadu_ps(y0 + i), a1 = _mm256_loadu_ps(y0 + i + 8);
    __m256 a2 = _mm256_loadu_ps(y0 + i + 16), a3 = _mm256_loadu_ps(y0 + i + 24);
    __m256 b0 = _mm256_loadu_ps(y1 + i), b1 = _mm256_loadu_ps(y1 + i + 8);
    __m256 b2 = _mm256_loadu_ps(y1 + i + 16), b3 = _mm256_loadu_ps(y1 + i + 24);
    const uint16_t* xr = x + i;
    for (int64_t t = 0; t < n_rows; ++t, xr += x_stride) {
      const __m256 v0 = cvt8(xr), v1 = cvt8(xr + 8), v2 = cvt8(xr + 16), v3 = cvt8(xr + 24);
      const __m256 s0 = _mm256_set1_ps(w0[t]), s1 = _mm256_set1_ps(w1[t]);
      a0 = _mm256_fmadd_ps(v0, s0, a0);
      a1 = _mm256_fmadd_ps(v1, s0, a1);
      a2 = _mm256_fmadd_ps(v2, s0, a2);
      a3 = _mm256_fmadd_ps(v3, s0, a3);
      b0 = _mm256_fmadd_ps(v0, s1, b0);
      b1 = _mm256_fmadd_ps(v1, s1, b1);
      b2 = _mm256_fmadd_ps(v2, s1, b2);
      b3 = _mm256_fmadd_ps(v3, s1, b3);
    }
    _mm256_storeu_ps(y0 + i, a0);
    _mm256_storeu_ps(y0 + i + 8, a1);
    _mm256_storeu_ps(y0 + i + 16, a2);
    _mm256_storeu_ps(y0 + i + 24, a3);
    _mm256_storeu_ps(y1 + i, b0);
    _mm256_storeu_ps(y1 + i + 8, b1);
    _mm256_storeu_ps(y1 + i + 16, b2);
    _mm256_storeu_ps(y1 + i + 24, b3);
  }
  // The last n % 32 outputs per head through the single-head kernel itself.
  if (i < n) {
    weighted_sum_f16_avx2(w0, x + i, x_stride, n_rows, y0 + i, n - i);
    weighted_sum_f16_avx2(w1, x + i, x_stride, n_rows, y1 + i, n - i);
  }
}

void probabilities_h2_avx2(float* p, int64_t p_stride, int64_t n, const float* sinks) {
  // The same reasoning as probabilities_h4_avx512: the maximum is order-free (NaNs skipped
  // alike, a signed-zero maximum changes no x - max), exp and the double sums stay scalar
  // and in order, and F16C's round-to-nearest-even conversion is fp32_to_fp16's.
  float mx[2];
  for (int h = 0; h < 2; ++h) {
    const float* r = p + h * p_stride;
    __m256 m = _mm256_set1_ps(-INFINITY);
    int64_t t = 0;
    for (; t + 8 <= n; t += 8) m = _mm256_max_ps(_mm256_loadu_ps(r + t), m);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m);
    float v = -INFINITY;
    for (float x : lanes) v = std::max(v, x);
    for (; t < n; ++t) v = std::max(v, r[t]);
    mx[h] = sinks ? std::max(v, sinks[h]) : v;
  }
  float* r0 = p;
  float* r1 = p + p_stride;
  double sum0 = 0.0, sum1 = 0.0;
  for (int64_t t = 0; t < n; ++t) {
    r0[t] = std::exp(r0[t] - mx[0]);
    r1[t] = std::exp(r1[t] - mx[1]);
    sum0 += static_cast<double>(r0[t]);
    sum1 += static_cast<double>(r1[t]);
  }
  if (sinks) {  // after the positions, as the scalar softmax adds it
    sum0 += static_cast<double>(std::exp(sinks[0] - mx[0]));
    sum1 += static_cast<double>(std::exp(sinks[1] - mx[1]));
  }
  const double sums[2] = {sum0, sum1};
  for (int h = 0; h < 2; ++h) {
    float* r = p + h * p_stride;
    const float inv = static_cast<float>(1.0 / sums[h]);
    const __m256 vi = _mm256_set1_ps(inv);
    int64_t t = 0;
    for (; t + 8 <= n; t += 8)
      _mm256_storeu_ps(r + t, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(r + t), vi),
                                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    for (; t < n; ++t) r[t] = fp16_to_fp32(fp32_to_fp16(r[t] * inv));
  }
}

}  // namespace swapmoe::detail
