// Scalar reference kernels for the float formats (F32, F16, BF16) and the 32-element
// "legacy" block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1).
//
// Quantization follows ggml's quantize_row_*_ref step by step (same comparisons, same
// float operations in the same order), so files we write are what llama-quantize would
// write. The dot products accumulate in double: they are the yardstick the SIMD kernels
// are tested against, and llama.cpp's own summation order is not reproducible anyway.

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/kernels.h"
#include "util/fp16.h"

namespace swapmoe::quant {
namespace {

// ggml writes `(int8_t)(v)` on values it knows are in range. We do the same truncation
// but keep garbage input (NaN, inf from a broken tensor) from being undefined behaviour.
int trunc_i8(float v) {
  if (!(v > -128.f && v < 128.f)) return v > 0 ? 127 : (v < 0 ? -128 : 0);
  return static_cast<int>(v);
}

// roundf (ties away from zero), as quantize_row_q8_0_ref / q8_1_ref use.
int8_t round_away_i8(float v) {
  const float r = std::round(v);
  if (!(r > -128.f && r < 128.f)) return r > 0 ? 127 : (r < 0 ? -128 : 0);
  return static_cast<int8_t>(r);
}

// Round to nearest even, what _mm256_round_ps(_MM_ROUND_NEAREST) does in ggml's x86
// activation quantizer. |v| <= 127.0001 by construction, so nearest_int is exact.
int8_t round_even_i8(float v) {
  if (!(v > -128.f && v < 128.f)) return v > 0 ? 127 : (v < 0 ? -128 : 0);
  return static_cast<int8_t>(nearest_int(v));
}

float h2f(uint16_t h) { return fp16_to_fp32(h); }

}  // namespace

// ---------------------------------------------------------------------------------- F32

void to_float_f32_ref(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void from_float_f32_ref(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
float vec_dot_f32_ref(int64_t n, const void* w, const void* a) {
  const float* x = static_cast<const float*>(w);
  const float* y = static_cast<const float*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * y[i];
  return static_cast<float>(sum);
}

// ---------------------------------------------------------------------------------- F16

void to_float_f16_ref(const void* src, float* dst, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(x[i]);
}
void from_float_f16_ref(const float* src, void* dst, int64_t n) {
  uint16_t* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}
float vec_dot_f16_ref(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
  return static_cast<float>(sum);
}

// --------------------------------------------------------------------------------- BF16

void to_float_bf16_ref(const void* src, float* dst, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(x[i]);
}
void from_float_bf16_ref(const float* src, void* dst, int64_t n) {
  uint16_t* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(src[i]);
}
float vec_dot_bf16_ref(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]));
  return static_cast<float>(sum);
}

// --------------------------------------------------------------------------------- Q4_0

void to_float_q4_0_ref(const void* src, float* dst, int64_t n) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      dst[i * QK4_0 + j] = ((x[i].qs[j] & 0x0F) - 8) * d;
      dst[i * QK4_0 + j + QK4_0 / 2] = ((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

// d = max / -8 where max is the signed value of largest magnitude, so that value maps
// exactly onto quant 0 (-8) and the asymmetric range [-8, 7] is used fully.
void from_float_q4_0_ref(const float* src, void* dst, int64_t n) {
  BlockQ4_0* y = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    const float* x = src + i * QK4_0;
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < QK4_0; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const int q0 = std::min(15, trunc_i8(x[j] * id + 8.5f));
      const int q1 = std::min(15, trunc_i8(x[j + QK4_0 / 2] * id + 8.5f));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    }
  }
}

float vec_dot_q4_0_ref(int64_t n, const void* w, const void* a) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK4_0 / 2; ++j) {
      sumi += ((x[i].qs[j] & 0x0F) - 8) * y[i].qs[j];
      sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QK4_0 / 2];
    }
    sum += static_cast<double>(sumi) * (h2f(x[i].d) * h2f(y[i].d));
  }
  return static_cast<float>(sum);
}

