// The feed-forward half of a layer: the MoE block (router, top-k experts, weighted sum),
// the shared expert (qwen2moe with its sigmoid gate; deepseek2 unweighted) and dense FFN
// layers, mirroring llama.cpp's build_moe_ffn / build_ffn.
//
// Threading: all gate and up products of all chosen experts run under one barrier
// (matvec_multi spreads their rows over the threads), then all down products under a
// second one. This keeps two barriers per layer whatever the number of experts, and
// balances well whether n_used is smaller or larger than the thread count.
//
// Under a memory budget (a StreamingExpertStore, i.e. the SSD-backed ExpertCache) the
// chosen experts are computed in groups as their reads complete: every expert already in
// memory forms the first group (with the shared expert), computed while the missing ones
// load; each later group is whatever finished reading meanwhile. Each expert's output
// goes to its own ffn_out_[i] (i = its position in the selection) and is computed by the
// same kernels on the same activation whatever group it is in, and the weighted sum below
// runs in selection order, so the layer's output is bit-identical to the resident store's.
// A resident store takes the one-group path (two barriers per layer).

#include <algorithm>
#include <numeric>

#include "cache/expert_cache.h"
#include "model/expert_prefetch.h"
#include "model/model_budget.h"
#include "model/model_impl.h"
#include "ops/activation.h"
#include "ops/matvec_multi.h"
#include "ops/norm.h"
#include "quant/quant.h"
#include "util/error.h"

