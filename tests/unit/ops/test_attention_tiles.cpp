// The prefill attention's tile kernels (four heads x four positions of scores in 512-bit
// accumulators, 64-output weighted sums, the four-row softmax, the F16C query rounding)
// must give exactly what the single-head AVX2 kernels and the scalar code give: the batched
// prefill is tested bitwise against token-by-token decode, and llama.cpp agreement rests on
// the single-head kernels' operation order. Each kernel is called directly (so both ISAs are
// covered in one process, whatever SWAPMOE_ISA says), for head sizes with and without a
// 16-element tail, position counts that are not multiples of the tile, strided rows.

#include <gtest/gtest.h>

#include "../require.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "ops/attention.h"
#include "ops/f16_kernels.h"
#include "util/cpu.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

std::vector<uint16_t> f16_rows(int64_t n, std::mt19937& rng, float sd) {
  std::normal_distribution<float> nd(0.0f, sd);
  std::vector<uint16_t> v(static_cast<size_t>(n));
  for (uint16_t& x : v) x = fp32_to_fp16(nd(rng));
  return v;
}

std::vector<uint32_t> bits(const float* x, int64_t n) {
  std::vector<uint32_t> b(static_cast<size_t>(n));
  std::memcpy(b.data(), x, static_cast<size_t>(n) * 4);
  return b;
}

TEST(AttentionTiles, ScoresH4P4EqualTheSingleHeadKernel) {
  if (!cpu_supports(Isa::Avx512)) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  for (int64_t n : {8, 16, 24, 40, 136, 576, 584}) {
    const int64_t stride = n + 3, q_stride = n + 5;  // odd strides: unaligned rows
    const auto k = f16_rows(4 * stride, rng, 0.5f);
    std::vector<float> q(static_cast<size_t>(4 * q_stride + 1));
    for (float& x : q) x = fp16_to_fp32(fp32_to_fp16(nd(rng)));
    for (int64_t q_off : {0, 1}) {  // also a query that is not even 8-byte aligned
      float got[16], scaled[4 * 7];
      detail::dot_f16_f32_h4p4_avx512(k.data(), stride, q.data() + q_off, q_stride, n, 1.0f, got, 4);
      detail::dot_f16_f32_h4p4_avx512(k.data(), stride, q.data() + q_off, q_stride, n, 0.13f, scaled, 7);
      for (int h = 0; h < 4; ++h)
        for (int p = 0; p < 4; ++p) {
          const float want = detail::dot_f16_f32_avx2(k.data() + p * stride, q.data() + q_off + h * q_stride, n);
          EXPECT_EQ(fp32_to_bits(want), fp32_to_bits(got[4 * h + p])) << "n " << n << " head " << h << " pos " << p;
          EXPECT_EQ(fp32_to_bits(want * 0.13f), fp32_to_bits(scaled[7 * h + p])) << "n " << n << " head " << h;
        }
      // The two-position kernel the tile's remainder uses agrees too.
      float got2[8];
      detail::dot_f16_f32_h4p2_avx512(k.data(), stride, q.data() + q_off, q_stride, n, got2);
      for (int h = 0; h < 4; ++h)
        for (int p = 0; p < 2; ++p) EXPECT_EQ(fp32_to_bits(got[4 * h + p]), fp32_to_bits(got2[2 * h + p])) << n;
    }
  }
}

TEST(AttentionTiles, WideWeightedSumEqualsTheAxpyLoop) {
  if (!cpu_supports(Isa::Avx512)) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  for (int64_t n : {8, 20, 64, 72, 100, 512, 520}) {
    for (int64_t n_rows : {1, 3, 37}) {
      const int64_t x_stride = n + 7, w_stride = n_rows + 2, y_stride = n + 9;
      const auto x = f16_rows(n_rows * x_stride, rng, 1.0f);
      std::vector<float> w(static_cast<size_t>(4 * w_stride));
      for (float& v : w) v = fp16_to_fp32(fp32_to_fp16(ud(rng)));
      // The reference kernels accumulate into zeroed outputs; the wide one writes its
      // outputs, so it starts from garbage (and the padding between rows must survive).
      std::vector<float> want(static_cast<size_t>(4 * y_stride), 0.0f), narrow = want, got(want.size());
      for (float& v : got) v = ud(rng) - 0.5f;
      for (int h = 0; h < 4; ++h)
        for (int64_t i = n; i < y_stride; ++i) want[h * y_stride + i] = narrow[h * y_stride + i] = got[h * y_stride + i];
      for (int h = 0; h < 4; ++h)
        for (int64_t t = 0; t < n_rows; ++t)
          detail::axpy_f16_avx2(w[h * w_stride + t], x.data() + t * x_stride, want.data() + h * y_stride, n);
      detail::weighted_sum_f16_h4_avx512(w.data(), w_stride, x.data(), x_stride, n_rows, narrow.data(), y_stride, n);
      detail::weighted_sum_f16_h4_zmm_avx512(w.data(), w_stride, x.data(), x_stride, n_rows, got.data(), y_stride, n);
      EXPECT_EQ(bits(want.data(), 4 * y_stride), bits(got.data(), 4 * y_stride)) << "n " << n << " rows " << n_rows;
      EXPECT_EQ(bits(narrow.data(), 4 * y_stride), bits(got.data(), 4 * y_stride)) << "n " << n << " rows " << n_rows;
    }
  }
}

