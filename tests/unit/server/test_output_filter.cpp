// OutputFilter: stop strings, <think> routing and UTF-8 holding, fed token by token in
// every possible split of the text, against results written out by hand.
#include <gtest/gtest.h>

#include "server/output_filter.h"

using swapmoe::server::OutputFilter;
using swapmoe::server::TextDelta;

namespace {

struct Out {
  std::string content, reasoning;
  bool stopped = false;
};

// Feeds `pieces` one by one, checking after each push that nothing emitted so far ends in
// the middle of a UTF-8 character.
Out run(const std::vector<std::string>& pieces, std::vector<std::string> stops, bool in_think = false,
        bool split = true, bool harmony = false) {
  OutputFilter f(std::move(stops), in_think, split, harmony);
  Out o;
  for (const auto& p : pieces) {
    TextDelta d;
    f.push(p, d);
    o.content += d.content;
    o.reasoning += d.reasoning;
    EXPECT_EQ(swapmoe::server::incomplete_utf8_tail(o.content), 0u) << o.content;
  }
  TextDelta d;
  f.finish(d);
  o.content += d.content;
  o.reasoning += d.reasoning;
  o.stopped = f.stopped();
  return o;
}

// Every way of cutting `text` into two or three pieces.
std::vector<std::vector<std::string>> splits(const std::string& text) {
  std::vector<std::vector<std::string>> out{{text}};
  for (size_t i = 1; i < text.size(); ++i) {
    out.push_back({text.substr(0, i), text.substr(i)});
    for (size_t j = i + 1; j < text.size(); ++j) out.push_back({text.substr(0, i), text.substr(i, j - i), text.substr(j)});
  }
  return out;
}

std::vector<std::string> bytes(const std::string& text) {
  std::vector<std::string> out;
  for (char c : text) out.push_back(std::string(1, c));
  return out;
}

}  // namespace

TEST(OutputFilter, PlainTextPassesThrough) {
  for (const auto& p : splits("Hello, world")) {
    const Out o = run(p, {});
    EXPECT_EQ(o.content, "Hello, world");
    EXPECT_EQ(o.reasoning, "");
    EXPECT_FALSE(o.stopped);
  }
}

TEST(OutputFilter, StopStringCutsAtFirstOccurrenceInAnySplit) {
  for (const auto& p : splits("abc STOP def STOP")) {
    const Out o = run(p, {"STOP", "zzz"});
    EXPECT_EQ(o.content, "abc ");
    EXPECT_TRUE(o.stopped);
  }
}

TEST(OutputFilter, EarliestOfSeveralStops) {
  const Out o = run(bytes("one two three"), {"three", "two"});
  EXPECT_EQ(o.content, "one ");
}

TEST(OutputFilter, PartialStopAtEndIsReleased) {
  // "ST" might have become "STOP", but generation ended: the text is the user's.
  for (const auto& p : splits("abc ST")) {
    const Out o = run(p, {"STOP"});
    EXPECT_EQ(o.content, "abc ST");
    EXPECT_FALSE(o.stopped);
  }
}

TEST(OutputFilter, ThinkBlockGoesToReasoning) {
  for (const auto& p : splits("<think>\nplan it\n</think>\n\nAnswer")) {
    const Out o = run(p, {});
    EXPECT_EQ(o.reasoning, "plan it");
    EXPECT_EQ(o.content, "Answer");
  }
}

TEST(OutputFilter, StartInThink) {
  for (const auto& p : splits("\nhmm ok\n</think>Yes")) {
    const Out o = run(p, {}, /*in_think=*/true);
    EXPECT_EQ(o.reasoning, "hmm ok");
    EXPECT_EQ(o.content, "Yes");
  }
  const Out unfinished = run(bytes("still thinking  \n"), {}, true);
  EXPECT_EQ(unfinished.reasoning, "still thinking");
  EXPECT_EQ(unfinished.content, "");
}

