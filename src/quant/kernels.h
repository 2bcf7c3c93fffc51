#pragma once
// Internal declarations of every kernel behind the trait table (quant_table.cpp).
// Naming: <op>_<type>_<variant>, where variant is
//   ref    : scalar reference (ggml's *_ref / generic numerics), always available;
//   act    : scalar version of the activation quantizer llama.cpp's x86 build really runs
//            (Q8_0/Q8_1 differ from their *_ref in rounding, see quant_legacy.cpp);
//   avx2 / avx512 : SIMD versions, defined in *_avx2.cpp / *_avx512.cpp and only reachable
//            through the table after a CPU check.
// Signatures match ToFloatFn / FromFloatFn / VecDotFn in quant.h.

#include <cstddef>
#include <cstdint>

namespace swapmoe::quant {

#define SWAPMOE_DECLARE_FORMAT(t, v)                              \
  void to_float_##t##_##v(const void* src, float* dst, int64_t n); \
  void from_float_##t##_##v(const float* src, void* dst, int64_t n); \
  float vec_dot_##t##_##v(int64_t n, const void* w, const void* a);

// Scalar references (quant_legacy.cpp, quant_kquants.cpp).
SWAPMOE_DECLARE_FORMAT(f32, ref)
SWAPMOE_DECLARE_FORMAT(f16, ref)
SWAPMOE_DECLARE_FORMAT(bf16, ref)
SWAPMOE_DECLARE_FORMAT(q4_0, ref)
SWAPMOE_DECLARE_FORMAT(q4_1, ref)
SWAPMOE_DECLARE_FORMAT(q5_0, ref)
SWAPMOE_DECLARE_FORMAT(q5_1, ref)
SWAPMOE_DECLARE_FORMAT(q8_0, ref)
SWAPMOE_DECLARE_FORMAT(q8_1, ref)
SWAPMOE_DECLARE_FORMAT(q2_k, ref)
SWAPMOE_DECLARE_FORMAT(q3_k, ref)
SWAPMOE_DECLARE_FORMAT(q4_k, ref)
SWAPMOE_DECLARE_FORMAT(q5_k, ref)
SWAPMOE_DECLARE_FORMAT(q6_k, ref)
SWAPMOE_DECLARE_FORMAT(q8_k, ref)
// Grid-based i-quants (quant_iq.cpp); their from_float_*_ref throw (no quantizer).
SWAPMOE_DECLARE_FORMAT(iq2_xxs, ref)
SWAPMOE_DECLARE_FORMAT(iq2_xs, ref)
SWAPMOE_DECLARE_FORMAT(iq2_s, ref)
SWAPMOE_DECLARE_FORMAT(iq3_xxs, ref)
SWAPMOE_DECLARE_FORMAT(iq3_s, ref)
SWAPMOE_DECLARE_FORMAT(iq1_s, ref)
SWAPMOE_DECLARE_FORMAT(iq1_m, ref)
// Non-linear, microscaling and ternary formats (quant_lowbit.cpp).
SWAPMOE_DECLARE_FORMAT(iq4_nl, ref)
SWAPMOE_DECLARE_FORMAT(iq4_xs, ref)
SWAPMOE_DECLARE_FORMAT(mxfp4, ref)
SWAPMOE_DECLARE_FORMAT(tq1_0, ref)
SWAPMOE_DECLARE_FORMAT(tq2_0, ref)

// Scalar activation quantizers with llama.cpp-x86 numerics.
void from_float_q8_0_act(const float* src, void* dst, int64_t n);
void from_float_q8_1_act(const float* src, void* dst, int64_t n);

// SIMD: vec_dot for every weight format, plus the hot activation quantizers and a few
// dequantizers. Both ISAs provide the same set.
#define SWAPMOE_DECLARE_SIMD(v)                                        \
  float vec_dot_f32_##v(int64_t n, const void* w, const void* a);      \
  float vec_dot_f16_##v(int64_t n, const void* w, const void* a);      \
  float vec_dot_bf16_##v(int64_t n, const void* w, const void* a);     \
  float vec_dot_q4_0_##v(int64_t n, const void* w, const void* a);     \
  float vec_dot_q4_1_##v(int64_t n, const void* w, const void* a);     \
  float vec_dot_q5_0_##v(int64_t n, const void* w, const void* a);     \
  float vec_dot_q5_1_##v(int64_t n, const void* w, const void* a);     \
  float vec_dot_q8_0_##v(int64_t n, const void* w, const void* a);     \
  float vec_dot_q2_k_##v(int64_t n, const void* w, const void* a);     \
  float vec_dot_q3_k_##v(int64_t n, const void* w, const void* a);     \
  float vec_dot_q4_k_##v(int64_t n, const void* w, const void* a);     \
  float vec_dot_q5_k_##v(int64_t n, const void* w, const void* a);     \
  float vec_dot_q6_k_##v(int64_t n, const void* w, const void* a);     \
  void from_float_q8_0_##v(const float* src, void* dst, int64_t n);    \
  void from_float_q8_1_##v(const float* src, void* dst, int64_t n);    \
  void from_float_q8_k_##v(const float* src, void* dst, int64_t n);    \
  void from_float_f16_##v(const float* src, void* dst, int64_t n);     \
  void to_float_f16_##v(const void* src, float* dst, int64_t n);       \
  void to_float_q8_0_##v(const void* src, float* dst, int64_t n);      \
  void to_float_q4_k_##v(const void* src, float* dst, int64_t n);      \
  void to_float_q6_k_##v(const void* src, float* dst, int64_t n);

SWAPMOE_DECLARE_SIMD(avx2)
SWAPMOE_DECLARE_SIMD(avx512)

// 512-bit versions of the hottest dot products (quant_wide_avx512.cpp).
float vec_dot_q6_k_avx512w(int64_t n, const void* w, const void* a);
float vec_dot_q8_0_avx512w(int64_t n, const void* w, const void* a);

// Multi-row dot products (simd_multi*.inc, quant_wide_avx512.cpp): signature of VecDotMultiFn.
#define SWAPMOE_DECLARE_MULTI(t, v)                                                                     \
  void vec_dot_multi_##t##_##v(int64_t n, const void* w, const void* a, size_t a_stride, int na, float* out, \
                               size_t out_stride);
