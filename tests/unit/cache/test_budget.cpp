// The budget accountant on a tiny model whose byte counts are worked out by hand below.
// The GGUF is written sparse (no tensor data) since only the layout matters.

#include <unistd.h>
#include <gtest/gtest.h>

#include "arch/arch.h"
#include "cache/budget.h"
#include "model/footprint.h"
#include "runtime/model_budget.h"
#include "gguf/gguf_writer.h"
#include "io/direct_file.h"
#include "util/error.h"

using namespace swapmoe;

namespace {

// Hand-computed sizes of the model written by SetUpTestSuite:
//   token_embd F32 64x100 = 25600; output_norm F32 [64] counted as 2 x 256 = 512;
//   output Q8_0 64x100: rows of 2 blocks x 34 B = 68 B -> 6800.
//   Per layer: attn_norm 512, attn_q F16 64x64 8192, attn_k F16 64x32 4096,
//   attn_v F16 64x32 4096, attn_output F16 64x64 8192, ffn_norm 512,
//   ffn_gate_inp F32 64x8 2048 -> 27648.
//   Dense = 25600 + 512 + 6800 + 2 x 27648 = 88208.
//   Experts (Q8_0): gate/up 64x32 -> 32 rows x 68 = 2176; down 32x64 -> 64 rows x 34 = 2176;
//   per expert 6528; total 2 layers x 8 x 6528 = 104448.
//   KV per token: 2 layers x 2 kv heads x (16 + 16) x 2 B = 256.
constexpr uint64_t kDense = 88208, kPerExpert = 6528, kExpertsTotal = 104448, kKvPerTok = 256;

class BudgetModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = std::string(SWAPMOE_BUILD_DIR) + "/test_budget." + std::to_string(::getpid()) + ".gguf";
    GgufWriter w;
    w.set_str("general.architecture", "qwen3moe");
    w.add_tensor_info("token_embd.weight", GgmlType::F32, {64, 100});
    w.add_tensor_info("output_norm.weight", GgmlType::F32, {64});
    w.add_tensor_info("output.weight", GgmlType::Q8_0, {64, 100});
    for (int l = 0; l < 2; ++l) {
      auto n = [&](const char* s) { return cat("blk.", l, ".", s, ".weight"); };
      w.add_tensor_info(n("attn_norm"), GgmlType::F32, {64});
      w.add_tensor_info(n("attn_q"), GgmlType::F16, {64, 64});
      w.add_tensor_info(n("attn_k"), GgmlType::F16, {64, 32});
      w.add_tensor_info(n("attn_v"), GgmlType::F16, {64, 32});
      w.add_tensor_info(n("attn_output"), GgmlType::F16, {64, 64});
      w.add_tensor_info(n("ffn_norm"), GgmlType::F32, {64});
      w.add_tensor_info(n("ffn_gate_inp"), GgmlType::F32, {64, 8});
      w.add_tensor_info(n("ffn_gate_exps"), GgmlType::Q8_0, {64, 32, 8});
      w.add_tensor_info(n("ffn_up_exps"), GgmlType::Q8_0, {64, 32, 8});
      w.add_tensor_info(n("ffn_down_exps"), GgmlType::Q8_0, {32, 64, 8});
    }
    w.begin(path_);
    while (w.current_tensor() < w.tensors().size()) w.skip_tensor();
    w.finish();
    file_ = GgufFile::open(path_).release();
    cfg_.arch = arch_spec("qwen3moe").features;
    cfg_.n_vocab = 100;
    cfg_.n_embd = 64;
    cfg_.n_layer = 2;
    cfg_.n_head = 4;
    cfg_.n_head_kv = 2;
    cfg_.head_dim_k = cfg_.head_dim_v = 16;
    cfg_.n_expert = 8;
    cfg_.n_expert_used = 2;
    cfg_.n_ff_exp = 32;
  }
  static void TearDownTestSuite() {
    delete file_;
    std::remove(path_.c_str());
  }
  // The slot size worked out directly: per layer, each part's longest aligned superset.
  static uint64_t hand_slot(uint64_t a) {
    uint64_t best = 0;
    for (int l = 0; l < 2; ++l) {
      uint64_t sum = 0;
      for (const char* part : {"gate", "up", "down"}) {
        const GgufTensorInfo* t = file_->find_tensor(cat("blk.", l, ".ffn_", part, "_exps.weight"));
        uint64_t longest = 0;
        for (int e = 0; e < 8; ++e) {
          const uint64_t off = t->offset + e * 2176ull;
          longest = std::max(longest, (off + 2176 + a - 1) / a * a - off / a * a);
        }
        sum += longest;
      }
      best = std::max(best, sum);
    }
    return best;
  }
  static std::string path_;
  static GgufFile* file_;
  static ModelConfig cfg_;
};
std::string BudgetModel::path_;
GgufFile* BudgetModel::file_ = nullptr;
ModelConfig BudgetModel::cfg_;

}  // namespace

