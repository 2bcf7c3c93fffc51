// Model sequences (model.h: n_sequences, select_sequence, rewind): several token streams
// evaluated interleaved, each in its own KV cache, must give bitwise the logits each gives
// alone on a single-sequence model, for standard attention and for deepseek2's MLA cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cache/budget.h"
#include "expert/expert_store.h"
#include "gguf/gguf.h"
#include "io/direct_file.h"
#include "model/model.h"
#include "runtime/model_budget.h"
#include "tiny_model.h"
#include "util/error.h"

using namespace swapmoe;

namespace {

std::unique_ptr<Model> load(const std::string& path, int n_seq, int64_t n_ctx) {
  ModelOptions o;
  o.n_threads = 1;
  o.n_ctx = n_ctx;
  o.n_sequences = n_seq;
  return Model::load(path, o);
}

// Logits after each token of `ids` evaluated one at a time from position 0.
std::vector<std::vector<float>> alone(Model& m, const std::vector<int32_t>& ids) {
  m.reset();
  std::vector<std::vector<float>> out;
  const auto n_vocab = static_cast<size_t>(m.config().n_vocab);
  for (size_t i = 0; i < ids.size(); ++i) {
    const float* l = m.forward(ids[i], static_cast<int64_t>(i));
    out.emplace_back(l, l + n_vocab);
  }
  return out;
}

class Sequences : public ::testing::TestWithParam<Arch> {};

TEST_P(Sequences, InterleavedEqualsAloneAndRewindRecomputes) {
  const std::string path = test::temp_path("sequences");
  test::write_tiny_model(path, test::tiny_config(GetParam()), {});
  const std::vector<std::vector<int32_t>> streams = {
      {1, 50, 60, 70, 80, 90, 100, 110, 120, 130},
      {2, 3, 4, 5, 6, 7},
      {200, 201, 202, 203, 204, 205, 206, 207},
  };
  auto single = load(path, 1, 32);
  std::vector<std::vector<std::vector<float>>> want;
  for (const auto& s : streams) want.push_back(alone(*single, s));

  // 3 sequences share the context of 96: 32 each, like the single model's.
  auto multi = load(path, 3, 96);
  ASSERT_EQ(multi->n_sequences(), 3);
  EXPECT_EQ(multi->n_ctx(), 32);
  const auto n_vocab = static_cast<size_t>(multi->config().n_vocab);
  // Round-robin, one token each, in a rotating order so every switch pattern occurs.
  std::vector<size_t> next(streams.size(), 0);
  for (int round = 0; round < 12; ++round) {
    for (size_t k = 0; k < streams.size(); ++k) {
      const size_t s = (k + static_cast<size_t>(round)) % streams.size();
      if (next[s] >= streams[s].size()) continue;
      multi->select_sequence(static_cast<int>(s));
      EXPECT_EQ(multi->sequence(), static_cast<int>(s));
      EXPECT_EQ(multi->n_past(), static_cast<int64_t>(next[s]));
      const float* l = multi->forward(streams[s][next[s]], static_cast<int64_t>(next[s]));
      ASSERT_EQ(std::vector<float>(l, l + n_vocab), want[s][next[s]]) << "sequence " << s << " token " << next[s];
      ++next[s];
    }
  }
  // Rewinding sequence 0 to 4 tokens and feeding the same tokens again gives the same logits.
  multi->select_sequence(0);
  multi->rewind(4);
  EXPECT_EQ(multi->n_past(), 4);
  for (size_t i = 4; i < streams[0].size(); ++i) {
    const float* l = multi->forward(streams[0][i], static_cast<int64_t>(i));
    ASSERT_EQ(std::vector<float>(l, l + n_vocab), want[0][i]) << "after rewind, token " << i;
  }
  // Resetting one sequence leaves the others alone.
  multi->reset();
  multi->select_sequence(1);
  EXPECT_EQ(multi->n_past(), static_cast<int64_t>(streams[1].size()));

  EXPECT_THROW(multi->select_sequence(3), Error);
  EXPECT_THROW(multi->select_sequence(-1), Error);
  EXPECT_THROW(multi->rewind(multi->n_past() + 1), Error);
  EXPECT_THROW(multi->forward(1, 0), Error);  // position must be n_past
  std::remove(path.c_str());
}

// Continuous batching (Model::forward_multi): the tokens of several sequences in one
// forward pass, prompts of different lengths next to decode tokens, give bitwise the
// logits each sequence gives alone. A step that mixed up rows, positions or caches of two
// sequences would differ: the streams differ in content and length.
TEST_P(Sequences, BatchedStepsEqualAlone) {
  const std::string path = test::temp_path("sequences_batch");
  test::write_tiny_model(path, test::tiny_config(GetParam()), {});
  // Stream 3 is longer than one pass carries (512 tokens without a budget), so its
  // prompt is split across passes inside one step.
  std::vector<std::vector<int32_t>> streams = {
      {1, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150},
      {2, 3, 4, 5, 6, 7, 8},
      {200, 201, 202, 203, 204, 205, 206, 207, 208, 209},
      {},
  };
  for (int i = 0; i < 530; ++i) streams[3].push_back(static_cast<int32_t>(10 + (i * 37) % 240));
  auto single = load(path, 1, 560);
  std::vector<std::vector<std::vector<float>>> want;
  for (const auto& s : streams) want.push_back(alone(*single, s));

  auto multi = load(path, 4, 4 * 560);
  ASSERT_GE(multi->max_batch_tokens(), 2);
  const auto n_vocab = static_cast<size_t>(multi->config().n_vocab);
  // Prompt chunks per step (stream 0: 5 then one token at a time; stream 1: all at once,
  // from the second step; stream 2: 3 tokens a step, from the third; stream 3: everything in
  // one entry), each entry's last token's logits compared; the others decode one by one.
  const std::vector<std::vector<size_t>> plan = {{5, 1}, {0, 7, 1}, {0, 0, 3}, {530, 1}};
  std::vector<size_t> next(streams.size(), 0);
  multi->select_sequence(2);
  for (int step = 0; step < 20; ++step) {
    std::vector<SequenceTokens> batch;
    // Sequences in a rotating order, so every layout of rows occurs.
    for (size_t k = 0; k < streams.size(); ++k) {
      const size_t s = (k + static_cast<size_t>(step)) % streams.size();
      if (next[s] >= streams[s].size()) continue;
      const std::vector<size_t>& p = plan[s];
      size_t len = static_cast<size_t>(step) < p.size() ? p[static_cast<size_t>(step)] : p.back();
      if (len == 0) continue;
      len = std::min(len, streams[s].size() - next[s]);
      batch.push_back({static_cast<int>(s), std::span<const int32_t>(streams[s].data() + next[s], len),
                       static_cast<int64_t>(next[s]), true});
    }
    if (batch.empty()) break;
    const std::vector<const float*> logits = multi->forward_multi(batch);
    ASSERT_EQ(logits.size(), batch.size());
    for (size_t b = 0; b < batch.size(); ++b) {
      const size_t s = static_cast<size_t>(batch[b].seq);
      next[s] += batch[b].tokens.size();
      ASSERT_NE(logits[b], nullptr);
      ASSERT_EQ(std::vector<float>(logits[b], logits[b] + n_vocab), want[s][next[s] - 1])
          << "step " << step << ", sequence " << s << ", token " << next[s] - 1;
    }
  }
  for (size_t s = 0; s < streams.size(); ++s) EXPECT_EQ(next[s], streams[s].size()) << "sequence " << s;
  EXPECT_EQ(multi->sequence(), 2);  // the selection did not move
  EXPECT_EQ(multi->n_past(), static_cast<int64_t>(streams[2].size()));

  // A refused step changes nothing: a sequence twice, a wrong position, a bad token.
  const int32_t tok = 5, bad = -1;
  const int64_t p0 = static_cast<int64_t>(streams[0].size());
  const SequenceTokens twice[2] = {{0, {&tok, 1}, p0, true}, {0, {&tok, 1}, p0, true}};
  EXPECT_THROW(multi->forward_multi(twice), Error);
  const SequenceTokens wrong[2] = {{1, {&tok, 1}, static_cast<int64_t>(streams[1].size()), true}, {0, {&tok, 1}, p0 - 1, true}};
  EXPECT_THROW(multi->forward_multi(wrong), Error);
  const SequenceTokens badtok[1] = {{0, {&bad, 1}, p0, true}};
  EXPECT_THROW(multi->forward_multi(badtok), Error);
  multi->select_sequence(1);
  EXPECT_EQ(multi->n_past(), static_cast<int64_t>(streams[1].size()));
  // The same continuation through forward() on the selected sequence still matches.
  std::vector<int32_t> more = streams[1];
  more.push_back(tok);
  const float* l = multi->forward(tok, static_cast<int64_t>(streams[1].size()));
  EXPECT_EQ(std::vector<float>(l, l + n_vocab), alone(*single, more).back());
  std::remove(path.c_str());
}

// Forwards everything to the store it wraps; records what was requested and how many
// (token, expert) choices routing made.
class RecordingStore : public ExpertStore {
 public:
  explicit RecordingStore(std::unique_ptr<ExpertStore> in) : in_(std::move(in)) {}
  void route(int l, const RouterParams& p, const float* logits, int32_t* ids, float* w) override {
    in_->route(l, p, logits, ids, w);
    chosen += static_cast<uint64_t>(p.n_used);
  }
  bool batch_routing() const override { return in_->batch_routing(); }
  int64_t capacity() const override { return in_->capacity(); }
  void request(int l, std::span<const int32_t> e) override {
    for (int32_t x : e) requested.emplace_back(l, x);
    in_->request(l, e);
  }
  void prefetch(int l, std::span<const int32_t> e) override {
    prefetched += e.size();
    in_->prefetch(l, e);
  }
  ExpertView acquire(int l, int32_t e) override { return in_->acquire(l, e); }
  size_t acquire_ready(int l, std::span<const int32_t> p, std::vector<AcquiredExpert>& out) override {
    return in_->acquire_ready(l, p, out);
  }
  void release(int l, int32_t e) override { in_->release(l, e); }
  void cancel(int l) override { in_->cancel(l); }
  ExpertStoreStats stats_report() const override { return in_->stats_report(); }
  void reset_stats() override { in_->reset_stats(); }

