// Row tiles of IQ4_NL and MXFP4 (QuantTraits::mat_tile, simd_q4nl_tile.inc): every (row,
// token) result must be bitwise equal to the same table's vec_dot, which the batched prefill
// relies on to reproduce token-by-token decode exactly. Covered: every row count
// 1..kMatTileRows; token counts around the 4-token groups, the 32-token chunks and the largest
// call; block counts with and without a partial group of 8 (1, 3, 8, 9, 90 blocks); the
// largest block sums (all codes at the table's extreme, activations +-127); NaN / Inf / zero
// scales; strided activations and outputs (nothing written between rows).

#include <gtest/gtest.h>

#include "../require.h"

#include <cmath>
#include <cstring>
#include <random>

#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant_test_util.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

using testing_quant::gaussian;

constexpr float kSentinel = -12345.0f;

struct Case {
  std::vector<uint8_t> w, acts;
  size_t wrb = 0, stride = 0;
};

// Block scale at byte 0 of each block: fp16 (IQ4_NL, 18-byte blocks) or E8M0 (MXFP4, 17).
void set_scale(GgmlType t, uint8_t* block, float v) {
  if (t == GgmlType::MXFP4) {
    block[0] = static_cast<uint8_t>(std::clamp(127 + static_cast<int>(std::lround(std::log2(std::fabs(v) + 1e-30f))), 0, 254));
  } else {
    const uint16_t h = fp32_to_fp16(v);
    std::memcpy(block, &h, 2);
  }
}

Case make_case(GgmlType t, int rows, int tokens, int64_t n, uint32_t seed) {
  Case c;
  c.wrb = ggml_row_size(t, n);
  const size_t bb = ggml_type_info(t).type_size;
  c.w.resize(c.wrb * static_cast<size_t>(rows));
  std::mt19937 rng(seed);
  for (auto& v : c.w) v = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> sc(-0.05f, 0.05f);
  for (size_t b = 0; b < c.w.size() / bb; ++b) set_scale(t, c.w.data() + b * bb, sc(rng));
  c.stride = ggml_row_size(GgmlType::Q8_0, n) + 36;
  c.acts.assign(c.stride * static_cast<size_t>(tokens), 0xCD);
  for (int k = 0; k < tokens; ++k) {
    std::vector<float> x = gaussian(n, seed + 1000 + 31 * static_cast<uint32_t>(k), 1.0f + static_cast<float>(k % 3));
    if (k == 2) std::fill(x.begin(), x.end(), 0.0f);
    quant_traits(GgmlType::Q8_0).from_float(x.data(), c.acts.data() + c.stride * static_cast<size_t>(k), n);
  }
  return c;
}

void expect_tile_equals_vec_dot(const QuantTraits& q, const Case& c, int rows, int tokens, int64_t n, const char* what) {
  const size_t os = static_cast<size_t>(rows) + 3;
  std::vector<float> out(os * static_cast<size_t>(tokens), kSentinel);
  q.mat_tile(n, c.w.data(), c.wrb, rows, c.acts.data(), c.stride, tokens, out.data(), os);
  for (int k = 0; k < tokens; ++k) {
    for (int r = 0; r < rows; ++r) {
      const float want = q.vec_dot(n, c.w.data() + c.wrb * static_cast<size_t>(r), c.acts.data() + c.stride * static_cast<size_t>(k));
      const float got = out[os * static_cast<size_t>(k) + static_cast<size_t>(r)];
      const bool same = std::isnan(want) ? std::isnan(got) : std::memcmp(&got, &want, 4) == 0;
      ASSERT_TRUE(same) << ggml_type_name(q.type) << " " << what << " rows=" << rows << " tokens=" << tokens << " n=" << n
                        << " r=" << r << " t=" << k << ": " << got << " vs " << want;
    }
    for (size_t g = static_cast<size_t>(rows); g < os; ++g)
      ASSERT_EQ(out[os * static_cast<size_t>(k) + g], kSentinel) << ggml_type_name(q.type) << " " << what;
  }
}

