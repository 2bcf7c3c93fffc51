// libFuzzer target for the GGUF parser: any input must either parse or throw
// swapmoe::Error; crashes, sanitizer reports, hangs and big allocations are bugs.
// On inputs that parse, the accessors are exercised too, since tools call them on
// whatever a file contains.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gguf/gguf.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace swapmoe;
  std::unique_ptr<GgufFile> f;
  try {
    f = gguf_parse_memory(data, size, "fuzz.gguf");
  } catch (const Error&) {
    return 0;
  }
  // Everything below must hold for any file the parser accepted.
  for (const auto& [key, v] : f->metadata()) {
    (void)gguf_value_to_string(v);
    if (f->find(key) != &v) __builtin_trap();
    try {
      (void)f->get_u64(key);
    } catch (const Error&) {
    }
    try {
      (void)f->get_f32_array(key);
    } catch (const Error&) {
    }
  }
  std::vector<uint8_t> buf;
  for (const auto& t : f->tensors()) {
    if (t.part != 0 || f->parts().size() != 1) __builtin_trap();  // one image is one part
    if (t.offset < f->data_offset() || t.offset + t.nbytes > f->parts()[0].file_size) __builtin_trap();
    if (f->find_tensor(t.name) != &t) __builtin_trap();
    (void)t.n_elements();
    buf.resize(static_cast<size_t>(t.nbytes < 64 ? t.nbytes : 64));
    f->read_at(t.part, t.offset, buf.data(), buf.size());
    if (t.ne.size() == 3 && t.ne[2] > 0) {
      uint64_t last = t.expert_offset(t.ne[2] - 1);
      if (last + t.expert_bytes() != t.offset + t.nbytes) __builtin_trap();
    }
  }
  return 0;
}
