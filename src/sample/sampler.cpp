#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/error.h"

namespace swapmoe {

namespace {

struct Cand {
  int32_t id;
  float logit;
};

// Candidates are ordered by logit descending and then by id ascending, so that ties break the
// same way every run (llama.cpp's own sort leaves tie order unspecified).
bool before(const Cand& a, const Cand& b) {
  if (a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

void check_vocab(const float* logits, int n_vocab) {
  if (n_vocab <= 0) fail("sampler: n_vocab must be positive, got ", n_vocab);
  if (logits == nullptr) fail("sampler: logits pointer is null");
}

// Runs top-k -> top-p -> min-p on the untempered logits, then applies temperature and softmax.
// Returns the survivors with probabilities, in before() order when want_sorted is set (sorting
// the whole vocabulary is skipped otherwise: sample() does not need an order, only a fixed one).
std::vector<TokenProb> truncate_and_soften(const SamplerParams& sp, const float* logits, int n_vocab,
                                           bool want_sorted) {
  std::vector<Cand> c;
  c.reserve(static_cast<size_t>(n_vocab));
  bool any_pos_inf = false;
  for (int i = 0; i < n_vocab; ++i) {
    const float l = logits[i];
    if (std::isnan(l) || l == -std::numeric_limits<float>::infinity()) continue;
    if (l == std::numeric_limits<float>::infinity()) any_pos_inf = true;
    c.push_back({i, l});
  }
  if (c.empty()) fail("sampler: all ", n_vocab, " logits are NaN or -inf");
  if (any_pos_inf) {
    // +inf would turn the softmax into NaN. Such tokens are "certain", so they alone remain,
    // equally likely.
    std::erase_if(c, [](const Cand& x) { return !std::isinf(x.logit); });
    for (auto& x : c) x.logit = 0.0f;
  }

  bool sorted = false;
  if (sp.top_k > 0 && static_cast<size_t>(sp.top_k) < c.size()) {
    std::partial_sort(c.begin(), c.begin() + sp.top_k, c.end(), before);
    c.resize(static_cast<size_t>(sp.top_k));
    sorted = true;
  }

  if (sp.top_p < 1.0f) {
    // Smallest prefix (by probability) whose mass reaches top_p, at least one token; the mass is
    // measured on the current candidates at temperature 1, as in llama.cpp.
    if (!sorted) {
      std::sort(c.begin(), c.end(), before);
      sorted = true;
    }
    const double m = c.front().logit;
    double total = 0.0;
    for (const auto& x : c) total += std::exp(static_cast<double>(x.logit) - m);
    double cum = 0.0;
    size_t keep = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      cum += std::exp(static_cast<double>(c[i].logit) - m) / total;
      if (cum >= static_cast<double>(sp.top_p)) {
        keep = i + 1;
        break;
      }
    }
    c.resize(keep);
  }

  if (sp.min_p > 0.0f) {
    // p_i >= min_p * p_max  <=>  logit_i >= logit_max + ln(min_p). The max always survives,
    // even for min_p > 1 (which check_sampler_params refuses, but a set emptied here would be
    // read below): the threshold is clamped to the max itself.
    float mx = c.front().logit;
    if (!sorted) {
      for (const auto& x : c) mx = std::max(mx, x.logit);
    }
    const double threshold =
        std::min(static_cast<double>(mx), static_cast<double>(mx) + std::log(static_cast<double>(sp.min_p)));
    std::erase_if(c, [&](const Cand& x) { return static_cast<double>(x.logit) < threshold; });
  }
  if (c.empty()) fail("sampler: no candidate token survived truncation");

  if (want_sorted && !sorted) std::sort(c.begin(), c.end(), before);

  float mx = c.front().logit;
  for (const auto& x : c) mx = std::max(mx, x.logit);
  const double inv_t = 1.0 / static_cast<double>(sp.temp);
  std::vector<TokenProb> out;
  out.reserve(c.size());
  double total = 0.0;
  for (const auto& x : c) {
    const double w = std::exp((static_cast<double>(x.logit) - mx) * inv_t);
    out.push_back({x.id, w});
    total += w;
  }
  for (auto& t : out) t.p /= total;
  return out;
}

}  // namespace

void check_sampler_params(const SamplerParams& p, const char* prefix) {
  // `!(lo <= v && v <= hi)` is also true for NaN.
  auto in = [&](const char* name, double v, double lo, double hi) {
    if (!(lo <= v && v <= hi)) fail(prefix, name, " ", v, " is out of range [", lo, ", ", hi, "]");
  };
  in("temp", p.temp, 0.0, SamplerLimits::temp_max);
  in("top-k", p.top_k, 0.0, static_cast<double>(SamplerLimits::top_k_max));
  in("top-p", p.top_p, 0.0, 1.0);
  in("min-p", p.min_p, 0.0, 1.0);
}

Sampler::Sampler(SamplerParams params) : params_(params), rng_(params.seed) {
  // Only NaN is refused here: out-of-range values have a defined meaning in SamplerParams
  // (negative temp is greedy, min_p above 1 keeps only the top token), and the user-facing
  // range checks live in check_sampler_params at the CLI and server boundaries.
  if (std::isnan(params.temp) || std::isnan(params.top_p) || std::isnan(params.min_p)) {
    fail("sampler: temp/top_p/min_p must not be NaN (temp=", params.temp, " top_p=", params.top_p,
         " min_p=", params.min_p, ")");
  }
}

int32_t Sampler::argmax(const float* logits, int n_vocab) {
  check_vocab(logits, n_vocab);
  int32_t best = -1;
  float best_l = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < n_vocab; ++i) {
    // Strictly greater: the first (lowest) id wins a tie. NaN compares false and is skipped.
    if (logits[i] > best_l) {
      best_l = logits[i];
      best = i;
    }
  }
  if (best < 0) fail("sampler: all ", n_vocab, " logits are NaN or -inf");
  return best;
}

std::vector<TokenProb> Sampler::distribution(const float* logits, int n_vocab) const {
  check_vocab(logits, n_vocab);
  if (params_.temp <= 0.0f) return {{argmax(logits, n_vocab), 1.0}};
  return truncate_and_soften(params_, logits, n_vocab, true);
}

int32_t Sampler::sample(const float* logits, int n_vocab) {
  check_vocab(logits, n_vocab);
  if (params_.temp <= 0.0f) return argmax(logits, n_vocab);
  const std::vector<TokenProb> d = truncate_and_soften(params_, logits, n_vocab, false);
  // u in [0, 1) from the top 53 bits: the same on every standard library, unlike
  // std::uniform_real_distribution, so a seed means the same draws everywhere.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  double cum = 0.0;
  for (const auto& t : d) {
    cum += t.p;
    if (u < cum) return t.id;
  }
  return d.back().id;  // u landed in the rounding gap just below 1
}

}  // namespace swapmoe
