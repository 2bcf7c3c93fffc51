#include "server/chat_prompt.h"

#include <algorithm>
#include <array>

#include "gguf/gguf.h"
#include "model/model.h"
#include "server/api_util.h"
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
  for (int32_t id = 0; id < tok_.n_vocab(); ++id) {
    max_piece_bytes_ = std::max(max_piece_bytes_, tok_.token_to_piece(id).size());
    if (tok_.is_control(id) && !tok_.token_text(id).empty()) control_texts_.push_back(tok_.token_text(id));
  }
  std::sort(control_texts_.begin(), control_texts_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& c : control_texts_) control_first_[static_cast<unsigned char>(c[0])] = true;
  n_ctx_ = model.n_ctx();
}

namespace {

// Noncharacters U+FDD0 / U+FDD1 mark where a control-token text typed by a user begins and
// ends; a user's own noncharacters are replaced with U+FFFD first, so markers are ours.
const std::string kOpen = "\xEF\xB7\x90", kClose = "\xEF\xB7\x91";

std::string mark(const std::string& s, const std::vector<std::string>& controls, const std::array<bool, 256>& first) {
  std::string in = s;
  for (const std::string* m : {&kOpen, &kClose})
    for (size_t p = in.find(*m); p != std::string::npos; p = in.find(*m, p)) in.replace(p, m->size(), "\xEF\xBF\xBD");
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    const std::string* hit = nullptr;
    if (first[static_cast<unsigned char>(in[i])])  // most bytes start no control text
      for (const std::string& c : controls)
        if (in.compare(i, c.size(), c) == 0) {
          hit = &c;
          break;
        }
    if (hit) {
      out += kOpen + *hit + kClose;
      i += hit->size();
    } else {
      out += in[i++];
    }
  }
  return out;
}

}  // namespace

std::vector<ChatMessage> ChatPrompter::mark_control_texts(const std::vector<ChatMessage>& msgs) const {
  std::vector<ChatMessage> out = msgs;
  for (ChatMessage& m : out) {
    if (m.content) m.content = mark(*m.content, control_texts_, control_first_);
    if (m.reasoning_content) m.reasoning_content = mark(*m.reasoning_content, control_texts_, control_first_);
  }
  return out;
}

size_t ChatPrompter::max_prompt_bytes() const {
  return static_cast<size_t>(n_ctx_ + 1) * max_piece_bytes_;
}

Prompt ChatPrompter::chat(const std::vector<ChatMessage>& msgs, const nlohmann::ordered_json& extra) const {
  // Control-token texts typed in messages are marked, to stay text when tokenized.
  const bool guard = !parse_special_in_messages_ && !control_texts_.empty();
  const std::vector<ChatMessage> marked = guard ? mark_control_texts(msgs) : std::vector<ChatMessage>();
  const std::vector<ChatMessage>& use = guard ? marked : msgs;
  if (!parsed_) return tokenize(plain_chat_format(use, /*add_generation_prompt=*/true), false);
  std::string text;
  try {
    text = apply_chat_template(*parsed_, use, /*add_generation_prompt=*/true, bos_, eos_, extra);
  } catch (const TemplateError& e) {
    // Not when the template raised on purpose: that is its verdict on the conversation.
    const bool has_null = std::any_of(use.begin(), use.end(), [](const ChatMessage& m) { return !m.content; });
    if (e.raised() || !has_null) throw;
    std::vector<ChatMessage> filled = use;
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
  // Markers from mark_control_texts: strip them, remembering the ranges they enclosed.
  std::vector<Tokenizer::Span> literal;
  if (text.find("\xEF\xB7") != std::string::npos) {
    std::string clean;
    clean.reserve(text.size());
    size_t open_at = std::string::npos;
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, kOpen.size(), kOpen) == 0) {
        open_at = clean.size();
        i += kOpen.size();
      } else if (text.compare(i, kClose.size(), kClose) == 0) {
        if (open_at != std::string::npos) literal.emplace_back(open_at, clean.size());
        open_at = std::string::npos;
        i += kClose.size();
      } else {
        clean += text[i++];
      }
    }
    text = std::move(clean);
  }
  // Refused before the tokenizer runs over megabytes (see max_prompt_bytes()).
  if (text.size() > max_prompt_bytes())
    throw HttpError(400,
                    cat("the prompt is ", text.size(), " bytes, more than the ", n_ctx_,
                        "-token context can hold (at most ", max_prompt_bytes(), " bytes)"),
                    "context_length_exceeded");
  if (templated) {
    // A template writes the BOS text itself when the model wants one; add it only when
    // the vocabulary asks for BOS and the template did not, and never twice.
    p.tokens = tok_.encode_with_literals(text, /*add_special=*/false, literal);
    if (tok_.add_bos() && tok_.bos() >= 0 && (p.tokens.empty() || p.tokens.front() != tok_.bos()))
      p.tokens.insert(p.tokens.begin(), tok_.bos());
  } else {
    // Raw prompts have no literal ranges (specials parsed); the plain chat format has them.
    p.tokens = tok_.encode_with_literals(text, /*add_special=*/true, literal);
  }
  p.start_in_think = ends_in_open_think(text);
  p.text = std::move(text);
  return p;
}

}  // namespace swapmoe::server
