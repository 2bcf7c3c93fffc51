#pragma once
// Pre-tokenizer for byte-level BPE: splits text into words before BPE merging, with the
// regex lists llama.cpp uses for each tokenizer.ggml.pre value.
//
// llama.cpp applies its regexes one after another; each one splits every current piece
// into the regex matches and the unmatched gaps between them. Two regexes (the GPT-2 and
// the Llama-3 one) run through hand-written splitters that see real Unicode categories.
// All others go through std::regex on a transformed text: when the regex uses \p{..},
// every non-ASCII code point is first replaced by one byte standing for its category
// ("collapsed" text; non-ASCII white space becomes \v), and when it does not, non-ASCII
// white space is replaced by \v. In collapsed text a non-ASCII letter is both upper and
// lower case, and code points of other categories (controls, unassigned) match no \p
// class. We reproduce those rules exactly, with a small backtracking matcher for the regex
// subset these patterns use (no std::regex: it recurses per character and is slow),
// because the token ids depend on them.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace swapmoe::pretok {

class Splitter;

// The pre-tokenizer for one tokenizer.ggml.pre value.
class PreTokenizer {
 public:
  // Throws Error naming `pre` if it is not a known value. Empty means "default".
  explicit PreTokenizer(const std::string& pre);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;

  // Splits UTF-8 text into words; each word is returned as UTF-8 (invalid input bytes
  // become U+FFFD, like llama.cpp).
  std::vector<std::string> split(std::string_view text) const;

  // The canonical pre-tokenizer kind the value maps to (e.g. "llama3" for "llama-bpe").
  const std::string& kind() const { return kind_; }

 private:
  std::string kind_;
  std::vector<std::unique_ptr<Splitter>> stages_;
};

// Exposed for tests: splits `text` with the given regex patterns in turn (llama.cpp
// semantics) and returns the pieces. Throws Error for syntax the matcher does not support.
std::vector<std::string> split_with_patterns(std::string_view text, const std::vector<std::string>& patterns);

}  // namespace swapmoe::pretok
