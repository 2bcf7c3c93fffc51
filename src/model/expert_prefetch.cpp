#include "model/expert_prefetch.h"

#include "ops/activation.h"

#include <algorithm>

#include "ops/matvec_multi.h"
#include "ops/norm.h"

namespace swapmoe {

ExpertPrefetcher::ExpertPrefetcher(const ModelConfig& cfg, const ModelWeights& w, const RouterParams& router, int depth)
    : cfg_(cfg), w_(w), router_(router), depth_(std::max(depth, 1)) {
  xn_.resize(static_cast<size_t>(cfg.n_embd));
  logits_.resize(static_cast<size_t>(std::max<int64_t>(cfg.n_expert, 1)));
  weights_.resize(static_cast<size_t>(std::max<int64_t>(cfg.n_expert_used, 1)));
  guess_.resize(static_cast<size_t>(cfg.n_layer));
  batch_guess_.assign(static_cast<size_t>(cfg.n_layer), 0);
}

double ExpertPrefetcher::guess_precision(int il, const int32_t* ids, size_t n) const {
  const std::vector<int32_t>& g = guess_[static_cast<size_t>(il)];
  if (g.empty()) return -1.0;
  size_t hit = 0;
  for (const int32_t e : g)
    if (std::find(ids, ids + n, e) != ids + n) ++hit;
  return static_cast<double>(hit) / static_cast<double>(g.size());
}

void ExpertPrefetcher::on_selected(int il, const int32_t* ids, size_t n) {
  std::vector<int32_t>& g = guess_[static_cast<size_t>(il)];
  if (g.empty()) return;
  if (batch_guess_[static_cast<size_t>(il)]) {
    // An exponential moving average over about the last 32 batched guesses (a token's
    // worth of layers on a 48-layer model, less than one step on most).
    const double p = guess_precision(il, ids, n);
    batch_precision_ += (p - batch_precision_) / 32.0;
  }
  for (size_t i = 0; i < n; ++i)
    if (std::find(g.begin(), g.end(), ids[i]) != g.end()) ++predicted_;
  actual_ += n;
  g.clear();
}

void ExpertPrefetcher::guess_rows(int nl, const float* x, int64_t rows, std::vector<int32_t>& g, ThreadPool& pool) {
  const int64_t E = cfg_.n_embd;
  const LayerWeights& L = w_.layers[static_cast<size_t>(nl)];
  RouterParams rp = router_;
  if (!L.exp_probs_b.empty()) rp.probs_bias = L.exp_probs_b.data();
  one_.resize(static_cast<size_t>(cfg_.n_expert_used));
  g.clear();
  for (int64_t r = 0; r < rows; ++r) {
    rmsnorm(x + r * E, L.ffn_norm.data(), xn_.data(), E, cfg_.rms_eps);
    act_.reset(xn_.data(), E);
    const MatvecJob job{L.gate_inp, &act_.get(L.gate_inp.type), logits_.data()};
    matvec_multi({&job, 1}, pool);
    if (!L.gate_inp_b.empty()) add_inplace(logits_.data(), L.gate_inp_b.data(), cfg_.n_expert);  // gpt-oss router bias
    select_experts(rp, logits_.data(), one_.data(), weights_.data());
    for (const int32_t e : one_)
      if (std::find(g.begin(), g.end(), e) == g.end()) g.push_back(e);
  }
}

void ExpertPrefetcher::predict_next(int il, const float* x, ExpertStore& store, ThreadPool& pool) {
  predict_next(il, x, 1, store, pool);
}

void ExpertPrefetcher::predict_next(int il, const float* x, int64_t rows, ExpertStore& store, ThreadPool& pool) {
  const bool read = rows == 1 || batch_precision_ >= kMinBatchPrecision;
  for (int d = 1; d <= depth_; ++d) {
    const int nl = il + d;
    if (nl >= static_cast<int>(cfg_.n_layer) || !cfg_.is_moe_layer(nl)) return;
    // The latest guess for a layer is the one scored (the nearest state predicts best).
    std::vector<int32_t>& g = guess_[static_cast<size_t>(nl)];
    guess_rows(nl, x, rows, g, pool);
    batch_guess_[static_cast<size_t>(nl)] = rows > 1 ? 1 : 0;
    if (read) store.prefetch(nl, g);
  }
}

}  // namespace swapmoe
