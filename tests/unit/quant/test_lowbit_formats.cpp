// IQ4_NL, IQ4_XS, MXFP4, TQ1_0, TQ2_0 without llama.cpp: hand-made blocks with hand-computed
// values (they pin the byte layouts and tables), quantize/dequantize round trips, and the
// SIMD dot products against the scalar reference on random valid blocks (every byte random,
// so every table index, trit and code occurs) and on edge scales. The comparisons with
// ggml itself are in test_lowbit_ggml.cpp.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "quant/quant.h"
#include "lowbit_blocks.h"
#include "quant_test_util.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

using namespace testing_quant;

const std::vector<GgmlType>& kLowbit = lowbit_types();

std::vector<float> decode(GgmlType t, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  quant_traits(t).to_float_ref(bytes.data(), out.data(), n);
  return out;
}

void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }

TEST(LowbitFormats, TypeIdsSizesAndActivationTypes) {
  // ggml.h: IQ4_NL = 20, IQ4_XS = 23, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39; sizes from the
  // static_asserts of ggml-common.h.
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::IQ4_NL), 20u);
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::IQ4_XS), 23u);
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::TQ1_0), 34u);
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::TQ2_0), 35u);
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::MXFP4), 39u);
  EXPECT_EQ(ggml_row_size(GgmlType::IQ4_NL, 32), 18u);
  EXPECT_EQ(ggml_row_size(GgmlType::IQ4_XS, 256), 136u);
  EXPECT_EQ(ggml_row_size(GgmlType::TQ1_0, 256), 54u);
  EXPECT_EQ(ggml_row_size(GgmlType::TQ2_0, 256), 66u);
  EXPECT_EQ(ggml_row_size(GgmlType::MXFP4, 32), 17u);
  EXPECT_EQ(quant_traits(GgmlType::IQ4_NL).vec_dot_type, GgmlType::Q8_0);
  EXPECT_EQ(quant_traits(GgmlType::MXFP4).vec_dot_type, GgmlType::Q8_0);
  EXPECT_EQ(quant_traits(GgmlType::IQ4_XS).vec_dot_type, GgmlType::Q8_K);
  EXPECT_EQ(quant_traits(GgmlType::TQ1_0).vec_dot_type, GgmlType::Q8_K);
  EXPECT_EQ(quant_traits(GgmlType::TQ2_0).vec_dot_type, GgmlType::Q8_K);
  EXPECT_EQ(ggml_type_from_name("mxfp4"), GgmlType::MXFP4);
  EXPECT_EQ(ggml_type_from_name("iq4_xs"), GgmlType::IQ4_XS);
}

// MXFP4: byte 0 is the E8M0 exponent e, value = E2M1(code) * 2^(e - 127); element j is the
// low nibble of byte 1 + j, element j + 16 the high nibble. E2M1: sign bit 3, magnitudes
// 0, 0.5, 1, 1.5, 2, 3, 4, 6.
TEST(LowbitFormats, Mxfp4DecodesKnownBlock) {
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  std::vector<uint8_t> b(17);
  b[0] = 129;  // 2^2
  for (int j = 0; j < 16; ++j) b[1 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto v = decode(GgmlType::MXFP4, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[j], e2m1[j] * 4) << j;
    EXPECT_EQ(v[16 + j], e2m1[15 - j] * 4) << j;
  }
  // The extremes of the exponent: e = 0 is 2^-127 (ggml's subnormal), e = 254 is 2^127,
  // e = 255 (E8M0's NaN) is 2^128 in ggml's halved form times a doubled value: 6 * 2^128
  // overflows to inf, 0.5 * 2^128 = 2^127 is finite.
  b[0] = 0;
  b[1] = 2;  // element 0: 1.0
  EXPECT_EQ(decode(GgmlType::MXFP4, b, 32)[0], std::ldexp(1.0f, -127));
  b[0] = 254;
  EXPECT_EQ(decode(GgmlType::MXFP4, b, 32)[0], std::ldexp(1.0f, 127));
  b[0] = 255;
  b[1] = 1;  // 0.5
  EXPECT_EQ(decode(GgmlType::MXFP4, b, 32)[0], std::ldexp(1.0f, 127));
  b[1] = 7;  // 6
  EXPECT_TRUE(std::isinf(decode(GgmlType::MXFP4, b, 32)[0]));
}

