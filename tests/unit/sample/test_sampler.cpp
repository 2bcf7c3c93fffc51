// Sampler tests: greedy ties, the llama.cpp chain order (top-k -> top-p -> min-p on untempered
// logits, then temperature), exact truncation sets on hand-made distributions, reproducibility
// per seed, and empirical frequencies against the expected truncated distribution.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "sample/sampler.h"
#include "util/error.h"

using swapmoe::Sampler;
using swapmoe::SamplerParams;
using swapmoe::TokenProb;

namespace {

// Logits whose softmax is exactly `probs` (up to rounding), placed at the given token ids in a
// vocabulary of n; other tokens get -inf so they never survive.
std::vector<float> logits_for(const std::vector<double>& probs, const std::vector<int>& ids, int n) {
  std::vector<float> l(static_cast<size_t>(n), -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < probs.size(); ++i) l[static_cast<size_t>(ids[i])] = static_cast<float>(std::log(probs[i]));
  return l;
}

std::set<int32_t> ids_of(const std::vector<TokenProb>& d) {
  std::set<int32_t> s;
  for (const auto& t : d) s.insert(t.id);
  return s;
}

SamplerParams only(float temp, int top_k, float top_p, float min_p, uint64_t seed = 1) {
  SamplerParams p;
  p.temp = temp;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.seed = seed;
  return p;
}

// Probabilities 0.5, 0.2, 0.15, 0.1, 0.05 on scattered ids (not a prefix of the vocabulary).
const std::vector<double> kP = {0.5, 0.2, 0.15, 0.1, 0.05};
const std::vector<int> kIds = {7, 2, 11, 0, 5};
constexpr int kN = 12;

}  // namespace

TEST(Sampler, GreedyPicksArgmaxAndLowestIdOnTies) {
  const std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f, 2.9f};
  Sampler s(only(0.0f, 40, 0.95f, 0.05f));
  EXPECT_EQ(s.sample(l.data(), 5), 1);
  EXPECT_EQ(Sampler::argmax(l.data(), 5), 1);
  Sampler neg(only(-1.0f, 0, 1.0f, 0.0f));
  EXPECT_EQ(neg.sample(l.data(), 5), 1);
  const auto d = s.distribution(l.data(), 5);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].id, 1);
  EXPECT_DOUBLE_EQ(d[0].p, 1.0);
}

TEST(Sampler, GreedySkipsNaNAndRejectsUnusableInput) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float ninf = -std::numeric_limits<float>::infinity();
  const std::vector<float> l = {nan, -5.0f, nan, -4.0f};
  EXPECT_EQ(Sampler::argmax(l.data(), 4), 3);
  const std::vector<float> bad = {nan, ninf, nan};
  EXPECT_THROW(Sampler::argmax(bad.data(), 3), swapmoe::Error);
  Sampler s(only(1.0f, 0, 1.0f, 0.0f));
  EXPECT_THROW(s.sample(bad.data(), 3), swapmoe::Error);
  EXPECT_THROW(s.sample(l.data(), 0), swapmoe::Error);
  EXPECT_THROW(s.sample(nullptr, 4), swapmoe::Error);
  EXPECT_THROW(Sampler(only(nan, 0, 1.0f, 0.0f)), swapmoe::Error);
}

TEST(Sampler, TopKOneEqualsGreedy) {
  std::mt19937 gen(123);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> l(1000);
    for (auto& x : l) x = nd(gen);
    Sampler s(only(1.5f, 1, 1.0f, 0.0f, static_cast<uint64_t>(trial)));
    const int32_t g = Sampler::argmax(l.data(), 1000);
    for (int k = 0; k < 5; ++k) EXPECT_EQ(s.sample(l.data(), 1000), g);
  }
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferent) {
  std::vector<float> l(64);
  for (int i = 0; i < 64; ++i) l[static_cast<size_t>(i)] = static_cast<float>(std::sin(i * 1.7) * 2.0);
  const auto run = [&](uint64_t seed) {
    Sampler s(only(1.0f, 0, 1.0f, 0.0f, seed));
    std::vector<int32_t> out;
    for (int i = 0; i < 300; ++i) out.push_back(s.sample(l.data(), 64));
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingMass) {
  const auto l = logits_for(kP, kIds, kN);
  // Cumulative masses are 0.5, 0.7, 0.85, 0.95, 1.0.
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 0.45f, 0.0f)).distribution(l.data(), kN)), (std::set<int32_t>{7}));
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 0.69f, 0.0f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2}));
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 0.71f, 0.0f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2, 11}));
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 0.9f, 0.0f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2, 11, 0}));
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 1.0f, 0.0f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2, 11, 0, 5}));
  // top_p <= 0 still keeps the most likely token.
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 0.0f, 0.0f)).distribution(l.data(), kN)), (std::set<int32_t>{7}));
}

