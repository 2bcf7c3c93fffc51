// libFuzzer target for tool-call parsing (src/server/tool_calls): model output text goes
// through parse_tool_calls and, in pieces, through ToolCallStream. Every parsed call must be
// an OpenAI tool call whose "arguments" is a string (and an object in ollama's form), the stream must find as many calls as the
// one-shot parser, and nothing may crash or hang.

#include <cstddef>
#include <cstdint>
#include <string>

#include "server/tool_calls.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace swapmoe;
  using namespace swapmoe::server;
  if (size == 0) return 0;
  // The first byte chooses the chunk size for the streaming parser.
  const size_t chunk = 1 + data[0] % 16;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  ParsedToolCalls p;
  try {
    p = parse_tool_calls(text, "call_");
  } catch (const Error&) {
    return 0;
  }
  if (!p.calls.is_array()) __builtin_trap();
  for (const auto& c : p.calls) {
    if (!c.is_object() || !c.contains("function") || !c["function"].contains("name") || !c["function"]["name"].is_string())
      __builtin_trap();
    const auto& args = c["function"]["arguments"];
    // A string, as OpenAI sends it; like OpenAI's, it may hold what the model wrote even when
    // that is not valid JSON. ollama's form must still get an object out of it.
    if (!args.is_string()) __builtin_trap();
    if (!ollama_tool_call(c)["function"]["arguments"].is_object()) __builtin_trap();
  }
  try {
    ToolCallStream s;
    std::string streamed;
    for (size_t i = 0; i < text.size(); i += chunk) streamed += s.push(text.substr(i, chunk));
    const ParsedToolCalls f = s.finish();
    // The stream keeps everything from the first block on and parses it at the end, so it
    // finds the same calls as the one-shot parser.
    if (f.calls.size() != p.calls.size()) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
