#include "arch/arch.h"

#include <cmath>

#include "gguf/gguf.h"
#include "util/error.h"

namespace swapmoe {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 24;

}  // namespace

bool ArchKeys::has(const std::string& k) const { return f_.has(full(k)); }
double ArchKeys::optf(const std::string& k, double def) const { return f_.get_f64(full(k), def); }
bool ArchKeys::optb(const std::string& k, bool def) const { return f_.get_bool(full(k), def); }
std::string ArchKeys::opts(const std::string& k, const std::string& def) const { return f_.get_str(full(k), def); }
const std::string& ArchKeys::path() const { return f_.path(); }

int64_t ArchKeys::req(const std::string& k, int64_t lo, int64_t hi) const {
  const int64_t v = f_.get_i64(full(k));
  if (v < lo || v > hi) fail(f_.path(), ": metadata ", full(k), " = ", v, " is out of range [", lo, ", ", hi, "]");
  return v;
}

void ArchKeyWriter::u32(const std::string& key, int64_t v) {
  MetaValue m;
  m.kind = MetaValue::U32;
  m.u = static_cast<uint32_t>(v);
  out_.emplace_back(prefix_ + key, m);
}

void ArchKeyWriter::f32(const std::string& key, float v) {
  MetaValue m;
  m.kind = MetaValue::F32;
  m.f = v;
  out_.emplace_back(prefix_ + key, m);
}

void ArchKeyWriter::boolean(const std::string& key, bool v) {
  MetaValue m;
  m.kind = MetaValue::Bool;
  m.b = v;
  out_.emplace_back(prefix_ + key, m);
}

void ArchKeyWriter::str(const std::string& key, const std::string& v) {
  MetaValue m;
  m.kind = MetaValue::Str;
  m.s = v;
  out_.emplace_back(prefix_ + key, m);
}

ModelConfig config_for_arch(const ArchSpec& spec) {
  ModelConfig c;
  c.spec = &spec;
  c.arch_name = spec.name;
  c.arch = spec.features;
  c.rope_type = spec.rope_type;
  c.gating = spec.gating;
  c.expert_weights_norm = spec.weights_norm;
  return c;
}

