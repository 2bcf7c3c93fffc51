#pragma once
// Shared helpers for the quant tests: deterministic data, ISA lists, byte buffers.

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "ops/matvec.h"
#include "quant/quant.h"
#include "util/cpu.h"
#include "util/ggml_type.h"

namespace swapmoe::testing_quant {

// Gaussian data with a few outliers, like real weight rows.
inline std::vector<float> gaussian(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  for (int64_t i = 0; i < n; i += 97) v[static_cast<size_t>(i)] *= 4.0f;
  return v;
}

inline std::vector<uint8_t> quantize(GgmlType t, const std::vector<float>& x, bool reference = true) {
  const QuantTraits& q = quant_traits(t);
  std::vector<uint8_t> out(ggml_row_size(t, static_cast<int64_t>(x.size())));
  (reference ? q.from_float_ref : q.from_float)(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

inline std::vector<float> dequantize(GgmlType t, const std::vector<uint8_t>& b, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  quant_traits(t).to_float_ref(b.data(), out.data(), n);
  return out;
}

// The SIMD ISAs this CPU has (empty on a machine without AVX2).
inline std::vector<Isa> simd_isas() {
  std::vector<Isa> out;
  for (Isa i : {Isa::Avx2, Isa::Avx512})
    if (cpu_supports(i)) out.push_back(i);
  return out;
}

inline double rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return std::sqrt(s / static_cast<double>(x.size()));
}

inline double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return std::sqrt(s / static_cast<double>(a.size()));
}

inline const std::vector<GgmlType>& weight_types() {
  static const std::vector<GgmlType> t{GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                                       GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                                       GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
  return t;
}

// A random weight matrix of type t (rows x cols), owning its bytes; shared by the matvec
// and matmul tests.
struct Matrix {
  GgmlType type;
  int64_t rows, cols;
  std::vector<uint8_t> bytes;
  MatrixRef ref() const { return MatrixRef{type, cols, rows, bytes.data()}; }
};

inline Matrix make_matrix(GgmlType t, int64_t rows, int64_t cols, uint32_t seed) {
  Matrix m{t, rows, cols, {}};
  m.bytes = quantize(t, gaussian(rows * cols, seed, 0.05f));
  return m;
}

}  // namespace swapmoe::testing_quant
