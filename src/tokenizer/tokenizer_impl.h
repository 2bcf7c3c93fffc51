#pragma once
// Internal: the part of Tokenizer that BPE and SentencePiece share (vocabulary access,
// special-token splitting, BOS/EOS), and the two concrete classes' factories.

#include <memory>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace swapmoe::tok {

class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab v) : vocab_(std::move(v)) {}

  std::vector<int32_t> encode(const std::string& text, bool add_special, bool parse_special) const override;
  std::vector<int32_t> encode_with_literals(const std::string& text, bool add_special,
                                            const std::vector<Span>& literal) const override;
  std::string token_to_piece(int32_t id) const override;
  int32_t n_vocab() const override { return vocab_.n(); }
  int32_t bos() const override { return vocab_.bos; }
  int32_t eos() const override { return vocab_.eos; }
  bool add_bos() const override { return vocab_.add_bos; }
  bool is_eog(int32_t id) const override { return id >= 0 && id < vocab_.n() && vocab_.eog[id]; }
  bool is_control(int32_t id) const override {
    return id >= 0 && id < vocab_.n() && (vocab_.attr[id] & (kAttrControl | kAttrUnknown));
  }
  const std::string& token_text(int32_t id) const override;

  const Vocab& vocab() const { return vocab_; }

 protected:
  // Tokenizes one piece of raw text (no special tokens in it). `after_special` is true
  // for the first piece and for pieces that follow a special token.
  virtual void encode_raw(std::string_view text, bool after_special, std::vector<int32_t>& out) const = 0;
  // The piece of a NORMAL token (byte-level decoding or SentencePiece spaces).
  virtual std::string normal_piece(const std::string& text) const = 0;
  bool strip_first_space() const override { return vocab_.add_space_prefix && vocab_.type == Vocab::Type::kSpm; }

  void check_id(int32_t id) const;

  Vocab vocab_;
};

std::unique_ptr<Tokenizer> make_bpe(const GgufFile& f);
std::unique_ptr<Tokenizer> make_spm(const GgufFile& f);

}  // namespace swapmoe::tok
