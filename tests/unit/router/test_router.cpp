// Expert selection: hand-made cases whose answers are worked out by hand (or in double
// precision in the test) for softmax and sigmoid gating, the selection bias, group-limited
// routing, normalisation (with its clamp), scaling, the eligibility mask and probs_out.

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "arch/arch.h"
#include "expert/router.h"
#include "util/error.h"

namespace swapmoe {
namespace {

RouterParams params(GatingFunc g, int64_t n, int64_t k) {
  RouterParams p;
  p.gating = g;
  p.n_expert = n;
  p.n_used = k;
  return p;
}

std::vector<double> softmax_d(const std::vector<float>& x) {
  double mx = -INFINITY, s = 0;
  for (float v : x) mx = std::max(mx, double(v));
  std::vector<double> y;
  for (float v : x) { y.push_back(std::exp(v - mx)); s += y.back(); }
  for (auto& v : y) v /= s;
  return y;
}

double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TEST(Router, SoftmaxTopK) {
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.0f, -1.0f};
  auto p = params(GatingFunc::Softmax, 5, 2);
  int32_t ids[2];
  float w[2];
  std::vector<float> probs(5);
  select_experts(p, logits.data(), ids, w, nullptr, probs.data());
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  auto sm = softmax_d(logits);
  EXPECT_NEAR(w[0], sm[1], 1e-7);
  EXPECT_NEAR(w[1], sm[2], 1e-7);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(probs[i], sm[i], 1e-7);
}

// gpt-oss (llama.cpp's SOFTMAX_WEIGHT): the top-k on the raw logits, then a softmax over the
// k chosen logits alone; probs_out (importance tracking) is the softmax over all.
TEST(Router, SoftmaxOverTheSelectedLogits) {
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.0f, -1.0f, 2.5f};
  auto p = params(GatingFunc::SoftmaxWeight, 6, 3);
  int32_t ids[3];
  float w[3];
  std::vector<float> probs(6);
  select_experts(p, logits.data(), ids, w, nullptr, probs.data());
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 5);
  EXPECT_EQ(ids[2], 2);
  const auto sel = softmax_d({3.0f, 2.5f, 2.0f});
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(w[j], sel[j], 1e-7) << j;
  EXPECT_NEAR(w[0] + w[1] + w[2], 1.0, 1e-6);  // unlike softmax-then-top-k, the weights sum to 1
  const auto all = softmax_d(logits);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(probs[i], all[i], 1e-7);
  // Masked (SwapMoE): the best eligible experts, softmax over them.
  const uint8_t eligible[6] = {1, 0, 1, 1, 1, 1};
  select_experts(p, logits.data(), ids, w, eligible);
  EXPECT_EQ(ids[0], 5);
  EXPECT_EQ(ids[1], 2);
  EXPECT_EQ(ids[2], 0);
  const auto m = softmax_d({2.5f, 2.0f, 1.0f});
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(w[j], m[j], 1e-7) << j;
}

TEST(Router, SoftmaxNormAndScale) {
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.0f};
  auto p = params(GatingFunc::Softmax, 4, 3);
  p.norm_weights = true;
  p.weights_scale = 2.5f;
  int32_t ids[3];
  float w[3];
  select_experts(p, logits.data(), ids, w);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_EQ(ids[2], 0);
  // Renormalised over the three chosen: exp(3), exp(2), exp(1) / their sum, times 2.5.
  const double s = std::exp(3.0) + std::exp(2.0) + std::exp(1.0);
  EXPECT_NEAR(w[0], 2.5 * std::exp(3.0) / s, 1e-6);
  EXPECT_NEAR(w[1], 2.5 * std::exp(2.0) / s, 1e-6);
  EXPECT_NEAR(w[2], 2.5 * std::exp(1.0) / s, 1e-6);
}