TEST(ParseSize, BinaryUnits) {
  EXPECT_EQ(parse_size("6G"), 6ull << 30);
  EXPECT_EQ(parse_size("6GiB"), 6ull << 30);
  EXPECT_EQ(parse_size("6gb"), 6ull << 30);
  EXPECT_EQ(parse_size("512M"), 512ull << 20);
  EXPECT_EQ(parse_size("1.5G"), 1610612736ull);
  EXPECT_EQ(parse_size("1k"), 1024u);
  EXPECT_EQ(parse_size(" 4096 "), 4096u);
  EXPECT_EQ(parse_size("2T"), 2ull << 40);
  for (const char* bad : {"", "G", "6X", "-1", "6GG", "1.5.5G", "abc"}) EXPECT_THROW(parse_size(bad), Error) << bad;
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(3ull << 30), "3.00 GiB");
  EXPECT_EQ(format_bytes(17), "17 B");
}

TEST_F(BudgetModel, MeasuresTheModelByHand) {
  BudgetRequest r;
  r.n_ctx = 1000;
  const BudgetPlan p = measure_model(cfg_, *file_, r);
  EXPECT_EQ(p.dense_bytes, kDense);
  EXPECT_EQ(p.kv_bytes_per_token, kKvPerTok);
  EXPECT_EQ(p.kv_bytes, 256000u);
  EXPECT_EQ(p.expert_bytes_total, kExpertsTotal);
  ASSERT_EQ(p.layers.size(), 2u);
  EXPECT_EQ(p.layers[1].layer, 1);
  EXPECT_EQ(p.layers[0].bytes_per_expert, kPerExpert);
  EXPECT_EQ(p.slot_bytes, hand_slot(4096));
  EXPECT_GE(p.slot_bytes, 3u * 4096);
  EXPECT_EQ(p.min_slots, 2);
  EXPECT_EQ(p.min_budget, kDense + 256000 + p.scratch_bytes + p.prefill_bytes + p.overhead_bytes + 2 * p.slot_bytes);
  // The minimum prefill chunk is 16 tokens.
  EXPECT_EQ(p.prefill_bytes_per_token, prefill_bytes_per_token(cfg_));
  EXPECT_EQ(p.prefill_bytes, 16 * p.prefill_bytes_per_token);
  EXPECT_GE(p.overhead_bytes, 2u << 20);  // resident set at plan time + growth allowances (budget.cpp; test_demo checks the formula)
  // A smaller alignment gives smaller slots.
  r.alignment = 512;
  EXPECT_EQ(measure_model(cfg_, *file_, r).slot_bytes, hand_slot(512));
  // Per-layer pools need n_expert_used in each layer.
  r.per_layer = true;
  EXPECT_EQ(measure_model(cfg_, *file_, r).min_slots, 4);
}

TEST_F(BudgetModel, MlaKvCacheSize) {
  ModelConfig c = cfg_;
  c.arch = arch_spec("deepseek2").features;
  c.kv_lora_rank = 512;
  c.n_rot = 64;
  BudgetRequest r;
  // 2 layers x (512 + 64) x 2 bytes.
  EXPECT_EQ(measure_model(c, *file_, r).kv_bytes_per_token, 2304u);
}