ModelConfig config_from_gguf(const GgufFile& f) {
  const std::string name = f.get_str("general.architecture");
  const ArchSpec* spec = find_arch(name);
  if (!spec) fail(f.path(), ": unsupported architecture '", name, "' (supported: ", arch_names(), ")");
  ModelConfig c = config_for_arch(*spec);
  ArchKeys k(f, c.arch_name);

  c.n_ctx_train = k.req("context_length", 1, int64_t(1) << 30);
  c.n_embd = k.req("embedding_length", 1, kMaxDim);
  c.n_layer = k.req("block_count", 1, 4096);
  c.n_ff = k.opt("feed_forward_length", 0, 0, kMaxDim);
  c.n_head = k.req("attention.head_count", 1, 4096);
  c.n_head_kv = k.opt("attention.head_count_kv", c.n_head, 1, c.n_head);
  if (c.n_head % c.n_head_kv != 0)
    fail(f.path(), ": head_count ", c.n_head, " is not a multiple of head_count_kv ", c.n_head_kv);
  c.head_dim_k = k.opt("attention.key_length", c.n_embd / c.n_head, 1, kMaxDim);
  c.head_dim_v = k.opt("attention.value_length", c.n_embd / c.n_head, 1, kMaxDim);
  c.rms_eps = static_cast<float>(k.optf("attention.layer_norm_rms_epsilon", 1e-6));
  c.rope_freq_base = static_cast<float>(k.optf("rope.freq_base", 10000.0));
  c.n_rot = k.opt("rope.dimension_count", c.head_dim_k, 0, kMaxDim);

  // llama.cpp treats a missing scaling type as "linear" (a no-op when there is no factor).
  const std::string scaling = k.opts("rope.scaling.type", "linear");
  if (scaling == "none") c.rope_scaling = RopeScaling::None;
  else if (scaling == "linear") c.rope_scaling = RopeScaling::Linear;
  else if (scaling == "yarn") c.rope_scaling = RopeScaling::Yarn;
  else fail(f.path(), ": unsupported ", k.full("rope.scaling.type"), " '", scaling, "'");
  c.rope_scaling_factor = static_cast<float>(k.optf("rope.scaling.factor", 0.0));
  if (c.rope_scaling_factor == 0.0f) c.rope_scaling_factor = 1.0f;
  if (c.rope_scaling == RopeScaling::Linear && c.rope_scaling_factor == 1.0f) c.rope_scaling = RopeScaling::None;
  c.rope_orig_ctx = k.opt("rope.scaling.original_context_length", c.n_ctx_train, 0, int64_t(1) << 30);
  c.rope_yarn_log_mul = static_cast<float>(k.optf("rope.scaling.yarn_log_multiplier", 0.0));
  if (c.arch.yarn == YarnRule::Deepseek2) c.rope_yarn_log_mul /= 0.1f;  // llama.cpp undoes the converter's 0.1 factor

  c.n_expert = k.opt("expert_count", 0, 0, 1 << 16);
  c.n_expert_used = k.opt("expert_used_count", 0, 0, c.n_expert);
  if (c.n_expert == 0 || c.n_expert_used == 0)
    fail(f.path(), ": ", c.arch_name, " model has no experts (", k.full("expert_count"), " = ", c.n_expert,
         ", expert_used_count = ", c.n_expert_used, "); swapmoe runs Mixture-of-Experts models only");
  c.n_ff_exp = k.opt("expert_feed_forward_length", 0, 0, kMaxDim);
  if (c.arch.expert_width_in_ff) c.n_ff_exp = c.n_ff;
  if (c.n_ff_exp == 0) {
    if (c.n_ff == 0) fail(f.path(), ": missing ", k.full("expert_feed_forward_length"));
    c.n_ff_exp = c.n_ff / c.n_expert_used;  // llama.cpp's fallback
  }
  c.n_ff_shexp = k.opt("expert_shared_feed_forward_length", 0, 0, kMaxDim);
  c.expert_weights_scale = static_cast<float>(k.optf("expert_weights_scale", 0.0));
  if (c.expert_weights_scale == 0.0f) c.expert_weights_scale = 1.0f;
  c.n_expert_groups = k.opt("expert_group_count", 0, 0, c.n_expert);
  c.n_expert_groups_used = k.opt("expert_group_used_count", 0, 0, c.n_expert_groups);

  if (spec->read_keys) spec->read_keys(k, c);
  if (c.n_expert_groups > 1) {
    if (c.n_expert % c.n_expert_groups != 0 || c.n_expert_groups_used == 0)
      fail(f.path(), ": expert_group_count ", c.n_expert_groups, " does not divide expert_count ", c.n_expert,
           " or expert_group_used_count is 0");
  }
  if (c.n_rot % 2 != 0 || c.n_rot > c.head_dim_k) fail(f.path(), ": invalid rope.dimension_count ", c.n_rot);
  // llama.cpp creates these norms "not required" for such architectures; a file has them in
  // every layer or in none.
  if (c.arch.qk_norm_optional && !f.find_tensor(tensor_name("attn_q_norm", 0))) c.arch.qk_norm = QkNorm::None;

  const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
  if (!emb) fail(f.path(), ": missing tensor token_embd.weight");
  if (emb->ne.size() != 2 || emb->ne[0] != c.n_embd)
    fail(f.path(), ": token_embd.weight has the wrong shape (expected [", c.n_embd, ", n_vocab])");
  c.n_vocab = emb->ne[1];
  c.has_output = f.find_tensor("output.weight") != nullptr;
  return c;
}

void check_config(const ModelConfig& c, const std::string& where) {
  const ArchFeatures& a = c.arch;
  // Sinks, windows and the output bias are steps of the grouped-query attention path only.
  if (a.attention != AttentionKind::Gqa && (a.o_bias || a.sinks || a.sliding_window_pattern != 0))
    fail(where, ": ", c.arch_name, ": attention sinks, sliding windows and the output bias need grouped-query attention");
  if (a.sliding_window_pattern != 0 && c.n_swa < 1)
    fail(where, ": ", c.arch_name, " needs ", c.arch_name, ".attention.sliding_window >= 1");
  if (a.expert_biases && c.n_expert == 0) fail(where, ": ", c.arch_name, ": expert biases without experts");
  if (a.attention == AttentionKind::Gqa && !a.partial_rotary && c.head_dim_k != c.n_rot)
    fail(where, ": ", c.arch_name, " needs rope.dimension_count (", c.n_rot, ") == key_length (", c.head_dim_k, ")");
  // A norm over the whole projection is stored with n_embd weights (llama.cpp's olmoe).
  if (a.qk_norm == QkNorm::Full && (c.n_head_kv * c.head_dim_k != c.n_embd || c.n_head * c.head_dim_k != c.n_embd))
    fail(where, ": ", c.arch_name, " with grouped-query attention is not supported (k norm spans n_embd)");
}

