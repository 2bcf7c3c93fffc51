#pragma once
// Test support: llama.cpp's own block-format kernels as a reference, reached by dlopen()ing
// the ggml shared libraries that node-llama-cpp ships (tests/conformance/node_modules, after
// `npm ci`). Nothing of ggml is linked or copied; the few functions used are declared by hand
// in ggml_ref.cpp from ggml.h / ggml-cpu.h of the pinned version (node-llama-cpp 3.21.1).
//
// The CPU backend chosen is the one ggml itself would pick on this machine (the variant with
// the highest ggml_backend_score), so vec_dot / from_float are what llama.cpp really runs here.
// SWAPMOE_GGML_DIR overrides the library folder; SWAPMOE_GGML_CPU names a variant ("zen4").
//
// Use in a test:
//   SWAPMOE_GGML_REF_OR_SKIP(ref);   // declares `const GgmlRef* ref`, or skips / fails
// It skips with the reason when the libraries are absent, and fails instead under CI=true or
// SWAPMOE_REQUIRE=all, so that a CI run cannot pass by skipping every comparison.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace swapmoe::test {

class GgmlRef {
 public:
  // The loaded reference, or nullptr when the libraries are absent or unusable (why() says
  // why; the reason is also logged to stderr once).
  static const GgmlRef* get();
  static const std::string& why();
  // True under CI=true or SWAPMOE_REQUIRE=all: a missing reference is a failure.
  static bool required();

  // Where the libraries came from and which CPU variant was picked (for messages).
  const std::string& dir() const { return dir_; }
  const std::string& cpu_variant() const { return variant_; }

  // ggml's type_traits to_float (dequantize_row_*, scalar C in libggml-base): n elements,
  // n a multiple of the block size. False if ggml has no to_float for the type.
  bool to_float(int ggml_type, const void* blocks, float* out, int64_t n) const;
  // The CPU backend's from_float (the activation quantizer llama.cpp runs, e.g. the x86
  // quantize_row_q8_K). False if absent.
  bool from_float(int ggml_type, const float* x, void* out, int64_t n) const;
  // The CPU backend's vec_dot_type for a weight type, or -1 if ggml has none.
  int vec_dot_type(int ggml_type) const;
  // The CPU backend's vec_dot (one row): *out = sum x[i]*y[i], x of the weight type, y of its
  // vec_dot_type. False if absent.
  bool vec_dot(int ggml_type, int64_t n, const void* x, const void* y, float* out) const;
  // ggml_quantize_chunk over nrows rows of n_per_row elements; returns bytes written, or 0
  // (with a message on stderr) where ggml would abort: a type that requires an importance
  // matrix given none, or a row length that is not a multiple of the block size.
  size_t quantize(int ggml_type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                  const float* imatrix) const;
  // Block size and bytes per block from ggml's type traits (0 for unknown types).
  int64_t block_size(int ggml_type) const;
  size_t type_size(int ggml_type) const;

  struct Api;  // the dlsym'ed functions (ggml_ref.cpp)

 private:
  GgmlRef() = default;
  const Api* api_ = nullptr;
  std::string dir_, variant_;
  friend struct GgmlRefLoader;
};

}  // namespace swapmoe::test

// Declares `const ::swapmoe::test::GgmlRef* name` or ends the test (skip, or fail when required).
#define SWAPMOE_GGML_REF_OR_SKIP(name)                                                     \
  const ::swapmoe::test::GgmlRef* name = ::swapmoe::test::GgmlRef::get();                \
  if (!name) {                                                                            \
    if (::swapmoe::test::GgmlRef::required())                                             \
      GTEST_FAIL() << "llama.cpp reference required (CI / SWAPMOE_REQUIRE=all): "          \
                   << ::swapmoe::test::GgmlRef::why();                                    \
    GTEST_SKIP() << "llama.cpp reference unavailable: " << ::swapmoe::test::GgmlRef::why(); \
  }
