// deepseek2: DeepSeek-V2/V2.5/V3/R1, Kimi-K2 (llama.cpp src/models/deepseek2.cpp).
// Multi-head latent attention with split attn_k_b/attn_v_b (low-rank or plain q), NORM
// rope with llama.cpp's deepseek2 YaRN rule; leading dense layers; shared experts added
// unweighted; softmax or sigmoid gating (expert_gating_func) with a selection bias
// (exp_probs_b) under sigmoid, group-limited selection, weight normalisation and scale
// from the file.

#include "arch/arch.h"
#include "util/error.h"

namespace swapmoe {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 24;

void read_keys(const ArchKeys& k, ModelConfig& c) {
  c.n_layer_dense_lead = k.opt("leading_dense_block_count", 0, 0, c.n_layer);
  c.q_lora_rank = k.opt("attention.q_lora_rank", 0, 0, kMaxDim);
  c.kv_lora_rank = k.req("attention.kv_lora_rank", 1, kMaxDim);
  c.head_dim_k_mla = k.opt("attention.key_length_mla", 0, 0, kMaxDim);
  c.head_dim_v_mla = k.opt("attention.value_length_mla", 0, 0, kMaxDim);
  if (c.head_dim_k_mla == 0 || c.head_dim_v_mla == 0)
    fail(k.path(), ": deepseek2 file without ", k.full("attention.key_length_mla"), "/value_length_mla: ",
         "legacy GGUFs with the unsplit attn_kv_b tensor are not supported; re-convert with a current llama.cpp");
  if (c.head_dim_k_mla <= c.n_rot)
    fail(k.path(), ": key_length_mla ", c.head_dim_k_mla, " must exceed rope.dimension_count ", c.n_rot);
  c.n_expert_shared = k.opt("expert_shared_count", 0, 0, 1024);
  c.expert_weights_norm = k.optb("expert_weights_norm", false);
  // Files from before expert_gating_func (DeepSeek-V2/V2.5) use softmax, as llama.cpp assumes.
  const int64_t g = k.opt("expert_gating_func", 1, 0, 2);
  c.gating = g == 2 ? GatingFunc::Sigmoid : GatingFunc::Softmax;
}

void write_keys(const ModelConfig& c, ArchKeyWriter& w) {
  w.u32("vocab_size", c.n_vocab);
  w.u32("leading_dense_block_count", c.n_layer_dense_lead);
  w.u32("attention.q_lora_rank", c.q_lora_rank);
  w.u32("attention.kv_lora_rank", c.kv_lora_rank);
  w.u32("attention.key_length_mla", c.head_dim_k_mla);
  w.u32("attention.value_length_mla", c.head_dim_v_mla);
  w.u32("expert_shared_count", c.n_expert_shared);
  w.f32("expert_weights_scale", c.expert_weights_scale);
  w.boolean("expert_weights_norm", c.expert_weights_norm);
  w.u32("expert_gating_func", c.gating == GatingFunc::Sigmoid ? 2 : 1);
  if (c.n_expert_groups > 1) {
    w.u32("expert_group_count", c.n_expert_groups);
    w.u32("expert_group_used_count", c.n_expert_groups_used);
  }
}

}  // namespace

extern const ArchSpec kDeepseek2Spec = {
    .name = "deepseek2",
    .features = {.attention = AttentionKind::Mla,
                 .yarn = YarnRule::Deepseek2,
                 .routing_keys = true,
                 .weights_scale = true,
                 .sigmoid_selection_bias = true,
                 .shared_expert = SharedExpert::Plain,
                 .leading_dense = true},
    .rope_type = RopeType::Norm,
    .gating = GatingFunc::Softmax,
    .weights_norm = false,
    .read_keys = read_keys,
    .write_keys = write_keys,
};

}  // namespace swapmoe
