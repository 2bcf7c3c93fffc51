// libFuzzer target for split GGUF sets (gguf_join_split, src/gguf): the input is cut into 1-4
// part images at the separator "\n#PART#\n"; each is parsed with gguf_parse_memory and the
// parts are joined in order. Any input must give a joined model or throw swapmoe::Error;
// on a joined set every tensor must lie inside its own part, lookups must agree and reads
// of each tensor's first bytes must work. Crashes, sanitizer reports and hangs are bugs.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace swapmoe;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string_view sep = "\n#PART#\n";
  std::vector<std::unique_ptr<GgufFile>> parts;
  try {
    size_t start = 0;
    while (parts.size() < 4) {
      const size_t p = in.find(sep, start);
      const std::string_view img = in.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start);
      parts.push_back(gguf_parse_memory(reinterpret_cast<const uint8_t*>(img.data()), img.size(),
                                        "part" + std::to_string(parts.size() + 1)));
      if (p == std::string_view::npos) break;
      start = p + sep.size();
    }
  } catch (const Error&) {
    return 0;
  }
  std::unique_ptr<GgufFile> f;
  try {
    f = gguf_join_split(std::move(parts));
  } catch (const Error&) {
    return 0;
  }
  std::vector<uint8_t> buf;
  const auto& ps = f->parts();
  for (const auto& t : f->tensors()) {
    if (f->find_tensor(t.name) != &t) __builtin_trap();
    if (t.part >= ps.size()) __builtin_trap();
    const GgufPart& p = ps[t.part];
    if (t.offset < p.data_offset || t.offset > p.file_size || t.nbytes > p.file_size - t.offset) __builtin_trap();
    buf.resize(static_cast<size_t>(t.nbytes < 32 ? t.nbytes : 32));
    f->read_at(t.part, t.offset, buf.data(), buf.size());
  }
  return 0;
}
