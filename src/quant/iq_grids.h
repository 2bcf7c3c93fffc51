#pragma once
// Lookup tables of the grid-based i-quants (data in iq_grids.cpp, derived tables here).
// Formats store groups of 8 weights as an index into a grid of 8 byte levels, plus (for the
// 2- and 3-bit types) 7 sign bits per group; the 8th sign is implied: the number of minus
// signs in a group is even (the quantizer flips the smallest weight to make it so).

#include <array>
#include <cstddef>
#include <cstdint>

namespace swapmoe::quant {

extern const uint64_t kIq2xxsGrid[256];
extern const uint64_t kIq2xsGrid[512];
extern const uint64_t kIq2sGrid[1024];
extern const uint32_t kIq3xxsGrid[256];
extern const uint32_t kIq3sGrid[512];
extern const uint64_t kIq1sGrid[2048];

// IQ1_S / IQ1_M: each group's levels are shifted by +-delta (sign bit per group).
constexpr float kIq1Delta = 0.125f;

// 7 stored sign bits -> 8 sign bits: bit 7 is the parity of the other seven.
constexpr uint8_t iq_signs8(uint32_t seven) {
  const uint32_t s = seven & 127;
  return static_cast<uint8_t>(s | ((__builtin_popcount(s) & 1) << 7));
}

// The same as bytes: 0xff for a negative element, 0x00 otherwise (element j in byte j).
inline constexpr std::array<uint64_t, 128> kIqSignBytes = [] {
  std::array<uint64_t, 128> t{};
  for (uint32_t i = 0; i < 128; ++i) {
    const uint8_t s = iq_signs8(i);
    uint64_t v = 0;
    for (int j = 0; j < 8; ++j)
      if (s >> j & 1) v |= uint64_t{0xff} << (8 * j);
    t[i] = v;
  }
  return t;
}();

// The same as +-1 bytes (0xff negative, 0x01 positive), the operand of a SIMD sign multiply.
inline constexpr std::array<uint64_t, 128> kIqSignPm1 = [] {
  std::array<uint64_t, 128> t{};
  for (std::size_t i = 0; i < 128; ++i) t[i] = kIqSignBytes[i] | 0x0101010101010101ULL;
  return t;
}();

}  // namespace swapmoe::quant