TEST_F(BudgetModel, CacheGetsTheRest) {
  BudgetRequest r;
  r.n_ctx = 4096;
  const BudgetPlan m = measure_model(cfg_, *file_, r);
  const uint64_t base = m.dense_bytes + m.scratch_bytes + m.prefill_bytes + m.overhead_bytes + 4096 * kKvPerTok;
  r.budget = base + 5 * m.slot_bytes + 100;
  const BudgetPlan p = plan_budget(cfg_, *file_, r);
  EXPECT_FALSE(p.ctx_reduced);
  EXPECT_EQ(p.n_ctx, 4096);
  EXPECT_EQ(p.cache_bytes, 5 * m.slot_bytes + 100);
  EXPECT_EQ(p.n_slots, 5);
  EXPECT_FALSE(p.all_experts_fit);
  // Shared pool, even share 2.5 slots per layer: 2 layers x 2 used x (1 - 2.5/8) x 6528.
  EXPECT_DOUBLE_EQ(p.worst_read_bytes_per_token, 2 * 2 * (1 - 2.5 / 8) * 6528);
  // Per-layer pools of 3 and 2 slots.
  r.per_layer = true;
  r.budget = base + 5 * m.slot_bytes;
  const BudgetPlan q = plan_budget(cfg_, *file_, r);
  EXPECT_EQ(q.n_slots, 5);
  EXPECT_DOUBLE_EQ(q.worst_read_bytes_per_token, 2 * (1 - 3.0 / 8) * 6528 + 2 * (1 - 2.0 / 8) * 6528);
  // Room for everything: all 16 experts, nothing read.
  r.budget = base + 100 * m.slot_bytes;
  const BudgetPlan all = plan_budget(cfg_, *file_, r);
  EXPECT_TRUE(all.all_experts_fit);
  EXPECT_EQ(all.n_slots, 16);
  EXPECT_EQ(all.cache_bytes, 16 * m.slot_bytes);
  EXPECT_EQ(all.worst_read_bytes_per_token, 0.0);

  const nlohmann::json j = plan_to_json(p);
  EXPECT_EQ(j["dense_bytes"].get<uint64_t>(), kDense);
  EXPECT_EQ(j["n_slots"].get<int64_t>(), 5);
  EXPECT_EQ(j["moe_layers"].size(), 2u);
  const std::string text = plan_to_text(p);
  EXPECT_NE(text.find("dense weights"), std::string::npos);
  EXPECT_NE(text.find(format_bytes(kDense)), std::string::npos) << text;
  EXPECT_NE(text.find("5 slots"), std::string::npos) << text;
}

// The batched prefill's chunk buffers are part of the budget: at least 16 tokens, then 1/32 of
// the expert share, at most a 512-token chunk, and never at the expense of the minimum slots.
TEST_F(BudgetModel, PrefillScratchComesFromTheBudget) {
  ModelConfig c = cfg_;
  c.n_embd = 4096;  // widen the activations only: the file's tensors are measured as they are
  c.n_ff = 16384;
  BudgetRequest r;
  r.n_ctx = 256;
  const BudgetPlan m = measure_model(c, *file_, r);
  const uint64_t per = prefill_bytes_per_token(c);
  ASSERT_GT(per, 64u * 1024);
  EXPECT_EQ(m.prefill_bytes, 16 * per);
  const uint64_t base = m.dense_bytes + m.scratch_bytes + m.overhead_bytes + m.kv_bytes;
  // At the minimum: the minimum prefill and the minimum slots.
  r.budget = m.min_budget;
  BudgetPlan p = plan_budget(c, *file_, r);
  EXPECT_EQ(p.prefill_bytes, m.prefill_bytes);
  EXPECT_EQ(p.n_slots, 2);
  // 1 GiB for prefill + experts: 1/32 of it goes to prefill.
  r.budget = base + (1ull << 30);
  p = plan_budget(c, *file_, r);
  EXPECT_EQ(p.prefill_bytes, std::min<uint64_t>(kPrefillMaxChunk * per, (1ull << 30) / 32));
  // Plenty: capped at a whole chunk.
  r.budget = base + (64ull << 30);
  p = plan_budget(c, *file_, r);
  EXPECT_EQ(p.prefill_bytes, kPrefillMaxChunk * per);
  EXPECT_EQ(plan_to_json(p)["prefill_bytes"].get<uint64_t>(), p.prefill_bytes);
  EXPECT_NE(plan_to_text(p).find("512-token chunks"), std::string::npos) << plan_to_text(p);
}

