#pragma once
// Tool calls in model output, as Qwen3 (and Qwen2.5, Hermes-style templates) write them:
//
//   Let me check.<tool_call>
//   {"name": "get_weather", "arguments": {"city": "Paris"}}
//   </tool_call>
//
// or as GLM-4.5/4.6 write them:
//
//   <tool_call>get_weather
//   <arg_key>city</arg_key>
//   <arg_value>Paris</arg_value>
//   </tool_call>
//
// (and gpt-oss's harmony calls, which harmony.h rewrites into the first form), all
// turned into OpenAI `tool_calls` ({"id", "type": "function", "function": {"name",
// "arguments": JSON text}}) with the text outside the blocks as `content`. Only requests
// that offer `tools` are parsed, so ordinary text containing "<tool_call>" is left alone.
// DeepSeek's own format (<｜tool▁calls▁begin｜>...) is made of control tokens, which the
// engine does not pass on as text; it is not parsed.
//
// ToolCallStream does the same for a stream: content passes through until a block may
// begin ("<tool_call>" or a prefix of it at the end is held back), everything from the
// first block on is kept, and finish() parses it.

#include <string>
#include <vector>

#include "server/api_util.h"

namespace swapmoe::server {

struct ParsedToolCalls {
  std::string content;               // the text outside the blocks (trimmed at the ends)
  json calls = json::array();        // OpenAI tool_calls; empty when none parsed
  // A block whose body is not {"name": string, "arguments": object or string} stays in
  // content as written (the model did not make a valid call).
};

// Parses every complete block of `text`. `id_prefix`: ids are id_prefix + index unless
// empty, then random ("call_3f2a...").
ParsedToolCalls parse_tool_calls(const std::string& text, const std::string& id_prefix = {});

class ToolCallStream {
 public:
  // Adds content; returns the part that is safe to send as content now.
  std::string push(const std::string& text);
  // End of generation: the calls and any content not yet sent.
  ParsedToolCalls finish(const std::string& id_prefix = {});

 private:
  std::string held_;     // possible start of a block, or everything from a block on
  bool in_calls_ = false;
};

// ollama's form of one OpenAI tool call: {"function": {"name", "arguments": object}}.
json ollama_tool_call(const json& openai_call);

}  // namespace swapmoe::server
