#include "forge_spec.h"

#include "arch/arch.h"
#include "util/error.h"

namespace swapmoe::forge {

std::vector<std::string> preset_names() { return {"qwen3-30b-a3b", "deepseek-r1-671b-q4km", "kimi-k2"}; }

ForgeSpec preset(const std::string& name) {
  ForgeSpec s;
  if (name == "qwen3-30b-a3b") {
    // Qwen3-30B-A3B: 48 layers, 2048 wide, 128 experts of width 768, top-8, GQA 32/4 x 128.
    s.arch = "qwen3moe";
    s.type = "Q4_K_M";
    s.name = "forged Qwen3-30B-A3B";
    s.layers = 48;
    s.embd = 2048;
    s.ff = 6144;
    s.expert_ff = 768;
    s.experts = 128;
    s.experts_used = 8;
    s.heads = 32;
    s.heads_kv = 4;
    s.head_dim = 128;
    s.ctx = 40960;
    s.rope_base = 1000000.0f;
    return s;
  }
  if (name == "deepseek-r1-671b-q4km") {
    // DeepSeek-R1 (V3 architecture): MLA with q/kv low rank, 256 routed experts top-8 in
    // 8 groups (4 used), one shared expert, sigmoid gating with a selection bias, 3 dense
    // leading layers, YaRN x40.
    s.arch = "deepseek2";
    s.type = "Q4_K_M";
    s.name = "forged DeepSeek-R1-671B";
    s.layers = 61;
    s.embd = 7168;
    s.ff = 18432;
    s.expert_ff = 2048;
    s.experts = 256;
    s.experts_used = 8;
    s.heads = 128;
    s.head_dim = 192;
    s.head_dim_v = 128;
    s.rope_dim = 64;
    s.q_lora_rank = 1536;
    s.kv_lora_rank = 512;
    s.shared_experts = 1;
    s.leading_dense = 3;
    s.gating = "sigmoid";
    s.groups = 8;
    s.groups_used = 4;
    s.expert_weights_scale = 2.5f;
    s.ctx = 163840;
    s.rope_base = 10000.0f;
    s.yarn_factor = 40.0f;
    s.yarn_orig_ctx = 4096;
    s.yarn_log_mul = 1.0f;
    return s;
  }
  if (name == "kimi-k2") {
    // Kimi-K2-Instruct (DeepSeek-V3 architecture, config.json): 61 layers, 7168 wide, MLA
    // with 64 heads (q rank 1536, kv rank 512, key 128 + 64 rotary, value 128), 384 routed
    // experts of width 2048, top-8, one group, one shared expert, sigmoid gating with a
    // selection bias, routed scale 2.827, 1 dense leading layer of width 18432, rope base
    // 50000 with YaRN x32 over 4096 (mscale_all_dim 1). Its vocabulary has 163840 tokens;
    // forge it around a vocabulary of that size (no npm package ships Kimi's tiktoken file:
    // tests pad DeepSeek-V3's to 163840 with vocab_gguf.mjs, pre-tokenizer kimi-k2).
    s.arch = "deepseek2";
    s.type = "Q4_K_M";
    s.name = "forged Kimi-K2";
    s.layers = 61;
    s.embd = 7168;
    s.ff = 18432;
    s.expert_ff = 2048;
    s.experts = 384;
    s.experts_used = 8;
    s.heads = 64;
    s.head_dim = 192;
    s.head_dim_v = 128;
    s.rope_dim = 64;
    s.q_lora_rank = 1536;
    s.kv_lora_rank = 512;
    s.shared_experts = 1;
    s.leading_dense = 1;
    s.gating = "sigmoid";
    s.groups = 1;
    s.groups_used = 1;
    s.expert_weights_scale = 2.827f;
    s.ctx = 131072;
    s.rope_base = 50000.0f;
    s.yarn_factor = 32.0f;
    s.yarn_orig_ctx = 4096;
    s.yarn_log_mul = 1.0f;
    return s;
  }
  std::string names;
  for (const auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  fail("unknown preset '", name, "' (valid: ", names, ")");
}

namespace {
void require(bool ok, const std::string& msg) {
  if (!ok) fail(msg);
}
}  // namespace

ModelConfig make_config(const ForgeSpec& s, int64_t n_vocab) {
  const ArchSpec* spec = find_arch(s.arch);
  if (!spec) fail("unknown --arch '", s.arch, "' (valid: ", arch_names(), ")");
  require(s.layers >= 1, "--layers must be >= 1");
  require(s.embd >= 1 && s.heads >= 1, "--embd and --heads must be >= 1");
  require(s.experts >= 1 && s.experts_used >= 1 && s.experts_used <= s.experts,
          cat("--experts-used (", s.experts_used, ") must be in [1, --experts (", s.experts, ")]"));
  require(s.expert_ff >= 1, "--expert-ff must be >= 1");

  // The architecture's features, rope type and routing defaults (as config_from_gguf
  // derives them), then the spec's widths.
  ModelConfig c = config_for_arch(*spec);
  const ArchFeatures& a = c.arch;
  c.n_vocab = n_vocab;
  c.n_ctx_train = s.ctx;
  c.n_embd = s.embd;
  c.n_layer = s.layers;
  c.n_head = s.heads;
  c.rms_eps = s.rms_eps;
  c.n_expert = s.experts;
  c.n_expert_used = s.experts_used;
  c.n_ff_exp = s.expert_ff;
  c.n_ff = s.ff > 0 ? s.ff : 2 * s.expert_ff;
  c.rope_freq_base = s.rope_base > 0 ? s.rope_base : 10000.0f;
  c.has_output = !s.tied;
  c.expert_weights_scale = s.expert_weights_scale > 0 ? s.expert_weights_scale : 1.0f;

  if (a.attention == AttentionKind::Mla) {
    // MLA: the cache row is the compressed latent plus one shared rope key, so the
    // "attention" key/value lengths llama.cpp reads are kv_lora_rank + n_rot and
    // kv_lora_rank with a single kv head; the per-head sizes after decompression are the
    // *_mla lengths.
    c.n_rot = s.rope_dim > 0 ? s.rope_dim : 32;
    c.head_dim_k_mla = s.head_dim > 0 ? s.head_dim : 64 + c.n_rot;
    c.head_dim_v_mla = s.head_dim_v > 0 ? s.head_dim_v : 64;
    require(c.head_dim_k_mla > c.n_rot, cat("--head-dim (", c.head_dim_k_mla, ") must exceed --rope-dim (", c.n_rot, ")"));
    c.kv_lora_rank = s.kv_lora_rank > 0 ? s.kv_lora_rank : 128;
    c.q_lora_rank = s.q_lora_rank;
    c.n_head_kv = 1;
    c.head_dim_k = c.kv_lora_rank + c.n_rot;
    c.head_dim_v = c.kv_lora_rank;
  } else {
    c.head_dim_k = s.head_dim > 0 ? s.head_dim : s.embd / s.heads;
    require(c.head_dim_k >= 2, "head dimension must be >= 2");
    c.head_dim_v = s.head_dim_v > 0 ? s.head_dim_v : c.head_dim_k;
    const bool full_qk_norm = a.qk_norm == QkNorm::Full;
    c.n_head_kv = s.heads_kv > 0 ? s.heads_kv : (full_qk_norm || s.heads % 2 != 0 ? s.heads : s.heads / 2);
    require(s.heads % c.n_head_kv == 0, cat("--heads (", s.heads, ") must be a multiple of --heads-kv (", c.n_head_kv, ")"));
    if (full_qk_norm)
      require(c.n_head_kv == c.n_head && c.head_dim_k * c.n_head == c.n_embd,
              cat(s.arch, " normalises q and k over the whole width: needs --heads-kv = --heads and --head-dim = --embd / --heads"));
    c.n_rot = s.rope_dim > 0 ? s.rope_dim : c.head_dim_k;
    require(c.n_rot == c.head_dim_k || (a.partial_rotary && c.n_rot < c.head_dim_k && c.n_rot % 2 == 0),
            "--rope-dim must equal the head dimension for this architecture");
  }
  if (a.leading_dense) {
    c.n_layer_dense_lead = s.leading_dense >= 0 ? s.leading_dense : std::min<int64_t>(1, s.layers - 1);
    require(c.n_layer_dense_lead < c.n_layer, "--leading-dense must leave at least one MoE layer");
  }
  if (a.shared_expert == SharedExpert::Gated) c.n_ff_shexp = s.shared_ff > 0 ? s.shared_ff : 2 * s.expert_ff;
  if (a.shared_expert == SharedExpert::Plain) {
    // llama.cpp requires the shared-expert tensors in every MoE layer of these architectures.
    c.n_expert_shared = s.shared_experts >= 0 ? s.shared_experts : 1;
    require(c.n_expert_shared >= 1, cat(s.arch, " needs --shared-experts >= 1 (llama.cpp requires the shared expert)"));
  }
  if (a.routing_keys) {
    const std::string g = s.gating.empty() ? "sigmoid" : s.gating;
    require(g == "softmax" || g == "sigmoid", "--gating must be softmax or sigmoid");
    c.gating = g == "sigmoid" ? GatingFunc::Sigmoid : GatingFunc::Softmax;
    c.expert_weights_norm = c.gating == GatingFunc::Sigmoid;
    if (s.expert_weights_scale <= 0 && c.gating == GatingFunc::Sigmoid) c.expert_weights_scale = 2.5f;
    c.n_expert_groups = s.groups;
    c.n_expert_groups_used = s.groups_used;
    if (s.groups > 1)
      require(s.experts % s.groups == 0 && s.groups_used >= 1 && s.groups_used <= s.groups,
              "--groups must divide --experts and --groups-used must be in [1, --groups]");
  } else {
    require(s.gating.empty() || s.gating == "softmax", cat("--gating sigmoid is not supported for ", s.arch));
    require(s.groups <= 1, cat("--groups is not supported for ", s.arch));
  }
  const std::string scaling = s.rope_scaling.empty() ? (s.yarn_factor > 0 ? "yarn" : "none") : s.rope_scaling;
  if (scaling == "linear" || scaling == "yarn") {
    require(s.yarn_factor > 0, cat("--rope-scaling ", scaling, " needs --rope-factor > 0"));
    c.rope_scaling = scaling == "yarn" ? RopeScaling::Yarn : RopeScaling::Linear;
    c.rope_scaling_factor = s.yarn_factor;
    c.rope_orig_ctx = s.yarn_orig_ctx > 0 ? s.yarn_orig_ctx : s.ctx;
    if (c.rope_scaling == RopeScaling::Yarn) c.rope_yarn_log_mul = s.yarn_log_mul;
    else require(s.yarn_log_mul == 0, "--yarn-log-mul needs --rope-scaling yarn");
  } else {
    require(scaling == "none", cat("--rope-scaling must be none, linear or yarn (got '", scaling, "')"));
  }
  return c;
}

}  // namespace swapmoe::forge
