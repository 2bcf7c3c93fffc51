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
//  - IQ4_NL: value = d*table[q] with uniform q (the table's mean is -5.9, not 0), d with a
//    random sign per block; IQ4_XS likewise, with each 32-value sub-block scale 32 +- [8, 15];
//  - MXFP4: uniform E2M1 codes (symmetric, mean 0), E8M0 exponents of the two powers of two
//    around the target scale, mixed over blocks so that the mean square is right;
//  - TQ1_0 / TQ2_0: uniform trits (value (t - 1) * d, mean 0), never TQ2_0's unused code 3,
//    d with a random sign per block like Q8_0.
//  - grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M): every bit random
//    (grid indices, signs, sub-block scales, IQ1 deltas: all patterns are valid), then the
//    fp16 block scale set so that the block's dequantized RMS is the requested std. These
//    types have no quantizer here, so they are always written this way.
// Like weight_init.h, every byte is a pure function of (stream, row, position), so chunks
// can be written in parallel and the file does not depend on the thread count.

#include <algorithm>
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
  switch (t) {
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::Q8_0:
    case GgmlType::IQ4_NL: case GgmlType::IQ4_XS: case GgmlType::MXFP4: case GgmlType::TQ1_0: case GgmlType::TQ2_0:
      return true;
    default: return random_blocks_only(t);
  }
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

// Root mean square of the 16 entries of a 4-bit format's value table.
inline double table_rms(const int8_t* t) {
  double s = 0;
  for (int i = 0; i < 16; ++i) s += static_cast<double>(t[i]) * t[i];
  return std::sqrt(s / 16);
}

// The IQ4_NL table (kvalues_iq4nl of ggml-common.h) and MXFP4's doubled E2M1 values.
inline constexpr int8_t kIq4Table[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
inline constexpr int8_t kFp4Table[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// n uniform trits (0..2) from the random stream at key, 40 per 64-bit draw.
inline void random_trits(uint64_t key, uint8_t* out, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    if (i % 40 == 0) v = splitmix64(key + static_cast<uint64_t>(i / 40));
    out[i] = static_cast<uint8_t>(v % 3);
    v /= 3;
  }
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
    case GgmlType::IQ4_NL: {
      const float d = static_cast<float>(std / table_rms(kIq4Table));
      for (int64_t b = 0; b < ncols / 32; ++b, p += 18) {
        const uint64_t key = splitmix64(row_key + static_cast<uint64_t>(b) * 0x100000001B3ull);
        random_bytes(key + 1, p + 2, 16);
        put_f16(p, (key & 1) ? -d : d);
      }
      break;
    }
    case GgmlType::IQ4_XS: {
      // Sub-block scale magnitudes m in [8, 15]: their mean square sets d.
      double ms = 0;
      for (int m = 8; m < 16; ++m) ms += m * m;
      const float d = static_cast<float>(std / (std::sqrt(ms / 8) * table_rms(kIq4Table)));
      for (int64_t b = 0; b < ncols / 256; ++b, p += 136) {
        const uint64_t key = splitmix64(row_key + static_cast<uint64_t>(b) * 0x100000001B3ull);
        random_bytes(key + 1, p + 8, 128);
        put_f16(p, d);
        uint64_t sbits = splitmix64(key ^ 0x5DEECE66Dull);
        uint16_t sh = 0;
        uint8_t sl[4] = {0, 0, 0, 0};
        for (int ib = 0; ib < 8; ++ib, sbits >>= 4) {
          const int m = 8 + static_cast<int>(sbits & 7);
          const int ls = 32 + ((sbits & 8) ? -m : m);  // 17..47, biased by 32 as stored
          sl[ib / 2] = static_cast<uint8_t>(sl[ib / 2] | ((ls & 15) << (4 * (ib % 2))));
          sh = static_cast<uint16_t>(sh | ((ls >> 4) << (2 * ib)));
        }
        std::memcpy(p + 2, &sh, 2);
        std::memcpy(p + 4, sl, 4);
      }
      break;
    }
    case GgmlType::MXFP4: {
      // value = table[q] * 2^(e - 128). The target scale w = std / rms(table) lies between
      // two powers of two a = 2^k <= w < 2a; a fraction p of the blocks gets 2a, chosen so
      // that the mean square is right: p (2a)^2 + (1 - p) a^2 = w^2.
      const double want = std / table_rms(kFp4Table);
      const int k = static_cast<int>(std::floor(std::log2(want)));
      const double a2 = std::ldexp(1.0, 2 * k), p_hi = (want * want - a2) / (3 * a2);
      const int e = std::clamp(128 + k, 1, 253);
      for (int64_t b = 0; b < ncols / 32; ++b, p += 17) {
        const uint64_t key = splitmix64(row_key + static_cast<uint64_t>(b) * 0x100000001B3ull);
        random_bytes(key + 1, p + 1, 16);
        const bool hi = static_cast<double>(key >> 40) < p_hi * static_cast<double>(uint64_t(1) << 24);
        p[0] = static_cast<uint8_t>(e + (hi ? 1 : 0));
      }
      break;
    }
    case GgmlType::TQ1_0:
    case GgmlType::TQ2_0: {
      const float d = static_cast<float>(std / std::sqrt(2.0 / 3.0));
      const bool one = t == GgmlType::TQ1_0;
      const size_t bytes = one ? 54 : 66;
      uint8_t tr[256];
      for (int64_t b = 0; b < ncols / 256; ++b, p += bytes) {
        const uint64_t key = splitmix64(row_key + static_cast<uint64_t>(b) * 0x100000001B3ull);
        random_trits(key + 1, tr, 256);
        if (one) {
          // Each byte: 5 trits (the 4 of qh[] then a zero trit) as ceil(value * 256 / 243);
          // which trit lands on which element does not matter for uniform random trits.
          for (int j = 0; j < 52; ++j) {
            const int k = j < 48 ? 5 : 4;
            int v = 0;
            const int first = j < 48 ? 5 * j : 240 + 4 * (j - 48);
            for (int m = 0; m < 5; ++m) v = v * 3 + (m < k ? tr[first + m] : 0);
            p[j] = static_cast<uint8_t>((v * 256 + 242) / 243);
          }
          put_f16(p + 52, (key & 1) ? -d : d);
        } else {
          for (int j = 0; j < 64; ++j)
            p[j] = static_cast<uint8_t>(tr[4 * j] | (tr[4 * j + 1] << 2) | (tr[4 * j + 2] << 4) | (tr[4 * j + 3] << 6));
          put_f16(p + 64, (key & 1) ? -d : d);
        }
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
