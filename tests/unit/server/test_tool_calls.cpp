// Qwen3-style <tool_call> blocks -> OpenAI tool_calls (server/tool_calls.h), whole and streamed.
#include <gtest/gtest.h>

#include "server/tool_calls.h"

using namespace swapmoe::server;

namespace {

const char* kReply =
    "Let me look that up.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n"
    "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";

TEST(ToolCalls, ParsesQwenBlocks) {
  const ParsedToolCalls p = parse_tool_calls(kReply, "call_");
  EXPECT_EQ(p.content, "Let me look that up.");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0]["id"], "call_0");
  EXPECT_EQ(p.calls[0]["type"], "function");
  EXPECT_EQ(p.calls[0]["function"]["name"], "get_weather");
  // OpenAI sends arguments as JSON text.
  EXPECT_EQ(p.calls[0]["function"]["arguments"], "{\"city\":\"Paris\",\"days\":2}");
  EXPECT_EQ(p.calls[1]["id"], "call_1");
  EXPECT_EQ(p.calls[1]["function"]["arguments"], "{}");
  const json o = ollama_tool_call(p.calls[0]);
  EXPECT_EQ(o["function"]["arguments"]["city"], "Paris");
}

TEST(ToolCalls, InvalidOrUnfinishedBlocksStayText) {
  EXPECT_TRUE(parse_tool_calls("no calls here").calls.empty());
  EXPECT_EQ(parse_tool_calls("no calls here").content, "no calls here");
  const std::string bad = "x<tool_call>{\"name\": 3}</tool_call>";
  EXPECT_TRUE(parse_tool_calls(bad).calls.empty());
  EXPECT_EQ(parse_tool_calls(bad).content, bad);
  const std::string open = "x<tool_call>{\"name\": \"f\", \"arguments\": {}}";
  EXPECT_TRUE(parse_tool_calls(open).calls.empty());
  EXPECT_EQ(parse_tool_calls(open).content, open);
  // String arguments (already JSON text) are passed on as they are.
  const ParsedToolCalls s = parse_tool_calls("<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\":1}\"}</tool_call>", "c");
  ASSERT_EQ(s.calls.size(), 1u);
  EXPECT_EQ(s.calls[0]["function"]["arguments"], "{\"a\":1}");
  EXPECT_EQ(s.content, "");
}

TEST(ToolCalls, StreamHoldsBackFromTheFirstBlockInAnySplit) {
  const std::string text = kReply;
  for (size_t step = 1; step <= 7; ++step) {
    ToolCallStream ts;
    std::string sent;
    for (size_t i = 0; i < text.size(); i += step) sent += ts.push(text.substr(i, step));
    const ParsedToolCalls p = ts.finish("call_");
    EXPECT_EQ(sent, "Let me look that up.\n") << "step " << step;
    EXPECT_EQ(p.content, "");
    ASSERT_EQ(p.calls.size(), 2u);
    EXPECT_EQ(p.calls[1]["function"]["name"], "get_time");
  }
  // Text that only looks like the start of a tag is released.
  ToolCallStream ts;
  std::string sent = ts.push("a <tool");
  EXPECT_EQ(sent, "a ");
  sent += ts.push("box> b");
  EXPECT_EQ(sent, "a <toolbox> b");
  ToolCallStream tail;
  EXPECT_EQ(tail.push("end <tool_"), "end ");
  EXPECT_EQ(tail.finish().content, "<tool_");
}

}  // namespace

// GLM-4.5/4.6: name then arg_key/arg_value pairs, as its template renders a call.
TEST(ToolCalls, ParsesGlmBlocks) {
  const std::string reply =
      "Let me check.\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>Paris</arg_value>\n"
      "<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n<arg_key>opts</arg_key>\n<arg_value>{\"a\": [1, true]}"
      "</arg_value>\n</tool_call>\n<tool_call>get_time</tool_call>";
  const ParsedToolCalls p = parse_tool_calls(reply, "call_");
  EXPECT_EQ(p.content, "Let me check.");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0]["function"]["name"], "get_weather");
  EXPECT_EQ(p.calls[0]["function"]["arguments"], "{\"location\":\"Paris\",\"days\":2,\"opts\":{\"a\":[1,true]}}");
  EXPECT_EQ(p.calls[1]["function"]["name"], "get_time");
  EXPECT_EQ(p.calls[1]["function"]["arguments"], "{}");
  // Streamed in every split, the same calls come out and no block text leaks as content.
  for (size_t i = 1; i < reply.size(); i += 7) {
    ToolCallStream s;
    std::string sent = s.push(reply.substr(0, i));
    sent += s.push(reply.substr(i));
    const ParsedToolCalls f = s.finish("call_");
    EXPECT_EQ(sent + f.content, "Let me check.\n") << i;
    ASSERT_EQ(f.calls.size(), 2u) << i;
    EXPECT_EQ(f.calls[0], p.calls[0]) << i;
  }
}

TEST(ToolCalls, MalformedGlmBlocksStayText) {
  for (const std::string bad : {"<tool_call>two words</tool_call>", "<tool_call>f<arg_key>k</arg_key></tool_call>",
                                "<tool_call>f<arg_key>k</arg_key>x<arg_value>v</arg_value></tool_call>",
                                "<tool_call>f<arg_value>v</arg_value></tool_call>", "<tool_call></tool_call>",
                                "<tool_call>{\"name\": broken</tool_call>"}) {
    const ParsedToolCalls p = parse_tool_calls(bad);
    EXPECT_TRUE(p.calls.empty()) << bad;
    EXPECT_EQ(p.content, bad);
  }
}

// gpt-oss calls arrive rewritten by the harmony router (harmony.h) as JSON blocks.
TEST(ToolCalls, HarmonyRewrittenCall) {
  const ParsedToolCalls p =
      parse_tool_calls("<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}</tool_call>", "c");
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
  EXPECT_EQ(p.content, "");
}
