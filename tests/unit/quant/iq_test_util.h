#pragma once
// Block builders for the grid-based i-quant tests: random valid blocks, a chosen block
// scale, and a chosen grid index in a chosen group (so that every grid entry can be used).
// Written from the layouts in src/quant/blocks.h.

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "util/fp16.h"
#include "util/ggml_type.h"

namespace swapmoe::testing_iq {

struct IqFormat {
  GgmlType type;
  int grid_size;       // entries in the format's grid
  int groups;          // grid indices per block
  size_t block_bytes;  // bytes per block
  // Sets index `idx` (< grid_size) in group g (< groups) of the block at p.
  void (*set_index)(uint8_t* p, int g, int idx);
  // Sets the block's fp16 scale bits.
  void (*set_d)(uint8_t* p, uint16_t h);
};

inline void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline uint16_t get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void set_d_front(uint8_t* p, uint16_t h) { put16(p, h); }
// IQ1_M: the fp16 scale lives in the top nibbles of the 4 scale words at byte 48.
inline void set_d_iq1_m(uint8_t* p, uint16_t h) {
  for (int k = 0; k < 4; ++k) {
    uint8_t* w = p + 48 + 2 * k;
    put16(w, static_cast<uint16_t>((get16(w) & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12)));
  }
}
// Bits [lo, lo + n) of the little-endian bytes at p set to v.
inline void set_bits(uint8_t* p, int lo, int n, uint32_t v) {
  for (int b = 0; b < n; ++b) {
    const int bit = lo + b;
    p[bit / 8] = static_cast<uint8_t>((p[bit / 8] & ~(1u << (bit % 8))) | (((v >> b) & 1u) << (bit % 8)));
  }
}

inline const std::vector<IqFormat>& iq_formats() {
  static const std::vector<IqFormat> f{
      // IQ2_XXS: d, then per 32 elements 8 bytes: 4 index bytes, then signs + scale.
      {GgmlType::IQ2_XXS, 256, 32, 66, [](uint8_t* p, int g, int idx) { p[2 + 8 * (g / 4) + g % 4] = uint8_t(idx); },
       set_d_front},
      // IQ2_XS: d, 32 uint16 (9-bit index | signs << 9), 8 scale bytes.
      {GgmlType::IQ2_XS, 512, 32, 74, [](uint8_t* p, int g, int idx) { set_bits(p + 2 + 2 * g, 0, 9, idx); },
       set_d_front},
      // IQ2_S: d, 32 low index bytes, 32 sign bytes, 8 qh bytes (2 bits per group), 8 scales.
      {GgmlType::IQ2_S, 1024, 32, 82,
       [](uint8_t* p, int g, int idx) {
         p[2 + g] = uint8_t(idx);
         set_bits(p + 2 + 64 + g / 4, 2 * (g % 4), 2, idx >> 8);
       },
       set_d_front},
      // IQ3_XXS: d, 64 index bytes (groups of 4), 8 words of signs + scale.
      {GgmlType::IQ3_XXS, 256, 64, 98, [](uint8_t* p, int g, int idx) { p[2 + g] = uint8_t(idx); }, set_d_front},
      // IQ3_S: d, 64 low index bytes, 8 qh bytes (1 bit per group of 4), 32 sign bytes, 4 scales.
      {GgmlType::IQ3_S, 512, 64, 110,
       [](uint8_t* p, int g, int idx) {
         p[2 + g] = uint8_t(idx);
         set_bits(p + 2 + 64 + g / 8, g % 8, 1, idx >> 8);
       },
       set_d_front},
      // IQ1_S: d, 32 low index bytes, 8 uint16 (3 high bits per group, scale, delta sign).
      {GgmlType::IQ1_S, 2048, 32, 50,
       [](uint8_t* p, int g, int idx) {
         p[2 + g] = uint8_t(idx);
         set_bits(p + 2 + 32 + 2 * (g / 4), 3 * (g % 4), 3, idx >> 8);
       },
       set_d_front},
      // IQ1_M: 32 low index bytes, 16 qh bytes (nibble per group: 3 high bits, delta sign), 8 scales.
      {GgmlType::IQ1_M, 2048, 32, 56,
       [](uint8_t* p, int g, int idx) {
         p[g] = uint8_t(idx);
         set_bits(p + 32 + g / 2, 4 * (g % 2), 3, idx >> 8);
       },
       set_d_iq1_m},
  };
  return f;
}

// Random fp16 scale: sign random, magnitude 10^U(lo, hi).
inline uint16_t random_half(std::mt19937& rng, float lo = -4.0f, float hi = 0.0f) {
  std::uniform_real_distribution<float> e(lo, hi);
  const float v = std::pow(10.0f, e(rng)) * ((rng() & 1) ? -1.0f : 1.0f);
  return fp32_to_fp16(v);
}

// nblocks random valid blocks: every bit random (all bit patterns are valid except the
// scale's), then a random finite scale.
inline std::vector<uint8_t> random_blocks(const IqFormat& f, int64_t nblocks, uint32_t seed, float lo = -4.0f,
                                          float hi = 0.0f) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(static_cast<size_t>(nblocks) * f.block_bytes);
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  for (int64_t i = 0; i < nblocks; ++i) f.set_d(b.data() + i * f.block_bytes, random_half(rng, lo, hi));
  return b;
}

}  // namespace swapmoe::testing_iq
