// Quantization quality, round trips and edge cases of every block format, using the
// scalar reference kernels (the SIMD ones are compared with these in test_quant_simd).

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "ops/matvec.h"
#include "quant/quant.h"
#include "quant_test_util.h"
#include "util/error.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

using namespace testing_quant;

// RMSE / RMS of quantize -> dequantize on Gaussian data with outliers. Measured values
// (n = 8192, 3 seeds, and scales 0.01 / 30) are in the comments; bounds leave 25% margin.
const std::map<GgmlType, double>& rmse_bounds() {
  static const std::map<GgmlType, double> b{
      {GgmlType::F32, 0.0},      // exact
      {GgmlType::F16, 0.00026},  // measured 0.00019 .. 0.00021
      {GgmlType::BF16, 0.0021},  // measured 0.0016 .. 0.0017
      {GgmlType::Q8_0, 0.0083},  // measured 0.0064 .. 0.0066
      {GgmlType::Q8_1, 0.0083},  // measured 0.0064 .. 0.0066
      {GgmlType::Q8_K, 0.0154},  // measured 0.011 .. 0.0123 (one scale per 256, outliers)
      {GgmlType::Q6_K, 0.0256},  // measured 0.0200 .. 0.0205
      {GgmlType::Q5_0, 0.0655},  // measured 0.050 .. 0.052
      {GgmlType::Q5_1, 0.052},   // measured 0.041 .. 0.042
      {GgmlType::Q5_K, 0.051},   // measured 0.039 .. 0.041
      {GgmlType::Q4_0, 0.134},   // measured 0.102 .. 0.107
      {GgmlType::Q4_1, 0.106},   // measured 0.084 .. 0.085
      {GgmlType::Q4_K, 0.098},   // measured 0.0778 .. 0.0781
      {GgmlType::Q3_K, 0.211},   // measured 0.163 .. 0.169
      {GgmlType::Q2_K, 0.411},   // measured 0.310 .. 0.329
  };
  return b;
}

TEST(QuantFormats, QuantizeDequantizeRmseWithinBounds) {
  const int64_t n = 8192;
  for (const auto& [t, bound] : rmse_bounds()) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      const auto x = gaussian(n, seed);
      const auto back = dequantize(t, quantize(t, x), n);
      const double rel = rmse(x, back) / rms(x);
      EXPECT_LE(rel, bound) << ggml_type_name(t) << " seed " << seed;
      // A bound far above the measurement would let a real regression slip through.
      if (bound > 0) {
        EXPECT_GE(rel, bound * 0.5) << ggml_type_name(t) << " bound is stale: " << rel;
      }
    }
  }
}

// Quality does not depend on the magnitude of the data, as long as the scales fit fp16.
TEST(QuantFormats, RmseIsScaleInvariantWithinFp16Range) {
  const int64_t n = 2048;
  for (const auto& [t, bound] : rmse_bounds()) {
    for (float scale : {1e-2f, 30.0f}) {
      const auto x = gaussian(n, 7, scale);
      const auto back = dequantize(t, quantize(t, x), n);
      EXPECT_LE(rmse(x, back) / rms(x), bound * 1.1 + 1e-7) << ggml_type_name(t) << " scale " << scale;
    }
  }
}

TEST(QuantFormats, AllZerosStayZero) {
  for (const auto& [t, bound] : rmse_bounds()) {
    const std::vector<float> x(512, 0.0f);
    const auto q = quantize(t, x);
    const auto back = dequantize(t, q, 512);
    for (float v : back) ASSERT_EQ(v, 0.0f) << ggml_type_name(t);
    // The activation quantizers must agree.
    const auto qa = quantize(t, x, /*reference=*/false);
    for (float v : dequantize(t, qa, 512)) ASSERT_EQ(v, 0.0f) << ggml_type_name(t);
  }
}

TEST(QuantFormats, HugeAndTinyValuesStayFinite) {
  for (const auto& [t, bound] : rmse_bounds()) {
    for (float scale : {1e4f, 1e-6f}) {
      std::vector<float> x = gaussian(512, 11, scale);
      const auto back = dequantize(t, quantize(t, x), 512);
      for (float v : back) ASSERT_TRUE(std::isfinite(v)) << ggml_type_name(t) << " scale " << scale;
    }
  }
}

