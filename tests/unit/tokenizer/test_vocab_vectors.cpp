// Reference token ids for the seven vocabulary families in tests/data/vocab, one test
// per family (each ctest process loads one vocabulary once):
//  * ggml-vocab-*.gguf.inp/.out: llama.cpp's published tokenizer test vectors (encoded
//    without BOS and without special-token parsing);
//  * ggml-vocab-*.gguf.extra.json: made with the llama.cpp build in node-llama-cpp 3.21.1
//    (tests/data/vocab/gen_extra.mjs): ~330 strings (chat markup, many scripts, white
//    space of every kind, emoji, 250 seeded random strings) with and without special-token
//    parsing, the BOS/EOS settings and the full end-of-generation set.
// Every string must give exactly llama.cpp's ids, and decoding must give the text back.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gguf/gguf_writer.h"
#include "tokenizer/unicode.h"

#include "tokenizer_test_util.h"

namespace swapmoe {
namespace {

class Family : public ::testing::TestWithParam<const char*> {};

// Encodes every string and compares; reports the first few mismatches in full.
void expect_ids(const Tokenizer& tok, const std::vector<std::string>& strings,
                const std::vector<std::vector<int32_t>>& expected, bool parse_special, const std::string& what) {
  ASSERT_EQ(strings.size(), expected.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const auto got = tok.encode(strings[i], /*add_special=*/false, parse_special);
    if (got != expected[i] && ++bad <= 10) {
      ADD_FAILURE() << what << " #" << i << " '" << strings[i] << "'\n  got      " << test_util::join(got)
                    << "\n  expected " << test_util::join(expected[i]);
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

// The checks on one extra.json file; `inputs` are further strings to round-trip.
void check_extra(const Tokenizer& tok, const nlohmann::json& j, std::vector<std::string> inputs, bool spm,
                 const std::string& name) {
  SCOPED_TRACE(name);
  const auto strings = j.at("strings").get<std::vector<std::string>>();
  ASSERT_GT(strings.size(), 300u);
  expect_ids(tok, strings, j.at("plain").get<std::vector<std::vector<int32_t>>>(), false, "extra plain");
  expect_ids(tok, strings, j.at("special").get<std::vector<std::vector<int32_t>>>(), true, "extra parse_special");

  EXPECT_EQ(tok.n_vocab(), j.at("n_vocab").get<int32_t>());
  EXPECT_EQ(tok.bos(), j.at("bos").get<int32_t>());
  EXPECT_EQ(tok.eos(), j.at("eos").get<int32_t>());
  EXPECT_EQ(tok.add_bos(), j.at("add_bos").get<bool>());
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < tok.n_vocab(); ++id)
    if (tok.is_eog(id)) eog.push_back(id);
  EXPECT_EQ(eog, j.at("eog").get<std::vector<int32_t>>());

  // add_special puts BOS in front (and EOS at the end) exactly when the vocab says so.
  auto body = tok.encode(strings[0], false, true);
  const auto full = tok.encode(strings[0], true, true);
  if (j.at("add_bos").get<bool>()) body.insert(body.begin(), tok.bos());
  if (j.at("add_eos").get<bool>()) body.push_back(tok.eos());
  EXPECT_EQ(full, body);

  // Decoding gives the input back (all strings are valid UTF-8). SentencePiece is lossy in
  // two known ways, as in llama.cpp: a literal U+2581 decodes as a space, and text after a
  // special token gets a space prefixed; those cases are left out there.
  inputs.insert(inputs.end(), strings.begin(), strings.end());
  int checked = 0;
  for (const auto& text : inputs) {
    if (spm && text.find("\xE2\x96\x81") != std::string::npos) continue;
    EXPECT_EQ(tok.decode(tok.encode(text, false, false)), text);
    if (!spm) {
      EXPECT_EQ(tok.decode(tok.encode(text, false, true)), text);
    }
    ++checked;
  }
  EXPECT_GT(checked, 300);
}

// Random bytes (mostly invalid UTF-8, with special-token texts mixed in) must encode
// without errors to valid ids. Byte-level BPE must decode to the input with every bad
// byte replaced by U+FFFD (llama.cpp's reading of invalid UTF-8).
void check_random_bytes(const Tokenizer& tok, bool spm) {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const char* pieces[] = {"<|im_end|>", "<s>", "</s>", " ", "\n", "a", "\xE2\x96\x81", "<｜end▁of▁sentence｜>"};
  for (int n = 0; n < 200; ++n) {
    std::string s;
    const size_t len = next() % 40;
    for (size_t i = 0; i < len; ++i) {
      if (next() % 8 == 0) s += pieces[next() % 8];
      else s.push_back(static_cast<char>(next() & 0xFF));
    }
    for (bool special : {false, true}) {
      const auto ids = tok.encode(s, true, special);
      for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.n_vocab());
      if (!spm && !special) {
        std::string normalized;
        for (uint32_t cp : uni::decode_utf8(s)) uni::append_utf8(normalized, cp);
        auto body = tok.encode(s, false, false);
        EXPECT_EQ(tok.decode(body), normalized);
      }
    }
  }
}

TEST_P(Family, LlamaCppTestVectors) {
  const std::string base = test_util::vocab_path(GetParam());
  const auto& tok = test_util::tokenizer(GetParam());
  const auto inputs = test_util::read_inp(base + ".inp");
  ASSERT_GT(inputs.size(), 40u);
  expect_ids(tok, inputs, test_util::read_out(base + ".out"), false, ".out");
  const bool spm = std::string(GetParam()) == "llama-spm";
  check_extra(tok, nlohmann::json::parse(test_util::read_file(base + ".extra.json")), inputs, spm, GetParam());
  check_random_bytes(tok, spm);
}

// Pre-tokenizers without a test vocabulary of their own (gpt-4o: gpt-oss, Llama 4;
// tekken: Mistral Nemo; kimi-k2; glm4: GLM-4.5/4.6; bailingmoe: Ling; seed-coder;
// default; starcoder; and the aliases grok-2 and hunyuan-dense): the deepseek-coder
// vocabulary with tokenizer.ggml.pre replaced.
// The reference ids come from llama.cpp given the same forged file
// (tests/data/vocab/forged-*.extra.json), so they pin down the regex split and the
// per-pre-type settings (tekken: whole-word lookup, BOS by default).
class ForgedPre : public ::testing::TestWithParam<const char*> {};

TEST_P(ForgedPre, MatchesLlamaCpp) {
  const std::string pre = GetParam();
  auto src = GgufFile::open(test_util::vocab_path("deepseek-coder"));
  GgufWriter w;
  w.copy_metadata(*src);
  w.set_str("tokenizer.ggml.pre", pre);
  auto f = test_util::write_temp_gguf(w, "forged_" + pre);
  auto tok = Tokenizer::from_gguf(*f);
  const auto j = nlohmann::json::parse(
      test_util::read_file(std::string(SWAPMOE_TEST_DATA) + "/vocab/forged-" + pre + ".extra.json"));
  check_extra(*tok, j, {}, false, pre);
}

INSTANTIATE_TEST_SUITE_P(Pre, ForgedPre, ::testing::Values("gpt-4o", "tekken", "kimi-k2", "glm4", "default", "starcoder",
                                                           "bailingmoe", "seed-coder", "grok-2", "hunyuan-dense"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

INSTANTIATE_TEST_SUITE_P(AllFamilies, Family,
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