SWAPMOE_DECLARE_MULTI(q4_k, avx2)
SWAPMOE_DECLARE_MULTI(q5_k, avx2)
SWAPMOE_DECLARE_MULTI(q6_k, avx2)
SWAPMOE_DECLARE_MULTI(q8_0, avx2)
SWAPMOE_DECLARE_MULTI(q4_k, avx512)
SWAPMOE_DECLARE_MULTI(q5_k, avx512)
SWAPMOE_DECLARE_MULTI(q6_k, avx512w)
SWAPMOE_DECLARE_MULTI(q8_0, avx512w)
// Float formats (simd_multi_float.inc) and the 32-element legacy formats
// (simd_multi_legacy.inc), both ISAs.
SWAPMOE_DECLARE_MULTI(f32, avx2)
SWAPMOE_DECLARE_MULTI(f16, avx2)
SWAPMOE_DECLARE_MULTI(bf16, avx2)
SWAPMOE_DECLARE_MULTI(q4_0, avx2)
SWAPMOE_DECLARE_MULTI(q4_1, avx2)
SWAPMOE_DECLARE_MULTI(q5_0, avx2)
SWAPMOE_DECLARE_MULTI(q5_1, avx2)
SWAPMOE_DECLARE_MULTI(f32, avx512)
SWAPMOE_DECLARE_MULTI(f16, avx512)
SWAPMOE_DECLARE_MULTI(bf16, avx512)
SWAPMOE_DECLARE_MULTI(q4_0, avx512)
SWAPMOE_DECLARE_MULTI(q4_1, avx512)
SWAPMOE_DECLARE_MULTI(q5_0, avx512)
SWAPMOE_DECLARE_MULTI(q5_1, avx512)
// Q2_K and Q3_K (simd_multi_lowk.inc), both ISAs.
SWAPMOE_DECLARE_MULTI(q2_k, avx2)
SWAPMOE_DECLARE_MULTI(q3_k, avx2)
SWAPMOE_DECLARE_MULTI(q2_k, avx512)
SWAPMOE_DECLARE_MULTI(q3_k, avx512)
// Grid-based i-quants (simd_iq.inc), both ISAs: vec_dot and its multi-row kernel.
#define SWAPMOE_DECLARE_IQ(t, v)                                      \
  float vec_dot_##t##_##v(int64_t n, const void* w, const void* a); \
  SWAPMOE_DECLARE_MULTI(t, v)
