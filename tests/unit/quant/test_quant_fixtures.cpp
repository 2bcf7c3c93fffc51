// Hand-made blocks with hand-computed values: these pin the byte layouts and the
// activation numerics themselves, not just agreement between our own kernels.

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "quant/quant.h"
#include "util/ggml_type.h"

namespace swapmoe {
namespace {

std::vector<float> decode(GgmlType t, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> out(n);
  quant_traits(t).to_float_ref(bytes.data(), out.data(), n);
  std::vector<float> fast(n);
  quant_traits(t).to_float(bytes.data(), fast.data(), n);
  EXPECT_EQ(out, fast) << ggml_type_name(t);
  return out;
}

// Q4_0: 2 bytes fp16 d, then 16 bytes; element j is the low nibble of byte j, element
// j + 16 the high nibble; value = (nibble - 8) * d.
TEST(QuantFixtures, Q4_0DecodesKnownBlock) {
  std::vector<uint8_t> b(18);
  b[0] = 0x00;  // d = 0.5 = fp16 0x3800, little endian
  b[1] = 0x38;
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto v = decode(GgmlType::Q4_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[j], (j - 8) * 0.5f) << j;
    EXPECT_EQ(v[16 + j], (7 - j) * 0.5f) << j;
  }
}

// Q4_K: d, dmin (fp16), 12 bytes of packed 6-bit scales/mins, 128 bytes of nibbles.
// Sub-block s (32 elements) = d * scale_s * q - dmin * min_s. Scales/mins of sub-blocks
// 4..7 keep their low 4 bits in bytes 8..11 and their top 2 bits in bits 6..7 of bytes
// 0..3 (scales) and 4..7 (mins). The bytes below were packed by hand from
//   scales = {1, 2, 3, 4, 17, 33, 50, 63}, mins = {0, 1, 2, 3, 20, 40, 60, 63}.
TEST(QuantFixtures, Q4_KDecodesKnownBlock) {
  const int scales[8] = {1, 2, 3, 4, 17, 33, 50, 63};
  const int mins[8] = {0, 1, 2, 3, 20, 40, 60, 63};
  std::vector<uint8_t> b(144);
  b[0] = 0x00, b[1] = 0x3C;  // d = 1.0
  b[2] = 0x00, b[3] = 0x38;  // dmin = 0.5
  const uint8_t packed[12] = {0x41, 0x82, 0xC3, 0xC4, 0x40, 0x81, 0xC2, 0xC3, 0x41, 0x81, 0xC2, 0xFF};
  std::memcpy(b.data() + 4, packed, 12);
  // 4 groups of 32 bytes; group g holds sub-block 2g in the low nibbles and 2g+1 in the
  // high nibbles. Byte i of a group: low = i % 16, high = 15 - i % 16.
  for (int i = 0; i < 128; ++i) b[16 + i] = static_cast<uint8_t>((i % 16) | ((15 - i % 16) << 4));
  const auto v = decode(GgmlType::Q4_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int s = e / 32;
    const int q = (s % 2 == 0) ? (e % 16) : (15 - e % 16);
    EXPECT_EQ(v[e], 1.0f * scales[s] * q - 0.5f * mins[s]) << "element " << e;
  }
}

// Q2_K: 16 bytes scales (low nibble scale, high nibble min, per 16 elements), 64 bytes of
// 2-bit levels, then d and dmin. Byte b of the 64 holds elements 128(b/32) + 32c + b%32 in
// bit pair c; every byte is 0xE4 here, so the level of element e is (e % 128) / 32.
TEST(QuantFixtures, Q2_KDecodesKnownBlock) {
  std::vector<uint8_t> b(84);
  for (int g = 0; g < 16; ++g) b[g] = static_cast<uint8_t>(((15 - g) << 4) | ((g + 1) & 0xF));
  for (int i = 0; i < 64; ++i) b[16 + i] = 0xE4;
  b[80] = 0x00, b[81] = 0x38;  // d = 0.5
  b[82] = 0x00, b[83] = 0x34;  // dmin = 0.25
  const auto v = decode(GgmlType::Q2_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int g = e / 16, level = (e % 128) / 32;
    EXPECT_EQ(v[e], 0.5f * ((g + 1) & 0xF) * level - 0.25f * (15 - g)) << "element " << e;
  }
}

// Q3_K: 32 bytes hmask, 64 bytes low 2-bit levels (as Q2_K), 12 bytes of 16 6-bit scales
// biased by 32, fp16 d. Scales s_j = 32 + 3 (j - 8) were packed by hand: low nibbles of
// s_0..7 in bytes 0..7, of s_8..15 in the high nibbles of bytes 0..7, top 2 bits of s_j in
// byte 8 + j % 4 at bit 2 (j / 4). Element e has high bit (hmask[e % 32] >> (e / 32)) & 1
// and level = low2 - (high bit ? 0 : 4).
TEST(QuantFixtures, Q3_KDecodesKnownBlock) {
  std::vector<uint8_t> b(110);
  for (int l = 0; l < 32; ++l) b[l] = (l % 2 == 0) ? 0x55 : 0xAA;
  for (int i = 0; i < 64; ++i) b[32 + i] = 0xE4;
  const uint8_t packed[12] = {0x08, 0x3B, 0x6E, 0x91, 0xC4, 0xF7, 0x2A, 0x5D, 0xA4, 0xA4, 0xE4, 0xE5};
  std::memcpy(b.data() + 96, packed, 12);
  b[108] = 0x00, b[109] = 0x38;  // d = 0.5
  const auto v = decode(GgmlType::Q3_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int scale = 3 * (e / 16 - 8);  // s_j - 32
    const bool high = ((e / 32) % 2) == ((e % 32) % 2);
    const int level = (e % 128) / 32 - (high ? 0 : 4);
    EXPECT_EQ(v[e], 0.5f * scale * level) << "element " << e;
  }
}

// Q5_K: the Q4_K block plus 32 bytes qh between scales and nibbles; bit s of qh[l] adds
// 16 to element 32 s + l. qh[l] = l here.
TEST(QuantFixtures, Q5_KDecodesKnownBlock) {
  const int scales[8] = {1, 2, 3, 4, 17, 33, 50, 63};
  const int mins[8] = {0, 1, 2, 3, 20, 40, 60, 63};
  std::vector<uint8_t> b(176);
  b[0] = 0x00, b[1] = 0x3C;  // d = 1.0
  b[2] = 0x00, b[3] = 0x38;  // dmin = 0.5
  const uint8_t packed[12] = {0x41, 0x82, 0xC3, 0xC4, 0x40, 0x81, 0xC2, 0xC3, 0x41, 0x81, 0xC2, 0xFF};
  std::memcpy(b.data() + 4, packed, 12);
  for (int l = 0; l < 32; ++l) b[16 + l] = static_cast<uint8_t>(l);
  for (int i = 0; i < 128; ++i) b[48 + i] = static_cast<uint8_t>((i % 16) | ((15 - i % 16) << 4));
  const auto v = decode(GgmlType::Q5_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int s = e / 32, l = e % 32;
    const int q = ((s % 2 == 0) ? (e % 16) : (15 - e % 16)) + (((l >> s) & 1) ? 16 : 0);
    EXPECT_EQ(v[e], 1.0f * scales[s] * q - 0.5f * mins[s]) << "element " << e;
  }
}

// ggml's x86 activation quantizer rounds ties to even with multiplier 127 / amax; the
// file quantizer (quantize_row_q8_0_ref) rounds ties away from zero.
TEST(QuantFixtures, Q8_0ActivationRoundsTiesToEvenButWeightsAwayFromZero) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f, x[1] = 0.5f, x[2] = 1.5f, x[3] = 2.5f, x[4] = -0.5f, x[5] = -2.5f;
  const QuantTraits& t = quant_traits(GgmlType::Q8_0);
  std::vector<uint8_t> act(34), ref(34);
  t.from_float(x.data(), act.data(), 32);
  t.from_float_ref(x.data(), ref.data(), 32);
  EXPECT_EQ(act[0], 0x00);  // d = 1.0
  EXPECT_EQ(act[1], 0x3C);
  const int8_t want_act[6] = {127, 0, 2, 2, 0, -2};
  const int8_t want_ref[6] = {127, 1, 2, 3, -1, -3};
  for (int j = 0; j < 6; ++j) {
    EXPECT_EQ(static_cast<int8_t>(act[2 + j]), want_act[j]) << j;
    EXPECT_EQ(static_cast<int8_t>(ref[2 + j]), want_ref[j]) << j;
  }
}

