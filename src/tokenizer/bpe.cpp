// Byte-level BPE ("gpt2" tokenizer model): pre-tokenize into words, show every byte as a
// printable character (GPT-2 map), then apply merges lowest rank first within each word.
// Ties go to the leftmost pair, as in llama.cpp; a final symbol that is not a token
// falls back to single-byte tokens.

#include <array>
#include <queue>

#include "gguf/gguf.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace swapmoe::tok {

namespace {

class BpeTokenizer final : public VocabTokenizer {
 public:
  BpeTokenizer(Vocab v, pretok::PreTokenizer pre, const std::vector<std::string>& merges, bool ignore_merges)
      : VocabTokenizer(std::move(v)), pre_(std::move(pre)), ignore_merges_(ignore_merges) {
    for (int b = 0; b < 256; ++b) {
      uni::append_utf8(byte_enc_[b], uni::byte_to_cp(static_cast<uint8_t>(b)));
    }
    merges_.reserve(merges.size());
    std::string joined;
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string_view m = merges[i];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string_view::npos) continue;  // malformed entry: llama.cpp never matches it either
      const std::string_view left = m.substr(0, sp), right = m.substr(sp + 1);
      const int32_t l = sym_id_or_add(left), r = sym_id_or_add(right);
      joined.assign(left);
      joined += right;
      merges_.insert(key(l, r), Merge{static_cast<int32_t>(i), sym_id_or_add(joined)});  // first rank wins
    }
    for (int b = 0; b < 256; ++b) byte_sym_[b] = sym_id(byte_enc_[b]);
  }

 protected:
  void encode_raw(std::string_view text, bool, std::vector<int32_t>& out) const override {
    for (const std::string& w : pre_.split(text)) bpe_word(w, out);
  }

  std::string normal_piece(const std::string& t) const override {
    std::string out;
    for (uint32_t cp : uni::decode_utf8(t)) {
      const int b = uni::cp_to_byte(cp);
      if (b >= 0) out.push_back(static_cast<char>(b));
      else uni::append_utf8(out, cp);  // not a byte character: keep it as text
    }
    return out;
  }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;  // symbol id of the merged text
  };
  struct Sym {
    int32_t id;  // vocab id, extra symbol id (>= n_vocab) or -1 (no merges possible)
    int32_t prev, next;
    uint32_t off, len;  // raw bytes of the word
  };
  struct Pair {
    int32_t rank, left, right, left_id, right_id, result;
  };
  struct PairAfter {  // priority_queue puts the lowest rank, then the leftmost pair on top
    bool operator()(const Pair& a, const Pair& b) const {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
  };

  static uint64_t key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }

  // Symbol ids: vocabulary tokens keep their id; texts that merges mention but the
  // vocabulary lacks get ids after it, so merging works on them as llama.cpp's
  // string-keyed merges do.
  int32_t sym_id(std::string_view s) const {
    const int32_t id = vocab_.find(s);
    if (id >= 0 || extra_.empty()) return id;
    auto it = extra_.find(s);
    return it == extra_.end() ? -1 : it->second;
  }
  int32_t sym_id_or_add(std::string_view s) {
    const int32_t id = sym_id(s);
    if (id >= 0) return id;
    const int32_t nid = vocab_.n() + static_cast<int32_t>(extra_.size());
    extra_.emplace(std::string(s), nid);
    return nid;
  }

  void bpe_word(std::string_view word, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    const auto* bytes = reinterpret_cast<const uint8_t*>(word.data());
    if (ignore_merges_) {
      // Llama-3 style: a word that is itself a token is taken whole.
      std::string enc;
      for (size_t i = 0; i < word.size(); ++i) enc += byte_enc_[bytes[i]];
      const int32_t id = vocab_.find(enc);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    const int32_t n = static_cast<int32_t>(word.size());
    std::vector<Sym> syms(n);
    for (int32_t i = 0; i < n; ++i) {
      syms[i] = Sym{byte_sym_[bytes[i]], i - 1, i + 1 < n ? i + 1 : -1, static_cast<uint32_t>(i), 1};
    }
    std::vector<Pair> storage;
    storage.reserve(n);
    std::priority_queue<Pair, std::vector<Pair>, PairAfter> queue(PairAfter{}, std::move(storage));
    auto try_pair = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0 || syms[l].id < 0 || syms[r].id < 0) return;
      const Merge* m = merges_.find(key(syms[l].id, syms[r].id));
      if (!m) return;
      queue.push(Pair{m->rank, l, r, syms[l].id, syms[r].id, m->result});
    };
    for (int32_t i = 1; i < n; ++i) try_pair(i - 1, i);
    while (!queue.empty()) {
      const Pair p = queue.top();
      queue.pop();
      Sym& l = syms[p.left];
      Sym& r = syms[p.right];
      // Skip pairs made stale by an earlier merge.
      if (l.len == 0 || r.len == 0 || l.next != p.right || l.id != p.left_id || r.id != p.right_id) continue;
      l.id = p.result;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) syms[r.next].prev = p.left;
      try_pair(l.prev, p.left);
      try_pair(p.left, l.next);
    }
    for (int32_t i = 0; i != -1; i = syms[i].next) {
      const Sym& s = syms[i];
      if (s.id >= 0 && s.id < vocab_.n()) {
        out.push_back(s.id);
        continue;
      }
      // Not a token: llama.cpp looks up each byte of the byte-encoded text on its own.
      std::string enc;
      for (uint32_t k = s.off; k < s.off + s.len; ++k) enc += byte_enc_[bytes[k]];
      for (char c : enc) {
        const int32_t id = vocab_.find(std::string_view(&c, 1));
        if (id >= 0) out.push_back(id);
      }
    }
  }

  pretok::PreTokenizer pre_;
  bool ignore_merges_;
  // (left symbol, right symbol) -> merge, open addressing: the map is built once per
  // model (up to ~300k merges) and probed for every adjacent pair while encoding.
  class MergeMap {
   public:
    void reserve(size_t n) {
      size_t cap = 16;
      while (cap < n * 2) cap *= 2;
      keys_.assign(cap, kEmpty);
      vals_.resize(cap);
      mask_ = cap - 1;
    }
    void insert(uint64_t k, Merge v) {
      size_t i = slot(k);
      for (; keys_[i] != kEmpty; i = (i + 1) & mask_)
        if (keys_[i] == k) return;  // keep the first (lowest) rank
      keys_[i] = k;
      vals_[i] = v;
    }
    const Merge* find(uint64_t k) const {
      for (size_t i = slot(k);; i = (i + 1) & mask_) {
        if (keys_[i] == k) return &vals_[i];
        if (keys_[i] == kEmpty) return nullptr;
      }
    }

   private:
    static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are < 2^31, so no key is all ones
    size_t slot(uint64_t k) const { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 20) & mask_; }
    std::vector<uint64_t> keys_;
    std::vector<Merge> vals_;
    size_t mask_ = 0;
  };
  MergeMap merges_;
  TokenMap extra_;
  std::array<std::string, 256> byte_enc_;  // the printable character of each byte, UTF-8
  std::array<int32_t, 256> byte_sym_{};    // symbol id of each byte's character
};