TEST(Sampler, MinPKeepsTokensAboveFractionOfMax) {
  const auto l = logits_for(kP, kIds, kN);
  // Thresholds: 0.25 * 0.5 = 0.125 keeps {0.5, 0.2, 0.15}; 0.35 * 0.5 = 0.175 keeps {0.5, 0.2}.
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 1.0f, 0.25f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2, 11}));
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 1.0f, 0.35f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2}));
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 1.0f, 0.09f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2, 11, 0, 5}));
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 1.0f, 0.11f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2, 11, 0}));
  // min_p >= 1 keeps only the maximum.
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 1.0f, 1.0f)).distribution(l.data(), kN)), (std::set<int32_t>{7}));
}

TEST(Sampler, TopKRunsBeforeTopPAndTruncationIgnoresTemperature) {
  const auto l = logits_for(kP, kIds, kN);
  // After top-k=3 the renormalised top mass is 0.5/0.85 = 0.588 >= 0.58: one token. Without
  // top-k the mass 0.5 < 0.58 keeps two. This pins the order top-k -> top-p.
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 3, 0.58f, 0.0f)).distribution(l.data(), kN)), (std::set<int32_t>{7}));
  EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 0.58f, 0.0f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2}));
  // Temperature is applied last: the same truncation at any temperature.
  for (float t : {0.3f, 1.0f, 3.0f}) {
    EXPECT_EQ(ids_of(Sampler(only(t, 0, 0.71f, 0.0f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2, 11})) << t;
    EXPECT_EQ(ids_of(Sampler(only(t, 0, 1.0f, 0.25f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2, 11})) << t;
    EXPECT_EQ(ids_of(Sampler(only(t, 4, 1.0f, 0.0f)).distribution(l.data(), kN)), (std::set<int32_t>{7, 2, 11, 0})) << t;
  }
}

TEST(Sampler, DistributionAppliesTemperatureToSurvivors) {
  const auto l = logits_for(kP, kIds, kN);
  const float t = 0.5f;
  const auto d = Sampler(only(t, 3, 1.0f, 0.0f)).distribution(l.data(), kN);
  ASSERT_EQ(d.size(), 3u);
  // p_i ~ q_i^(1/T) over the three survivors, in descending order.
  const double w0 = std::pow(0.5, 2.0), w1 = std::pow(0.2, 2.0), w2 = std::pow(0.15, 2.0);
  const double z = w0 + w1 + w2;
  EXPECT_EQ(d[0].id, 7);
  EXPECT_EQ(d[1].id, 2);
  EXPECT_EQ(d[2].id, 11);
  EXPECT_NEAR(d[0].p, w0 / z, 1e-6);
  EXPECT_NEAR(d[1].p, w1 / z, 1e-6);
  EXPECT_NEAR(d[2].p, w2 / z, 1e-6);
}

TEST(Sampler, TiesKeepIdOrderInDistribution) {
  const std::vector<float> l = {1.0f, 2.0f, 2.0f, 1.0f, 2.0f};
  const auto d = Sampler(only(1.0f, 2, 1.0f, 0.0f)).distribution(l.data(), 5);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].id, 1);
  EXPECT_EQ(d[1].id, 2);
}

TEST(Sampler, PositiveInfinityLogitsWin) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> l = {0.0f, inf, 5.0f, inf};
  Sampler s(only(1.0f, 0, 1.0f, 0.0f, 9));
  std::map<int32_t, int> n;
  for (int i = 0; i < 400; ++i) n[s.sample(l.data(), 4)]++;
  EXPECT_EQ(n.size(), 2u);
  EXPECT_GT(n[1], 100);
  EXPECT_GT(n[3], 100);
}

