#pragma once
// Nesting depth of JSON text, found by a scan that recurses nowhere. JSON libraries parse
// deep input fine but copy, print and compare it recursively: a 100,000-deep value in a tool
// call's "arguments" string crashed the server with a stack overflow when the chat template
// engine copied it. Text is scanned with this before it is parsed into a value.

#include <cstddef>
#include <string_view>

namespace swapmoe {

// The deepest JSON value anywhere in request bodies, tool arguments and template contexts.
inline constexpr int kMaxJsonDepth = 64;

// True when `text` opens more than max_depth brackets ([ or {) at once, outside strings.
// Malformed text is not judged here; the parser does that.
inline bool json_deeper_than(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_str = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_str) {
      if (c == '\\') ++i;  // skip the escaped character, so \" does not end the string
      else if (c == '"') in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace swapmoe
