// Q8_0 dot products must sum in llama.cpp's order on every ISA: one 8-lane float
// accumulator taking the blocks in order, then ggml's 8-lane horizontal sum. The AVX2
// kernel is written that way (it is bitwise equal to ggml's), so every other SIMD path
// must be bitwise equal to it, for even and odd block counts, single- and multi-row.
// A few ulps here became greedy flips against llama.cpp on olmoe Q8_0.

#include <gtest/gtest.h>

#include "../require.h"

#include <cstring>

#include "quant/quant.h"
#include "quant_test_util.h"

namespace swapmoe {
namespace {

using namespace testing_quant;

TEST(QuantQ8_0, EverySimdPathSumsInGgmlOrder) {
  if (!cpu_supports(Isa::Avx2)) SWAPMOE_SKIP_OR_FAIL("avx2", "no AVX2");
  const QuantTraits avx2 = quant_traits_for(GgmlType::Q8_0, Isa::Avx2);
  std::vector<Isa> others;
  if (cpu_supports(Isa::Avx512)) others.push_back(Isa::Avx512);
  if (others.empty()) SWAPMOE_SKIP_OR_FAIL("avx512", "no AVX-512: only the AVX2 path exists here");
  int checked = 0, rows = 0;
  for (int64_t nb : {1, 2, 3, 7, 8, 64, 65, 224}) {
    const int64_t n = nb * 32;
    for (uint32_t seed = 1; seed <= 20; ++seed) {
      const std::vector<float> wf = gaussian(n, seed);
      std::vector<uint8_t> w(ggml_row_size(GgmlType::Q8_0, n));
      avx2.from_float_ref(wf.data(), w.data(), n);
      // kVecDotMultiMax activation rows, converted as the forward pass converts them.
      const size_t row_bytes = ggml_row_size(GgmlType::Q8_0, n);
      std::vector<uint8_t> a(row_bytes * kVecDotMultiMax);
      for (int r = 0; r < kVecDotMultiMax; ++r) {
        const std::vector<float> af = gaussian(n, 1000 * seed + static_cast<uint32_t>(r), 3.0f);
        avx2.from_float(af.data(), a.data() + static_cast<size_t>(r) * row_bytes, n);
      }
      for (Isa isa : others) {
        const QuantTraits t = quant_traits_for(GgmlType::Q8_0, isa);
        std::vector<float> multi(kVecDotMultiMax);
        ASSERT_NE(t.vec_dot_multi, nullptr);
        t.vec_dot_multi(n, w.data(), a.data(), row_bytes, kVecDotMultiMax, multi.data(), 1);
        for (int r = 0; r < kVecDotMultiMax; ++r) {
          const uint8_t* ar = a.data() + static_cast<size_t>(r) * row_bytes;
          const float want = avx2.vec_dot(n, w.data(), ar);
          const float got = t.vec_dot(n, w.data(), ar);
          ASSERT_EQ(std::memcmp(&want, &got, sizeof got), 0) << "blocks " << nb << " seed " << seed << ": " << want << " vs " << got;
          ASSERT_EQ(std::memcmp(&want, &multi[static_cast<size_t>(r)], sizeof want), 0) << "multi row " << r << " blocks " << nb;
          ++rows;
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(rows, checked * kVecDotMultiMax);
}

}  // namespace
}  // namespace swapmoe
