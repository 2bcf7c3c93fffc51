#include <immintrin.h>

#include "ops/f16_kernels.h"
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
  acc0 = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  float r = _mm_cvtss_f32(s);
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
  auto reduce = [](__m256 acc0, __m256 acc1) {
    acc0 = _mm256_add_ps(acc0, acc1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    return _mm_cvtss_f32(s);
  };
  float r[4] = {reduce(x0, y0), reduce(x1, y1), reduce(x2, y2), reduce(x3, y3)};
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

}  // namespace swapmoe::detail
