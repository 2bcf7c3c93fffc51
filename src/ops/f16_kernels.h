#pragma once
// Internal: the SIMD kernels behind attention.h. dot_f16_f32_avx2 and axpy_f16_avx2 (the
// single-head AVX2+F16C kernels) define every score and every output element; each tiled
// variant below (more heads, positions or outputs per call, AVX2 or AVX-512) gives bitwise
// their results, so that the batched prefill and the one-token decode agree bit for bit
// whichever kernel ran (tests/unit/ops/test_attention_tiles.cpp checks each against them).

#include <cstdint>

namespace swapmoe::detail {
float dot_f16_f32_avx2(const uint16_t* a, const float* b, int64_t n);
void axpy_f16_avx2(float s, const uint16_t* x, float* y, int64_t n);
// out[k] = dot_f16_f32_avx2(a + k * a_stride, b, n) for k = 0..3 (bitwise equal).
void dot_f16_f32_x4_avx2(const uint16_t* a, int64_t a_stride, const float* b, int64_t n, float* out);
// for t in [0, n_rows): axpy_f16_avx2(w[t], x + t * x_stride, y, n) (bitwise equal).
void weighted_sum_f16_avx2(const float* w, const uint16_t* x, int64_t x_stride, int64_t n_rows, float* y, int64_t n);
// Two heads x two positions (AVX2 has 16 vector registers: 8 accumulators), bitwise equal
// to the single-head kernel, scaled:
// out[h * out_stride + p] = dot_f16_f32_avx2(rows + p * stride, q + h * q_stride, n) * scale
// for h < 2, p < 2; n must be a multiple of 8.
void dot_f16_f32_h2p2_avx2(const uint16_t* rows, int64_t stride, const float* q, int64_t q_stride, int64_t n,
                           float scale, float* out, int64_t out_stride);
// for h < 2: weighted_sum_f16_avx2(w + h * w_stride, x, x_stride, n_rows, y + h * y_stride, n)
// (bitwise): each converted V vector serves both heads.
void weighted_sum_f16_h2_avx2(const float* w, int64_t w_stride, const uint16_t* x, int64_t x_stride, int64_t n_rows,
                              float* y, int64_t y_stride, int64_t n);
// probabilities_h4_avx512 for two rows with AVX2 (vector max, std::exp, the two double sums
// interleaved, F16C rounding): bitwise equal to the scalar softmax on each row.
// sinks (nullable, one per row): as probabilities()'s sink, in the maximum and the sum.
void probabilities_h2_avx2(float* p, int64_t p_stride, int64_t n, const float* sinks = nullptr);
// y[i] = fp16_to_fp32(fp32_to_fp16(x[i])) through F16C (round to nearest even; equal to the
// scalar pair for every non-NaN input, NaNs stay NaN with another payload).
void round_f16_avx2(const float* x, float* y, int64_t n);
// AVX-512VL builds (f16_kernels_avx512.cpp), four heads at once, bitwise equal to the above:
// out[2 * h + p] = dot_f16_f32_avx2(rows + p * stride, q + h * q_stride, n) for h < 4, p < 2;
// n must be a multiple of 8 (the AVX2 kernel's scalar tail is not replicated).
void dot_f16_f32_h4p2_avx512(const uint16_t* rows, int64_t stride, const float* q, int64_t q_stride, int64_t n,
                             float* out);
// for h < 4: weighted_sum_f16_avx2(w + h * w_stride, x, x_stride, n_rows, y + h * y_stride, n).
void weighted_sum_f16_h4_avx512(const float* w, int64_t w_stride, const uint16_t* x, int64_t x_stride, int64_t n_rows,
                                float* y, int64_t y_stride, int64_t n);
// Four heads x four positions, 512-bit accumulators, bitwise equal to the above, scaled:
// out[h * out_stride + p] = dot_f16_f32_avx2(rows + p * stride, q + h * q_stride, n) * scale
// for h < 4, p < 4; n must be a multiple of 8.
void dot_f16_f32_h4p4_avx512(const uint16_t* rows, int64_t stride, const float* q, int64_t q_stride, int64_t n,
                             float scale, float* out, int64_t out_stride);
// weighted_sum_f16_h4_avx512 into zeroed outputs (bitwise): y[h][i] = 0, then the same sum;
// 64 outputs per head per pass in 512-bit accumulators, so each converted V vector and each
// broadcast weight serves twice the outputs, and y is only written.
void weighted_sum_f16_h4_zmm_avx512(const float* w, int64_t w_stride, const uint16_t* x, int64_t x_stride,
                                    int64_t n_rows, float* y, int64_t y_stride, int64_t n);
// Softmax of four score rows in place (row h at p + h * p_stride, n scores each), bitwise
// equal to attention.cpp's scalar probabilities() on each row: max over the row, exp(x - max)
// with std::exp, the sum in double in position order, one float reciprocal, each probability
// rounded to F16 (round to nearest even, as fp32_to_fp16; only NaN payloads may differ).
// sinks (nullable, one per row): as probabilities()'s sink, in the maximum and the sum.
void probabilities_h4_avx512(float* p, int64_t p_stride, int64_t n, const float* sinks = nullptr);
// exp_avx512.cpp: y[t] = std::exp(x[t] - mx), bitwise, 16 per step (in place allowed);
// only while exp_avx512_usable() (checked once against this C library's expf).
bool exp_avx512_usable();
void exp_minus_avx512(const float* x, float mx, float* y, int64_t n);
// Four rows (row h at p + h * p_stride) in place: p[h][t] = std::exp(p[h][t] - mx[h]) as
// above, and sums[h] = the double sum of row h's results in position order.
void exp_minus_sum_h4_avx512(float* p, int64_t p_stride, const float* mx, int64_t n, double* sums);
// round_f16_avx2 with 16-element steps (bitwise equal to it).
void round_f16_avx512(const float* x, float* y, int64_t n);
}  // namespace swapmoe::detail
