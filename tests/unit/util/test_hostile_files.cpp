// Issue 15: inputs that are not regular files are refused without blocking, text inputs are
// capped, and a thread count the machine cannot run is an error rather than a hang.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "util/error.h"
#include "util/text_file.h"
#include "util/thread_pool.h"

namespace {

std::string temp_path(const char* tag) {
  return std::string(::testing::TempDir()) + "swapmoe_hostile_" + tag + "_" + std::to_string(::getpid());
}

TEST(HostileFiles, FifoIsRefusedWithoutBlocking) {
  const std::string fifo = temp_path("fifo");
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Before the fix this open() blocked until a writer appeared, i.e. forever.
  const auto t0 = std::chrono::steady_clock::now();
  try {
    (void)swapmoe::read_whole_file(fifo, "the text file");
    ADD_FAILURE() << "a FIFO was read";
  } catch (const swapmoe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a FIFO"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  ::unlink(fifo.c_str());
}

TEST(HostileFiles, CharacterDeviceAndDirectoryAreRefused) {
  EXPECT_THROW((void)swapmoe::read_whole_file("/dev/zero", "the text file"), swapmoe::Error);
  EXPECT_THROW((void)swapmoe::read_whole_file("/", "the text file"), swapmoe::Error);
}

TEST(HostileFiles, TextInputsAreCapped) {
  const std::string p = temp_path("big");
  {
    std::ofstream out(p, std::ios::binary);
    out << std::string(5000, 'x');
  }
  EXPECT_EQ(swapmoe::read_whole_file(p, "the text file", 5000).size(), 5000u);
  EXPECT_THROW((void)swapmoe::read_whole_file(p, "the text file", 4999), swapmoe::Error);
  ::unlink(p.c_str());
}

TEST(HostileFiles, ThreadCountAboveTheCapIsAnError) {
  EXPECT_THROW(swapmoe::ThreadPool pool(1000000), swapmoe::Error);
  EXPECT_THROW((void)swapmoe::resolve_thread_count(swapmoe::max_thread_count() + 1), swapmoe::Error);
  EXPECT_EQ(swapmoe::resolve_thread_count(swapmoe::max_thread_count()), swapmoe::max_thread_count());
}

}  // namespace
