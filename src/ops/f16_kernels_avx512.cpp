// AVX-512 builds of F16 attention helpers that work on four query heads at once (heads
// that share one KV head: grouped-query attention, MLA's single latent head). Every result
// is bitwise equal to the single-head AVX2 kernels of f16_kernels_avx2.cpp. The first
// kernels use 256-bit vectors exactly like those and take AVX-512VL only for its 32 vector
// registers (the 16 accumulators of four heads x two positions, or four heads x 32 outputs,
// while each converted K/V vector is shared by the four heads); the later ones pack two of
// the AVX2 kernel's 256-bit accumulators into one 512-bit register, which keeps every lane's
// chain of operations and halves the instruction count per FMA.

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "ops/f16_kernels.h"
#include "ops/f16_reduce.inc"

namespace swapmoe::detail {

namespace {

inline __m256 cvt(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

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
  out[0] = reduce_f16_dot(x00, y00);
  out[1] = reduce_f16_dot(x01, y01);
  out[2] = reduce_f16_dot(x10, y10);
  out[3] = reduce_f16_dot(x11, y11);
  out[4] = reduce_f16_dot(x20, y20);
  out[5] = reduce_f16_dot(x21, y21);
  out[6] = reduce_f16_dot(x30, y30);
  out[7] = reduce_f16_dot(x31, y31);
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

namespace swapmoe::detail {

namespace {

// 16 F16 values -> 16 floats. (The maskz forms with full masks are the plain instructions;
// GCC 12's unmasked intrinsics trip -Wuninitialized on their undefined pass-through.)
inline __m512 cvt16(const uint16_t* p) {
  return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// One 512-bit accumulator holds both of dot_f16_f32_avx2's 256-bit accumulators: lanes
// 0..7 are its acc0 (elements [i, i+8) of each 16-element step), lanes 8..15 its acc1
// ([i+8, i+16)), so one 512-bit FMA per step does exactly its two 256-bit FMAs.
// Returns the four dot products of z0..z3, each reduced exactly as reduce_f16_dot() does it:
// acc0 + acc1, low half + high half, then two pairwise horizontal adds. _mm_hadd_ps of two
// different vectors does the same lane additions as hadd(s, s), four results at once.
inline __m128 reduce4(__m512 z0, __m512 z1, __m512 z2, __m512 z3) {
  auto half = [](__m512 z) {
    const __m256 a = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xFF, z, 0), _mm512_maskz_extractf32x8_ps(0xFF, z, 1));
    return _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  };
  const __m128 h01 = _mm_hadd_ps(half(z0), half(z1));
  const __m128 h23 = _mm_hadd_ps(half(z2), half(z3));
  return _mm_hadd_ps(h01, h23);
}

}  // namespace

void dot_f16_f32_h4p4_avx512(const uint16_t* rows, int64_t stride, const float* q, int64_t q_stride, int64_t n,
                             float scale, float* out, int64_t out_stride) {
  const uint16_t* r0 = rows;
  const uint16_t* r1 = rows + stride;
  const uint16_t* r2 = rows + 2 * stride;
  const uint16_t* r3 = rows + 3 * stride;
  // acc[h][p]: 16 accumulators + 4 converted K vectors + 1 query vector fit in the 32
  // registers; per 16-element step 4 conversions and 4 query loads feed 16 FMAs.
  __m512 acc[4][4];
  #pragma GCC unroll 4
  for (int h = 0; h < 4; ++h)
    #pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) acc[h][p] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 k0 = cvt16(r0 + i), k1 = cvt16(r1 + i), k2 = cvt16(r2 + i), k3 = cvt16(r3 + i);
    #pragma GCC unroll 4
    for (int h = 0; h < 4; ++h) {
      const __m512 qv = _mm512_loadu_ps(q + h * q_stride + i);
      acc[h][0] = _mm512_fmadd_ps(k0, qv, acc[h][0]);
      acc[h][1] = _mm512_fmadd_ps(k1, qv, acc[h][1]);
      acc[h][2] = _mm512_fmadd_ps(k2, qv, acc[h][2]);
      acc[h][3] = _mm512_fmadd_ps(k3, qv, acc[h][3]);
    }
  }
  if (i + 8 <= n) {
    // The AVX2 kernel's single 8-element step goes into acc0 only: lanes 0..7 here, the
    // mask keeps lanes 8..15 (acc1) as they are.
    auto cvt8 = [](const uint16_t* p) {
      return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    };
    const __m512 k0 = cvt8(r0 + i), k1 = cvt8(r1 + i), k2 = cvt8(r2 + i), k3 = cvt8(r3 + i);
    #pragma GCC unroll 4
    for (int h = 0; h < 4; ++h) {
      const __m512 qv = _mm512_maskz_loadu_ps(0xFF, q + h * q_stride + i);
      acc[h][0] = _mm512_mask3_fmadd_ps(k0, qv, acc[h][0], 0xFF);
      acc[h][1] = _mm512_mask3_fmadd_ps(k1, qv, acc[h][1], 0xFF);
      acc[h][2] = _mm512_mask3_fmadd_ps(k2, qv, acc[h][2], 0xFF);
      acc[h][3] = _mm512_mask3_fmadd_ps(k3, qv, acc[h][3], 0xFF);
    }
  }
  #pragma GCC unroll 4
  for (int h = 0; h < 4; ++h)
    _mm_storeu_ps(out + h * out_stride, _mm_mul_ps(reduce4(acc[h][0], acc[h][1], acc[h][2], acc[h][3]), _mm_set1_ps(scale)));
}

void weighted_sum_f16_h4_zmm_avx512(const float* w, int64_t w_stride, const uint16_t* x, int64_t x_stride,
                                    int64_t n_rows, float* y, int64_t y_stride, int64_t n) {
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    // Every output element keeps its own accumulator over the rows in order, as in the
    // 256-bit kernel; only the vector width differs.
    // (The accumulators start at +0.0f, exactly what the 256-bit kernel loads from y.)
    __m512 acc[4][4];
    #pragma GCC unroll 4
    for (int h = 0; h < 4; ++h)
      #pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) acc[h][c] = _mm512_setzero_ps();
    const uint16_t* xr = x + i;
    for (int64_t t = 0; t < n_rows; ++t, xr += x_stride) {
      const __m512 v0 = cvt16(xr), v1 = cvt16(xr + 16), v2 = cvt16(xr + 32), v3 = cvt16(xr + 48);
      #pragma GCC unroll 4
      for (int h = 0; h < 4; ++h) {
        const __m512 s = _mm512_set1_ps(w[h * w_stride + t]);
        acc[h][0] = _mm512_fmadd_ps(v0, s, acc[h][0]);
        acc[h][1] = _mm512_fmadd_ps(v1, s, acc[h][1]);
        acc[h][2] = _mm512_fmadd_ps(v2, s, acc[h][2]);
        acc[h][3] = _mm512_fmadd_ps(v3, s, acc[h][3]);
      }
    }
    #pragma GCC unroll 4
    for (int h = 0; h < 4; ++h)
      #pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) _mm512_storeu_ps(y + h * y_stride + i + 16 * c, acc[h][c]);
  }
  // The rest (n % 64 outputs per head) through the 256-bit kernel: same per-element chains.
  if (i < n) {
    for (int h = 0; h < 4; ++h) std::fill(y + h * y_stride + i, y + h * y_stride + n, 0.0f);
    weighted_sum_f16_h4_avx512(w, w_stride, x + i, x_stride, n_rows, y + i, y_stride, n - i);
  }
}

}  // namespace swapmoe::detail

