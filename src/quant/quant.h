#pragma once
// Block formats: one trait table maps each GgmlType to its scalar reference functions
// (`*_ref`) and to the fastest SIMD versions this CPU allows. Everything else in the
// engine goes through this table; nothing outside src/quant/ knows a block layout.
//
// Dot products follow llama.cpp: the activation vector is first quantized to the
// weight type's `vec_dot_type` (Q8_K for the k-quants, Q8_0 for Q4_0/Q5_0/Q8_0,
// Q8_1 for Q4_1/Q5_1, F16 for F16, BF16 for BF16, F32 for F32), then
// vec_dot(n, x_row_weights, y_quantized_activations) returns the float result.

#include <cstddef>
#include <cstdint>

#include "util/cpu.h"
#include "util/ggml_type.h"

namespace swapmoe {

using ToFloatFn = void (*)(const void* src, float* dst, int64_t n);
using FromFloatFn = void (*)(const float* src, void* dst, int64_t n);
// Returns sum_i w[i] * a[i] where w is one weight row of type T (n elements) and a is
// the activation row already converted to T's vec_dot_type.
using VecDotFn = float (*)(int64_t n, const void* w, const void* a);

// Multi-row dot product: out[r * out_stride] = vec_dot(n, w, a + r * a_stride) for
// r in [0, na), 1 <= na <= kVecDotMultiMax. The weight row is read and unpacked once for
// all na activation rows. Results are bitwise equal to the same table's vec_dot (each row
// runs vec_dot's exact instruction sequence), so batched and per-token paths agree.
using VecDotMultiFn = void (*)(int64_t n, const void* w, const void* a, size_t a_stride, int na, float* out,
                               size_t out_stride);
constexpr int kVecDotMultiMax = 8;

// Row tile: out[t * out_stride + r] = vec_dot(n, w + r * w_stride, a + t * a_stride) for
// r in [0, nr), t in [0, nt), 1 <= nr <= kMatTileRows, 1 <= nt <= kMatTileTokens. Each
// weight block of the nr rows is unpacked once for all nt tokens, and the per-block float
// work runs once per vector of rows. Bitwise equal to the same table's vec_dot.
using MatTileFn = void (*)(int64_t n, const void* w, size_t w_stride, int nr, const void* a, size_t a_stride, int nt,
                           float* out, size_t out_stride);
constexpr int kMatTileRows = 16;
constexpr int kMatTileTokens = 128;

struct QuantTraits {
  GgmlType type;
  GgmlType vec_dot_type;
  ToFloatFn to_float;       // dequantize (best ISA)
  FromFloatFn from_float;   // quantize; for activation types (Q8_0/Q8_1/Q8_K/F16/BF16) this is the fast path used per layer.
                            // Q8_0/Q8_1: llama.cpp's x86 activation numerics (multiplier 127/amax, ties to even)
                            // on every ISA, including the scalar fallback, so activations match llama.cpp's.
  VecDotFn vec_dot;         // best ISA
  // Scalar references, always present.
  ToFloatFn to_float_ref;
  FromFloatFn from_float_ref;  // ggml's quantize_row_*_ref: use this to write weight files (e.g. Q8_0
                               // rounds ties away from zero here); k-quants: the same float operations in the same
                               // order as llama-quantize without an imatrix.
  VecDotFn vec_dot_ref;
  // Best-ISA multi-row kernel matching `vec_dot`, or nullptr (then callers loop vec_dot;
  // see ops/matmul.h). Present for every type with a vec_dot except Q8_1 / Q8_K (activation
  // types only) on AVX2 and AVX-512.
  VecDotMultiFn vec_dot_multi;
  // Best-ISA row tile matching `vec_dot`, or nullptr (then callers use vec_dot_multi).
  // Present on AVX-512 for Q4_K, IQ4_NL, IQ4_XS, MXFP4 and the grid-based i-quants (IQ1_S ... IQ3_S).
  MatTileFn mat_tile = nullptr;
};

// Throws Error for types without arithmetic support.
const QuantTraits& quant_traits(GgmlType t);

// The same table restricted to one ISA, for tests that compare SIMD with *_ref.
// Entries the ISA lacks fall back to the next lower ISA. Throws Error if the CPU does not
// support `isa` (a SIMD kernel must never run on a CPU without it).
QuantTraits quant_traits_for(GgmlType t, Isa isa);

}  // namespace swapmoe