// IQ4_NL: fp16 d, 16 bytes of nibbles (Q4_0 order) indexing the non-linear table.
TEST(LowbitFormats, Iq4NlDecodesKnownBlock) {
  const int table[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  std::vector<uint8_t> b(18);
  put16(b, 0, 0x3800);  // 0.5
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto v = decode(GgmlType::IQ4_NL, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[j], 0.5f * table[j]) << j;
    EXPECT_EQ(v[16 + j], 0.5f * table[15 - j]) << j;
  }
}

// IQ4_XS: fp16 d, scales_h (u16), scales_l[4], qs[128]. Sub-block ib's 6-bit scale has its
// low nibble in scales_l[ib / 2] (low nibble for even ib) and its top 2 bits at bit 2 ib of
// scales_h; value = d * (scale - 32) * table[nibble]. Scales below were packed by hand from
// {0, 1, 31, 32, 33, 47, 62, 63}.
TEST(LowbitFormats, Iq4XsDecodesKnownBlock) {
  const int table[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  const int scales[8] = {0, 1, 31, 32, 33, 47, 62, 63};
  std::vector<uint8_t> b(136);
  put16(b, 0, 0x3C00);  // 1.0
  // high bits: 0,0,1,2,2,2,3,3 -> 0b11'11'10'10'10'01'00'00 = 0xFA90
  put16(b, 2, 0xFA90);
  b[4] = 0x10, b[5] = 0x0F, b[6] = 0xF1, b[7] = 0xFE;
  for (int i = 0; i < 128; ++i) b[8 + i] = static_cast<uint8_t>((i % 16) | ((15 - i % 16) << 4));
  const auto v = decode(GgmlType::IQ4_XS, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int s = e / 32, k = e % 32;
    const int idx = k < 16 ? k : 15 - (k - 16);
    EXPECT_EQ(v[e], 1.0f * (scales[s] - 32) * table[idx]) << "element " << e;
  }
}

// TQ2_0: 64 bytes of 2-bit codes then fp16 d; byte 32 k + m holds elements 128 k + 32 l + m
// in bits 2l (value (code - 1) * d, code 3 gives +2d).
TEST(LowbitFormats, Tq2DecodesKnownBlock) {
  std::vector<uint8_t> b(66);
  for (int i = 0; i < 64; ++i) b[i] = static_cast<uint8_t>(0 | (1 << 2) | (2 << 4) | (3 << 6));
  put16(b, 64, 0x4000);  // 2.0
  const auto v = decode(GgmlType::TQ2_0, b, 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(v[e], 2.0f * ((e % 128) / 32 - 1)) << e;
}

// TQ1_0: a byte stores 5 trits t0..t4 as ceil((81 t0 + 27 t1 + 9 t2 + 3 t3 + t4) * 256 / 243).
// qs[m] holds elements m + 32 n (m < 32), qs[32 + m] elements 160 + m + 16 n, qh[j] elements
// 240 + j + 4 n (4 trits, then a zero trit).
TEST(LowbitFormats, Tq1DecodesKnownBlock) {
  auto pack = [](const int t[5]) {
    const int v = 81 * t[0] + 27 * t[1] + 9 * t[2] + 3 * t[3] + t[4];
    return static_cast<uint8_t>((v * 256 + 242) / 243);
  };
  std::vector<int> want(256);
  std::vector<uint8_t> b(54);
  std::mt19937 rng(3);
  for (int m = 0; m < 48; ++m) {
    int t[5];
    for (int n = 0; n < 5; ++n) t[n] = static_cast<int>(rng() % 3);
    b[m] = pack(t);
    for (int n = 0; n < 5; ++n) want[m < 32 ? m + 32 * n : 160 + (m - 32) + 16 * n] = t[n];
  }
  for (int j = 0; j < 4; ++j) {
    int t[5] = {static_cast<int>(rng() % 3), static_cast<int>(rng() % 3), static_cast<int>(rng() % 3),
                static_cast<int>(rng() % 3), 0};
    b[48 + j] = pack(t);
    for (int n = 0; n < 4; ++n) want[240 + j + 4 * n] = t[n];
  }
  put16(b, 52, 0x3C00);
  const auto v = decode(GgmlType::TQ1_0, b, 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(v[e], static_cast<float>(want[e] - 1)) << e;
}

// Quantize then dequantize: relative RMS error within what each format can do on Gaussian
// data (the ternary formats only keep sign and zero, so their bound is loose, but an
// unpacking in the wrong order would give ~1.4).
TEST(LowbitFormats, RoundTripError) {
  const struct {
    GgmlType t;
    double max_rel;
  } cases[] = {{GgmlType::IQ4_NL, 0.12}, {GgmlType::IQ4_XS, 0.12}, {GgmlType::MXFP4, 0.2},
               {GgmlType::TQ1_0, 0.9},   {GgmlType::TQ2_0, 0.9}};
  for (const auto& c : cases) {
    const auto x = gaussian(4096, 17);
    const auto y = dequantize(c.t, quantize(c.t, x), 4096);
    EXPECT_LT(rmse(x, y) / rms(x), c.max_rel) << ggml_type_name(c.t);
  }
  // Exactly representable inputs come back exactly: ternary values, E2M1 values times a
  // power of two, table values times a scale.
  std::vector<float> tern(512), fp4(512);
  const float e2m1[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int i = 0; i < 512; ++i) {
    tern[i] = 0.25f * static_cast<float>(i % 3 - 1);
    fp4[i] = (i % 32 == 0 ? 6.0f : e2m1[(i * 7) % 8] * ((i / 3) % 2 ? -1 : 1)) * 0.125f;
  }
  tern[0] = 0.25f;
  for (int b = 0; b < 2; ++b) tern[256 * b] = 0.25f;  // each block reaches amax = d
  EXPECT_EQ(dequantize(GgmlType::TQ1_0, quantize(GgmlType::TQ1_0, tern), 512), tern);
  EXPECT_EQ(dequantize(GgmlType::TQ2_0, quantize(GgmlType::TQ2_0, tern), 512), tern);
  EXPECT_EQ(dequantize(GgmlType::MXFP4, quantize(GgmlType::MXFP4, fp4), 512), fp4);
}

std::vector<uint8_t> activations(GgmlType at, int64_t n, uint32_t seed, float scale) {
  const auto x = gaussian(n, seed, scale);
  std::vector<uint8_t> a(ggml_row_size(at, n));
  quant_traits(at).from_float(x.data(), a.data(), n);
  return a;
}

// sum |w_i a_i| of the dequantized rows: the scale of the dot product's rounding error.
double magnitude(GgmlType t, const std::vector<uint8_t>& w, GgmlType at, const std::vector<uint8_t>& a, int64_t n) {
  const auto wd = dequantize(t, w, n);
  const auto ad = dequantize(at, a, n);
  double mag = 0;
  for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wd[i]) * ad[i]);
  return mag;
}

// Every SIMD vec_dot against the scalar reference (which sums exact block integers in
// double): they differ only by float rounding of the per-block scale products and the
// 8-lane float sums, bounded by a few ulps of sum |w a| (measured: below 2e-7 relative).
TEST(LowbitFormats, SimdDotMatchesReferenceOnRandomBlocks) {
  if (simd_isas().empty()) GTEST_SKIP() << "no AVX2";
  for (Isa isa : simd_isas()) {
    for (GgmlType t : kLowbit) {
      const QuantTraits q = quant_traits_for(t, isa);
      const QuantTraits ref = quant_traits_for(t, Isa::Scalar);
      ASSERT_NE(q.vec_dot, ref.vec_dot) << ggml_type_name(t) << " has no " << isa_name(isa) << " kernel";
      for (int64_t n : {256, 512, 2816}) {
        for (uint32_t seed = 1; seed <= 4; ++seed) {
          const auto w = random_lowbit_blocks(t, n, seed * 31 + static_cast<uint32_t>(n));
          const auto a = activations(q.vec_dot_type, n, seed, 1.0f + static_cast<float>(seed));
          const double mag = magnitude(t, w, q.vec_dot_type, a, n);
          const float got = q.vec_dot(n, w.data(), a.data());
          const float want = ref.vec_dot(n, w.data(), a.data());
          EXPECT_NEAR(got, want, 1e-6 * mag + 1e-30) << ggml_type_name(t) << " " << isa_name(isa) << " n=" << n;
        }
      }
    }
  }
}

// Edge blocks: zero scale, the largest and smallest fp16 scales, negative zero, and for
// MXFP4 exponents from 0 (2^-127) to 200 (larger ones overflow the float dot product, as
// in ggml; 255 is checked by the NaN/Inf test below). SIMD and reference must agree exactly where the result is
// exactly representable, and closely otherwise.
TEST(LowbitFormats, SimdDotMatchesReferenceOnEdgeScales) {
  if (simd_isas().empty()) GTEST_SKIP() << "no AVX2";
  const int64_t n = 512;
  for (Isa isa : simd_isas()) {
    for (GgmlType t : kLowbit) {
      const QuantTraits q = quant_traits_for(t, isa);
      const QuantTraits ref = quant_traits_for(t, Isa::Scalar);
      const auto a = activations(q.vec_dot_type, n, 9, 1.0f);
      const std::vector<uint16_t> halves{0x0000, 0x8000, 0x7BFF, 0xFBFF, 0x0001, 0x0400, 0x3C00};
      const std::vector<uint8_t> exps{0, 1, 2, 127, 128, 160, 200};
      const size_t count = t == GgmlType::MXFP4 ? exps.size() : halves.size();
      for (size_t k = 0; k < count; ++k) {
        auto w = random_lowbit_blocks(t, n, 77 + static_cast<uint32_t>(k));
        const size_t bs = ggml_type_info(t).type_size;
        for (size_t off = 0; off < w.size(); off += bs) {
          const size_t at = lowbit_scale_offset(t);
          if (t == GgmlType::MXFP4) w[off] = exps[k];
          else std::memcpy(&w[off + at], &halves[k], 2);
        }
        const float got = q.vec_dot(n, w.data(), a.data());
        const float want = ref.vec_dot(n, w.data(), a.data());
        const double mag = magnitude(t, w, q.vec_dot_type, a, n);
        ASSERT_TRUE(std::isfinite(want)) << ggml_type_name(t) << " case " << k;
        EXPECT_NEAR(got, want, 1e-6 * mag + 1e-37) << ggml_type_name(t) << " " << isa_name(isa) << " case " << k;
      }
    }
  }
}

// Bad blocks (a NaN or Inf fp16 scale, MXFP4 exponent 255 with large codes) must not crash:
// like ggml, the dequantized values and the dot product become NaN/Inf, and every ISA
// agrees that the result is not finite.
TEST(LowbitFormats, NonFiniteScalesGiveNonFiniteResultsWithoutCrashing) {
  const int64_t n = 256;
  for (GgmlType t : kLowbit) {
    auto w = random_lowbit_blocks(t, n, 5);
    const size_t at = lowbit_scale_offset(t);
    if (t == GgmlType::MXFP4) {
      for (size_t off = 0; off < w.size(); off += 17) w[off] = 255, w[off + 1] = 0x77;
    } else {
      const uint16_t nan = 0x7E00;
      std::memcpy(&w[at], &nan, 2);
    }
    const auto v = dequantize(t, w, n);
    bool any_bad = false;
    for (float f : v) any_bad |= !std::isfinite(f);
    EXPECT_TRUE(any_bad) << ggml_type_name(t);
    const GgmlType at_type = quant_traits(t).vec_dot_type;
    const auto a = activations(at_type, n, 6, 1.0f);
    EXPECT_FALSE(std::isfinite(quant_traits_for(t, Isa::Scalar).vec_dot(n, w.data(), a.data()))) << ggml_type_name(t);
    for (Isa isa : simd_isas())
      EXPECT_FALSE(std::isfinite(quant_traits_for(t, isa).vec_dot(n, w.data(), a.data())))
          << ggml_type_name(t) << " " << isa_name(isa);
  }
}

// Quantizing zeros, a single non-zero value, huge and tiny blocks never crashes and gives
// blocks that decode to finite values close to the input.
TEST(LowbitFormats, QuantizersHandleDegenerateBlocks) {
  for (GgmlType t : kLowbit) {
    for (float s : {0.0f, 1e-30f, 1e-8f, 1.0f, 6e4f}) {
      std::vector<float> x(512, 0.0f);
      x[3] = s;
      x[300] = -s / 2;
      const auto y = dequantize(t, quantize(t, x), 512);
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_TRUE(std::isfinite(y[i])) << ggml_type_name(t) << " s=" << s << " i=" << i;
        EXPECT_LE(std::fabs(y[i]), std::fabs(s) * 1.5 + 1e-30) << ggml_type_name(t) << " s=" << s << " i=" << i;
      }
      if (s >= 1.0f) {
        EXPECT_NEAR(y[3], s, 0.2 * s) << ggml_type_name(t) << " s=" << s;
      }
    }
  }
}

}  // namespace
}  // namespace swapmoe
