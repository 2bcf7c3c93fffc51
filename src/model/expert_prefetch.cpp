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
}

void ExpertPrefetcher::judge_batch_reads(const ExpertStore& store) {
  if (!gate_open_) {
    if (++closed_for_ < kProbeAfter) return;
    gate_open_ = true;  // try again, judged afresh
    based_ = false;
  }
  const ExpertStoreStats st = store.stats_report();
  const uint64_t used = st.cache.prefetch_used, wasted = st.cache.prefetch_wasted;
  if (!based_ || used < base_used_ || wasted < base_wasted_) {  // first look, or the stats were reset
    base_used_ = used;
    base_wasted_ = wasted;
    based_ = true;
    return;
  }
  const uint64_t du = used - base_used_, dw = wasted - base_wasted_;
  if (du + dw < kGateWindow) return;
  if (static_cast<double>(du) < kMinUsedShare * static_cast<double>(du + dw)) {
    gate_open_ = false;
    closed_for_ = 0;
  }
  base_used_ = used;
  base_wasted_ = wasted;
}

void ExpertPrefetcher::on_selected(int il, const int32_t* ids, size_t n) {
  std::vector<int32_t>& g = guess_[static_cast<size_t>(il)];
  if (g.empty()) return;
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
  if (rows > 1) judge_batch_reads(store);
  const bool read = rows == 1 || gate_open_;
  for (int d = 1; d <= depth_; ++d) {
    const int nl = il + d;
    if (nl >= static_cast<int>(cfg_.n_layer) || !cfg_.is_moe_layer(nl)) return;
    // The latest guess for a layer is the one scored (the nearest state predicts best).
    std::vector<int32_t>& g = guess_[static_cast<size_t>(nl)];
    guess_rows(nl, x, rows, g, pool);
    if (read) store.prefetch(nl, g);
  }
  // One layer further, a guess read only into the store's spare buffers while its disk
  // is idle (ExpertStore::speculate): it is not scored, the nearer guess replaces it.
  // While batched reads are off, the next layer itself: its guesses are then read only
  // this way, where they never evict (so the churn that closed the gate cannot come from
  // them), and they are taken when the next layer's request asks for them, before the
  // following speculate() call could replace them. Guessing two layers ahead there would
  // lose most reads: with no prefetch to take them over at the next layer, the next
  // list overwrites them first.
  const int sl = il + (read ? depth_ + 1 : 1);
  if (store.speculates() && sl < static_cast<int>(cfg_.n_layer) && cfg_.is_moe_layer(sl)) {
    guess_rows(sl, x, rows, far_, pool);
    store.speculate(sl, far_);
  }
}

}  // namespace swapmoe
