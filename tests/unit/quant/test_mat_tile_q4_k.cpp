// Q4_K row tile (QuantTraits::mat_tile, q4k_tile_avx512.cpp): every (row, token) result
// must be bitwise equal to the same table's vec_dot, since the batched prefill that uses
// the tile is tested to reproduce token-by-token decode exactly. Covered: every row count
// 1..kMatTileRows, token counts 1..20 plus the 8-token group edges and the largest call,
// 1..5 blocks, zero blocks, the extreme integer ranges (all levels 15, scales and mins
// 63, activations +-127), strided activations and outputs (nothing written between rows
// or past the nr-th row). Also: the tile exists only next to the AVX-512 vec_dot.

#include <gtest/gtest.h>

#include "../require.h"

#include <cstring>
#include <random>

#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant_test_util.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

using namespace testing_quant;
using quant::BlockQ4_K;
using quant::BlockQ8_K;

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

constexpr float kSentinel = -12345.0f;

struct Case {
  std::vector<uint8_t> w;     // rows x row bytes
  std::vector<uint8_t> acts;  // tokens x stride
  size_t wrb = 0, stride = 0;
};

// Rows quantized from Gaussian data (some blocks all zero), activations converted by the
// table's from_float like the forward pass does, rows padded to an odd stride.
Case make_case(const QuantTraits& q, const QuantTraits& qa, int rows, int tokens, int64_t n, uint32_t seed) {
  Case c;
  c.wrb = ggml_row_size(GgmlType::Q4_K, n);
  c.w.resize(c.wrb * static_cast<size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    std::vector<float> wf = gaussian(n, seed + 17 * static_cast<uint32_t>(r));
    if (r % 5 == 3) std::fill(wf.begin(), wf.begin() + QK_K, 0.0f);  // a zero block
    q.from_float_ref(wf.data(), c.w.data() + c.wrb * static_cast<size_t>(r), n);
  }
  c.stride = ggml_row_size(GgmlType::Q8_K, n) + 36;
  c.acts.assign(c.stride * static_cast<size_t>(tokens), 0xCD);
  for (int t = 0; t < tokens; ++t) {
    const std::vector<float> x = gaussian(n, seed + 1000 + 31 * static_cast<uint32_t>(t));
    qa.from_float(x.data(), c.acts.data() + c.stride * static_cast<size_t>(t), n);
  }
  return c;
}

// Runs the tile on `rows` x `tokens` of c and compares with vec_dot; out_stride leaves a
// gap of 3 floats after the rows of each token, which must keep the sentinel.
void expect_tile_equals_vec_dot(const QuantTraits& q, const Case& c, int rows, int tokens, int64_t n,
                                const char* what) {
  const size_t os = static_cast<size_t>(rows) + 3;
  std::vector<float> out(os * static_cast<size_t>(tokens), kSentinel);
  q.mat_tile(n, c.w.data(), c.wrb, rows, c.acts.data(), c.stride, tokens, out.data(), os);
  for (int t = 0; t < tokens; ++t) {
    for (int r = 0; r < rows; ++r) {
      const float want = q.vec_dot(n, c.w.data() + c.wrb * static_cast<size_t>(r), c.acts.data() + c.stride * static_cast<size_t>(t));
      const float got = out[os * static_cast<size_t>(t) + static_cast<size_t>(r)];
      ASSERT_TRUE(same_bits(got, want)) << what << " rows=" << rows << " tokens=" << tokens << " n=" << n << " r=" << r
                                        << " t=" << t << ": " << got << " vs " << want;
    }
    for (size_t g = static_cast<size_t>(rows); g < os; ++g)
      ASSERT_EQ(out[os * static_cast<size_t>(t) + g], kSentinel) << what << " wrote past row " << rows;
  }
}

bool have_avx512() { return cpu_supports(Isa::Avx512); }

TEST(MatTileQ4K, OnlyNextToTheAvx512VecDot) {
  EXPECT_EQ(quant_traits_for(GgmlType::Q4_K, Isa::Scalar).mat_tile, nullptr);
  if (cpu_supports(Isa::Avx2)) {
    EXPECT_EQ(quant_traits_for(GgmlType::Q4_K, Isa::Avx2).mat_tile, nullptr);
  }
  if (have_avx512()) {
    EXPECT_NE(quant_traits_for(GgmlType::Q4_K, Isa::Avx512).mat_tile, nullptr);
  }
  for (GgmlType t : {GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::F32}) {
    EXPECT_EQ(quant_traits(t).mat_tile, nullptr) << ggml_type_name(t);
  }
}

