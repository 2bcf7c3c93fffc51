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

void ExpertPrefetcher::on_selected(int il, const int32_t* ids, size_t n) {
  std::vector<int32_t>& g = guess_[static_cast<size_t>(il)];
  if (g.empty()) return;
  for (size_t i = 0; i < n; ++i)
    if (std::find(g.begin(), g.end(), ids[i]) != g.end()) ++predicted_;
  actual_ += n;
  g.clear();
}

void ExpertPrefetcher::predict_next(int il, const float* x, ExpertStore& store, ThreadPool& pool) {
  const int64_t E = cfg_.n_embd;
  for (int d = 1; d <= depth_; ++d) {
    const int nl = il + d;
    if (nl >= static_cast<int>(cfg_.n_layer) || !cfg_.is_moe_layer(nl)) return;
    const LayerWeights& L = w_.layers[static_cast<size_t>(nl)];
    rmsnorm(x, L.ffn_norm.data(), xn_.data(), E, cfg_.rms_eps);
    act_.reset(xn_.data(), E);
    const MatvecJob job{L.gate_inp, &act_.get(L.gate_inp.type), logits_.data()};
    matvec_multi({&job, 1}, pool);
    if (!L.gate_inp_b.empty()) add_inplace(logits_.data(), L.gate_inp_b.data(), cfg_.n_expert);  // gpt-oss router bias
    RouterParams rp = router_;
    if (!L.exp_probs_b.empty()) rp.probs_bias = L.exp_probs_b.data();
    // The latest guess for a layer is the one scored (the nearest state predicts best).
    std::vector<int32_t>& g = guess_[static_cast<size_t>(nl)];
    g.assign(static_cast<size_t>(cfg_.n_expert_used), -1);
    select_experts(rp, logits_.data(), g.data(), weights_.data());
    store.prefetch(nl, g);
  }
}

}  // namespace swapmoe
