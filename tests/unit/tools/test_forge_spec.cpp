// Tests of swapmoe-forge's command-line model description (tools/forge/forge_spec.cpp):
// RoPE scaling flags and the deepseek2 shared-expert requirement. The forge is an
// executable, not a library, so its source is compiled into this test directly.

#include <gtest/gtest.h>

#include "../../../tools/forge/forge_spec.cpp"
#include "arch/arch.h"
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
