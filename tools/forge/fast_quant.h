#pragma once
// Fast forging: random but valid quantized rows written directly, without generating float
// weights and running the reference quantizer on them. The k-quant search costs ~36
// CPU-minutes for a 30B model; writing random blocks runs at disk speed.
//
// Each block's bytes are random (so the quants are uniform over their range) and its scales
// are chosen so the dequantized values have mean ~0 and the requested standard deviation:
//  - Q4_K / Q5_K: value = d*S*q - dmin*S with all 8 sub-block scales and mins equal to S
//    (random in [32, 47] per block) and dmin = d * (qmax / 2), which centres q; d makes the
//    block std exactly the target;
//  - Q6_K: value = d*sc*(q - 32); uniform q has mean 31.5, so each 16-value sub-block scale
//    gets a random sign, which turns that -0.5 offset into harmless noise;
//  - Q8_0: value = d*q with uniform int8 q, d with a random sign per block for the same reason;
//  - grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M): every bit random
//    (grid indices, signs, sub-block scales, IQ1 deltas: all patterns are valid), then the
//    fp16 block scale set so that the block's dequantized RMS is the requested std. These
//    types have no quantizer here, so they are always written this way.
// Like weight_init.h, every byte is a pure function of (stream, row, position), so chunks
// can be written in parallel and the file does not depend on the thread count.

#include <cmath>
#include <cstdint>
#include <cstring>

#include "quant/quant.h"
#include "util/fp16.h"
#include "util/ggml_type.h"
#include "weight_init.h"

