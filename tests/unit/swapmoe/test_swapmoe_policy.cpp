// SwapMoE arithmetic (cache/swapmoe_policy.h): the importance formula against a hand
// computation, the swap rule, slot apportioning and the profile's coverage count.

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "cache/swapmoe_policy.h"
#include "util/error.h"

namespace swapmoe {
namespace {

TEST(SwapMoeImportance, DecayedSumOfChosenProbabilityMass) {
  // Three tokens over four experts, top-2, γ = 0.5. Only the chosen experts receive their
  // probability: I = 0.25 m1 + 0.5 m2 + m3 with m_t = p_t[e] if e was chosen at t, else 0.
  const std::vector<std::vector<float>> p = {
      {0.5f, 0.25f, 0.125f, 0.125f}, {0.0f, 0.75f, 0.25f, 0.0f}, {0.125f, 0.125f, 0.125f, 0.625f}};
  const std::vector<std::vector<int32_t>> chosen = {{0, 1}, {1, 2}, {3, 0}};
  std::vector<double> I(4, 0.0);
  for (size_t t = 0; t < p.size(); ++t) update_importance(I, p[t].data(), chosen[t].data(), 2, false, 0.5);
  EXPECT_DOUBLE_EQ(I[0], 0.25 * 0.5 + 0.5 * 0.0 + 0.125);
  EXPECT_DOUBLE_EQ(I[1], 0.25 * 0.25 + 0.5 * 0.75 + 0.0);
  EXPECT_DOUBLE_EQ(I[2], 0.25 * 0.0 + 0.5 * 0.25 + 0.0);   // p 0.125 at t=1 but not chosen
  EXPECT_DOUBLE_EQ(I[3], 0.25 * 0.0 + 0.5 * 0.0 + 0.625);
}

TEST(SwapMoeImportance, SigmoidScoresAreNormalisedOverTheLayer) {
  // Sigmoid gating: scores 0.8, 0.6, 0.2 (sum 1.6); experts 0 and 2 chosen.
  const std::vector<float> s = {0.8f, 0.6f, 0.2f};
  const std::vector<int32_t> chosen = {0, 2};
  std::vector<double> I = {1.0, 2.0, 3.0};
  update_importance(I, s.data(), chosen.data(), 2, true, 0.9);
  EXPECT_NEAR(I[0], 0.9 * 1.0 + 0.8 / 1.6, 1e-7);
  EXPECT_NEAR(I[1], 0.9 * 2.0, 1e-12);
  EXPECT_NEAR(I[2], 0.9 * 3.0 + 0.2 / 1.6, 1e-7);
}

TEST(SwapMoeImportance, SteadyStateIsPOverOneMinusGamma) {
  const std::vector<float> p = {0.7f, 0.3f};
  const std::vector<int32_t> chosen = {0, 1};
  std::vector<double> I(2, 0.0);
  for (int t = 0; t < 5000; ++t) update_importance(I, p.data(), chosen.data(), 2, false, kImportanceDecay);
  EXPECT_NEAR(I[0], 0.7 / (1.0 - kImportanceDecay), 1e-4);
  EXPECT_NEAR(I[1], 0.3 / (1.0 - kImportanceDecay), 1e-4);
}

TEST(SwapMoePolicy, SwapNeedsTheMargin) {
  EXPECT_FALSE(swap_worth_it(1.0, 1.0));
  EXPECT_FALSE(swap_worth_it(1.10, 1.0));           // exactly the relative margin + slack is not enough
  EXPECT_TRUE(swap_worth_it(1.0 * 1.1 + 0.011, 1.0));
  EXPECT_FALSE(swap_worth_it(0.005, 0.0));          // below the slack right after start-up
  EXPECT_TRUE(swap_worth_it(0.02, 0.0));
}

TEST(SwapMoePolicy, ApportionEvenSplit) {
  // 10 slots over 4 layers, min 2, max 8: 2 each + 2 extra to the first layers.
  const auto s = apportion_slots(10, {1, 1, 1, 1}, 2, 8);
  EXPECT_EQ(s, (std::vector<int64_t>{3, 3, 2, 2}));
}

TEST(SwapMoePolicy, ApportionProportionalWithCaps) {
  // 3 layers, min 2, max 8, 18 slots: 12 above the minimum in proportion 1:1:4 would be
  // 2, 2, 8 -> the third capped at 8 (6 above min); the rest (6) goes to the other two.
  const auto s = apportion_slots(18, {1, 1, 4}, 2, 8);
  EXPECT_EQ(std::accumulate(s.begin(), s.end(), int64_t{0}), 18);
  EXPECT_EQ(s[2], 8);
  EXPECT_EQ(s[0], 5);
  EXPECT_EQ(s[1], 5);
  // More slots than every expert: capped.
  const auto all = apportion_slots(100, {1, 2}, 2, 8);
  EXPECT_EQ(all, (std::vector<int64_t>{8, 8}));
  EXPECT_THROW(apportion_slots(3, {1, 1}, 2, 8), Error);
}

TEST(SwapMoePolicy, ExpertsToCover) {
  EXPECT_EQ(experts_to_cover({0.05, 0.9, 0.05}, 0.9), 1);
  EXPECT_EQ(experts_to_cover({0.25, 0.25, 0.25, 0.25}, 0.9), 4);
  EXPECT_EQ(experts_to_cover({0.1, 0.5, 0.3, 0.1}, 0.9), 3);
  EXPECT_EQ(experts_to_cover({0.0, 0.0}, 0.9), 2);
}

}  // namespace
}  // namespace swapmoe