TEST(OutputFilter, ThinkOnlyAtTheStart) {
  const Out o = run(bytes("Use <think> tags"), {});
  EXPECT_EQ(o.content, "Use <think> tags");
  EXPECT_EQ(o.reasoning, "");
}

TEST(OutputFilter, NoSplitKeepsTags) {
  const Out o = run(bytes("<think>x</think>y"), {}, false, /*split=*/false);
  EXPECT_EQ(o.content, "<think>x</think>y");
}

TEST(OutputFilter, UnfinishedTagIsText) {
  const Out o = run(bytes("<thi"), {});
  EXPECT_EQ(o.content, "<thi");
}

TEST(OutputFilter, StopInsideReasoning) {
  const Out o = run(bytes("<think>abc END more</think>x"), {"END"});
  EXPECT_EQ(o.reasoning, "abc");
  EXPECT_EQ(o.content, "");
  EXPECT_TRUE(o.stopped);
}

TEST(OutputFilter, Utf8CharactersAreNeverSplit) {
  const std::string text = "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x98\x80!";  // héllo 世界 😀!
  for (const auto& p : splits(text)) EXPECT_EQ(run(p, {}).content, text);
  // A stop string made of a multi-byte character, arriving byte by byte.
  const Out o = run(bytes(text), {"\xE7\x95\x8C"});
  EXPECT_EQ(o.content, "h\xC3\xA9llo \xE4\xB8\x96");
}

