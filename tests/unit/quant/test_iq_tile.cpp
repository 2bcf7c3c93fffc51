// Row tiles of the grid-based i-quants and IQ4_XS (QuantTraits::mat_tile, simd_iq_tile.inc): every
// (row, token) result must be bitwise equal to the same table's vec_dot (itself bitwise equal
// to the scalar reference, test_iq_formats.cpp), since batched prefill must reproduce
// token-by-token decode exactly. Covered: every row count 1..kMatTileRows, token counts
// around the 4-token groups and the largest call, 1..5 blocks, a zero activation row, the
// largest integer sums (all-ones bits: top grid entries and scales, activations +-127),
// NaN / Inf block scales, strided activations and outputs (nothing written between rows).

#include <gtest/gtest.h>

#include "../require.h"

#include <cmath>
#include <cstring>
#include <random>

#include "iq_test_util.h"
#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant_test_util.h"

namespace swapmoe {
namespace {

using namespace testing_iq;
using testing_quant::gaussian;
using quant::BlockQ8_K;

constexpr float kSentinel = -12345.0f;

// The tiled formats: the grid i-quants, and IQ4_XS (136-byte blocks, fp16 d first; every bit
// pattern of the rest is valid; set_index is not used here).
const std::vector<IqFormat>& tile_formats() {
  static const std::vector<IqFormat> f = [] {
    std::vector<IqFormat> v = iq_formats();
    v.push_back({GgmlType::IQ4_XS, 16, 64, 136, [](uint8_t*, int, int) {}, set_d_front});
    return v;
  }();
  return f;
}

struct Case {
  std::vector<uint8_t> w, acts;
  size_t wrb = 0, stride = 0;
};

Case make_case(const IqFormat& f, int rows, int tokens, int64_t n, uint32_t seed) {
  Case c;
  c.wrb = ggml_row_size(f.type, n);
  c.w = random_blocks(f, rows * (n / QK_K), seed, -3.0f, 1.0f);
  c.stride = ggml_row_size(GgmlType::Q8_K, n) + 36;
  c.acts.assign(c.stride * static_cast<size_t>(tokens), 0xCD);
  for (int t = 0; t < tokens; ++t) {
    std::vector<float> x = gaussian(n, seed + 1000 + 31 * static_cast<uint32_t>(t), 1.0f + static_cast<float>(t % 3));
    if (t == 2) std::fill(x.begin(), x.end(), 0.0f);
    quant_traits(GgmlType::Q8_K).from_float(x.data(), c.acts.data() + c.stride * static_cast<size_t>(t), n);
  }
  return c;
}

// The tile on rows x tokens of c against vec_dot; 3 floats between token rows must keep the sentinel.
void expect_tile_equals_vec_dot(const QuantTraits& q, const Case& c, int rows, int tokens, int64_t n, const char* what) {
  const size_t os = static_cast<size_t>(rows) + 3;
  std::vector<float> out(os * static_cast<size_t>(tokens), kSentinel);
  q.mat_tile(n, c.w.data(), c.wrb, rows, c.acts.data(), c.stride, tokens, out.data(), os);
  for (int t = 0; t < tokens; ++t) {
    for (int r = 0; r < rows; ++r) {
      const float want = q.vec_dot(n, c.w.data() + c.wrb * static_cast<size_t>(r), c.acts.data() + c.stride * static_cast<size_t>(t));
      const float got = out[os * static_cast<size_t>(t) + static_cast<size_t>(r)];
      const bool same = std::isnan(want) ? std::isnan(got) : std::memcmp(&got, &want, 4) == 0;
      ASSERT_TRUE(same) << ggml_type_name(q.type) << " " << what << " rows=" << rows << " tokens=" << tokens << " n=" << n
                        << " r=" << r << " t=" << t << ": " << got << " vs " << want;
    }
    for (size_t g = static_cast<size_t>(rows); g < os; ++g)
      ASSERT_EQ(out[os * static_cast<size_t>(t) + g], kSentinel) << ggml_type_name(q.type) << " " << what;
  }
}

TEST(IqTile, PresentOnlyWithAvx512) {
  for (const IqFormat& f : tile_formats()) {
    EXPECT_EQ(quant_traits_for(f.type, Isa::Scalar).mat_tile, nullptr);
    if (cpu_supports(Isa::Avx2)) {
      EXPECT_EQ(quant_traits_for(f.type, Isa::Avx2).mat_tile, nullptr);
    }
    if (cpu_supports(Isa::Avx512)) {
      EXPECT_NE(quant_traits_for(f.type, Isa::Avx512).mat_tile, nullptr) << ggml_type_name(f.type);
    }
  }
}

TEST(IqTile, BitwiseEqualToVecDot) {
  if (!cpu_supports(Isa::Avx512)) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  for (const IqFormat& f : tile_formats()) {
    const QuantTraits q = quant_traits_for(f.type, Isa::Avx512);
    ASSERT_NE(q.mat_tile, nullptr);
    for (int64_t n : {int64_t{256}, int64_t{768}, int64_t{1280}}) {
      const Case c = make_case(f, kMatTileRows, 13, n, 3 + static_cast<uint32_t>(n) + static_cast<uint32_t>(f.type));
      for (int rows = 1; rows <= kMatTileRows; ++rows)
        for (int tokens : {1, 3, 4, 5, 8, 13}) expect_tile_equals_vec_dot(q, c, rows, tokens, n, "random");
    }
    const Case big = make_case(f, 11, kMatTileTokens, 512, 77);
    expect_tile_equals_vec_dot(q, big, 11, kMatTileTokens, 512, "largest");
    expect_tile_equals_vec_dot(q, big, 11, kMatTileTokens - 1, 512, "largest-1");
  }
}

TEST(IqTile, ExtremeSumsAndNonFiniteScales) {
  if (!cpu_supports(Isa::Avx512)) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  const int64_t n = 2 * QK_K;
  const int rows = 6, tokens = 7;
  for (const IqFormat& f : tile_formats()) {
    const QuantTraits q = quant_traits_for(f.type, Isa::Avx512);
    Case c = make_case(f, rows, tokens, n, 9);
    // Rows 0..2: every bit set (top indices, scales, all-negative signs), a finite scale;
    // rows 3..5: NaN, +Inf and -Inf in the second block.
    for (int r = 0; r < 3; ++r) {
      std::fill(c.w.begin() + c.wrb * r, c.w.begin() + c.wrb * (r + 1), 0xFF);
      for (int b = 0; b < 2; ++b) f.set_d(c.w.data() + c.wrb * r + f.block_bytes * b, 0x3c00 + 0x100 * r);
    }
    const uint16_t bad[3] = {0x7e00, 0x7c00, 0xfc00};
    for (int r = 3; r < 6; ++r) f.set_d(c.w.data() + c.wrb * r + f.block_bytes, bad[r - 3]);
    for (int t = 0; t < tokens; ++t) {
      auto* y = reinterpret_cast<BlockQ8_K*>(c.acts.data() + c.stride * t);
      for (int i = 0; i < n / QK_K; ++i) {
        y[i].d = 0.37f + 0.01f * static_cast<float>(t);
        for (int e = 0; e < QK_K; ++e) {
          const int sign = (t % 3 == 0) ? 1 : (t % 3 == 1 ? -1 : ((e / 7) % 2 ? 1 : -1));
          y[i].qs[e] = static_cast<int8_t>(sign * 127);
        }
        for (int g = 0; g < QK_K / 16; ++g) {
          int s = 0;
          for (int e = 0; e < 16; ++e) s += y[i].qs[16 * g + e];
          y[i].bsums[g] = static_cast<int16_t>(s);
        }
      }
    }
    expect_tile_equals_vec_dot(q, c, rows, tokens, n, "extreme");
  }
}

}  // namespace
}  // namespace swapmoe
