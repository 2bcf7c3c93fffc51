// The MoE half of a layer for a span of n tokens (decode: n = 1), mirroring llama.cpp's
// build_moe_ffn. Input: the ffn_norm output of the n tokens in s_.xn, converted in
// s_.acts; output: the n rows to add to the residual stream in s_.proj.
//
//   1. router logits for all tokens in one product; each token routed by the expert store
//      (ExpertStore::route: the model's selection, or SwapMoE's masked one);
//   2. the (token, slot) pairs grouped by expert: expert e gets the tokens that chose it,
//      in token order, each pair a row of moe_out; the experts in increasing id order (the
//      order of their weights in memory and in the file);
//   3. the chosen experts in waves the store can pin at once (ExpertStore::capacity): the
//      wave is requested, then computed group by group as the store hands its experts out
//      (a resident store: all at once; the SSD-backed cache: whatever finished reading,
//      while the rest loads). A group's gate/up products of all its experts run in one
//      parallel region (each expert a product over its tokens' rows, so its weights are
//      read once per span), then swiglu, then all down products in a second region, then
//      the group is released. The shared expert runs over all tokens with the first group;
//   4. per token, the weighted outputs added in selection order (acc = out_0 w_0;
//      acc += out_i w_i; shared expert), as llama.cpp's view adds do.
//
// Each expert's rows are computed by the same kernels on the same activations whatever
// group or wave it lands in, and step 4 runs in selection order, so a token's result does
// not depend on arrival order, wave size, or the other tokens of the span. Under a memory
// budget each expert a span needs is loaded at most once per span and layer.

#include <algorithm>
#include <numeric>
#include <optional>

#include "model/expert_prefetch.h"
#include "model/model_impl.h"
#include "ops/activation.h"
#include "ops/dynamic_for.h"
#include "quant/quant.h"
#include "util/error.h"

namespace swapmoe {

void ModelImpl::moe(int il, int64_t n) {
  Scratch& S = s_;
  const LayerWeights& L = w_->layers[static_cast<size_t>(il)];
  const int64_t E = cfg_.n_embd, NE = cfg_.n_expert, U = cfg_.n_expert_used, ff = cfg_.n_ff_exp;
  const size_t rows = static_cast<size_t>(n);

  // 1. Routing.
  std::optional<PrefillTimer> tm;
  tm.emplace(PrefillPhase::Router);
  S.logits.resize(rows * static_cast<size_t>(NE));
  S.ids.resize(rows * static_cast<size_t>(U));
  S.weights.resize(rows * static_cast<size_t>(U));
  S.row_of.resize(rows * static_cast<size_t>(U));
  S.jobs.clear();
  S.jobs.push_back({L.gate_inp, &S.acts.get(L.gate_inp.type), S.logits.data()});
  if (L.gate_inp_shexp.data) {
    // The shared expert's gate (qwen2moe) is one more row of the same product.
    S.shexp_logit.resize(rows);
    S.jobs.push_back({L.gate_inp_shexp, &S.acts.get(L.gate_inp_shexp.type), S.shexp_logit.data()});
  }
  matmul_multi(S.jobs, pool_);
  if (!L.gate_inp_b.empty())  // gpt-oss: logits = W x + b (ggml_add)
    for (int64_t t = 0; t < n; ++t) add_inplace(S.logits.data() + t * NE, L.gate_inp_b.data(), NE);
  RouterParams rp = router_;
  if (!L.exp_probs_b.empty()) rp.probs_bias = L.exp_probs_b.data();
  for (int64_t t = 0; t < n; ++t)
    experts_->route(il, rp, S.logits.data() + t * NE, S.ids.data() + t * U, S.weights.data() + t * U);
  routing_[static_cast<size_t>(il)].assign(S.ids.end() - U, S.ids.end());

  // 2. Grouping: tokens[first[e] .. first[e+1]) are the tokens that chose e, and the
  // (token, slot) pair's output goes to moe_out row first[e] + its index in that list.
  S.first.assign(static_cast<size_t>(NE) + 1, 0);
  for (size_t i = 0; i < S.ids.size(); ++i) {
    const int32_t e = S.ids[i];
    if (e < 0 || e >= NE) fail("expert store: layer ", il, " routed to expert ", e, " of ", NE);
    ++S.first[static_cast<size_t>(e) + 1];
  }
  S.used.clear();
  for (int64_t e = 0; e < NE; ++e)
    if (S.first[static_cast<size_t>(e) + 1] > 0) S.used.push_back(static_cast<int32_t>(e));
  std::partial_sum(S.first.begin(), S.first.end(), S.first.begin());
  S.tokens.resize(S.ids.size());
  S.fill.assign(S.first.begin(), S.first.end() - 1);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < U; ++i) {
      const size_t e = static_cast<size_t>(S.ids[static_cast<size_t>(t * U + i)]);
      S.row_of[static_cast<size_t>(t * U + i)] = S.fill[e];
      S.tokens[static_cast<size_t>(S.fill[e]++)] = static_cast<int32_t>(t);
    }
  const size_t pairs = S.ids.size();
  S.moe_gate.resize(pairs * static_cast<size_t>(ff));
  S.moe_up.resize(pairs * static_cast<size_t>(ff));
  S.moe_out.resize(pairs * static_cast<size_t>(E));
  if (L.has_shexp) S.ffn_out.resize(rows * static_cast<size_t>(E));