TEST(OutputFilter, IncompleteUtf8Tail) {
  using swapmoe::server::incomplete_utf8_tail;
  EXPECT_EQ(incomplete_utf8_tail(""), 0u);
  EXPECT_EQ(incomplete_utf8_tail("abc"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\xC3"), 1u);
  EXPECT_EQ(incomplete_utf8_tail("a\xE4\xB8"), 2u);
  EXPECT_EQ(incomplete_utf8_tail("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_tail("a\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\x80"), 0u);  // stray continuation: never completes
  EXPECT_EQ(incomplete_utf8_tail("a\xFF"), 0u);  // invalid lead byte
}

// ---- harmony (gpt-oss). The streams are what the engine passes on for gpt-oss's tokens:
// <|channel|>, <|message|>, <|start|> and <|constrain|> are rendered as text (llama.cpp's
// o200k_harmony rule); <|end|> is a control token and not passed on; <|return|> and <|call|>
// end generation. The split variants cut the text anywhere, also inside the markers.

Out harmony(const std::vector<std::string>& pieces, std::vector<std::string> stops = {}) {
  return run(pieces, std::move(stops), /*in_think=*/false, /*split=*/true, /*harmony=*/true);
}

TEST(OutputFilterHarmony, AnalysisIsReasoningFinalIsContentInAnySplit) {
  const std::string text =
      "<|channel|>analysis<|message|>User greets. Reply <b>politely</b>.<|start|>assistant<|channel|>final"
      "<|message|>Hello! How can I help?";
  for (const auto& p : splits(text)) {
    const Out o = harmony(p);
    EXPECT_EQ(o.reasoning, "User greets. Reply <b>politely</b>.");
    EXPECT_EQ(o.content, "Hello! How can I help?");
  }
}

TEST(OutputFilterHarmony, TokenByTokenWithEndMarkersPassedOn) {
  // The same with <|end|> and <|return|> in the text (a caller that renders control tokens).
  const std::vector<std::string> toks = {"<|channel|>", "analysis", "<|message|>", "Think", "ing", "<|end|>",
                                         "<|start|>",   "assistant", "<|channel|>", "final", "<|message|>",
                                         "Done",        ".",         "<|return|>"};
  const Out o = harmony(toks);
  EXPECT_EQ(o.reasoning, "Thinking");
  EXPECT_EQ(o.content, "Done.");
}

TEST(OutputFilterHarmony, ToolCallBecomesAToolCallBlock) {
  const std::string text =
      "<|channel|>analysis<|message|>Need weather.<|start|>assistant<|channel|>commentary to=functions.get_weather "
      "<|constrain|>json<|message|>{\"city\": \"Paris\", \"days\": 2}";
  for (const auto& p : splits(text)) {
    const Out o = harmony(p);
    EXPECT_EQ(o.reasoning, "Need weather.");
    EXPECT_EQ(o.content, "<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"days\":2}}</tool_call>");
  }
}

TEST(OutputFilterHarmony, RecipientBeforeChannelAndNonJsonArguments) {
  const Out o = harmony(bytes("<|channel|>analysis<|message|>x<|start|>assistant to=functions.lookup<|channel|>"
                              "commentary json<|message|>not json"));
  EXPECT_EQ(o.reasoning, "x");
  EXPECT_EQ(o.content, "<tool_call>{\"name\":\"lookup\",\"arguments\":\"not json\"}</tool_call>");
}

TEST(OutputFilterHarmony, CommentaryWithoutRecipientIsContent) {
  const Out o = harmony({"<|channel|>commentary<|message|>Checking now.", "<|start|>assistant<|channel|>final",
                         "<|message|>Result."});
  EXPECT_EQ(o.reasoning, "");
  EXPECT_EQ(o.content, "Checking now.Result.");
}

TEST(OutputFilterHarmony, UnfinishedOutputs) {
  // Cut inside the analysis: all reasoning, no content.
  Out o = harmony(bytes("<|channel|>analysis<|message|>still thinking"));
  EXPECT_EQ(o.reasoning, "still thinking");
  EXPECT_EQ(o.content, "");
  // Cut inside a header: the header says nothing.
  o = harmony(bytes("<|channel|>analysis<|message|>a<|start|>assistant<|chan"));
  EXPECT_EQ(o.reasoning, "a");
  EXPECT_EQ(o.content, "");
  // Cut right after the marker that opens the next message.
  o = harmony(bytes("<|channel|>analysis<|message|>a<|start|>assistant"));
  EXPECT_EQ(o.content, "");
  // A partial marker at the very end of a body is text once generation ends.
  o = harmony(bytes("<|channel|>final<|message|>x <|"));
  EXPECT_EQ(o.content, "x <|");
}

TEST(OutputFilterHarmony, TextWithoutHarmonyMarkupIsContent) {
  for (const auto& p : splits("Just text.")) EXPECT_EQ(harmony(p).content, "Just text.");
}

TEST(OutputFilterHarmony, StopStringsStillApply) {
  const Out o = harmony(bytes("<|channel|>final<|message|>one STOP two"), {"STOP"});
  EXPECT_EQ(o.content, "one ");
  EXPECT_TRUE(o.stopped);
}

TEST(OutputFilterHarmony, ThinkTagsAreNotSpecial) {
  const Out o = harmony(bytes("<|channel|>final<|message|><think>x</think>"));
  EXPECT_EQ(o.content, "<think>x</think>");
  EXPECT_EQ(o.reasoning, "");
}

TEST(OutputFilterHarmony, Utf8InsideChannels) {
  const Out o = harmony(bytes("<|channel|>analysis<|message|>日本<|start|>assistant<|channel|>final<|message|>🦙é"));
  EXPECT_EQ(o.reasoning, "日本");
  EXPECT_EQ(o.content, "🦙é");
}

// GLM-4.6: the generation prompt ends with <|assistant|>; the model writes "\n<think>...</think>\n"
// then the answer.
TEST(OutputFilter, GlmThinkBlock) {
  for (const auto& p : splits("\n<think>Plan it.</think>\nAnswer.")) {
    const Out o = run(p, {});
    EXPECT_EQ(o.reasoning, "Plan it.");
    EXPECT_EQ(o.content, "Answer.");
  }
  // Leading white space without a think block stays, with the text after it.
  for (const auto& p : splits("\n Answer")) EXPECT_EQ(run(p, {}).content, "\n Answer");
  EXPECT_EQ(run(bytes(" \n"), {}).content, " \n");
}