bool in_list(const std::string& s, std::initializer_list<const char*> list) {
  for (const char* x : list)
    if (s == x) return true;
  return false;
}

}  // namespace

std::unique_ptr<Tokenizer> make_bpe(const GgufFile& f) {
  const std::string pre_name = f.get_str("tokenizer.ggml.pre", "");
  pretok::PreTokenizer pre(pre_name);  // throws for an unknown value
  // Llama-3 and Tekken vocabularies take a word that is itself a token whole, and add BOS
  // unless the file says otherwise (llama.cpp's per-pre-type settings).
  const bool llama3 = in_list(pre_name, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                                         "midm-2.0", "lfm2", "tekken"});
  Vocab v = Vocab::load(f, Vocab::Type::kBpe, /*default_add_bos=*/llama3);
  const GgufValue* m = f.find("tokenizer.ggml.merges");
  static const std::vector<std::string> kNoMerges;
  if (!m && pre_name != "kimi-k2")  // llama.cpp lets Kimi-K2 files omit them
    fail(f.path(), ": tokenizer.ggml.merges is missing (needed by the gpt2 tokenizer)");
  if (m && (m->type != GgufType::ARRAY || (m->arr_len > 0 && m->elem_type != GgufType::STRING)))
    fail(f.path(), ": tokenizer.ggml.merges: expected an array of strings");
  return std::make_unique<BpeTokenizer>(std::move(v), std::move(pre), m ? m->arr_str : kNoMerges, llama3);
}

}  // namespace swapmoe::tok
