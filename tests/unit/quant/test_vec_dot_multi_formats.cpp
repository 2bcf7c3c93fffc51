// Multi-row dot products of F32 / F16 / BF16 (simd_multi_float.inc), the 32-element legacy
// formats (simd_multi_legacy.inc), Q2_K / Q3_K (simd_multi_lowk.inc) and IQ4_NL, IQ4_XS,
// MXFP4, TQ1_0, TQ2_0 (simd_lowbit.inc): for every SIMD
// ISA this CPU has, every row count 1..kVecDotMultiMax, odd block counts and (float
// formats) every tail shape, each row's result must be bitwise equal to the same ISA's
// vec_dot, since the batched prefill is tested to reproduce token-by-token decode exactly.
// Activations are converted as the forward pass converts them (the table's from_float),
// rows are strided with padding, and outputs are strided, checking nothing is written
// between them.

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "quant/quant.h"
#include "quant_test_util.h"

namespace swapmoe {
namespace {

using namespace testing_quant;

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K, GgmlType::Q3_K,
                           GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::MXFP4, GgmlType::TQ1_0, GgmlType::TQ2_0};

// Element counts: for the float formats every path of their vec_dot (32- or 16-wide loop,
// 8-wide loop, scalar tail, and combinations); for the 32-element formats 1..17 blocks
// incl. the absorb-kb width 128, for the k-quants 1..5 blocks.
std::vector<int64_t> sizes(GgmlType t) {
  if (ggml_type_info(t).block_size == 1) return {1, 5, 8, 13, 16, 24, 31, 32, 33, 40, 47, 64, 100, 128, 1003, 7168};
  if (ggml_type_info(t).block_size == 256) return {256, 512, 768, 1280};
  return {32, 64, 96, 128, 224, 544};
}

TEST(VecDotMultiFormats, PresentOnEverySimdIsaAndAbsentOnScalar) {
  for (GgmlType t : kTypes) {
    for (Isa isa : simd_isas()) EXPECT_NE(quant_traits_for(t, isa).vec_dot_multi, nullptr) << ggml_type_name(t);
    EXPECT_EQ(quant_traits_for(t, Isa::Scalar).vec_dot_multi, nullptr) << ggml_type_name(t);
  }
}

TEST(VecDotMultiFormats, BitwiseEqualToVecDotOfTheSameIsa) {
  if (simd_isas().empty()) GTEST_SKIP() << "no AVX2";
  int checked = 0;
  for (Isa isa : simd_isas()) {
    for (GgmlType t : kTypes) {
      const QuantTraits q = quant_traits_for(t, isa);
      ASSERT_NE(q.vec_dot_multi, nullptr);
      const QuantTraits qa = quant_traits_for(q.vec_dot_type, isa);
      for (int64_t n : sizes(t)) {
        for (uint32_t seed = 1; seed <= 3; ++seed) {
          std::vector<float> wf = gaussian(n, 10 * seed + static_cast<uint32_t>(n));
          if (seed == 3) std::fill(wf.begin(), wf.begin() + n / 2, 0.0f);  // zero weight blocks
          std::vector<uint8_t> w(ggml_row_size(t, n));
          q.from_float_ref(wf.data(), w.data(), n);
          const size_t arb = ggml_row_size(q.vec_dot_type, n);
          const size_t stride = arb + 36;  // padded rows, not a multiple of 32 bytes
          std::vector<uint8_t> acts(stride * kVecDotMultiMax, 0xCD);
          for (int r = 0; r < kVecDotMultiMax; ++r) {
            std::vector<float> x = gaussian(n, 1000 * seed + static_cast<uint32_t>(r), 1.0f + r);
            if (r == 2) std::fill(x.begin(), x.begin() + (n + 1) / 2, 0.0f);  // zero activation blocks
            if (r == 5) x[static_cast<size_t>(n - 1)] = 1e4f;                // one outlier at the very end
            qa.from_float(x.data(), acts.data() + r * stride, n);
          }
          for (int na = 1; na <= kVecDotMultiMax; ++na) {
            std::vector<float> out(static_cast<size_t>(na) * 3, -7.0f);
            q.vec_dot_multi(n, w.data(), acts.data(), stride, na, out.data(), 3);
            for (int r = 0; r < na; ++r) {
              const float want = q.vec_dot(n, w.data(), acts.data() + r * stride);
              ASSERT_TRUE(same_bits(out[r * 3], want))
                  << ggml_type_name(t) << " " << isa_name(isa) << " n=" << n << " seed=" << seed << " na=" << na
                  << " r=" << r << ": " << out[r * 3] << " vs " << want;
              ASSERT_EQ(out[r * 3 + 1], -7.0f);
              ASSERT_EQ(out[r * 3 + 2], -7.0f);
              ++checked;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 0);
}

// The results are not only self-consistent: they match the scalar reference dot product
// up to summation order (relative to sum |w_i a_i|), so a wrong unpacking would fail.
TEST(VecDotMultiFormats, CloseToTheScalarReference) {
  if (simd_isas().empty()) GTEST_SKIP() << "no AVX2";
  for (Isa isa : simd_isas()) {
    for (GgmlType t : kTypes) {
      const QuantTraits q = quant_traits_for(t, isa);
      const QuantTraits ref = quant_traits_for(t, Isa::Scalar);
      const QuantTraits qa = quant_traits_for(q.vec_dot_type, isa);
      const int64_t n = ggml_type_info(t).block_size == 256 ? 768 : 224;
      const auto wf = gaussian(n, 77);
      std::vector<uint8_t> w(ggml_row_size(t, n));
      q.from_float_ref(wf.data(), w.data(), n);
      const size_t arb = ggml_row_size(q.vec_dot_type, n);
      std::vector<uint8_t> acts(arb * kVecDotMultiMax);
      for (int r = 0; r < kVecDotMultiMax; ++r) {
        const auto x = gaussian(n, 500 + static_cast<uint32_t>(r));
        qa.from_float(x.data(), acts.data() + r * arb, n);
      }
      std::vector<float> out(kVecDotMultiMax);
      q.vec_dot_multi(n, w.data(), acts.data(), arb, kVecDotMultiMax, out.data(), 1);
      const auto wd = dequantize(t, w, n);
      for (int r = 0; r < kVecDotMultiMax; ++r) {
        std::vector<uint8_t> arow(acts.begin() + r * arb, acts.begin() + (r + 1) * arb);
        const auto ad = dequantize(q.vec_dot_type, arow, n);
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wd[i]) * ad[i]);
        const float want = ref.vec_dot(n, w.data(), arow.data());
        EXPECT_NEAR(out[r], want, 1e-5 * mag) << ggml_type_name(t) << " " << isa_name(isa) << " r=" << r;
      }
    }
  }
}

}  // namespace
}  // namespace swapmoe
