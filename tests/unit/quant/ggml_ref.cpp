// Loading llama.cpp's ggml libraries from node-llama-cpp at test time (see ggml_ref.h).

#include "ggml_ref.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#ifndef SWAPMOE_TEST_DATA
#define SWAPMOE_TEST_DATA "tests/data"
#endif

namespace swapmoe::test {

// The slice of ggml's C API used here, declared from ggml.h / ggml-cpu.h of the pinned
// version. ggml asserts (aborts) on misuse, so every entry point below checks its
// arguments first.
namespace {
using ToFloat = void (*)(const void*, float*, int64_t);
using FromFloat = void (*)(const float*, void*, int64_t);
using VecDot = void (*)(int n, float* s, size_t bs, const void* x, size_t bx, const void* y, size_t by, int nrc);

struct TypeTraits {  // struct ggml_type_traits
  const char* type_name;
  int64_t blck_size;
  int64_t blck_size_interleave;
  size_t type_size;
  bool is_quantized;
  ToFloat to_float;
  FromFloat from_float_ref;
};
struct TypeTraitsCpu {  // struct ggml_type_traits_cpu
  FromFloat from_float;
  VecDot vec_dot;
  int vec_dot_type;  // enum ggml_type
  int64_t nrows;
};

// GGML_TYPE_COUNT of the pinned version; ids at or above it make ggml assert.
constexpr int kTypeCount = 43;

// Variants node-llama-cpp ships for x86-64, best first. The pick is decided by
// ggml_backend_score (0 = this CPU cannot run it), as ggml's own loader does.
constexpr const char* kVariants[] = {"zen4",       "sapphirerapids", "cooperlake", "cascadelake", "icelake",
                                     "skylakex",   "cannonlake",     "alderlake",  "haswell",     "piledriver",
                                     "sandybridge", "ivybridge",     "sse42",      "x64"};
}  // namespace

struct GgmlRef::Api {
  const TypeTraits* (*type_traits)(int) = nullptr;
  const TypeTraitsCpu* (*type_traits_cpu)(int) = nullptr;
  bool (*requires_imatrix)(int) = nullptr;
  size_t (*quantize_chunk)(int, const float*, void*, int64_t, int64_t, int64_t, const float*) = nullptr;
};

struct GgmlRefLoader {
  std::string why;
  GgmlRef* ref = nullptr;

  static std::string default_dir() {
    if (const char* d = std::getenv("SWAPMOE_GGML_DIR")) return d;
    return std::string(SWAPMOE_TEST_DATA) + "/../conformance/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64";
  }

  template <typename F>
  bool sym(void* lib, const char* name, F& out) {
    void* p = dlsym(lib, name);
    if (!p) {
      why = std::string("symbol ") + name + " missing";
      return false;
    }
    out = reinterpret_cast<F>(p);
    return true;
  }

