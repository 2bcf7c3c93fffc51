// libFuzzer target for the tokenizers (src/tokenizer): arbitrary text is encoded with every
// vocabulary in FUZZ_VOCAB_DIR (default tests/data/vocab; byte-level BPE and SentencePiece),
// with and without special-token parsing. Every id must be inside the vocabulary, encoding
// must be deterministic, and for valid UTF-8 without special parsing decode(encode(x)) == x
// (tokenizer.h promises it; SentencePiece may add one leading space, and turns a U+2581 the text
// already held into a space).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

struct Vocab {
  std::string name;
  std::unique_ptr<swapmoe::GgufFile> file;
  std::unique_ptr<swapmoe::Tokenizer> tok;
  size_t n = 0;
};

std::vector<Vocab>& vocabs() {
  static std::vector<Vocab> v = [] {
    std::vector<Vocab> out;
    const char* dir = std::getenv("FUZZ_VOCAB_DIR");
    const std::string d = dir ? dir : "tests/data/vocab";
    // A few families that exercise different pre-tokenizers and both algorithms.
    for (const char* name : {"gpt-2", "qwen2", "llama-spm", "deepseek-v3"}) {
      const std::string p = d + "/ggml-vocab-" + name + ".gguf";
      if (!std::filesystem::exists(p)) continue;
      Vocab x;
      x.name = name;
      x.file = swapmoe::GgufFile::open(p);
      x.tok = swapmoe::Tokenizer::from_gguf(*x.file);
      x.n = x.tok->n_vocab();
      out.push_back(std::move(x));
    }
    if (out.empty()) {
      std::fprintf(stderr, "fuzz_tokenizer: no vocabularies in %s (set FUZZ_VOCAB_DIR)\n", d.c_str());
      std::abort();
    }
    return out;
  }();
  return v;
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 2) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n;
  }
  return true;
}

[[noreturn]] void fail(const Vocab& v, bool parse_special, const char* what) {
  std::fprintf(stderr, "fuzz_tokenizer: %s (vocabulary %s, parse_special %d)\n", what, v.name.c_str(), parse_special);
  __builtin_trap();
}

}  // namespace

// The vocabularies load once, before the first input (the per-input -timeout must not count
// parsing four GGUF vocabularies under the sanitizers).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)vocabs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const Vocab& v : vocabs()) {
    for (bool parse_special : {false, true}) {
      std::vector<int32_t> ids;
      try {
        ids = v.tok->encode(text, /*add_special=*/false, parse_special);
      } catch (const swapmoe::Error&) {
        continue;
      }
      for (int32_t id : ids)
        if (id < 0 || static_cast<size_t>(id) >= v.n) fail(v, parse_special, "id outside the vocabulary");
      if (v.tok->encode(text, false, parse_special) != ids) fail(v, parse_special, "encoding is not deterministic");
      // SentencePiece writes spaces as U+2581 and decodes U+2581 as a space, so text that
      // already holds U+2581 cannot come back byte for byte (llama.cpp's SPM does the same).
      const bool spm_escape = v.name == "llama-spm" && text.find("\xE2\x96\x81") != std::string::npos;
      if (!parse_special && valid_utf8(text) && !spm_escape) {
        std::string back = v.tok->decode(ids);
        if (back != text && !(back.size() == text.size() + 1 && back[0] == ' ' && back.compare(1, std::string::npos, text) == 0))
          fail(v, parse_special, "decode(encode(text)) != text");
      }
    }
  }
  return 0;
}
