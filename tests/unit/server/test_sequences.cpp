// Model sequences (model.h: n_sequences, select_sequence, rewind): several token streams
// evaluated interleaved, each in its own KV cache, must give bitwise the logits each gives
// alone on a single-sequence model, for standard attention and for deepseek2's MLA cache.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "model/model.h"
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

INSTANTIATE_TEST_SUITE_P(Archs, Sequences, ::testing::Values(Arch::Qwen3Moe, Arch::Deepseek2));

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
