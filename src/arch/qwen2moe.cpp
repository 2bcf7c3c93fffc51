// qwen2moe: Qwen1.5-MoE, Qwen2-57B-A14B (llama.cpp src/models/qwen2moe.cpp).
// Grouped-query attention with q/k/v biases, NEOX rope; softmax gating without
// renormalisation; one shared expert whose output is scaled by a sigmoid gate
// (ffn_gate_inp_shexp).

#include "arch/arch.h"

namespace swapmoe {
namespace {

void read_keys(const ArchKeys& k, ModelConfig& c) {
  (void)k;
  // expert_shared_feed_forward_length (a common key) defaults to the dense width.
  if (c.n_ff_shexp == 0) c.n_ff_shexp = c.n_ff;
}

void write_keys(const ModelConfig& c, ArchKeyWriter& w) { w.u32("expert_shared_feed_forward_length", c.n_ff_shexp); }

}  // namespace

extern const ArchSpec kQwen2MoeSpec = {
    .name = "qwen2moe",
    .features = {.qkv_bias = true, .shared_expert = SharedExpert::Gated},
    .rope_type = RopeType::Neox,
    .gating = GatingFunc::Softmax,
    .weights_norm = false,
    .read_keys = read_keys,
    .write_keys = write_keys,
};

}  // namespace swapmoe