  std::vector<std::pair<int, int32_t>> requested;
  uint64_t chosen = 0;
  uint64_t prefetched = 0;

 private:
  std::unique_ptr<ExpertStore> in_;
};

// Under a memory budget whose expert cache holds only what one token pins (the minimum: the
// experts stream from the file, in several waves per layer for a batched step, with the
// next-layer prefetch on), batched steps of three sequences still give bitwise the resident
// model's logits, and a step requests (so reads, when missing) each chosen expert once for
// all its tokens: no (layer, expert) twice in a step, fewer requests than choices where
// tokens shared an expert. Also at four times that budget, where the decode steps of two
// sequences prefetch the union of their next-layer guesses (model/expert_prefetch.h).
TEST_P(Sequences, BatchedStepsUnderABudgetEqualResidentAlone) {
  const std::string path = test::temp_path("sequences_budget");
  test::write_tiny_model(path, test::tiny_config(GetParam()), {});
  std::vector<std::vector<int32_t>> streams = {{1, 50, 60, 70, 80, 90, 100, 110}, {2, 3, 4, 5, 6}, {}};
  for (int i = 0; i < 40; ++i) streams[2].push_back(static_cast<int32_t>(20 + (i * 53) % 230));
  auto resident = load(path, 1, 64);
  std::vector<std::vector<std::vector<float>>> want;
  for (const auto& s : streams) want.push_back(alone(*resident, s));

  auto f = GgufFile::open(path);
  const ModelConfig cfg = config_from_gguf(*f);
  BudgetRequest req;
  req.n_ctx = 3 * 64;
  req.n_threads = 1;
  req.alignment = io::DirectFile::open(path).alignment();
  const BudgetPlan m = measure_model(cfg, *f, req);
  ModelOptions o;
  o.n_threads = 1;
  o.n_ctx = 3 * 64;
  o.n_sequences = 3;
  o.io_engine = "pread";
  for (const int64_t slots : {m.min_slots, 4 * m.min_slots}) {
    SCOPED_TRACE(slots);
    o.mem_budget = budget_for_slots(m, slots);
    auto multi = Model::load(path, o);
    ASSERT_TRUE(expert_run_stats(*multi).cached);
    ASSERT_EQ(multi->n_ctx(), 64);
    RecordingStore* rec = nullptr;
    multi->wrap_experts([&](std::unique_ptr<ExpertStore> in) {
      auto r = std::make_unique<RecordingStore>(std::move(in));
      rec = r.get();
      return r;
    });
    uint64_t shared_choices = 0, batch_prefetches = 0;
    const auto n_vocab = static_cast<size_t>(cfg.n_vocab);
    std::vector<size_t> next(streams.size(), 0);
    int decode_steps = 0;
    for (int step = 0; step < 40; ++step) {
      std::vector<SequenceTokens> batch;
      for (size_t s = 0; s < streams.size(); ++s) {
        if (next[s] >= streams[s].size()) continue;
        // Prompts of 4, 3 and 40 tokens (the last one longer than a pass carries under this
        // budget), then one token a step.
        const size_t first[3] = {4, 3, 40};
        const size_t len = next[s] == 0 ? first[s] : 1;
        batch.push_back({static_cast<int>(s), std::span<const int32_t>(streams[s].data() + next[s], len),
                         static_cast<int64_t>(next[s]), true});
      }
      if (batch.empty()) break;
      const bool decode_only = step > 0 && batch.size() == 2;
      rec->requested.clear();
      rec->chosen = 0;
      rec->prefetched = 0;
      const std::vector<const float*> logits = multi->forward_multi(batch);
      if (decode_only) {
        ++decode_steps;
        std::vector<std::pair<int, int32_t>> r = rec->requested;
        std::sort(r.begin(), r.end());
        EXPECT_EQ(std::adjacent_find(r.begin(), r.end()), r.end()) << "an expert requested twice in step " << step;
        EXPECT_LE(r.size(), rec->chosen);
        shared_choices += rec->chosen - r.size();
        batch_prefetches += rec->prefetched;
      }
      for (size_t b = 0; b < batch.size(); ++b) {
        const size_t s = static_cast<size_t>(batch[b].seq);
        next[s] += batch[b].tokens.size();
        ASSERT_EQ(std::vector<float>(logits[b], logits[b] + n_vocab), want[s][next[s] - 1])
            << "step " << step << ", sequence " << s << ", token " << next[s] - 1;
      }
    }
    EXPECT_GT(decode_steps, 0);
    // With 8 experts and 2 chosen per token, two tokens share one in some layer and step;
    // token-by-token requests would have named it twice (and the test above would fail).
    EXPECT_GT(shared_choices, 0u);
    for (size_t s = 0; s < streams.size(); ++s) EXPECT_EQ(next[s], streams[s].size()) << "sequence " << s;
    if (slots > m.min_slots) {
      EXPECT_GT(batch_prefetches, 0u);
    }
  }
  std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Archs, Sequences, ::testing::Values(Arch::Qwen3Moe, Arch::Deepseek2, Arch::Glm4Moe));

TEST(SequencesOptions, ContextIsSplitAndChecked) {
  const std::string path = test::temp_path("sequences_opts");
  test::write_tiny_model(path, test::tiny_config(Arch::Qwen3Moe), {});
  EXPECT_EQ(load(path, 4, 100)->n_ctx(), 25);
  EXPECT_EQ(load(path, 1, 100)->n_ctx(), 100);
  EXPECT_THROW(load(path, 8, 100), Error);  // 12 tokens each is too few
  EXPECT_THROW(load(path, 0, 100), Error);
  std::remove(path.c_str());
}

}  // namespace
