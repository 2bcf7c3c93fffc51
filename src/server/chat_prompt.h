#pragma once
// Builds model prompts from chat messages: the model's own tokenizer.chat_template (or a
// template given on the command line), rendered by the template engine, or the plain
// fallback format when the model ships none. Shared by `swapmoe serve` and `swapmoe chat`.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "template/template.h"

namespace swapmoe {
class Model;
class Tokenizer;
}

namespace swapmoe::server {

struct Prompt {
  std::string text;
  std::vector<int32_t> tokens;
  bool start_in_think = false;  // the rendered prompt ends inside an open <think> block
  bool harmony = false;         // the template speaks harmony (gpt-oss): the reply has channels
};

class ChatPrompter {
 public:
  // override_template: template source to use instead of the model's (empty: the model's).
  // Throws TemplateError when the template does not parse.
  ChatPrompter(const Model& model, const std::string& override_template);

  // False when the model has no template and the plain format is used (callers warn once).
  bool has_template() const { return has_template_; }
  const std::string& template_source() const { return source_; }

  // Renders messages with add_generation_prompt and tokenizes the result. `extra` holds
  // template kwargs (enable_thinking, tools...). Throws TemplateError / Error.
  // Some templates fail on a null content (gpt-oss tests `"..." in message.content` on the
  // assistant turn that only calls a tool, which Jinja2 rejects too); when rendering fails
  // and a message has null content, it is rendered again with "" there, as llama.cpp's
  // template runner does for templates that need non-null content.
  Prompt chat(const std::vector<ChatMessage>& msgs, const nlohmann::ordered_json& extra) const;
  // Stop strings a chat reply needs besides end-of-generation: the plain fallback format has
  // no end-of-turn token, so a model would go on to write the user's next turn.
  std::vector<std::string> chat_stops() const;
  // A raw completion prompt: tokenized with the vocabulary's BOS, special tokens parsed.
  Prompt raw(const std::string& text) const;

 private:
  Prompt tokenize(std::string text, bool templated) const;

  const Tokenizer& tok_;
  std::string source_;
  std::optional<ChatTemplate> parsed_;  // parsed once; rendering is thread-safe
  bool has_template_ = false;
  bool harmony_ = false;  // the template writes harmony markup (<|channel|>, <|message|>)
  std::string bos_, eos_;
};

// True when `prompt` ends with an unclosed <think> (trailing whitespace ignored).
bool ends_in_open_think(const std::string& prompt);

}  // namespace swapmoe::server