MetaList config_to_kv(const ModelConfig& c) {
  MetaList kv;
  MetaValue name;
  name.kind = MetaValue::Str;
  name.s = c.arch_name;
  kv.emplace_back("general.architecture", name);
  ArchKeyWriter w(kv, c.arch_name);
  w.u32("context_length", c.n_ctx_train);
  w.u32("embedding_length", c.n_embd);
  w.u32("block_count", c.n_layer + c.n_layer_nextn);  // the NextN layers count (config.h)
  w.u32("feed_forward_length", c.arch.expert_width_in_ff ? c.n_ff_exp : c.n_ff);
  w.u32("attention.head_count", c.n_head);
  // The legacy MLA layout states the per-head sizes and n_head here (config.h).
  const bool legacy = c.mla_legacy;
  w.u32("attention.head_count_kv", legacy ? c.n_head : c.n_head_kv);
  w.u32("attention.key_length", legacy ? c.head_dim_k_mla : c.head_dim_k);
  w.u32("attention.value_length", legacy ? c.head_dim_v_mla : c.head_dim_v);
  w.f32("attention.layer_norm_rms_epsilon", c.rms_eps);
  w.f32("rope.freq_base", c.rope_freq_base);
  w.u32("rope.dimension_count", c.n_rot);
  if (c.rope_scaling != RopeScaling::None) {
    w.str("rope.scaling.type", c.rope_scaling == RopeScaling::Yarn ? "yarn" : "linear");
    w.f32("rope.scaling.factor", c.rope_scaling_factor);
    w.u32("rope.scaling.original_context_length", c.rope_orig_ctx);
    if (c.rope_yarn_log_mul != 0.0f)
      w.f32("rope.scaling.yarn_log_multiplier",
            c.arch.yarn == YarnRule::Deepseek2 ? c.rope_yarn_log_mul * 0.1f : c.rope_yarn_log_mul);
  }
  w.u32("expert_count", c.n_expert);
  w.u32("expert_used_count", c.n_expert_used);
  if (!c.arch.expert_width_in_ff) w.u32("expert_feed_forward_length", c.n_ff_exp);
  if (c.spec && c.spec->write_keys) c.spec->write_keys(c, w);
  return kv;
}

std::string tensor_name(const char* base, int layer, const char* suffix) {
  std::string s = layer >= 0 ? "blk." + std::to_string(layer) + "." + base : std::string(base);
  return s + "." + suffix;
}

