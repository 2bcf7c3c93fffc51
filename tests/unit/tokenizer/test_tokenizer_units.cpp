// Tokenizer behaviour that the llama.cpp vectors do not pin down on their own: errors for
// unsupported vocabularies, a hand-built BPE vocabulary whose ids can be worked out by
// hand, special-token handling, invalid input, and the regex subset of the pre-tokenizer.

#include <gtest/gtest.h>

#include <cstdio>
#include <unistd.h>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace swapmoe {
namespace {

using test_util::tokenizer;

std::unique_ptr<GgufFile> write_vocab(GgufWriter& w, const std::string& name) {
  return test_util::write_temp_gguf(w, name);
}

std::string error_of(const GgufFile& f) {
  try {
    Tokenizer::from_gguf(f);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TokenizerErrors, UnknownPreIsNamed) {
  auto src = GgufFile::open(test_util::vocab_path("deepseek-coder"));
  GgufWriter w;
  w.copy_metadata(*src);
  w.set_str("tokenizer.ggml.pre", "no-such-pre");
  auto f = write_vocab(w, "badpre");
  EXPECT_NE(error_of(*f).find("'no-such-pre'"), std::string::npos) << error_of(*f);
}

TEST(TokenizerErrors, UnknownModelIsNamed) {
  auto src = GgufFile::open(test_util::vocab_path("deepseek-coder"));
  GgufWriter w;
  w.copy_metadata(*src);
  w.set_str("tokenizer.ggml.model", "bert");
  auto f = write_vocab(w, "badmodel");
  EXPECT_NE(error_of(*f).find("'bert'"), std::string::npos) << error_of(*f);
}

TEST(TokenizerErrors, MissingMergesAndTokens) {
  auto src = GgufFile::open(test_util::vocab_path("deepseek-coder"));
  {
    GgufWriter w;
    w.copy_metadata(*src);
    w.remove("tokenizer.ggml.merges");
    auto f = write_vocab(w, "nomerges");
    EXPECT_NE(error_of(*f).find("tokenizer.ggml.merges"), std::string::npos) << error_of(*f);
  }
  {
    GgufWriter w;
    w.copy_metadata(*src);
    w.remove("tokenizer.ggml.tokens");
    auto f = write_vocab(w, "notokens");
    EXPECT_NE(error_of(*f).find("tokenizer.ggml.tokens"), std::string::npos) << error_of(*f);
  }
}

// A byte-level vocabulary small enough to reason about: the 256 byte characters (ids
// 0..255 in byte order), then "ab", "abc", "Ġab", a control and a user-defined token.
class TinyBpe : public ::testing::Test {
 protected:
  static std::string byte_char(uint8_t b) {
    std::string s;
    uni::append_utf8(s, uni::byte_to_cp(b));
    return s;
  }
  void SetUp() override {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.push_back(byte_char(static_cast<uint8_t>(b)));
    tokens.insert(tokens.end(), {"ab", "abc", "\xC4\xA0" "ab", "<|im_end|>", "<user>"});
    std::vector<int32_t> types(tokens.size(), 1);
    types[259] = 3;  // control
    types[260] = 4;  // user-defined
    GgufWriter w;
    w.set_str("tokenizer.ggml.model", "gpt2");  // no tokenizer.ggml.pre: "default"
    w.set_arr_str("tokenizer.ggml.tokens", tokens);
    w.set_arr_i32("tokenizer.ggml.token_type", types);
    w.set_arr_str("tokenizer.ggml.merges", {"a b", "ab c", "\xC4\xA0 ab"});
    w.set_u32("tokenizer.ggml.bos_token_id", 259);
    w.set_u32("tokenizer.ggml.eos_token_id", 259);
    w.set_bool("tokenizer.ggml.add_bos_token", true);
    file_ = write_vocab(w, "tiny");
    tok_ = Tokenizer::from_gguf(*file_);
  }
  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(TinyBpe, MergesLowestRankFirst) {
  // "abc abd" -> words "abc", " abd"; "abc" merges fully; " abd" -> "Ġab" + "d".
  EXPECT_EQ(tok_->encode("abc abd", false, false), (std::vector<int32_t>{257, 258, 'd'}));
  // Bytes outside ASCII stay byte tokens: U+00E9 is 0xC3 0xA9.
  EXPECT_EQ(tok_->encode("\xC3\xA9", false, false), (std::vector<int32_t>{0xC3, 0xA9}));
  EXPECT_EQ(tok_->n_vocab(), 261);
}

TEST_F(TinyBpe, SpecialTokens) {
  // User-defined tokens are always recognised; control tokens only with parse_special.
  EXPECT_EQ(tok_->encode("x<user>y", false, false), (std::vector<int32_t>{'x', 260, 'y'}));
  const auto plain = tok_->encode("<|im_end|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok_->encode("<|im_end|>", false, true), (std::vector<int32_t>{259}));
  EXPECT_EQ(tok_->encode("ab", true, false), (std::vector<int32_t>{259, 256}));
  EXPECT_TRUE(tok_->add_bos());
  EXPECT_TRUE(tok_->is_eog(259));
  EXPECT_FALSE(tok_->is_eog(260));
  EXPECT_FALSE(tok_->is_eog(-1));
  EXPECT_FALSE(tok_->is_eog(100000));
  EXPECT_TRUE(tok_->is_control(259));
  EXPECT_FALSE(tok_->is_control(260));
}

TEST_F(TinyBpe, Pieces) {
  EXPECT_EQ(tok_->token_to_piece(258), " ab");
  EXPECT_EQ(tok_->token_to_piece(0x0A), "\n");
  EXPECT_EQ(tok_->token_to_piece(259), "<|im_end|>");
  EXPECT_EQ(tok_->token_text(258), "\xC4\xA0" "ab");
  EXPECT_EQ(tok_->decode({257, 258, 'd'}), "abc abd");
  EXPECT_THROW(tok_->token_to_piece(261), Error);
  EXPECT_THROW(tok_->token_to_piece(-1), Error);
  EXPECT_THROW(tok_->token_text(261), Error);
}

// Invalid UTF-8 becomes U+FFFD, one per bad byte, like llama.cpp; nothing crashes.
// (Small vocabularies keep this cheap under the sanitizers.)
TEST(TokenizerInput, InvalidUtf8) {
  const auto& tok = tokenizer("deepseek-coder");
  const std::string bad = "a\xFF\xC3 b\xE2\x82";
  const auto ids = tok.encode(bad, false, false);
  EXPECT_EQ(tok.decode(ids), "a\xEF\xBF\xBD\xEF\xBF\xBD b\xEF\xBF\xBD\xEF\xBF\xBD");
  // SentencePiece works on raw bytes and keeps them (byte fallback). As in llama.cpp, the
  // bad lead byte 0xC3 swallows the first byte of the escaped space that follows it, so
  // that space comes back as the raw bytes of U+2581 rather than as " ".
  const auto& spm = tokenizer("llama-spm");
  EXPECT_EQ(spm.decode(spm.encode(bad, false, false)), "a\xFF\xC3\xE2\x96\x81" "b\xE2\x82");
  // Empty text: nothing, or just BOS when asked for and the vocab adds it.
  EXPECT_TRUE(tok.encode("", false, true).empty());
  ASSERT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.encode("", true, true), std::vector<int32_t>{tok.bos()});
}

// Long runs must not be quadratic (\s+$ backtracks over the whole run at every start
// position without the matcher's run cache) and must split like short ones.
TEST(TokenizerInput, LongRuns) {
  const std::string spaces = std::string(30000, ' ') + "1";
  // The run does not reach the end, so \s+$ matches nowhere: one piece.
  EXPECT_EQ(pretok::split_with_patterns(spaces, {"\\s+$"}).size(), 1u);
  const auto words = pretok::PreTokenizer("deepseek-llm").split(spaces);
  std::string joined;
  for (const auto& w : words) joined += w;
  EXPECT_EQ(joined, spaces);
  // One 50000-letter word through BPE.
  const auto& tok = tokenizer("deepseek-coder");
  const std::string letters(50000, 'x');
  EXPECT_EQ(tok.decode(tok.encode(letters, false, false)), letters);
}

TEST(PreTokenizer, RegexSemantics) {
  using pretok::split_with_patterns;
  using V = std::vector<std::string>;
  // Matches and the gaps between them both become pieces.
  EXPECT_EQ(split_with_patterns("ab12cd", {"\\p{N}+"}), (V{"ab", "12", "cd"}));
  // \s+(?!\S) leaves the last space before a word unmatched (a gap of its own); at the
  // end of the piece it takes all.
  EXPECT_EQ(split_with_patterns("a   b  ", {"\\s+(?!\\S)|\\S+"}), (V{"a", "  ", " ", "b", "  "}));
  // $ is the end of the current piece, not of the text.
  EXPECT_EQ(split_with_patterns("x  |y  ", {"[|]", "\\s+$"}), (V{"x", "  ", "|", "y", "  "}));
  // Later regexes only split pieces further.
  EXPECT_EQ(split_with_patterns("aaaa", {"a{1,3}"}), (V{"aaa", "a"}));
  // Collapsed categories: U+00E9 is a letter, U+00BD a number, U+3000 white space.
  EXPECT_EQ(split_with_patterns("\xC3\xA9\xC2\xBD\xE3\x80\x80", {"\\p{L}", "\\p{N}"}),
            (V{"\xC3\xA9", "\xC2\xBD", "\xE3\x80\x80"}));
  EXPECT_THROW(split_with_patterns("x", {"a(b)"}), Error);
  EXPECT_THROW(split_with_patterns("x", {"[a-"}), Error);
  EXPECT_THROW(split_with_patterns("x", {"\\p{Xx}"}), Error);
  EXPECT_THROW(split_with_patterns("x", {"a+?"}), Error);
}

TEST(PreTokenizer, KnownNames) {
  EXPECT_EQ(pretok::PreTokenizer("").kind(), "default");
  EXPECT_EQ(pretok::PreTokenizer("llama-bpe").kind(), "llama3");
  EXPECT_EQ(pretok::PreTokenizer("llama3").kind(), "llama3");
  EXPECT_EQ(pretok::PreTokenizer("llama-v3").kind(), "llama3");
  EXPECT_EQ(pretok::PreTokenizer("deepseek-r1-qwen").kind(), "qwen2");
  EXPECT_THROW(pretok::PreTokenizer("nope"), Error);
}

}  // namespace
}  // namespace swapmoe
