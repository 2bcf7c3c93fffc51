// Tests of the forge's random weights (tools/forge/weight_init.h): determinism, chunking
// independence and the statistics the initialisation promises.

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../../../tools/forge/weight_init.h"

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
  EXPECT_FLOAT_EQ(logits.std, 6.0f / 16.0f);
  EXPECT_GT(logits.row_lognormal, 0.0f);
}
