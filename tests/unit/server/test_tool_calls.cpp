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
