// Parses the real vocabulary GGUF files published with llama.cpp (no tensors, large
// string arrays) and checks keys whose values are known.

#include <gtest/gtest.h>

#include "../require.h"

#include <filesystem>

#include "gguf/gguf.h"

namespace swapmoe {
namespace {

// Prefer the project's own copy (tests/data/vocab); fall back to the shared folder
// beside the checkout; skip if neither exists.
std::string vocab_path(const std::string& name) {
  for (const std::string& dir : {std::string(SWAPMOE_TEST_DATA) + "/vocab/",
                                std::string(SWAPMOE_TEST_DATA) + "/../../../shared/vocab/"}) {
    if (std::filesystem::exists(dir + name)) return dir + name;
  }
  return "";
}

TEST(GgufVocab, Gpt2) {
  std::string p = vocab_path("ggml-vocab-gpt-2.gguf");
  if (p.empty()) SWAPMOE_SKIP_OR_FAIL("data", "ggml-vocab-gpt-2.gguf not found");
  auto f = GgufFile::open(p);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->get_str("general.architecture"), "gpt2");
  EXPECT_EQ(f->get_str("tokenizer.ggml.model"), "gpt2");
  auto tokens = f->get_str_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 50257u);  // GPT-2's vocabulary size
  EXPECT_EQ(tokens[0], "!");
  EXPECT_EQ(tokens[50256], "<|endoftext|>");
  auto types = f->get_int_array("tokenizer.ggml.token_type");
  EXPECT_EQ(types.size(), tokens.size());
  auto merges = f->get_str_array("tokenizer.ggml.merges");
  EXPECT_EQ(merges.size(), 50000u);
  EXPECT_EQ(merges[0], "\xC4\xA0 t");  // "Ġ t", the first GPT-2 merge
  EXPECT_TRUE(f->tensors().empty());
}

TEST(GgufVocab, AllSharedFilesParse) {
  const char* names[] = {"ggml-vocab-deepseek-coder.gguf", "ggml-vocab-deepseek-llm.gguf",
                         "ggml-vocab-deepseek-v3.gguf",    "ggml-vocab-gpt-2.gguf",
                         "ggml-vocab-llama-bpe.gguf",      "ggml-vocab-llama-spm.gguf",
                         "ggml-vocab-qwen2.gguf"};
  int found = 0;
  for (const char* n : names) {
    std::string p = vocab_path(n);
    if (p.empty()) continue;
    ++found;
    auto f = GgufFile::open(p);
    auto tokens = f->get_str_array("tokenizer.ggml.tokens");
    EXPECT_GT(tokens.size(), 30000u) << n;
    EXPECT_FALSE(f->get_str("tokenizer.ggml.model").empty()) << n;
  }
  if (!found) SWAPMOE_SKIP_OR_FAIL("data", "no vocab files found");
}

TEST(GgufVocab, DeepseekV3TokenCount) {
  std::string p = vocab_path("ggml-vocab-deepseek-v3.gguf");
  if (p.empty()) SWAPMOE_SKIP_OR_FAIL("data", "vocab file not found");
  auto f = GgufFile::open(p);
  EXPECT_EQ(f->get_str_array("tokenizer.ggml.tokens").size(), 129280u);
}

}  // namespace
}  // namespace swapmoe
