#include "server/harmony.h"

#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "server/output_filter.h"

namespace swapmoe::server {

namespace {

const std::string kMessage = "<|message|>";
const std::string kChannel = "<|channel|>";
const std::string kStart = "<|start|>";
// Markers that end a message body. <|channel|> ends it too: a new header may come without
// <|start|> when the engine dropped nothing but the model skipped it.
const std::array<std::string, 5> kBodyEnds = {"<|start|>", "<|end|>", "<|return|>", "<|call|>", "<|channel|>"};
// A header longer than this without <|message|> is not harmony: its text is content.
constexpr size_t kMaxHeader = 1024;

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Length of the longest proper prefix of `word` that `text` ends with.
size_t suffix_prefix(const std::string& text, const std::string& word) {
  const size_t max_k = std::min(text.size(), word.size() - 1);
  for (size_t k = max_k; k > 0; --k)
    if (text.compare(text.size() - k, k, word, 0, k) == 0) return k;
  return 0;
}

// The word after `key` in `header` (up to white space or the next "<|"), or "".
std::string word_after(const std::string& header, const std::string& key) {
  const size_t p = header.find(key);
  if (p == std::string::npos) return {};
  size_t b = p + key.size();
  while (b < header.size() && is_space(header[b])) ++b;
  size_t e = b;
  while (e < header.size() && !is_space(header[e]) && header.compare(e, 2, "<|") != 0) ++e;
  return header.substr(b, e - b);
}

}  // namespace

void HarmonyRouter::start_message(const std::string& header) {
  any_header_ = true;
  channel_ = word_after(header, kChannel);
  const std::string to = word_after(header, "to=");
  function_ = to.rfind("functions.", 0) == 0 ? to.substr(10) : std::string();
  args_.clear();
}

void HarmonyRouter::body(const std::string& text, TextDelta& out) {
  if (text.empty()) return;
  if (!function_.empty()) args_ += text;
  else if (channel_ == "analysis") out.reasoning += text;
  else out.content += text;
}

void HarmonyRouter::end_message(TextDelta& out) {
  if (!function_.empty()) {
    // Arguments that are not JSON are passed on as the string the model wrote.
    nlohmann::ordered_json args = nlohmann::ordered_json::parse(args_, nullptr, /*allow_exceptions=*/false);
    if (args.is_discarded()) args = args_;
    nlohmann::ordered_json call = {{"name", function_}, {"arguments", std::move(args)}};
    out.content += "<tool_call>" + call.dump() + "</tool_call>";
  }
  function_.clear();
  channel_.clear();
  args_.clear();
}

void HarmonyRouter::route(const std::string& text, TextDelta& out, bool final) {
  buf_ += text;
  for (;;) {
    if (state_ == State::kHeader) {
      const size_t p = buf_.find(kMessage);
      if (p != std::string::npos) {
        start_message(buf_.substr(0, p));
        buf_.erase(0, p + kMessage.size());
        state_ = State::kBody;
        continue;
      }
      // Text that never becomes a header: the model is not writing harmony here.
      const bool markup = buf_.find("<|") != std::string::npos;
      if ((final && !markup && !any_header_) || buf_.size() > kMaxHeader) {
        channel_ = "final";
        state_ = State::kBody;
        continue;
      }
      if (final) buf_.clear();  // an unfinished header says nothing
      return;
    }
    // Body: up to the first marker that ends it.
    size_t end = std::string::npos, len = 0;
    for (const auto& m : kBodyEnds) {
      const size_t p = buf_.find(m);
      if (p < end) {
        end = p;
        len = m == kChannel ? 0 : m.size();  // <|channel|> belongs to the next header
      }
    }
    if (end != std::string::npos) {
      body(buf_.substr(0, end), out);
      end_message(out);
      buf_.erase(0, end + len);
      state_ = State::kHeader;
      continue;
    }
    size_t hold = 0;
    if (!final)
      for (const auto& m : kBodyEnds) hold = std::max(hold, suffix_prefix(buf_, m));
    body(buf_.substr(0, buf_.size() - hold), out);
    buf_.erase(0, buf_.size() - hold);
    if (final) end_message(out);
    return;
  }
}

}  // namespace swapmoe::server
