// Tests of the per-tensor type choice (cli/quant_mix.h) against llama.cpp's rules in
// llama-quant.cpp (llama_tensor_get_type), written out by hand for known model shapes.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "cli/quant_mix.h"
#include "model/arch.h"

using namespace swapmoe;
using namespace swapmoe::cli;

namespace {

// The tensors of a model as the architecture table lists them.
std::vector<MixTensor> tensors_of(const ModelConfig& c) {
  std::vector<MixTensor> v;
  for (const auto& s : tensor_specs(c)) {
    if (s.role == TensorRole::Output && !c.has_output) continue;
    v.push_back({s.name, s.ne, GgmlType::F32});
  }
  return v;
}

std::map<std::string, GgmlType> plan_map(const std::string& target, const ModelConfig& c) {
  const auto t = tensors_of(c);
  MixModel m{c.n_layer, c.n_expert, c.n_head, c.n_head_kv};
  const MixPlan p = plan_quant_types(find_quant_target(target), m, t);
  std::map<std::string, GgmlType> r;
  for (size_t i = 0; i < t.size(); ++i) r[t[i].name] = p.types[i];
  return r;
}

ModelConfig qwen3_30b() {
  ModelConfig c;
  c.arch = Arch::Qwen3Moe;
  c.arch_name = "qwen3moe";
  c.n_vocab = 1024;  // small on purpose: only shapes matter
  c.n_embd = 2048;
  c.n_layer = 48;
  c.n_head = 32;
  c.n_head_kv = 4;
  c.head_dim_k = c.head_dim_v = 128;
  c.n_rot = 128;
  c.n_expert = 128;
  c.n_expert_used = 8;
  c.n_ff_exp = 768;
  c.n_ff = 6144;
  return c;
}

std::string blk(int l, const char* t) { return "blk." + std::to_string(l) + "." + t + ".weight"; }

}  // namespace

TEST(QuantMix, UseMoreBitsFor48Layers) {
  // llama.cpp: i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2, written out for n = 48.
  const std::set<int> expected = {0, 1, 2, 3, 4, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32, 35, 38, 41,
                                  42, 43, 44, 45, 46, 47};
  for (int i = 0; i < 48; ++i) EXPECT_EQ(use_more_bits(i, 48), expected.count(i) == 1) << i;
}

TEST(QuantMix, Q4KMOnQwen3MoeShape) {
  const auto p = plan_map("Q4_K_M", qwen3_30b());
  EXPECT_EQ(p.at("output.weight"), GgmlType::Q6_K);
  EXPECT_EQ(p.at("token_embd.weight"), GgmlType::Q4_K);
  EXPECT_EQ(p.at("output_norm.weight"), GgmlType::F32);
  for (int l = 0; l < 48; ++l) {
    const bool more = use_more_bits(l, 48);
    EXPECT_EQ(p.at(blk(l, "attn_v")), more ? GgmlType::Q6_K : GgmlType::Q4_K) << l;
    EXPECT_EQ(p.at(blk(l, "ffn_down_exps")), more ? GgmlType::Q6_K : GgmlType::Q4_K) << l;
    EXPECT_EQ(p.at(blk(l, "attn_q")), GgmlType::Q4_K);
    EXPECT_EQ(p.at(blk(l, "attn_k")), GgmlType::Q4_K);
    EXPECT_EQ(p.at(blk(l, "attn_output")), GgmlType::Q4_K);
    EXPECT_EQ(p.at(blk(l, "ffn_gate_exps")), GgmlType::Q4_K);
    EXPECT_EQ(p.at(blk(l, "ffn_up_exps")), GgmlType::Q4_K);
    EXPECT_EQ(p.at(blk(l, "ffn_gate_inp")), GgmlType::F32);  // router stays exact
    EXPECT_EQ(p.at(blk(l, "attn_q_norm")), GgmlType::F32);
    EXPECT_EQ(p.at(blk(l, "attn_norm")), GgmlType::F32);
  }
}