namespace swapmoe {

void ModelImpl::run_ffn_items(const std::vector<FfnItem>& items) {
  // Identity destinations; n_used + 1 at most, so a small fixed table suffices.
  static constexpr size_t kIdentity[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                         16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
  if (items.size() <= std::size(kIdentity)) {
    run_ffn_items(items, std::span<const size_t>(kIdentity, items.size()));
    return;
  }
  std::vector<size_t> out(items.size());
  std::iota(out.begin(), out.end(), size_t{0});
  run_ffn_items(items, out);
}

void ModelImpl::run_ffn_items(std::span<const FfnItem> items, std::span<const size_t> out) {
  const size_t n = items.size();
  const size_t n_out = n ? *std::max_element(out.begin(), out.end()) + 1 : 0;
  if (ffn_gate_.size() < n) {
    ffn_gate_.resize(n);
    ffn_up_.resize(n);
    ffn_act_.resize(n);
  }
  if (ffn_out_.size() < n_out) ffn_out_.resize(n_out);
  std::vector<MatvecJob> jobs;
  jobs.reserve(2 * n);
  // Phase 1: gate = G x, up = U x for every item (x already in act_).
  for (size_t i = 0; i < n; ++i) {
    ffn_gate_[i].resize(items[i].gate.rows);
    ffn_up_[i].resize(items[i].up.rows);
    jobs.push_back({items[i].gate, &act_.get(items[i].gate.type), ffn_gate_[i].data()});
    jobs.push_back({items[i].up, &act_.get(items[i].up.type), ffn_up_[i].data()});
  }
  matvec_multi(jobs, pool_);
  // Phase 2: h = silu(gate) * up, converted once for its down matrix.
  for (size_t i = 0; i < n; ++i) {
    const int64_t ff = items[i].gate.rows;
    swiglu(ffn_gate_[i].data(), ffn_up_[i].data(), ffn_gate_[i].data(), ff);
    quantize_activation(ffn_gate_[i].data(), ff, quant_traits(items[i].down.type).vec_dot_type, ffn_act_[i]);
  }
  // Phase 3: out = D h.
  jobs.clear();
  for (size_t i = 0; i < n; ++i) {
    std::vector<float>& o = ffn_out_[out[i]];
    o.resize(items[i].down.rows);
    jobs.push_back({items[i].down, &ffn_act_[i], o.data()});
  }
  matvec_multi(jobs, pool_);
}

void ModelImpl::run_streamed_experts(int il, StreamingExpertStore& store) {
  const LayerWeights& L = w_->layers[static_cast<size_t>(il)];
  const size_t n_used = ids_.size();
  std::vector<AcquiredExpert> group;
  std::vector<FfnItem> items;
  std::vector<size_t> out;
  std::vector<bool> got(n_used, false);
  size_t n_got = 0;
  bool shexp_pending = L.has_shexp;
  try {
    while (n_got < n_used) {
      group.clear();
      if (store.acquire_ready(il, group) == 0)
        fail("expert store: layer ", il, " handed out ", n_got, " of ", n_used, " requested experts");
      items.clear();
      out.clear();
      for (const AcquiredExpert& a : group) {
        const auto it = std::find(ids_.begin(), ids_.end(), a.expert);
        const auto i = static_cast<size_t>(it - ids_.begin());
        if (it == ids_.end() || got[i]) fail("expert store: layer ", il, " handed out expert ", a.expert, " which was not requested");
        got[i] = true;
        items.push_back({a.view.gate, a.view.up, a.view.down});
        out.push_back(i);
      }
      n_got += group.size();
      // The shared expert is resident: compute it with the first group, under I/O.
      if (shexp_pending) {
        items.push_back({L.gate_shexp, L.up_shexp, L.down_shexp});
        out.push_back(n_used);
        shexp_pending = false;
      }
      run_ffn_items(items, out);
      if (n_got < n_used) experts_early_ += group.size();  // others are still being read
      // Release as soon as computed, so the slots become evictable for the reads that follow.
      for (AcquiredExpert& a : group) {
        const int32_t e = a.expert;
        a.expert = -1;
        store.release(il, e);
      }
    }
  } catch (...) {
    for (const AcquiredExpert& a : group)
      if (a.expert >= 0) store.release(il, a.expert);
    cancel_request(store, il);  // unpins what request() pinned and nobody acquired
    throw;
  }
}

void ModelImpl::ffn_block(int il, float* x) {
  const LayerWeights& L = w_->layers[static_cast<size_t>(il)];
  const int64_t E = cfg_.n_embd;
  rmsnorm(x, L.ffn_norm.data(), xn_.data(), E, cfg_.rms_eps);
  act_.reset(xn_.data(), E);
  std::vector<int32_t>& routed = routing_[static_cast<size_t>(il)];

  if (!cfg_.is_moe_layer(il)) {
    routed.clear();
    run_ffn_items({FfnItem{L.ffn_gate, L.ffn_up, L.ffn_down}});
    for (int64_t i = 0; i < E; ++i) x[i] = ffn_out_[0][i] + x[i];
    return;
  }

  // Router: logits = W_gate_inp xn [n_expert]; selection and weights as llama.cpp.
  const MatvecJob rj{L.gate_inp, &act_.get(L.gate_inp.type), router_logits_.data()};
  matvec_multi({&rj, 1}, pool_);
  RouterParams rp = router_;
  if (!L.exp_probs_b.empty()) rp.probs_bias = L.exp_probs_b.data();
  experts_->route(il, rp, router_logits_.data(), ids_.data(), expert_w_.data());
  const size_t n_used = ids_.size();
  routed.assign(ids_.begin(), ids_.end());

  // The shared-expert gate (qwen2moe) is one dot product with the same input.
  float shexp_gate_logit = 0.0f;
  if (L.gate_inp_shexp.data) {
    const MatvecJob gj{L.gate_inp_shexp, &act_.get(L.gate_inp_shexp.type), &shexp_gate_logit};
    matvec_multi({&gj, 1}, pool_);
  }
  experts_->request(il, ids_);
  // Next-layer prediction (expert_prefetch.h): its reads overlap this layer's compute.
  // The experts just requested are pinned, so a prefetch never evicts them.
  if (prefetch_) {
    prefetch_->on_selected(il, ids_.data(), n_used);
    try {
      prefetch_->predict_next(il, x, *experts_, pool_);
    } catch (...) {
      cancel_request(*experts_, il);  // unpin what request() pinned
      throw;
    }
  }
  if (auto* streaming = dynamic_cast<StreamingExpertStore*>(experts_.get())) {
    run_streamed_experts(il, *streaming);
  } else {
    // Every expert at hand: one group, two barriers. Views in selection order
    // (model_budget.h), so each expert's output lands in its own ffn_out_[i].
    std::vector<ExpertView> views;
    acquire_experts(*experts_, il, ids_, views);
    std::vector<FfnItem> items;
    items.reserve(n_used + 1);
    try {
      for (const ExpertView& ev : views) items.push_back({ev.gate, ev.up, ev.down});
      if (L.has_shexp) items.push_back({L.gate_shexp, L.up_shexp, L.down_shexp});
      run_ffn_items(items);
    } catch (...) {
      for (size_t i = 0; i < n_used; ++i) experts_->release(il, ids_[i]);
      throw;
    }
    for (size_t i = 0; i < n_used; ++i) experts_->release(il, ids_[i]);
  }

  // moe_out = sum_i w_i * out_i, added in selection order like llama.cpp's view adds.
  float* acc = proj_.data();
  for (int64_t j = 0; j < E; ++j) acc[j] = ffn_out_[0][j] * expert_w_[0];
  for (size_t i = 1; i < n_used; ++i)
    for (int64_t j = 0; j < E; ++j) acc[j] = acc[j] + ffn_out_[i][j] * expert_w_[i];
  if (L.has_shexp) {
    const std::vector<float>& sh = ffn_out_[n_used];
    if (L.gate_inp_shexp.data) {
      // llama.cpp computes the sigmoid as silu(g) / g.
      const float g = shexp_gate_logit;
      const float s = g == 0.0f ? 0.5f : silu(g) / g;
      for (int64_t j = 0; j < E; ++j) acc[j] = acc[j] + sh[j] * s;
    } else {
      for (int64_t j = 0; j < E; ++j) acc[j] = acc[j] + sh[j];
    }
  }
  for (int64_t j = 0; j < E; ++j) x[j] = acc[j] + x[j];
}

}  // namespace swapmoe
