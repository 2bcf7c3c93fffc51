#pragma once
// Tokenizer driven by the GGUF tokenizer.ggml.* keys: byte-level BPE ("gpt2") with the
// pre-tokenizer chosen by tokenizer.ggml.pre, and SentencePiece-style ("llama").
// Encoding reproduces llama.cpp's token ids (checked against llama.cpp for the pre values
// qwen2, deepseek-v3, deepseek-llm, deepseek-coder, llama-bpe, gpt-2, gpt-4o, tekken,
// kimi-k2, glm4, starcoder, default, and SentencePiece; aliases llama.cpp maps to these
// are accepted too). All methods are const and safe to call from several threads.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace swapmoe {

class GgufFile;

class Tokenizer {
 public:
  // Throws Error for an unknown tokenizer.ggml.model or tokenizer.ggml.pre (naming it).
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& f);
  virtual ~Tokenizer() = default;

  // add_special: prepend BOS (and append EOS) as the vocab's add_bos/add_eos flags say,
  // like llama_tokenize's add_special. parse_special: recognise special/control token
  // texts (e.g. "<|im_start|>") inside the text.
  virtual std::vector<int32_t> encode(const std::string& text, bool add_special, bool parse_special) const = 0;
  // As encode(text, add_special, parse_special = true), except that control-token texts
  // overlapping any [begin, end) byte range of `literal` stay plain text: a chat prompt keeps
  // its template's markup while what users typed cannot become control tokens.
  using Span = std::pair<size_t, size_t>;
  virtual std::vector<int32_t> encode_with_literals(const std::string& text, bool add_special,
                                                    const std::vector<Span>& literal) const {
    return encode(text, add_special, literal.empty());
  }
  // The bytes a token stands for (byte tokens decoded, SentencePiece spaces restored).
  // Control, unknown and user-defined tokens give their text (llama.cpp's special=true);
  // unused/undefined-type tokens give "". Throws Error for an id outside the vocabulary.
  virtual std::string token_to_piece(int32_t id) const = 0;
  // Concatenated pieces, like llama_detokenize(remove_special=false, unparse_special=true):
  // for SentencePiece vocabs with add_space_prefix the first piece loses one leading space,
  // so decode(encode(x, false, false)) == x for valid UTF-8. No clean-up of spaces.
  std::string decode(const std::vector<int32_t>& ids) const;

  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos() const = 0;  // -1 if none
  virtual int32_t eos() const = 0;  // -1 if none
  virtual bool add_bos() const = 0;
  // End-of-generation: eos, eot, eom and similar tokens.
  virtual bool is_eog(int32_t id) const = 0;
  virtual const std::string& token_text(int32_t id) const = 0;  // raw vocab entry
  // Control or unknown token (e.g. "<|im_start|>", "<s>"): text a user would not see.
  virtual bool is_control(int32_t id) const { return false; }

 protected:
  // True when decode() drops one leading space of the first piece (SentencePiece).
  virtual bool strip_first_space() const { return false; }
};

}  // namespace swapmoe
