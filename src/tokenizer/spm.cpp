// SentencePiece-style BPE ("llama" tokenizer model): spaces become U+2581, a space is
// prefixed to the text (add_space_prefix), then adjacent pieces are merged, highest
// vocabulary score first (ties: leftmost), as long as the merged text is a token.
// Characters that never form a token are emitted as byte tokens <0xXX>.

#include <queue>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace swapmoe::tok {

namespace {

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(Vocab v) : VocabTokenizer(std::move(v)) {
    static const char* kHex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const char name[7] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>', 0};
      int32_t id = vocab_.find(name);
      if (id < 0) id = vocab_.find(std::string(1, static_cast<char>(b)));
      byte_tok_[b] = id >= 0 ? id : vocab_.unk;
    }
  }

 protected:
  void encode_raw(std::string_view raw, bool after_special, std::vector<int32_t>& out) const override {
    // Escape spaces: " " -> U+2581 (3 bytes), with the optional leading space.
    static constexpr std::string_view kSpace = "\xE2\x96\x81";
    std::string text;
    text.reserve(raw.size() + 8);
    if (vocab_.add_space_prefix && after_special) text += kSpace;
    for (char c : raw) {
      if (c == ' ') text += kSpace;
      else text.push_back(c);
    }
    merge(text, out);
  }

  std::string normal_piece(const std::string& t) const override {
    std::string out;
    out.reserve(t.size());
    for (size_t i = 0; i < t.size();) {
      if (t.compare(i, 3, "\xE2\x96\x81") == 0) {
        out.push_back(' ');
        i += 3;
      } else {
        out.push_back(t[i++]);
      }
    }
    return out;
  }

 private:
  struct Sym {
    int32_t prev, next;
    uint32_t off, len;  // bytes of the escaped text
  };
  struct Pair {
    float score;
    int32_t left, right;
    uint32_t len;  // byte length of the merged text when the pair was queued
  };
  struct PairBefore {  // highest score on top, then the leftmost pair
    bool operator()(const Pair& a, const Pair& b) const {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };

  void merge(const std::string& text, std::vector<int32_t>& out) const {
    std::vector<Sym> syms;
    syms.reserve(text.size());
    for (size_t off = 0; off < text.size();) {
      const size_t len = std::min(uni::utf8_len(static_cast<unsigned char>(text[off])), text.size() - off);
      const int32_t idx = static_cast<int32_t>(syms.size());
      syms.push_back(Sym{idx - 1, off + len == text.size() ? -1 : idx + 1, static_cast<uint32_t>(off),
                         static_cast<uint32_t>(len)});
      off += len;
    }
    if (syms.empty()) return;
    std::priority_queue<Pair, std::vector<Pair>, PairBefore> queue;
    auto try_pair = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0) return;
      const uint32_t len = syms[l].len + syms[r].len;
      const int32_t id = vocab_.find(std::string_view(text).substr(syms[l].off, len));
      if (id < 0) return;
      queue.push(Pair{vocab_.score[id], l, r, len});
    };
    for (int32_t i = 1; i < static_cast<int32_t>(syms.size()); ++i) try_pair(i - 1, i);
    while (!queue.empty()) {
      const Pair p = queue.top();
      queue.pop();
      Sym& l = syms[p.left];
      Sym& r = syms[p.right];
      if (l.len == 0 || r.len == 0 || l.len + r.len != p.len) continue;  // stale
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) syms[r.next].prev = p.left;
      try_pair(l.prev, p.left);
      try_pair(p.left, l.next);
    }
    for (int32_t i = 0; i != -1; i = syms[i].next) {
      const Sym& s = syms[i];
      const int32_t id = vocab_.find(std::string_view(text).substr(s.off, s.len));
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (uint32_t k = s.off; k < s.off + s.len; ++k) {
        const int32_t b = byte_tok_[static_cast<unsigned char>(text[k])];
        if (b < 0) {
          fail("SentencePiece vocabulary has no token for byte ", static_cast<int>(static_cast<unsigned char>(text[k])),
               " and no unknown token");
        }
        out.push_back(b);
      }
    }
  }

  int32_t byte_tok_[256];
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm(const GgufFile& f) {
  return std::make_unique<SpmTokenizer>(Vocab::load(f, Vocab::Type::kSpm, /*default_add_bos=*/true));
}

}  // namespace swapmoe::tok
