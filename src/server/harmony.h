#pragma once
// OpenAI's harmony response format (gpt-oss), as the text of the generated tokens arrives:
//
//   <|channel|>analysis<|message|>THOUGHTS<|end|>
//   <|start|>assistant<|channel|>final<|message|>ANSWER<|return|>
//   <|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{ARGS}<|call|>
//
// (the chat template's generation prompt already wrote the first "<|start|>assistant"; the
// recipient "to=functions.NAME" may also stand before <|channel|>). The `analysis` channel
// becomes reasoning, `final` (and `commentary` without a recipient, the model's preamble to
// the user) becomes content, and a message to `functions.NAME` becomes a tool call. Tool calls
// are written into content in the one form the tool-call parser reads (tool_calls.h):
//   <tool_call>{"name": "NAME", "arguments": ARGS}</tool_call>
// so both chat APIs turn them into tool_calls the same way they do for Qwen3 models.
//
// <|end|>, <|return|> and <|call|> are control / end-of-generation tokens, so the engine
// usually does not pass their text on; a message therefore also ends at the next <|start|>,
// at a header with no <|start|>, or at the end of generation. Text that could be the start
// of a marker is held back until it is known not to be one.

#include <string>

namespace swapmoe::server {

struct TextDelta;

class HarmonyRouter {
 public:
  // Routes `text` (already free of stop strings and split characters). final: generation
  // ended, flush everything (an unfinished tool call is still emitted).
  void route(const std::string& text, TextDelta& out, bool final);

 private:
  enum class State { kHeader, kBody };
  void start_message(const std::string& header);
  void body(const std::string& text, TextDelta& out);
  void end_message(TextDelta& out);

  State state_ = State::kHeader;
  std::string buf_;        // unrouted text: a header being read, or a possible marker
  std::string channel_;    // channel of the current message ("analysis", "final", ...)
  std::string function_;   // tool name when the message is addressed to functions.NAME
  std::string args_;       // the tool call's arguments as generated so far
  bool any_header_ = false;  // a header was parsed (else text without markup is content)
};

}  // namespace swapmoe::server
