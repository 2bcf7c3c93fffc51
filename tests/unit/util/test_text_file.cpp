// read_whole_file: exact bytes back (binary-safe, NUL included), and errors that name the
// file and what it was meant to be.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "util/error.h"
#include "util/text_file.h"

namespace swapmoe {
namespace {

std::string temp_file(const std::string& bytes) {
  char name[] = "/tmp/swapmoe_text_file_XXXXXX";
  const int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);
  return name;
}

TEST(TextFile, ReturnsEveryByte) {
  const std::string bytes = std::string("line 1\r\nline 2\n") + '\0' + "after NUL\xff";
  const std::string p = temp_file(bytes);
  EXPECT_EQ(read_whole_file(p), bytes);
  std::remove(p.c_str());
  const std::string empty = temp_file("");
  EXPECT_EQ(read_whole_file(empty), "");
  std::remove(empty.c_str());
}

TEST(TextFile, MissingFileNamesPathAndPurpose) {
  try {
    read_whole_file("/nonexistent/dir/prompt.txt", "the text file");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("/nonexistent/dir/prompt.txt"), std::string::npos) << m;
    EXPECT_NE(m.find("the text file"), std::string::npos) << m;
  }
}

TEST(TextFile, DirectoryIsAnError) {
  // Opening a directory succeeds on Linux; reading it fails, and that must not pass as "".
  EXPECT_THROW(read_whole_file("/tmp", "the chat template"), Error);
}

}  // namespace
}  // namespace swapmoe
