// SIMD kernels against the scalar references, for every ISA this CPU supports:
//  - activation quantizers and dequantizers must be bit-identical;
//  - dot products may differ only by float summation order.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "quant/quant.h"
#include "quant_test_util.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

using namespace testing_quant;

std::vector<uint8_t> run_from_float(FromFloatFn f, GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(ggml_row_size(t, static_cast<int64_t>(x.size())), 0xAB);
  f(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

// Activation vectors that exercise the rounding corners: exact .5 ties after scaling,
// equal magnitudes of opposite sign, all-zero blocks, a single non-zero, denormals.
std::vector<std::vector<float>> tricky_activations(int64_t n) {
  std::vector<std::vector<float>> out;
  out.push_back(gaussian(n, 41));
  out.push_back(gaussian(n, 42, 1e-3f));
  {
    // amax = 127 gives multiplier 1, so k + 0.5 are exact ties for every rounding path.
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = (i % 32 == 0) ? 127.0f : static_cast<float>((i * 7) % 255 - 127) + 0.5f;
    for (int64_t i = 0; i < n; ++i) v[i] = std::max(-127.0f, std::min(127.0f, v[i]));
    out.push_back(v);
  }
  {
    std::vector<float> v(n, 0.0f);
    for (int64_t i = 0; i < n; i += 64) v[i] = (i % 128 == 0) ? -3.0f : 3.0f;  // opposite-sign ties
    for (int64_t i = 5; i < n; i += 64) v[i] = -3.0f;
    for (int64_t i = 0; i < n / 2; ++i) v[i] = (i % 256 < 128) ? v[i] : 0.0f;  // some all-zero blocks
    out.push_back(v);
  }
  {
    std::vector<float> v = gaussian(n, 43);
    for (int64_t i = 0; i < n; i += 3) v[i] = 1e-40f;  // denormal inputs
    out.push_back(v);
  }
  return out;
}

TEST(QuantSimd, ActivationQuantizersAreBitExact) {
  const int64_t n = 2048;
  for (Isa isa : simd_isas()) {
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K, GgmlType::F16, GgmlType::BF16, GgmlType::F32}) {
      const QuantTraits simd = quant_traits_for(t, isa);
      const QuantTraits scalar = quant_traits_for(t, Isa::Scalar);
      int k = 0;
      for (const auto& x : tricky_activations(n)) {
        EXPECT_EQ(run_from_float(simd.from_float, t, x), run_from_float(scalar.from_float, t, x))
            << ggml_type_name(t) << " " << isa_name(isa) << " input " << k;
        ++k;
      }
    }
  }
}

TEST(QuantSimd, DequantizersAreBitExact) {
  const int64_t n = 2048;
  for (Isa isa : simd_isas()) {
    for (GgmlType t : weight_types()) {
      const QuantTraits simd = quant_traits_for(t, isa);
      const auto q = quantize(t, gaussian(n, 51));
      std::vector<float> a(n), b(n);
      simd.to_float(q.data(), a.data(), n);
      simd.to_float_ref(q.data(), b.data(), n);
      EXPECT_EQ(0, std::memcmp(a.data(), b.data(), n * sizeof(float))) << ggml_type_name(t) << " " << isa_name(isa);
    }
  }
}

