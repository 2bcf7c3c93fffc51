#pragma once
// Internal: the AVX2+F16C versions of the F16 helpers in attention.h.

#include <cstdint>

namespace swapmoe::detail {
float dot_f16_f32_avx2(const uint16_t* a, const float* b, int64_t n);
void axpy_f16_avx2(float s, const uint16_t* x, float* y, int64_t n);
}  // namespace swapmoe::detail
