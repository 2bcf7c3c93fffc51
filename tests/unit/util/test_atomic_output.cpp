// Issue 15, item 11: outputs appear whole or not at all, never through a planted symlink,
// never over an input, and no temporary file survives an error or SIGINT/SIGTERM.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "util/atomic_output.h"
#include "util/error.h"

namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path dir;
  TempDir() {
    dir = fs::path(::testing::TempDir()) / ("swapmoe_atomic_" + std::to_string(::getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() { fs::remove_all(dir); }
  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const auto& e : fs::directory_iterator(dir)) n.push_back(e.path().filename().string());
    return n;
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    ASSERT_GT(n, 0);
    off += static_cast<size_t>(n);
  }
}

TEST(AtomicOutput, CommitRenamesAndAbandonRemoves) {
  TempDir t;
  const std::string out = (t.dir / "out.gguf").string();
  {
    swapmoe::AtomicOutput o(out);
    EXPECT_NE(o.temp_path(), out + ".tmp");  // unique, not a predictable name
    write_all(o.fd(), "whole");
    o.commit();
  }
  EXPECT_EQ(slurp(out), "whole");
  {
    swapmoe::AtomicOutput o(out);
    write_all(o.fd(), "half");
  }  // not committed: removed, OUT untouched
  EXPECT_EQ(slurp(out), "whole");
  EXPECT_EQ(t.names(), std::vector<std::string>{"out.gguf"});
}

TEST(AtomicOutput, PlantedSymlinkIsNeverFollowed) {
  TempDir t;
  const fs::path victim = t.dir / "victim.txt";
  std::ofstream(victim) << "precious";
  const std::string out = (t.dir / "m.gguf").string();
  fs::create_symlink(victim, out + ".tmp");  // the old writer opened this with O_TRUNC
  {
    swapmoe::AtomicOutput o(out);
    write_all(o.fd(), "model bytes");
    o.commit();
  }
  EXPECT_EQ(slurp(victim), "precious");
  EXPECT_EQ(slurp(out), "model bytes");
}

TEST(AtomicOutput, OutputThatIsAnInputIsRefused) {
  TempDir t;
  const fs::path in = t.dir / "a.gguf";
  std::ofstream(in) << "input";
  const fs::path other = t.dir / "b.gguf";
  std::ofstream(other) << "other";
  fs::create_hard_link(in, t.dir / "hard.gguf");
  fs::create_symlink(in, t.dir / "sym.gguf");
  const std::string dot = (t.dir / "." / "a.gguf").string();
  EXPECT_THROW(swapmoe::refuse_same_file(in.string(), {in.string()}), swapmoe::Error);
  EXPECT_THROW(swapmoe::refuse_same_file(dot, {in.string()}), swapmoe::Error);
  EXPECT_THROW(swapmoe::refuse_same_file((t.dir / "hard.gguf").string(), {other.string(), in.string()}), swapmoe::Error);
  EXPECT_THROW(swapmoe::refuse_same_file((t.dir / "sym.gguf").string(), {in.string()}), swapmoe::Error);
  EXPECT_NO_THROW(swapmoe::refuse_same_file(other.string(), {in.string()}));
  EXPECT_NO_THROW(swapmoe::refuse_same_file((t.dir / "new.gguf").string(), {in.string()}));
}

TEST(AtomicOutput, ConcurrentWritersLeaveOneCompleteFile) {
  TempDir t;
  const std::string out = (t.dir / "race.gguf").string();
  const std::string a(1 << 20, 'a'), b(1 << 20, 'b');
  for (int round = 0; round < 5; ++round) {
    std::thread ta([&] {
      swapmoe::AtomicOutput o(out);
      for (int i = 0; i < 4; ++i) write_all(o.fd(), a);
      o.commit();
    });
    std::thread tb([&] {
      swapmoe::AtomicOutput o(out);
      for (int i = 0; i < 4; ++i) write_all(o.fd(), b);
      o.commit();
    });
    ta.join();
    tb.join();
    const std::string got = slurp(out);
    ASSERT_EQ(got.size(), 4u << 20);
    EXPECT_TRUE(got == std::string(4u << 20, 'a') || got == std::string(4u << 20, 'b')) << "a mix of both writers";
  }
  EXPECT_EQ(t.names(), std::vector<std::string>{"race.gguf"});
}

TEST(AtomicOutput, SignalRemovesTheTemporaryFile) {
  for (int sig : {SIGINT, SIGTERM}) {
    TempDir t;
    const std::string out = (t.dir / "killed.gguf").string();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      swapmoe::AtomicOutput o(out);
      (void)!::write(o.fd(), "partial", 7);
      ::raise(sig);  // as a Ctrl-C or kill in the middle of writing
      ::_exit(3);    // not reached
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << "status " << status;
    EXPECT_TRUE(t.names().empty()) << "left: " << (t.names().empty() ? "" : t.names()[0]);
  }
}

}  // namespace
