// Skips that CI does not allow. A green run must not mean "skipped": under CI=true, or with
// SWAPMOE_REQUIRE=all, a test that cannot run what it is about fails instead of skipping.
// SWAPMOE_ALLOW_SKIP=class,class (classes: avx512, avx2, uring, ...) lets a CI machine that
// truly lacks a feature skip those tests on purpose; the reason is still printed.
// Every skip, strict or not, is appended to $SWAPMOE_SKIP_LOG when set (scripts/test.sh
// prints that file as the run's summary of what did not run).
//
//   SWAPMOE_SKIP_OR_FAIL("uring", "io_uring cannot be set up: " << e.what());   // returns
//   if (!swapmoe::test::skip_allowed("uring", "...")) ADD_FAILURE() << ...;      // in loops
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace swapmoe::test {

// CI=true (what CI systems set) or SWAPMOE_REQUIRE=all.
inline bool strict_mode() {
  const char* ci = std::getenv("CI");
  const char* req = std::getenv("SWAPMOE_REQUIRE");
  return (ci != nullptr && std::string(ci) == "true") || (req != nullptr && std::string(req) == "all");
}

// Whether SWAPMOE_ALLOW_SKIP names this class of skip.
inline bool allowed_class(const std::string& cls) {
  const char* a = std::getenv("SWAPMOE_ALLOW_SKIP");
  if (a == nullptr) return false;
  std::stringstream ss(a);
  std::string item;
  while (std::getline(ss, item, ','))
    if (item == cls) return true;
  return false;
}

// For the instruction-set classes: whether /proc/cpuinfo (independent of the CPU detection
// under test) lists every flag the class needs. A machine that has them may never skip.
inline bool machine_has(const std::string& cls) {
  const char* need512[] = {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx2", "fma", "f16c"};
  const char* need2[] = {"avx2", "fma", "f16c"};
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    line += ' ';
    auto has = [&](const char* f) { return line.find(std::string(" ") + f + " ") != std::string::npos; };
    if (cls == "avx512") {
      for (const char* f : need512)
        if (!has(f)) return false;
      return true;
    }
    if (cls == "avx2") {
      for (const char* f : need2)
        if (!has(f)) return false;
      return true;
    }
    return false;
  }
  return false;
}

// Records a skip (stdout and $SWAPMOE_SKIP_LOG) and says whether it is allowed here.
inline bool skip_allowed(const std::string& cls, const std::string& reason) {
  const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string where = t != nullptr ? std::string(t->test_suite_name()) + "." + t->name() : "?";
  const bool ok = (!strict_mode() || allowed_class(cls)) && !machine_has(cls);
  if (const char* log = std::getenv("SWAPMOE_SKIP_LOG"); log != nullptr && *log != '\0') {
    if (std::FILE* f = std::fopen(log, "a")) {
      std::fprintf(f, "%s gtest %s [%s]: %s\n", ok ? "SKIP" : "FAIL", where.c_str(), cls.c_str(), reason.c_str());
      std::fclose(f);
    }
  }
  std::printf("%s %s [%s]: %s\n", ok ? "skip:" : "REQUIRED, not skipped:", where.c_str(), cls.c_str(), reason.c_str());
  return ok;
}

}  // namespace swapmoe::test

// Skips the current test, or fails it in strict mode. `msg` is a stream expression.
#define SWAPMOE_SKIP_OR_FAIL(cls, msg)                                                             \
  do {                                                                                             \
    std::ostringstream swapmoe_skip_os_;                                                           \
    swapmoe_skip_os_ << msg;                                                                       \
    if (::swapmoe::test::skip_allowed(cls, swapmoe_skip_os_.str())) GTEST_SKIP() << swapmoe_skip_os_.str(); \
    FAIL() << "required under CI=true / SWAPMOE_REQUIRE=all, would have been skipped: "           \
           << swapmoe_skip_os_.str();                                                              \
  } while (0)
