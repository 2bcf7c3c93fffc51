// Public entry points: ChatTemplate, render_chat_template, apply_chat_template and the
// plain fallback format for models without a template.

#include <cctype>

#include "util/json_depth.h"
#include "template/interp.h"
#include "template/template.h"

namespace swapmoe {

namespace {
std::string describe(const std::string& msg, int line, int column, bool raised) {
  std::string where = line > 0 ? cat(" at line ", line, ", column ", column) : std::string();
  if (raised) return cat("chat template raised an exception", where, ": ", msg);
  return cat("chat template error", where, ": ", msg);
}
}  // namespace

TemplateError::TemplateError(const std::string& message, int line, int column, bool raised)
    : Error(describe(message, line, column, raised)),
      message_(message),
      line_(line),
      column_(column),
      raised_(raised) {}

ChatTemplate ChatTemplate::parse(const std::string& source) {
  ChatTemplate t;
  try {
    t.program_ = tmpl::parse_template(source);
  } catch (const TemplateError&) {
    throw;
  } catch (const std::exception& e) {  // e.g. bad_alloc: still a TemplateError for callers
    throw TemplateError(e.what(), 0, 0);
  }
  return t;
}

namespace {
template <class J>
std::string render_impl(const tmpl::Program& prog, const J& context, const RenderOptions& opts) {
  if (!context.is_object() && !context.is_null())
    throw TemplateError("render context must be a JSON object", 0, 0);
  try {
    tmpl::Value ctx = context.is_null() ? tmpl::make_object() : tmpl::from_json(context);
    tmpl::Interp in(opts);
    return in.run(prog, ctx);
  } catch (const TemplateError&) {
    throw;
  } catch (const std::exception& e) {
    throw TemplateError(e.what(), 0, 0);
  }
}
}  // namespace

std::string ChatTemplate::render(const nlohmann::json& context, const RenderOptions& opts) const {
  return render_impl(*program_, context, opts);
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context, const RenderOptions& opts) const {
  return render_impl(*program_, context, opts);
}

std::string render_chat_template(const std::string& tmpl, const nlohmann::json& context,
                                 const RenderOptions& opts) {
  return ChatTemplate::parse(tmpl).render(context, opts);
}

std::string render_chat_template(const std::string& tmpl, const nlohmann::ordered_json& context,
                                 const RenderOptions& opts) {
  return ChatTemplate::parse(tmpl).render(context, opts);
}

nlohmann::ordered_json chat_message_to_json(const ChatMessage& m) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["role"] = m.role;
  if (m.content) j["content"] = *m.content;
  else j["content"] = nullptr;
  if (m.reasoning_content) {
    j["reasoning_content"] = *m.reasoning_content;
    j["thinking"] = *m.reasoning_content;
  }
  if (m.tool_calls.is_array() && !m.tool_calls.empty()) {
    nlohmann::ordered_json calls = m.tool_calls;
    for (auto& c : calls) {
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object()) continue;
      auto& fn = c["function"];
      if (fn.contains("arguments") && fn["arguments"].is_string()) {
        // OpenAI clients send arguments as a JSON string; templates expect the object. Text
        // nested deeper than kMaxJsonDepth stays a string: parsed, it would be copied and
        // rendered recursively (a 100,000-deep string crashed the server).
        const std::string& text = fn["arguments"].get_ref<const std::string&>();
        if (json_deeper_than(text, kMaxJsonDepth)) continue;
        auto parsed = nlohmann::ordered_json::parse(text, nullptr, false);
        if (!parsed.is_discarded() && parsed.is_object()) fn["arguments"] = std::move(parsed);
      }
    }
    j["tool_calls"] = std::move(calls);
  }
  if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
  if (!m.name.empty()) j["name"] = m.name;
  if (m.extra.is_object())
    for (auto it = m.extra.begin(); it != m.extra.end(); ++it) j[it.key()] = it.value();
  return j;
}

std::string apply_chat_template(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                                bool add_generation_prompt, const std::string& bos,
                                const std::string& eos, const nlohmann::ordered_json& extra,
                                const RenderOptions& opts) {
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (const auto& m : msgs) messages.push_back(chat_message_to_json(m));
  ctx["messages"] = std::move(messages);
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["bos_token"] = bos;
  ctx["eos_token"] = eos;
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it) ctx[it.key()] = it.value();
  else if (!extra.is_null())
    throw TemplateError("apply_chat_template: extra must be a JSON object", 0, 0);
  return tmpl.render(ctx, opts);
}

std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& msgs,
                                bool add_generation_prompt, const std::string& bos,
                                const std::string& eos, const nlohmann::ordered_json& extra,
                                const RenderOptions& opts) {
  if (tmpl.empty()) return plain_chat_format(msgs, add_generation_prompt);
  return apply_chat_template(ChatTemplate::parse(tmpl), msgs, add_generation_prompt, bos, eos, extra, opts);
}

std::string plain_chat_format(const std::vector<ChatMessage>& msgs, bool add_generation_prompt) {
  std::string out;
  for (const auto& m : msgs) {
    std::string role = m.role.empty() ? "User" : m.role;
    role[0] = char(std::toupper((unsigned char)role[0]));
    out += role + ": " + m.content.value_or("") + "\n\n";
  }
  if (add_generation_prompt) out += "Assistant:";
  return out;
}

}  // namespace swapmoe
