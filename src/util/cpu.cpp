#include "util/cpu.h"

#include <cpuid.h>

#include <cstdlib>
#include <string>

namespace swapmoe {
namespace {

// clang 14 does not accept "f16c" in __builtin_cpu_supports, so ask cpuid directly
// (leaf 1, ECX bit 29).
bool has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & (1u << 29)) != 0;
}

}  // namespace

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return true;
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case Isa::Avx512:
      return cpu_supports(Isa::Avx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

Isa best_isa() {
  static const Isa chosen = [] {
    Isa cap = Isa::Avx512;
    if (const char* env = std::getenv("SWAPMOE_ISA")) {
      std::string s = env;
      if (s == "scalar") cap = Isa::Scalar;
      else if (s == "avx2") cap = Isa::Avx2;
    }
    for (Isa i : {Isa::Avx512, Isa::Avx2})
      if (static_cast<int>(i) <= static_cast<int>(cap) && cpu_supports(i)) return i;
    return Isa::Scalar;
  }();
  return chosen;
}

}  // namespace swapmoe