TEST(AttentionTiles, TwoHeadAvx2KernelsEqualTheSingleHeadOnes) {
  if (!cpu_supports(Isa::Avx2)) SWAPMOE_SKIP_OR_FAIL("avx2", "no AVX2");
  std::mt19937 rng(16);
  std::normal_distribution<float> nd;
  for (int64_t n : {8, 16, 24, 40, 72, 576}) {
    const int64_t stride = n + 3, q_stride = n + 5;
    const auto k = f16_rows(2 * stride, rng, 0.5f);
    std::vector<float> q(static_cast<size_t>(2 * q_stride));
    for (float& x : q) x = fp16_to_fp32(fp32_to_fp16(nd(rng)));
    float got[2 * 5];
    detail::dot_f16_f32_h2p2_avx2(k.data(), stride, q.data(), q_stride, n, 0.21f, got, 5);
    for (int h = 0; h < 2; ++h)
      for (int p = 0; p < 2; ++p) {
        const float want = detail::dot_f16_f32_avx2(k.data() + p * stride, q.data() + h * q_stride, n) * 0.21f;
        EXPECT_EQ(fp32_to_bits(want), fp32_to_bits(got[5 * h + p])) << "n " << n << " head " << h << " pos " << p;
      }
  }
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  for (int64_t n : {8, 20, 32, 72, 512}) {
    for (int64_t n_rows : {1, 3, 37}) {
      const int64_t x_stride = n + 7, w_stride = n_rows + 2, y_stride = n + 9;
      const auto x = f16_rows(n_rows * x_stride, rng, 1.0f);
      std::vector<float> w(static_cast<size_t>(2 * w_stride));
      for (float& v : w) v = fp16_to_fp32(fp32_to_fp16(ud(rng)));
      std::vector<float> want(static_cast<size_t>(2 * y_stride));
      for (float& v : want) v = ud(rng) - 0.5f;  // both accumulate into y
      std::vector<float> got = want;
      for (int h = 0; h < 2; ++h)
        for (int64_t t = 0; t < n_rows; ++t)
          detail::axpy_f16_avx2(w[h * w_stride + t], x.data() + t * x_stride, want.data() + h * y_stride, n);
      detail::weighted_sum_f16_h2_avx2(w.data(), w_stride, x.data(), x_stride, n_rows, got.data(), y_stride, n);
      EXPECT_EQ(bits(want.data(), 2 * y_stride), bits(got.data(), 2 * y_stride)) << "n " << n << " rows " << n_rows;
    }
  }
}

// attention.cpp's scalar softmax (what the single-head path and decode without AVX-512 run).
void probabilities_scalar(float* p, int64_t n) {
  float mx = -INFINITY;
  for (int64_t t = 0; t < n; ++t) mx = std::max(mx, p[t]);
  double sum = 0.0;
  for (int64_t t = 0; t < n; ++t) {
    p[t] = std::exp(p[t] - mx);
    sum += static_cast<double>(p[t]);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t t = 0; t < n; ++t) p[t] = fp16_to_fp32(fp32_to_fp16(p[t] * inv));
}

