// 512-bit AVX-512 (BW, VNNI) dot products for Q6_K and Q8_0. Same integer strategy as
// simd_kernels.inc (unsigned levels, maddubs, per-16 scales in int32, offsets through
// bsums), but 64 elements per instruction. Measured on Zen 4 (L2-resident rows): Q6_K
// 25 vs 18 GB/s, Q8_0 22.5 vs 20 GB/s over the 256-bit VNNI versions. A 512-bit Q4_K
// was slower than its 256-bit version (the per-64 scale broadcast costs more than the
// halved dot instructions save), so Q4_K stays at 256 bits.
// Compiled with the AVX-512 flags; reached only through the trait table after
// cpu_supports(Isa::Avx512).

#include <immintrin.h>

#include <cstring>

#include "quant/blocks.h"
#include "quant/kernels.h"

// GCC 12's own _mm512_zextsi256_si512 / _mm512_inserti64x4 expand to a self-initialised
// "undefined" vector and trip -Wuninitialized inside the intrinsic headers; the values
// are fully overwritten, so the warning is noise here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace swapmoe::quant {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// ggml's hsum_float_8 order: high half + low half, then pairs, then the last two.
inline float hsum256(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// Two consecutive Q8_0 blocks' 32 quants each, as one 512-bit vector.
inline __m512i load2_q8_0(const swapmoe::quant::BlockQ8_0* b) {
  return _mm512_inserti64x4(_mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)), 1);
}

// acc += d_x d_y * (x . y) for one block, at 256 bits (the odd last block).
inline __m256 fma_q8_0_block(const swapmoe::quant::BlockQ8_0* x, const swapmoe::quant::BlockQ8_0* y, __m256 acc) {
  const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->qs));
  const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y->qs));
  const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(qx), _mm256_sign_epi8(qy, qx));
  return _mm256_fmadd_ps(_mm256_set1_ps(h2f(x->d) * h2f(y->d)), _mm256_cvtepi32_ps(p), acc);
}

// Lane k (0..31) of the result takes int16 element idx[k] of v: used to spread four
// per-16 scales over 8 lanes each.
inline __m512i spread4(__m512i v, int first) {
  const __m512i idx = _mm512_add_epi16(
      _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
      _mm512_set1_epi16(static_cast<int16_t>(first)));
  return _mm512_permutexvar_epi16(idx, v);
}

// acc += d * (ggml's 8 int32 lanes of one Q6_K block). sumi's 16 lanes hold, per 64
// elements, lane j = bytes 4j..4j+3: the low 8 lanes come from even 32-element chunks and
// the high 8 from odd ones, so low + high is exactly ggml's 256-bit sumi (lane L sums the
// elements with (e % 32) / 4 == L). The -32 offset is subtracted there in int32, as ggml
// does, so each block costs one 8-lane FMA, in block order.
inline __m256 fma_q6_k_block(float d, __m512i sumi, __m256i off16, const int16_t* bsums, __m256 acc) {
  const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(sumi), _mm512_extracti64x4_epi64(sumi, 1));
  const __m256i off = _mm256_madd_epi16(off16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums)));
  return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_sub_epi32(s8, off)), acc);
}

}  // namespace

