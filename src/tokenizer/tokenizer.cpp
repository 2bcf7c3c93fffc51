// Tokenizer factory, decode, and the vocabulary-backed parts both tokenizers share.

#include "tokenizer/tokenizer.h"

#include "gguf/gguf.h"
#include "tokenizer/tokenizer_impl.h"
#include "util/error.h"

namespace swapmoe {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  const GgufValue* m = f.find("tokenizer.ggml.model");
  if (!m) fail(f.path(), ": tokenizer.ggml.model is missing");
  const std::string model = f.get_str("tokenizer.ggml.model");
  if (model == "gpt2") return tok::make_bpe(f);
  if (model == "llama") return tok::make_spm(f);
  fail(f.path(), ": unsupported tokenizer.ggml.model '", model, "' (supported: gpt2, llama)");
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string piece = token_to_piece(ids[i]);
    if (i == 0 && strip_first_space() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    out += piece;
  }
  return out;
}

namespace tok {

void VocabTokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_.n()) fail("token id ", id, " is outside the vocabulary (", vocab_.n(), " tokens)");
}

const std::string& VocabTokenizer::token_text(int32_t id) const {
  check_id(id);
  return vocab_.text[id];
}

namespace {

// Encodes partitioned text: special fragments as their token, raw runs through encode_raw.
template <typename EncodeRaw>
void encode_fragments(const std::vector<Fragment>& frags, const std::string& text, EncodeRaw&& encode_raw,
                      std::vector<int32_t>& out) {
  bool after_special = true;
  for (const Fragment& fr : frags) {
    if (fr.token >= 0) {
      out.push_back(fr.token);
      after_special = true;
    } else {
      encode_raw(std::string_view(text).substr(fr.off, fr.len), after_special, out);
      after_special = false;
    }
  }
}

}  // namespace

std::vector<int32_t> VocabTokenizer::encode(const std::string& text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
  encode_fragments(vocab_.partition(text, parse_special), text,
                   [this](std::string_view t, bool a, std::vector<int32_t>& o) { encode_raw(t, a, o); }, out);
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

std::vector<int32_t> VocabTokenizer::encode_with_literals(const std::string& text, bool add_special,
                                                          const std::vector<Span>& literal) const {
  std::vector<Fragment> frags = vocab_.partition(text, /*parse_special=*/true);
  auto in_literal = [&](const Fragment& fr) {
    for (const Span& s : literal)
      if (fr.off < s.second && s.first < fr.off + fr.len) return true;
    return false;
  };
  // Control tokens inside literal text fall back to raw text, merged with their raw
  // neighbours so the run is tokenized as parse_special=false would tokenize it.
  std::vector<Fragment> merged;
  for (Fragment fr : frags) {
    if (fr.token >= 0 && is_control(fr.token) && in_literal(fr)) fr.token = -1;
    if (fr.token < 0 && !merged.empty() && merged.back().token < 0 && merged.back().off + merged.back().len == fr.off)
      merged.back().len += fr.len;
    else
      merged.push_back(fr);
  }
  std::vector<int32_t> out;
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
  encode_fragments(merged, text, [this](std::string_view t, bool a, std::vector<int32_t>& o) { encode_raw(t, a, o); },
                   out);
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

std::string VocabTokenizer::token_to_piece(int32_t id) const {
  check_id(id);
  const uint32_t a = vocab_.attr[id];
  const std::string& t = vocab_.text[id];
  if (a & (kAttrControl | kAttrUnknown | kAttrUserDefined)) return t;
  if (a & kAttrNormal) return normal_piece(t);
  if (a & kAttrByte) {
    // "<0xAB>" -> the byte 0xAB.
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && hex(t[3]) >= 0 && hex(t[4]) >= 0) {
      return std::string(1, static_cast<char>(hex(t[3]) * 16 + hex(t[4])));
    }
    return t;
  }
  return std::string();  // unused or undefined type: llama.cpp prints nothing
}

}  // namespace tok
}  // namespace swapmoe
