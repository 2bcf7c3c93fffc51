// Tests of swapmoe-forge's command-line model description (tools/forge/forge_spec.cpp):
// RoPE scaling flags and the deepseek2 shared-expert requirement. The forge is an
// executable, not a library, so its source is compiled into this test directly.

#include <gtest/gtest.h>

#include <map>

#include "../../../tools/forge/forge_spec.cpp"
#include "../../../tools/forge/forge_types.cpp"
#include "arch/arch.h"
#include "convert/quant_mix.h"
#include "util/error.h"

using namespace swapmoe;
using namespace swapmoe::forge;

namespace {
// Round trip through the GGUF keys, as llama.cpp and swapmoe's loader see the file.
float key_f32(const ModelConfig& c, const std::string& key) {
  for (const auto& [k, v] : config_to_kv(c))
    if (k == key) return v.f;
  return -1;
}
bool has_key(const ModelConfig& c, const std::string& key) {
  for (const auto& kv : config_to_kv(c))
    if (kv.first == key) return true;
  return false;
}
}  // namespace

TEST(ForgeSpec, RopeScalingFlags) {
  ForgeSpec s;
  EXPECT_EQ(make_config(s, 1000).rope_scaling, RopeScaling::None);
  EXPECT_FALSE(has_key(make_config(s, 1000), "qwen3moe.rope.scaling.type"));

  s.rope_scaling = "linear";
  s.yarn_factor = 4;
  ModelConfig c = make_config(s, 1000);
  EXPECT_EQ(c.rope_scaling, RopeScaling::Linear);
  EXPECT_FLOAT_EQ(c.rope_scaling_factor, 4.0f);
  EXPECT_EQ(c.rope_orig_ctx, s.ctx);

  s.arch = "deepseek2";
  s.rope_scaling = "yarn";
  s.yarn_factor = 40;
  s.yarn_orig_ctx = 4096;
  s.yarn_log_mul = 1.0f;
  c = make_config(s, 1000);
  EXPECT_EQ(c.rope_scaling, RopeScaling::Yarn);
  EXPECT_EQ(c.rope_orig_ctx, 4096);
  // deepseek2 files store the multiplier x 0.1, as the converter writes it.
  EXPECT_NEAR(key_f32(c, "deepseek2.rope.scaling.yarn_log_multiplier"), 0.1f, 1e-7);
  EXPECT_FLOAT_EQ(key_f32(c, "deepseek2.rope.scaling.factor"), 40.0f);
}

TEST(ForgeSpec, RopeScalingErrors) {
  ForgeSpec s;
  s.rope_scaling = "yarn";
  EXPECT_THROW(make_config(s, 1000), Error);  // no factor
  s.rope_scaling = "cubic";
  s.yarn_factor = 2;
  EXPECT_THROW(make_config(s, 1000), Error);
  s.rope_scaling = "linear";
  s.yarn_log_mul = 1;
  EXPECT_THROW(make_config(s, 1000), Error);  // a YaRN-only setting
}

TEST(ForgeSpec, Deepseek2NeedsASharedExpert) {
  // llama.cpp creates ffn_*_shexp as required tensors for every deepseek2 MoE layer and
  // asserts on them in the graph, so 0 shared experts cannot load there.
  ForgeSpec s;
  s.arch = "deepseek2";
  s.shared_experts = 0;
  EXPECT_THROW(make_config(s, 1000), Error);
}

