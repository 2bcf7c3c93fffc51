// The llama.cpp reference harness (ggml_ref.h) on a type we already match: Q4_K. If these
// fail, the harness (not the new formats) is broken.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "ggml_ref.h"
#include "quant/quant.h"
#include "quant_test_util.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

using namespace testing_quant;

// Random Q4_K blocks: random bytes everywhere, then sane fp16 scales (d, dmin in +-[1e-4, 1e-1]),
// so every scale/min/nibble pattern occurs.
std::vector<uint8_t> random_q4_k(int64_t nblocks, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(static_cast<size_t>(nblocks) * 144);
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> mag(-4.0f, -1.0f), sign(-1.0f, 1.0f);
  for (int64_t i = 0; i < nblocks; ++i) {
    for (int k = 0; k < 2; ++k) {
      const float v = std::copysign(std::pow(10.0f, mag(rng)), sign(rng));
      const uint16_t h = fp32_to_fp16(v);
      std::memcpy(b.data() + i * 144 + 2 * k, &h, 2);
    }
  }
  return b;
}

TEST(GgmlRef, LoadsAndKnowsQ4K) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  std::fprintf(stderr, "ggml reference: %s, cpu variant %s\n", ref->dir().c_str(), ref->cpu_variant().c_str());
  const int t = static_cast<int>(GgmlType::Q4_K);
  EXPECT_EQ(ref->block_size(t), QK_K);
  EXPECT_EQ(ref->type_size(t), ggml_type_info(GgmlType::Q4_K).type_size);
  EXPECT_EQ(ref->vec_dot_type(t), static_cast<int>(quant_traits(GgmlType::Q4_K).vec_dot_type));
  // Ids ggml does not know, and a requirement ggml would abort on, are refused without a crash.
  EXPECT_EQ(ref->vec_dot_type(1000), -1);
  float f[QK_K];
  EXPECT_FALSE(ref->to_float(t, f, f, 100));
}

TEST(GgmlRef, Q4KToFloatBitwiseEqual) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  const int64_t nb = 512, n = nb * QK_K;
  const auto blocks = random_q4_k(nb, 7);
  std::vector<float> theirs(n), ours(n);
  ASSERT_TRUE(ref->to_float(static_cast<int>(GgmlType::Q4_K), blocks.data(), theirs.data(), n));
  quant_traits(GgmlType::Q4_K).to_float_ref(blocks.data(), ours.data(), n);
  EXPECT_EQ(std::memcmp(theirs.data(), ours.data(), n * sizeof(float)), 0);
}

TEST(GgmlRef, Q4KQuantizeByteIdentical) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  const int64_t rows = 4, cols = 1024;
  const auto x = gaussian(rows * cols, 3, 0.05f);
  std::vector<uint8_t> theirs(ggml_row_size(GgmlType::Q4_K, cols) * rows);
  ASSERT_EQ(ref->quantize(static_cast<int>(GgmlType::Q4_K), x.data(), theirs.data(), rows, cols, nullptr),
            theirs.size());
  EXPECT_EQ(quantize(GgmlType::Q4_K, x), theirs);
}

// ggml's vec_dot runs its own SIMD summation order, so it differs from ours by float rounding:
// each of the 8 sub-block partial sums is exact in integers; only the final float sums differ,
// a few ulps of the sum of |terms|.
TEST(GgmlRef, Q4KVecDotClose) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  const int64_t n = 4096;
  const auto w = random_q4_k(n / QK_K, 11);
  const auto x = gaussian(n, 12);
  const int vt = ref->vec_dot_type(static_cast<int>(GgmlType::Q4_K));
  std::vector<uint8_t> a(ggml_row_size(GgmlType::Q8_K, n)), a_ours(a.size());
  ASSERT_TRUE(ref->from_float(vt, x.data(), a.data(), n));
  quant_traits(GgmlType::Q8_K).from_float(x.data(), a_ours.data(), n);
  EXPECT_EQ(a, a_ours) << "Q8_K activations differ from llama.cpp's";
  float theirs = 0;
  ASSERT_TRUE(ref->vec_dot(static_cast<int>(GgmlType::Q4_K), n, w.data(), a.data(), &theirs));
  const float ours = quant_traits(GgmlType::Q4_K).vec_dot(n, w.data(), a.data());
  std::vector<float> wf(n), af(n);
  quant_traits(GgmlType::Q4_K).to_float_ref(w.data(), wf.data(), n);
  quant_traits(GgmlType::Q8_K).to_float_ref(a.data(), af.data(), n);
  double mag = 0;
  for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wf[i]) * af[i]);
  EXPECT_NEAR(ours, theirs, 1e-5 * mag) << "sum |w*a| = " << mag;
}

}  // namespace
}  // namespace swapmoe
