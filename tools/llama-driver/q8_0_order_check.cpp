// q8_0_order_check: evidence for the fix proposed in tests/conformance/README.md ("Quantized
// models: why greedy runs can still flip"). ggml sums Q8_0 blocks with one 8-lane FMA chain in
// block order; our AVX2 kernel does the same (bitwise equal to llama.cpp), the AVX-512 "wide"
// kernel does not (even and odd blocks in separate halves). `fixed` below keeps the 512-bit
// integer dot of two blocks but applies their FMAs in block order on one 8-lane accumulator.
// Build (AVX-512 VNNI machine):
//   g++ -std=c++20 -O2 -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx512dq -mfma -mf16c -mavx2 \
//     -Isrc tools/llama-driver/q8_0_order_check.cpp BUILD/libswapmoe_quant.a BUILD/libswapmoe_util.a -o q8check
// Result 2026-11-29 (Zen 4): proposed 1800/1800 bitwise equal to the AVX2 kernel, current 607/1800.
#include <immintrin.h>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
#include "quant/blocks.h"
#include "quant/kernels.h"
using namespace swapmoe;
using namespace swapmoe::quant;
static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
static inline float hsum8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}
float fixed(int64_t n, const void* w, const void* a) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / QK8_0;
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i qx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)x[i].qs)),
                                          _mm256_loadu_si256((const __m256i*)x[i + 1].qs), 1);
    const __m512i qy = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)y[i].qs)),
                                          _mm256_loadu_si256((const __m256i*)y[i + 1].qs), 1);
    const __mmask64 neg = _mm512_movepi8_mask(qx);
    const __m512i sy = _mm512_mask_sub_epi8(qy, neg, _mm512_setzero_si512(), qy);
    const __m512 p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(qx), sy));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm512_castps512_ps256(p), acc);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d)), _mm512_extractf32x8_ps(p, 1), acc);
  }
  for (; i < nb; ++i) {
    const __m256i qx = _mm256_loadu_si256((const __m256i*)x[i].qs), qy = _mm256_loadu_si256((const __m256i*)y[i].qs);
    const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(qx), _mm256_sign_epi8(qy, qx));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), acc);
  }
  return hsum8(acc);
}
int main() {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 1);
  long same_fix = 0, same_old = 0, total = 0;
  for (int nb : {1, 2, 3, 7, 8, 64, 65, 224, 576}) {
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<float> xf(nb * 32), yf(nb * 32);
      for (auto& v : xf) v = nd(rng);
      for (auto& v : yf) v = nd(rng) * 3;
      std::vector<BlockQ8_0> xq(nb), yq(nb);
      from_float_q8_0_ref(xf.data(), xq.data(), nb * 32);
      from_float_q8_0_act(yf.data(), yq.data(), nb * 32);
      const float r = vec_dot_q8_0_avx2(nb * 32, xq.data(), yq.data());
      const float f = fixed(nb * 32, xq.data(), yq.data());
      const float o = vec_dot_q8_0_avx512w(nb * 32, xq.data(), yq.data());
      same_fix += std::memcmp(&r, &f, 4) == 0;
      same_old += std::memcmp(&r, &o, 4) == 0;
      ++total;
    }
  }
  std::printf("bitwise equal to the AVX2 (ggml-order) kernel: proposed %ld/%ld, current avx512w %ld/%ld\n", same_fix, total,
              same_old, total);
}