TEST(ForgeSpec, LegacyMlaLayoutAsOllamasR1Blob) {
  // ollama's deepseek-r1:671b: 1025 tensors, attn_kv_b instead of attn_k_b/attn_v_b, the
  // per-head sizes in key_length/value_length, n_head in head_count_kv, no *_mla or group keys.
  const ModelConfig c = make_config(preset("deepseek-r1-671b-ollama"), 129280);
  EXPECT_TRUE(c.mla_legacy);
  EXPECT_EQ(c.head_dim_k_mla, 192);
  EXPECT_EQ(c.head_dim_v_mla, 128);
  EXPECT_EQ(c.n_head_kv, 1);  // the latent cache's shape, as the engine uses it
  const auto specs = tensor_specs(c);
  EXPECT_EQ(specs.size(), 1025u);
  int kv_b = 0;
  for (const auto& s : specs) {
    EXPECT_EQ(s.name.find("attn_k_b"), std::string::npos) << s.name;
    EXPECT_EQ(s.name.find("attn_v_b"), std::string::npos) << s.name;
    if (s.name.find("attn_kv_b") != std::string::npos) {
      ++kv_b;
      EXPECT_EQ(s.ne, (std::vector<int64_t>{512, 128 * (128 + 128)}));
    }
  }
  EXPECT_EQ(kv_b, 61);
  auto u32 = [&](const std::string& key) -> int64_t {
    for (const auto& [k, v] : config_to_kv(c))
      if (k == key) return v.u;
    return -1;
  };
  EXPECT_EQ(u32("deepseek2.attention.key_length"), 192);
  EXPECT_EQ(u32("deepseek2.attention.value_length"), 128);
  EXPECT_EQ(u32("deepseek2.attention.head_count_kv"), 128);
  EXPECT_FALSE(has_key(c, "deepseek2.attention.key_length_mla"));
  EXPECT_FALSE(has_key(c, "deepseek2.attention.value_length_mla"));
  EXPECT_FALSE(has_key(c, "deepseek2.expert_group_count"));
  // The split layout of the same shape keeps its keys.
  const ModelConfig n = make_config(preset("deepseek-r1-671b-q4km"), 129280);
  EXPECT_FALSE(n.mla_legacy);
  EXPECT_TRUE(has_key(n, "deepseek2.attention.key_length_mla"));
  EXPECT_EQ(tensor_specs(n).size(), 1025u + 61u);
}

TEST(ForgeSpec, LegacyLayoutOnlyForDeepseek2) {
  ForgeSpec s;
  s.mla_layout = "legacy";
  EXPECT_THROW(make_config(s, 1000), Error);
  s.arch = "deepseek2";
  s.mla_layout = "fused";
  EXPECT_THROW(make_config(s, 1000), Error);
}

TEST(ForgeSpec, OllamaPresetTypesAsLlamaQuantizeGivesThem) {
  // Recorded with scripts/legacy_r1_types.py: llama_model_quantize (node-llama-cpp 3.21.1's
  // libllama) on the legacy layout in F16 with R1's names and 61 layers gives F32 361, Q4_K 576,
  // Q6_K 88; attn_kv_b counts as attn_v, so it is Q6_K on the use_more_bits layers (30 of 61).
  const ModelConfig c = make_config(preset("deepseek-r1-671b-ollama"), 129280);
  std::vector<cli::MixTensor> t;
  for (const auto& s : tensor_specs(c)) t.push_back({s.name, s.ne, GgmlType::F32});
  const cli::MixModel m{c.n_layer, c.n_expert, c.n_head, c.n_head};  // head_count_kv as the file states it
  const cli::MixPlan p = cli::plan_quant_types(cli::find_quant_target("Q4_K_M"), m, t);
  std::map<GgmlType, int> count;
  std::string kv_b_q6;
  for (size_t i = 0; i < t.size(); ++i) {
    ++count[p.types[i]];
    if (t[i].name.find("attn_kv_b") != std::string::npos && p.types[i] == GgmlType::Q6_K)
      kv_b_q6 += t[i].name.substr(4, t[i].name.find('.', 4) - 4) + " ";
  }
  EXPECT_EQ(count[GgmlType::F32], 361);
  EXPECT_EQ(count[GgmlType::Q4_K], 576);
  EXPECT_EQ(count[GgmlType::Q6_K], 88);
  EXPECT_EQ(kv_b_q6, "0 1 2 3 4 5 6 9 12 15 18 21 24 27 30 33 36 39 42 45 48 51 53 54 55 56 57 58 59 60 ");
}

namespace {
std::map<GgmlType, int> type_counts(const ForgeTensors& ft) {
  std::map<GgmlType, int> n;
  for (GgmlType t : ft.types) ++n[t];
  return n;
}
uint64_t data_bytes(const ForgeTensors& ft) {
  uint64_t total = 0;
  for (size_t i = 0; i < ft.tensors.size(); ++i) {
    uint64_t rows = 1;
    for (size_t d = 1; d < ft.tensors[i].ne.size(); ++d) rows *= static_cast<uint64_t>(ft.tensors[i].ne[d]);
    total += ggml_row_size(ft.types[i], ft.tensors[i].ne[0]) * rows;
  }
  return total;
}
}  // namespace

