// libFuzzer target for the server's request parsing (src/server/api_util): arbitrary bytes as
// a request body go through parse_body (bounded nesting) and, when they parse, through the
// field accessors every route uses, with the bounds the routes give them. Each must return a
// value or throw swapmoe::Error (HttpError 400); crashes, sanitizer reports and hangs are bugs.

#include <cstddef>
#include <cstdint>
#include <string>

#include "server/api_util.h"
#include "server/tool_calls.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace swapmoe;
  using namespace swapmoe::server;
  const std::string body(reinterpret_cast<const char*>(data), size);
  json j;
  try {
    j = parse_body(body);
  } catch (const Error&) {
    return 0;
  }
  auto guard = [](auto&& f) {
    try {
      f();
    } catch (const Error&) {
    }
  };
  guard([&] { check_fields(j, {"model", "messages", "prompt", "stream", "max_tokens", "temperature", "stop", "tools"}, "request"); });
  guard([&] { (void)opt_string(j, "model"); });
  guard([&] { (void)opt_string(j, "prompt"); });
  guard([&] { (void)opt_number(j, "temperature", 0.0, 2.0); });
  guard([&] { (void)opt_number(j, "top_p", 0.0, 1.0); });
  guard([&] { (void)opt_int(j, "max_tokens", 1, 1 << 30); });
  guard([&] { (void)opt_int(j, "seed", INT64_MIN, INT64_MAX); });
  guard([&] { (void)opt_bool(j, "stream"); });
  guard([&] { (void)opt_stop(j, "stop"); });
  guard([&] { (void)opt_object(j, "options"); });
  guard([&] { (void)opt_object(j, "stream_options"); });
  // Whatever parsed must serialise again, and reparse to the same value.
  std::string s;
  try {
    s = dump(j);
  } catch (const Error&) {
    return 0;
  }
  guard([&] {
    if (parse_body(s) != j) __builtin_trap();
  });
  // Message contents that a client sent are what tool-call parsing later sees in history.
  if (j.is_object() && j.contains("messages") && j["messages"].is_array()) {
    for (const auto& m : j["messages"])
      if (m.is_object() && m.contains("content") && m["content"].is_string())
        guard([&] { (void)parse_tool_calls(m["content"].get<std::string>(), "call_"); });
  }
  return 0;
}