// |simd - ref| <= 1e-5 * sum |w_i a_i|: the kernels compute the same exact integer
// block sums and differ only in how the float block terms are added up.
TEST(QuantSimd, VecDotMatchesReference) {
  for (Isa isa : simd_isas()) {
    for (GgmlType t : weight_types()) {
      const QuantTraits simd = quant_traits_for(t, isa);
      ASSERT_NE(simd.vec_dot, simd.vec_dot_ref) << ggml_type_name(t) << ": no SIMD kernel for " << isa_name(isa);
      const GgmlType at = simd.vec_dot_type;
      // 96 = 3 blocks of 32: an odd block count exercises the 512-bit kernels' tails.
      const int64_t small = ggml_type_info(t).block_size == 32 ? 96 : 256;
      for (int64_t n : {small, int64_t{256}, int64_t{4096}}) {
        for (uint32_t seed : {61u, 62u}) {
          const auto w = quantize(t, gaussian(n, seed));
          for (const auto& xa : tricky_activations(n)) {
            const auto a = run_from_float(quant_traits_for(at, isa).from_float, at, xa);
            const auto wf = dequantize(t, w, n);
            const auto af = dequantize(at, a, n);
            double mag = 0;
            for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wf[i]) * af[i]);
            if (t == GgmlType::Q4_1 || t == GgmlType::Q5_1) {
              // The min term m * s adds |m * s| per block to what is being summed.
              mag *= 2;
            }
            const float ref = simd.vec_dot_ref(n, w.data(), a.data());
            const float got = simd.vec_dot(n, w.data(), a.data());
            EXPECT_NEAR(got, ref, 1e-5 * mag + 1e-30) << ggml_type_name(t) << " " << isa_name(isa) << " n " << n;
          }
        }
      }
    }
  }
}

// Weight bytes that quantization would never produce (all levels extreme, negative
// Q6_K scales, maximal 6-bit scales and mins) must still give exact integer sums.
TEST(QuantSimd, VecDotOnExtremeBlocks) {
  const int64_t n = 512;
  for (Isa isa : simd_isas()) {
    for (GgmlType t : weight_types()) {
      if (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16) continue;
      const QuantTraits simd = quant_traits_for(t, isa);
      const auto& info = ggml_type_info(t);
      for (uint8_t fill : {uint8_t{0x00}, uint8_t{0xFF}, uint8_t{0x80}, uint8_t{0x7F}}) {
        std::vector<uint8_t> w(ggml_row_size(t, n), fill);
        // Keep every fp16 scale a sane 0.5 / 0.25 so the test is about the integer paths.
        for (int64_t b = 0; b < n / info.block_size; ++b) {
          uint8_t* blk = w.data() + b * info.type_size;
          auto put = [&](size_t off, float v) {
            const uint16_t h = fp32_to_fp16(v);
            std::memcpy(blk + off, &h, 2);
          };
          switch (t) {
            case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: put(0, 0.5f); break;
            case GgmlType::Q4_1: case GgmlType::Q5_1: put(0, 0.5f); put(2, -0.25f); break;
            case GgmlType::Q2_K: put(80, 0.5f); put(82, 0.25f); break;
            case GgmlType::Q3_K: put(108, 0.5f); break;
            case GgmlType::Q4_K: case GgmlType::Q5_K: put(0, 0.5f); put(2, 0.25f); break;
            case GgmlType::Q6_K: put(208, 0.5f); break;
            default: break;
          }
        }
        const auto xa = gaussian(n, 71);
        const auto a = run_from_float(quant_traits_for(simd.vec_dot_type, isa).from_float, simd.vec_dot_type, xa);
        const auto wf = dequantize(t, w, n);
        const auto af = dequantize(simd.vec_dot_type, a, n);
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wf[i]) * af[i]);
        EXPECT_NEAR(simd.vec_dot(n, w.data(), a.data()), simd.vec_dot_ref(n, w.data(), a.data()), 2e-5 * mag + 1e-30)
            << ggml_type_name(t) << " " << isa_name(isa) << " fill " << int(fill);
      }
    }
  }
}

TEST(QuantSimd, ScalarTableIsTheReference) {
  for (GgmlType t : weight_types()) {
    const QuantTraits s = quant_traits_for(t, Isa::Scalar);
    EXPECT_EQ(s.vec_dot, s.vec_dot_ref) << ggml_type_name(t);
    EXPECT_EQ(s.to_float, s.to_float_ref) << ggml_type_name(t);
  }
}

}  // namespace
}  // namespace swapmoe
