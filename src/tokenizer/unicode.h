#pragma once
// Unicode helpers for the tokenizers: UTF-8 decoding with llama.cpp's error handling,
// character classes (from ICU) as the pre-tokenizer needs them, and the GPT-2
// byte <-> printable-character map used by byte-level BPE vocabularies.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace swapmoe::uni {

// Category bits of one code point. A code point has at most one of
// kLetter..kOther; kWhitespace is independent (a tab is both kOther and kWhitespace).
enum : uint8_t {
  kLetter = 1,       // \p{L}
  kNumber = 2,       // \p{N}
  kPunct = 4,        // \p{P}
  kMark = 8,         // \p{M}
  kSymbol = 16,      // \p{S}
  kWhitespace = 32,  // Unicode White_Space
  kOther = 64,       // separators that are not white space, controls, unassigned
};

// Category bits of a code point (real Unicode categories, from ICU).
uint8_t flags(uint32_t cp);

// Lower-case mapping of a single code point (identity when there is none).
uint32_t to_lower(uint32_t cp);

// Length of the UTF-8 sequence that starts with byte c, judged by its high bits only
// (continuation bytes count as 1), as llama.cpp's SentencePiece splitter does.
size_t utf8_len(unsigned char c);

// Decodes UTF-8 into code points. A malformed or truncated sequence yields U+FFFD and
// skips one byte, which is what llama.cpp does, so the words the pre-tokenizer produces
// (and hence the token ids) agree with it on invalid input too.
std::vector<uint32_t> decode_utf8(std::string_view s);

// Appends the UTF-8 encoding of cp (values above U+10FFFF are written as U+FFFD).
void append_utf8(std::string& out, uint32_t cp);

// GPT-2 byte-level BPE: every byte is shown as a printable code point so that
// vocabulary entries are valid text (space -> U+0120 'Ġ', newline -> U+010A 'Ċ', ...).
uint32_t byte_to_cp(uint8_t b);
// The byte a code point stands for, or -1 if it is not one of the 256 byte characters.
int cp_to_byte(uint32_t cp);

}  // namespace swapmoe::uni
