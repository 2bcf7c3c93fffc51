#pragma once
// Helpers for the tokenizer tests: test-vector files and a cache of loaded tokenizers
// (each vocabulary is loaded once per test binary).

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace swapmoe::test_util {

inline std::string vocab_path(const std::string& family) {
  return std::string(SWAPMOE_TEST_DATA) + "/vocab/ggml-vocab-" + family + ".gguf";
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Strings separated (and terminated) by "\n__ggml_vocab_test__\n", as llama.cpp's
// test-tokenizer-0 reads them.
inline std::vector<std::string> read_inp(const std::string& path) {
  const std::string text = read_file(path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t next = text.find(sep, pos);
    if (next == std::string::npos) break;
    out.push_back(text.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return out;
}

// One line of space-separated ids per string.
inline std::vector<std::vector<int32_t>> read_out(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<std::vector<int32_t>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int64_t id;
    while (ls >> id) ids.push_back(static_cast<int32_t>(id));
    out.push_back(std::move(ids));
  }
  return out;
}

inline std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += " " + std::to_string(id);
  return s;
}

// Writes a metadata-only GGUF to a temporary file and opens it (the file is unlinked at
// once; the open descriptor keeps it readable).
inline std::unique_ptr<GgufFile> write_temp_gguf(GgufWriter& w, const std::string& name) {
  const std::string path = ::testing::TempDir() + "/swapmoe_tok_" + name + "_" + std::to_string(::getpid()) + ".gguf";
  w.begin(path);
  w.finish();
  auto f = GgufFile::open(path);
  std::remove(path.c_str());
  return f;
}

inline const Tokenizer& tokenizer(const std::string& family) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& t = cache[family];
  if (!t) {
    auto f = GgufFile::open(vocab_path(family));
    t = Tokenizer::from_gguf(*f);
  }
  return *t;
}

}  // namespace swapmoe::test_util