namespace swapmoe::forge {

// Types without a quantizer here: written only as random blocks.
inline bool random_blocks_only(GgmlType t) {
  return t == GgmlType::IQ2_XXS || t == GgmlType::IQ2_XS || t == GgmlType::IQ2_S || t == GgmlType::IQ3_XXS ||
         t == GgmlType::IQ3_S || t == GgmlType::IQ1_S || t == GgmlType::IQ1_M;
}

inline bool fast_block_supported(GgmlType t) {
  return t == GgmlType::Q4_K || t == GgmlType::Q5_K || t == GgmlType::Q6_K || t == GgmlType::Q8_0 ||
         random_blocks_only(t);
}

namespace fast_detail {

// Fills n bytes with the random stream that starts at key.
inline void random_bytes(uint64_t key, uint8_t* out, size_t n) {
  size_t i = 0;
  for (uint64_t w = 0; i + 8 <= n; i += 8, ++w) {
    const uint64_t v = splitmix64(key + w);
    std::memcpy(out + i, &v, 8);
  }
  if (i < n) {
    const uint64_t v = splitmix64(key + (n / 8));
    std::memcpy(out + i, &v, n - i);
  }
}

inline void put_f16(uint8_t* p, float v) {
  const uint16_t h = fp32_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// Root mean square of a uniform integer on [0, levels) after subtracting `centre`.
inline double uniform_rms(int levels, double centre) {
  double s = 0;
  for (int q = 0; q < levels; ++q) s += (q - centre) * (q - centre);
  return std::sqrt(s / levels);
}

// The 12 packed bytes of 8 equal 6-bit (scale, min) pairs S (S < 64), in the k-quant layout:
// bytes 0-3 and 4-7 hold the low 6 bits of scales 0-3 and mins 0-3 plus the top 2 bits of
// scales/mins 4-7; bytes 8-11 hold the low nibbles of scales/mins 4-7.
inline void put_equal_scales(uint8_t* p, unsigned S) {
  const uint8_t a = static_cast<uint8_t>((S & 63) | ((S >> 4) << 6));
  const uint8_t b = static_cast<uint8_t>((S & 15) | ((S & 15) << 4));
  for (int j = 0; j < 8; ++j) p[j] = a;
  for (int j = 8; j < 12; ++j) p[j] = b;
}

// The fp16 block scale of a grid i-quant block: the first 2 bytes, except IQ1_M, which
// spreads it over the top nibbles of its 4 scale words (bytes 48..55).
inline void put_iq_scale(GgmlType t, uint8_t* p, float v) {
  const uint16_t h = fp32_to_fp16(v);
  if (t != GgmlType::IQ1_M) {
    std::memcpy(p, &h, 2);
    return;
  }
  for (int k = 0; k < 4; ++k) {
    uint16_t w;
    std::memcpy(&w, p + 48 + 2 * k, 2);
    w = static_cast<uint16_t>((w & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12));
    std::memcpy(p + 48 + 2 * k, &w, 2);
  }
}

}  // namespace fast_detail

// Writes one row of ncols values (a multiple of the block size) of type t into out.
// Values have mean ~0 and standard deviation ~std. Requires fast_block_supported(t).
inline void fast_quant_row(GgmlType t, uint64_t stream, int64_t row, int64_t ncols, float std, void* out) {
  using namespace fast_detail;
  uint8_t* p = static_cast<uint8_t*>(out);
  const uint64_t row_key = splitmix64(stream ^ (static_cast<uint64_t>(row) * 0x9E3779B97F4A7C15ull));
  switch (t) {
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: {
      const bool q5 = t == GgmlType::Q5_K;
      const int levels = q5 ? 32 : 16;
      const double mid = (levels - 1) / 2.0, rms = uniform_rms(levels, mid);
      const size_t bytes = q5 ? 176 : 144;
      for (int64_t b = 0; b < ncols / 256; ++b, p += bytes) {
        const uint64_t key = splitmix64(row_key + static_cast<uint64_t>(b) * 0x100000001B3ull);
        random_bytes(key + 1, p + 16, bytes - 16);  // qh (Q5_K) and qs
        const unsigned S = 32 + static_cast<unsigned>(key & 15);
        const float d = static_cast<float>(std / (S * rms));
        const float d16 = fp16_to_fp32(fp32_to_fp16(d));
        put_f16(p, d16);
        put_f16(p + 2, static_cast<float>(d16 * mid));
        put_equal_scales(p + 4, S);
      }
      break;
    }
    case GgmlType::Q6_K: {
      // Sub-block scales |sc| in [32, 47]: their mean square sets d.
      double ms = 0;
      for (int s = 32; s < 48; ++s) ms += s * s;
      const float d = static_cast<float>(std / (std::sqrt(ms / 16) * uniform_rms(64, 32.0)));
      for (int64_t b = 0; b < ncols / 256; ++b, p += 210) {
        const uint64_t key = splitmix64(row_key + static_cast<uint64_t>(b) * 0x100000001B3ull);
        random_bytes(key + 1, p, 192);  // ql[128], qh[64]
        uint64_t sbits = splitmix64(key ^ 0x5DEECE66Dull);
        for (int j = 0; j < 16; ++j, sbits >>= 4) {
          const int mag = 32 + static_cast<int>(sbits & 7) * 2 + static_cast<int>((sbits >> 3) & 1);
          const int sign = ((key >> (j + 8)) & 1) ? -1 : 1;
          p[192 + j] = static_cast<uint8_t>(static_cast<int8_t>(sign * mag));
        }
        put_f16(p + 208, d);
      }
      break;
    }
    case GgmlType::Q8_0: {
      const float d = static_cast<float>(std / uniform_rms(256, 128.0));  // int8 as unsigned - 128
      for (int64_t b = 0; b < ncols / 32; ++b, p += 34) {
        const uint64_t key = splitmix64(row_key + static_cast<uint64_t>(b) * 0x100000001B3ull);
        random_bytes(key + 1, p + 2, 32);
        put_f16(p, (key & 1) ? -d : d);
      }
      break;
    }
    default:
      if (random_blocks_only(t)) {
        const size_t bytes = ggml_type_info(t).type_size;
        const ToFloatFn to_float = quant_traits(t).to_float_ref;
        float v[256];
        for (int64_t b = 0; b < ncols / 256; ++b, p += bytes) {
          const uint64_t key = splitmix64(row_key + static_cast<uint64_t>(b) * 0x100000001B3ull);
          random_bytes(key + 1, p, bytes);
          // Dequantized values are linear in the block scale: measure the RMS at scale 1.
          put_iq_scale(t, p, 1.0f);
          to_float(p, v, 256);
          double ss = 0;
          for (float x : v) ss += static_cast<double>(x) * x;
          const double rms = std::sqrt(ss / 256);
          put_iq_scale(t, p, rms > 0 ? static_cast<float>(std / rms) : 0.0f);
        }
      }
      break;
  }
}

}  // namespace swapmoe::forge