TEST(ForgeSpec, UdIq1sPresetMatchesUnslothsFile) {
  // The rule table of the preset (forge_spec.cpp) against the type counts of llama.cpp's load
  // log of DeepSeek-R1-UD-IQ1_S and its 130.60 GiB.
  const ForgeSpec s = preset("deepseek-r1-671b-ud-iq1s");
  const ModelConfig c = make_config(s, 129280);
  EXPECT_TRUE(c.mla_legacy);
  const ForgeTensors ft = plan_forge_tensors(s, c, cli::find_quant_target(s.type));
  ASSERT_EQ(ft.tensors.size(), 1025u);
  auto n = type_counts(ft);
  EXPECT_EQ(n[GgmlType::F32], 361);
  EXPECT_EQ(n[GgmlType::Q4_K], 190);
  EXPECT_EQ(n[GgmlType::Q5_K], 116);
  EXPECT_EQ(n[GgmlType::Q6_K], 184);
  EXPECT_EQ(n[GgmlType::IQ2_XXS], 6);
  EXPECT_EQ(n[GgmlType::IQ1_S], 168);
  EXPECT_EQ(n.size(), 6u) << "a type outside the log's six";
  // The rules themselves: IQ2_XXS exactly on blk.3-8's routed down projections.
  for (size_t i = 0; i < ft.tensors.size(); ++i) {
    const auto& t = ft.tensors[i];
    const bool down38 = t.name.find("ffn_down_exps") != std::string::npos && t.layer >= 3 && t.layer <= 8;
    EXPECT_EQ(ft.types[i] == GgmlType::IQ2_XXS, down38) << t.name;
    if (t.role == TensorRole::Experts && !down38) {
      EXPECT_EQ(ft.types[i], GgmlType::IQ1_S) << t.name;
    }
  }
  const double gib = static_cast<double>(data_bytes(ft)) / (1024.0 * 1024.0 * 1024.0);
  EXPECT_NEAR(gib, 130.60, 130.60 * 0.01);
  // Three parts of at most 50 GB of tensor data, as the release.
  EXPECT_EQ(s.split_max_size, "50G");
  const double parts = static_cast<double>(data_bytes(ft)) / 50e9;
  EXPECT_GT(parts, 2.0);
  EXPECT_LE(parts, 3.0);
}

TEST(ForgeSpec, TensorTypeRules) {
  ForgeSpec s;  // qwen3moe, 2 layers
  s.type = "Q8_0";
  s.tensor_types = {"blk\\.1\\.ffn_down_exps=IQ2_XXS", "_exps=Q4_K", "attn_norm=Q4_K", "token_embd=F16"};
  const ModelConfig c = make_config(s, 1000);
  const ForgeTensors ft = plan_forge_tensors(s, c, cli::find_quant_target(s.type));
  for (size_t i = 0; i < ft.tensors.size(); ++i) {
    const std::string& name = ft.tensors[i].name;
    GgmlType want = GgmlType::Q8_0;
    if (name == "blk.1.ffn_down_exps.weight") want = GgmlType::IQ2_XXS;  // the first match wins
    else if (name.find("_exps") != std::string::npos) want = GgmlType::Q4_K;
    else if (name.find("_norm") != std::string::npos || name.find("ffn_gate_inp") != std::string::npos)
      want = GgmlType::F32;  // never quantized, whatever the rules say
    else if (name == "token_embd.weight") want = GgmlType::F16;
    EXPECT_EQ(ft.types[i], want) << name;
  }
  EXPECT_THROW(parse_tensor_type_rule("ffn_down"), Error);
  EXPECT_THROW(parse_tensor_type_rule("=Q4_K"), Error);
  EXPECT_THROW(parse_tensor_type_rule("ffn_down=Q9_K"), Error);
  EXPECT_THROW(parse_tensor_type_rule("ffn_(down=Q4_K"), Error);
  EXPECT_THROW(parse_tensor_type_rule("ffn_down=Q8_K"), Error);  // an activation type
  EXPECT_EQ(parse_tensor_type_rule("a=b=IQ1_S").pattern, "a=b");
}