// Data the format can represent exactly comes back bit for bit.
TEST(QuantFormats, RepresentableDataRoundTripsExactly) {
  std::mt19937 rng(5);
  auto level = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int64_t n = 256;
  // {type, lowest level, highest level, offset}: values (level + offset) * 0.125 with the
  // extreme level present in every block, so the block scale comes out as exactly 0.125.
  struct Sym {
    GgmlType t;
    int lo, hi;
  };
  for (const Sym& s : {Sym{GgmlType::Q4_0, -8, 7}, Sym{GgmlType::Q5_0, -16, 15}, Sym{GgmlType::Q8_0, -127, 127}}) {
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = level(s.lo + (s.lo == -127 ? 0 : 1), s.hi) * 0.125f;
    for (int64_t b = 0; b < n; b += 32) x[b + 3] = s.lo * 0.125f;  // Q4_0/Q5_0 scale from the negative end
    EXPECT_EQ(dequantize(s.t, quantize(s.t, x), n), x) << ggml_type_name(s.t);
  }
  // Asymmetric formats: min + level * d, with level 0 and the top level in every block.
  for (auto [t, top] : {std::pair{GgmlType::Q4_1, 15}, std::pair{GgmlType::Q5_1, 31}}) {
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = -1.0f + level(0, top) * 0.125f;
    for (int64_t b = 0; b < n; b += 32) {
      x[b + 1] = -1.0f;
      x[b + 2] = -1.0f + top * 0.125f;
    }
    EXPECT_EQ(dequantize(t, quantize(t, x), n), x) << ggml_type_name(t);
  }
  // Float formats: values already rounded to the format.
  for (GgmlType t : {GgmlType::F16, GgmlType::BF16, GgmlType::F32}) {
    auto x = gaussian(n, 9);
    for (auto& v : x) v = (t == GgmlType::F16) ? fp16_to_fp32(fp32_to_fp16(v)) : bf16_to_fp32(fp32_to_bf16(v));
    EXPECT_EQ(dequantize(t, quantize(t, x), n), x) << ggml_type_name(t);
  }
}

// k-quants search scales, so re-quantizing dequantized data need not give the same
// bytes; it must stay (almost) where it is, far below the format's own error.
TEST(QuantFormats, KQuantRequantizationIsStable) {
  const int64_t n = 2048;
  for (GgmlType t : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const auto x = gaussian(n, 21);
    const auto once = dequantize(t, quantize(t, x), n);
    const auto twice = dequantize(t, quantize(t, once), n);
    const double first = rmse(x, once), second = rmse(once, twice);
    EXPECT_LE(second, 0.25 * first) << ggml_type_name(t);
  }
}

TEST(QuantFormats, RejectsBadSizesAndTypes) {
  QuantizedActivation a;
  std::vector<float> x(100, 1.0f);
  EXPECT_THROW(quantize_activation(x.data(), 100, GgmlType::Q8_0, a), Error);
  EXPECT_THROW(quantize_activation(x.data(), 100, GgmlType::Q8_K, a), Error);
  EXPECT_THROW(quant_traits(static_cast<GgmlType>(4)), Error);   // Q4_2, long removed
  EXPECT_THROW(quant_traits(static_cast<GgmlType>(40)), Error);  // NVFP4: not supported
}

TEST(QuantFormats, TraitTableIsConsistent) {
  for (GgmlType t : weight_types()) {
    const QuantTraits& q = quant_traits(t);
    EXPECT_EQ(q.type, t);
    ASSERT_NE(q.to_float, nullptr);
    ASSERT_NE(q.from_float, nullptr);
    ASSERT_NE(q.vec_dot, nullptr);
    ASSERT_NE(q.to_float_ref, nullptr);
    ASSERT_NE(q.from_float_ref, nullptr);
    ASSERT_NE(q.vec_dot_ref, nullptr);
    // The activation format of every weight type is itself in the table.
    EXPECT_NO_THROW(quant_traits(q.vec_dot_type));
  }
  // ggml-cpu's pairing.
  EXPECT_EQ(quant_traits(GgmlType::Q4_0).vec_dot_type, GgmlType::Q8_0);
  EXPECT_EQ(quant_traits(GgmlType::Q5_0).vec_dot_type, GgmlType::Q8_0);
  EXPECT_EQ(quant_traits(GgmlType::Q8_0).vec_dot_type, GgmlType::Q8_0);
  EXPECT_EQ(quant_traits(GgmlType::Q4_1).vec_dot_type, GgmlType::Q8_1);
  EXPECT_EQ(quant_traits(GgmlType::Q5_1).vec_dot_type, GgmlType::Q8_1);
  for (GgmlType t : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
    EXPECT_EQ(quant_traits(t).vec_dot_type, GgmlType::Q8_K);
  EXPECT_EQ(quant_traits(GgmlType::F16).vec_dot_type, GgmlType::F16);
  EXPECT_EQ(quant_traits(GgmlType::BF16).vec_dot_type, GgmlType::BF16);
  EXPECT_EQ(quant_traits(GgmlType::F32).vec_dot_type, GgmlType::F32);
}

// The scalar references agree with a plain float dot product of the dequantized rows.
TEST(QuantFormats, ReferenceDotMatchesDequantizedDot) {
  const int64_t n = 1024;
  for (GgmlType t : weight_types()) {
    const QuantTraits& q = quant_traits(t);
    const auto w = quantize(t, gaussian(n, 31));
    const auto a = quantize(q.vec_dot_type, gaussian(n, 32), /*reference=*/false);
    const auto wf = dequantize(t, w, n);
    const auto af = dequantize(q.vec_dot_type, a, n);
    double expect = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      expect += static_cast<double>(wf[i]) * af[i];
      mag += std::fabs(static_cast<double>(wf[i]) * af[i]);
    }
    // Q4_1 / Q5_1 use the activation's fp16 sum s = d * sum(q) for the min term, which
    // carries fp16 rounding; all others are exact up to float summation.
    const double tol = (t == GgmlType::Q4_1 || t == GgmlType::Q5_1) ? 2e-3 * mag : 1e-5 * mag;
    EXPECT_NEAR(q.vec_dot_ref(n, w.data(), a.data()), expect, tol) << ggml_type_name(t);
  }
}

}  // namespace
}  // namespace swapmoe
