// AVX-512 builds of F16 attention helpers that work on four query heads at once (heads
// that share one KV head: grouped-query attention, MLA's single latent head). The code
// uses 256-bit vectors exactly like f16_kernels_avx2.cpp, so every result is bitwise equal
// to the single-head AVX2 kernels; this file is compiled with AVX-512VL only for its 32
// vector registers, which hold the 16 accumulators of four heads x two positions (or four
// heads x 32 outputs) while each converted K/V vector is shared by the four heads.

#include <immintrin.h>

#include "ops/f16_kernels.h"

namespace swapmoe::detail {

namespace {

inline __m256 cvt(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// dot_f16_f32_avx2's reduction of its two accumulators.
inline float reduce(__m256 acc0, __m256 acc1) {
  acc0 = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}

}  // namespace

void dot_f16_f32_h4p2_avx512(const uint16_t* rows, int64_t stride, const float* q, int64_t q_stride, int64_t n,
                             float* out) {
  const uint16_t* r0 = rows;
  const uint16_t* r1 = rows + stride;
  const float* q0 = q;
  const float* q1 = q + q_stride;
  const float* q2 = q + 2 * q_stride;
  const float* q3 = q + 3 * q_stride;
  // x*: elements [i, i+8) of each 16-element step, y*: [i+8, i+16), as in the AVX2 kernel.
  __m256 x00 = _mm256_setzero_ps(), y00 = _mm256_setzero_ps(), x01 = _mm256_setzero_ps(), y01 = _mm256_setzero_ps();
  __m256 x10 = _mm256_setzero_ps(), y10 = _mm256_setzero_ps(), x11 = _mm256_setzero_ps(), y11 = _mm256_setzero_ps();
  __m256 x20 = _mm256_setzero_ps(), y20 = _mm256_setzero_ps(), x21 = _mm256_setzero_ps(), y21 = _mm256_setzero_ps();
  __m256 x30 = _mm256_setzero_ps(), y30 = _mm256_setzero_ps(), x31 = _mm256_setzero_ps(), y31 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a0 = cvt(r0 + i), b0 = cvt(r0 + i + 8), a1 = cvt(r1 + i), b1 = cvt(r1 + i + 8);
    __m256 lo = _mm256_loadu_ps(q0 + i), hi = _mm256_loadu_ps(q0 + i + 8);
    x00 = _mm256_fmadd_ps(a0, lo, x00), y00 = _mm256_fmadd_ps(b0, hi, y00);
    x01 = _mm256_fmadd_ps(a1, lo, x01), y01 = _mm256_fmadd_ps(b1, hi, y01);
    lo = _mm256_loadu_ps(q1 + i), hi = _mm256_loadu_ps(q1 + i + 8);
    x10 = _mm256_fmadd_ps(a0, lo, x10), y10 = _mm256_fmadd_ps(b0, hi, y10);
    x11 = _mm256_fmadd_ps(a1, lo, x11), y11 = _mm256_fmadd_ps(b1, hi, y11);
    lo = _mm256_loadu_ps(q2 + i), hi = _mm256_loadu_ps(q2 + i + 8);
    x20 = _mm256_fmadd_ps(a0, lo, x20), y20 = _mm256_fmadd_ps(b0, hi, y20);
    x21 = _mm256_fmadd_ps(a1, lo, x21), y21 = _mm256_fmadd_ps(b1, hi, y21);
    lo = _mm256_loadu_ps(q3 + i), hi = _mm256_loadu_ps(q3 + i + 8);
    x30 = _mm256_fmadd_ps(a0, lo, x30), y30 = _mm256_fmadd_ps(b0, hi, y30);
    x31 = _mm256_fmadd_ps(a1, lo, x31), y31 = _mm256_fmadd_ps(b1, hi, y31);
  }
  if (i + 8 <= n) {
    const __m256 a0 = cvt(r0 + i), a1 = cvt(r1 + i);
    x00 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(q0 + i), x00);
    x01 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(q0 + i), x01);
    x10 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(q1 + i), x10);
    x11 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(q1 + i), x11);
    x20 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(q2 + i), x20);
    x21 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(q2 + i), x21);
    x30 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(q3 + i), x30);
    x31 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(q3 + i), x31);
  }
  out[0] = reduce(x00, y00);
  out[1] = reduce(x01, y01);
  out[2] = reduce(x10, y10);
  out[3] = reduce(x11, y11);
  out[4] = reduce(x20, y20);
  out[5] = reduce(x21, y21);
  out[6] = reduce(x30, y30);
  out[7] = reduce(x31, y31);
}

void weighted_sum_f16_h4_avx512(const float* w, int64_t w_stride, const uint16_t* x, int64_t x_stride, int64_t n_rows,
                                float* y, int64_t y_stride, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    // Fully unrolled (GCC keeps these loops rolled at -O2, and the accumulators would
    // then live on the stack).
    __m256 acc[4][4];
    #pragma GCC unroll 4
    for (int h = 0; h < 4; ++h)
      #pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) acc[h][c] = _mm256_loadu_ps(y + h * y_stride + i + 8 * c);
    const uint16_t* xr = x + i;
    for (int64_t t = 0; t < n_rows; ++t, xr += x_stride) {
      const __m256 v0 = cvt(xr), v1 = cvt(xr + 8), v2 = cvt(xr + 16), v3 = cvt(xr + 24);
      #pragma GCC unroll 4
      for (int h = 0; h < 4; ++h) {
        const __m256 s = _mm256_set1_ps(w[h * w_stride + t]);
        acc[h][0] = _mm256_fmadd_ps(v0, s, acc[h][0]);
        acc[h][1] = _mm256_fmadd_ps(v1, s, acc[h][1]);
        acc[h][2] = _mm256_fmadd_ps(v2, s, acc[h][2]);
        acc[h][3] = _mm256_fmadd_ps(v3, s, acc[h][3]);
      }
    }
    #pragma GCC unroll 4
    for (int h = 0; h < 4; ++h)
      #pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) _mm256_storeu_ps(y + h * y_stride + i + 8 * c, acc[h][c]);
  }
  // The last n % 32 outputs per head through the single-head kernel (8-wide steps and its
  // scalar tail): the same operations per output as it would have run on them.
  if (i < n)
    for (int h = 0; h < 4; ++h) weighted_sum_f16_avx2(w + h * w_stride, x + i, x_stride, n_rows, y + h * y_stride + i, n - i);
}

}  // namespace swapmoe::detail
