#pragma once
// The numbers `eval --reference` and `sweep` report when a policy (e.g. SwapMoE's masked
// gating) is compared with the exact model on the same tokens:
//   nll        mean of -log p(tok[i+1] | tok[..i]) over the scored positions,
//   KL         per position KL(exact || policy) = sum_v p_e(v) (log p_e(v) - log p_q(v)) over
//              the full vocabulary, in nats; reported as mean and p99 over positions,
//   agreement  share of positions where the two argmaxes (first maximum, as greedy decoding
//              picks it) are the same token,
//   ppl ratio  ppl_policy / ppl_exact = exp(nll_policy - nll_exact).
// Everything is computed from the raw float logits with the log-sum-exp in double, so two
// identical logit vectors give a KL of exactly 0 (every term is p * 0).

#include <cstdint>
#include <vector>

namespace swapmoe::cli {

// log(sum_v exp(logits[v])) in double precision. Throws Error when no logit is finite.
double log_sum_exp(const float* logits, int n_vocab);

// -log softmax(logits)[target] (the eval definition, shared with llama_ref.mjs).
double token_nll(const float* logits, int n_vocab, int32_t target);

// Index of the first maximum logit (what greedy decoding picks).
int32_t argmax(const float* logits, int n_vocab);

// KL(ref || pol) of one position, in nats, from the logits and their log-sum-exps. Terms
// with p_ref = 0 contribute 0; a token that ref gives mass and pol gives none makes it
// +infinity. Never negative (rounding below 0 is clamped).
double kl_divergence(const float* ref, double ref_lse, const float* pol, double pol_lse, int n_vocab);

// exp(nll_policy - nll_exact) = ppl_policy / ppl_exact.
double ppl_ratio(double nll_policy, double nll_exact);

// Nearest-rank percentile of `v` (q in (0,1]): the ceil(q*n)-th smallest value; 0 when empty.
double percentile(std::vector<double> v, double q);

// Per-position comparisons accumulated over a pass.
class QualityAccumulator {
 public:
  void add(double kl, bool agree);
  int64_t count() const { return static_cast<int64_t>(kl_.size()); }
  double kl_mean() const;
  double kl_p99() const { return percentile(kl_, 0.99); }
  double agreement() const;  // in [0,1]; 0 when empty

 private:
  std::vector<double> kl_;
  double kl_sum_ = 0;
  int64_t agree_ = 0;
};

}  // namespace swapmoe::cli