// --------------------------------------------------------------------------------- Q4_1

void to_float_q4_1_ref(const void* src, float* dst, int64_t n) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / QK4_1; ++i) {
    const float d = h2f(x[i].d), m = h2f(x[i].m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      dst[i * QK4_1 + j] = (x[i].qs[j] & 0x0F) * d + m;
      dst[i * QK4_1 + j + QK4_1 / 2] = (x[i].qs[j] >> 4) * d + m;
    }
  }
}

void from_float_q4_1_ref(const float* src, void* dst, int64_t n) {
  BlockQ4_1* y = static_cast<BlockQ4_1*>(dst);
  for (int64_t i = 0; i < n / QK4_1; ++i) {
    const float* x = src + i * QK4_1;
    float min = 3.402823466e+38f, max = -3.402823466e+38f;
    for (int j = 0; j < QK4_1; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      const int q0 = std::min(15, trunc_i8((x[j] - min) * id + 0.5f));
      const int q1 = std::min(15, trunc_i8((x[j + QK4_1 / 2] - min) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    }
  }
}

float vec_dot_q4_1_ref(int64_t n, const void* w, const void* a) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK4_1 / 2; ++j) {
      sumi += (x[i].qs[j] & 0x0F) * y[i].qs[j];
      sumi += (x[i].qs[j] >> 4) * y[i].qs[j + QK4_1 / 2];
    }
    // The min term uses s = d_y * sum(q_y), precomputed by the activation quantizer.
    sum += static_cast<double>(h2f(x[i].d) * h2f(y[i].d)) * sumi + static_cast<double>(h2f(x[i].m) * h2f(y[i].s));
  }
  return static_cast<float>(sum);
}

// --------------------------------------------------------------------------------- Q5_0