std::vector<TensorSpec> tensor_specs(const ModelConfig& c) {
  std::vector<TensorSpec> v;
  auto add = [&](const char* base, int layer, std::vector<int64_t> ne, TensorRole role, const char* suffix = "weight",
                 bool optional = false) {
    v.push_back(TensorSpec{tensor_name(base, layer, suffix), std::move(ne), role, layer, optional});
  };
  const ArchFeatures& a = c.arch;
  const int64_t E = c.n_embd, V = c.n_vocab;
  add("token_embd", -1, {E, V}, TensorRole::TokenEmbd);
  add("output_norm", -1, {E}, TensorRole::Norm);
  add("output", -1, {E, V}, TensorRole::Output, "weight", /*optional=*/true);  // absent: tied to token_embd

  // The NextN/MTP layers (il >= n_layer) have a full MoE layer's tensors plus their own;
  // all of them are marked unused below.
  for (int il = 0; il < static_cast<int>(c.n_layer + c.n_layer_nextn); ++il) {
    add("attn_norm", il, {E}, TensorRole::Norm);
    if (a.attention == AttentionKind::Mla) {
      // MLA: q (optionally low-rank), compressed kv latent plus a shared rope key,
      // and per-head up-projections of the latent for keys (k_b) and values (v_b).
      const int64_t nope = c.head_dim_k_mla - c.n_rot;
      if (c.q_lora_rank > 0) {
        add("attn_q_a", il, {E, c.q_lora_rank}, TensorRole::Matrix);
        add("attn_q_a_norm", il, {c.q_lora_rank}, TensorRole::Norm);
        add("attn_q_b", il, {c.q_lora_rank, c.n_head * c.head_dim_k_mla}, TensorRole::Matrix);
      } else {
        add("attn_q", il, {E, c.n_head * c.head_dim_k_mla}, TensorRole::Matrix);
      }
      add("attn_kv_a_mqa", il, {E, c.kv_lora_rank + c.n_rot}, TensorRole::Matrix);
      add("attn_kv_a_norm", il, {c.kv_lora_rank}, TensorRole::Norm);
      if (c.mla_legacy) {  // one up-projection, split by the loader (ops/mla_legacy.h)
        add("attn_kv_b", il, {c.kv_lora_rank, c.n_head * (nope + c.head_dim_v_mla)}, TensorRole::Matrix);
      } else {
        add("attn_k_b", il, {nope, c.kv_lora_rank, c.n_head}, TensorRole::Matrix);
        add("attn_v_b", il, {c.kv_lora_rank, c.head_dim_v_mla, c.n_head}, TensorRole::Matrix);
      }
      add("attn_output", il, {c.n_head * c.head_dim_v_mla, E}, TensorRole::Matrix);
    } else {
      const int64_t q = c.n_head * c.head_dim_k, kdim = c.n_head_kv * c.head_dim_k, vdim = c.n_head_kv * c.head_dim_v;
      add("attn_q", il, {E, q}, TensorRole::Matrix);
      add("attn_k", il, {E, kdim}, TensorRole::Matrix);
      add("attn_v", il, {E, vdim}, TensorRole::Matrix);
      if (a.qkv_bias) {
        add("attn_q", il, {q}, TensorRole::Bias, "bias");
        add("attn_k", il, {kdim}, TensorRole::Bias, "bias");
        add("attn_v", il, {vdim}, TensorRole::Bias, "bias");
      }
      add("attn_output", il, {c.n_head * c.head_dim_v, E}, TensorRole::Matrix);
      if (a.qk_norm == QkNorm::PerHead) {
        add("attn_k_norm", il, {c.head_dim_k}, TensorRole::Norm);
        add("attn_q_norm", il, {c.head_dim_k}, TensorRole::Norm);
      } else if (a.qk_norm == QkNorm::Full) {
        add("attn_q_norm", il, {q}, TensorRole::Norm);
        add("attn_k_norm", il, {kdim}, TensorRole::Norm);
      }
    }
    if (a.o_bias) add("attn_output", il, {E}, TensorRole::Bias, "bias");
    if (a.sinks) add("attn_sinks", il, {c.n_head}, TensorRole::Sinks);
    add(a.ffn_norm, il, {E}, TensorRole::Norm);
    if (!c.is_moe_layer(il)) {
      add("ffn_gate", il, {E, c.n_ff}, TensorRole::Matrix);
      add("ffn_down", il, {c.n_ff, E}, TensorRole::Matrix);
      add("ffn_up", il, {E, c.n_ff}, TensorRole::Matrix);
      continue;
    }
    add("ffn_gate_inp", il, {E, c.n_expert}, TensorRole::Router);
    if (a.router_bias) add("ffn_gate_inp", il, {c.n_expert}, TensorRole::Bias, "bias");
    if (a.sigmoid_selection_bias && c.gating == GatingFunc::Sigmoid)
      add("exp_probs_b", il, {c.n_expert}, TensorRole::ExpProbsBias, "bias");
    add("ffn_gate_exps", il, {E, c.n_ff_exp, c.n_expert}, TensorRole::Experts);
    add("ffn_down_exps", il, {c.n_ff_exp, E, c.n_expert}, TensorRole::Experts);
    add("ffn_up_exps", il, {E, c.n_ff_exp, c.n_expert}, TensorRole::Experts);
    if (a.expert_biases) {  // one bias row per expert: [width, n_expert]
      add("ffn_gate_exps", il, {c.n_ff_exp, c.n_expert}, TensorRole::ExpertBias, "bias");
      add("ffn_down_exps", il, {E, c.n_expert}, TensorRole::ExpertBias, "bias");
      add("ffn_up_exps", il, {c.n_ff_exp, c.n_expert}, TensorRole::ExpertBias, "bias");
    }
    int64_t shexp = 0;
    if (a.shared_expert == SharedExpert::Gated) {
      add("ffn_gate_inp_shexp", il, {E}, TensorRole::SharedGate);
      shexp = c.n_ff_shexp;
    } else if (a.shared_expert == SharedExpert::Plain) {
      shexp = c.n_ff_exp * c.n_expert_shared;
    }
    if (shexp > 0) {
      add("ffn_gate_shexp", il, {E, shexp}, TensorRole::Matrix);
      add("ffn_down_shexp", il, {shexp, E}, TensorRole::Matrix);
      add("ffn_up_shexp", il, {E, shexp}, TensorRole::Matrix);
    }
    if (il >= c.n_layer) {
      // llama.cpp's NextN block: eh_proj mixes the next token's embedding (enorm) with this
      // layer's input (hnorm); its own embedding and head are optional (a file may share the
      // model's).
      add("nextn.eh_proj", il, {2 * E, E}, TensorRole::Matrix);
      add("nextn.enorm", il, {E}, TensorRole::Norm);
      add("nextn.hnorm", il, {E}, TensorRole::Norm);
      add("nextn.shared_head_norm", il, {E}, TensorRole::Norm, "weight", /*optional=*/true);
      add("nextn.embed_tokens", il, {E, V}, TensorRole::TokenEmbd, "weight", /*optional=*/true);
      add("nextn.shared_head_head", il, {E, V}, TensorRole::Output, "weight", /*optional=*/true);
    }
  }
  for (TensorSpec& s : v) s.unused = s.layer >= c.n_layer;
  return v;
}

}  // namespace swapmoe
