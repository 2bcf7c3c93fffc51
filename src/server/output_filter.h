#pragma once
// Turns the stream of token pieces a model generates into the text a client sees:
//  - stop strings: generation ends at the first occurrence of any of them, and neither the
//    stop string nor anything after it is returned. Text that might be the start of a stop
//    string is held back until it is known not to be one, so a stop string split across
//    tokens is never half-sent.
//  - reasoning: text between <think> and </think> goes to `reasoning`, the rest to `content`
//    (OpenAI's reasoning_content, ollama's message.thinking). A tag split across tokens is
//    held back the same way. Whitespace right after either tag and right before </think> is
//    dropped, as llama.cpp's reasoning parser does.
//  - harmony (gpt-oss): channels instead of <think> tags, see harmony.h.
//  - UTF-8: a character split across tokens is held back until it is complete, so every
//    delta is valid UTF-8 (JSON bodies need that).

#include <memory>
#include <string>
#include <vector>

#include "server/harmony.h"

namespace swapmoe::server {

struct TextDelta {
  std::string content;
  std::string reasoning;
  bool empty() const { return content.empty() && reasoning.empty(); }
};

class OutputFilter {
 public:
  // stops: stop strings (empty ones are ignored). start_in_think: the prompt already opened
  // a <think> block (DeepSeek-R1's template ends with "<think>\n"), so the first text is
  // reasoning. split_think: false keeps <think> tags as plain content. harmony: the model
  // writes OpenAI's harmony format (gpt-oss); its channels are routed instead of <think>.
  OutputFilter(std::vector<std::string> stops, bool start_in_think, bool split_think = true, bool harmony = false);

  // Adds one token's text; appends what is now safe to send to `out`.
  void push(const std::string& piece, TextDelta& out);
  // End of generation: appends everything still held back (except a half stop string).
  void finish(TextDelta& out);
  // True once a stop string was seen; later pushes are ignored.
  bool stopped() const { return stopped_; }

 private:
  void route(const std::string& text, TextDelta& out, bool final);
  void emit(std::string text, TextDelta& out);

  std::vector<std::string> stops_;
  std::unique_ptr<HarmonyRouter> harmony_;  // set in harmony mode
  bool split_think_;
  bool in_think_;
  bool stopped_ = false;
  bool skip_ws_ = false;     // drop whitespace at the start of the current section
  bool content_started_ = false;  // <think> only opens a block before any content
  std::string pending_;      // raw text not yet routed (possible stop-string prefix / UTF-8 tail)
  std::string tag_hold_;     // routed text that may be the start of a think tag
  std::string ws_hold_;      // whitespace inside <think> that may precede </think>
  std::string lead_ws_;      // whitespace before any content, that may precede <think>
};

// Number of bytes at the end of s that start an incomplete UTF-8 sequence.
size_t incomplete_utf8_tail(const std::string& s);

}  // namespace swapmoe::server
