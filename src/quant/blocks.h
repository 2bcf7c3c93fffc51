#pragma once
// Byte layouts of the ggml block formats, bit-for-bit as stored in GGUF files, plus a few
// tiny helpers shared by the scalar and SIMD kernels. Nothing here is exported outside
// src/quant/ (and tests/unit/quant/, which checks the layouts against hand-made fixtures).
//
// Every helper is `static inline` on purpose: this header is included by translation
// units compiled with AVX2 / AVX-512 flags, and a non-static inline function emitted out
// of line there could be picked by the linker for generic code and crash an older CPU.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "util/ggml_type.h"

namespace swapmoe::quant {

constexpr int QK4_0 = 32;
constexpr int QK4_1 = 32;
constexpr int QK5_0 = 32;
constexpr int QK5_1 = 32;
constexpr int QK8_0 = 32;
constexpr int QK8_1 = 32;

// Halves (fp16 bits) are kept as uint16_t; conversions live in util/fp16.h (scalar code)
// or are done with F16C instructions (SIMD code).
struct BlockQ4_0 {
  uint16_t d;              // scale
  uint8_t qs[QK4_0 / 2];   // element j in low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_1 {
  uint16_t d;              // scale
  uint16_t m;              // min (value of quant 0)
  uint8_t qs[QK4_1 / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];           // bit j = 5th bit of element j (little-endian uint32)
  uint8_t qs[QK5_0 / 2];
};
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[QK5_1 / 2];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[QK8_0];
};
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;              // d * sum(qs), used by the Q4_1/Q5_1 dot products for the min term
  int8_t qs[QK8_1];
};

// k-quants: 256-element super-blocks.
struct BlockQ2_K {
  uint8_t scales[QK_K / 16];  // low nibble: scale, high nibble: min, per 16 elements
  uint8_t qs[QK_K / 4];       // 2-bit quants
  uint16_t d;                 // super-block scale for the scales
  uint16_t dmin;              // super-block scale for the mins
};
struct BlockQ3_K {
  uint8_t hmask[QK_K / 8];    // high (3rd) bit of each quant
  uint8_t qs[QK_K / 4];       // low 2 bits
  uint8_t scales[12];         // 16 6-bit scales, packed
  uint16_t d;
};
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];         // 8 6-bit scales and 8 6-bit mins, packed (see get_scale_min_k4)
  uint8_t qs[QK_K / 2];
};
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];       // low 4 bits
  uint8_t qh[QK_K / 4];       // high 2 bits
  int8_t scales[QK_K / 16];   // 8-bit signed scales per 16 elements
  uint16_t d;
};
struct BlockQ8_K {
  float d;                    // fp32, unlike every other block
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];   // sum of qs per 16 elements
};

// i-quants with grids (256-element super-blocks). Groups of 8 weights are grid indices;
// the 2/3-bit types keep 7 sign bits per group (the 8th is their parity, see iq_grids.h).
struct BlockIQ2_XXS {
  uint16_t d;
  uint16_t qs[QK_K / 8];      // per 32 elements, 4 uint16: bytes 0..3 = grid indices of the 4
                              // groups, bits 32+7l.. = signs of group l (4 x 7), bits 60..63 = scale
};
struct BlockIQ2_XS {
  uint16_t d;
  uint16_t qs[QK_K / 8];      // per group of 8: 9-bit grid index | 7 sign bits << 9
  uint8_t scales[QK_K / 32];  // 4-bit scales: low nibble for the first 16 of each 32, high for the rest
};
struct BlockIQ2_S {
  uint16_t d;
  uint8_t qs[QK_K / 4];       // first 32 bytes: low 8 bits of the 10-bit grid indices; next 32: 8 sign bits per group
  uint8_t qh[QK_K / 32];      // per 32 elements: bits 2l..2l+1 = index bits 8..9 of group l
  uint8_t scales[QK_K / 32];  // as IQ2_XS
};
struct BlockIQ3_XXS {
  uint16_t d;
  uint8_t qs[3 * QK_K / 8];   // 64 grid indices (4 levels each), then per 32 elements a uint32:
                              // 4 x 7 sign bits and a 4-bit scale in bits 28..31
};
struct BlockIQ3_S {
  uint16_t d;
  uint8_t qs[QK_K / 4];       // low 8 bits of 64 9-bit grid indices (4 levels each)
  uint8_t qh[QK_K / 32];      // bit k of byte b: 9th bit of index 8b + k
  uint8_t signs[QK_K / 8];    // one sign bit per element
  uint8_t scales[QK_K / 64];  // 4-bit scales per 32 elements (nibble pairs)
};
struct BlockIQ1_S {
  uint16_t d;
  uint8_t qs[QK_K / 8];       // low 8 bits of the 11-bit grid indices
  uint16_t qh[QK_K / 32];     // per 32 elements: 4 x 3 high index bits, 3-bit scale in 12..14, delta sign in 15
};
struct BlockIQ1_M {
  uint8_t qs[QK_K / 8];       // low 8 bits of the 11-bit grid indices
  uint8_t qh[QK_K / 16];      // per 16 elements (2 groups): nibble = 3 high index bits | delta sign << 3
  uint8_t scales[QK_K / 32];  // 4 uint16: 3-bit scales per 16 elements in bits 0..11, and the
                              // block's fp16 scale spread over the top nibbles (see iq1m_scale)
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockIQ2_XXS) == 66 && sizeof(BlockIQ2_XS) == 74 && sizeof(BlockIQ2_S) == 82 &&
              sizeof(BlockIQ3_XXS) == 98 && sizeof(BlockIQ3_S) == 110 && sizeof(BlockIQ1_S) == 50 &&
              sizeof(BlockIQ1_M) == 56);