// Q8_K: the first value of largest magnitude maps to -127 (so its sign decides the sign
// of d), rounding is to nearest even, d is fp32, bsums are per-16 sums.
TEST(QuantFixtures, Q8_KSignHandlingAndBsums) {
  struct BlockQ8K {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
  };
  static_assert(sizeof(BlockQ8K) == 292);
  for (float first : {-31.75f, 31.75f}) {
    std::vector<float> x(256, 0.0f);
    x[0] = first, x[1] = -first, x[2] = 0.625f, x[3] = 0.375f, x[4] = -0.625f;
    BlockQ8K b{};
    quant_traits(GgmlType::Q8_K).from_float(x.data(), &b, 256);
    const float s = first < 0 ? 1.0f : -1.0f;  // iscale = -127 / first = 4 * s
    EXPECT_EQ(b.d, 0.25f * s);
    EXPECT_EQ(b.qs[0], -127);
    EXPECT_EQ(b.qs[1], 127);
    EXPECT_EQ(b.qs[2], static_cast<int8_t>(2 * s));   // 2.5 -> 2
    EXPECT_EQ(b.qs[3], static_cast<int8_t>(2 * s));   // 1.5 -> 2
    EXPECT_EQ(b.qs[4], static_cast<int8_t>(-2 * s));  // -2.5 -> -2
    EXPECT_EQ(b.bsums[0], static_cast<int16_t>(2 * s));
    for (int j = 1; j < 16; ++j) EXPECT_EQ(b.bsums[j], 0);
  }
}

