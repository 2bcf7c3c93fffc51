// Tests of swapmoe-forge's command-line model description (tools/forge/forge_spec.cpp):
// RoPE scaling flags and the deepseek2 shared-expert requirement. The forge is an
// executable, not a library, so its source is compiled into this test directly.

#include <gtest/gtest.h>

#include "../../../tools/forge/forge_spec.cpp"
#include "model/arch.h"
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
