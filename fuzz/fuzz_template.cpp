// libFuzzer target for the chat-template engine (src/template): the input is a template source,
// optionally followed by "\n#CTX#\n" and a JSON context. Parsing and rendering must either
// succeed or throw swapmoe::Error (TemplateError); crashes, sanitizer reports, hangs (-timeout)
// and huge allocations (-malloc_limit_mb) are bugs. Bounds are lowered from the defaults so
// that a hostile template fails fast instead of timing the fuzzer out.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "template/template.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace swapmoe;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string_view sep = "\n#CTX#\n";
  std::string source(in);
  nlohmann::ordered_json ctx = {
      {"messages",
       {{{"role", "system"}, {"content", "Be brief."}},
        {{"role", "user"}, {"content", "Hi <b>there</b> \xc3\xa9"}},
        {{"role", "assistant"},
         {"content", ""},
         {"tool_calls", {{{"type", "function"}, {"function", {{"name", "f"}, {"arguments", {{"x", 1}}}}}}}}},
        {{"role", "tool"}, {"content", "42"}, {"tool_call_id", "call_0"}}}},
      {"add_generation_prompt", true},
      {"bos_token", "<s>"},
      {"eos_token", "</s>"},
      {"tools", {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", {{"type", "object"}}}}}}}}};
  if (const size_t p = in.find(sep); p != std::string_view::npos) {
    source = std::string(in.substr(0, p));
    ctx = nlohmann::ordered_json::parse(in.substr(p + sep.size()), nullptr, /*allow_exceptions=*/false);
    if (ctx.is_discarded() || !ctx.is_object()) return 0;
  }
  RenderOptions opts;
  opts.now_unix = 1700000000;
  opts.max_steps = 200000;
  opts.max_output_bytes = 1 << 20;
  try {
    const ChatTemplate t = ChatTemplate::parse(source);
    const std::string a = t.render(ctx, opts);
    // A parsed template is immutable: rendering twice gives the same text.
    if (t.render(ctx, opts) != a) __builtin_trap();
    if (a.size() > (1u << 20)) __builtin_trap();  // the output bound holds
  } catch (const Error&) {
  }
  return 0;
}
