#pragma once
// Chat templates: a Jinja2 subset large enough for the chat templates real models ship in
// `tokenizer.chat_template` (Qwen2.5/3, Qwen3-Coder, DeepSeek-R1/V3.1, gpt-oss, Kimi-K2,
// GLM-4.6, Mistral-Nemo...). It follows what Hugging Face transformers does when it renders
// them: trim_blocks=True, lstrip_blocks=True, the loopcontrols extension (break/continue),
// undefined variables render as "" and are falsy, `tojson` is json.dumps(ensure_ascii=False)
// with Python's default separators, and raise_exception()/strftime_now() are available.
//
// Usage in a server: parse once, render per request.
//   auto tmpl = swapmoe::ChatTemplate::parse(gguf_chat_template_string);
//   std::string prompt = tmpl.render(context);            // context: see below
//
// Context (a JSON object; every key becomes a template variable):
//   messages: [{role, content, tool_calls?, tool_call_id?, reasoning_content?, ...}, ...]
//   add_generation_prompt: bool, bos_token / eos_token: strings, tools: [...] (OpenAI format),
//   plus any extra kwargs the template reads (enable_thinking, reasoning_effort, ...).
//   transformers passes tools=None when there are none; omitting "tools" renders the same
//   for the nine templates under tests/data/templates (checked with Jinja2).
// Key order: Python dicts keep insertion order and templates print them in that order (tool
// schemas through tojson, for example). nlohmann::ordered_json keeps it; nlohmann::json sorts
// keys alphabetically. Both are accepted; prefer ordered_json for tools and tool-call arguments.
//
// Known differences from Jinja2: undefined values stay lenient even when dereferenced or
// called with filters (Jinja raises on `undefined.attr`), integers are 64-bit (overflow
// becomes float), tuples are lists, upper()/lower()/title() change ASCII letters only,
// {% include/extends/import %} and recursive loops are not supported.
//
// Errors: parse and render errors throw TemplateError (a swapmoe::Error) whose what() names
// the line and column in the template. raise_exception("msg") in a template throws a
// TemplateError with raised()==true and message()=="msg". Rendering never crashes or hangs
// on any template: recursion depth, loop iterations and output size are bounded.
//
// Thread safety: a parsed ChatTemplate is immutable; render() may be called concurrently.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace swapmoe {

class TemplateError : public Error {
 public:
  // line/column are 1-based positions in the template source (0 when unknown).
  TemplateError(const std::string& message, int line, int column, bool raised = false);
  const std::string& message() const { return message_; }
  int line() const { return line_; }
  int column() const { return column_; }
  // True when the template itself called raise_exception(message()).
  bool raised() const { return raised_; }

 private:
  std::string message_;
  int line_;
  int column_;
  bool raised_;
};

struct RenderOptions {
  // strftime_now() uses this instant (Unix seconds, formatted in UTC) when set, and the
  // current local time otherwise. Tests set it to get a deterministic date.
  std::optional<int64_t> now_unix;
  // Bounds that keep a hostile template from running forever or exhausting memory; exceeding
  // them throws TemplateError. Real chat templates need a few thousand steps per request.
  uint64_t max_steps = 10'000'000;       // loop iterations + filter/range items
  // Rendered text; also caps every single string or list built while rendering (at most
  // 64 MiB whatever this says).
  size_t max_output_bytes = 64u << 20;
};

namespace tmpl {
struct Program;  // the parsed template (src/template/ast.h)
}

class ChatTemplate {
 public:
  // Parses the template; throws TemplateError (with line/column) on syntax errors.
  static ChatTemplate parse(const std::string& source);
  std::string render(const nlohmann::json& context, const RenderOptions& opts = {}) const;
  std::string render(const nlohmann::ordered_json& context, const RenderOptions& opts = {}) const;

 private:
  std::shared_ptr<const tmpl::Program> program_;
};

// One-shot parse + render.
std::string render_chat_template(const std::string& tmpl, const nlohmann::json& context,
                                 const RenderOptions& opts = {});
std::string render_chat_template(const std::string& tmpl, const nlohmann::ordered_json& context,
                                 const RenderOptions& opts = {});

// A chat message as an OpenAI-style API delivers it.
struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool" (or "developer", ...)
  // Message text; nullopt becomes JSON null (an assistant turn that only calls tools).
  std::optional<std::string> content = std::string();
  // The assistant's reasoning ("thinking") for this turn, when the client sent it back. It is
  // passed as both `reasoning_content` (Qwen3, GLM) and `thinking` (gpt-oss).
  std::optional<std::string> reasoning_content;
  // null or an array of {"id", "type": "function", "function": {"name", "arguments"}}.
  // A string `arguments` holding a JSON object is parsed into that object, because the
  // templates iterate over or tojson() the arguments as a mapping (as transformers expects).
  nlohmann::ordered_json tool_calls;
  std::string tool_call_id;  // role "tool": id of the call this answers (omitted if empty)
  std::string name;          // optional name (omitted if empty)
  // Extra keys merged into the message object as-is (e.g. "prefix": true for DeepSeek).
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

// The message object a template sees for `m` (exposed so callers can build contexts).
nlohmann::ordered_json chat_message_to_json(const ChatMessage& m);

// Builds the context {messages, add_generation_prompt, bos_token, eos_token, ...extra} and
// renders `tmpl`. `extra` (an object, may be null) supplies tools and kwargs such as
// enable_thinking; its keys override the defaults. An empty `tmpl` (the model ships no
// template) renders plain_chat_format() instead; the caller should warn the user about it.
std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& msgs,
                                bool add_generation_prompt, const std::string& bos,
                                const std::string& eos,
                                const nlohmann::ordered_json& extra = nullptr,
                                const RenderOptions& opts = {});

// The same with a template parsed once (parse costs ~0.3-1 ms for real templates, a render
// of a short chat ~0.05-0.15 ms): what a server should call per request.
std::string apply_chat_template(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                                bool add_generation_prompt, const std::string& bos,
                                const std::string& eos,
                                const nlohmann::ordered_json& extra = nullptr,
                                const RenderOptions& opts = {});

// Fallback for models without a chat template: no special tokens, no BOS, one paragraph
// per message, e.g. "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello\n\n" followed by
// "Assistant:" when add_generation_prompt is set. Roles are capitalised ("tool" -> "Tool").
std::string plain_chat_format(const std::vector<ChatMessage>& msgs, bool add_generation_prompt);

}  // namespace swapmoe