// budget_for_slots is the inverse of plan_budget's slot count, prefill buffers included.
TEST_F(BudgetModel, BudgetForSlotsGivesExactlyThoseSlots) {
  for (int64_t embd : {int64_t{0}, int64_t{4096}}) {
    ModelConfig c = cfg_;
    if (embd) {
      c.n_embd = embd;  // big prefill rows: the 1/32 rule is active
      c.n_ff = 16384;
    }
    BudgetRequest r;
    r.n_ctx = 256;
    const BudgetPlan m = measure_model(c, *file_, r);
    for (int64_t slots : {2, 3, 5, 9, 15}) {
      r.budget = budget_for_slots(m, slots);
      const BudgetPlan p = plan_budget(c, *file_, r);
      EXPECT_EQ(p.n_slots, slots) << "embd " << embd << " slots " << slots;
    }
  }
}

TEST_F(BudgetModel, ReducesContextThenRefuses) {
  BudgetRequest r;
  r.n_ctx = 4096;
  const BudgetPlan m = measure_model(cfg_, *file_, r);
  const uint64_t fixed = m.dense_bytes + m.scratch_bytes + m.prefill_bytes + m.overhead_bytes + 2 * m.slot_bytes;
  // Room for 1000 tokens of KV next to the minimum: the context drops to 768.
  r.budget = fixed + 1000 * kKvPerTok;
  const BudgetPlan p = plan_budget(cfg_, *file_, r);
  EXPECT_TRUE(p.ctx_reduced);
  EXPECT_EQ(p.n_ctx, 768);
  EXPECT_EQ(p.kv_bytes, 768 * kKvPerTok);
  EXPECT_EQ(p.cache_bytes, 2 * m.slot_bytes + 232 * kKvPerTok);
  EXPECT_EQ(p.n_slots, static_cast<int64_t>(p.cache_bytes / m.slot_bytes));
  ASSERT_FALSE(p.notes.empty());
  EXPECT_NE(p.notes[0].find("768"), std::string::npos);
  // One byte less than the minimum with a 256-token context: refused, with numbers.
  r.budget = fixed + 256 * kKvPerTok - 1;
  try {
    plan_budget(cfg_, *file_, r);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("needs at least " + format_bytes(m.min_budget)), std::string::npos) << msg;
    EXPECT_NE(msg.find("dense " + format_bytes(kDense)), std::string::npos) << msg;
    EXPECT_NE(msg.find("2 slots of " + format_bytes(m.slot_bytes)), std::string::npos) << msg;
    EXPECT_NE(msg.find("256-token context: " + format_bytes(fixed + 256 * kKvPerTok)), std::string::npos) << msg;
  }
  r.budget = fixed + 256 * kKvPerTok;
  EXPECT_EQ(plan_budget(cfg_, *file_, r).n_ctx, 256);
}

TEST_F(BudgetModel, TextReportShowsEveryPiece) {
  BudgetRequest r;
  r.n_ctx = 4096;
  const BudgetPlan m = measure_model(cfg_, *file_, r);
  r.budget = m.min_budget + 3 * m.slot_bytes;
  const std::string text = plan_to_text(plan_budget(cfg_, *file_, r));
  std::printf("%s", text.c_str());
  for (const char* k : {"budget", "dense weights", "KV cache", "scratch", "overhead", "experts", "bytes per expert",
                        "expert bytes per layer", "slot (aligned)", "minimum budget", "expert cache", "worst-case read"})
    EXPECT_NE(text.find(k), std::string::npos) << k;
  EXPECT_NE(text.find("5 slots (shared pool)"), std::string::npos) << text;
  EXPECT_NE(text.find(format_bytes(kPerExpert)), std::string::npos) << text;
}