// Q6_K in llama.cpp's order (ggml_vec_dot_q6_K_q8_K, AVX2 path): the unpacking and the
// integer dots run at 512 bits (exact, so their order is free), the float part is ggml's:
// one 8-lane accumulator, one FMA per block, hsum_float_8. Keeping a 16-lane float
// accumulator and the offsets in a second one was a few ulps off.
float vec_dot_q6_k_avx512w(int64_t n, const void* w, const void* a) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i m2 = _mm512_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
    const __m512i sc512 = _mm512_zextsi256_si512(sc16);
    __m512i sumi = _mm512_setzero_si512();
    #pragma GCC unroll 8
    for (int h = 0; h < 2; ++h) {
      // ql[64h .. 64h+63] = low nibbles of chunks (0,1) and, shifted, of chunks (2,3);
      // qh[32h ..] holds the high bit pairs: (qh, qh >> 2) for chunks (0,1), >> 4 for (2,3).
      const __m512i l = _mm512_loadu_si512(x[i].ql + 64 * h);
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qh + 32 * h));
      const __m512i hh = _mm512_inserti64x4(_mm512_zextsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
      const __m512i u01 = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16(_mm512_and_si512(hh, m2), 4));
      const __m512i u23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hh, 4), m2), 4));
      const int8_t* q8 = y[i].qs + 128 * h;
      const __m512i p01 = _mm512_maddubs_epi16(u01, _mm512_loadu_si512(q8));
      const __m512i p23 = _mm512_maddubs_epi16(u23, _mm512_loadu_si512(q8 + 64));
      sumi = _mm512_dpwssd_epi32(sumi, p01, spread4(sc512, 8 * h));
      sumi = _mm512_dpwssd_epi32(sumi, p23, spread4(sc512, 8 * h + 4));
    }
    // u = level + 32: 32 * scale * bsum per 16 elements comes off in fma_q6_k_block.
    acc = fma_q6_k_block(y[i].d * h2f(x[i].d), sumi, _mm256_slli_epi16(sc16, 5), y[i].bsums, acc);
  }
  return hsum256(acc);
}

// Q8_0 keeps llama.cpp's summation order: one 8-lane float accumulator that takes each
// block's scaled products in block order, then an 8-lane horizontal sum. Only the integer
// dot of two blocks runs at 512 bits (exact, so the order there does not matter). Summing
// even and odd blocks in separate halves was a few ulps off ggml's kernels, and Q8_0
// activation rounding in the next layer amplified that into visible logit differences
// (olmoe Q8_0 flipped a near-tie greedy token against llama.cpp; tests/conformance/README.md).
float vec_dot_q8_0_avx512w(int64_t n, const void* w, const void* a) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / QK8_0;
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i qx = load2_q8_0(x + i), qy = load2_q8_0(y + i);
    // No sign_epi8 at 512 bits: |x| and y negated where x < 0 (x = 0 contributes 0 anyway).
    const __mmask64 neg = _mm512_movepi8_mask(qx);
    const __m512i sy = _mm512_mask_sub_epi8(qy, neg, _mm512_setzero_si512(), qy);
    const __m512 p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(qx), sy));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm512_castps512_ps256(p), acc);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d)), _mm512_extractf32x8_ps(p, 1), acc);
  }
  if (i < nb) acc = fma_q8_0_block(x + i, y + i, acc);  // odd block count
  return hsum256(acc);
}

// ------------------------------------------------------------------ multi-row versions
// One weight row against NA activation rows (see simd_multi.inc for the contract): the
// unpacked weights and spread scales are computed once per block; every row then runs
// the exact instruction sequence of the single-row kernel above, so results are bitwise
// equal to vec_dot_q6_k_avx512w / vec_dot_q8_0_avx512w.