TEST(ForgeSpec, GlmPresetsHaveTheRealShapes) {
  // zai-org/GLM-4.5-Air and GLM-4.6 config.json: 46 / 92 layers plus one NextN layer (block_count
  // 47 / 93), 4096 / 5120 wide, 96 heads of 128 over 8 KV heads, rope over 64 of them, 1 / 3
  // dense layers of 10944 / 12288, 128 / 160 experts of 1408 / 1536, top-8, routed scale 1 / 2.5,
  // qk-norm only in 4.6.
  struct Want {
    const char* preset;
    int64_t layers, embd, ff, expert_ff, experts, dense;
    float scale;
    bool qk_norm;
    size_t tensors;
  };
  for (const Want& w : {Want{"glm-4.5-air", 46, 4096, 10944, 1408, 128, 1, 1.0f, false, 801},
                        Want{"glm-4.6", 92, 5120, 12288, 1536, 160, 3, 2.5f, true, 1759}}) {
    const ModelConfig c = make_config(preset(w.preset), 151552);
    EXPECT_EQ(c.arch_name, "glm4moe");
    EXPECT_EQ(c.n_layer, w.layers) << w.preset;
    EXPECT_EQ(c.n_layer_nextn, 1);
    EXPECT_EQ(c.n_embd, w.embd);
    EXPECT_EQ(c.n_ff, w.ff);
    EXPECT_EQ(c.n_ff_exp, w.expert_ff);
    EXPECT_EQ(c.n_expert, w.experts);
    EXPECT_EQ(c.n_expert_used, 8);
    EXPECT_EQ(c.n_layer_dense_lead, w.dense);
    EXPECT_EQ(c.n_expert_shared, 1);
    EXPECT_EQ(c.n_head, 96);
    EXPECT_EQ(c.n_head_kv, 8);
    EXPECT_EQ(c.head_dim_k, 128);
    EXPECT_EQ(c.n_rot, 64);
    EXPECT_EQ(c.gating, GatingFunc::Sigmoid);
    EXPECT_TRUE(c.expert_weights_norm);
    EXPECT_EQ(c.expert_weights_scale, w.scale);
    EXPECT_EQ(c.arch.qk_norm, w.qk_norm ? QkNorm::PerHead : QkNorm::None);
    EXPECT_EQ(c.n_vocab, 151552);
    int64_t block_count = -1, nextn = -1;
    for (const auto& [k, v] : config_to_kv(c)) {
      if (k == "glm4moe.block_count") block_count = v.u;
      if (k == "glm4moe.nextn_predict_layers") nextn = v.u;
    }
    EXPECT_EQ(block_count, w.layers + 1);
    EXPECT_EQ(nextn, 1);
    // What the forge writes: every tensor llama.cpp requires, the NextN layer's included, but
    // not its optional own embedding and head.
    const ForgeTensors ft = plan_forge_tensors(preset(w.preset), c, cli::find_quant_target("Q4_K_M"));
    EXPECT_EQ(ft.tensors.size(), w.tensors) << w.preset;
    size_t unused = 0;
    for (const auto& s : ft.tensors) {
      unused += s.unused;
      EXPECT_EQ(s.name.find("nextn.embed_tokens"), std::string::npos);
    }
    EXPECT_EQ(unused, w.qk_norm ? 23u : 21u);
  }
}

TEST(ForgeSpec, QkNormAndNextnFlags) {
  ForgeSpec s;
  s.arch = "glm4moe";
  s.qk_norm = "off";
  EXPECT_EQ(make_config(s, 1000).arch.qk_norm, QkNorm::None);
  s.nextn_layers = 0;
  EXPECT_EQ(make_config(s, 1000).n_layer_nextn, 0);
  s.qk_norm = "sometimes";
  EXPECT_THROW(make_config(s, 1000), Error);
  ForgeSpec q;  // qwen3moe: its files always have the norms, and no NextN layers
  q.qk_norm = "off";
  EXPECT_THROW(make_config(q, 1000), Error);
  q.qk_norm = "";
  q.nextn_layers = 1;
  EXPECT_THROW(make_config(q, 1000), Error);
}
