#pragma once
// Internal: the AVX2+F16C versions of the F16 helpers in attention.h.

#include <cstdint>

namespace swapmoe::detail {
float dot_f16_f32_avx2(const uint16_t* a, const float* b, int64_t n);
void axpy_f16_avx2(float s, const uint16_t* x, float* y, int64_t n);
// out[k] = dot_f16_f32_avx2(a + k * a_stride, b, n) for k = 0..3 (bitwise equal).
void dot_f16_f32_x4_avx2(const uint16_t* a, int64_t a_stride, const float* b, int64_t n, float* out);
// for t in [0, n_rows): axpy_f16_avx2(w[t], x + t * x_stride, y, n) (bitwise equal).
void weighted_sum_f16_avx2(const float* w, const uint16_t* x, int64_t x_stride, int64_t n_rows, float* y, int64_t n);
}  // namespace swapmoe::detail