TEST(AttentionTiles, FourRowSoftmaxEqualsTheScalarOne) {
  if (!cpu_supports(Isa::Avx512)) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512 (the test also runs the AVX2 two-row version)");
  std::mt19937 rng(13);
  for (int64_t n : {1, 2, 15, 16, 17, 37, 64, 513}) {
    for (float sd : {0.1f, 4.0f, 30.0f}) {  // wide scores: probabilities in F16's subnormal range and below
      std::normal_distribution<float> nd(0.0f, sd);
      const int64_t stride = n + 3;
      std::vector<float> p(static_cast<size_t>(4 * stride));
      for (float& x : p) x = nd(rng);
      // Ties with the maximum, a -inf score (a masked position), and signed zeros.
      p[0] = 2.0f * sd;
      if (n > 1) p[static_cast<size_t>(n - 1)] = 2.0f * sd;
      if (n > 2) p[static_cast<size_t>(stride + 1)] = -INFINITY;
      if (n > 3) p[static_cast<size_t>(2 * stride + 2)] = -0.0f;
      std::vector<float> want = p, two = p;
      for (int h = 0; h < 4; ++h) probabilities_scalar(want.data() + h * stride, n);
      detail::probabilities_h4_avx512(p.data(), stride, n);
      for (int h = 0; h < 4; ++h)
        EXPECT_EQ(bits(want.data() + h * stride, n), bits(p.data() + h * stride, n)) << "n " << n << " sd " << sd;
      // AVX2's two-row version, on rows 0-1 and 2-3.
      detail::probabilities_h2_avx2(two.data(), stride, n);
      detail::probabilities_h2_avx2(two.data() + 2 * stride, stride, n);
      for (int h = 0; h < 4; ++h)
        EXPECT_EQ(bits(want.data() + h * stride, n), bits(two.data() + h * stride, n)) << "two-row n " << n << " sd " << sd;
    }
  }
}

// With gpt-oss's sinks: a sink per row joins the maximum and, after the positions, the
// double sum (scalar reference written out here); the four- and two-row kernels agree bit for bit.
TEST(AttentionTiles, RowSoftmaxWithSinksEqualsTheScalarOne) {
  if (!cpu_supports(Isa::Avx512)) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512 (the test also runs the AVX2 two-row version)");
  std::mt19937 rng(17);
  for (int64_t n : {1, 15, 16, 37, 513}) {
    std::normal_distribution<float> nd(0.0f, 3.0f);
    const int64_t stride = n + 1;
    std::vector<float> p(static_cast<size_t>(4 * stride));
    for (float& x : p) x = nd(rng);
    // Sinks above the maximum (rows 0, 2), below it (1) and -inf (3: no sink at all).
    const float sinks[4] = {20.0f, -5.0f, 12.0f, -INFINITY};
    std::vector<float> want = p, two = p;
    for (int h = 0; h < 4; ++h) {
      float* r = want.data() + h * stride;
      float mx = sinks[h];
      for (int64_t t = 0; t < n; ++t) mx = std::max(mx, r[t]);
      double sum = 0.0;
      for (int64_t t = 0; t < n; ++t) sum += static_cast<double>(r[t] = std::exp(r[t] - mx));
      sum += static_cast<double>(std::exp(sinks[h] - mx));
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t t = 0; t < n; ++t) r[t] = fp16_to_fp32(fp32_to_fp16(r[t] * inv));
    }
    detail::probabilities_h4_avx512(p.data(), stride, n, sinks);
    detail::probabilities_h2_avx2(two.data(), stride, n, sinks);
    detail::probabilities_h2_avx2(two.data() + 2 * stride, stride, n, sinks + 2);
    for (int h = 0; h < 4; ++h) {
      EXPECT_EQ(bits(want.data() + h * stride, n), bits(p.data() + h * stride, n)) << "n " << n << " row " << h;
      EXPECT_EQ(bits(want.data() + h * stride, n), bits(two.data() + h * stride, n)) << "two-row n " << n << " row " << h;
    }
  }
}

