// Q4_K x Q8_K row tile for batched matrix products on AVX-512 VNNI (this file gets the
// AVX-512 flags from its name). One call computes up to kMatTileRows (16) weight rows
// against up to kMatTileTokens activation rows.
//
// Layout: every 512-bit vector holds one int32 lane per weight row. For each block the 16
// rows' packed nibbles are transposed once (lane r = 4 consecutive bytes of row r) and
// unpacked into 64 vectors W[s][g] (sub-block s, 4-element group g) in a 4 KB stack
// buffer that stays in L1 while every token of the call uses it. Per token and sub-block:
//   acc     = sum_g dpbusd(W[s][g], broadcast(y[32 s + 4 g .. + 3]))   (exact <u, y>)
//   isum   += acc * scale[s]                                           (int32, exact)
// and the mins: imin = sum_s min[s] * (bsums[2 s] + bsums[2 s + 1]) by dpwssd. So no
// horizontal sums at all: each lane ends a block with the row's exact integer sums, and
// the float tail runs once per 16 rows:
//   acc_d = fma(d_row * y.d, float(isum), acc_d);  acc_m = fma(dmin_row * y.d, float(imin), acc_m)
//   result = acc_d - acc_m
// which is exactly what vec_dot_q4_k_avx512 and vec_dot_multi_q4_k_avx512 compute per row
// with scalar fmas (simd_kernels.inc / simd_multi.inc), so results are bitwise equal.
//
// Integer ranges: <u, y> over 32 elements <= 32 * 15 * 127 = 60960; times a 6-bit scale
// and summed over 8 sub-blocks <= 3.1e7 < 2^31. Mins: 63 * 8 * 2 * 16 * 128 < 2^31.

#include <immintrin.h>

#include <cstring>

#include "quant/avx512_transpose.h"
#include "quant/blocks.h"
#include "quant/kernels.h"
#include "quant/quant.h"

// GCC 12 expands several 512-bit intrinsics (unpack, shuffle, shifts, conversions) through a
// self-initialised "undefined" vector and then warns inside its own headers; every value is
// fully written, so the warning is noise here (as in quant_wide_avx512.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace swapmoe::quant {
namespace {

// Per-block staging for one tile: unpacked weights, scales, mins, d and dmin per row.
struct alignas(64) TileBlock {
  __m512i w[64];   // w[8 s + g]: lane r = u bytes of row r, elements 32 s + 4 g .. + 3
  __m512i sc[8];   // lane r = scale of sub-block s (int32)
  __m512i mn[8];   // lane r = min of sub-block s in both int16 halves (for dpwssd with a bsums pair)
  __m512 d, dmin;  // lane r = row r's d / dmin as float
};

// Unpacks block i of the 16 rows (row r at rows[r]) into tb.
inline void stage_block(const BlockQ4_K* const rows[16], int64_t i, TileBlock& tb) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int half = 0; half < 2; ++half) {
    __m512i v[16];
    for (int r = 0; r < 16; ++r) v[r] = _mm512_loadu_si512(rows[r][i].qs + 64 * half);
    transpose16_epi32(v);
    // Dword k (0..15) of this half is dword 16 half + k of qs: pair j = 2 half + k / 8,
    // group g = k % 8; low nibbles are sub-block 2 j, high nibbles 2 j + 1.
    for (int k = 0; k < 16; ++k) {
      const int j = 2 * half + k / 8, g = k % 8;
      tb.w[8 * (2 * j) + g] = _mm512_and_si512(v[k], m4);
      tb.w[8 * (2 * j + 1) + g] = _mm512_and_si512(_mm512_srli_epi32(v[k], 4), m4);
    }
  }
  // Header: dword 0 = d | dmin << 16, dwords 1..3 = the 12 packed scale bytes.
  alignas(64) uint32_t hdr[4][16];
  for (int r = 0; r < 16; ++r) {
    uint32_t h[4];
    std::memcpy(h, &rows[r][i], 16);
    hdr[0][r] = h[0];
    hdr[1][r] = h[1];
    hdr[2][r] = h[2];
    hdr[3][r] = h[3];
  }
  const __m512i h0 = _mm512_load_si512(hdr[0]);
  const __m512i u0 = _mm512_load_si512(hdr[1]), u1 = _mm512_load_si512(hdr[2]), u2 = _mm512_load_si512(hdr[3]);
  tb.d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h0));
  tb.dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(h0, 16)));
  // Same bit juggling as k4_scales_mins, one row per lane.
  const __m512i c3f = _mm512_set1_epi32(0x3f3f3f3f), c0f = _mm512_set1_epi32(0x0f0f0f0f), c03 = _mm512_set1_epi32(0x03030303);
  const __m512i s0 = _mm512_and_si512(u0, c3f);
  const __m512i s1 = _mm512_or_si512(_mm512_and_si512(u2, c0f), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), c03), 4));
  const __m512i n0 = _mm512_and_si512(u1, c3f);
  const __m512i n1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), c0f),
                                     _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), c03), 4));
  const __m512i ff = _mm512_set1_epi32(0xFF);
  for (int s = 0; s < 4; ++s) {
    tb.sc[s] = _mm512_and_si512(_mm512_srli_epi32(s0, 8 * s), ff);
    tb.sc[4 + s] = _mm512_and_si512(_mm512_srli_epi32(s1, 8 * s), ff);
    const __m512i a = _mm512_and_si512(_mm512_srli_epi32(n0, 8 * s), ff);
    const __m512i b = _mm512_and_si512(_mm512_srli_epi32(n1, 8 * s), ff);
    tb.mn[s] = _mm512_or_si512(a, _mm512_slli_epi32(a, 16));
    tb.mn[4 + s] = _mm512_or_si512(b, _mm512_slli_epi32(b, 16));
  }
}

