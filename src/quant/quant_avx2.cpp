// AVX2 + FMA + F16C kernels (this file gets -mavx2 -mfma -mf16c). The code is shared
// with quant_avx512.cpp through simd_kernels.inc; only the suffix and the use of VNNI
// differ. Reached only through the trait table after cpu_supports(Isa::Avx2).

#define SMQ_NAME(x) x##_avx2
#define SMQ_VNNI 0
#include "quant/simd_kernels.inc"
#include "quant/simd_multi.inc"
#include "quant/simd_multi_float.inc"
#include "quant/simd_multi_legacy.inc"
#include "quant/simd_multi_lowk.inc"
#include "quant/simd_iq.inc"
#include "quant/simd_lowbit.inc"
