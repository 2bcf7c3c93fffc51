// y[t] = std::exp(x[t] - mx) for 16 floats per step, bitwise equal to the C library's expf
// on the systems this was written for (glibc 2.27 and later on x86-64 with FMA: the
// table-driven algorithm of Arm's optimized-routines, run in double precision). The softmax
// of attention calls exp once per (token, head, position), and a scalar libm call per
// element cost about a tenth of the prefill attention; the decode path and the scalar code
// still call std::exp, so this must give exactly its results, not merely close ones.
//
// The algorithm, with N = 32 and x in double: k = round(x * N / ln 2), r = x * N / ln 2 - k
// (one fused multiply-subtract), 2^(k/N) from a 32-entry table of 2^(i/N) with k / N
// added to its exponent bits, and 2^(r/N) ~ 1 + C2 r + (C1 + C0 r) r^2, each step with the
// same fused operations as the library's FMA build. Inputs outside (-88, 88) (underflow,
// overflow, infinities, NaN) go to std::exp itself, lane by lane. Because a different C
// library may compute expf differently, exp_avx512_usable() compares this against
// std::exp once on a few thousand arguments; when anything differs the callers keep
// calling std::exp.

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

#include "ops/f16_kernels.h"

// GCC 12's unmasked AVX-512 intrinsics expand to a self-initialised "undefined" pass-through
// vector and trip -Wuninitialized inside the intrinsic headers; every lane is written, so
// the warning is noise here (as in src/quant/quant_wide_avx512.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace swapmoe::detail {

namespace {

struct ExpTable {
  alignas(64) uint64_t t[32];  // bits(2^(i/32)) - (i << 47): the exponent part is added back per lane
  ExpTable() {
    for (int i = 0; i < 32; ++i) {
      const double v = std::exp2(static_cast<double>(i) / 32.0);
      uint64_t b;
      std::memcpy(&b, &v, 8);
      t[i] = b - (static_cast<uint64_t>(i) << 47);
    }
  }
};

const ExpTable& table() {
  static const ExpTable t;
  return t;
}

// tab[idx & 31] per lane from the table held in four registers (two two-source permutes
// and a blend on bit 4: cheaper than a gather).
inline __m512i lookup(__m512i idx, const uint64_t* tab) {
  const __m512i lo = _mm512_permutex2var_epi64(_mm512_load_si512(tab), idx, _mm512_load_si512(tab + 8));
  const __m512i hi = _mm512_permutex2var_epi64(_mm512_load_si512(tab + 16), idx, _mm512_load_si512(tab + 24));
  return _mm512_mask_blend_epi64(_mm512_test_epi64_mask(idx, _mm512_set1_epi64(16)), lo, hi);
}

// exp of 8 floats (x widened to double).
inline __m256 exp8(__m256 x, const uint64_t* tab) {
  const __m512d inv_ln2_n = _mm512_set1_pd(0x1.71547652b82fep+5);  // N / ln 2
  const __m512d shift = _mm512_set1_pd(0x1.8p+52);                // rounds to an integer in the low bits
  const __m512d c0 = _mm512_set1_pd(0x1.c6af84b912394p-20);
  const __m512d c1 = _mm512_set1_pd(0x1.ebfce50fac4f3p-13);
  const __m512d c2 = _mm512_set1_pd(0x1.62e42ff0c52d6p-6);
  const __m512d xd = _mm512_cvtps_pd(x);
  __m512d kd = _mm512_fmadd_pd(inv_ln2_n, xd, shift);
  const __m512i ki = _mm512_castpd_si512(kd);
  kd = _mm512_sub_pd(kd, shift);
  const __m512d r = _mm512_fmsub_pd(inv_ln2_n, xd, kd);
  const __m512i idx = _mm512_and_si512(ki, _mm512_set1_epi64(31));
  const __m512i t = _mm512_add_epi64(lookup(idx, tab), _mm512_slli_epi64(ki, 47));
  const __m512d z = _mm512_fmadd_pd(c0, r, c1);
  const __m512d r2 = _mm512_mul_pd(r, r);
  __m512d y = _mm512_fmadd_pd(c2, r, _mm512_set1_pd(1.0));
  y = _mm512_fmadd_pd(z, r2, y);
  y = _mm512_mul_pd(y, _mm512_castsi512_pd(t));
  return _mm512_cvtpd_ps(y);
}

// exp(x) for 16 lanes; lanes whose |x| >= 88 (or inf / NaN) through std::exp.
inline __m512 exp16(__m512 x, const uint64_t* tab) {
  const __m256 lo = exp8(_mm512_castps512_ps256(x), tab);
  const __m256 hi = exp8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)), tab);
  __m512 y = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
  // The library's own test: the top 12 bits of |x| above those of 88.0f's neighbourhood.
  const __m512i top = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(x), 20), _mm512_set1_epi32(0x7ff));
  const __mmask16 special = _mm512_cmpgt_epu32_mask(top, _mm512_set1_epi32(0x42a));
  if (special) {
    alignas(64) float xs[16], ys[16];
    _mm512_store_ps(xs, x);
    _mm512_store_ps(ys, y);
    for (int i = 0; i < 16; ++i)
      if (special & (1u << i)) ys[i] = std::exp(xs[i]);
    y = _mm512_load_ps(ys);
  }
  return y;
}

