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

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

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

}  // namespace swapmoe::quant
