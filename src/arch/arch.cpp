#include "arch/arch.h"

#include <cmath>

#include "gguf/gguf.h"
#include "util/error.h"

namespace swapmoe {
namespace {

struct ArchEntry {
  Arch arch;
  const char* name;
  RopeType rope;
};

// One row per supported architecture. Rope types follow llama.cpp's llama_model_rope_type.
constexpr ArchEntry kArchs[] = {
    {Arch::Qwen3Moe, "qwen3moe", RopeType::Neox},
    {Arch::Qwen2Moe, "qwen2moe", RopeType::Neox},
    {Arch::Llama, "llama", RopeType::Norm},
    {Arch::Olmoe, "olmoe", RopeType::Neox},
    {Arch::Deepseek2, "deepseek2", RopeType::Norm},
};

const ArchEntry& entry(Arch a) {
  for (const auto& e : kArchs)
    if (e.arch == a) return e;
  fail("unknown architecture enum ", static_cast<int>(a));
}

// Reads "<arch>.<key>" with a range check; the message names the full key.
class Keys {
 public:
  Keys(const GgufFile& f, const std::string& arch) : f_(f), prefix_(arch + ".") {}
  std::string full(const std::string& k) const { return prefix_ + k; }
  bool has(const std::string& k) const { return f_.has(full(k)); }
  int64_t req(const std::string& k, int64_t lo, int64_t hi) const { return check(k, f_.get_i64(full(k)), lo, hi); }
  int64_t opt(const std::string& k, int64_t def, int64_t lo, int64_t hi) const {
    return has(k) ? req(k, lo, hi) : def;
  }
  double optf(const std::string& k, double def) const { return f_.get_f64(full(k), def); }
  bool optb(const std::string& k, bool def) const { return f_.get_bool(full(k), def); }
  std::string opts(const std::string& k, const std::string& def) const { return f_.get_str(full(k), def); }