  // 3. Experts, wave by wave. A store that names no capacity pins one token's choice.
  tm.reset();
  const bool decode_rows = std::all_of(spans_.begin(), spans_.end(), [](const SeqSpan& sp) { return sp.n == 1; });
  const int64_t capacity = experts_->capacity();
  const size_t wave = static_cast<size_t>(std::max<int64_t>(capacity > 0 ? capacity : U, 1));
  for (size_t w0 = 0; w0 < S.used.size(); w0 += wave) {
    const std::span<const int32_t> ws(S.used.data() + w0, std::min(S.used.size() - w0, wave));
    experts_->request(il, ws);
    // Next-layer prediction (expert_prefetch.h) for a decode step, one token of each
    // sequence: its reads overlap this layer's compute. The experts just requested are
    // pinned, so a prefetch never evicts them. Not for a prompt chunk (it needs nearly
    // every expert of the next layer anyway, and its waves may fill the pool). For several
    // sequences the prefetcher reads the union of their guesses only while the store's
    // figures show that the read guesses get used (expert_prefetch.h, "Batched steps").
    if (prefetch_ && decode_rows) {
      prefetch_->on_selected(il, S.ids.data(), S.ids.size());
      try {
        prefetch_->predict_next(il, S.x.data(), n, *experts_, pool_);
      } catch (...) {
        experts_->cancel(il);  // unpin what request() pinned
        throw;
      }
    }
    moe_wave(il, n, ws, /*with_shared=*/w0 == 0 && L.has_shexp);
  }

  // 4. Combine in selection order, per token.
  tm.emplace(PrefillPhase::Combine);
  pool_.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t* rw = S.row_of.data() + t * U;
      const float* wt = S.weights.data() + t * U;
      float* acc = S.proj.data() + t * E;
      const float* o0 = S.moe_out.data() + rw[0] * E;
      for (int64_t j = 0; j < E; ++j) acc[j] = o0[j] * wt[0];
      for (int64_t i = 1; i < U; ++i) {
        const float* oi = S.moe_out.data() + rw[i] * E;
        for (int64_t j = 0; j < E; ++j) acc[j] = acc[j] + oi[j] * wt[i];
      }
      if (L.has_shexp) {
        const float* sh = S.ffn_out.data() + t * E;
        if (cfg_.arch.shared_expert == SharedExpert::Gated) {
          // llama.cpp computes the sigmoid as silu(g) / g.
          const float g = S.shexp_logit[static_cast<size_t>(t)];
          const float s = g == 0.0f ? 0.5f : silu(g) / g;
          for (int64_t j = 0; j < E; ++j) acc[j] = acc[j] + sh[j] * s;
        } else {
          for (int64_t j = 0; j < E; ++j) acc[j] = acc[j] + sh[j];
        }
      }
    }
  });
}

