// Q6_K dot products must sum in llama.cpp's order. ggml's AVX2 kernel
// (ggml_vec_dot_q6_K_q8_K) keeps, per 256-element block, eight int32 lanes: lane L sums
// scale * u * y over the elements e with (e % 32) / 4 == L, where u = level + 32 is the
// unsigned 6-bit level, and subtracts 32 * (bsum[2L] sc[2L] + bsum[2L+1] sc[2L+1]) in
// the integer domain. Then one 8-lane FMA per block, acc += d * float(lane), and the
// 8-lane horizontal sum hsum_float_8. The integer part is exact, so only that float
// sequence decides the result bits; ggml_order_q6_k below replays it in scalar code and
// every SIMD path must be bitwise equal to it (the AVX-512 ones are asserted; the AVX2
// one is not yet, see the disabled test). A few ulps in the output projection
// are enough to flip near-tie greedy tokens against llama.cpp.

#include <gtest/gtest.h>

#include "../require.h"

#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant_test_util.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

using namespace testing_quant;
using quant::BlockQ6_K;
using quant::BlockQ8_K;


// ggml's float order for one Q6_K row against one Q8_K row (n = nb * 256 elements).
float ggml_order_q6_k(int64_t n, const void* w, const void* a) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int32_t lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int e = 0; e < QK_K; ++e) {
      // Element e: half h, 32-wide chunk k within it, position l (ggml's Q6_K layout).
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const uint8_t lo = x[i].ql[64 * h + l + 32 * (k & 1)];
      const int nib = k < 2 ? (lo & 0x0F) : (lo >> 4);
      const int u = nib | (((x[i].qh[32 * h + l] >> (2 * k)) & 3) << 4);
      lane[(e % 32) / 4] += x[i].scales[e / 16] * u * y[i].qs[e];
    }
    const float d = y[i].d * fp16_to_fp32(x[i].d);
    for (int L = 0; L < 8; ++L) {
      const int32_t off = 32 * (y[i].bsums[2 * L] * x[i].scales[2 * L] + y[i].bsums[2 * L + 1] * x[i].scales[2 * L + 1]);
      acc[L] = std::fmaf(d, static_cast<float>(lane[L] - off), acc[L]);
    }
  }
  // hsum_float_8: high half + low half, then lanes (0,2) and (1,3), then the two.
  float r[4];
  for (int j = 0; j < 4; ++j) r[j] = acc[4 + j] + acc[j];
  return (r[0] + r[2]) + (r[1] + r[3]);
}

struct Case {
  std::vector<uint8_t> w;  // one Q6_K row
  std::vector<uint8_t> a;  // kVecDotMultiMax Q8_K rows
  size_t row_bytes = 0;
};

Case make_case(int64_t n, uint32_t seed) {
  const QuantTraits avx2 = quant_traits_for(GgmlType::Q6_K, Isa::Avx2);
  Case c;
  const std::vector<float> wf = gaussian(n, seed);
  c.w.resize(ggml_row_size(GgmlType::Q6_K, n));
  avx2.from_float_ref(wf.data(), c.w.data(), n);
  // Activations converted as the forward pass converts them (the traits' from_float).
  c.row_bytes = ggml_row_size(GgmlType::Q8_K, n);
  const QuantTraits q8k = quant_traits_for(GgmlType::Q8_K, Isa::Avx2);
  c.a.resize(c.row_bytes * kVecDotMultiMax);
  for (int r = 0; r < kVecDotMultiMax; ++r) {
    const std::vector<float> af = gaussian(n, 1000 * seed + static_cast<uint32_t>(r), 3.0f);
    q8k.from_float(af.data(), c.a.data() + static_cast<size_t>(r) * c.row_bytes, n);
  }
  return c;
}

const int64_t kBlockCounts[] = {1, 2, 3, 7, 8, 16, 24, 64};

bool same_bits(float x, float y) { return std::memcmp(&x, &y, sizeof x) == 0; }

