// Issue 15, item 1: nesting from a client or a template must never recurse without bound.
// A tool call whose "arguments" string held JSON nested 100,000 deep crashed `serve` with a
// stack overflow in apply_chat_template; deep or self-containing values compared in a
// template could do the same (and nested list comparison took 2^depth steps).

#include <gtest/gtest.h>

#include "template/template.h"

using json = nlohmann::ordered_json;

namespace {

std::string deep_object(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "{\"a\":";
  s += "1";
  s.append(static_cast<size_t>(depth), '}');
  return s;
}

std::string deep_array(int depth) { return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']'); }

TEST(TemplateHostile, DeepToolArgumentsStayAStringAndDoNotCrash) {
  const std::string tmpl =
      "{% for m in messages %}{{ m.role }}:{% if m.tool_calls %}"
      "{{ m.tool_calls[0].function.arguments | tojson }}{% endif %};{% endfor %}";
  for (const std::string& args : {deep_object(100000), deep_array(100000)}) {
    std::vector<swapmoe::ChatMessage> msgs(1);
    msgs[0].role = "assistant";
    msgs[0].content = std::nullopt;
    msgs[0].tool_calls = json::array();
    msgs[0].tool_calls.push_back({{"id", "c1"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", args}}}});
    // Either rendered (the text kept as a string) or refused with an error; never a crash.
    try {
      const std::string out = swapmoe::apply_chat_template(tmpl, msgs, false, "", "");
      EXPECT_EQ(out.rfind("assistant:", 0), 0u);
    } catch (const std::exception&) {
    }
  }
  // A shallow object is still parsed into a mapping, as before.
  std::vector<swapmoe::ChatMessage> msgs(1);
  msgs[0].role = "assistant";
  msgs[0].tool_calls = json::array();
  msgs[0].tool_calls.push_back({{"function", {{"name", "f"}, {"arguments", deep_object(3)}}}});
  EXPECT_EQ(swapmoe::apply_chat_template(tmpl, msgs, false, "", ""), "assistant:{\"a\": {\"a\": {\"a\": 1}}};");
}

TEST(TemplateHostile, SelfContainingAndDeepValuesCompareWithoutCrash) {
  // A list that contains itself: == and < must fail cleanly, not recurse forever.
  EXPECT_THROW(swapmoe::render_chat_template(
                   "{% set ns = namespace(x=[]) %}{% set _ = ns.x.append(ns.x) %}{{ ns.x == [ns.x] }}", json::object()),
               std::exception);
  // A chain built by a loop, deeper than any context may be.
  EXPECT_THROW(swapmoe::render_chat_template("{% set ns = namespace(x=[], y=[]) %}{% for i in range(2000) %}"
                                             "{% set ns.x = [ns.x] %}{% set ns.y = [ns.y] %}{% endfor %}{{ ns.x == ns.y }}",
                                             json::object()),
               std::exception);
  // Nested list comparison is linear in the depth: 40 levels took 2^40 steps before.
  const std::string d = deep_array(40);
  EXPECT_EQ(swapmoe::render_chat_template("{{ " + d + " < " + d + " }}", json::object()), "False");
}

}  // namespace

TEST(TemplateHostile, DeepValueBuiltByALoopIsFreedWithoutCrash) {
  // 15,000 levels of a list built by a loop. Freed recursively, such a value takes one stack
  // frame per level, so a deep enough one overflows the stack; this renderer needs minutes to
  // build 200,000 levels, so the test uses fewer (ASan's larger frames make them count).
  const std::string out = swapmoe::render_chat_template(
      "{% set ns = namespace(x=[]) %}{% for i in range(15000) %}{% set ns.x = [ns.x] %}{% endfor %}"
      "{{ ns.x | length }}",
      json::object());
  EXPECT_EQ(out, "1");
  // Dicts nest the same way.
  EXPECT_EQ(swapmoe::render_chat_template(
                "{% set ns = namespace(x={}) %}{% for i in range(15000) %}{% set ns.x = {'a': ns.x} %}{% endfor %}"
                "{{ ns.x | length }}",
                json::object()),
            "1");
}
