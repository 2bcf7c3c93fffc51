// Grid-based i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M) against llama.cpp's
// ggml (ggml_ref.h): dequantization bitwise equal on every grid entry, random blocks and edge
// scales; dot products close to ggml's vec_dot; SIMD and multi-row kernels bitwise equal to
// our scalar references (they share the exact integer sums and the per-block float sequence).

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <vector>

#include "ggml_ref.h"
#include "iq_test_util.h"
#include "quant/quant.h"
#include "quant_test_util.h"
#include "util/error.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

using namespace testing_iq;
using testing_quant::gaussian;
using testing_quant::simd_isas;
using test::GgmlRef;

int id(GgmlType t) { return static_cast<int>(t); }

// Bitwise comparison of ours vs ggml's to_float on the given blocks; NaN positions must agree
// (their sign bits may not: a compiler may turn `x * -1.f` into a sign flip).
void expect_to_float_equal(const GgmlRef* ref, const IqFormat& f, const std::vector<uint8_t>& blocks,
                           const char* what) {
  const int64_t n = static_cast<int64_t>(blocks.size() / f.block_bytes) * QK_K;
  std::vector<float> theirs(n), ours(n);
  ASSERT_TRUE(ref->to_float(id(f.type), blocks.data(), theirs.data(), n));
  quant_traits(f.type).to_float_ref(blocks.data(), ours.data(), n);
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool same = std::isnan(theirs[i]) ? std::isnan(ours[i]) : std::memcmp(&theirs[i], &ours[i], 4) == 0;
    if (!same && bad++ < 3)
      ADD_FAILURE() << ggml_type_name(f.type) << " " << what << ": element " << i << " ours " << ours[i] << " ggml "
                    << theirs[i];
  }
  EXPECT_EQ(bad, 0) << ggml_type_name(f.type) << " " << what;
  // The to_float of the best ISA (the table's) must agree as well.
  std::vector<float> best(n);
  quant_traits(f.type).to_float(blocks.data(), best.data(), n);
  EXPECT_EQ(std::memcmp(best.data(), ours.data(), n * sizeof(float)), 0) << ggml_type_name(f.type) << " " << what;
}

TEST(IqFormats, LayoutMatchesGgml) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  for (const IqFormat& f : iq_formats()) {
    EXPECT_EQ(ref->block_size(id(f.type)), QK_K) << ggml_type_name(f.type);
    EXPECT_EQ(ref->type_size(id(f.type)), f.block_bytes) << ggml_type_name(f.type);
    EXPECT_EQ(ggml_type_info(f.type).type_size, f.block_bytes) << ggml_type_name(f.type);
    EXPECT_EQ(ref->vec_dot_type(id(f.type)), id(quant_traits(f.type).vec_dot_type)) << ggml_type_name(f.type);
  }
}

// Every grid entry, in every group position, with random signs and scales: proves the
// transcribed tables (a wrong byte anywhere changes some dequantized value).
TEST(IqFormats, EveryGridIndexDequantizesLikeGgml) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  for (const IqFormat& f : iq_formats()) {
    // Each index appears in each group position at least once: grid_size blocks, group g of
    // block b holds index (b + g) % grid_size.
    auto blocks = random_blocks(f, f.grid_size, 100 + id(f.type), -1.0f, 1.0f);
    for (int b = 0; b < f.grid_size; ++b)
      for (int g = 0; g < f.groups; ++g) f.set_index(blocks.data() + b * f.block_bytes, g, (b + g) % f.grid_size);
    expect_to_float_equal(ref, f, blocks, "every grid index");
  }
}

TEST(IqFormats, RandomBlocksDequantizeLikeGgml) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  for (const IqFormat& f : iq_formats()) {
    // 512 blocks x 32+ groups: all 128 sign patterns and all scale nibbles occur many times.
    expect_to_float_equal(ref, f, random_blocks(f, 512, 7 + id(f.type)), "random blocks");
    expect_to_float_equal(ref, f, random_blocks(f, 64, 8 + id(f.type), -7.5f, 4.8f), "wide scales");
  }
}