// The requested experts `ws` of layer il, group by group as the store hands them out.
void ModelImpl::moe_wave(int il, int64_t n, std::span<const int32_t> ws, bool with_shared) {
  Scratch& S = s_;
  const LayerWeights& L = w_->layers[static_cast<size_t>(il)];
  const int64_t E = cfg_.n_embd, ff = cfg_.n_ff_exp;
  S.pending.assign(ws.begin(), ws.end());
  std::vector<AcquiredExpert>& group = S.group;
  group.clear();
  try {
    while (!S.pending.empty()) {
      group.clear();
      if (experts_->acquire_ready(il, S.pending, group) == 0)
        fail("expert store: layer ", il, " handed out ", ws.size() - S.pending.size(), " of ", ws.size(),
             " requested experts");
      for (const AcquiredExpert& a : group) {
        const auto it = std::find(S.pending.begin(), S.pending.end(), a.expert);
        if (it == S.pending.end())
          fail("expert store: layer ", il, " handed out expert ", a.expert, " which was not requested");
        S.pending.erase(it);
        if (a.view.gate.rows != ff || a.view.up.rows != ff || a.view.down.rows != E)
          fail("expert ", a.expert, " of layer ", il, ": expected gate/up ", ff, " rows and down ", E, " rows");
      }
      const size_t ng = group.size();
      if (S.exp_in_gate.size() < ng) {
        S.exp_in_gate.resize(ng);
        S.exp_in_up.resize(ng);
        S.exp_in_down.resize(ng);
      }
      // The rows of each expert's tokens. An expert every token of the span chose (always,
      // for one token) multiplies the layer input as it is; the others gather their rows.
      // The conversions happen here, outside the parallel region (they use the pool).
      std::optional<PrefillTimer> tm;
      tm.emplace(PrefillPhase::Gather);
      auto count = [&](size_t j) {
        const size_t e = static_cast<size_t>(group[j].expert);
        return S.first[e + 1] - S.first[e];
      };
      for (size_t j = 0; j < ng; ++j) {
        S.acts.get(group[j].view.gate.type);
        S.acts.get(group[j].view.up.type);
      }
      dynamic_for(static_cast<int64_t>(ng), 1, pool_, [&](int64_t j0, int64_t j1) {
        for (int64_t jj = j0; jj < j1; ++jj) {
          const size_t j = static_cast<size_t>(jj);
          if (count(j) == n) continue;
          const size_t e = static_cast<size_t>(group[j].expert);
          const std::span<const int32_t> tk(S.tokens.data() + S.first[e], static_cast<size_t>(count(j)));
          const ExpertView& v = group[j].view;
          gather_activations(S.acts.get(v.gate.type), tk, S.exp_in_gate[j]);
          if (quant_traits(v.up.type).vec_dot_type != quant_traits(v.gate.type).vec_dot_type)
            gather_activations(S.acts.get(v.up.type), tk, S.exp_in_up[j]);
        }
      });
      auto input = [&](size_t j, const MatrixRef& m) -> const QuantizedActivations* {
        if (count(j) == n) return &S.acts.get(m.type);
        const bool gate_type = quant_traits(m.type).vec_dot_type == quant_traits(group[j].view.gate.type).vec_dot_type;
        return gate_type ? &S.exp_in_gate[j] : &S.exp_in_up[j];
      };

      // gate = G x, up = U x for every expert of the group (and the shared expert).
      tm.emplace(PrefillPhase::GateUp);
      S.jobs.clear();
      for (size_t j = 0; j < ng; ++j) {
        const size_t e = static_cast<size_t>(group[j].expert);
        const ExpertView& v = group[j].view;
        S.jobs.push_back({v.gate, input(j, v.gate), S.moe_gate.data() + S.first[e] * ff});
        S.jobs.push_back({v.up, input(j, v.up), S.moe_up.data() + S.first[e] * ff});
      }
      const int64_t sff = L.gate_shexp.rows;
      if (with_shared) {
        S.gate.resize(static_cast<size_t>(n * sff));
        S.up.resize(static_cast<size_t>(n * sff));
        S.jobs.push_back({L.gate_shexp, &S.acts.get(L.gate_shexp.type), S.gate.data()});
        S.jobs.push_back({L.up_shexp, &S.acts.get(L.up_shexp.type), S.up.data()});
      }
      matmul_multi(S.jobs, pool_);

      // h = silu(gate) * up per (token, expert) row (gpt-oss: biases first, then the clamped
      // swiglu_oai), converted for the expert's down matrix.
      tm.emplace(PrefillPhase::Swiglu);
      const bool oai = cfg_.arch.swiglu_oai;
      dynamic_for(static_cast<int64_t>(ng), 1, pool_, [&](int64_t j0, int64_t j1) {
        for (int64_t jj = j0; jj < j1; ++jj) {
          const size_t j = static_cast<size_t>(jj);
          const size_t e = static_cast<size_t>(group[j].expert);
          const int64_t cnt = count(j);
          float* g = S.moe_gate.data() + S.first[e] * ff;
          float* u = S.moe_up.data() + S.first[e] * ff;
          const ExpertView& v = group[j].view;
          for (int64_t r = 0; r < cnt; ++r) {
            if (v.gate_b) add_inplace(g + r * ff, v.gate_b, ff);  // the expert's own biases (gpt-oss)
            if (v.up_b) add_inplace(u + r * ff, v.up_b, ff);
            if (oai) swiglu_oai(g + r * ff, u + r * ff, g + r * ff, ff);
            else swiglu(g + r * ff, u + r * ff, g + r * ff, ff);
          }
          quantize_activations(g, cnt, ff, quant_traits(group[j].view.down.type).vec_dot_type, S.exp_in_down[j]);
        }
      });
      if (with_shared) {
        for (int64_t t = 0; t < n; ++t) swiglu(S.gate.data() + t * sff, S.up.data() + t * sff, S.gate.data() + t * sff, sff);
        quantize_activations(S.gate.data(), n, sff, quant_traits(L.down_shexp.type).vec_dot_type, S.down_act,
                             n > 1 ? &pool_ : nullptr);
      }

      // out = D h.
      tm.emplace(PrefillPhase::Down);
      S.jobs.clear();
      for (size_t j = 0; j < ng; ++j) {
        const size_t e = static_cast<size_t>(group[j].expert);
        S.jobs.push_back({group[j].view.down, &S.exp_in_down[j], S.moe_out.data() + S.first[e] * E});
      }
      if (with_shared) S.jobs.push_back({L.down_shexp, &S.down_act, S.ffn_out.data()});
      matmul_multi(S.jobs, pool_);
      for (size_t j = 0; j < ng; ++j) {
        const float* db = group[j].view.down_b;
        if (!db) continue;
        const size_t e = static_cast<size_t>(group[j].expert);
        float* o = S.moe_out.data() + S.first[e] * E;
        for (int64_t r = 0; r < count(j); ++r) add_inplace(o + r * E, db, E);
      }
      tm.reset();
      with_shared = false;

      if (!S.pending.empty()) experts_early_ += ng;  // others are still being read
      // Release as soon as computed, so the slots become evictable for the reads that follow.
      for (AcquiredExpert& a : group) {
        const int32_t e = a.expert;
        a.expert = -1;
        experts_->release(il, e);
      }
    }
  } catch (...) {
    for (const AcquiredExpert& a : group)
      if (a.expert >= 0) experts_->release(il, a.expert);
    experts_->cancel(il);  // unpins what request() pinned and nobody acquired
    throw;
  }
}

}  // namespace swapmoe