// ---------------------------------------------------------------- non-linear and ternary

constexpr int QK4_NL = 32;
constexpr int QK_MXFP4 = 32;

// IQ4_NL: like Q4_0, but each nibble indexes kValuesIq4nl (a non-uniform 16-level grid).
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[QK4_NL / 2];   // element j in the low nibble of qs[j], element j+16 in the high one
};
// IQ4_XS: 8 sub-blocks of 32 with 6-bit scales ls (value d * (ls - 32) * kValuesIq4nl[q]).
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;        // bits 2*ib, 2*ib+1: high 2 bits of sub-block ib's scale
  uint8_t scales_l[QK_K / 64];  // low nibble: scale 2*k, high nibble: scale 2*k+1 (low 4 bits)
  uint8_t qs[QK_K / 2];     // per sub-block of 32: 16 bytes, low nibbles first 16, high the rest
};
// TQ1_0: trits t in {0,1,2} (value (t - 1) * d). qs[0..31]: 5 trits each for elements
// m + 32n (n = 0..4, first trit most significant) of the first 160; qs[32..47]: 5 each for
// elements 160 + m + 16n; qh[0..3]: 4 each for elements 240 + j + 4n. A byte holds its trits
// as a base-3 fraction scaled to 256 (rounded up), so trit n is ((byte * 3^n mod 256) * 3) >> 8.
struct BlockTQ1_0 {
  uint8_t qs[(QK_K - 4 * QK_K / 64) / 5];
  uint8_t qh[QK_K / 64];
  uint16_t d;
};
// TQ2_0: 2-bit codes c (value (c - 1) * d); byte 32*k + m holds elements 128*k + m + 32*l in
// bits 2l..2l+1 (l = 0..3).
struct BlockTQ2_0 {
  uint8_t qs[QK_K / 4];
  uint16_t d;
};
// MXFP4 (OCP microscaling): value = kValuesMxfp4[q] * 2^(e - 128), i.e. the E2M1 value
// (stored doubled in the table, so it is an integer) times half the E8M0 scale 2^(e - 127).
struct BlockMXFP4 {
  uint8_t e;                // E8M0 exponent
  uint8_t qs[QK_MXFP4 / 2]; // E2M1 codes, same nibble order as Q4_0
};
static_assert(sizeof(BlockIQ4_NL) == 18 && sizeof(BlockIQ4_XS) == 136 && sizeof(BlockTQ1_0) == 54 &&
              sizeof(BlockTQ2_0) == 66 && sizeof(BlockMXFP4) == 17);

// The format's tables, transcribed from ggml-common.h (kvalues_iq4nl, kvalues_mxfp4) and
// checked against ggml's dequantizers in tests/unit/quant.
alignas(16) inline constexpr int8_t kValuesIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                        1,    13,   25,  38,  53,  69,  89,  113};
// E2M1 codes 0..15 times 2: sign bit 3, then 0, 0.5, 1, 1.5, 2, 3, 4, 6.
alignas(16) inline constexpr int8_t kValuesMxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// Half the E8M0 scale, 2^(e - 128), as ggml computes it (ggml_e8m0_to_fp32_half): e = 0 and 1
// are the subnormals 2^-128 and 2^-127, e = 255 is 2^127 (E8M0's NaN code is not special).
static inline float e8m0_half(uint8_t e) {
  const uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e - 1) << 23);
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Round to nearest, ties to even, for |x| < 2^22: adding 1.5 * 2^23 moves the integer part
// into the low mantissa bits. This is the rounding ggml's k-quant code uses; std::lround
// would round ties away from zero and give different quants.
static inline int nearest_int(float x) {
  const float v = x + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, sizeof(i));
  return (i & 0x007fffff) - 0x00400000;
}

// Q4_K / Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes.
static inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

// Q3_K: the 16 6-bit scales (still biased by +32) unpacked into bytes.
static inline void unpack_q3_k_scales(const uint8_t* packed, int8_t out[16]) {
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (packed[j] & 0xF) : (packed[j - 8] >> 4);
    const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = static_cast<int8_t>(low | (high << 4));
  }
}

// Q4_K / Q5_K: all 8 scales and 8 mins at once.
static inline void unpack_k4_scales(const uint8_t* packed, uint8_t scales[8], uint8_t mins[8]) {
  for (int j = 0; j < 8; ++j) get_scale_min_k4(j, packed, &scales[j], &mins[j]);
}

// IQ1_M: the block's fp16 scale is split into the top nibbles of its four uint16 scale words.
static inline uint16_t iq1m_scale(const uint8_t* scales) {
  uint16_t sc[4];
  std::memcpy(sc, scales, 8);
  return static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
}

}  // namespace swapmoe::quant
