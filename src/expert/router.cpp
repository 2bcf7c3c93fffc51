// Expert selection, step by step as llama.cpp's build_moe_ffn (src/llama-graph.cpp) runs it
// on the CPU backend:
//   probs      = softmax(logits) | sigmoid(logits) | logits (SoftmaxWeight)  [n_expert]
//   selection  = probs + exp_probs_b (when present)
//   groups     : score(g) = sum of the 2 best selection values in g; keep the
//                n_groups_used best groups, the others become -inf
//   ids        = argsort_desc(selection)[0..n_used)   (std::sort, like ggml's argsort)
//   weights    = probs[ids] (the UNbiased probabilities); SoftmaxWeight: softmax(weights)
//   norm       : weights /= max(sum(weights), 6.103515625e-5)
//   scale      : weights *= weights_scale (skipped when the scale is 0 or 1)
// Float details that change bits follow ggml: softmax sums the exponentials in double and
// scales by the float-converted reciprocal; sums of rows accumulate in double.
//
// Ties: ggml's argsort is std::sort on the index array 0..n-1 with a strict "greater"
// comparator. std::sort is not stable, so tie order is whatever libstdc++'s introsort
// produces; we run the very same call on the very same input to get the same order.

#include "expert/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "util/error.h"

namespace swapmoe {

namespace {

// ggml_argsort(..., GGML_SORT_ORDER_DESC) on one row of n values.
void argsort_desc(const float* v, int64_t n, std::vector<int32_t>& idx) {
  idx.resize(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [v](int32_t a, int32_t b) { return v[a] > v[b]; });
}

// ggml_soft_max without mask or scale (ggml_vec_soft_max_f32 + ggml_vec_scale_f32).
void softmax_ggml(const float* x, float* y, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = expf(x[i] - mx);
    sum += static_cast<double>(y[i]);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

}  // namespace

RouterParams router_params(const ModelConfig& cfg) {
  RouterParams p;
  p.gating = cfg.gating;
  p.n_expert = cfg.n_expert;
  p.n_used = cfg.n_expert_used;
  p.norm_weights = cfg.expert_weights_norm;
  // llama.cpp reads expert_weights_scale only where the architecture uses it; for the others
  // the hparams value stays 0 ("no scaling") whatever the file says.
  p.weights_scale = cfg.arch.weights_scale ? cfg.expert_weights_scale : 1.0f;
  p.n_groups = cfg.n_expert_groups;
  p.n_groups_used = cfg.n_expert_groups_used;
  p.probs_bias = nullptr;  // per layer: the caller points it at blk.N.exp_probs_b
  return p;
}

void select_experts(const RouterParams& p, const float* logits, int32_t* ids, float* weights,
                    const uint8_t* eligible, float* probs_out) {
  const int64_t n = p.n_expert;
  const int64_t k = p.n_used;
  if (n <= 0 || k <= 0 || k > n) fail("router: invalid expert counts (n_expert ", n, ", n_used ", k, ")");

  // Scratch reused across calls: one router call per token and layer must not allocate.
  thread_local std::vector<float> probs, sel, group_scores, tmp;
  thread_local std::vector<int32_t> order, group_order;
  thread_local std::vector<int64_t> group_ok;
  probs.resize(n);
  sel.resize(n);

  if (p.gating == GatingFunc::Softmax) {
    softmax_ggml(logits, probs.data(), n);
  } else if (p.gating == GatingFunc::Sigmoid) {
    for (int64_t i = 0; i < n; ++i) probs[i] = 1.0f / (1.0f + expf(-logits[i]));
  } else {
    // SoftmaxWeight: llama.cpp selects on the logits themselves (probs = logits) and runs
    // the softmax over the chosen ones below. Importance tracking gets the softmax over all.
    std::copy(logits, logits + n, probs.begin());
    if (probs_out) softmax_ggml(logits, probs_out, n);
  }
  if (probs_out && p.gating != GatingFunc::SoftmaxWeight) std::copy(probs.begin(), probs.end(), probs_out);

  for (int64_t i = 0; i < n; ++i) sel[i] = p.probs_bias ? probs[i] + p.probs_bias[i] : probs[i];

  // SwapMoE masking: an ineligible expert can never win. This happens before the group
  // stage, so groups are scored by their eligible experts only.
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (eligible) {
    int64_t n_ok = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!eligible[i]) sel[i] = neg_inf;
      else ++n_ok;
    }
    if (n_ok < k) fail("router: only ", n_ok, " eligible experts, ", k, " needed");
  }

  if (p.n_groups > 1) {
    const int64_t g = p.n_groups;
    if (n % g != 0 || p.n_groups_used <= 0 || p.n_groups_used > g)
      fail("router: ", g, " expert groups do not fit ", n, " experts / ", p.n_groups_used, " used groups");
    const int64_t per = n / g;
    if (per < 2) fail("router: expert groups need at least 2 experts each (", per, ")");
    group_scores.resize(g);
    group_ok.resize(g);
    for (int64_t gi = 0; gi < g; ++gi) {
      const float* row = sel.data() + gi * per;
      int64_t ok = per;
      if (eligible) ok = std::count_if(eligible + gi * per, eligible + (gi + 1) * per, [](uint8_t v) { return v != 0; });
      group_ok[gi] = ok;
      argsort_desc(row, per, order);
      // ggml_sum_rows accumulates in double and stores a float. Under a mask a group with
      // one eligible expert is scored by that expert alone and one with none is -inf
      // (without a mask every group has per >= 2 experts, as in llama.cpp).
      if (ok >= 2) {
        const double s = static_cast<double>(row[order[0]]) + static_cast<double>(row[order[1]]);
        group_scores[gi] = static_cast<float>(s);
      } else {
        group_scores[gi] = ok == 1 ? row[order[0]] : neg_inf;
      }
    }
    argsort_desc(group_scores.data(), g, group_order);
    // Keep the n_groups_used best groups; everything outside them becomes -inf (ggml_fill
    // + ggml_set_rows). Under a mask the kept groups may hold fewer than k eligible
    // experts (llama.cpp never meets that case): then the next best groups are kept too,
    // until k eligible experts are in reach. Without a mask this adds nothing.
    tmp.assign(n, neg_inf);
    int64_t covered = 0;
    for (int64_t j = 0; j < g; ++j) {
      if (j >= p.n_groups_used && (!eligible || covered >= k)) break;
      const int64_t gi = group_order[j];
      covered += group_ok[gi];
      std::copy(sel.begin() + gi * per, sel.begin() + (gi + 1) * per, tmp.begin() + gi * per);
    }
    sel.swap(tmp);
  }

  argsort_desc(sel.data(), n, order);

  double sum = 0.0;
  for (int64_t j = 0; j < k; ++j) {
    ids[j] = order[j];
    weights[j] = probs[order[j]];
    sum += static_cast<double>(weights[j]);
  }
  if (p.gating == GatingFunc::SoftmaxWeight) {
    // ggml_soft_max over the k chosen logits, in selection order.
    softmax_ggml(weights, weights, k);
  }
  if (p.norm_weights) {
    // ggml_sum_rows (double accumulation, float result), then clamp to the smallest normal
    // half so that an all-zero row cannot divide by zero.
    const float s = std::max(static_cast<float>(sum), 6.103515625e-5f);
    for (int64_t j = 0; j < k; ++j) weights[j] = weights[j] / s;
  }
  if (p.weights_scale != 0.0f && p.weights_scale != 1.0f) {
    for (int64_t j = 0; j < k; ++j) weights[j] *= p.weights_scale;
  }
}

}  // namespace swapmoe
