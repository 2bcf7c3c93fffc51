#pragma once
// Builds model prompts from chat messages: the model's own tokenizer.chat_template (or a
// template given on the command line), rendered by the template engine, or the plain
// fallback format when the model ships none. Shared by `swapmoe serve` and `swapmoe chat`.

#include <array>
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
  // A raw completion prompt: tokenized with the vocabulary's BOS, special tokens parsed
  // (the client writes the whole prompt, markup included, as with llama.cpp).
  Prompt raw(const std::string& text) const;

  // By default a control token's text typed inside a message ("<|im_end|>" in a user's
  // content) stays plain text, so a user cannot forge turns; the template's own markup is
  // still parsed. true restores the old behaviour (serve/chat --parse-special-in-messages).
  void set_parse_special_in_messages(bool on) { parse_special_in_messages_ = on; }

  // Prompts whose text could not fit the context are refused before tokenizing: each token
  // covers at most max_piece_bytes() bytes, so more than (n_ctx + 1) * that many bytes is
  // more than n_ctx tokens. Throws Error (HttpError 400 in the server) naming the sizes.
  size_t max_prompt_bytes() const;

 private:
  Prompt tokenize(std::string text, bool templated) const;
  // Copies of the messages with each control-token text in user-written fields wrapped in
  // marker characters, and the tokenization that turns marked ranges into literal spans.
  std::vector<ChatMessage> mark_control_texts(const std::vector<ChatMessage>& msgs) const;

  const Tokenizer& tok_;
  std::string source_;
  std::optional<ChatTemplate> parsed_;  // parsed once; rendering is thread-safe
  bool has_template_ = false;
  bool harmony_ = false;  // the template writes harmony markup (<|channel|>, <|message|>)
  std::string bos_, eos_;
  bool parse_special_in_messages_ = false;
  std::vector<std::string> control_texts_;  // longest first
  std::array<bool, 256> control_first_{};   // first bytes of control_texts_
  size_t max_piece_bytes_ = 1;
  int64_t n_ctx_ = 0;
};

// True when `prompt` ends with an unclosed <think> (trailing whitespace ignored).
bool ends_in_open_think(const std::string& prompt);

}  // namespace swapmoe::server
