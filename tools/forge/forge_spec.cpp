#include "forge_spec.h"

#include "arch/arch.h"
#include "util/error.h"

namespace swapmoe::forge {

std::vector<std::string> preset_names() {
  return {"qwen3-30b-a3b", "deepseek-r1-671b-q4km", "deepseek-r1-671b-ollama", "deepseek-r1-671b-ud-iq1s", "kimi-k2",
          "glm-4.5-air", "glm-4.6", "gpt-oss-20b", "gpt-oss-120b"};
}

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
  if (name == "deepseek-r1-671b-ud-iq1s") {
    // unsloth's DeepSeek-R1-UD-IQ1_S ("1.58-bit dynamic", huggingface.co/unsloth/DeepSeek-R1-GGUF,
    // January 2025): 3 parts, 1025 tensors, general.file_type IQ1_S. Where each rule comes from:
    //  - Layout and keys: the llama.cpp load log of this file in unslothai/unsloth issue #1591
    //    (key_length 192 / value_length 128, no *_mla or expert_group_* keys, so llama.cpp
    //    routes without group limits): the same legacy layout as ollama's blob, hence that
    //    preset as the base.
    //  - Type counts: llama.cpp's load log of the file lists f32 361, q4_K 190, q5_K 116,
    //    q6_K 184, iq2_xxs 6, iq1_s 168 ("file size = 130.60 GiB (1.67 BPW)"). These figures
    //    are as remembered from public logs; the search corpus here did not hold a copy to
    //    check them against. They are consistent with the layout: 361 = 4 norms x 61 +
    //    output_norm + 58 routers + 58 exp_probs_b, 168 + 6 = 58 MoE layers x 3 expert tensors,
    //    and 190 + 116 + 184 = the 490 other matrices.
    //  - Routed experts (unsloth.ai/blog/deepseekr1-dynamic, "MoE bits 1.58, down_proj
    //    2.06/1.56bit"): gate/up IQ1_S (1.5625 bpw); down IQ2_XXS (2.0625 bpw) in 6 layers,
    //    IQ1_S in the other 52. WHICH 6 is inferred: the blog says down_proj is most sensitive in
    //    the first layers, and llama.cpp's IQ1_S mix raises ffn_down while i_ffn_down <
    //    n_ffn_down / 8, where the counter runs over all 119 ffn_down tensors (3 dense + 58
    //    routed + 58 shared) in (layer, name) order: that is exactly blk.3-8's ffn_down_exps.
    //  - The other matrices (blog: attention and the 3 dense layers "4 or 6 bit", shared
    //    experts higher than the routed ones): the split below is INFERRED, chosen as the one
    //    natural assignment that gives the logged counts exactly: q6_K for the down
    //    projections (dense, shared), attn_kv_a_mqa, attn_kv_b and output (61+61+58+3+1 =
    //    184); q5_K for the shared gate/up (2 x 58 = 116); q4_K for attn_q_a, attn_q_b,
    //    attn_output, the dense gate/up and token_embd (3 x 61 + 6 + 1 = 190). The forged
    //    file has 130.60 GiB of tensors, the logged size to the digit (the test in
    //    tests/unit/tools/test_forge_spec.cpp allows 1%); tensor by tensor it may still differ
    //    from the real file.
    //  - Parts: gguf-split --split-max-size 50G (10^9 bytes), which cuts 140 GB into 3 parts
    //    as the release has. (unsloth's "131GB" is the GiB figure.)
    s = preset("deepseek-r1-671b-ollama");
    s.name = "forged DeepSeek-R1-671B UD-IQ1_S (unsloth dynamic 1.58-bit)";
    s.type = "IQ1_S";  // pure: every quantizable tensor IQ1_S unless a rule below says otherwise
    s.split_max_size = "50G";
    s.tensor_types = {
        "^blk\\.[3-8]\\.ffn_down_exps\\.=IQ2_XXS",
        "_exps\\.weight$=IQ1_S",
        "ffn_down_shexp\\.=Q6_K",
        "ffn_(gate|up)_shexp\\.=Q5_K",
        "attn_kv_a_mqa\\.|attn_kv_b\\.=Q6_K",
        "attn_q_a\\.|attn_q_b\\.|attn_output\\.=Q4_K",
        "^blk\\.[0-2]\\.ffn_down\\.=Q6_K",
        "^blk\\.[0-2]\\.ffn_(gate|up)\\.=Q4_K",
        "^output\\.=Q6_K",
        "^token_embd\\.=Q4_K",
    };
    return s;
  }
  if (name == "deepseek-r1-671b-ollama") {
    // ollama's deepseek-r1:671b (= 671b-q4_K_M), one 404 GB blob of 1025 tensors: the same
    // shape in the legacy MLA layout (one attn_kv_b per layer, key_length 192 / value_length
    // 128, no *_mla keys) and without the expert_group_* keys, which llama.cpp's converter did
    // not write in January 2025 (so llama.cpp routes it without group limits). The Q4_K_M mix
    // gives each tensor the type llama.cpp's quantizer gives it (scripts/legacy_r1_types.py
    // checks this against llama_model_quantize).
    s = preset("deepseek-r1-671b-q4km");
    s.name = "forged DeepSeek-R1-671B (ollama blob layout)";
    s.mla_layout = "legacy";
    s.groups = 0;
    s.groups_used = 0;
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
    // The R1 shape with Kimi's differences; everything else (widths, MLA ranks, head dims,
    // shared expert, gating, YaRN's original context and log multiplier) is the same.
    s = preset("deepseek-r1-671b-q4km");
    s.name = "forged Kimi-K2";
    s.experts = 384;
    s.heads = 64;
    s.leading_dense = 1;
    s.groups = 1;
    s.groups_used = 1;
    s.expert_weights_scale = 2.827f;
    s.ctx = 131072;
    s.rope_base = 50000.0f;
    s.yarn_factor = 32.0f;
    return s;
  }
  if (name == "glm-4.6") {
    // GLM-4.6 (zai-org/GLM-4.6 config.json; GLM-4.5 has the same shape with a 131072 context):
    // 92 layers + 1 NextN/MTP layer, 5120 wide, GQA 96/8 heads of 128 with q/k/v biases and a
    // per-head qk-norm, rope over half of each head (64 of 128, base 1e6), 3 dense leading layers
    // of width 12288, then 160 routed experts of width 1536, top-8, sigmoid gating with a
    // selection bias, weights renormalised and scaled by 2.5, one shared expert; 151552 tokens
    // (GLM-4's vocabulary: forge it around one of that size), rms_eps 1e-5, untied output.
    s.arch = "glm4moe";
    s.type = "Q4_K_M";
    s.name = "forged GLM-4.6";
    s.layers = 92;
    s.nextn_layers = 1;
    s.embd = 5120;
    s.ff = 12288;
    s.expert_ff = 1536;
    s.experts = 160;
    s.experts_used = 8;
    s.heads = 96;
    s.heads_kv = 8;
    s.head_dim = 128;
    s.rope_dim = 64;
    s.qk_norm = "on";
    s.shared_experts = 1;
    s.leading_dense = 3;
    s.gating = "sigmoid";
    s.expert_weights_scale = 2.5f;
    s.ctx = 202752;
    s.rope_base = 1000000.0f;
    s.rms_eps = 1e-5f;
    return s;
  }
  if (name == "glm-4.5-air") {
    // GLM-4.5-Air (zai-org/GLM-4.5-Air config.json): 46 layers + 1 NextN/MTP layer, 4096 wide,
    // the same attention without qk-norm (use_qk_norm false), 1 dense leading layer of width
    // 10944, 128 routed experts of width 1408, top-8, routed scale 1.0, 131072 context.
    s = preset("glm-4.6");
    s.name = "forged GLM-4.5-Air";
    s.layers = 46;
    s.embd = 4096;
    s.ff = 10944;
    s.expert_ff = 1408;
    s.experts = 128;
    s.qk_norm = "off";
    s.leading_dense = 1;
    s.expert_weights_scale = 1.0f;
    s.ctx = 131072;
    return s;
  }
  if (name == "gpt-oss-20b" || name == "gpt-oss-120b") {
    // openai/gpt-oss-20b and -120b (config.json; llama.cpp's GGUF of them): 24 / 36 layers,
    // 2880 wide, 32 / 128 experts of width 2880, top-4, GQA 64 heads / 8 KV heads of 64, sliding
    // window 128 on every other layer, rope base 150000 with YaRN x32 over 4096 (context
    // 131072), rms eps 1e-5, o200k_harmony vocabulary (201088 tokens: forge it around the vocab
    // GGUF that tests/conformance/vocab_gguf.mjs builds). The released files keep the experts
    // in MXFP4 and the rest in 8 bits or more: the MXFP4_MOE mix (Q8_0 elsewhere).
    const bool big = name == "gpt-oss-120b";
    s.arch = "gpt-oss";
    s.type = "MXFP4_MOE";
    s.name = big ? "forged gpt-oss-120b" : "forged gpt-oss-20b";
    s.layers = big ? 36 : 24;
    s.embd = 2880;
    s.ff = 2880;
    s.expert_ff = 2880;
    s.experts = big ? 128 : 32;
    s.experts_used = 4;
    s.heads = 64;
    s.heads_kv = 8;
    s.head_dim = 64;
    s.ctx = 131072;
    s.rope_base = 150000.0f;
    s.yarn_factor = 32.0f;
    s.yarn_orig_ctx = 4096;
    s.rms_eps = 1e-5f;
    s.sliding_window = 128;
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
    require(s.mla_layout == "split" || s.mla_layout == "legacy", "--mla-layout must be split or legacy");
    c.mla_legacy = s.mla_layout == "legacy";
  } else {
    require(s.mla_layout == "split", cat("--mla-layout legacy is only supported for MLA architectures, not ", s.arch));
    c.head_dim_k = s.head_dim > 0 ? s.head_dim : s.embd / s.heads;
    require(c.head_dim_k >= 2, "head dimension must be >= 2");
    c.head_dim_v = s.head_dim_v > 0 ? s.head_dim_v : c.head_dim_k;
    const bool full_qk_norm = a.qk_norm == QkNorm::Full;
    c.n_head_kv = s.heads_kv > 0 ? s.heads_kv : (full_qk_norm || s.heads % 2 != 0 ? s.heads : s.heads / 2);
    require(s.heads % c.n_head_kv == 0, cat("--heads (", s.heads, ") must be a multiple of --heads-kv (", c.n_head_kv, ")"));
    if (full_qk_norm)
      require(c.n_head_kv == c.n_head && c.head_dim_k * c.n_head == c.n_embd,
              cat(s.arch, " normalises q and k over the whole width: needs --heads-kv = --heads and --head-dim = --embd / --heads"));
    // Partial rotary architectures (glm4moe) rotate half of each head by default.
    c.n_rot = s.rope_dim > 0 ? s.rope_dim : a.partial_rotary ? c.head_dim_k / 2 / 2 * 2 : c.head_dim_k;
    require(c.n_rot == c.head_dim_k || (a.partial_rotary && c.n_rot < c.head_dim_k && c.n_rot % 2 == 0),
            "--rope-dim must equal the head dimension for this architecture");
  }
  require(s.qk_norm.empty() || s.qk_norm == "on" || s.qk_norm == "off", "--qk-norm must be on or off");
  if (s.qk_norm == "off") {
    require(a.qk_norm_optional, cat("--qk-norm off: ", s.arch, " files always have their q/k norms"));
    c.arch.qk_norm = QkNorm::None;
  } else if (s.qk_norm == "on") {
    require(a.qk_norm != QkNorm::None, cat("--qk-norm on: ", s.arch, " has no q/k norms"));
  }
  if (a.nextn) {
    c.n_layer_nextn = s.nextn_layers >= 0 ? s.nextn_layers : 1;
  } else {
    require(s.nextn_layers <= 0, cat("--nextn-layers: ", s.arch, " files have no NextN/MTP layers"));
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
  if (a.sliding_window_pattern != 0) {
    c.n_swa = s.sliding_window > 0 ? s.sliding_window : 128;
    c.rope_freq_base_swa = s.rope_base_swa > 0 ? s.rope_base_swa : c.rope_freq_base;
  } else {
    require(s.sliding_window == 0 && s.rope_base_swa == 0,
            cat("--sliding-window / --rope-base-swa are not supported for ", s.arch));
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