TEST(MatTileQ4K, BitwiseEqualToVecDotForEveryRowAndTokenCount) {
  if (!have_avx512()) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  const QuantTraits q = quant_traits_for(GgmlType::Q4_K, Isa::Avx512);
  const QuantTraits qa = quant_traits_for(GgmlType::Q8_K, Isa::Avx512);
  ASSERT_NE(q.mat_tile, nullptr);
  for (int64_t n : {int64_t{256}, int64_t{512}, int64_t{768}, int64_t{1280}}) {
    const Case c = make_case(q, qa, kMatTileRows, 24, n, 7 + static_cast<uint32_t>(n));
    for (int rows = 1; rows <= kMatTileRows; ++rows)
      for (int tokens : {1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 20, 24})
        expect_tile_equals_vec_dot(q, c, rows, tokens, n, "gaussian");
  }
}

TEST(MatTileQ4K, MultiRowKernelSharesTheTailForOddBlockCounts) {
  // vec_dot pairs blocks (with a single-block tail), vec_dot_multi pairs activation rows
  // (with a repeated row for odd counts): both must still give vec_dot's bits.
  if (!have_avx512()) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  const QuantTraits q = quant_traits_for(GgmlType::Q4_K, Isa::Avx512);
  const QuantTraits qa = quant_traits_for(GgmlType::Q8_K, Isa::Avx512);
  for (int64_t n : {int64_t{256}, int64_t{768}, int64_t{1280}}) {
    const Case c = make_case(q, qa, 1, kVecDotMultiMax, n, 40 + static_cast<uint32_t>(n));
    for (int na = 1; na <= kVecDotMultiMax; ++na) {
      std::vector<float> out(static_cast<size_t>(na) * 2, kSentinel);
      q.vec_dot_multi(n, c.w.data(), c.acts.data(), c.stride, na, out.data(), 2);
      for (int t = 0; t < na; ++t) {
        const float want = q.vec_dot(n, c.w.data(), c.acts.data() + c.stride * static_cast<size_t>(t));
        ASSERT_TRUE(same_bits(out[2 * static_cast<size_t>(t)], want)) << "n=" << n << " na=" << na << " t=" << t;
        ASSERT_EQ(out[2 * static_cast<size_t>(t) + 1], kSentinel);
      }
    }
  }
}

TEST(MatTileQ4K, LargestCallAndOddRowCount) {
  if (!have_avx512()) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  const QuantTraits q = quant_traits_for(GgmlType::Q4_K, Isa::Avx512);
  const QuantTraits qa = quant_traits_for(GgmlType::Q8_K, Isa::Avx512);
  const Case c = make_case(q, qa, 13, kMatTileTokens, 512, 99);
  expect_tile_equals_vec_dot(q, c, 13, kMatTileTokens, 512, "largest");
  expect_tile_equals_vec_dot(q, c, 13, kMatTileTokens - 1, 512, "largest-1");
}

TEST(MatTileQ4K, ExtremeIntegerRanges) {
  // Levels 15, scales and mins 63, activations all +127 or alternating +-127: the
  // largest integer sums the format allows (|isum| ~ 3.1e7, beyond float's 2^24, so
  // float(isum) rounds: it must round the same way on both paths).
  if (!have_avx512()) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  const QuantTraits q = quant_traits_for(GgmlType::Q4_K, Isa::Avx512);
  const int64_t n = 3 * QK_K;
  const int rows = 5, tokens = 11;
  Case c;
  c.wrb = ggml_row_size(GgmlType::Q4_K, n);
  c.w.assign(c.wrb * rows, 0xFF);
  std::mt19937 rng(5);
  for (int r = 0; r < rows; ++r) {
    BlockQ4_K* b = reinterpret_cast<BlockQ4_K*>(c.w.data() + c.wrb * r);
    for (int i = 0; i < n / QK_K; ++i) {
      b[i].d = fp32_to_fp16(0.0123f * static_cast<float>(r + 1));
      b[i].dmin = fp32_to_fp16(0.0071f * static_cast<float>(i + 1));
      if (r == 4) for (auto& v : b[i].qs) v = static_cast<uint8_t>(rng());  // random levels, max scales
    }
  }
  c.stride = ggml_row_size(GgmlType::Q8_K, n);
  c.acts.resize(c.stride * tokens);
  for (int t = 0; t < tokens; ++t) {
    BlockQ8_K* y = reinterpret_cast<BlockQ8_K*>(c.acts.data() + c.stride * t);
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

}  // namespace
}  // namespace swapmoe
