// The scoring pass on the shipped demo model: the exact model under a budget reproduces the
// resident model's logits bit for bit, so the comparison against the spilled reference must
// report exactly KL 0, 100% top-1 agreement and a perplexity ratio of 1; and the pass
// refuses a reference of the wrong length.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "cache/budget.h"
#include "runtime/model_budget.h"
#include "eval/eval_pass.h"
#include "gguf/gguf.h"
#include "io/direct_file.h"
#include "arch/arch.h"
#include "model/model.h"
#include "util/error.h"

namespace swapmoe::cli {
namespace {

const std::string kModel = std::string(SWAPMOE_TEST_DATA) + "/../../models/fortunes-moe.gguf";
const std::string kText = std::string(SWAPMOE_TEST_DATA) + "/../../models/fortunes-moe-test.txt";
constexpr int64_t kCtx = 64;

std::vector<int32_t> demo_tokens(size_t n) {
  std::ifstream in(kText, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  auto f = GgufFile::open(kModel);
  std::vector<int32_t> ids = Tokenizer::from_gguf(*f)->encode(ss.str().substr(0, 4000), true, false);
  EXPECT_GE(ids.size(), n);
  ids.resize(n);
  return ids;
}

// A budget whose expert cache holds `share` of the experts (as `sweep --mem P%` does).
uint64_t budget_for_share(double share) {
  auto f = GgufFile::open(kModel);
  BudgetRequest req;
  req.n_ctx = kCtx;
  req.n_threads = 1;
  req.alignment = io::DirectFile::open(kModel).alignment();
  const BudgetPlan m = measure_model(config_from_gguf(*f), *f, req);
  int64_t total = 0;
  for (const auto& l : m.layers) total += l.n_expert;
  const auto slots = std::max<int64_t>(m.min_slots, static_cast<int64_t>(std::ceil(share * static_cast<double>(total))));
  return budget_for_slots(m, slots);
}

std::unique_ptr<Model> load(uint64_t budget, const std::string& policy = "exact", double exactness = 1.0) {
  ModelOptions o;
  o.n_threads = 1;
  o.n_ctx = kCtx;
  o.mem_budget = budget;
  o.prefetch = false;
  o.policy = policy;
  o.exactness = exactness;
  return Model::load(kModel, o);
}

TEST(ScorePass, WindowsAndScoredPositions) {
  EXPECT_EQ(scored_positions(96, 48), 94);   // 47 + 47
  EXPECT_EQ(scored_positions(97, 48), 94);   // a 1-token tail scores nothing
  EXPECT_EQ(scored_positions(98, 48), 95);   // 47 + 47 + 1
  EXPECT_EQ(scored_positions(10, 64), 9);
  EXPECT_EQ(scored_positions(1, 64), 0);
}

TEST(ScorePass, ExactUnderABudgetMatchesTheResidentReferenceExactly) {
  const std::vector<int32_t> ids = demo_tokens(100);  // windows of 48: 47 + 47 + 3 = 97 scored
  auto resident = load(0);
  LogitSpill spill(static_cast<int>(resident->config().n_vocab));
  const PassResult ref = score_tokens(*resident, ids, 48, &spill, nullptr);
  EXPECT_EQ(ref.tokens, 97);
  EXPECT_EQ(spill.size(), 97);
  EXPECT_FALSE(ref.compared);
  // Sanity: a trained model scores its own held-out text far better than uniform (ln 4096 = 8.3).
  EXPECT_LT(ref.nll, 6.0);
  EXPECT_GT(ref.nll, 2.0);
  resident.reset();

  auto cached = load(budget_for_share(0.25));
  const PassResult r = score_tokens(*cached, ids, 48, nullptr, &spill);
  ASSERT_TRUE(r.compared);
  EXPECT_EQ(r.tokens, 97);
  EXPECT_EQ(r.nll, ref.nll);
  EXPECT_EQ(r.kl_mean, 0.0);
  EXPECT_EQ(r.kl_p99, 0.0);
  EXPECT_EQ(r.agreement, 1.0);
  EXPECT_EQ(ppl_ratio(r.nll, ref.nll), 1.0);
  EXPECT_TRUE(expert_run_stats(*cached).cached);  // it really ran through the expert cache

  // A different text is not this reference: the comparison must see it (and the length check).
  std::vector<int32_t> other = ids;
  std::reverse(other.begin(), other.end());
  const PassResult diff = score_tokens(*cached, other, 48, nullptr, &spill);
  EXPECT_GT(diff.kl_mean, 0.1);
  EXPECT_LT(diff.agreement, 0.9);
  EXPECT_THROW(score_tokens(*cached, std::vector<int32_t>(ids.begin(), ids.begin() + 60), 48, nullptr, &spill), Error);
  EXPECT_THROW(score_tokens(*cached, ids, 48, &spill, &spill), Error);
  EXPECT_THROW(score_tokens(*cached, ids, kCtx + 1, nullptr, nullptr), Error);
}

TEST(ScorePass, DecodeMeasurementCountsOnlyTheDecodedTokens) {
  const std::vector<int32_t> ids = demo_tokens(16);
  auto m = load(budget_for_share(0.25));
  const DecodeResult d = measure_decode(*m, std::vector<int32_t>(ids.begin(), ids.begin() + 8), 12);
  EXPECT_EQ(d.prompt_tokens, 8);
  EXPECT_EQ(d.decode_tokens, 12);
  EXPECT_GT(d.decode_tok_s(), 0.0);
  ASSERT_TRUE(d.stats.cached);
  // 12 forward passes x 4 MoE layers x 2 experts each = 96 demand accesses.
  const auto& cfg = m->config();
  EXPECT_EQ(d.stats.cache.hits + d.stats.cache.misses, static_cast<uint64_t>(12 * cfg.n_layer * cfg.n_expert_used));
  EXPECT_THROW(measure_decode(*m, {}, 4), Error);
  EXPECT_THROW(measure_decode(*m, ids, static_cast<int>(kCtx)), Error);
}

TEST(ScorePass, SwapMoeIsExactWithEveryExpertAndMeasurablyNotWithAQuarter) {
  // The quality measurement on the policy it exists for: with a budget that holds every
  // expert SwapMoE masks nothing, so the comparison must give exactly KL 0; with a quarter
  // of the experts, pure SwapMoE masks, and the numbers must show it (the demo model's
  // routing is flat, see docs/swapmoe-results.md), while τ = 0 reads every missing expert
  // and is exact again.
  const std::vector<int32_t> ids = demo_tokens(64);
  std::unique_ptr<LogitSpill> spill;
  PassResult ref;
  {
    auto exact = load(0);
    spill = std::make_unique<LogitSpill>(static_cast<int>(exact->config().n_vocab));
    ref = score_tokens(*exact, ids, kCtx, spill.get(), nullptr);
  }
  {
    auto all = load(budget_for_share(1.0), "swapmoe");
    const PassResult r = score_tokens(*all, ids, kCtx, nullptr, spill.get());
    EXPECT_EQ(r.kl_mean, 0.0);
    EXPECT_EQ(r.agreement, 1.0);
    EXPECT_EQ(r.nll, ref.nll);
    ASSERT_TRUE(r.stats.swapmoe);
    EXPECT_EQ(r.stats.swap.masked, 0u);
  }
  {
    auto quarter = load(budget_for_share(0.25), "swapmoe", 1.0);
    const PassResult r = score_tokens(*quarter, ids, kCtx, nullptr, spill.get());
    ASSERT_TRUE(r.stats.swapmoe);
    EXPECT_GT(r.stats.swap.masked, 0u);
    EXPECT_GT(r.kl_mean, 0.01);
    EXPECT_GT(r.kl_p99, r.kl_mean);
    EXPECT_LT(r.agreement, 1.0);
    EXPECT_GT(ppl_ratio(r.nll, ref.nll), 1.0);
  }
  {
    auto tau0 = load(budget_for_share(0.25), "swapmoe", 0.0);
    const PassResult r = score_tokens(*tau0, ids, kCtx, nullptr, spill.get());
    EXPECT_EQ(r.kl_mean, 0.0);
    EXPECT_EQ(r.agreement, 1.0);
    EXPECT_GT(r.stats.swap.sync_loads, 0u);
  }
}

}  // namespace
}  // namespace swapmoe::cli
