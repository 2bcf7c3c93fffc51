// glm4moe: GLM-4.5, GLM-4.5-Air, GLM-4.6 (llama.cpp src/models/glm4-moe.cpp).
// Grouped-query attention with q/k/v biases and NEOX rope over the first half of each head
// (partial_rotary_factor 0.5: rope.dimension_count 64 of key_length 128); an RMSNorm over each
// q and k head where the file has one (GLM-4.5 and 4.6 do, 4.5-Air does not). The norm before
// the FFN is stored as post_attention_norm. Leading dense layers (Air 1, 4.5/4.6 3), then MoE
// layers: sigmoid gating with a selection bias (exp_probs_b), the chosen weights renormalised
// and scaled (routed_scaling_factor: Air 1.0, 4.5/4.6 2.5), one shared expert of the expert
// width added unweighted. The last nextn_predict_layers blocks (1) are the NextN/MTP layer,
// counted in block_count but not run (config.h: n_layer_nextn).

#include "arch/arch.h"

namespace swapmoe {
namespace {

void read_keys(const ArchKeys& k, ModelConfig& c) {
  // First: the other keys' ranges refer to the transformer layers. llama.cpp asserts that
  // at least one layer is not NextN.
  c.n_layer_nextn = k.opt("nextn_predict_layers", 0, 0, c.n_layer - 1);
  c.n_layer -= c.n_layer_nextn;
  c.n_layer_dense_lead = k.opt("leading_dense_block_count", 0, 0, c.n_layer - 1);
  c.n_expert_shared = k.opt("expert_shared_count", 0, 0, 1024);
  c.expert_weights_norm = k.optb("expert_weights_norm", false);
  // llama.cpp: an absent (or "none") gating function means sigmoid for this architecture.
  const int64_t g = k.opt("expert_gating_func", 2, 0, 2);
  c.gating = g == 1 ? GatingFunc::Softmax : GatingFunc::Sigmoid;
}

void write_keys(const ModelConfig& c, ArchKeyWriter& w) {
  w.u32("leading_dense_block_count", c.n_layer_dense_lead);
  w.u32("expert_shared_count", c.n_expert_shared);
  w.f32("expert_weights_scale", c.expert_weights_scale);
  w.boolean("expert_weights_norm", c.expert_weights_norm);
  w.u32("expert_gating_func", c.gating == GatingFunc::Sigmoid ? 2 : 1);
  w.u32("nextn_predict_layers", c.n_layer_nextn);
}

}  // namespace

extern const ArchSpec kGlm4MoeSpec = {
    .name = "glm4moe",
    .also = "GLM-4.5/4.6",
    .features = {.qk_norm = QkNorm::PerHead,
                 .qkv_bias = true,
                 .partial_rotary = true,
                 .routing_keys = true,
                 .weights_scale = true,
                 .sigmoid_selection_bias = true,
                 .shared_expert = SharedExpert::Plain,
                 .leading_dense = true,
                 .qk_norm_optional = true,
                 .nextn = true,
                 .ffn_norm = "post_attention_norm"},
    .rope_type = RopeType::Neox,
    .gating = GatingFunc::Sigmoid,
    .weights_norm = true,
    .read_keys = read_keys,
    .write_keys = write_keys,
};

}  // namespace swapmoe