constexpr GgmlType kTypes[] = {GgmlType::IQ4_NL, GgmlType::MXFP4};

TEST(Q4nlTile, PresentOnlyWithAvx512) {
  for (GgmlType t : kTypes) {
    EXPECT_EQ(quant_traits_for(t, Isa::Scalar).mat_tile, nullptr);
    if (cpu_supports(Isa::Avx2)) {
      EXPECT_EQ(quant_traits_for(t, Isa::Avx2).mat_tile, nullptr);
    }
    if (cpu_supports(Isa::Avx512)) {
      EXPECT_NE(quant_traits_for(t, Isa::Avx512).mat_tile, nullptr) << ggml_type_name(t);
    }
  }
}

TEST(Q4nlTile, BitwiseEqualToVecDot) {
  if (!cpu_supports(Isa::Avx512)) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  for (GgmlType t : kTypes) {
    const QuantTraits q = quant_traits_for(t, Isa::Avx512);
    for (int64_t n : {int64_t{32}, int64_t{96}, int64_t{256}, int64_t{288}, int64_t{2880}}) {
      const Case c = make_case(t, kMatTileRows, 37, n, 5 + static_cast<uint32_t>(n));
      for (int rows = 1; rows <= kMatTileRows; ++rows)
        for (int tokens : {1, 3, 4, 5, 37}) expect_tile_equals_vec_dot(q, c, rows, tokens, n, "random");
    }
    const Case big = make_case(t, 11, kMatTileTokens, 320, 77);
    expect_tile_equals_vec_dot(q, big, 11, kMatTileTokens, 320, "largest");
    expect_tile_equals_vec_dot(q, big, 11, kMatTileTokens - 1, 320, "largest-1");
  }
}

TEST(Q4nlTile, ExtremeSumsAndSpecialScales) {
  if (!cpu_supports(Isa::Avx512)) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  const int64_t n = 9 * 32;
  const int rows = 7, tokens = 6;
  for (GgmlType t : kTypes) {
    const QuantTraits q = quant_traits_for(t, Isa::Avx512);
    const size_t bb = ggml_type_info(t).type_size;
    Case c = make_case(t, rows, tokens, n, 9);
    // Row 0: every code 0x0 (IQ4_NL -127); row 1: every code 0xF (113, MXFP4 -12); rows 2..5:
    // NaN, +Inf, -Inf and zero scales in block 4; row 6 random.
    for (int r = 0; r < 2; ++r)
      for (int b = 0; b < n / 32; ++b) std::memset(c.w.data() + c.wrb * r + bb * b + (bb - 16), r == 0 ? 0x00 : 0xFF, 16);
    uint8_t* blk = nullptr;
    for (int r = 2; r < 6; ++r) {
      blk = c.w.data() + c.wrb * r + bb * 4;
      if (t == GgmlType::MXFP4) {
        blk[0] = r == 5 ? 0 : 0xFF;  // E8M0 0xFF is NaN; 0 the smallest scale
      } else {
        const uint16_t h[4] = {0x7e00, 0x7c00, 0xfc00, 0x0000};
        std::memcpy(blk, &h[r - 2], 2);
      }
    }
    for (int k = 0; k < tokens; ++k) {
      auto* y = reinterpret_cast<quant::BlockQ8_0*>(c.acts.data() + c.stride * k);
      for (int i = 0; i < n / 32; ++i) {
        y[i].d = fp32_to_fp16(0.37f + 0.01f * static_cast<float>(k));
        for (int e = 0; e < 32; ++e) {
          const int sign = (k % 3 == 0) ? 1 : (k % 3 == 1 ? -1 : ((e / 7) % 2 ? 1 : -1));
          y[i].qs[e] = static_cast<int8_t>(sign * 127);
        }
      }
    }
    expect_tile_equals_vec_dot(q, c, rows, tokens, n, "extreme");
  }
}

}  // namespace
}  // namespace swapmoe