// The softmax's vector exp against the C library's expf on a spread of every 4099th bit
// pattern (both signs, subnormals, the under/overflow edges, infinities, NaNs), with a
// nonzero maximum subtracted and lengths that leave a scalar tail. (All 2^32 patterns agree
// on glibc 2.36; that check takes half a minute, too long for a unit test.)
TEST(AttentionTiles, VectorExpEqualsStdExp) {
  if (!cpu_supports(Isa::Avx512)) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  // On a C library whose expf differs, the softmax keeps calling std::exp (still bitwise
  // equal between prefill and decode, only slower): nothing to compare then.
  if (!detail::exp_avx512_usable()) SWAPMOE_SKIP_OR_FAIL("vector-exp", "this C library's expf differs from exp_avx512.cpp; std::exp is used");
  std::vector<float> x;
  for (uint64_t b = 0; b < (1ull << 32); b += 4099) {
    float f;
    const uint32_t u = static_cast<uint32_t>(b);
    std::memcpy(&f, &u, 4);
    x.push_back(f);
  }
  for (float v : {-INFINITY, INFINITY, NAN, -88.0f, -0x1.9fe368p6f, -0x1.9d1d9ep6f, 0x1.62e42ep6f, -0.0f}) x.push_back(v);
  x.push_back(1.0f);  // an odd length
  for (float mx : {0.0f, 3.5f}) {
    std::vector<float> got(x.size()), want(x.size());
    detail::exp_minus_avx512(x.data(), mx, got.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) want[i] = std::exp(x[i] - mx);
    size_t bad = 0;
    for (size_t i = 0; i < x.size(); ++i)
      if (fp32_to_bits(want[i]) != fp32_to_bits(got[i]) && !(std::isnan(want[i]) && std::isnan(got[i]))) {
        if (++bad < 5) ADD_FAILURE() << "exp(" << x[i] << " - " << mx << "): " << want[i] << " vs " << got[i];
      }
    EXPECT_EQ(bad, 0u) << "of " << x.size();
  }
}

TEST(AttentionTiles, QueryRoundingEqualsTheScalarOne) {
  if (!cpu_supports(Isa::Avx2)) SWAPMOE_SKIP_OR_FAIL("avx2", "no AVX2");
  std::mt19937 rng(14);
  std::vector<float> x;
  // Every F16 value and the midpoints between neighbours (ties to even), nudged either way.
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    const float a = fp16_to_fp32(static_cast<uint16_t>(h)), b = fp16_to_fp32(static_cast<uint16_t>(h + 1));
    const float mid = a + (b - a) * 0.5f;
    for (float v : {a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
      x.push_back(v);
      x.push_back(-v);
    }
  }
  for (float v : {65504.0f, 65519.0f, 65520.0f, 1e9f, INFINITY, -INFINITY, 1e-30f, std::numeric_limits<float>::denorm_min()})
    x.push_back(v);
  std::normal_distribution<float> nd(0.0f, 100.0f);
  for (int i = 0; i < 1001; ++i) x.push_back(nd(rng));  // an odd count: the scalar tail runs
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
  std::vector<float> got(x.size());
  detail::round_f16_avx2(x.data(), got.data(), n);
  EXPECT_EQ(bits(want.data(), n), bits(got.data(), n));
  if (cpu_supports(Isa::Avx512)) {
    std::vector<float> got512(x.size());
    detail::round_f16_avx512(x.data(), got512.data(), n);
    EXPECT_EQ(bits(want.data(), n), bits(got512.data(), n));
  }
}

// The MLA shape end to end: one 576-wide F16 latent row per position serves as K and (its
// first 512) as V for every head; the batched causal call must give each token what a
// decode step (attention_f16 over its prefix) gives, for prefixes of every length mod 4.
TEST(AttentionTiles, MlaShapedCausalBatchEqualsDecodeSteps) {
  ThreadPool pool(2);
  const int64_t H = 8, dk = 576, dv = 512, pos0 = 2, n_tok = 9;
  const AttentionShape s{H, 1, dk, dv};
  std::mt19937 rng(15);
  std::normal_distribution<float> nd;
  const auto kv = f16_rows((pos0 + n_tok) * dk, rng, 0.3f);
  std::vector<float> q(static_cast<size_t>(n_tok * H * dk));
  for (float& x : q) x = nd(rng);
  const float scale = 0.07f;
  std::vector<float> got(static_cast<size_t>(n_tok * H * dv));
  attention_f16_causal(q.data(), H * dk, n_tok, pos0, kv.data(), dk, kv.data(), dk, s, scale, got.data(), H * dv, pool);
  for (int64_t t = 0; t < n_tok; ++t) {
    std::vector<float> want(static_cast<size_t>(H * dv));
    attention_f16(q.data() + t * H * dk, kv.data(), dk, kv.data(), dk, pos0 + t + 1, s, scale, want.data(), pool);
    EXPECT_EQ(bits(want.data(), H * dv), bits(got.data() + t * H * dv, H * dv)) << "token " << t;
  }
}

}  // namespace
}  // namespace swapmoe