void to_float_q5_0_ref(const void* src, float* dst, int64_t n) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < n / QK5_0; ++i) {
    const float d = h2f(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int h0 = ((qh >> j) & 1) << 4;
      const int h1 = ((qh >> (j + 16)) & 1) << 4;
      dst[i * QK5_0 + j] = (((x[i].qs[j] & 0x0F) | h0) - 16) * d;
      dst[i * QK5_0 + j + QK5_0 / 2] = (((x[i].qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void from_float_q5_0_ref(const float* src, void* dst, int64_t n) {
  BlockQ5_0* y = static_cast<BlockQ5_0*>(dst);
  for (int64_t i = 0; i < n / QK5_0; ++i) {
    const float* x = src + i * QK5_0;
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < QK5_0; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int q0 = std::min(31, trunc_i8(x[j] * id + 16.5f));
      const int q1 = std::min(31, trunc_i8(x[j + QK5_0 / 2] * id + 16.5f));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + QK5_0 / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

float vec_dot_q5_0_ref(int64_t n, const void* w, const void* a) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    int sumi = 0;
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int v0 = ((x[i].qs[j] & 0x0F) | (((qh >> j) & 1) << 4)) - 16;
      const int v1 = ((x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
      sumi += v0 * y[i].qs[j] + v1 * y[i].qs[j + QK5_0 / 2];
    }
    sum += static_cast<double>(sumi) * (h2f(x[i].d) * h2f(y[i].d));
  }
  return static_cast<float>(sum);
}

// --------------------------------------------------------------------------------- Q5_1

void to_float_q5_1_ref(const void* src, float* dst, int64_t n) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < n / QK5_1; ++i) {
    const float d = h2f(x[i].d), m = h2f(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int h0 = ((qh >> j) & 1) << 4;
      const int h1 = ((qh >> (j + 16)) & 1) << 4;
      dst[i * QK5_1 + j] = ((x[i].qs[j] & 0x0F) | h0) * d + m;
      dst[i * QK5_1 + j + QK5_1 / 2] = ((x[i].qs[j] >> 4) | h1) * d + m;
    }
  }
}

void from_float_q5_1_ref(const float* src, void* dst, int64_t n) {
  BlockQ5_1* y = static_cast<BlockQ5_1*>(dst);
  for (int64_t i = 0; i < n / QK5_1; ++i) {
    const float* x = src + i * QK5_1;
    float min = 3.402823466e+38f, max = -3.402823466e+38f;
    for (int j = 0; j < QK5_1; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_1 / 2; ++j) {
      // ggml casts to uint8_t without a clamp; (x - min) * id + 0.5 <= 31.5 keeps it in range.
      const int q0 = std::min(31, trunc_i8((x[j] - min) * id + 0.5f));
      const int q1 = std::min(31, trunc_i8((x[j + QK5_1 / 2] - min) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + QK5_1 / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

float vec_dot_q5_1_ref(int64_t n, const void* w, const void* a) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    int sumi = 0;
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int v0 = (x[i].qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
      const int v1 = (x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      sumi += v0 * y[i].qs[j] + v1 * y[i].qs[j + QK5_1 / 2];
    }
    sum += static_cast<double>(h2f(x[i].d) * h2f(y[i].d)) * sumi + static_cast<double>(h2f(x[i].m) * h2f(y[i].s));
  }
  return static_cast<float>(sum);
}

// --------------------------------------------------------------------------------- Q8_0

void to_float_q8_0_ref(const void* src, float* dst, int64_t n) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < QK8_0; ++j) dst[i * QK8_0 + j] = x[i].qs[j] * d;
  }
}

// Weight quantization (quantize_row_q8_0_ref): d = amax / 127, q = roundf(x / d).
void from_float_q8_0_ref(const float* src, void* dst, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const float* x = src + i * QK8_0;
    float amax = 0.f;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = round_away_i8(x[j] * id);
  }
}

// Activation quantization as ggml-cpu's x86 quantize_row_q8_0 (any build with AVX or
// better, i.e. every llama.cpp binary we compare with): the multiplier is 127 / amax
// (not 1 / (amax / 127)) and rounding is to nearest even (not away from zero). Both
// differences flip quants on ties, so they matter for bit-identical activations.
void from_float_q8_0_act(const float* src, void* dst, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const float* x = src + i * QK8_0;
    float amax = 0.f;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = round_even_i8(x[j] * id);
  }
}

float vec_dot_q8_0_ref(int64_t n, const void* w, const void* a) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK8_0; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    sum += static_cast<double>(sumi) * (h2f(x[i].d) * h2f(y[i].d));
  }
  return static_cast<float>(sum);
}

// --------------------------------------------------------------------------------- Q8_1
// Q8_1 is only ever an activation type (Q4_1 / Q5_1 dot with it); it has no vec_dot.

void to_float_q8_1_ref(const void* src, float* dst, int64_t n) {
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(src);
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < QK8_1; ++j) dst[i * QK8_1 + j] = x[i].qs[j] * d;
  }
}

void from_float_q8_1_ref(const float* src, void* dst, int64_t n) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    const float* x = src + i * QK8_1;
    float amax = 0.f;
    for (int j = 0; j < QK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) {
      y[i].qs[j] = round_away_i8(x[j] * id);
      sum += y[i].qs[j];
    }
    y[i].s = fp32_to_fp16(sum * d);
  }
}

// x86 quantize_row_q8_1: as from_float_q8_0_act, plus s = fp16(d * sum(q)).
void from_float_q8_1_act(const float* src, void* dst, int64_t n) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    const float* x = src + i * QK8_1;
    float amax = 0.f;
    for (int j = 0; j < QK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) {
      y[i].qs[j] = round_even_i8(x[j] * id);
      sum += y[i].qs[j];
    }
    y[i].s = fp32_to_fp16(d * static_cast<float>(sum));
  }
}

float vec_dot_q8_1_ref(int64_t n, const void* w, const void* a) {
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK8_1; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    sum += static_cast<double>(sumi) * (h2f(x[i].d) * h2f(y[i].d));
  }
  return static_cast<float>(sum);
}

}  // namespace swapmoe::quant
