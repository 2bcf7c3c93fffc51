#include "server/tool_calls.h"

#include <algorithm>
#include <cctype>

#include "util/json_depth.h"

namespace swapmoe::server {

namespace {

const std::string kOpen = "<tool_call>";
const std::string kClose = "</tool_call>";

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// GLM-4.5/4.6's body: the function name, then <arg_key>K</arg_key><arg_value>V</arg_value>
// pairs (white space between them ignored). Its template writes string values as they are
// and other values as JSON, so a value that parses as JSON is taken as JSON, else as a
// string (as llama.cpp's GLM parser does). Returns {"name", "arguments"} or null.
json glm_call(const std::string& body) {
  static const std::string kKey = "<arg_key>", kKeyEnd = "</arg_key>", kVal = "<arg_value>", kValEnd = "</arg_value>";
  const size_t first = body.find(kKey);
  const std::string name = trim(body.substr(0, first));
  if (name.empty()) return nullptr;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' && c != ':') return nullptr;
  json args = json::object();
  size_t pos = first == std::string::npos ? body.size() : first;
  while (pos < body.size()) {
    if (body.compare(pos, kKey.size(), kKey) != 0) return nullptr;
    const size_t ke = body.find(kKeyEnd, pos);
    if (ke == std::string::npos) return nullptr;
    const std::string key = body.substr(pos + kKey.size(), ke - pos - kKey.size());
    size_t v = ke + kKeyEnd.size();
    while (v < body.size() && std::isspace(static_cast<unsigned char>(body[v]))) ++v;
    if (body.compare(v, kVal.size(), kVal) != 0) return nullptr;
    const size_t ve = body.find(kValEnd, v);
    if (ve == std::string::npos) return nullptr;
    const std::string value = body.substr(v + kVal.size(), ve - v - kVal.size());
    json jv = json::parse(value, nullptr, /*allow_exceptions=*/false);
    args[key] = jv.is_discarded() ? json(value) : std::move(jv);
    pos = ve + kValEnd.size();
    while (pos < body.size() && std::isspace(static_cast<unsigned char>(body[pos]))) ++pos;
  }
  return json{{"name", name}, {"arguments", std::move(args)}};
}

// The call a block's body describes, or null when it is not a valid call.
json call_from_body(const std::string& body, const std::string& id) {
  // Model output is text like any other: too deep to be a call (util/json_depth.h).
  if (json_deeper_than(body, kMaxJsonDepth)) return nullptr;
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) j = glm_call(body);
  if (!j.is_object()) return nullptr;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty()) return nullptr;
  std::string args = "{}";
  // Qwen writes "arguments"; some fine-tunes write "parameters".
  auto a = j.find("arguments");
  if (a == j.end()) a = j.find("parameters");
  if (a != j.end()) {
    if (a->is_object()) args = dump(*a);
    else if (a->is_string()) args = a->get<std::string>();
    else if (!a->is_null()) return nullptr;
  }
  return json{{"id", id}, {"type", "function"}, {"function", {{"name", name->get<std::string>()}, {"arguments", args}}}};
}

}  // namespace

ParsedToolCalls parse_tool_calls(const std::string& text, const std::string& id_prefix) {
  ParsedToolCalls out;
  std::string content;
  size_t pos = 0;
  for (;;) {
    const size_t open = text.find(kOpen, pos);
    if (open == std::string::npos) break;
    const size_t close = text.find(kClose, open + kOpen.size());
    if (close == std::string::npos) break;  // an unfinished block stays text
    const std::string id = id_prefix.empty() ? random_id("call_") : id_prefix + std::to_string(out.calls.size());
    json call = call_from_body(text.substr(open + kOpen.size(), close - open - kOpen.size()), id);
    content += text.substr(pos, open - pos);
    if (call.is_null()) content += text.substr(open, close + kClose.size() - open);
    else out.calls.push_back(std::move(call));
    pos = close + kClose.size();
  }
  content += text.substr(pos);
  out.content = out.calls.empty() ? content : trim(content);
  return out;
}

std::string ToolCallStream::push(const std::string& text) {
  held_ += text;
  if (in_calls_) return {};
  const size_t open = held_.find(kOpen);
  if (open != std::string::npos) {
    in_calls_ = true;
    std::string out = held_.substr(0, open);
    held_.erase(0, open);
    return out;
  }
  // Hold back the longest end of held_ that could begin "<tool_call>".
  size_t keep = std::min(held_.size(), kOpen.size() - 1);
  while (keep > 0 && held_.compare(held_.size() - keep, keep, kOpen, 0, keep) != 0) --keep;
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

ParsedToolCalls ToolCallStream::finish(const std::string& id_prefix) {
  ParsedToolCalls p = parse_tool_calls(held_, id_prefix);
  if (!p.calls.empty()) {
    // Content before the first block was streamed already; what is left is text between
    // or after blocks.
  } else {
    p.content = held_;
  }
  held_.clear();
  return p;
}

json ollama_tool_call(const json& c) {
  const json& f = c.at("function");
  const std::string& text = f.at("arguments").get_ref<const std::string&>();
  json args = json_deeper_than(text, kMaxJsonDepth) ? json() : json::parse(text, nullptr, false);
  if (args.is_discarded() || !args.is_object()) args = json::object();
  return json{{"function", {{"name", f.at("name")}, {"arguments", args}}}};
}

}  // namespace swapmoe::server
