// The MoE half of a layer for a chunk of tokens (see forward_batch.h):
//
//   1. router logits for all tokens in one matmul; each token routed by the expert store
//      (ExpertStore::route, the same call ffn.cpp makes per token);
//   2. the (token, slot) pairs grouped by expert: expert e gets the list of tokens that
//      chose it, in token order, and each pair a row of moe_out;
//   3. the chosen experts in waves that the store can pin at once: request the wave,
//      acquire it, run gate/up of all its experts in one parallel region (each expert a
//      matmul over its gathered token rows, so its weights are read once per chunk), then
//      swiglu, then all down products in a second region, then release;
//   4. per token, the weighted outputs added in selection order exactly as ffn.cpp adds
//      them (acc = out_0 w_0; acc += out_i w_i; shared expert; x += acc), so every token's
//      result is bitwise equal to forward()'s.
//
// Under a memory budget (ExpertCache) each expert a chunk needs is thus loaded at most
// once per chunk and layer, however many tokens chose it.

#include <algorithm>
#include <numeric>
#include <optional>

#include "cache/expert_cache.h"
#include "expert/expert_store_resident.h"
#include "model/forward_batch.h"
#include "model/model_budget.h"
#include "model/model_impl.h"
#include "ops/dynamic_for.h"
#include "ops/activation.h"
#include "quant/quant.h"
#include "util/error.h"

namespace swapmoe {

namespace {

// How many experts of one layer the store can pin at once. A resident store holds them
// all. An ExpertCache guarantees n_expert_used per pool, and a layer's pool holds at least
// its share of the slots (one shared pool, or per-layer quotas of n_slots / n_moe layers).
// Any other store is only known to handle n_expert_used at a time.
int64_t wave_size(ExpertStore& store, const ModelConfig& cfg) {
  if (dynamic_cast<ResidentExpertStore*>(&store)) return cfg.n_expert;
  const int64_t used = std::max<int64_t>(cfg.n_expert_used, 1);
  if (auto* c = dynamic_cast<ExpertCache*>(&store))
    return std::max(used, static_cast<int64_t>(c->n_slots()) / std::max<int64_t>(cfg.n_moe_layers(), 1));
  return used;
}

}  // namespace

void ModelImpl::moe_batch(int il, int64_t n) {
  BatchScratch& B = *batch_;
  const LayerWeights& L = w_->layers[static_cast<size_t>(il)];
  const int64_t E = cfg_.n_embd, NE = cfg_.n_expert, U = cfg_.n_expert_used, ff = cfg_.n_ff_exp;
  const size_t rows = static_cast<size_t>(n);

  // 1. Routing.
  std::optional<PrefillTimer> tm;
  tm.emplace(PrefillPhase::Router);
  B.logits.resize(rows * static_cast<size_t>(NE));
  B.ids.resize(rows * static_cast<size_t>(U));
  B.weights.resize(rows * static_cast<size_t>(U));
  B.row_of.resize(rows * static_cast<size_t>(U));
  {
    std::vector<MatmulJob> jobs = {{L.gate_inp, &B.acts.get(L.gate_inp.type), B.logits.data()}};
    if (L.gate_inp_shexp.data) {
      B.shexp_logit.resize(rows);
      jobs.push_back({L.gate_inp_shexp, &B.acts.get(L.gate_inp_shexp.type), B.shexp_logit.data()});
    }
    matmul_multi(jobs, pool_);
  }
  RouterParams rp = router_;
  if (!L.exp_probs_b.empty()) rp.probs_bias = L.exp_probs_b.data();
  for (int64_t t = 0; t < n; ++t)
    experts_->route(il, rp, B.logits.data() + t * NE, B.ids.data() + t * U, B.weights.data() + t * U);
  routing_[static_cast<size_t>(il)].assign(B.ids.end() - U, B.ids.end());

  // 2. Grouping: tokens[first[e] .. first[e+1]) are the tokens that chose e, and the
  // (token, slot) pair's output goes to moe_out row first[e] + its index in that list.
  std::vector<int64_t> first(static_cast<size_t>(NE) + 1, 0);
  for (size_t i = 0; i < B.ids.size(); ++i) {
    const int32_t e = B.ids[i];
    if (e < 0 || e >= NE) fail("expert store: layer ", il, " routed to expert ", e, " of ", NE);
    ++first[static_cast<size_t>(e) + 1];
  }
  std::partial_sum(first.begin(), first.end(), first.begin());
  std::vector<int32_t> tokens(B.ids.size());
  {
    std::vector<int64_t> fill(first.begin(), first.end() - 1);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < U; ++i) {
        const size_t e = static_cast<size_t>(B.ids[static_cast<size_t>(t * U + i)]);
        B.row_of[static_cast<size_t>(t * U + i)] = fill[e];
        tokens[static_cast<size_t>(fill[e]++)] = static_cast<int32_t>(t);
      }
  }
  std::vector<int32_t> used;
  for (int64_t e = 0; e < NE; ++e)
    if (first[static_cast<size_t>(e) + 1] > first[static_cast<size_t>(e)]) used.push_back(static_cast<int32_t>(e));

  const size_t pairs = B.ids.size();
  B.moe_gate.resize(pairs * static_cast<size_t>(ff));
  B.moe_up.resize(pairs * static_cast<size_t>(ff));
  B.moe_out.resize(pairs * static_cast<size_t>(E));