 private:
  int64_t check(const std::string& k, int64_t v, int64_t lo, int64_t hi) const {
    if (v < lo || v > hi) fail(f_.path(), ": metadata ", full(k), " = ", v, " is out of range [", lo, ", ", hi, "]");
    return v;
  }
  const GgufFile& f_;
  std::string prefix_;
};

constexpr int64_t kMaxDim = int64_t(1) << 24;

}  // namespace

const char* arch_name(Arch a) { return entry(a).name; }

std::optional<Arch> arch_from_name(const std::string& name) {
  for (const auto& e : kArchs)
    if (name == e.name) return e.arch;
  return std::nullopt;
}

ModelConfig config_from_gguf(const GgufFile& f) {
  ModelConfig c;
  c.arch_name = f.get_str("general.architecture");
  auto arch = arch_from_name(c.arch_name);
  if (!arch)
    fail(f.path(), ": unsupported architecture '", c.arch_name,
         "' (supported: qwen3moe, qwen2moe, llama (Mixtral), olmoe, deepseek2)");
  c.arch = *arch;
  c.rope_type = entry(c.arch).rope;
  Keys k(f, c.arch_name);

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
  if (c.arch == Arch::Deepseek2) c.rope_yarn_log_mul /= 0.1f;  // llama.cpp undoes the converter's 0.1 factor

  c.n_expert = k.opt("expert_count", 0, 0, 1 << 16);
  c.n_expert_used = k.opt("expert_used_count", 0, 0, c.n_expert);
  if (c.n_expert == 0 || c.n_expert_used == 0)
    fail(f.path(), ": ", c.arch_name, " model has no experts (", k.full("expert_count"), " = ", c.n_expert,
         ", expert_used_count = ", c.n_expert_used, "); swapmoe runs Mixture-of-Experts models only");
  c.n_ff_exp = k.opt("expert_feed_forward_length", 0, 0, kMaxDim);
  if (c.arch == Arch::Llama || c.arch == Arch::Olmoe) c.n_ff_exp = c.n_ff;  // these store the expert width in n_ff
  if (c.n_ff_exp == 0) {
    if (c.n_ff == 0) fail(f.path(), ": missing ", k.full("expert_feed_forward_length"));
    c.n_ff_exp = c.n_ff / c.n_expert_used;  // llama.cpp's fallback
  }
  c.n_ff_shexp = k.opt("expert_shared_feed_forward_length", 0, 0, kMaxDim);
  if (c.arch == Arch::Qwen2Moe && c.n_ff_shexp == 0) c.n_ff_shexp = c.n_ff;
  c.expert_weights_scale = static_cast<float>(k.optf("expert_weights_scale", 0.0));
  if (c.expert_weights_scale == 0.0f) c.expert_weights_scale = 1.0f;
  c.n_expert_groups = k.opt("expert_group_count", 0, 0, c.n_expert);
  c.n_expert_groups_used = k.opt("expert_group_used_count", 0, 0, c.n_expert_groups);
  // Normalisation of the chosen weights, as each llama.cpp graph hard-codes it.
  c.expert_weights_norm = (c.arch == Arch::Qwen3Moe || c.arch == Arch::Llama);

  if (c.arch == Arch::Deepseek2) {
    c.n_layer_dense_lead = k.opt("leading_dense_block_count", 0, 0, c.n_layer);
    c.q_lora_rank = k.opt("attention.q_lora_rank", 0, 0, kMaxDim);
    c.kv_lora_rank = k.req("attention.kv_lora_rank", 1, kMaxDim);
    c.head_dim_k_mla = k.opt("attention.key_length_mla", 0, 0, kMaxDim);
    c.head_dim_v_mla = k.opt("attention.value_length_mla", 0, 0, kMaxDim);
    if (c.head_dim_k_mla == 0 || c.head_dim_v_mla == 0)
      fail(f.path(), ": deepseek2 file without ", k.full("attention.key_length_mla"), "/value_length_mla: ",
           "legacy GGUFs with the unsplit attn_kv_b tensor are not supported; re-convert with a current llama.cpp");
    if (c.head_dim_k_mla <= c.n_rot)
      fail(f.path(), ": key_length_mla ", c.head_dim_k_mla, " must exceed rope.dimension_count ", c.n_rot);
    c.n_expert_shared = k.opt("expert_shared_count", 0, 0, 1024);
    c.expert_weights_norm = k.optb("expert_weights_norm", false);
    const int64_t g = k.opt("expert_gating_func", 1, 0, 2);
    c.gating = g == 2 ? GatingFunc::Sigmoid : GatingFunc::Softmax;
  }
  if (c.n_expert_groups > 1) {
    if (c.n_expert % c.n_expert_groups != 0 || c.n_expert_groups_used == 0)
      fail(f.path(), ": expert_group_count ", c.n_expert_groups, " does not divide expert_count ", c.n_expert,
           " or expert_group_used_count is 0");
  }
  if (c.n_rot % 2 != 0 || c.n_rot > c.head_dim_k) fail(f.path(), ": invalid rope.dimension_count ", c.n_rot);

  const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
  if (!emb) fail(f.path(), ": missing tensor token_embd.weight");
  if (emb->ne.size() != 2 || emb->ne[0] != c.n_embd)
    fail(f.path(), ": token_embd.weight has the wrong shape (expected [", c.n_embd, ", n_vocab])");
  c.n_vocab = emb->ne[1];
  c.has_output = f.find_tensor("output.weight") != nullptr;
  return c;
}

std::vector<std::pair<std::string, MetaValue>> config_to_kv(const ModelConfig& c) {
  std::vector<std::pair<std::string, MetaValue>> kv;
  const std::string p = std::string(arch_name(c.arch)) + ".";
  auto u32 = [&](const std::string& key, int64_t v) {
    MetaValue m; m.kind = MetaValue::U32; m.u = static_cast<uint32_t>(v); kv.emplace_back(p + key, m);
  };
  auto f32 = [&](const std::string& key, float v) {
    MetaValue m; m.kind = MetaValue::F32; m.f = v; kv.emplace_back(p + key, m);
  };
  auto str = [&](const std::string& key, const std::string& v, bool prefixed = true) {
    MetaValue m; m.kind = MetaValue::Str; m.s = v; kv.emplace_back(prefixed ? p + key : key, m);
  };
  str("general.architecture", arch_name(c.arch), false);
  u32("context_length", c.n_ctx_train);
  u32("embedding_length", c.n_embd);
  u32("block_count", c.n_layer);
  const bool ff_is_expert = c.arch == Arch::Llama || c.arch == Arch::Olmoe;
  u32("feed_forward_length", ff_is_expert ? c.n_ff_exp : c.n_ff);
  u32("attention.head_count", c.n_head);
  u32("attention.head_count_kv", c.n_head_kv);
  u32("attention.key_length", c.head_dim_k);
  u32("attention.value_length", c.head_dim_v);
  f32("attention.layer_norm_rms_epsilon", c.rms_eps);
  f32("rope.freq_base", c.rope_freq_base);
  u32("rope.dimension_count", c.n_rot);
  if (c.rope_scaling != RopeScaling::None) {
    str("rope.scaling.type", c.rope_scaling == RopeScaling::Yarn ? "yarn" : "linear");
    f32("rope.scaling.factor", c.rope_scaling_factor);
    u32("rope.scaling.original_context_length", c.rope_orig_ctx);
    if (c.rope_yarn_log_mul != 0.0f)
      f32("rope.scaling.yarn_log_multiplier", c.arch == Arch::Deepseek2 ? c.rope_yarn_log_mul * 0.1f : c.rope_yarn_log_mul);
  }
  u32("expert_count", c.n_expert);
  u32("expert_used_count", c.n_expert_used);
  if (!ff_is_expert) u32("expert_feed_forward_length", c.n_ff_exp);
  if (c.arch == Arch::Qwen2Moe) u32("expert_shared_feed_forward_length", c.n_ff_shexp);
  if (c.arch == Arch::Deepseek2) {
    u32("vocab_size", c.n_vocab);
    u32("leading_dense_block_count", c.n_layer_dense_lead);
    u32("attention.q_lora_rank", c.q_lora_rank);
    u32("attention.kv_lora_rank", c.kv_lora_rank);
    u32("attention.key_length_mla", c.head_dim_k_mla);
    u32("attention.value_length_mla", c.head_dim_v_mla);
    u32("expert_shared_count", c.n_expert_shared);
    f32("expert_weights_scale", c.expert_weights_scale);
    MetaValue b; b.kind = MetaValue::Bool; b.b = c.expert_weights_norm; kv.emplace_back(p + "expert_weights_norm", b);
    u32("expert_gating_func", c.gating == GatingFunc::Sigmoid ? 2 : 1);
    if (c.n_expert_groups > 1) {
      u32("expert_group_count", c.n_expert_groups);
      u32("expert_group_used_count", c.n_expert_groups_used);
    }
  }
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
  const int64_t E = c.n_embd, V = c.n_vocab;
  add("token_embd", -1, {E, V}, TensorRole::TokenEmbd);
  add("output_norm", -1, {E}, TensorRole::Norm);
  add("output", -1, {E, V}, TensorRole::Output, "weight", /*optional=*/true);  // absent: tied to token_embd

  for (int il = 0; il < static_cast<int>(c.n_layer); ++il) {
    add("attn_norm", il, {E}, TensorRole::Norm);
    if (c.arch == Arch::Deepseek2) {
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
      add("attn_k_b", il, {nope, c.kv_lora_rank, c.n_head}, TensorRole::Matrix);
      add("attn_v_b", il, {c.kv_lora_rank, c.head_dim_v_mla, c.n_head}, TensorRole::Matrix);
      add("attn_output", il, {c.n_head * c.head_dim_v_mla, E}, TensorRole::Matrix);
    } else {
      const int64_t q = c.n_head * c.head_dim_k, kdim = c.n_head_kv * c.head_dim_k, vdim = c.n_head_kv * c.head_dim_v;
      add("attn_q", il, {E, q}, TensorRole::Matrix);
      add("attn_k", il, {E, kdim}, TensorRole::Matrix);
      add("attn_v", il, {E, vdim}, TensorRole::Matrix);
      if (c.arch == Arch::Qwen2Moe) {
        add("attn_q", il, {q}, TensorRole::Bias, "bias");
        add("attn_k", il, {kdim}, TensorRole::Bias, "bias");
        add("attn_v", il, {vdim}, TensorRole::Bias, "bias");
      }
      add("attn_output", il, {c.n_head * c.head_dim_v, E}, TensorRole::Matrix);
      if (c.arch == Arch::Qwen3Moe) {  // per-head q/k norms
        add("attn_k_norm", il, {c.head_dim_k}, TensorRole::Norm);
        add("attn_q_norm", il, {c.head_dim_k}, TensorRole::Norm);
      } else if (c.arch == Arch::Olmoe) {  // norms over the whole projection
        add("attn_q_norm", il, {E}, TensorRole::Norm);
        add("attn_k_norm", il, {E}, TensorRole::Norm);
      }
    }
    add("ffn_norm", il, {E}, TensorRole::Norm);
    if (!c.is_moe_layer(il)) {
      add("ffn_gate", il, {E, c.n_ff}, TensorRole::Matrix);
      add("ffn_down", il, {c.n_ff, E}, TensorRole::Matrix);
      add("ffn_up", il, {E, c.n_ff}, TensorRole::Matrix);
      continue;
    }
    add("ffn_gate_inp", il, {E, c.n_expert}, TensorRole::Router);
    if (c.arch == Arch::Deepseek2 && c.gating == GatingFunc::Sigmoid)
      add("exp_probs_b", il, {c.n_expert}, TensorRole::ExpProbsBias, "bias");
    add("ffn_gate_exps", il, {E, c.n_ff_exp, c.n_expert}, TensorRole::Experts);
    add("ffn_down_exps", il, {c.n_ff_exp, E, c.n_expert}, TensorRole::Experts);
    add("ffn_up_exps", il, {E, c.n_ff_exp, c.n_expert}, TensorRole::Experts);
    int64_t shexp = 0;
    if (c.arch == Arch::Qwen2Moe) {
      add("ffn_gate_inp_shexp", il, {E}, TensorRole::SharedGate);
      shexp = c.n_ff_shexp;
    } else if (c.arch == Arch::Deepseek2) {
      shexp = c.n_ff_exp * c.n_expert_shared;
    }
    if (shexp > 0) {
      add("ffn_gate_shexp", il, {E, shexp}, TensorRole::Matrix);
      add("ffn_down_shexp", il, {shexp, E}, TensorRole::Matrix);
      add("ffn_up_shexp", il, {E, shexp}, TensorRole::Matrix);
    }
  }
  return v;
}

}  // namespace swapmoe
