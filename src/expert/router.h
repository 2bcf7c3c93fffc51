#pragma once
// Expert selection for one token: router logits -> chosen experts and their weights.
// It is a function of its own because later modes (SwapMoE masked gating, the exactness
// knob) change which experts are eligible without touching the forward pass.

#include <cstdint>

#include "arch/config.h"

namespace swapmoe {

struct RouterParams {
  GatingFunc gating = GatingFunc::Softmax;
  int64_t n_expert = 0;
  int64_t n_used = 0;
  bool norm_weights = false;     // renormalise the chosen weights to sum 1
  float weights_scale = 1.0f;    // multiply the final weights
  int64_t n_groups = 0;          // group-limited selection (deepseek2), 0/1 = off
  int64_t n_groups_used = 0;
  const float* probs_bias = nullptr;  // exp_probs_b: added to the scores for *selection* only
};

RouterParams router_params(const ModelConfig& cfg);

// logits[n_expert] -> ids[n_used], weights[n_used], computed exactly as llama.cpp's
// build_moe_ffn does. `eligible` (optional, n_expert bytes) masks experts out of the
// selection (nullptr: all eligible; at least n_used must be eligible, else Error). The
// weights of the chosen experts are normalised as the architecture does (norm_weights,
// weights_scale), never renormalised over the eligible set. With group-limited routing a
// group is scored by its eligible experts (top-2 sum; one eligible: its score; none:
// -inf), and when the n_groups_used best groups hold fewer than n_used eligible experts
// the next best groups are added until they do. `probs_out` (optional, n_expert) receives the
// unmasked router probabilities (softmax or sigmoid), for importance tracking.
void select_experts(const RouterParams& p, const float* logits, int32_t* ids, float* weights,
                    const uint8_t* eligible = nullptr, float* probs_out = nullptr);

}  // namespace swapmoe