  // 3. Experts, wave by wave.
  tm.reset();
  const int64_t wave = wave_size(*experts_, cfg_);
  std::vector<ExpertView> views;
  std::vector<MatmulJob> jobs;
  for (size_t w0 = 0; w0 < used.size(); w0 += static_cast<size_t>(wave)) {
    const std::span<const int32_t> ws(used.data() + w0, std::min(used.size() - w0, static_cast<size_t>(wave)));
    const size_t nw = ws.size();
    experts_->request(il, ws);
    acquire_experts(*experts_, il, ws, views);
    try {
      if (B.exp_in_gate.size() < nw) {
        B.exp_in_gate.resize(nw);
        B.exp_in_up.resize(nw);
        B.exp_in_down.resize(nw);
      }
      tm.emplace(PrefillPhase::Gather);
      // Gather each expert's token rows from the layer input, converted once per type.
      // The conversions happen here, outside the parallel region (they use the pool).
      for (size_t j = 0; j < nw; ++j) {
        B.acts.get(views[j].gate.type);
        B.acts.get(views[j].up.type);
      }
      dynamic_for(static_cast<int64_t>(nw), 1, pool_, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) {
          const size_t e = static_cast<size_t>(ws[static_cast<size_t>(j)]);
          const std::span<const int32_t> tk(tokens.data() + first[e], static_cast<size_t>(first[e + 1] - first[e]));
          const ExpertView& v = views[static_cast<size_t>(j)];
          const GgmlType gt = quant_traits(v.gate.type).vec_dot_type, ut = quant_traits(v.up.type).vec_dot_type;
          gather_activations(B.acts.get(v.gate.type), tk, B.exp_in_gate[static_cast<size_t>(j)]);
          if (ut != gt) gather_activations(B.acts.get(v.up.type), tk, B.exp_in_up[static_cast<size_t>(j)]);
        }
      });
      tm.emplace(PrefillPhase::GateUp);
      jobs.clear();
      for (size_t j = 0; j < nw; ++j) {
        const size_t e = static_cast<size_t>(ws[j]);
        const ExpertView& v = views[j];
        if (v.gate.rows != ff || v.up.rows != ff || v.down.rows != E)
          fail("expert ", e, " of layer ", il, ": expected gate/up ", ff, " rows and down ", E, " rows");
        const bool same = quant_traits(v.up.type).vec_dot_type == quant_traits(v.gate.type).vec_dot_type;
        jobs.push_back({v.gate, &B.exp_in_gate[j], B.moe_gate.data() + first[e] * ff});
        jobs.push_back({v.up, same ? &B.exp_in_gate[j] : &B.exp_in_up[j], B.moe_up.data() + first[e] * ff});
      }
      matmul_multi(jobs, pool_);
      tm.emplace(PrefillPhase::Swiglu);
      // h = silu(gate) * up per (token, expert) row, converted for the expert's down matrix.
      dynamic_for(static_cast<int64_t>(nw), 1, pool_, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) {
          const size_t e = static_cast<size_t>(ws[static_cast<size_t>(j)]);
          const int64_t cnt = first[e + 1] - first[e];
          float* g = B.moe_gate.data() + first[e] * ff;
          const float* u = B.moe_up.data() + first[e] * ff;
          for (int64_t r = 0; r < cnt; ++r) swiglu(g + r * ff, u + r * ff, g + r * ff, ff);
          quantize_activations(g, cnt, ff, quant_traits(views[static_cast<size_t>(j)].down.type).vec_dot_type,
                               B.exp_in_down[static_cast<size_t>(j)]);
        }
      });
      tm.emplace(PrefillPhase::Down);
      jobs.clear();
      for (size_t j = 0; j < nw; ++j) {
        const size_t e = static_cast<size_t>(ws[j]);
        jobs.push_back({views[j].down, &B.exp_in_down[j], B.moe_out.data() + first[e] * E});
      }
      matmul_multi(jobs, pool_);
      tm.reset();
    } catch (...) {
      for (int32_t e : ws) experts_->release(il, e);
      throw;
    }
    for (int32_t e : ws) experts_->release(il, e);
  }

  // The shared expert over all tokens (deepseek2: unweighted; qwen2moe: sigmoid gate).
  if (L.has_shexp) {
    tm.emplace(PrefillPhase::Shared);
    B.ffn_out.resize(rows * static_cast<size_t>(E));
    dense_ffn_batch({L.gate_shexp, L.up_shexp, L.down_shexp}, n, B.ffn_out.data());
  }

  // 4. Combine in selection order, per token, as ffn.cpp does.
  tm.emplace(PrefillPhase::Combine);
  pool_.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
    std::vector<float> acc(static_cast<size_t>(E));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t* rw = B.row_of.data() + t * U;
      const float* wt = B.weights.data() + t * U;
      const float* o0 = B.moe_out.data() + rw[0] * E;
      for (int64_t j = 0; j < E; ++j) acc[j] = o0[j] * wt[0];
      for (int64_t i = 1; i < U; ++i) {
        const float* oi = B.moe_out.data() + rw[i] * E;
        for (int64_t j = 0; j < E; ++j) acc[j] = acc[j] + oi[j] * wt[i];
      }
      if (L.has_shexp) {
        const float* sh = B.ffn_out.data() + t * E;
        if (L.gate_inp_shexp.data) {
          // llama.cpp computes the sigmoid as silu(g) / g.
          const float g = B.shexp_logit[static_cast<size_t>(t)];
          const float s = g == 0.0f ? 0.5f : silu(g) / g;
          for (int64_t j = 0; j < E; ++j) acc[j] = acc[j] + sh[j] * s;
        } else {
          for (int64_t j = 0; j < E; ++j) acc[j] = acc[j] + sh[j];
        }
      }
      float* x = B.x.data() + t * E;
      for (int64_t j = 0; j < E; ++j) x[j] = acc[j] + x[j];
    }
  });
}

}  // namespace swapmoe