namespace {

template <typename B>
inline const B* act_row(const void* a, size_t stride, int r) {
  return reinterpret_cast<const B*>(static_cast<const uint8_t*>(a) + static_cast<size_t>(r) * stride);
}

template <int NA>
void wide_multi_q6_k(int64_t n, const void* w, const void* a, size_t as, float* out, size_t os) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i m2 = _mm512_set1_epi8(3);
  __m256 acc[NA];
  #pragma GCC unroll 8
  for (int r = 0; r < NA; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
    const __m512i sc512 = _mm512_zextsi256_si512(sc16);
    const __m256i off16 = _mm256_slli_epi16(sc16, 5);
    __m512i u[4], s[4];
    #pragma GCC unroll 8
    for (int h = 0; h < 2; ++h) {
      const __m512i l = _mm512_loadu_si512(x[i].ql + 64 * h);
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qh + 32 * h));
      const __m512i hh = _mm512_inserti64x4(_mm512_zextsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
      u[2 * h] = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16(_mm512_and_si512(hh, m2), 4));
      u[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                     _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hh, 4), m2), 4));
      s[2 * h] = spread4(sc512, 8 * h);
      s[2 * h + 1] = spread4(sc512, 8 * h + 4);
    }
    const float dx = h2f(x[i].d);
    #pragma GCC unroll 8
    for (int r = 0; r < NA; ++r) {
      const BlockQ8_K* y = act_row<BlockQ8_K>(a, as, r) + i;
      __m512i sumi = _mm512_setzero_si512();
      #pragma GCC unroll 8
      for (int h = 0; h < 2; ++h) {
        const int8_t* q8 = y->qs + 128 * h;
        const __m512i p01 = _mm512_maddubs_epi16(u[2 * h], _mm512_loadu_si512(q8));
        const __m512i p23 = _mm512_maddubs_epi16(u[2 * h + 1], _mm512_loadu_si512(q8 + 64));
        sumi = _mm512_dpwssd_epi32(sumi, p01, s[2 * h]);
        sumi = _mm512_dpwssd_epi32(sumi, p23, s[2 * h + 1]);
      }
      acc[r] = fma_q6_k_block(y->d * dx, sumi, off16, y->bsums, acc[r]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < NA; ++r) out[static_cast<size_t>(r) * os] = hsum256(acc[r]);
}

template <int NA>
void wide_multi_q8_0(int64_t n, const void* w, const void* a, size_t as, float* out, size_t os) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const int64_t nb = n / QK8_0;
  __m256 acc[NA];
  #pragma GCC unroll 8
  for (int r = 0; r < NA; ++r) acc[r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i qx = load2_q8_0(x + i);
    const __mmask64 neg = _mm512_movepi8_mask(qx);
    const __m512i ax = _mm512_abs_epi8(qx);
    const float dx0 = h2f(x[i].d), dx1 = h2f(x[i + 1].d);
    #pragma GCC unroll 8
    for (int r = 0; r < NA; ++r) {
      const BlockQ8_0* y = act_row<BlockQ8_0>(a, as, r) + i;
      const __m512i qy = load2_q8_0(y);
      const __m512i sy = _mm512_mask_sub_epi8(qy, neg, _mm512_setzero_si512(), qy);
      const __m512 p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ax, sy));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dx0 * h2f(y[0].d)), _mm512_castps512_ps256(p), acc[r]);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dx1 * h2f(y[1].d)), _mm512_extractf32x8_ps(p, 1), acc[r]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < NA; ++r) {
    if (i < nb) acc[r] = fma_q8_0_block(x + i, act_row<BlockQ8_0>(a, as, r) + i, acc[r]);
    out[static_cast<size_t>(r) * os] = hsum256(acc[r]);
  }
}

}  // namespace

#define SMQ_MULTI_DISPATCH(fn)                                     \
  switch (na) {                                                    \
    case 1: return fn<1>(n, w, a, a_stride, out, out_stride);      \
    case 2: return fn<2>(n, w, a, a_stride, out, out_stride);      \
    case 3: return fn<3>(n, w, a, a_stride, out, out_stride);      \
    case 4: return fn<4>(n, w, a, a_stride, out, out_stride);      \
    case 5: return fn<5>(n, w, a, a_stride, out, out_stride);      \
    case 6: return fn<6>(n, w, a, a_stride, out, out_stride);      \
    case 7: return fn<7>(n, w, a, a_stride, out, out_stride);      \
    default: return fn<8>(n, w, a, a_stride, out, out_stride);     \
  }

void vec_dot_multi_q6_k_avx512w(int64_t n, const void* w, const void* a, size_t a_stride, int na, float* out,
                                size_t out_stride) {
  SMQ_MULTI_DISPATCH(wide_multi_q6_k)
}
void vec_dot_multi_q8_0_avx512w(int64_t n, const void* w, const void* a, size_t a_stride, int na, float* out,
                                size_t out_stride) {
  SMQ_MULTI_DISPATCH(wide_multi_q8_0)
}

#undef SMQ_MULTI_DISPATCH

}  // namespace swapmoe::quant
