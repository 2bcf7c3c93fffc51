#pragma once
// Random valid blocks of IQ4_NL, IQ4_XS, MXFP4, TQ1_0 and TQ2_0 for the tests: every byte
// random (so every table index, trit and code occurs), then each block's scale replaced by
// a finite one (fp16 d of magnitude 2^-13 .. 2^-2 with random sign; MXFP4 exponents 100 .. 140).

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "util/fp16.h"
#include "util/ggml_type.h"

namespace swapmoe::testing_quant {

inline const std::vector<GgmlType>& lowbit_types() {
  static const std::vector<GgmlType> t{GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::MXFP4, GgmlType::TQ1_0,
                                       GgmlType::TQ2_0};
  return t;
}

// Byte offset of the fp16 scale d inside a block (MXFP4 has an E8M0 byte at 0 instead).
inline size_t lowbit_scale_offset(GgmlType t) {
  return t == GgmlType::TQ1_0 ? 52 : t == GgmlType::TQ2_0 ? 64 : 0;
}

inline std::vector<uint8_t> random_lowbit_blocks(GgmlType t, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(ggml_row_size(t, n));
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  const size_t bs = ggml_type_info(t).type_size;
  for (size_t off = 0; off < b.size(); off += bs) {
    const float d = std::ldexp(1.0f + static_cast<float>(rng() % 1024) / 1024, -2 - static_cast<int>(rng() % 12)) *
                    ((rng() & 1) ? -1.0f : 1.0f);
    const uint16_t h = fp32_to_fp16(d);
    if (t == GgmlType::MXFP4) b[off] = static_cast<uint8_t>(100 + rng() % 41);
    else std::memcpy(&b[off + lowbit_scale_offset(t)], &h, 2);
  }
  return b;
}

}  // namespace swapmoe::testing_quant