TEST(Sampler, EmpiricalFrequenciesMatchTruncatedDistribution) {
  // Ten tokens; top-k=6 then min-p=0.1 cuts further; temperature 0.8 reshapes the survivors.
  const std::vector<float> l = {0.3f, 2.0f, -1.0f, 1.4f, 0.9f, 2.2f, -0.2f, 1.0f, -3.0f, 0.5f};
  const int n = static_cast<int>(l.size());
  const float temp = 0.8f;
  // Expected set computed independently: top-6 logits are ids 5,1,3,7,4,9 (2.2,2.0,1.4,1.0,0.9,0.5);
  // min-p 0.1 drops logits below 2.2 + ln 0.1 = -0.10, which none of those are; so all six stay.
  // With min_p = 0.2 the threshold is 2.2 + ln 0.2 = 0.59, dropping id 9 (0.5).
  const std::vector<int> expect_ids = {5, 1, 3, 7, 4};
  std::vector<double> w;
  double z = 0.0;
  for (int id : expect_ids) {
    w.push_back(std::exp((l[static_cast<size_t>(id)] - 2.2) / temp));
    z += w.back();
  }
  Sampler s(only(temp, 6, 1.0f, 0.2f, 2024));
  const int draws = 200000;
  std::vector<int> count(static_cast<size_t>(n), 0);
  for (int i = 0; i < draws; ++i) count[static_cast<size_t>(s.sample(l.data(), n))]++;
  double chi2 = 0.0;
  int inside = 0;
  for (size_t k = 0; k < expect_ids.size(); ++k) {
    const double e = draws * w[k] / z;
    const double o = count[static_cast<size_t>(expect_ids[k])];
    chi2 += (o - e) * (o - e) / e;
    inside += count[static_cast<size_t>(expect_ids[k])];
  }
  EXPECT_EQ(inside, draws) << "a truncated token was drawn";
  // 4 degrees of freedom: P(chi2 > 23.5) ~ 1e-4. The seed is fixed, so this is also stable.
  EXPECT_LT(chi2, 23.5);
}

// Issue 15: `run --min-p 5` crashed, because min_p above 1 emptied the candidate list and the
// sampler then read its first element. The maximum must survive any min_p, and sample() must
// return it rather than read an empty set.
TEST(Sampler, MinPAboveOneKeepsTheMaximumInsteadOfEmptyingTheSet) {
  const auto l = logits_for(kP, kIds, kN);
  for (float mp : {1.0001f, 5.0f, 1e30f, std::numeric_limits<float>::infinity()}) {
    EXPECT_EQ(ids_of(Sampler(only(1.0f, 0, 1.0f, mp)).distribution(l.data(), kN)), (std::set<int32_t>{7})) << mp;
    Sampler s(only(0.7f, 3, 0.5f, mp));
    for (int k = 0; k < 10; ++k) EXPECT_EQ(s.sample(l.data(), kN), 7) << mp;
  }
}

// The range checks the CLI (--temp ...) and the server (temperature ...) share.
TEST(Sampler, CheckSamplerParamsRefusesEachOutOfRangeValueByName) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NO_THROW(swapmoe::check_sampler_params(only(0.0f, 0, 0.0f, 0.0f)));
  EXPECT_NO_THROW(swapmoe::check_sampler_params(only(100.0f, 1 << 30, 1.0f, 1.0f)));
  auto message = [](SamplerParams p) {
    try {
      swapmoe::check_sampler_params(p, "--");
    } catch (const swapmoe::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message(only(1.0f, 0, 1.0f, 5.0f)).find("--min-p 5 is out of range"), std::string::npos);
  EXPECT_NE(message(only(1.0f, 0, 1.5f, 0.0f)).find("--top-p"), std::string::npos);
  EXPECT_NE(message(only(1.0f, -1, 1.0f, 0.0f)).find("--top-k"), std::string::npos);
  EXPECT_NE(message(only(-0.5f, 0, 1.0f, 0.0f)).find("--temp"), std::string::npos);
  EXPECT_NE(message(only(101.0f, 0, 1.0f, 0.0f)).find("--temp"), std::string::npos);
  EXPECT_NE(message(only(nan, 0, 1.0f, 0.0f)).find("--temp"), std::string::npos);
  EXPECT_NE(message(only(1.0f, 0, nan, 0.0f)).find("--top-p"), std::string::npos);
  EXPECT_NE(message(only(1.0f, 0, 1.0f, -0.1f)).find("--min-p"), std::string::npos);
}