TEST(Router, SigmoidBiasSelectsButDoesNotWeigh) {
  // Expert 0 has the best logit, but the bias pushes experts 2 and 3 ahead of it.
  std::vector<float> logits = {2.0f, 1.0f, 0.5f, 0.0f};
  std::vector<float> bias = {0.0f, 0.0f, 0.5f, 0.6f};
  auto p = params(GatingFunc::Sigmoid, 4, 2);
  p.probs_bias = bias.data();
  int32_t ids[2];
  float w[2];
  std::vector<float> probs(4);
  select_experts(p, logits.data(), ids, w, nullptr, probs.data());
  // selection: s(2)=0.881, s(1)=0.731, s(.5)+.5=1.122, s(0)+.6=1.1
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 3);
  EXPECT_NEAR(w[0], sigmoid_d(0.5), 1e-7);
  EXPECT_NEAR(w[1], sigmoid_d(0.0), 1e-7);
  // probs_out holds the unbiased sigmoid.
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(probs[i], sigmoid_d(logits[i]), 1e-7);
}

TEST(Router, SigmoidNormClamp) {
  // All sigmoids are ~1e-13: the sum is clamped to 2^-14 before dividing.
  std::vector<float> logits = {-30.0f, -31.0f, -32.0f};
  auto p = params(GatingFunc::Sigmoid, 3, 2);
  p.norm_weights = true;
  int32_t ids[2];
  float w[2];
  select_experts(p, logits.data(), ids, w);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 1);
  EXPECT_NEAR(w[0], sigmoid_d(-30.0) / 6.103515625e-5, 1e-12);
  EXPECT_LT(w[0] + w[1], 1e-6);
}

TEST(Router, GroupLimited) {
  // 8 experts in 4 groups of 2; keep 2 groups; pick 2 experts.
  // Group scores (sum of both members): g0 = 0.95+0.0 = 0.95, g1 = 0.5+0.5 = 1.0,
  // g2 = 0.45+0.45 = 0.9, g3 = 0.6+0.55 = 1.15. Kept: g3, g1. Expert 0 (0.95, the best
  // single score) is dropped with its group.
  std::vector<float> sel = {0.95f, 0.0f, 0.5f, 0.5f, 0.45f, 0.45f, 0.6f, 0.55f};
  // Sigmoid gating with logits = logit(sel) reproduces these probabilities.
  std::vector<float> logits;
  for (float s : sel) logits.push_back(s <= 0.0f ? -40.0f : static_cast<float>(std::log(s / (1.0 - s))));
  auto p = params(GatingFunc::Sigmoid, 8, 3);
  p.n_groups = 4;
  p.n_groups_used = 2;
  int32_t ids[3];
  float w[3];
  select_experts(p, logits.data(), ids, w);
  EXPECT_EQ(ids[0], 6);
  EXPECT_EQ(ids[1], 7);
  EXPECT_TRUE(ids[2] == 2 || ids[2] == 3);  // tie inside group 1
  EXPECT_NEAR(w[0], 0.6, 1e-6);
  EXPECT_NEAR(w[1], 0.55, 1e-6);
  EXPECT_NEAR(w[2], 0.5, 1e-6);

  // Without groups expert 0 wins.
  p.n_groups = 0;
  select_experts(p, logits.data(), ids, w);
  EXPECT_EQ(ids[0], 0);
}

TEST(Router, GroupScoresUseBiasedTop2) {
  // Bias moves group 0 ahead: its top-2 biased sum is 0.2+0.9 + 0.2 = 1.3 > group 1's 1.2.
  std::vector<float> logits = {0.0f, -1.0f, 1.0f, -0.3f};  // sigmoid: .5 .269 .731 .426
  std::vector<float> bias = {0.3f, 0.3f, 0.0f, 0.0f};
  auto p = params(GatingFunc::Sigmoid, 4, 1);
  p.n_groups = 2;
  p.n_groups_used = 1;
  p.probs_bias = bias.data();
  int32_t id;
  float w;
  select_experts(p, logits.data(), &id, &w);
  // group 0: .8 + .569 = 1.369; group 1: .731 + .426 = 1.157 -> group 0, expert 0.
  EXPECT_EQ(id, 0);
  EXPECT_NEAR(w, 0.5, 1e-7);
}

