// AVX-512 (F, BW, VL, DQ, VNNI) kernels (this file gets the matching -m flags). The
// 256-bit kernels of simd_kernels.inc are compiled here with VNNI (dpbusd / dpwssd) and
// mask-register helpers; quant_wide_avx512.cpp adds 512-bit Q6_K and Q8_0 dot products
// (the table prefers those); simd_iq_tile.inc and simd_q4nl_tile.inc add the row tiles of the low-bit types. Reached only through the trait table after cpu_supports(Isa::Avx512).

#define SMQ_NAME(x) x##_avx512
#define SMQ_VNNI 1
#include "quant/simd_kernels.inc"
#include "quant/simd_multi.inc"
#include "quant/simd_multi_float.inc"
#include "quant/simd_multi_legacy.inc"
#include "quant/simd_multi_lowk.inc"
#include "quant/simd_iq.inc"
#include "quant/simd_iq_tile.inc"
#include "quant/simd_lowbit.inc"
#include "quant/simd_q4nl_tile.inc"
