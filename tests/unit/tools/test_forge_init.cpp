// Tests of the forge's random weights (tools/forge/weight_init.h): determinism, chunking
// independence and the statistics the initialisation promises.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "../../../tools/forge/fast_quant.h"
#include "../../../tools/forge/weight_init.h"
#include "quant/quant.h"

using namespace swapmoe;
using namespace swapmoe::forge;

TEST(ForgeInit, SplitMix64KnownValues) {
  // Reference values of splitmix64 seeded with 0 (the first outputs of the generator
  // published with xoshiro: state += golden gamma, then the mix).
  EXPECT_EQ(splitmix64(0), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(splitmix64(0x9E3779B97F4A7C15ull), 0x6E789E6AA1B965F4ull);
}

TEST(ForgeInit, NormalishMoments) {
  double sum = 0, sum2 = 0, sum4 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double v = normalish(splitmix64(12345 + i));
    sum += v;
    sum2 += v * v;
    sum4 += v * v * v * v;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(var, 1.0, 0.01);
  EXPECT_NEAR(sum4 / n, 2.7, 0.05);  // Irwin-Hall(4) kurtosis 3 - 6/(5*4) = 2.7 (normal: 3)
}

TEST(ForgeInit, RowsAreDeterministicAndIndependentOfChunking) {
  TensorSpec s{"blk.0.attn_q.weight", {64, 8}, TensorRole::Matrix, 0, false};
  const InitRule r = init_rule(s, 64, false);
  EXPECT_NEAR(r.std, 1.0 / 8.0, 1e-6);
  const uint64_t st = tensor_stream(42, s.name);
  EXPECT_EQ(st, tensor_stream(42, s.name));
  EXPECT_NE(st, tensor_stream(43, s.name));
  EXPECT_NE(st, tensor_stream(42, "blk.1.attn_q.weight"));
  std::vector<float> a(64), b(64), c(64);
  generate_row(st, r, 5, 64, a.data());
  generate_row(st, r, 5, 64, b.data());
  generate_row(st, r, 6, 64, c.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(ForgeInit, RolesGetTheirScales) {
  auto rule = [](TensorRole role, std::vector<int64_t> ne) {
    return init_rule(TensorSpec{"t", ne, role, 0, false}, 256, false);
  };
  EXPECT_FLOAT_EQ(rule(TensorRole::Norm, {256}).mean, 1.0f);
  EXPECT_LT(rule(TensorRole::Norm, {256}).std, 0.1f);
  EXPECT_FLOAT_EQ(rule(TensorRole::Router, {256, 8}).std, 3.0f / 16.0f);
  EXPECT_FLOAT_EQ(rule(TensorRole::Experts, {1024, 256, 8}).std, 1.0f / 32.0f);
  const InitRule logits = init_rule(TensorSpec{"output.weight", {256, 1000}, TensorRole::Output, -1, true}, 256, true);
  EXPECT_FLOAT_EQ(logits.std, 2.5f / 16.0f);
  EXPECT_GT(logits.row_lognormal, 0.0f);
}

TEST(ForgeInit, ResidualOutputsAreScaledByDepth) {
  // GPT-2 style: the projections into the residual stream get 1/sqrt(fan_in * 2 * n_layer).
  for (const char* name : {"blk.1.attn_output.weight", "blk.1.ffn_down.weight", "blk.1.ffn_down_shexp.weight"}) {
    const InitRule r = init_rule(TensorSpec{name, {1024, 256}, TensorRole::Matrix, 1, false}, 256, false, 8);
    EXPECT_FLOAT_EQ(r.std, 1.0f / (32.0f * 4.0f)) << name;
  }
  const InitRule e = init_rule(TensorSpec{"blk.0.ffn_down_exps.weight", {64, 256, 8}, TensorRole::Experts, 0, false},
                               256, false, 2);
  EXPECT_FLOAT_EQ(e.std, 1.0f / (8.0f * 2.0f));
  // Tied: the residual stream starts at the logit scale, so the layer outputs follow it.
  const InitRule t = init_rule(TensorSpec{"blk.0.ffn_down_exps.weight", {64, 256, 8}, TensorRole::Experts, 0, false},
                               256, false, 2, true);
  EXPECT_FLOAT_EQ(t.std, 1.0f / (8.0f * 2.0f) * 2.5f / 16.0f);
  // Inputs of a layer are not scaled.
  EXPECT_FLOAT_EQ(init_rule(TensorSpec{"blk.0.ffn_up_exps.weight", {256, 64, 8}, TensorRole::Experts, 0, false}, 256,
                            false, 8).std,
                  1.0f / 16.0f);
  // MLA keys: k_b [nope, kv_lora_rank, n_head] is scaled by the latent length.
  EXPECT_FLOAT_EQ(init_rule(TensorSpec{"blk.0.attn_k_b.weight", {64, 128, 4}, TensorRole::Matrix, 0, false}, 256,
                            false, 2).std,
                  1.0f / std::sqrt(128.0f));
}

// Fast forging writes random quantized blocks directly: they must dequantize (with the
// reference dequantizer) to mean ~0 and the requested std, deterministically per row.
class FastQuant : public ::testing::TestWithParam<GgmlType> {};

TEST_P(FastQuant, DequantizedStatisticsAndDeterminism) {
  const GgmlType t = GetParam();
  ASSERT_TRUE(fast_block_supported(t));
  const int64_t ncols = 1024, nrows = 64;
  const float target = 0.03f;
  const size_t rb = ggml_row_size(t, ncols);
  std::vector<uint8_t> q(rb * nrows), again(rb);
  const uint64_t st = tensor_stream(7, "blk.0.ffn_up_exps.weight");
  for (int64_t r = 0; r < nrows; ++r) fast_quant_row(t, st, r, ncols, target, q.data() + r * rb);
  fast_quant_row(t, st, 5, ncols, target, again.data());
  EXPECT_EQ(0, std::memcmp(again.data(), q.data() + 5 * rb, rb));
  EXPECT_NE(0, std::memcmp(q.data() + 4 * rb, q.data() + 5 * rb, rb));
  std::vector<float> f(static_cast<size_t>(ncols));
  double sum = 0, sum2 = 0, worst_row_mean = 0;
  for (int64_t r = 0; r < nrows; ++r) {
    quant_traits(t).to_float_ref(q.data() + r * rb, f.data(), ncols);
    double rs = 0;
    for (float v : f) {
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
      sum2 += double(v) * v;
      rs += v;
    }
    worst_row_mean = std::max(worst_row_mean, std::fabs(rs / ncols));
  }
  const double n = double(ncols) * nrows, mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
  EXPECT_NEAR(sd, target, 0.03 * target) << ggml_type_name(t);
  EXPECT_LT(std::fabs(mean), 0.01 * target) << ggml_type_name(t);
  EXPECT_LT(worst_row_mean, 0.15 * target) << ggml_type_name(t);  // ~4 sigma of a 1024-value mean
}

INSTANTIATE_TEST_SUITE_P(Types, FastQuant,
                         ::testing::Values(GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::IQ4_NL,
                                           GgmlType::IQ4_XS, GgmlType::MXFP4, GgmlType::TQ1_0, GgmlType::TQ2_0,
                                           GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S, GgmlType::IQ3_XXS,
                                           GgmlType::IQ3_S, GgmlType::IQ1_S, GgmlType::IQ1_M));
