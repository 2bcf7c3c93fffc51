#include "server/chat_prompt.h"

#include <algorithm>

#include "gguf/gguf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace swapmoe::server {

bool ends_in_open_think(const std::string& prompt) {
  size_t end = prompt.size();
  while (end > 0 && (prompt[end - 1] == ' ' || prompt[end - 1] == '\n' || prompt[end - 1] == '\r' ||
                     prompt[end - 1] == '\t'))
    --end;
  const std::string open = "<think>";
  return end >= open.size() && prompt.compare(end - open.size(), open.size(), open) == 0;
}

ChatPrompter::ChatPrompter(const Model& model, const std::string& override_template)
    : tok_(model.tokenizer()) {
  if (!override_template.empty()) {
    source_ = override_template;
  } else if (const GgufValue* v = model.file().find("tokenizer.chat_template");
             v && v->type == GgufType::STRING) {
    source_ = v->s;
  }
  has_template_ = !source_.empty();
  harmony_ = source_.find("<|channel|>") != std::string::npos && source_.find("<|message|>") != std::string::npos;
  // Parsed once (syntax errors are reported at startup), rendered per request.
  if (has_template_) parsed_ = ChatTemplate::parse(source_);
  if (tok_.bos() >= 0) bos_ = tok_.token_text(tok_.bos());
  if (tok_.eos() >= 0) eos_ = tok_.token_text(tok_.eos());
}

Prompt ChatPrompter::chat(const std::vector<ChatMessage>& msgs, const nlohmann::ordered_json& extra) const {
  if (!parsed_) return tokenize(plain_chat_format(msgs, /*add_generation_prompt=*/true), false);
  std::string text;
  try {
    text = apply_chat_template(*parsed_, msgs, /*add_generation_prompt=*/true, bos_, eos_, extra);
  } catch (const TemplateError& e) {
    // Not when the template raised on purpose: that is its verdict on the conversation.
    const bool has_null = std::any_of(msgs.begin(), msgs.end(), [](const ChatMessage& m) { return !m.content; });
    if (e.raised() || !has_null) throw;
    std::vector<ChatMessage> filled = msgs;
    for (auto& m : filled)
      if (!m.content) m.content = std::string();
    text = apply_chat_template(*parsed_, filled, /*add_generation_prompt=*/true, bos_, eos_, extra);
  }
  Prompt p = tokenize(std::move(text), true);
  p.harmony = harmony_;
  return p;
}

std::vector<std::string> ChatPrompter::chat_stops() const {
  if (has_template_) return {};
  return {"\nUser:"};
}

Prompt ChatPrompter::raw(const std::string& text) const { return tokenize(text, false); }

Prompt ChatPrompter::tokenize(std::string text, bool templated) const {
  Prompt p;
  if (templated) {
    // A template writes the BOS text itself when the model wants one; add it only when
    // the vocabulary asks for BOS and the template did not, and never twice.
    p.tokens = tok_.encode(text, /*add_special=*/false, /*parse_special=*/true);
    if (tok_.add_bos() && tok_.bos() >= 0 && (p.tokens.empty() || p.tokens.front() != tok_.bos()))
      p.tokens.insert(p.tokens.begin(), tok_.bos());
  } else {
    p.tokens = tok_.encode(text, /*add_special=*/true, /*parse_special=*/true);
  }
  p.start_in_think = ends_in_open_think(text);
  p.text = std::move(text);
  return p;
}

}  // namespace swapmoe::server