TEST(Router, EligibleMask) {
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.0f};
  auto p = params(GatingFunc::Softmax, 4, 2);
  std::vector<uint8_t> ok = {1, 0, 1, 1};
  int32_t ids[2];
  float w[2];
  std::vector<float> probs(4);
  select_experts(p, logits.data(), ids, w, ok.data(), probs.data());
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 0);
  auto sm = softmax_d(logits);
  // Weights are still the full softmax probabilities (the mask is not a renormalisation).
  EXPECT_NEAR(w[0], sm[2], 1e-7);
  EXPECT_NEAR(w[1], sm[0], 1e-7);
  EXPECT_NEAR(probs[1], sm[1], 1e-7);  // unmasked
}

TEST(Router, EligibleMaskWithGroupsFallsBack) {
  // Groups of 2; only experts 0 and 3 eligible; 1 group kept, 2 experts needed. No group
  // holds two eligible experts, so the group restriction is dropped.
  std::vector<float> logits = {0.0f, 1.0f, 2.0f, -1.0f};
  auto p = params(GatingFunc::Sigmoid, 4, 2);
  p.n_groups = 2;
  p.n_groups_used = 1;
  std::vector<uint8_t> ok = {1, 0, 0, 1};
  int32_t ids[2];
  float w[2];
  select_experts(p, logits.data(), ids, w, ok.data());
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 3);
}

TEST(Router, Errors) {
  std::vector<float> logits = {1.0f, 2.0f};
  int32_t ids[3];
  float w[3];
  EXPECT_THROW(select_experts(params(GatingFunc::Softmax, 2, 3), logits.data(), ids, w), Error);
  std::vector<uint8_t> ok = {1, 0};
  EXPECT_THROW(select_experts(params(GatingFunc::Softmax, 2, 2), logits.data(), ids, w, ok.data()), Error);
  auto p = params(GatingFunc::Softmax, 2, 1);
  p.n_groups = 3;
  p.n_groups_used = 1;
  EXPECT_THROW(select_experts(p, logits.data(), ids, w), Error);
}

TEST(Router, DeterministicTies) {
  std::vector<float> logits(16, 0.5f);
  auto p = params(GatingFunc::Softmax, 16, 4);
  int32_t a[4], b[4];
  float wa[4], wb[4];
  select_experts(p, logits.data(), a, wa);
  select_experts(p, logits.data(), b, wb);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(a[i], b[i]);
    EXPECT_FLOAT_EQ(wa[i], 1.0f / 16);
  }
}

TEST(RouterParams, PerArchitecture) {
  ModelConfig c;
  c.arch = arch_spec("qwen3moe").features;
  c.n_expert = 128;
  c.n_expert_used = 8;
  c.expert_weights_norm = true;
  c.expert_weights_scale = 2.0f;  // llama.cpp ignores it for qwen3moe
  auto p = router_params(c);
  EXPECT_EQ(p.n_expert, 128);
  EXPECT_EQ(p.n_used, 8);
  EXPECT_TRUE(p.norm_weights);
  EXPECT_EQ(p.weights_scale, 1.0f);
  EXPECT_EQ(p.gating, GatingFunc::Softmax);

  c.arch = arch_spec("deepseek2").features;
  c.gating = GatingFunc::Sigmoid;
  c.n_expert_groups = 8;
  c.n_expert_groups_used = 4;
  p = router_params(c);
  EXPECT_EQ(p.weights_scale, 2.0f);
  EXPECT_EQ(p.gating, GatingFunc::Sigmoid);
  EXPECT_EQ(p.n_groups, 8);
  EXPECT_EQ(p.n_groups_used, 4);
  EXPECT_EQ(p.probs_bias, nullptr);
}

}  // namespace
}  // namespace swapmoe