TEST(QuantMix, OtherMixes) {
  const ModelConfig c = qwen3_30b();
  auto s = plan_map("Q4_K_S", c);
  for (int l = 0; l < 48; ++l) {
    EXPECT_EQ(s.at(blk(l, "attn_v")), l < 4 ? GgmlType::Q5_K : GgmlType::Q4_K) << l;
    EXPECT_EQ(s.at(blk(l, "ffn_down_exps")), l < 6 ? GgmlType::Q5_K : GgmlType::Q4_K) << l;
  }
  auto q2 = plan_map("Q2_K", c);  // n_gqa = 8 >= 4: attn_v Q4_K
  EXPECT_EQ(q2.at(blk(7, "attn_v")), GgmlType::Q4_K);
  EXPECT_EQ(q2.at(blk(7, "ffn_down_exps")), GgmlType::Q3_K);
  EXPECT_EQ(q2.at(blk(7, "attn_output")), GgmlType::Q3_K);
  EXPECT_EQ(q2.at(blk(7, "ffn_up_exps")), GgmlType::Q2_K);
  EXPECT_EQ(q2.at("output.weight"), GgmlType::Q6_K);
  auto q3m = plan_map("Q3_K_M", c);
  EXPECT_EQ(q3m.at(blk(0, "attn_v")), GgmlType::Q5_K);
  EXPECT_EQ(q3m.at(blk(2, "attn_v")), GgmlType::Q4_K);
  EXPECT_EQ(q3m.at(blk(2, "ffn_down_exps")), GgmlType::Q5_K);  // 2 < 48/16
  EXPECT_EQ(q3m.at(blk(3, "ffn_down_exps")), GgmlType::Q4_K);
  EXPECT_EQ(q3m.at(blk(3, "attn_output")), GgmlType::Q4_K);
  EXPECT_EQ(q3m.at(blk(3, "attn_q")), GgmlType::Q3_K);
  auto q8 = plan_map("Q8_0", c);
  EXPECT_EQ(q8.at("output.weight"), GgmlType::Q8_0);
  EXPECT_EQ(q8.at(blk(0, "attn_v")), GgmlType::Q8_0);
  auto q40 = plan_map("Q4_0", c);
  EXPECT_EQ(q40.at("output.weight"), GgmlType::Q6_K);
  EXPECT_EQ(q40.at(blk(0, "attn_v")), GgmlType::Q4_0);
  auto f16 = plan_map("F16", c);
  EXPECT_EQ(f16.at("output.weight"), GgmlType::F16);
  EXPECT_EQ(f16.at(blk(0, "ffn_gate_inp")), GgmlType::F32);
  EXPECT_EQ(f16.at(blk(0, "attn_norm")), GgmlType::F32);
  auto pure = plan_map("Q4_K", c);
  EXPECT_EQ(pure.at("output.weight"), GgmlType::Q4_K);
  EXPECT_EQ(pure.at(blk(0, "attn_v")), GgmlType::Q4_K);
  EXPECT_EQ(pure.at(blk(0, "ffn_gate_inp")), GgmlType::F32);
}