  void load() {
    const std::string dir = default_dir();
    void* base = dlopen((dir + "/libggml-base.so").c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!base) {
      const char* e = dlerror();
      why = "cannot dlopen " + dir + "/libggml-base.so (" + (e ? e : "?") +
            "); run `npm ci` in tests/conformance or set SWAPMOE_GGML_DIR";
      return;
    }
    // Pick the CPU backend: SWAPMOE_GGML_CPU, else the best-scoring variant.
    std::vector<std::string> names;
    if (const char* v = std::getenv("SWAPMOE_GGML_CPU"))
      names.push_back(v);
    else
      for (const char* v : kVariants) names.push_back(v);
    void* cpu = nullptr;
    std::string variant;
    int best = 0;
    for (const std::string& v : names) {
      void* h = dlopen((dir + "/libggml-cpu-" + v + ".so").c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!h) continue;
      auto score = reinterpret_cast<int (*)()>(dlsym(h, "ggml_backend_score"));
      const int s = score ? score() : 1;
      if (s > best) {
        if (cpu) dlclose(cpu);
        cpu = h;
        variant = v;
        best = s;
      } else {
        dlclose(h);
      }
    }
    if (!cpu) {
      why = "no libggml-cpu-*.so in " + dir + " that this CPU can run";
      return;
    }
    auto* api = new GgmlRef::Api();
    void (*cpu_init)() = nullptr;
    if (!sym(base, "ggml_get_type_traits", api->type_traits) || !sym(base, "ggml_quantize_chunk", api->quantize_chunk) ||
        !sym(base, "ggml_quantize_requires_imatrix", api->requires_imatrix) ||
        !sym(cpu, "ggml_get_type_traits_cpu", api->type_traits_cpu) || !sym(cpu, "ggml_cpu_init", cpu_init)) {
      delete api;
      return;
    }
    cpu_init();  // fills ggml's fp16 tables; the CPU kernels read them
    ref = new GgmlRef();
    ref->api_ = api;
    ref->dir_ = dir;
    ref->variant_ = variant;
  }
};

namespace {
GgmlRefLoader& loader() {
  static GgmlRefLoader l;
  static std::once_flag once;
  std::call_once(once, [] {
    l.load();
    if (!l.ref) std::fprintf(stderr, "ggml reference unavailable: %s\n", l.why.c_str());
  });
  return l;
}

bool valid_type(int t) { return t >= 0 && t < kTypeCount; }
}  // namespace

const GgmlRef* GgmlRef::get() { return loader().ref; }
const std::string& GgmlRef::why() { return loader().why; }

bool GgmlRef::required() {
  const char* ci = std::getenv("CI");
  const char* req = std::getenv("SWAPMOE_REQUIRE");
  return (ci && std::strcmp(ci, "true") == 0) || (req && std::strcmp(req, "all") == 0);
}

int64_t GgmlRef::block_size(int t) const {
  if (!valid_type(t)) return 0;
  const TypeTraits* tr = api_->type_traits(t);
  return tr ? tr->blck_size : 0;
}

size_t GgmlRef::type_size(int t) const {
  if (!valid_type(t)) return 0;
  const TypeTraits* tr = api_->type_traits(t);
  return tr ? tr->type_size : 0;
}

bool GgmlRef::to_float(int t, const void* blocks, float* out, int64_t n) const {
  const int64_t bs = block_size(t);
  if (bs <= 0 || n % bs != 0) return false;
  const TypeTraits* tr = api_->type_traits(t);
  if (!tr->to_float) return false;
  tr->to_float(blocks, out, n);
  return true;
}

bool GgmlRef::from_float(int t, const float* x, void* out, int64_t n) const {
  const int64_t bs = block_size(t);
  if (bs <= 0 || n % bs != 0) return false;
  const TypeTraitsCpu* tr = api_->type_traits_cpu(t);
  if (!tr || !tr->from_float) return false;
  tr->from_float(x, out, n);
  return true;
}

int GgmlRef::vec_dot_type(int t) const {
  if (!valid_type(t)) return -1;
  const TypeTraitsCpu* tr = api_->type_traits_cpu(t);
  return tr && tr->vec_dot ? tr->vec_dot_type : -1;
}

bool GgmlRef::vec_dot(int t, int64_t n, const void* x, const void* y, float* out) const {
  const int64_t bs = block_size(t);
  if (bs <= 0 || n % bs != 0 || n > INT32_MAX) return false;
  const TypeTraitsCpu* tr = api_->type_traits_cpu(t);
  if (!tr || !tr->vec_dot) return false;
  tr->vec_dot(static_cast<int>(n), out, 0, x, 0, y, 0, 1);
  return true;
}

size_t GgmlRef::quantize(int t, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                         const float* imatrix) const {
  const int64_t bs = block_size(t);
  if (bs <= 0 || nrows <= 0 || n_per_row <= 0 || n_per_row % bs != 0) {
    std::fprintf(stderr, "GgmlRef::quantize: type %d cannot hold rows of %lld elements\n", t,
                 static_cast<long long>(n_per_row));
    return 0;
  }
  if (!imatrix && api_->requires_imatrix(t)) {
    std::fprintf(stderr, "GgmlRef::quantize: type %d requires an importance matrix\n", t);
    return 0;
  }
  return api_->quantize_chunk(t, src, dst, 0, nrows, n_per_row, imatrix);
}

}  // namespace swapmoe::test