bool check_against_libm() {
  const uint64_t* tab = table().t;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> wide(-110.0f, 90.0f), narrow(-1.0f, 0.0f);
  alignas(64) float x[16], y[16];
  for (int round = 0; round < 512; ++round) {
    for (int i = 0; i < 16; ++i) x[i] = (round % 2 ? wide(rng) : narrow(rng));
    if (round == 0) {
      const float special[16] = {0.0f, -0.0f, -INFINITY, INFINITY, NAN, -88.0f, -87.9f, -103.5f,
                                 -104.0f, 88.8f, 1e-30f, -1e-30f, -0x1.9fe368p6f, -0x1.9d1d9ep6f, 0x1.62e42ep6f, -50.0f};
      std::memcpy(x, special, sizeof x);
    }
    _mm512_store_ps(y, exp16(_mm512_load_ps(x), tab));
    for (int i = 0; i < 16; ++i) {
      const float want = std::exp(x[i]);
      if (std::memcmp(&want, &y[i], 4) != 0 && !(std::isnan(want) && std::isnan(y[i]))) return false;
    }
  }
  return true;
}

}  // namespace

bool exp_avx512_usable() {
  static const bool ok = check_against_libm();
  return ok;
}

void exp_minus_sum_h4_avx512(float* p, int64_t p_stride, const float* mx, int64_t n, double* sums) {
  // Each row's double sum is one dependent chain in position order; the four chains and the
  // next block's exps are independent, so the out-of-order core overlaps them.
  const uint64_t* tab = table().t;
  float* r0 = p;
  float* r1 = p + p_stride;
  float* r2 = p + 2 * p_stride;
  float* r3 = p + 3 * p_stride;
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  int64_t t = 0;
  for (; t + 16 <= n; t += 16) {
    _mm512_storeu_ps(r0 + t, exp16(_mm512_sub_ps(_mm512_loadu_ps(r0 + t), _mm512_set1_ps(mx[0])), tab));
    _mm512_storeu_ps(r1 + t, exp16(_mm512_sub_ps(_mm512_loadu_ps(r1 + t), _mm512_set1_ps(mx[1])), tab));
    _mm512_storeu_ps(r2 + t, exp16(_mm512_sub_ps(_mm512_loadu_ps(r2 + t), _mm512_set1_ps(mx[2])), tab));
    _mm512_storeu_ps(r3 + t, exp16(_mm512_sub_ps(_mm512_loadu_ps(r3 + t), _mm512_set1_ps(mx[3])), tab));
    for (int64_t i = t; i < t + 16; ++i) {
      s0 += static_cast<double>(r0[i]);
      s1 += static_cast<double>(r1[i]);
      s2 += static_cast<double>(r2[i]);
      s3 += static_cast<double>(r3[i]);
    }
  }
  for (; t < n; ++t) {
    r0[t] = std::exp(r0[t] - mx[0]);
    r1[t] = std::exp(r1[t] - mx[1]);
    r2[t] = std::exp(r2[t] - mx[2]);
    r3[t] = std::exp(r3[t] - mx[3]);
    s0 += static_cast<double>(r0[t]);
    s1 += static_cast<double>(r1[t]);
    s2 += static_cast<double>(r2[t]);
    s3 += static_cast<double>(r3[t]);
  }
  sums[0] = s0;
  sums[1] = s1;
  sums[2] = s2;
  sums[3] = s3;
}

void exp_minus_avx512(const float* x, float mx, float* y, int64_t n) {
  const uint64_t* tab = table().t;
  const __m512 vm = _mm512_set1_ps(mx);
  int64_t t = 0;
  for (; t + 16 <= n; t += 16) _mm512_storeu_ps(y + t, exp16(_mm512_sub_ps(_mm512_loadu_ps(x + t), vm), tab));
  for (; t < n; ++t) y[t] = std::exp(x[t] - mx);
}

}  // namespace swapmoe::detail