// IQ4_NL / IQ4_XS / TQ*_0 / MXFP4_MOE, from llama_tensor_get_type_impl (no imatrix):
// qwen3-30b has n_gqa = 8 and 128 experts.
TEST(QuantMix, NonLinearTernaryAndMxfp4Mixes) {
  const ModelConfig c = qwen3_30b();
  for (const char* name : {"IQ4_NL", "IQ4_XS"}) {
    const GgmlType base = *ggml_type_from_name(name);
    const auto p = plan_map(name, c);
    EXPECT_EQ(p.at("output.weight"), GgmlType::Q6_K) << name;
    EXPECT_EQ(p.at("token_embd.weight"), base) << name;
    for (int l = 0; l < 48; ++l) {
      EXPECT_EQ(p.at(blk(l, "attn_v")), GgmlType::Q5_K) << name << " " << l;  // n_gqa >= 4
      EXPECT_EQ(p.at(blk(l, "ffn_down_exps")), l < 6 ? GgmlType::Q5_K : base) << name << " " << l;
      EXPECT_EQ(p.at(blk(l, "attn_output")), base) << name;
      EXPECT_EQ(p.at(blk(l, "ffn_up_exps")), base) << name;
      EXPECT_EQ(p.at(blk(l, "attn_k")), base) << name;
    }
  }
  for (const char* name : {"TQ1_0", "TQ2_0"}) {
    const GgmlType base = *ggml_type_from_name(name);
    const auto p = plan_map(name, c);
    EXPECT_EQ(p.at("output.weight"), GgmlType::Q6_K) << name;
    EXPECT_EQ(p.at("token_embd.weight"), GgmlType::Q4_K) << name;
    EXPECT_EQ(p.at(blk(3, "attn_v")), base) << name;
    EXPECT_EQ(p.at(blk(0, "ffn_down_exps")), base) << name;
    EXPECT_EQ(p.at(blk(0, "ffn_gate_inp")), GgmlType::F32) << name;
  }
  const auto mx = plan_map("MXFP4_MOE", c);
  EXPECT_EQ(mx.at("output.weight"), GgmlType::Q8_0);
  EXPECT_EQ(mx.at("token_embd.weight"), GgmlType::Q8_0);
  for (int l = 0; l < 48; l += 7) {
    for (const char* e : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"}) EXPECT_EQ(mx.at(blk(l, e)), GgmlType::MXFP4);
    for (const char* d : {"attn_q", "attn_k", "attn_v", "attn_output"}) EXPECT_EQ(mx.at(blk(l, d)), GgmlType::Q8_0);
    EXPECT_EQ(mx.at(blk(l, "ffn_gate_inp")), GgmlType::F32);
  }
  const auto pure = plan_map("MXFP4", c);
  EXPECT_EQ(pure.at("output.weight"), GgmlType::MXFP4);
  EXPECT_EQ(pure.at(blk(0, "attn_v")), GgmlType::MXFP4);
  // With 8 experts, IQ4 attn_output gets Q5_K and attn_v Q8_0.
  ModelConfig m = c;
  m.n_expert = 8;
  m.n_layer = 32;
  const auto p8 = plan_map("IQ4_XS", m);
  EXPECT_EQ(p8.at(blk(10, "attn_output")), GgmlType::Q5_K);
  EXPECT_EQ(p8.at(blk(10, "attn_v")), GgmlType::Q8_0);
  // Short rows: IQ4_XS -> IQ4_NL, ternary -> Q4_0.
  EXPECT_EQ(fallback_type(GgmlType::IQ4_XS, 96, nullptr), GgmlType::IQ4_NL);
  EXPECT_EQ(fallback_type(GgmlType::TQ1_0, 128, nullptr), GgmlType::Q4_0);
  EXPECT_EQ(fallback_type(GgmlType::TQ2_0, 100, nullptr), GgmlType::F16);
  EXPECT_EQ(fallback_type(GgmlType::MXFP4, 100, nullptr), GgmlType::F16);
}

TEST(QuantMix, TiedEmbeddingsTakeTheOutputType) {
  ModelConfig c = qwen3_30b();
  c.has_output = false;
  const auto p = plan_map("Q4_K_M", c);
  EXPECT_EQ(p.count("output.weight"), 0u);
  EXPECT_EQ(p.at("token_embd.weight"), GgmlType::Q6_K);
}

TEST(QuantMix, EightExpertsLikeMixtral) {
  ModelConfig c = qwen3_30b();
  c.arch = Arch::Llama;
  c.arch_name = "llama";
  c.n_expert = 8;
  c.n_expert_used = 2;
  c.n_layer = 32;
  const auto p = plan_map("Q4_K_M", c);
  EXPECT_EQ(p.at(blk(10, "attn_v")), GgmlType::Q8_0);
  EXPECT_EQ(p.at(blk(10, "attn_k")), GgmlType::Q8_0);
  EXPECT_EQ(p.at(blk(10, "attn_output")), GgmlType::Q5_K);
  EXPECT_EQ(p.at(blk(10, "attn_q")), GgmlType::Q4_K);
}

TEST(QuantMix, FallbackForShortRows) {
  std::string note;
  EXPECT_EQ(fallback_type(GgmlType::Q4_K, 512, &note), GgmlType::Q4_K);
  EXPECT_TRUE(note.empty());
  EXPECT_EQ(fallback_type(GgmlType::Q4_K, 128, &note), GgmlType::Q5_0);
  EXPECT_FALSE(note.empty());
  EXPECT_EQ(fallback_type(GgmlType::Q5_K, 128, nullptr), GgmlType::Q5_1);
  EXPECT_EQ(fallback_type(GgmlType::Q6_K, 96, nullptr), GgmlType::Q8_0);
  EXPECT_EQ(fallback_type(GgmlType::Q2_K, 64, nullptr), GgmlType::Q4_0);
  EXPECT_EQ(fallback_type(GgmlType::Q3_K, 100, nullptr), GgmlType::F16);
  EXPECT_EQ(fallback_type(GgmlType::Q8_0, 100, nullptr), GgmlType::F16);
}

TEST(QuantMix, DeepseekShapesAndShortOutput) {
  ModelConfig c;
  c.arch = Arch::Deepseek2;
  c.arch_name = "deepseek2";
  c.n_vocab = 512;
  c.n_embd = 512;
  c.n_layer = 4;
  c.n_head = 4;
  c.n_head_kv = 1;
  c.n_rot = 32;
  c.kv_lora_rank = 256;
  c.head_dim_k_mla = 96;
  c.head_dim_v_mla = 64;
  c.head_dim_k = c.kv_lora_rank + c.n_rot;
  c.head_dim_v = c.kv_lora_rank;
  c.n_expert = 16;
  c.n_expert_used = 2;
  c.n_ff_exp = 256;
  c.n_ff = 512;
  c.n_layer_dense_lead = 1;
  c.n_expert_shared = 1;
  const auto p = plan_map("Q4_K_M", c);
  EXPECT_EQ(p.at(blk(1, "attn_k_b")), GgmlType::Q5_0);  // rows of 64 (nope): Q4_K -> Q5_0
  EXPECT_EQ(p.at(blk(1, "attn_v_b")), GgmlType::Q4_K);  // rows of kv_lora_rank 256
  EXPECT_EQ(p.at(blk(1, "attn_kv_a_mqa")), GgmlType::Q4_K);
  // use_more_bits(i, 4) holds for i = 2 ((2 - 0) % 3 == 2) and i = 3 (>= 7*4/8), over the
  // dense, shared and routed ffn_down alike.
  EXPECT_EQ(p.at(blk(0, "ffn_down")), GgmlType::Q4_K);
  EXPECT_EQ(p.at(blk(1, "ffn_down_exps")), GgmlType::Q4_K);
  EXPECT_EQ(p.at(blk(1, "ffn_down_shexp")), GgmlType::Q4_K);
  EXPECT_EQ(p.at(blk(2, "ffn_down_exps")), GgmlType::Q6_K);
  EXPECT_EQ(p.at(blk(3, "ffn_down_shexp")), GgmlType::Q6_K);

  // An output whose rows do not fit 256-blocks becomes Q8_0 (llama.cpp's rule for nx % qk_k).
  MixModel m{4, 16, 4, 1};
  const MixPlan q = plan_quant_types(find_quant_target("Q4_K_M"), m, {{"output.weight", {320, 100}, GgmlType::F32}});
  EXPECT_EQ(q.types[0], GgmlType::Q8_0);
}

TEST(QuantMix, UnknownTargetNamesTheValidOnes) {
  try {
    find_quant_target("Q9_9");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q4_K_M"), std::string::npos);
  }
  EXPECT_STREQ(find_quant_target("q4_k_m").name, "Q4_K_M");
}

TEST(QuantMix, TensorLayerParsing) {
  EXPECT_EQ(tensor_layer("blk.12.attn_v.weight"), 12);
  EXPECT_EQ(tensor_layer("token_embd.weight"), -1);
  EXPECT_EQ(tensor_layer("blk.x.attn_v.weight"), -1);
  EXPECT_EQ(tensor_layer("blk.3"), -1);
}

// The grid i-quant targets are pure and forge-only; rows that do not fit 256 fall back to
// IQ4_NL as in llama.cpp's llama_tensor_get_type.
TEST(QuantMix, GridIQuantTargetsArePureAndForgeOnly) {
  MixModel m{2, 8, 4, 2};
  const std::vector<MixTensor> t{{"blk.0.ffn_up_exps.weight", {256, 128, 8}, GgmlType::F32},
                                 {"blk.0.attn_q.weight", {96, 256}, GgmlType::F32},
                                 {"blk.0.attn_norm.weight", {256}, GgmlType::F32},
                                 {"output.weight", {256, 1000}, GgmlType::F32}};
  for (const char* name : {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M"}) {
    const QuantTarget& q = find_quant_target(name);
    EXPECT_TRUE(q.pure && q.forge_only) << name;
    const MixPlan p = plan_quant_types(q, m, t);
    EXPECT_EQ(p.types[0], q.base) << name;
    EXPECT_EQ(p.types[1], GgmlType::IQ4_NL) << name;
    EXPECT_EQ(p.types[2], GgmlType::F32) << name;
    EXPECT_EQ(p.types[3], q.base) << name;
  }
  EXPECT_FALSE(find_quant_target("Q4_K_M").forge_only);
}
