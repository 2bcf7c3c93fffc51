#pragma once
// Rotary position embeddings as llama.cpp applies them (ggml_rope_ext): "normal" rotates
// adjacent pairs (x[2i], x[2i+1]); "neox" rotates (x[i], x[i + n_rot/2]). YaRN scaling
// follows ggml's rope_yarn (ramp between extrapolation and interpolation, plus the
// attention-magnitude factor mscale).

#include <cstdint>


namespace swapmoe {

enum class RopeType { Norm, Neox };  // Norm: adjacent pairs; Neox: pairs offset by n_rot/2

struct RopeParams {
  RopeType type = RopeType::Neox;
  int64_t n_rot = 0;            // dimensions rotated at the start of each head
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;      // 1 / rope.scaling.factor for linear and yarn
  int64_t n_ctx_orig = 0;       // original training context (yarn)
  float ext_factor = 0.0f;      // yarn: 1 when scaling is yarn, else 0
  float attn_factor = 1.0f;
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
};

// The parameters of a model's attention come from its configuration: rope_params(cfg)
// in arch/arch.h.

// Rotates n_heads heads of head_dim floats each, in place, for position pos.
void rope_apply(const RopeParams& p, float* x, int64_t n_heads, int64_t head_dim, int64_t pos);

}  // namespace swapmoe
