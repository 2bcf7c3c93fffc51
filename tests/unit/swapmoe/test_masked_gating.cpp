// Masked gating (router.h select_experts with an eligibility mask, as SwapMoeStore::route
// uses it): the chosen experts and weights against hand computations, for softmax gating
// with and without renormalisation and for deepseek2's sigmoid + selection bias + groups
// + normalisation + scale, including groups with one and with no eligible expert.

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "expert/router.h"
#include "util/error.h"

namespace swapmoe {
namespace {

double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TEST(MaskedGating, SoftmaxOverTheChosenEligibleExperts) {
  // qwen3moe / Mixtral: softmax over all, top-k among the eligible, renormalised: the
  // weights are a softmax over the chosen experts' logits.
  const std::vector<float> logits = {0.3f, 2.0f, 1.2f, -0.4f, 1.5f, 0.9f};
  const std::vector<uint8_t> ok = {1, 0, 1, 1, 0, 1};  // the two best (1, 4) are not resident
  RouterParams p;
  p.n_expert = 6;
  p.n_used = 2;
  p.norm_weights = true;
  int32_t ids[2];
  float w[2];
  std::vector<float> probs(6);
  select_experts(p, logits.data(), ids, w, ok.data(), probs.data());
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 5);
  const double a = std::exp(1.2), b = std::exp(0.9);
  EXPECT_NEAR(w[0], a / (a + b), 1e-6);
  EXPECT_NEAR(w[1], b / (a + b), 1e-6);
  // probs_out is the unmasked softmax (what importance is fed with).
  double z = 0;
  for (float l : logits) z += std::exp(double(l));
  for (int e = 0; e < 6; ++e) EXPECT_NEAR(probs[e], std::exp(double(logits[e])) / z, 1e-6) << e;
}

TEST(MaskedGating, SoftmaxWithoutRenormalisationKeepsFullProbabilities) {
  // qwen2moe (norm off): the weights stay the full-softmax probabilities.
  const std::vector<float> logits = {0.3f, 2.0f, 1.2f, -0.4f};
  const std::vector<uint8_t> ok = {1, 0, 1, 1};
  RouterParams p;
  p.n_expert = 4;
  p.n_used = 2;
  int32_t ids[2];
  float w[2];
  select_experts(p, logits.data(), ids, w, ok.data());
  double z = 0;
  for (float l : logits) z += std::exp(double(l));
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 0);
  EXPECT_NEAR(w[0], std::exp(1.2) / z, 1e-6);
  EXPECT_NEAR(w[1], std::exp(0.3) / z, 1e-6);
}

// deepseek2: 8 experts in 4 groups of 2, selection bias on group D, sigmoid, norm, x2.5.
struct DsCase {
  std::vector<float> logits = {-1.0f, -2.0f, 2.0f, 1.5f, 3.0f, 2.5f, 0.0f, 0.2f};
  std::vector<float> bias = {0, 0, 0, 0, 0, 0, 0.3f, 0.3f};
  RouterParams params(int64_t k, int64_t groups_used) const {
    RouterParams p;
    p.gating = GatingFunc::Sigmoid;
    p.n_expert = 8;
    p.n_used = k;
    p.norm_weights = true;
    p.weights_scale = 2.5f;
    p.n_groups = 4;
    p.n_groups_used = groups_used;
    p.probs_bias = bias.data();
    return p;
  }
};

TEST(MaskedGating, DeepseekGroupsWithOneAndNoEligibleExpert) {
  // Eligible: 0, 1 (group A), 2 (group B, alone), 6, 7 (group D); group C (4, 5) has none.
  // Selection scores s = sigmoid + bias:
  //   A: .2689 + .1192 = .3881   B: .8808 (one eligible: its own score)   C: -inf
  //   D: (.5 + .3) + (.5498 + .3) = 1.6498
  // One group kept: D, but it holds 2 < k = 3 eligible experts, so the next best group
  // (B) is kept too. Top 3 of {2, 6, 7} by s: 2 (.8808), 7 (.8498), 6 (.8).
  DsCase c;
  const std::vector<uint8_t> ok = {1, 1, 1, 0, 0, 0, 1, 1};
  int32_t ids[3];
  float w[3];
  select_experts(c.params(3, 1), c.logits.data(), ids, w, ok.data());
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 7);
  EXPECT_EQ(ids[2], 6);
  // Weights: the UNbiased sigmoids, normalised over the chosen, times 2.5.
  const double s2 = sig(2.0), s7 = sig(0.2), s6 = sig(0.0), sum = s2 + s7 + s6;
  EXPECT_NEAR(w[0], 2.5 * s2 / sum, 1e-6);
  EXPECT_NEAR(w[1], 2.5 * s7 / sum, 1e-6);
  EXPECT_NEAR(w[2], 2.5 * s6 / sum, 1e-6);
}

TEST(MaskedGating, DeepseekTwoGroupsKept) {
  // Two groups kept: D (1.6498) and B (.8808) hold 3 eligible experts; k = 2 -> 2, 7.
  DsCase c;
  const std::vector<uint8_t> ok = {1, 1, 1, 0, 0, 0, 1, 1};
  int32_t ids[2];
  float w[2];
  select_experts(c.params(2, 2), c.logits.data(), ids, w, ok.data());
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 7);
  const double s2 = sig(2.0), s7 = sig(0.2);
  EXPECT_NEAR(w[0], 2.5 * s2 / (s2 + s7), 1e-6);
  EXPECT_NEAR(w[1], 2.5 * s7 / (s2 + s7), 1e-6);
}

TEST(MaskedGating, DeepseekAllEligibleIsTheUnmaskedSelection) {
  // Unmasked: C (.9526 + .9241) and B (.8808 + .8176) are the two best groups; top 2 = 4, 5.
  DsCase c;
  const std::vector<uint8_t> all(8, 1);
  int32_t a[2], b[2];
  float wa[2], wb[2];
  select_experts(c.params(2, 2), c.logits.data(), a, wa);
  select_experts(c.params(2, 2), c.logits.data(), b, wb, all.data());
  EXPECT_EQ(a[0], 4);
  EXPECT_EQ(a[1], 5);
  for (int j = 0; j < 2; ++j) {
    EXPECT_EQ(a[j], b[j]);
    EXPECT_EQ(wa[j], wb[j]);  // bit for bit
  }
}

TEST(MaskedGating, TooFewEligibleIsAnError) {
  DsCase c;
  const std::vector<uint8_t> ok = {0, 0, 1, 0, 0, 0, 0, 1};
  int32_t ids[3];
  float w[3];
  EXPECT_THROW(select_experts(c.params(3, 1), c.logits.data(), ids, w, ok.data()), Error);
}

}  // namespace
}  // namespace swapmoe
