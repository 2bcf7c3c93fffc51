#pragma once
// The arithmetic of SwapMoE mode (docs/swapmoe.md), kept apart from the store so that it
// can be tested by hand: expert importance, the swap rule, and how expert slots are
// shared between layers.

#include <cstdint>
#include <vector>

namespace swapmoe {

// Importance of one layer's experts, updated once per token from the UNMASKED router
// output (what the full model would have wanted, not what the mask allowed):
//   I_e <- gamma * I_e + p_e * [e in the unmasked top-k]      for every expert e of the layer
// i.e. the decayed sum of the routing probability mass each expert received: p_e is the
// router probability of e (softmax gating), or for sigmoid gating the sigmoid score
// normalised over the layer's experts (sum_e p_e = 1), and only the experts the unmasked
// selection chose receive theirs. (Adding every expert's p_e, chosen or not, was measured
// worse on the demo model's flat routing: at half the expert bytes 64% of the chosen
// experts were resident against 72-77% this way.) With gamma = 0.95 the score is a sum
// over an exponential window of about 1 / (1 - gamma) = 20 tokens (0.95 beat 0.99 and
// matched 0.9 on the demo model); an expert chosen every token with probability p has the
// steady state I = p / (1 - gamma).
inline constexpr double kImportanceDecay = 0.95;
// probs [n_expert] unmasked; chosen [k] the unmasked selection.
void update_importance(std::vector<double>& importance, const float* probs, const int32_t* chosen, int64_t k,
                       bool normalise, double gamma);

// The swap rule: a non-resident expert c replaces the weakest resident expert v when
//   I_c > (1 + kSwapMargin) * I_v + kSwapSlack
// The relative margin keeps two experts of similar importance from trading places every
// few tokens; the slack (in tokens' worth of probability mass) ignores noise right after
// start-up when every score is near zero.
inline constexpr double kSwapMargin = 0.10;
inline constexpr double kSwapSlack = 0.01;
inline bool swap_worth_it(double candidate, double victim) {
  return candidate > (1.0 + kSwapMargin) * victim + kSwapSlack;
}

// Splits `total` slots between layers: each layer first gets `lo` slots, the rest is
// handed out in proportion to weight[l] (equal shares when all weights are 0), no layer
// getting more than `hi`; rounding leftovers go to the layers with the largest weight
// (lowest index on ties). Returns min(total, n * hi) slots in all. Requires total >= n * lo.
std::vector<int64_t> apportion_slots(int64_t total, const std::vector<double>& weight, int64_t lo, int64_t hi);

// The number of experts, taken in decreasing order of mass, needed to cover at least
// `share` of the layer's total mass (at least 1). Layers with concentrated routing need
// few, layers with flat routing many: the profile-driven slot weight.
int64_t experts_to_cover(const std::vector<double>& mass, double share);
inline constexpr double kCoverShare = 0.90;

}  // namespace swapmoe