inline __m512i bcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// TT tokens (activation blocks y[t]) against the staged block; accumulators in acc[t][0..1].
template <int TT>
inline void tokens_block(const TileBlock& tb, const BlockQ8_K* const* y, __m512* accd, __m512* accm) {
  __m512i isum[TT];
  #pragma GCC unroll 16
  for (int t = 0; t < TT; ++t) isum[t] = _mm512_setzero_si512();
  #pragma GCC unroll 1
  for (int s = 0; s < 8; ++s) {
    __m512i acc[TT];
    #pragma GCC unroll 16
    for (int t = 0; t < TT; ++t) acc[t] = _mm512_setzero_si512();
    #pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      const __m512i w = tb.w[8 * s + g];
      #pragma GCC unroll 16
      for (int t = 0; t < TT; ++t) acc[t] = _mm512_dpbusd_epi32(acc[t], w, bcast32(y[t]->qs + 32 * s + 4 * g));
    }
    const __m512i sc = tb.sc[s];
    #pragma GCC unroll 16
    for (int t = 0; t < TT; ++t) isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(acc[t], sc));
  }
  #pragma GCC unroll 16
  for (int t = 0; t < TT; ++t) {
    __m512i imin = _mm512_setzero_si512();
    #pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) imin = _mm512_dpwssd_epi32(imin, tb.mn[s], bcast32(y[t]->bsums + 2 * s));
    const __m512 yd = _mm512_set1_ps(y[t]->d);
    accd[t] = _mm512_fmadd_ps(_mm512_mul_ps(tb.d, yd), _mm512_cvtepi32_ps(isum[t]), accd[t]);
    accm[t] = _mm512_fmadd_ps(_mm512_mul_ps(tb.dmin, yd), _mm512_cvtepi32_ps(imin), accm[t]);
  }
}

template <int TT>
inline void tokens_run(const TileBlock& tb, const uint8_t* a, size_t as, int64_t i, __m512* accd, __m512* accm) {
  const BlockQ8_K* y[TT];
  #pragma GCC unroll 16
  for (int t = 0; t < TT; ++t) y[t] = reinterpret_cast<const BlockQ8_K*>(a + static_cast<size_t>(t) * as) + i;
  __m512 d[TT], m[TT];
  #pragma GCC unroll 16
  for (int t = 0; t < TT; ++t) {
    d[t] = accd[t];
    m[t] = accm[t];
  }
  tokens_block<TT>(tb, y, d, m);
  #pragma GCC unroll 16
  for (int t = 0; t < TT; ++t) {
    accd[t] = d[t];
    accm[t] = m[t];
  }
}

}  // namespace

void mat_tile_q4_k_avx512(int64_t n, const void* w, size_t w_stride, int nr, const void* a, size_t a_stride, int nt,
                          float* out, size_t out_stride) {
  const BlockQ4_K* rows[16];
  for (int r = 0; r < 16; ++r)
    rows[r] = reinterpret_cast<const BlockQ4_K*>(static_cast<const uint8_t*>(w) + static_cast<size_t>(r < nr ? r : nr - 1) * w_stride);
  TileBlock tb;
  __m512 accd[kMatTileTokens], accm[kMatTileTokens];
  for (int t = 0; t < nt; ++t) accd[t] = accm[t] = _mm512_setzero_ps();
  const uint8_t* ab = static_cast<const uint8_t*>(a);
  constexpr int kGroup = 8;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    stage_block(rows, i, tb);
    int t = 0;
    for (; t + kGroup <= nt; t += kGroup)
      tokens_run<kGroup>(tb, ab + static_cast<size_t>(t) * a_stride, a_stride, i, accd + t, accm + t);
    const int rem = nt - t;
    const uint8_t* at = ab + static_cast<size_t>(t) * a_stride;
    switch (rem) {
      case 1: tokens_run<1>(tb, at, a_stride, i, accd + t, accm + t); break;
      case 2: tokens_run<2>(tb, at, a_stride, i, accd + t, accm + t); break;
      case 3: tokens_run<3>(tb, at, a_stride, i, accd + t, accm + t); break;
      case 4: tokens_run<4>(tb, at, a_stride, i, accd + t, accm + t); break;
      case 5: tokens_run<5>(tb, at, a_stride, i, accd + t, accm + t); break;
      case 6: tokens_run<6>(tb, at, a_stride, i, accd + t, accm + t); break;
      case 7: tokens_run<7>(tb, at, a_stride, i, accd + t, accm + t); break;
      default: break;
    }
  }
  const __mmask16 keep = static_cast<__mmask16>((1u << nr) - 1u);
  for (int t = 0; t < nt; ++t)
    _mm512_mask_storeu_ps(out + static_cast<size_t>(t) * out_stride, keep, _mm512_sub_ps(accd[t], accm[t]));
}

}  // namespace swapmoe::quant
