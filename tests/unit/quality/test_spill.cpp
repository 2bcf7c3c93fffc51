// The reference-logit spill file: records come back bit for bit, the file has no name
// while in use, and misuse is an Error.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <filesystem>
#include <vector>

#include "eval/eval_spill.h"
#include "util/error.h"

namespace swapmoe::cli {
namespace {

TEST(LogitSpill, RoundTripsEveryRecordBitForBit) {
  const int nv = 1000;
  // Enough records to cross the 16 MiB sync-and-drop threshold (4008 B x 5000 = 19 MB).
  const int n = 5000;
  LogitSpill s(nv);
  std::vector<float> l(nv);
  for (int i = 0; i < n; ++i) {
    for (int v = 0; v < nv; ++v) l[v] = std::sin(0.001f * static_cast<float>(i * nv + v)) * 20.0f;
    l[i % nv] = -std::numeric_limits<float>::infinity();  // special values survive too
    s.append(l.data(), 1.0 / (i + 1));
  }
  EXPECT_EQ(s.size(), n);
  std::vector<float> back(nv);
  for (int i : {0, 1, 2, 1234, 4095, n - 1}) {
    for (int v = 0; v < nv; ++v) l[v] = std::sin(0.001f * static_cast<float>(i * nv + v)) * 20.0f;
    l[i % nv] = -std::numeric_limits<float>::infinity();
    double lse = 0;
    s.read(i, back.data(), lse);
    EXPECT_EQ(lse, 1.0 / (i + 1)) << "record " << i;
    EXPECT_EQ(0, std::memcmp(back.data(), l.data(), sizeof(float) * nv)) << "record " << i;
  }
}

TEST(LogitSpill, HasNoNameWhileInUse) {
  const std::string dir = ::testing::TempDir();
  LogitSpill s(16, dir);
  EXPECT_EQ(s.created_path().rfind(dir, 0), 0u) << s.created_path();
  EXPECT_FALSE(std::filesystem::exists(s.created_path()));
}

TEST(LogitSpill, MisuseIsAnError) {
  EXPECT_THROW(LogitSpill(0), Error);
  EXPECT_THROW(LogitSpill(8, "/nonexistent-dir-for-swapmoe-test"), Error);
  LogitSpill s(4);
  std::vector<float> l(4, 1.0f);
  double lse = 0;
  EXPECT_THROW(s.read(0, l.data(), lse), Error);
  s.append(l.data(), 2.0);
  EXPECT_NO_THROW(s.read(0, l.data(), lse));
  EXPECT_THROW(s.read(1, l.data(), lse), Error);
  EXPECT_THROW(s.read(-1, l.data(), lse), Error);
}

}  // namespace
}  // namespace swapmoe::cli
