#include "server/output_filter.h"

#include <algorithm>

namespace swapmoe::server {

namespace {

const std::string kOpen = "<think>";
const std::string kClose = "</think>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Length of the longest proper prefix of `word` that `text` ends with.
size_t suffix_prefix(const std::string& text, const std::string& word) {
  const size_t max_k = std::min(text.size(), word.size() - 1);
  for (size_t k = max_k; k > 0; --k)
    if (text.compare(text.size() - k, k, word, 0, k) == 0) return k;
  return 0;
}

}  // namespace

size_t incomplete_utf8_tail(const std::string& s) {
  const size_t n = s.size();
  // A sequence is at most 4 bytes, so an incomplete one has its lead byte in the last 3.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;
    size_t len = 0;
    if (c >= 0xC2 && c < 0xE0) len = 2;
    else if (c >= 0xE0 && c < 0xF0) len = 3;
    else if (c >= 0xF0 && c < 0xF5) len = 4;
    return len > back ? back : 0;
  }
  return 0;
}

OutputFilter::OutputFilter(std::vector<std::string> stops, bool start_in_think, bool split_think, bool harmony)
    : split_think_(split_think && !harmony), in_think_(split_think_ && start_in_think), skip_ws_(in_think_) {
  if (harmony) harmony_ = std::make_unique<HarmonyRouter>();
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

void OutputFilter::push(const std::string& piece, TextDelta& out) {
  if (stopped_) return;
  pending_ += piece;
  size_t first = std::string::npos;
  for (const auto& s : stops_) first = std::min(first, pending_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    route(pending_.substr(0, first), out, /*final=*/true);
    pending_.clear();
    return;
  }
  // Hold back what could still grow into a stop string or a complete character.
  size_t hold = incomplete_utf8_tail(pending_);
  for (const auto& s : stops_) hold = std::max(hold, suffix_prefix(pending_, s));
  const size_t n = pending_.size() - hold;
  route(pending_.substr(0, n), out, false);
  pending_.erase(0, n);
}

void OutputFilter::finish(TextDelta& out) {
  if (stopped_) return;
  route(pending_, out, /*final=*/true);
  pending_.clear();
}

void OutputFilter::route(const std::string& text, TextDelta& out, bool final) {
  if (harmony_) {
    harmony_->route(text, out, final);
    return;
  }
  std::string buf = tag_hold_ + text;
  tag_hold_.clear();
  while (!buf.empty()) {
    // Reasoning is only recognised as a leading block, as llama.cpp does: a <think> in the
    // middle of an answer is the model talking about tags, not thinking.
    const bool watch = split_think_ && (in_think_ || !content_started_);
    if (!watch) {
      emit(std::move(buf), out);
      break;
    }
    const std::string& tag = in_think_ ? kClose : kOpen;
    const size_t p = buf.find(tag);
    if (p != std::string::npos) {
      emit(buf.substr(0, p), out);
      if (in_think_ || content_started_ == false) {
        ws_hold_.clear();  // whitespace before </think> (or before <think>) is dropped
        in_think_ = !in_think_;
        skip_ws_ = true;
        if (in_think_) lead_ws_.clear();  // white space before a leading <think> is dropped
      }
      buf.erase(0, p + tag.size());
      continue;
    }
    if (!final) {
      const size_t k = suffix_prefix(buf, tag);
      tag_hold_ = buf.substr(buf.size() - k);
      buf.resize(buf.size() - k);
    }
    emit(std::move(buf), out);
    break;
  }
  if (final) {
    std::string rest;
    rest.swap(tag_hold_);
    emit(std::move(rest), out);
    ws_hold_.clear();  // trailing whitespace of unfinished reasoning
    out.content += lead_ws_;  // a reply of nothing but white space
    lead_ws_.clear();
  }
}

void OutputFilter::emit(std::string text, TextDelta& out) {
  if (skip_ws_) {
    size_t i = 0;
    while (i < text.size() && is_space(text[i])) ++i;
    text.erase(0, i);
    if (text.empty()) return;
    skip_ws_ = false;
  }
  if (text.empty()) return;
  if (in_think_) {
    text = ws_hold_ + text;
    size_t end = text.size();
    while (end > 0 && is_space(text[end - 1])) --end;
    ws_hold_ = text.substr(end);
    text.resize(end);
    out.reasoning += text;
  } else {
    // White space before any content is held (GLM-4.x writes "\n<think>"): a leading <think>
    // drops it, the first non-space text takes it along. Only non-space text marks the answer
    // as started.
    if (split_think_ && !content_started_) {
      text = lead_ws_ + text;
      lead_ws_.clear();
      if (std::all_of(text.begin(), text.end(), is_space)) {
        lead_ws_ = std::move(text);
        return;
      }
    }
    out.content += text;
    for (char c : text)
      if (!is_space(c)) {
        content_started_ = true;
        break;
      }
  }
}

}  // namespace swapmoe::server
