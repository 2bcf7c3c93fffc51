#pragma once
// Element-wise activations and softmax, with ggml's formulas (so that rounding matches
// llama.cpp as closely as scalar code can).

#include <cmath>
#include <cstdint>

namespace swapmoe {

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// In-place softmax over n values: exp(x - max) summed in double, then multiplied by the
// float reciprocal of the sum (ggml_soft_max with scale 1 and no mask).
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i]. out may alias gate or up.
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// gpt-oss's clamped SwiGLU (ggml_swiglu_oai), element by element:
//   x = min(gate, limit); y = clamp(up, -limit, limit)
//   out = x / (1 + exp(-alpha x)) * (y + 1)
// llama.cpp's gpt-oss graph uses alpha = 1.702, limit = 7. out may alias gate or up.
inline constexpr float kSwigluOaiAlpha = 1.702f;
inline constexpr float kSwigluOaiLimit = 7.0f;
void swiglu_oai(const float* gate, const float* up, float* out, int64_t n, float alpha = kSwigluOaiAlpha,
                float limit = kSwigluOaiLimit);

// y[i] += x[i]
void add_inplace(float* y, const float* x, int64_t n);

}  // namespace swapmoe
