// gpt-oss: OpenAI's gpt-oss-20b / gpt-oss-120b (llama.cpp LLM_ARCH_OPENAI_MOE,
// src/models/openai-moe-iswa.cpp). Grouped-query attention with q/k/v/o biases and a
// learned sink logit per head; even layers attend through a sliding window
// (attention.sliding_window, 128), odd layers to everything, both with NEOX rope and YaRN
// (the windowed layers at rope.freq_base_swa when the file gives one). The FFN's input norm
// is stored as post_attention_norm. The router has a bias; the top-k are chosen on the
// logits and a softmax runs over the chosen ones; each expert has biases on gate/up/down and
// the clamped SwiGLU (swiglu_oai: alpha 1.702, limit 7, up + 1).

#include "arch/arch.h"

namespace swapmoe {
namespace {

void read_keys(const ArchKeys& k, ModelConfig& c) {
  c.n_swa = k.req("attention.sliding_window", 1, int64_t(1) << 30);
  c.rope_freq_base_swa = static_cast<float>(k.optf("rope.freq_base_swa", c.rope_freq_base));
}

void write_keys(const ModelConfig& c, ArchKeyWriter& w) {
  w.u32("attention.sliding_window", c.n_swa);
  if (c.rope_freq_base_swa != 0.0f && c.rope_freq_base_swa != c.rope_freq_base)
    w.f32("rope.freq_base_swa", c.rope_freq_base_swa);
}

}  // namespace

extern const ArchSpec kGptOssSpec = {
    .name = "gpt-oss",
    .features = {.qkv_bias = true,
                 .o_bias = true,
                 .sinks = true,
                 .sliding_window_pattern = 2,
                 .router_bias = true,
                 .expert_biases = true,
                 .swiglu_oai = true,
                 .ffn_norm = "post_attention_norm"},
    .rope_type = RopeType::Neox,
    .gating = GatingFunc::SoftmaxWeight,
    .weights_norm = false,
    .read_keys = read_keys,
    .write_keys = write_keys,
};

}  // namespace swapmoe