#define SWAPMOE_DECLARE_IQ_ALL(v) \
  SWAPMOE_DECLARE_IQ(iq2_xxs, v)  \
  SWAPMOE_DECLARE_IQ(iq2_xs, v)   \
  SWAPMOE_DECLARE_IQ(iq2_s, v)    \
  SWAPMOE_DECLARE_IQ(iq3_xxs, v)  \
  SWAPMOE_DECLARE_IQ(iq3_s, v)    \
  SWAPMOE_DECLARE_IQ(iq1_s, v)    \
  SWAPMOE_DECLARE_IQ(iq1_m, v)
SWAPMOE_DECLARE_IQ_ALL(avx2)
SWAPMOE_DECLARE_IQ_ALL(avx512)
#undef SWAPMOE_DECLARE_IQ_ALL
#undef SWAPMOE_DECLARE_IQ
// IQ4_NL, IQ4_XS, MXFP4, TQ1_0, TQ2_0 (simd_lowbit.inc), both ISAs: vec_dot and multi-row.
#define SWAPMOE_DECLARE_LOWBIT(v)                                   \
  float vec_dot_iq4_nl_##v(int64_t n, const void* w, const void* a); \
  float vec_dot_iq4_xs_##v(int64_t n, const void* w, const void* a); \
  float vec_dot_mxfp4_##v(int64_t n, const void* w, const void* a);  \
  float vec_dot_tq1_0_##v(int64_t n, const void* w, const void* a);  \
  float vec_dot_tq2_0_##v(int64_t n, const void* w, const void* a);  \
  SWAPMOE_DECLARE_MULTI(iq4_nl, v)                                  \
  SWAPMOE_DECLARE_MULTI(iq4_xs, v)                                  \
  SWAPMOE_DECLARE_MULTI(mxfp4, v)                                   \
  SWAPMOE_DECLARE_MULTI(tq1_0, v)                                   \
  SWAPMOE_DECLARE_MULTI(tq2_0, v)
SWAPMOE_DECLARE_LOWBIT(avx2)
SWAPMOE_DECLARE_LOWBIT(avx512)
#undef SWAPMOE_DECLARE_LOWBIT
#undef SWAPMOE_DECLARE_MULTI

// Row tiles (signature of MatTileFn, quant.h): Q4_K, 16 rows per vector (q4k_tile_avx512.cpp).
void mat_tile_q4_k_avx512(int64_t n, const void* w, size_t w_stride, int nr, const void* a, size_t a_stride, int nt,
                          float* out, size_t out_stride);
// Grid-based i-quants and IQ4_XS, 16 rows per vector (simd_iq_tile.inc, compiled into quant_avx512.cpp).
#define SWAPMOE_DECLARE_TILE(t)                                                                             \
  void mat_tile_##t##_avx512(int64_t n, const void* w, size_t w_stride, int nr, const void* a, size_t a_stride, \
                             int nt, float* out, size_t out_stride);
SWAPMOE_DECLARE_TILE(iq2_xxs)
SWAPMOE_DECLARE_TILE(iq2_xs)
SWAPMOE_DECLARE_TILE(iq2_s)
SWAPMOE_DECLARE_TILE(iq3_xxs)
SWAPMOE_DECLARE_TILE(iq3_s)
SWAPMOE_DECLARE_TILE(iq1_s)
SWAPMOE_DECLARE_TILE(iq1_m)
SWAPMOE_DECLARE_TILE(iq4_xs)
// IQ4_NL and MXFP4 (simd_q4nl_tile.inc, compiled into quant_avx512.cpp).
SWAPMOE_DECLARE_TILE(iq4_nl)
SWAPMOE_DECLARE_TILE(mxfp4)
#undef SWAPMOE_DECLARE_TILE

#undef SWAPMOE_DECLARE_SIMD
#undef SWAPMOE_DECLARE_FORMAT

}  // namespace swapmoe::quant
