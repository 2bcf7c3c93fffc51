#pragma once
// Vocabulary shared by the BPE and SentencePiece tokenizers: token texts, scores and
// attributes, the special token ids, the end-of-generation set, and the split of input
// text around special tokens. Loading and the special-token rules follow llama.cpp's
// llama-vocab.cpp, because they decide which ids a prompt turns into.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace swapmoe {
class GgufFile;
}

namespace swapmoe::tok {

// Token attributes (llama.cpp's llama_token_attr bits).
enum Attr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
};

// Hash map keyed by std::string that also accepts std::string_view lookups without
// building a temporary string.
struct StrHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct StrEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};
using TokenMap = std::unordered_map<std::string, int32_t, StrHash, StrEq>;

// Text -> id index over a vector of token texts: open addressing with linear probing,
// storing only ids (the texts stay in the vector). Building it for 150k tokens allocates
// one array instead of 150k hash nodes, and lookups touch one slot array.
class TextIndex {
 public:
  // Indexes texts[0..n); returns the first id whose text repeats an earlier one, or -1.
  int32_t build(const std::vector<std::string>& texts);
  int32_t find(std::string_view s, const std::vector<std::string>& texts) const {
    if (slots_.empty()) return -1;
    const size_t h = std::hash<std::string_view>{}(s);
    const uint32_t tag = static_cast<uint32_t>(h >> 32) | 1u;  // never 0, so 0 marks an empty slot
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t e = slots_[i];
      if (e == 0) return -1;
      // The stored hash bits reject almost every other text without touching it.
      if (static_cast<uint32_t>(e >> 32) == tag) {
        const int32_t id = static_cast<int32_t>(e & 0xFFFFFFFFu);
        if (texts[id] == s) return id;
      }
    }
  }

 private:
  std::vector<uint64_t> slots_;  // (hash tag << 32) | id; 0: empty
  size_t mask_ = 0;
};

// A piece of input: either raw text [off, off+len) or an already recognised token.
struct Fragment {
  int32_t token = -1;  // -1: raw text
  size_t off = 0;
  size_t len = 0;
};

struct Vocab {
  enum class Type { kSpm, kBpe };
  Type type = Type::kSpm;
  std::string model;  // tokenizer.ggml.model
  std::string pre;    // tokenizer.ggml.pre ("" when absent)

  std::vector<std::string> text;  // [n_vocab]
  std::vector<float> score;       // [n_vocab]
  std::vector<uint32_t> attr;     // [n_vocab] Attr bits
  TextIndex index;  // text -> id

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;

  std::vector<uint8_t> eog;             // [n_vocab] 1 for end-of-generation tokens
  std::vector<int32_t> special_tokens;  // control/user-defined/unknown ids, longest text first

  int32_t n() const { return static_cast<int32_t>(text.size()); }
  int32_t find(std::string_view s) const {
    return index.find(s, text);
  }

  // Reads the tokenizer.ggml.* keys. `default_add_bos` is the model-family default that
  // tokenizer.ggml.add_bos_token overrides. Throws Error on missing or malformed keys.
  static Vocab load(const GgufFile& f, Type type, bool default_add_bos);

  // Splits text around special tokens like llama.cpp's tokenizer_st_partition: tokens are
  // tried longest first; user-defined tokens are always recognised, control and unknown
  // tokens only with parse_special.
  std::vector<Fragment> partition(std::string_view input, bool parse_special) const;
};

}  // namespace swapmoe::tok