// Q6_K: 128 bytes low nibbles, 64 bytes high bit pairs, 16 int8 scales, fp16 d.
// Element e of 128-element half h, quarter k, lane l: low nibble from ql[64h + l + 32(k&1)]
// (k < 2: low, else high nibble), high bits (qh[32h + l] >> 2k) & 3; value = d * sc[e/16] * (q - 32).
TEST(QuantFixtures, Q6_KDecodesKnownBlock) {
  std::vector<uint8_t> b(210, 0);
  for (int i = 0; i < 128; ++i) b[i] = static_cast<uint8_t>(((i % 16) << 4) | (15 - i % 16));  // ql
  for (int i = 0; i < 64; ++i) b[128 + i] = 0xE4;  // qh: bit pairs 0,1,2,3 for k = 0..3
  for (int g = 0; g < 16; ++g) b[192 + g] = static_cast<uint8_t>(static_cast<int8_t>(g - 8));
  b[208] = 0x00, b[209] = 0x38;  // d = 0.5
  const auto v = decode(GgmlType::Q6_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int k = (e % 128) / 32, l = e % 32;
    const int byte = l + 32 * (k & 1);  // index within the half; byte % 16 == l % 16
    const int low = (k < 2) ? (15 - byte % 16) : (byte % 16);
    const int q = low | (k << 4);
    EXPECT_EQ(v[e], 0.5f * (e / 16 - 8) * (q - 32)) << "element " << e;
  }
}

}  // namespace
}  // namespace swapmoe
