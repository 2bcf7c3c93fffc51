// Unit tests of the CLI's small helpers: size parsing, UTF-8 streaming, JSON output.

#include <gtest/gtest.h>

#include "cli/json_out.h"
#include "cli/size_parse.h"
#include "cli/utf8_stream.h"
#include "util/error.h"

using namespace swapmoe;
using namespace swapmoe::cli;

TEST(ParseSize, PlainAndSuffixes) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("123"), 123u);
  EXPECT_EQ(parse_size("123B"), 123u);
  EXPECT_EQ(parse_size("512K"), 512u * 1024);
  EXPECT_EQ(parse_size("512k"), 512u * 1024);
  EXPECT_EQ(parse_size("4G"), 4ull << 30);
  EXPECT_EQ(parse_size("4GiB"), 4ull << 30);
  EXPECT_EQ(parse_size("4gb"), 4ull << 30);
  EXPECT_EQ(parse_size("1.5G"), 3ull << 29);
  EXPECT_EQ(parse_size(" 2 M "), 2ull << 20);
  EXPECT_EQ(parse_size("1T"), 1ull << 40);
}

TEST(ParseSize, RejectsGarbage) {
  for (const char* bad : {"", "G", "abc", "4X", "4GG", "4Gx", "-1", "1.5", "1e3"})
    EXPECT_THROW(parse_size(bad), Error) << bad;
  EXPECT_THROW(parse_size("99999999999T"), Error);
}

TEST(FormatSize, Units) {
  EXPECT_EQ(format_size(17), "17 B");
  EXPECT_EQ(format_size(1536), "1.50 KiB");
  EXPECT_EQ(format_size(3ull << 30), "3.00 GiB");
}

TEST(Utf8Stream, HoldsSplitCharacters) {
  // "é" = C3 A9, "€" = E2 82 AC, "😀" = F0 9F 98 80, split at every possible point.
  const std::string text = "a\xC3\xA9" "b\xE2\x82\xAC" "c\xF0\x9F\x98\x80" "d";
  for (size_t cut1 = 0; cut1 <= text.size(); ++cut1) {
    for (size_t cut2 = cut1; cut2 <= text.size(); ++cut2) {
      Utf8Stream s;
      std::string out;
      for (const std::string& part : {text.substr(0, cut1), text.substr(cut1, cut2 - cut1), text.substr(cut2)}) {
        const std::string o = s.push(part);
        // Whatever is emitted must end on a character boundary.
        EXPECT_EQ(utf8_incomplete_tail(o), 0u);
        out += o;
      }
      out += s.flush();
      EXPECT_EQ(out, text);
    }
  }
}

TEST(Utf8Stream, EmitsCompletePrefixImmediately) {
  Utf8Stream s;
  EXPECT_EQ(s.push("ab\xE2\x82"), "ab");
  EXPECT_EQ(s.push("\xAC!"), "\xE2\x82\xAC!");
  EXPECT_EQ(s.flush(), "");
}

TEST(Utf8Stream, InvalidBytesPassThrough) {
  Utf8Stream s;
  // A stray continuation byte and an invalid lead byte are never held back.
  EXPECT_EQ(s.push("x\x80"), "x\x80");
  EXPECT_EQ(s.push("\xFF"), "\xFF");
  // An incomplete sequence at the very end is returned by flush.
  EXPECT_EQ(s.push("\xF0\x9F"), "");
  EXPECT_EQ(s.flush(), "\xF0\x9F");
}

TEST(JsonOut, Formats) {
  EXPECT_EQ(ids_to_json({}), "[]");
  EXPECT_EQ(ids_to_json({1, -2, 151643}), "[1,-2,151643]");
  EXPECT_EQ(eval_result_json(3, 1.5, 4.4816890703), "{\"tokens\":3,\"nll\":1.500000,\"ppl\":4.481689}");
}
