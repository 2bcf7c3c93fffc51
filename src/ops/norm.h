#pragma once
// RMS normalisation exactly as ggml's CPU rms_norm followed by the weight multiply:
//   y[i] = (x[i] * (1 / sqrt(mean(x^2) + eps))) * w[i]
// The sum of squares is accumulated in double like ggml (ggml_float), which keeps the
// result independent of vector length effects and matches llama.cpp to the last bit in
// most cases.

#include <cstdint>

namespace swapmoe {

// y may alias x. w may be nullptr (plain normalisation, no weight).
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);

// Normalises n_rows consecutive rows of n elements each with the same weight (per-head
// q/k norms of qwen3moe).
void rmsnorm_rows(float* x, const float* w, int64_t n_rows, int64_t n, float eps);

}  // namespace swapmoe
