// The rope parameters of a model's attention, as llama.cpp derives them from the
// hyperparameters (llama_context's yarn_attn_factor and the per-architecture YaRN rule).
// The rotation itself is ops/rope.cpp.

#include <cmath>

#include "arch/arch.h"

namespace swapmoe {

RopeParams rope_params(const ModelConfig& cfg) {
  RopeParams p;
  p.type = cfg.rope_type;
  p.n_rot = cfg.n_rot;
  p.freq_base = cfg.rope_freq_base;
  // llama.cpp: freq_scale = 1 / rope.scaling.factor (absent or 0 -> 1), forced to 1 when
  // the scaling type is "none".
  const float factor = cfg.rope_scaling_factor == 0.0f ? 1.0f : cfg.rope_scaling_factor;
  p.freq_scale = cfg.rope_scaling == RopeScaling::None ? 1.0f : 1.0f / factor;
  // cparams.n_ctx_orig_yarn: the GGUF original_context_length, else the training context.
  p.n_ctx_orig = cfg.rope_orig_ctx != 0 ? cfg.rope_orig_ctx : cfg.n_ctx_train;
  // cparams.yarn_ext_factor defaults to -1 ("unset"), which llama_context turns into
  // 1 for yarn scaling and 0 otherwise.
  p.ext_factor = cfg.rope_scaling == RopeScaling::Yarn ? 1.0f : 0.0f;
  p.beta_fast = 32.0f;
  p.beta_slow = 1.0f;

  // cparams.yarn_attn_factor, as llama_context computes it. Only the deepseek2 YaRN
  // rule reads rope.scaling.yarn_log_multiplier; for the others llama.cpp's hparams value
  // stays 0 even if the key is present.
  float attn_factor = 1.0f;
  if (p.ext_factor != 0.0f) {
    auto get_mscale = [](float scale, float mscale) {
      return scale <= 1.0f ? 1.0f : (0.1f * mscale * logf(scale) + 1.0f);
    };
    const float yfactor = 1.0f / p.freq_scale;
    const float log_mul = cfg.arch.yarn == YarnRule::Deepseek2 ? cfg.rope_yarn_log_mul : 0.0f;
    if (log_mul != 0.0f) {
      float mscale = 1.0f;
      const float mscale_all_dims = log_mul;
      if (cfg.arch.yarn == YarnRule::Deepseek2 && mscale_all_dims != 1.0f) mscale = mscale_all_dims;
      attn_factor = get_mscale(yfactor, mscale) / get_mscale(yfactor, mscale_all_dims);
    } else {
      attn_factor = get_mscale(yfactor, 1.0f);
    }
    // rope_yarn multiplies by (1 + 0.1 ln(factor)) itself; llama.cpp cancels that here.
    attn_factor *= 1.0f / (1.0f + 0.1f * logf(yfactor));
  }
  // llama.cpp finally multiplies by hparams.rope_attn_factor (rope.scaling.attn_factor),
  // which ModelConfig does not carry: none of our architectures' converters write it.
  p.attn_factor = attn_factor;
  return p;
}

}  // namespace swapmoe