namespace swapmoe::detail {

void probabilities_h4_avx512(float* p, int64_t p_stride, int64_t n, const float* sinks) {
  // The maximum: exact whatever the order. NaN scores are skipped by both (std::max(mx, NaN)
  // keeps mx; _mm512_max_ps returns its second operand when the first is NaN), and a +0 / -0
  // maximum gives the same x - max for every x, so the lane-wise maximum is as good as the
  // sequential one.
  float mx[4];
  for (int h = 0; h < 4; ++h) {
    const float* r = p + h * p_stride;
    __m512 m = _mm512_set1_ps(-INFINITY);
    int64_t t = 0;
    for (; t + 16 <= n; t += 16) m = _mm512_maskz_max_ps(0xFFFF, _mm512_loadu_ps(r + t), m);
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, m);
    float v = -INFINITY;
    for (float x : lanes) v = std::max(v, x);
    for (; t < n; ++t) v = std::max(v, r[t]);
    mx[h] = sinks ? std::max(v, sinks[h]) : v;
  }
  // exp(x - max): 16 at a time where exp_avx512.cpp reproduces this C library's expf, else
  // std::exp itself. The double sum stays scalar and in position order (it is not
  // associative); the four rows interleave so that their dependent additions overlap.
  double sum[4] = {0.0, 0.0, 0.0, 0.0};
  float* r0 = p;
  float* r1 = p + p_stride;
  float* r2 = p + 2 * p_stride;
  float* r3 = p + 3 * p_stride;
  if (exp_avx512_usable()) {
    exp_minus_sum_h4_avx512(p, p_stride, mx, n, sum);
  } else {
    for (int64_t t = 0; t < n; ++t) {
      r0[t] = std::exp(r0[t] - mx[0]);
      r1[t] = std::exp(r1[t] - mx[1]);
      r2[t] = std::exp(r2[t] - mx[2]);
      r3[t] = std::exp(r3[t] - mx[3]);
      sum[0] += static_cast<double>(r0[t]);
      sum[1] += static_cast<double>(r1[t]);
      sum[2] += static_cast<double>(r2[t]);
      sum[3] += static_cast<double>(r3[t]);
    }
  }
  if (sinks)  // after the positions, as the scalar softmax adds it
    for (int h = 0; h < 4; ++h) sum[h] += static_cast<double>(std::exp(sinks[h] - mx[h]));
  // p * inv rounded to F16 and back: vcvtps2ph with round-to-nearest-even is the IEEE
  // conversion that fp32_to_fp16 implements in scalar code.
  for (int h = 0; h < 4; ++h) {
    float* r = p + h * p_stride;
    const float inv = static_cast<float>(1.0 / sum[h]);
    const __m512 vi = _mm512_set1_ps(inv);
    int64_t t = 0;
    for (; t + 16 <= n; t += 16) {
      const __m256i hv = _mm512_maskz_cvtps_ph(0xFFFF, _mm512_mul_ps(_mm512_loadu_ps(r + t), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      _mm512_storeu_ps(r + t, _mm512_maskz_cvtph_ps(0xFFFF, hv));
    }
    if (t < n) {
      const __mmask16 m = static_cast<__mmask16>((1u << (n - t)) - 1u);
      const __m256i hv =
          _mm512_maskz_cvtps_ph(0xFFFF, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, r + t), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      _mm512_mask_storeu_ps(r + t, m, _mm512_maskz_cvtph_ps(0xFFFF, hv));
    }
  }
}

void round_f16_avx512(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_maskz_cvtps_ph(0xFFFF, _mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm512_storeu_ps(y + i, _mm512_maskz_cvtph_ps(0xFFFF, h));
  }
  if (i < n) round_f16_avx2(x + i, y + i, n - i);
}

}  // namespace swapmoe::detail
