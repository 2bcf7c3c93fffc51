#pragma once
// Streams token text to a terminal. One UTF-8 character can be split across tokens
// (byte-fallback tokens, or BPE pieces that cut a multi-byte character), and printing
// half a character shows garbage. Utf8Stream holds back an incomplete sequence at the
// end of the text until the rest arrives. Bytes that can never become valid UTF-8
// (a stray continuation byte, an invalid lead byte) are passed through rather than
// held, so nothing is ever lost or delayed indefinitely. Header-only for unit tests.

#include <cstddef>
#include <string>

namespace swapmoe::cli {

// Length of the sequence a lead byte starts: 1..4, or 0 for a continuation byte or an
// invalid lead byte (0xF8..0xFF, 0xC0, 0xC1).
inline int utf8_sequence_length(unsigned char c) {
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return 2;
  if (c < 0xF0) return 3;
  if (c < 0xF5) return 4;
  return 0;
}

// Number of bytes at the end of s that form the start of a multi-byte sequence still
// missing its continuation bytes (0 if s ends on a character boundary).
inline size_t utf8_incomplete_tail(const std::string& s) {
  const size_t n = s.size();
  // A sequence is at most 4 bytes, so its lead byte is within the last 3 bytes when
  // the sequence is incomplete.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const int len = utf8_sequence_length(c);
    return (len > 1 && static_cast<size_t>(len) > back) ? back : 0;
  }
  return 0;
}

class Utf8Stream {
 public:
  // Appends bytes; returns the text that is now safe to print.
  std::string push(const std::string& bytes) {
    pending_ += bytes;
    const size_t hold = utf8_incomplete_tail(pending_);
    std::string out = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return out;
  }
  // Returns whatever is still held (at the end of generation), even if incomplete.
  std::string flush() {
    std::string out;
    out.swap(pending_);
    return out;
  }

 private:
  std::string pending_;
};

}  // namespace swapmoe::cli
