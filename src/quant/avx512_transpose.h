#pragma once
// 16 x 16 dword transpose on AVX-512 for the row tiles (q4k_tile_avx512.cpp, simd_iq_tile.inc):
// include only from files compiled with the AVX-512 flags.

#include <immintrin.h>

// GCC 12 expands several 512-bit intrinsics (unpack, shuffle) through a self-initialised
// "undefined" vector and then warns inside its own headers; every value is fully written.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace swapmoe::quant {
namespace {

// Transposes 16 vectors of 16 dwords in place: out[k] lane r = in[r] lane k.
inline void transpose16_epi32(__m512i v[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
  }
  // t[2a]   128-bit lane L: (v2a[4L], v2a+1[4L], v2a[4L+1], v2a+1[4L+1])
  // t[2a+1] 128-bit lane L: (v2a[4L+2], v2a+1[4L+2], v2a[4L+3], v2a+1[4L+3])
  for (int i = 0; i < 16; i += 4) {
    v[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    v[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    v[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    v[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // v[4b + c] 128-bit lane L: rows 4b..4b+3, dword 4L + c.
  for (int c = 0; c < 4; ++c) {
    // Gather lanes L = 0..3 of v[c], v[4+c], v[8+c], v[12+c] into full vectors.
    const __m512i a = v[c], b = v[4 + c], e = v[8 + c], f = v[12 + c];
    const __m512i ab_lo = _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0));  // a0 a1 b0 b1
    const __m512i ab_hi = _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2));  // a2 a3 b2 b3
    const __m512i ef_lo = _mm512_shuffle_i32x4(e, f, _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i ef_hi = _mm512_shuffle_i32x4(e, f, _MM_SHUFFLE(3, 2, 3, 2));
    t[c] = _mm512_shuffle_i32x4(ab_lo, ef_lo, _MM_SHUFFLE(2, 0, 2, 0));       // a0 b0 e0 f0: dword c
    t[4 + c] = _mm512_shuffle_i32x4(ab_lo, ef_lo, _MM_SHUFFLE(3, 1, 3, 1));   // a1 b1 e1 f1: dword 4 + c
    t[8 + c] = _mm512_shuffle_i32x4(ab_hi, ef_hi, _MM_SHUFFLE(2, 0, 2, 0));   // dword 8 + c
    t[12 + c] = _mm512_shuffle_i32x4(ab_hi, ef_hi, _MM_SHUFFLE(3, 1, 3, 1));  // dword 12 + c
  }
  for (int k = 0; k < 16; ++k) v[k] = t[k];
}

}  // namespace
}  // namespace swapmoe::quant

#pragma GCC diagnostic pop
