// The nine real chat templates in tests/data/templates/ rendered over the conversations in
// cases.json, compared byte for byte with expected/<template>/<case>.txt. Those files were
// produced by Jinja2 configured as transformers configures it (make_expected.py) and each was
// read against its template by hand (README.md in that folder). A .error file holds the
// message the template passes to raise_exception(); a .typeerror file marks a case on which
// Python fails (e.g. `'x' in None`), where we must throw TemplateError as well.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "template/template.h"

namespace fs = std::filesystem;
using swapmoe::ChatTemplate;
using swapmoe::TemplateError;

namespace {

const fs::path kDir = fs::path(SWAPMOE_TEST_DATA) / "templates";

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  EXPECT_TRUE(f.good()) << p;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// First differing byte with some context, so a failure is readable.
std::string first_diff(const std::string& a, const std::string& b) {
  size_t k = 0;
  while (k < a.size() && k < b.size() && a[k] == b[k]) ++k;
  size_t from = k > 40 ? k - 40 : 0;
  return "at byte " + std::to_string(k) + "\n  expected: ..." + a.substr(from, 100) +
         "\n  got:      ..." + b.substr(from, 100);
}

swapmoe::RenderOptions fixed_now() {
  swapmoe::RenderOptions o;
  o.now_unix = 1767225600;  // 2026-01-01 00:00:00 UTC, as make_expected.py pins it
  return o;
}

TEST(RealTemplates, MatchJinjaReference) {
  auto cases = nlohmann::ordered_json::parse(read_file(kDir / "cases.json"))["cases"];
  int checked = 0, templates = 0;
  for (const auto& entry : fs::directory_iterator(kDir)) {
    if (entry.path().extension() != ".jinja") continue;
    ++templates;
    std::string stem = entry.path().stem().string();
    ChatTemplate tmpl = ChatTemplate::parse(read_file(entry.path()));
    for (const auto& c : cases) {
      std::string name = c["name"].get<std::string>();
      fs::path base = kDir / "expected" / stem / name;
      SCOPED_TRACE(stem + " / " + name);
      if (fs::exists(base.string() + ".txt")) {
        std::string want = read_file(base.string() + ".txt");
        std::string got;
        try {
          got = tmpl.render(c["context"], fixed_now());
        } catch (const std::exception& e) {
          ADD_FAILURE() << "threw: " << e.what();
          continue;
        }
        EXPECT_EQ(want, got) << first_diff(want, got);
        ++checked;
      } else if (fs::exists(base.string() + ".error")) {
        std::string want = read_file(base.string() + ".error");
        try {
          tmpl.render(c["context"], fixed_now());
          ADD_FAILURE() << "expected raise_exception(" << want << ")";
        } catch (const TemplateError& e) {
          EXPECT_TRUE(e.raised());
          EXPECT_EQ(want, e.message());
          EXPECT_GT(e.line(), 0);
        }
        ++checked;
      } else if (fs::exists(base.string() + ".typeerror")) {
        try {
          tmpl.render(c["context"], fixed_now());
          ADD_FAILURE() << "Python fails on this case; we rendered it";
        } catch (const TemplateError& e) {
          EXPECT_FALSE(e.raised()) << e.what();
          EXPECT_GT(e.line(), 0);
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(templates, 9);
  EXPECT_GE(checked, 90);
}

// llama.cpp's DeepSeek-R1 template pipes `tools | map(attribute='function')` into tojson. In
// Jinja2 map() returns a generator that json.dumps rejects, so there is no Python reference;
// we return a list (as llama.cpp's minja does). Expected text written by hand from the
// template: bos (the newline after it is eaten by `{%- if tools %}`), the tools paragraph with the function objects at indent=2, the system
// prompt, then the user turn and the generation prompt.
TEST(RealTemplates, DeepSeekR1ToolsByHand) {
  ChatTemplate tmpl = ChatTemplate::parse(read_file(kDir / "llama-cpp-deepseek-r1.jinja"));
  nlohmann::ordered_json ctx = {
      {"messages", {{{"role", "system"}, {"content", "SYS"}}, {{"role", "user"}, {"content", "Q"}}}},
      {"tools",
       {{{"type", "function"},
         {"function", {{"name", "f"}, {"parameters", {{"type", "object"}, {"required", nlohmann::ordered_json::array()}}}}}}}},
      {"add_generation_prompt", true},
      {"bos_token", "<B>"}};
  std::string want =
      "<B>You can call any of the following function tools to satisfy the user's requests: [\n"
      "  {\n"
      "    \"name\": \"f\",\n"
      "    \"parameters\": {\n"
      "      \"type\": \"object\",\n"
      "      \"required\": []\n"
      "    }\n"
      "  }\n"
      "]\n"
      "\n"
      "Example function tool call syntax:\n"
      "\n"
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>example_function_name\n"
      "```json\n"
      "{\n"
      "  \"arg1\": \"some_value\"\n"
      "  ...\n"
      "}\n"
      "```\n"
      "<｜tool▁call▁end｜><｜tool▁calls▁end｜>\n"
      "\n"
      "SYS<｜User｜>Q<｜end▁of▁sentence｜><｜Assistant｜><think>\n";
  std::string got = tmpl.render(ctx);
  EXPECT_EQ(want, got) << first_diff(want, got);
}

// Random truncations (and single-byte corruptions) of the real templates must parse or
// throw TemplateError; rendering what parses must finish or throw TemplateError.
TEST(RealTemplates, TruncationsNeverCrash) {
  auto cases = nlohmann::ordered_json::parse(read_file(kDir / "cases.json"))["cases"];
  const auto& ctx = cases[0]["context"];
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  auto next = [&]() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  int parsed = 0, rejected = 0;
  for (const auto& entry : fs::directory_iterator(kDir)) {
    if (entry.path().extension() != ".jinja") continue;
    std::string src = read_file(entry.path());
    for (int k = 0; k < 60; ++k) {
      std::string s = src.substr(0, next() % (src.size() + 1));
      if (k % 3 == 1 && !s.empty()) s[next() % s.size()] = "{}%#-()[]'\"|.x "[next() % 15];
      try {
        ChatTemplate t = ChatTemplate::parse(s);
        ++parsed;
        try {
          t.render(ctx);
        } catch (const TemplateError&) {
        }
      } catch (const TemplateError& e) {
        ++rejected;
        EXPECT_GT(e.line(), 0) << e.what();
      }
    }
  }
  EXPECT_GT(parsed, 0);
  EXPECT_GT(rejected, 0);
}

}  // namespace