// Zero, negative zero, the smallest subnormal, the largest finite, infinities and NaN as block
// scale. ggml just computes with them (no check); so do we.
TEST(IqFormats, EdgeScalesDequantizeLikeGgml) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  const uint16_t edges[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0xfe01};
  for (const IqFormat& f : iq_formats()) {
    auto blocks = random_blocks(f, std::size(edges), 9 + id(f.type));
    for (size_t k = 0; k < std::size(edges); ++k) f.set_d(blocks.data() + k * f.block_bytes, edges[k]);
    expect_to_float_equal(ref, f, blocks, "edge scales");
  }
}

// Our dot product vs ggml's (its x86 kernels for this CPU): the integer sums are exact on
// both sides, only the float accumulation differs (ggml sums 8 lanes of per-32 partials
// per block, we sum one value per block), so the difference is a few float roundings of
// partial sums, each bounded by sum |w_i * a_i|: 24 additions x 2^-24 < 2e-6 of it; 1e-5 is
// the bound. Activations come from ggml's own quantizer, checked equal to ours.
TEST(IqFormats, VecDotMatchesGgml) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  const int64_t n = 4096;
  for (const IqFormat& f : iq_formats()) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      const auto w = random_blocks(f, n / QK_K, seed * 31 + id(f.type), -2.0f, 0.0f);
      const auto x = gaussian(n, seed);
      std::vector<uint8_t> act(ggml_row_size(GgmlType::Q8_K, n)), act_ours(act.size());
      ASSERT_TRUE(ref->from_float(ref->vec_dot_type(id(f.type)), x.data(), act.data(), n));
      quant_traits(GgmlType::Q8_K).from_float(x.data(), act_ours.data(), n);
      ASSERT_EQ(act, act_ours);
      float theirs = 0;
      ASSERT_TRUE(ref->vec_dot(id(f.type), n, w.data(), act.data(), &theirs));
      std::vector<float> wf(n), af(n);
      quant_traits(f.type).to_float_ref(w.data(), wf.data(), n);
      quant_traits(GgmlType::Q8_K).to_float_ref(act.data(), af.data(), n);
      double mag = 0, exact = 0;
      for (int64_t i = 0; i < n; ++i) {
        mag += std::fabs(static_cast<double>(wf[i]) * af[i]);
        exact += static_cast<double>(wf[i]) * af[i];
      }
      const float ours = quant_traits(f.type).vec_dot_ref(n, w.data(), act.data());
      EXPECT_NEAR(ours, theirs, 1e-5 * mag) << ggml_type_name(f.type) << " seed " << seed;
      // And both are the dot product of the dequantized rows (a check independent of ggml).
      EXPECT_NEAR(ours, exact, 1e-5 * mag) << ggml_type_name(f.type) << " seed " << seed;
      EXPECT_GT(mag, 0.0);
    }
  }
}

// NaN / Inf block scales in a weight row: ggml computes through them (no check), giving a
// non-finite result; ours does the same and never crashes. An infinite scale gives +-Inf or
// NaN depending on the summation order (ggml's x86 kernel adds Inf * 0 lanes and gets NaN,
// our per-block sum gives Inf), so only NaN scales must give NaN on both sides.
TEST(IqFormats, NonFiniteScalesPropagateLikeGgml) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  const int64_t n = 1024;
  const auto x = gaussian(n, 5);
  std::vector<uint8_t> act(ggml_row_size(GgmlType::Q8_K, n));
  quant_traits(GgmlType::Q8_K).from_float(x.data(), act.data(), n);
  for (const IqFormat& f : iq_formats()) {
    for (uint16_t h : {uint16_t{0x7c00}, uint16_t{0xfc00}, uint16_t{0x7e00}}) {
      auto w = random_blocks(f, n / QK_K, 77);
      f.set_d(w.data() + f.block_bytes, h);
      float theirs = 0;
      ASSERT_TRUE(ref->vec_dot(id(f.type), n, w.data(), act.data(), &theirs));
      const float ours = quant_traits(f.type).vec_dot(n, w.data(), act.data());
      EXPECT_FALSE(std::isfinite(theirs));
      EXPECT_FALSE(std::isfinite(ours)) << ggml_type_name(f.type) << " scale " << h;
      if (h == 0x7e00) {
        EXPECT_TRUE(std::isnan(theirs));
        EXPECT_TRUE(std::isnan(ours)) << ggml_type_name(f.type);
      }
    }
  }
}

