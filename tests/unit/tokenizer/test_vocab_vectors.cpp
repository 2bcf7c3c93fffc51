// The llama.cpp tokenizer test vectors (tests/data/vocab): for every vocabulary family,
// every test string must encode to exactly llama.cpp's ids, and byte-level BPE must
// decode back to the input.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace swapmoe {
namespace {

class VocabVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, MatchesLlamaCpp) {
  const std::string base = test_util::vocab_path(GetParam());
  const auto& tok = test_util::tokenizer(GetParam());
  const auto inputs = test_util::read_inp(base + ".inp");
  const auto expected = test_util::read_out(base + ".out");
  ASSERT_EQ(inputs.size(), expected.size()) << base;
  ASSERT_GT(inputs.size(), 40u);
  int bad = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto ids = tok.encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, expected[i]) << GetParam() << " string #" << i << ": '" << inputs[i] << "'\n  got      "
                                << test_util::join(ids) << "\n  expected " << test_util::join(expected[i]);
    bad += ids != expected[i];
  }
  EXPECT_EQ(bad, 0);
}

TEST_P(VocabVectors, DecodeRoundTrips) {
  const std::string base = test_util::vocab_path(GetParam());
  const auto& tok = test_util::tokenizer(GetParam());
  for (const auto& s : test_util::read_inp(base + ".inp")) {
    const auto ids = tok.encode(s, false, false);
    EXPECT_EQ(tok.decode(ids), s) << GetParam() << ": '" << s << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(AllFamilies, VocabVectors,
                         ::testing::Values("qwen2", "deepseek-v3", "deepseek-llm", "deepseek-coder", "llama-bpe",
                                           "llama-spm", "gpt-2"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace swapmoe
