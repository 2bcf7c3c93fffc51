#include "eval/eval_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/error.h"

namespace swapmoe::cli {

double log_sum_exp(const float* logits, int n_vocab) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < n_vocab; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  if (!std::isfinite(mx)) fail("the model produced no finite logit (max logit ", mx, ")");
  double sum = 0;
  for (int i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  return mx + std::log(sum);
}

double token_nll(const float* logits, int n_vocab, int32_t target) {
  return log_sum_exp(logits, n_vocab) - static_cast<double>(logits[target]);
}

int32_t argmax(const float* logits, int n_vocab) {
  return static_cast<int32_t>(std::max_element(logits, logits + n_vocab) - logits);
}

double kl_divergence(const float* ref, double ref_lse, const float* pol, double pol_lse, int n_vocab) {
  double kl = 0;
  for (int v = 0; v < n_vocab; ++v) {
    const double lr = static_cast<double>(ref[v]) - ref_lse;
    const double p = std::exp(lr);
    if (p == 0) continue;  // 0 * log(0 / q) = 0, also where q = 0
    const double lq = static_cast<double>(pol[v]) - pol_lse;
    kl += p * (lr - lq);
  }
  // Gibbs' inequality makes the true value >= 0; a tiny negative sum is rounding.
  return std::isnan(kl) ? kl : std::max(0.0, kl);
}

double ppl_ratio(double nll_policy, double nll_exact) { return std::exp(nll_policy - nll_exact); }

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  const auto n = v.size();
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(n)));
  rank = std::clamp<size_t>(rank, 1, n);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rank - 1), v.end());
  return v[rank - 1];
}

void QualityAccumulator::add(double kl, bool agree) {
  kl_.push_back(kl);
  kl_sum_ += kl;
  agree_ += agree ? 1 : 0;
}

double QualityAccumulator::kl_mean() const { return kl_.empty() ? 0.0 : kl_sum_ / static_cast<double>(kl_.size()); }

double QualityAccumulator::agreement() const {
  return kl_.empty() ? 0.0 : static_cast<double>(agree_) / static_cast<double>(kl_.size());
}

}  // namespace swapmoe::cli