// SIMD dot products use the same exact integers and the same per-block float steps as the
// reference, so they must be bitwise equal; the multi-row kernels equal their vec_dot for
// 1..8 rows, with padded activation rows (stride not a multiple of 32), a zero activation
// half, an outlier, and output slots between the rows left untouched.
TEST(IqFormats, SimdBitwiseEqualToReference) {
  int checked = 0;
  for (const IqFormat& f : iq_formats()) {
    const QuantTraits& q = quant_traits(f.type);
    for (int64_t n : {256, 512, 768, 1280}) {
      const auto w = random_blocks(f, n / QK_K, 55 + id(f.type) + static_cast<uint32_t>(n), -3.0f, 1.0f);
      const size_t arb = ggml_row_size(GgmlType::Q8_K, n), stride = arb + 36;
      std::vector<uint8_t> acts(stride * kVecDotMultiMax, 0xCD);
      for (int r = 0; r < kVecDotMultiMax; ++r) {
        std::vector<float> x = gaussian(n, 200 + r + static_cast<uint32_t>(n), 1.0f + r);
        if (r == 2) std::fill(x.begin(), x.begin() + n / 2, 0.0f);
        if (r == 5) x[static_cast<size_t>(n - 1)] = 1e4f;
        quant_traits(GgmlType::Q8_K).from_float(x.data(), acts.data() + r * stride, n);
      }
      for (Isa isa : simd_isas()) {
        const QuantTraits s = quant_traits_for(f.type, isa);
        EXPECT_NE(s.vec_dot, q.vec_dot_ref) << ggml_type_name(f.type) << " " << isa_name(isa) << " has no SIMD kernel";
        ASSERT_NE(s.vec_dot_multi, nullptr) << ggml_type_name(f.type) << " " << isa_name(isa);
        for (int r = 0; r < kVecDotMultiMax; ++r) {
          const float want = q.vec_dot_ref(n, w.data(), acts.data() + r * stride);
          const float got = s.vec_dot(n, w.data(), acts.data() + r * stride);
          EXPECT_EQ(std::memcmp(&want, &got, 4), 0)
              << ggml_type_name(f.type) << " " << isa_name(isa) << " n " << n << " row " << r << ": " << got << " vs "
              << want;
        }
        for (int na = 1; na <= kVecDotMultiMax; ++na) {
          std::vector<float> out(3 * na, -7.0f);
          s.vec_dot_multi(n, w.data(), acts.data(), stride, na, out.data(), 3);
          for (int r = 0; r < na; ++r) {
            const float want = s.vec_dot(n, w.data(), acts.data() + r * stride);
            EXPECT_EQ(std::memcmp(&want, &out[3 * r], 4), 0)
                << ggml_type_name(f.type) << " " << isa_name(isa) << " n " << n << " na " << na << " row " << r;
            EXPECT_EQ(out[3 * r + 1], -7.0f);
            EXPECT_EQ(out[3 * r + 2], -7.0f);
            ++checked;
          }
        }
      }
    }
  }
  if (!simd_isas().empty()) {
    EXPECT_GT(checked, 0);
  }
}

TEST(IqFormats, QuantizingIsRefusedWithAClearError) {
  const std::vector<float> x(QK_K, 0.5f);
  std::vector<uint8_t> out(256);
  for (const IqFormat& f : iq_formats()) {
    try {
      quant_traits(f.type).from_float_ref(x.data(), out.data(), QK_K);
      ADD_FAILURE() << ggml_type_name(f.type) << " quantized without a quantizer";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(ggml_type_name(f.type)), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace swapmoe
