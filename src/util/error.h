#pragma once
// Errors: code inside the engine throws swapmoe::Error with enough context to act on
// (file, offset, tensor name, expected vs actual). The CLI and the server catch it once
// at their boundary and print what(); nothing else should catch and swallow it.
// (GCC 12 has no <format>, so messages are built by streaming the arguments.)

#include <sstream>
#include <stdexcept>
#include <string>

namespace swapmoe {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// cat("a=", 1, " b=", 2.5) -> "a=1 b=2.5"
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// fail("tensor ", name, ": expected ", a, ", got ", b) throws Error.
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace swapmoe