TEST(QuantQ6_K, Avx512PathsSumInGgmlOrder) {
  if (!cpu_supports(Isa::Avx512)) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512");
  const QuantTraits t = quant_traits_for(GgmlType::Q6_K, Isa::Avx512);
  ASSERT_NE(t.vec_dot_multi, nullptr);
  int rows = 0;
  for (int64_t nb : kBlockCounts) {
    const int64_t n = nb * QK_K;
    for (uint32_t seed = 1; seed <= 12; ++seed) {
      const Case c = make_case(n, seed);
      std::vector<float> multi(kVecDotMultiMax);
      t.vec_dot_multi(n, c.w.data(), c.a.data(), c.row_bytes, kVecDotMultiMax, multi.data(), 1);
      for (int r = 0; r < kVecDotMultiMax; ++r) {
        const uint8_t* ar = c.a.data() + static_cast<size_t>(r) * c.row_bytes;
        const float want = ggml_order_q6_k(n, c.w.data(), ar);
        const float got = t.vec_dot(n, c.w.data(), ar);
        ASSERT_TRUE(same_bits(want, got)) << "blocks " << nb << " seed " << seed << " row " << r << ": " << want
                                          << " vs " << got;
        ASSERT_TRUE(same_bits(want, multi[static_cast<size_t>(r)]))
            << "multi row " << r << " blocks " << nb << " seed " << seed << ": " << want << " vs " << multi[static_cast<size_t>(r)];
        ++rows;
      }
      // Fewer rows than kVecDotMultiMax take other template instances.
      for (int na = 1; na < kVecDotMultiMax; ++na) {
        std::vector<float> part(static_cast<size_t>(na));
        t.vec_dot_multi(n, c.w.data(), c.a.data(), c.row_bytes, na, part.data(), 1);
        for (int r = 0; r < na; ++r)
          ASSERT_TRUE(same_bits(multi[static_cast<size_t>(r)], part[static_cast<size_t>(r)])) << "na " << na << " row " << r;
      }
    }
  }
  EXPECT_EQ(rows, static_cast<int>(std::size(kBlockCounts)) * 12 * kVecDotMultiMax);
}

// The scalar replay must itself be the same dot product (up to float rounding), or the
// bitwise test above would compare against a wrong number.
TEST(QuantQ6_K, GgmlOrderReplayIsTheDotProduct) {
  const QuantTraits ref = quant_traits_for(GgmlType::Q6_K, Isa::Scalar);
  for (int64_t nb : {1, 5}) {
    const int64_t n = nb * QK_K;
    const Case c = make_case(n, 7);
    const float want = ref.vec_dot(n, c.w.data(), c.a.data());
    const float got = ggml_order_q6_k(n, c.w.data(), c.a.data());
    EXPECT_NEAR(got, want, 1e-4 * (1.0 + std::fabs(want))) << "blocks " << nb;
  }
}

// The AVX2 kernel applies the -32 offset in a separate float accumulator (KAcc in
// simd_kernels.inc, not this test's owner's file), which rounds differently from ggml.
// Disabled until that kernel is changed; run with --gtest_also_run_disabled_tests.
TEST(QuantQ6_K, DISABLED_Avx2SumsInGgmlOrder) {
  if (!cpu_supports(Isa::Avx2)) SWAPMOE_SKIP_OR_FAIL("avx2", "no AVX2");
  const QuantTraits avx2 = quant_traits_for(GgmlType::Q6_K, Isa::Avx2);
  int differ = 0, total = 0;
  for (int64_t nb : kBlockCounts) {
    const int64_t n = nb * QK_K;
    const Case c = make_case(n, 3);
    for (int r = 0; r < kVecDotMultiMax; ++r) {
      const uint8_t* ar = c.a.data() + static_cast<size_t>(r) * c.row_bytes;
      differ += !same_bits(ggml_order_q6_k(n, c.w.data(), ar), avx2.vec_dot(n, c.w.data(), ar));
      ++total;
    }
  }
  EXPECT_EQ(differ, 0) << "of " << total << " rows";
}

}  // namespace
}  // namespace swapmoe
