// KL divergence, top-1 agreement, perplexity ratio and the p99 against values computed by
// hand (comments show the arithmetic).

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "eval/eval_metrics.h"
#include "util/error.h"

namespace swapmoe::cli {
namespace {

TEST(QualityMetrics, KlOfTwoTokenDistributionsByHand) {
  // ref logits (0, ln 2): p = (1/3, 2/3). pol logits (0, 0): q = (1/2, 1/2).
  // KL(p||q) = 1/3 ln((1/3)/(1/2)) + 2/3 ln((2/3)/(1/2)) = 1/3 ln(2/3) + 2/3 ln(4/3)
  //          = -0.135155036 + 0.191788048 = 0.056633012 nats.
  const float ref[2] = {0.0f, std::log(2.0f)};
  const float pol[2] = {0.0f, 0.0f};
  const double kl = kl_divergence(ref, log_sum_exp(ref, 2), pol, log_sum_exp(pol, 2), 2);
  const double expect = (1.0 / 3) * std::log(2.0 / 3) + (2.0 / 3) * std::log(4.0 / 3);
  EXPECT_NEAR(expect, 0.0566330123, 1e-9);
  EXPECT_NEAR(kl, expect, 1e-7);  // ln 2 rounded to float moves p by ~1e-8
  // The other direction differs: KL(q||p) = 1/2 ln(3/2) + 1/2 ln(3/4) = 0.058891517.
  const double rev = kl_divergence(pol, log_sum_exp(pol, 2), ref, log_sum_exp(ref, 2), 2);
  EXPECT_NEAR(rev, 0.5 * std::log(1.5) + 0.5 * std::log(0.75), 1e-7);
}

TEST(QualityMetrics, KlIgnoresAConstantShiftOfTheLogits) {
  // Softmax is shift-invariant: logits + 7 are the same distribution.
  const float a[4] = {1.0f, -2.0f, 0.5f, 3.0f};
  const float b[4] = {8.0f, 5.0f, 7.5f, 10.0f};
  EXPECT_NEAR(kl_divergence(a, log_sum_exp(a, 4), b, log_sum_exp(b, 4), 4), 0.0, 1e-12);
}

TEST(QualityMetrics, IdenticalDistributionsGiveExactlyZero) {
  std::vector<float> l(4096);
  for (size_t i = 0; i < l.size(); ++i) l[i] = std::sin(0.37f * static_cast<float>(i)) * 9.0f;
  const double lse = log_sum_exp(l.data(), 4096);
  EXPECT_EQ(kl_divergence(l.data(), lse, l.data(), lse, 4096), 0.0);
  QualityAccumulator q;
  for (int i = 0; i < 10; ++i) q.add(kl_divergence(l.data(), lse, l.data(), lse, 4096), argmax(l.data(), 4096) == argmax(l.data(), 4096));
  EXPECT_EQ(q.kl_mean(), 0.0);
  EXPECT_EQ(q.kl_p99(), 0.0);
  EXPECT_EQ(q.agreement(), 1.0);
}

TEST(QualityMetrics, ZeroProbabilityTermsAndInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  // ref gives token 1 no mass: KL(p||q) = 1 * ln(1 / q0), q0 = 1/2 -> ln 2.
  const float ref[2] = {0.0f, -inf};
  const float pol[2] = {0.0f, 0.0f};
  EXPECT_NEAR(kl_divergence(ref, log_sum_exp(ref, 2), pol, log_sum_exp(pol, 2), 2), std::log(2.0), 1e-12);
  // The reverse: q gives token 1 no mass where p has 1/2 -> infinite.
  EXPECT_EQ(kl_divergence(pol, log_sum_exp(pol, 2), ref, log_sum_exp(ref, 2), 2), std::numeric_limits<double>::infinity());
  const float none[2] = {-inf, -inf};
  EXPECT_THROW(log_sum_exp(none, 2), Error);
}

TEST(QualityMetrics, TokenNllAndPplRatioByHand) {
  // logits (0, ln 3): p = (1/4, 3/4); -ln p(1) = ln(4/3) = 0.287682072.
  const float l[2] = {0.0f, std::log(3.0f)};
  EXPECT_NEAR(token_nll(l, 2, 1), std::log(4.0 / 3), 1e-7);
  EXPECT_NEAR(token_nll(l, 2, 0), std::log(4.0), 1e-7);
  // ppl 20 vs ppl 16: ratio 1.25 = exp(ln 20 - ln 16).
  EXPECT_NEAR(ppl_ratio(std::log(20.0), std::log(16.0)), 1.25, 1e-12);
  EXPECT_EQ(ppl_ratio(2.5, 2.5), 1.0);
}

TEST(QualityMetrics, ArgmaxTakesTheFirstMaximum) {
  const float l[5] = {1.0f, 4.0f, -2.0f, 4.0f, 3.0f};
  EXPECT_EQ(argmax(l, 5), 1);
}

TEST(QualityMetrics, AgreementAndMean) {
  QualityAccumulator q;
  q.add(0.1, true);
  q.add(0.3, false);
  q.add(0.2, true);
  q.add(0.0, true);
  EXPECT_EQ(q.count(), 4);
  EXPECT_NEAR(q.kl_mean(), 0.15, 1e-15);  // (0.1 + 0.3 + 0.2 + 0) / 4
  EXPECT_EQ(q.agreement(), 0.75);         // 3 of 4
  QualityAccumulator empty;
  EXPECT_EQ(empty.kl_mean(), 0.0);
  EXPECT_EQ(empty.agreement(), 0.0);
}

TEST(QualityMetrics, NearestRankP99) {
  // 1..200: rank ceil(0.99 * 200) = 198 -> 198. 1..100: rank 99 -> 99. 1..10: rank
  // ceil(9.9) = 10 -> the maximum. One value: itself.
  std::vector<double> v;
  for (int i = 200; i >= 1; --i) v.push_back(i);
  EXPECT_EQ(percentile(v, 0.99), 198.0);
  v.resize(0);
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(percentile(v, 0.99), 99.0);
  EXPECT_EQ(percentile({3, 1, 2, 10, 4, 5, 6, 7, 8, 9}, 0.99), 10.0);
  EXPECT_EQ(percentile({4.5}, 0.99), 4.5);
  EXPECT_EQ(percentile({}, 0.99), 0.0);
  EXPECT_EQ(percentile({5, 1, 3}, 0.5), 3.0);  // rank ceil(1.5) = 2
}

}  // namespace
}  // namespace swapmoe::cli
